/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/lock.h - an exclusive distributed lock.
 *
 * Each acquire queues an EPHEMERAL_SEQUENTIAL child "_c_<uuid>-lock-N" under the
 * lock path (the format of Curator's InterProcessMutex and go-zookeeper, so they
 * can share the path); the lowest child holds the lock. Children written by
 * kazoo, Curator's read/write lock and ZooKeeper's own recipes are respected in
 * sequence order too. A waiter watches only its predecessor. A predecessor it
 * may not read (another identity's ZKR_ACL_CREATOR node) sends it no events (the
 * server tells a node's changes only to those who may read it): behind such a
 * node the waiter watches the lock path's children instead, and wakes on every
 * change of them until the node goes.
 *
 * Reentrancy: a lock object counts holds. Acquiring a lock object that already
 * holds adds a hold without talking to the server; release removes one, and the
 * node is deleted when the count reaches zero. Different lock objects on the same
 * path (even in one process, on one session) exclude each other.
 *
 * Fencing: every grant carries a token, the lock node's czxid, which increases in
 * grant order across the whole ensemble. Hand it to the resource you protect and
 * have it reject smaller tokens; for writes to ZooKeeper itself, add the guard op
 * to your zoo_multi.
 */
#ifndef ZKRECIPES_LOCK_H
#define ZKRECIPES_LOCK_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_lock zkr_lock_t;

/* The current grant. Plain value; may gain fields only with a new major version. */
typedef struct zkr_lock_token {
  int64_t czxid;      /* the fencing token: increases in grant order */
  int64_t session_id; /* session owning the lock node */
  int32_t sequence;   /* sequence suffix of the lock node */
  char node[64];      /* the lock node's name under the lock path */
} zkr_lock_token_t;

/* Events for the ownership listener. */
typedef enum zkr_lock_event {
  ZKR_LOCK_SUSPECT = 1,   /* connection lost while held or waiting: ownership uncertain */
  ZKR_LOCK_RECOVERED = 2, /* same session back (for a held lock: its node checked to
                             exist and to be this session's): still held or waiting */
  ZKR_LOCK_LOST = 3       /* session expired, or the node was found gone after a
                             reconnect: held() is 0 from now on (a waiting acquire goes
                             on, on the new session) */
} zkr_lock_event_t;

typedef void (*zkr_lock_cb)(zkr_lock_t *l, int rc, void *arg);
typedef void (*zkr_lock_listener_fn)(zkr_lock_t *l, int event, void *arg);

/* A lock object for path (absolute, at most 1024 bytes) on session s. Missing
 * parents are created as container nodes at the first acquire. */
ZKR_API int zkr_lock_new(zkr_session_t *s, const char *path, zkr_lock_t **out);

/*
 * Read/write lock (Apache Curator InterProcessReadWriteLock's nodes,
 * _c_<uuid>-__READ__<seq> and _c_<uuid>-__WRIT__<seq>): a pair of lock objects
 * on path, the read lock and the write lock, each used with the zkr_lock_*
 * functions (acquire, release, token, guard, listener), and freed with the
 * pair (zkr_lock_free on them does nothing). Readers hold together while no
 * writer is ahead of them; a writer holds alone. Every writer format on the
 * path counts as a writer (Curator __WRIT__, kazoo __lock__, a mutex's lock-,
 * the ZooKeeper recipe's x-<sid>-) and every reader format as a reader
 * (__READ__, kazoo __rlock__); the order is the sequence (wrap-aware). A
 * reader watches the nearest writer ahead, a writer the node right ahead: one
 * notification per waiter per grant. Fair: a reader behind a waiting writer
 * waits. Acquiring the write lock while the pair's read lock holds (an
 * upgrade, which would wait for itself for ever) is ZKR_EDEADLK at once.
 */
typedef struct zkr_rwlock zkr_rwlock_t;
ZKR_API int zkr_rwlock_new(zkr_session_t *s, const char *path, zkr_rwlock_t **out);
ZKR_API zkr_lock_t *zkr_rwlock_read(zkr_rwlock_t *rw);
ZKR_API zkr_lock_t *zkr_rwlock_write(zkr_rwlock_t *rw);
/*
 * Downgrade: the write lock (held once) becomes the read lock, keeping its
 * place. One transaction creates the read node with the write node's
 * sequence and deletes the write node, so no writer waiting behind can get in
 * between, and readers behind are granted. Afterwards the read lock holds
 * (with a new token: the read node's czxid) and the write lock does not; its
 * guard ops fail. Returns once the outcome is known: the server's answer, or,
 * when the connection is lost meanwhile, an answer after the reconnect (the
 * transaction applies entirely or not at all). ZKR_ENOTHELD if the write lock
 * does not hold; ZKR_EBUSY if it holds more than once or the read lock holds
 * or waits; ZKR_ELOST if the session ended meanwhile. On another failure the
 * write lock still holds.
 */
ZKR_API int zkr_rwlock_downgrade(zkr_rwlock_t *rw);
ZKR_API int zkr_rwlock_downgrade_async(zkr_rwlock_t *rw, zkr_lock_cb cb, void *arg);

/* Release what is held, end what waits, and free both locks. NULL: no-op. */
ZKR_API void zkr_rwlock_free(zkr_rwlock_t *rw);

/* What a lock object is (zkr_lock_kind). */
typedef enum zkr_lock_kind {
  ZKR_LOCK_MUTEX = 0, /* zkr_lock_new */
  ZKR_LOCK_READ = 1,  /* zkr_rwlock_read */
  ZKR_LOCK_WRITE = 2, /* zkr_rwlock_write */
  ZKR_LOCK_LEASE = 3  /* a semaphore's lease (zkrecipes/semaphore.h) */
} zkr_lock_kind_t;
ZKR_API int zkr_lock_kind(zkr_lock_t *l);

/* Data stored in the lock node (default "<hostname>:<pid>"); at most 1000000 bytes.
 * ZKR_EBUSY while held or acquiring. */
ZKR_API int zkr_lock_set_data(zkr_lock_t *l, const void *data, int len);

/* ACL of the lock node and of parents the lock creates (default: the session's,
 * see zkr_session_set_acl). The vector is copied. ZKR_EBUSY while held or acquiring. */
ZKR_API int zkr_lock_set_acl(zkr_lock_t *l, const struct ACL_vector *acl);

/* One listener per lock (NULL removes it). */
ZKR_API int zkr_lock_set_listener(zkr_lock_t *l, zkr_lock_listener_fn fn, void *arg);

/* Release (if held) and free. A pending acquire completes with ZKR_ECANCELED
 * before this returns, and its node is removed. NULL is a no-op. */
ZKR_API void zkr_lock_free(zkr_lock_t *l);

/*
 * Acquire. timeout_ms: -1 waits as long as it takes, 0 tries once (ZKR_ETIMEDOUT if
 * someone else holds it), > 0 waits at most that long (ZKR_ETIMEDOUT). Connection
 * loss while waiting is ridden out until the deadline; after session expiry the
 * acquire queues again on the new session. ZKR_EBUSY if an acquire is already
 * pending on this object. On failure no node of this attempt is left behind.
 */
ZKR_API int zkr_lock_acquire(zkr_lock_t *l, int timeout_ms);
ZKR_API int zkr_lock_acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb,
                                   void *arg);

