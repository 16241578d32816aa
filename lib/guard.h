/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/guard.h - a child watch on a node, shared by every object of a session
 * that keeps a cached view of that node. Not installed.
 *
 * A recipe that caches a node's value and version (the counter) must learn
 * when the node is deleted: a node created again restarts its versions at 0,
 * so a cached version could pass on the new node. A data watch fires on our
 * own writes too and must be set again after each (one request per write); a
 * child watch does not fire on setData, only on the node's deletion (or a
 * change of its children), so one watch serves every write. It is shared per
 * session and path, so objects made and freed around a quiet node add none.
 *
 * Identity is the czxid the guard saw when its watch was set: a cache of
 * another czxid is not guarded by it. Subscribers hear every end of the watch
 * (fired, or lost with the handle) in callback context, with no lock held;
 * subscribe and unsubscribe in callback context (zkr__dispatch_enter), so that
 * a subscriber is never called after it has unsubscribed.
 */
#ifndef ZKR_GUARD_H
#define ZKR_GUARD_H

#include <stdbool.h>

#include "internal.h"

typedef struct zkr__guard zkr__guard_t;
typedef struct zkr__guard_sub zkr__guard_sub_t;

/* The guard of path on s (a reference; NULL if out of memory). */
ZKR__HIDDEN zkr__guard_t *zkr__guard_get(zkr_session_t *s, const char *path);
ZKR__HIDDEN void zkr__guard_put(zkr__guard_t *g);

/* In callback context: fn(ctx) runs (callback context, no zkrecipes lock held)
 * each time the watch ends. NULL if out of memory. */
ZKR__HIDDEN zkr__guard_sub_t *zkr__guard_subscribe(zkr__guard_t *g, void (*fn)(void *ctx),
                                                   void *ctx);
ZKR__HIDDEN void zkr__guard_unsubscribe(zkr__guard_t *g, zkr__guard_sub_t *sub);

/* Whether a cache of incarnation czxid is guarded: 1 the watch is set on that
 * incarnation (czxid 0, "not known yet": any); 0 the watch is set on another
 * incarnation, or being set; -1 no watch is set or being set. */
ZKR__HIDDEN int zkr__guard_state(zkr__guard_t *g, int64_t czxid, int64_t *czxid_out);
/* Set the watch unless it is set or being set (one request, pipelined in
 * session order behind what the caller sent before). */
ZKR__HIDDEN void zkr__guard_arm(zkr__guard_t *g);

#endif /* ZKR_GUARD_H */
