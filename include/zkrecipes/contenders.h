/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/contenders.h - who is queued on a lock or election path.
 *
 * Locks and elections are queues of sequential children under one path. Other
 * libraries name those children differently (see docs of zkr_format_t); this
 * query lists every child in queue order and says which format wrote it, so an
 * operator can see who holds, who waits, and who wrote what.
 */
#ifndef ZKRECIPES_CONTENDERS_H
#define ZKRECIPES_CONTENDERS_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which library's naming a child follows. */
typedef enum zkr_format {
  ZKR_FORMAT_UNKNOWN = 0, /* not a contender: ignored for ordering */
  ZKR_FORMAT_CURATOR = 1, /* _c_<uuid>-lock-N: zkrecipes lock, Curator mutex/selector */
  ZKR_FORMAT_CURATOR_LATCH =
      2, /* _c_<uuid>-latch-N: zkrecipes election, Curator LeaderLatch */
  ZKR_FORMAT_CURATOR_RW = 3, /* ..__WRIT__N / ..__READ__N: Curator read/write lock */
  ZKR_FORMAT_GO = 4,         /* _c_<hex32>-lock-N: go-zookeeper */
  ZKR_FORMAT_KAZOO = 5,      /* <hex32>__lock__N / __rlock__N: kazoo */
  ZKR_FORMAT_ZK_C = 6,       /* x-<session hex16>-N: ZooKeeper's C lock recipe */
  ZKR_FORMAT_ZK_JAVA = 7,    /* x-<session decimal>-N: ZooKeeper's Java WriteLock */
  ZKR_FORMAT_PLAIN = 8,      /* ...lock-N without a protection prefix */
  ZKR_FORMAT_CURATOR_LEASE = 9 /* _c_<uuid>-lease-N: zkrecipes semaphore, Curator
                                  InterProcessSemaphoreV2 (under P/leases) */
} zkr_format_t;

/* Static name of a format: "zkrecipes/curator", "kazoo", "go", "zk-c-recipe", ... */
ZKR_API const char *zkr_format_name(int format);

/* One child of a lock or election path. */
typedef struct zkr_contender {
  char *name;            /* child name (NUL-terminated) */
  char *data;            /* node data, NUL-terminated for convenience; NULL if none */
  int data_len;          /* data length in bytes, -1 if the node has no data (or
                            its ACL does not let us read it) */
  int32_t sequence;      /* sequence suffix (meaningless for unknown children) */
  int format;            /* zkr_format_t */
  int reader;            /* 1 for a read-lock node (kazoo __rlock__, Curator __READ__) */
  int64_t owner_session; /* ephemeralOwner: the holder's session id, 0 if persistent */
  int64_t czxid;         /* zxid of the node's creation: the fencing token of a grant */
  int64_t reserved[4];   /* room for fields added later (zero): the array's stride
                            stays the same */
} zkr_contender_t;

/*
 * List the children of path: contenders first in queue order (the first one holds
 * the lock or leads), then children in no known format, by name. *out is an array
 * of *count entries (NULL and 0 when there are none), freed with
 * zkr_contenders_free(). Children that vanish while being read are left out.
 */
ZKR_API int zkr_contenders_list(zkr_session_t *s, const char *path, int timeout_ms,
                                zkr_contender_t **out, int *count);

/* cb receives the array and owns it (free it with zkr_contenders_free). With
 * timeout_ms 0 the listing is sent once if connected (ZKR_ETIMEDOUT if not) and
 * its replies are awaited; > 0 ends it with ZKR_ETIMEDOUT at the deadline. */
typedef void (*zkr_contenders_cb)(int rc, zkr_contender_t *list, int count, void *arg);
ZKR_API int zkr_contenders_list_async(zkr_session_t *s, const char *path, int timeout_ms,
                                      zkr_contenders_cb cb, void *arg);

ZKR_API void zkr_contenders_free(zkr_contender_t *list, int count);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_CONTENDERS_H */