/* Cancel a pending acquire: its callback runs with ZKR_ECANCELED before this
 * returns and its node is removed. ZKR_ENOTHELD if no acquire is pending. */
ZKR_API int zkr_lock_cancel(zkr_lock_t *l);

/*
 * Release one hold. When the last hold goes, held() is 0 at once and the node is
 * deleted (retried across connection loss while the session lives). The sync form
 * returns when the delete is acknowledged, or ZKR_ETIMEDOUT after timeout_ms while
 * the delete goes on in the background; with timeout_ms 0 it does not wait at all:
 * the delete is on its way, ahead of anything this session sends later (so a next
 * acquire queues behind it), and a failure is only logged. ZKR_ENOTHELD if not
 * held.
 */
ZKR_API int zkr_lock_release(zkr_lock_t *l, int timeout_ms);
/* The async form: cb (may be NULL) runs once with the delete's outcome, or with
 * ZKR_ETIMEDOUT at the deadline while the delete goes on; with timeout_ms 0 (or
 * cb NULL) once the delete is on its way. */
ZKR_API int zkr_lock_release_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb,
                                   void *arg);

/* 1 if this object holds the lock, else 0. */
ZKR_API int zkr_lock_is_held(zkr_lock_t *l);

/* Number of holds (0 when not held). */
ZKR_API int zkr_lock_hold_count(zkr_lock_t *l);

/* The current grant's token; ZKR_ENOTHELD if not held. */
ZKR_API int zkr_lock_token(zkr_lock_t *l, zkr_lock_token_t *out);

/*
 * Fill *op with a check op on the lock node, to put first in a zoo_multi so the
 * transaction commits only while this lock is held (it fails with ZNONODE once the
 * lock is lost or released). The op points into the lock object: it names the
 * node of this grant (a later grant does not change it) and stays valid until
 * zkr_lock_free, or until 60 seconds after a later grant of this lock took a
 * guard, whichever comes first (the lock keeps no more than that: take a new
 * op for each transaction rather than keeping one). ZKR_ENOTHELD if not held.
 * Prefer zoo_amulti: libzookeeper-mt's synchronous zoo_multi leaks the per-op
 * records of a transaction whose connection is lost (seen under LeakSanitizer).
 */
ZKR_API int zkr_lock_guard(zkr_lock_t *l, zoo_op_t *op);

/* The lock path given to zkr_lock_new (borrowed). */
ZKR_API const char *zkr_lock_path(zkr_lock_t *l);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_LOCK_H */
