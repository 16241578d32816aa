/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/barrier.h - barriers: a gate that is up or down, and a double
 * barrier (N members enter together, and leave together).
 *
 * Barrier. The gate is up while the node P exists (PERSISTENT, empty data; its
 * missing parents are made as containers): the nodes of Apache Curator's
 * DistributedBarrier and kazoo's Barrier, so their services share the path.
 * A waiter passes once P is gone, or once P is a node other than the one it
 * first saw (its czxid): a remove followed at once by a set is a pulse that
 * lets the waiters through, also when it happened while they were
 * disconnected (the ZooKeeper client reports that as a mere data change, and
 * the other libraries wait on through it).
 *
 * Double barrier. The nodes of Curator's DistributedDoubleBarrier:
 *   P/<uuid>  one per member, EPHEMERAL, a fresh UUID per enter
 *   P/ready   PERSISTENT, made by the member that sees N members
 * Enter passes once N members are there, or once P/ready was made after our
 * own node (a ready made before it is left over from an earlier round: it is
 * neither trusted nor left in place, but replaced when N members are there).
 * Leave follows ZooKeeper's recipe (the lowest member waits for the highest,
 * every other member removes its node and waits for the lowest) and then
 * removes P/ready. Use a path per round (P = ".../<round>") so that rounds
 * never share nodes. On a timeout, our member node is removed before the call
 * returns, so that nobody counts a member that gave up; every error is
 * returned.
 */
#ifndef ZKRECIPES_BARRIER_H
#define ZKRECIPES_BARRIER_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_barrier zkr_barrier_t;
typedef struct zkr_dbarrier zkr_dbarrier_t;

ZKR_API int zkr_barrier_new(zkr_session_t *s, const char *path, zkr_barrier_t **out);

/* Raise the barrier (make P; already there: 0), lower it (remove P; already
 * gone: 0), or wait until it is lowered (or pulsed, see above). timeout_ms as
 * everywhere: -1 as long as it takes, 0 one look, > 0 at most that long
 * (ZKR_ETIMEDOUT). One call at a time per object (ZKR_EBUSY). */
ZKR_API int zkr_barrier_set(zkr_barrier_t *b, int timeout_ms);
ZKR_API int zkr_barrier_remove(zkr_barrier_t *b, int timeout_ms);
ZKR_API int zkr_barrier_wait(zkr_barrier_t *b, int timeout_ms);

typedef void (*zkr_barrier_cb)(zkr_barrier_t *b, int rc, void *arg);
ZKR_API int zkr_barrier_set_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb,
                                  void *arg);
ZKR_API int zkr_barrier_remove_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb,
                                     void *arg);
ZKR_API int zkr_barrier_wait_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb,
                                   void *arg);

/* A pending call ends with ZKR_ECANCELED. NULL: no-op. */
ZKR_API void zkr_barrier_free(zkr_barrier_t *b);

/* A double barrier of members (1 .. 10000) on path. */
ZKR_API int zkr_dbarrier_new(zkr_session_t *s, const char *path, int members,
                             zkr_dbarrier_t **out);

/* Enter: 0 once every member is there; ZKR_ETIMEDOUT (our node removed);
 * ZKR_EBUSY while entered or while a call is pending. */
ZKR_API int zkr_dbarrier_enter(zkr_dbarrier_t *d, int timeout_ms);
/* Leave: 0 once every member has left; ZKR_ETIMEDOUT (our node removed: the
 * others see us gone); ZKR_ENOTHELD unless entered. */
ZKR_API int zkr_dbarrier_leave(zkr_dbarrier_t *d, int timeout_ms);

typedef void (*zkr_dbarrier_cb)(zkr_dbarrier_t *d, int rc, void *arg);
ZKR_API int zkr_dbarrier_enter_async(zkr_dbarrier_t *d, int timeout_ms, zkr_dbarrier_cb cb,
                                     void *arg);
ZKR_API int zkr_dbarrier_leave_async(zkr_dbarrier_t *d, int timeout_ms, zkr_dbarrier_cb cb,
                                     void *arg);

/* Our member node's name under the path, copied into buf (size bytes, 37 are
 * enough); NULL while we have none. */
ZKR_API const char *zkr_dbarrier_node(zkr_dbarrier_t *d, char *buf, size_t size);

/* A pending call ends with ZKR_ECANCELED and our member node is removed.
 * NULL: no-op. */
ZKR_API void zkr_dbarrier_free(zkr_dbarrier_t *d);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_BARRIER_H */
