/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/group.h - group membership: join a group under an id, and follow
 * who is in it.
 *
 * A member is an EPHEMERAL node under the group path P, in one of two
 * formats (profiles) that other libraries read and write:
 *   ZKR_GROUP_CURATOR  P/<id>, data = the member's data (Apache Curator
 *                      GroupMember)
 *   ZKR_GROUP_KAZOO    P/<32 hex digits>__party__, data = the id (kazoo Party)
 * Parents are CONTAINER nodes.
 *
 * Joining checks who owns a node that is there already: our own session ->
 * kept as it is (its data set only if it differs; never deleted and created
 * again, so followers see no flap); a session of ours that ended (after an
 * expiry the server removes the old session's ephemerals a moment after the
 * client learns of it) -> deleted by version and created again; any other
 * session -> ZKR_EDUPLICATE, and the other member keeps its node (never
 * stolen, never adopted). A joined member keeps a watch on its node and joins
 * again by itself when it is deleted or its session expires.
 *
 * Every member carries its node's czxid as a membership epoch: a member that
 * left and joined again (a restart, an expiry) has a new epoch, one that only
 * lost its connection for a while keeps it.
 */
#ifndef ZKRECIPES_GROUP_H
#define ZKRECIPES_GROUP_H

#include <stdint.h>

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Member formats. */
typedef enum zkr_group_profile {
  ZKR_GROUP_CURATOR = 0, /* P/<id>, data = payload */
  ZKR_GROUP_KAZOO = 1,   /* P/<hex32>__party__, data = id */
  ZKR_GROUP_KAZOO_SHALLOW = 2 /* read only: kazoo ShallowParty, P/<hex32>-<id> */
} zkr_group_profile_t;

/* ---- joining ---- */

typedef struct zkr_member zkr_member_t;

/* Member events (the listener's ev). */
typedef enum zkr_member_event {
  ZKR_MEMBER_JOINED = 1,    /* our node is there (epoch: its czxid); also after
                               joining again */
  ZKR_MEMBER_LEFT = 2,      /* our node is gone (deleted, or its session expired):
                               not a member until JOINED again (being re-joined) */
  ZKR_MEMBER_DUPLICATE = 3  /* another session holds our id: not a member, and
                               it stays so (no retry) */
} zkr_member_event_t;

typedef void (*zkr_member_listener_fn)(zkr_member_t *m, int ev, int64_t epoch, void *arg);
typedef void (*zkr_member_join_cb)(zkr_member_t *m, int rc, int64_t epoch, void *arg);

/*
 * A member of the group at path with id (a node name: no '/', not "." or "..",
 * at most 255 bytes) in profile ZKR_GROUP_CURATOR or ZKR_GROUP_KAZOO. Nothing
 * is created until zkr_member_join(). The data is empty for CURATOR and the id
 * for KAZOO until zkr_member_set_data().
 */
ZKR_API int zkr_member_new(zkr_session_t *s, const char *path, const char *id, int profile,
                           zkr_member_t **out);
/* The node's data (copied). Before joining, what the join writes; once joined,
 * written now (if it differs), and again on every re-join. */
ZKR_API int zkr_member_set_data(zkr_member_t *m, const char *data, int len);
ZKR_API int zkr_member_set_listener(zkr_member_t *m, zkr_member_listener_fn fn, void *arg);
/*
 * Join: cb runs once with 0 and the epoch when our node is there, or with
 * ZKR_EDUPLICATE, ZKR_ETIMEDOUT (timeout_ms: -1 none), ZKR_ECANCELED (freed or
 * left first) or the server's refusal (e.g. ZNOAUTH). ZKR_EBUSY if joining or
 * joined already. After a successful join the member stays in the group until
 * zkr_member_leave() or free.
 */
ZKR_API int zkr_member_join_async(zkr_member_t *m, int timeout_ms, zkr_member_join_cb cb,
                                  void *arg);
ZKR_API int zkr_member_join(zkr_member_t *m, int timeout_ms, int64_t *epoch);
/* 1 while our node is there, else 0. */
ZKR_API int zkr_member_is_member(zkr_member_t *m);
/* Our node's path (borrowed; valid until free). */
ZKR_API const char *zkr_member_node(zkr_member_t *m);
/* Leave: delete our node (once the server confirms it, or our session
 * ended), waiting at most timeout_ms. ZKR_ENOTHELD if not joined. */
ZKR_API int zkr_member_leave(zkr_member_t *m, int timeout_ms);
/* Leave (in the background) and free; no callback runs after this returns. */
ZKR_API void zkr_member_free(zkr_member_t *m);

/* ---- following a group ---- */

typedef struct zkr_group zkr_group_t;

/* One member as read. */
typedef struct zkr_group_member {
  char *id;         /* the member's id (for KAZOO: its data) */
  char *node;       /* its node's name under P */
  char *data;       /* its data, NUL-terminated (NULL: none) */
  int len;          /* -1: none */
  int format;       /* zkr_group_profile_t: which library's format */
  int64_t epoch;    /* the node's czxid */
  int64_t owner;    /* the session that holds it (0: not an ephemeral) */
} zkr_group_member_t;

/* Group events: ZKR_CACHE_ADDED, _UPDATED, _REPLACED (the same id with a new
 * epoch), _REMOVED, _INITIALIZED, _RESYNC_BEGIN/_END, _PARENT_ABSENT and
 * _STOPPED as for a children cache; member NULL for the group's own events. */
typedef void (*zkr_group_listener_fn)(zkr_group_t *g, int ev, const zkr_group_member_t *member,
                                      void *arg);

/* Follow the members of the group at path (read-only; any format). */
ZKR_API int zkr_group_new(zkr_session_t *s, const char *path, zkr_group_t **out);
/* A settled view: quiet_ms after the last change (and after INITIALIZED)
 * was told to the listener (its call returned), a ZKR_CACHE_SETTLED event
 * (member NULL), once per quiet spell, so that a
 * consumer can act on a membership that has stopped moving (a rolling
 * restart, a burst of joins) rather than on each step. 0 (the default): none.
 * Set it before zkr_group_start(). */
ZKR_API int zkr_group_set_settle(zkr_group_t *g, int quiet_ms);
ZKR_API int zkr_group_set_listener(zkr_group_t *g, zkr_group_listener_fn fn, void *arg);
ZKR_API int zkr_group_start(zkr_group_t *g);
/* Wait until the first listing is in (INITIALIZED), at most timeout_ms (-1:
 * no limit): 0, ZKR_ETIMEDOUT; ZKR_EDEADLK in callback context. */
ZKR_API int zkr_group_wait_ready(zkr_group_t *g, int timeout_ms);
/* The members now, sorted by id: 0, ZNONODE (no group node), ZKR_ENOTREADY
 * before INITIALIZED. Free with zkr_group_members_free. */
ZKR_API int zkr_group_list(zkr_group_t *g, zkr_group_member_t **out, int *count);
ZKR_API void zkr_group_members_free(zkr_group_member_t *members, int count);
ZKR_API void zkr_group_free(zkr_group_t *g);

/* A static name for a profile ("curator", "kazoo", "kazoo-shallow"). */
ZKR_API const char *zkr_group_profile_name(int profile);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_GROUP_H */
