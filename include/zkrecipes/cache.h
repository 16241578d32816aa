/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/cache.h - follow a znode: its current data and stat, or its
 * absence, with an event for every change the client can see.
 *
 * A node cache reads the node with a data watch (an exists watch while it is
 * absent) and reads again on every notification; it never creates or changes
 * anything on the server. Like every cache built on ZooKeeper's one-shot
 * watches, it coalesces: two quick writes may be seen as one change, to the
 * second value. What it does not do is lose track silently:
 *
 * - Identity is the node's czxid. A node deleted and created again is
 *   REPLACED, also when both happened while the client was disconnected (the C
 *   client reports that case as a mere change, and versions restart at 0).
 * - Within a session, a reconnect re-reads what changed meanwhile.
 * - After an expiry (the session opens a new ZooKeeper session), the cache
 *   reports RESYNC_BEGIN, then the difference between its last view and the
 *   node as it is now (at most one event, with gap set: the history between
 *   is unknown), then RESYNC_END.
 * - Events come in the order the server applied the changes (by mzxid); a
 *   reply older than the view held is never reported.
 *
 * Connection states are not data events: follow the session's listener for
 * those. While disconnected, the cache keeps its last view.
 */
#ifndef ZKRECIPES_CACHE_H
#define ZKRECIPES_CACHE_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_node_cache zkr_node_cache_t;

/* Cache events (zkr_cache_event_t.type). */
typedef enum zkr_cache_event_type {
  ZKR_CACHE_INITIALIZED = 1, /* the first view: the node as it is, or absent */
  ZKR_CACHE_CREATED = 2,     /* the node exists now; it was absent */
  ZKR_CACHE_CHANGED = 3,     /* the same node (czxid), newer data (mzxid, version) */
  ZKR_CACHE_DELETED = 4,     /* the node is absent now */
  ZKR_CACHE_REPLACED = 5,    /* the node exists, but another one (czxid) than before:
                                deleted and created again */
  ZKR_CACHE_RESYNC_BEGIN = 6, /* the session expired: the view is being read again */
  ZKR_CACHE_RESYNC_END = 7,   /* ... done: the view is current again */
  /* children cache */
  ZKR_CACHE_ADDED = 8,        /* a child appeared (with its data, if cached) */
  ZKR_CACHE_UPDATED = 9,      /* a child's data changed (the same child: czxid) */
  ZKR_CACHE_REMOVED = 10,     /* a child is gone */
  ZKR_CACHE_PARENT_ABSENT = 11, /* the parent does not exist (any more): every child
                                   was REMOVED first; the cache waits for it */
  ZKR_CACHE_CHILDREN_MISSED = 12, /* children were created and deleted between two
                                     listings, unseen: missed says how many changes
                                     (the parent's cversion told) */
  ZKR_CACHE_STOPPED = 13, /* the cache stopped following: error says why
                            (ZKR_ELIMIT: its next watch would go over the
                            session's watch budget); its view is frozen */
  ZKR_CACHE_SETTLED = 14   /* group view with a settle period: no change for
                              that long since the last one */
} zkr_cache_event_type_t;

/* One event: the type and the view as of the event (for RESYNC_BEGIN and
 * RESYNC_END, the view held then). Everything in it is borrowed for the
 * duration of the callback. */
typedef struct zkr_cache_event {
  int type;         /* zkr_cache_event_type_t */
  const char *path; /* the node's path */
  int exists;       /* 1: data, len and stat describe the node; 0: absent */
  const char *data; /* the node's data, not NUL-terminated (NULL when absent or none) */
  int len;          /* its length; -1 when absent or the node has no data */
  struct Stat stat; /* czxid, mzxid, version, ...; zeroed when absent */
  int gap;          /* between RESYNC_BEGIN and RESYNC_END: changes between the
                       previous view and this one may have been missed */
  int missed;       /* changes known to have happened unseen: for CHANGED and
                       UPDATED the versions skipped (coalesced into this one);
                       for CHILDREN_MISSED, creates and deletes of children */
  int error;        /* STOPPED: the reason */
  int reserved[4];
} zkr_cache_event_t;

typedef void (*zkr_node_cache_listener_fn)(zkr_node_cache_t *c, const zkr_cache_event_t *ev,
                                           void *arg);

/* A cache of path on session s. It reads nothing until zkr_node_cache_start(). */
ZKR_API int zkr_node_cache_new(zkr_session_t *s, const char *path, zkr_node_cache_t **out);

/* Set (fn NULL: remove) the listener. Events run in callback context, one at a
 * time, in order. Set it before zkr_node_cache_start() to see INITIALIZED. */
ZKR_API int zkr_node_cache_set_listener(zkr_node_cache_t *c, zkr_node_cache_listener_fn fn,
                                        void *arg);

/* Start following the node (ZKR_EBUSY if started already). If the session is
 * not connected yet, the first read waits for it. */
ZKR_API int zkr_node_cache_start(zkr_node_cache_t *c);

/*
 * The current view: 0 when the node exists (*data a malloc'd copy, NUL-
 * terminated for convenience, the caller frees it; NULL with *len -1 when the
 * node has no data), ZNONODE when it is absent, ZKR_ENOTREADY before the first
 * view. data, len and stat may each be NULL.
 */
ZKR_API int zkr_node_cache_get(zkr_node_cache_t *c, char **data, int *len,
                               struct Stat *stat);

/*
 * Wait until the view differs from known (a stat from an earlier get, wait or
 * event: another czxid or mzxid; a zeroed stat means "absent"), or, with known
 * NULL, until there is a view at all; then return it as zkr_node_cache_get()
 * does. timeout_ms as poll(2); ZKR_ETIMEDOUT when it passes (nothing is
 * returned then: *data is NULL, *len -1, *stat untouched). ZKR_EDEADLK in
 * callback context, ZKR_ECLOSED once the cache or its session is freed,
 * ZKR_EBUSY if the cache was not started. For get and wait alike, *data is
 * NULL whenever no data is returned.
 */
ZKR_API int zkr_node_cache_wait(zkr_node_cache_t *c, const struct Stat *known,
                                int timeout_ms, char **data, int *len, struct Stat *stat);

/* Stop following and free the cache; no event runs after this returns.
 * Blocked waits end with ZKR_ECLOSED. NULL is a no-op. */
ZKR_API void zkr_node_cache_free(zkr_node_cache_t *c);

/* ---- children cache ---- */

typedef struct zkr_children_cache zkr_children_cache_t;

/* zkr_children_cache_new() flags. */
enum {
  ZKR_CHILDREN_DATA = 1 /* read and follow each child's data too (a watch per
                           child); without it, events carry names only */
};

/* One child in zkr_children_cache_list(). */
typedef struct zkr_cache_child {
  char *name;       /* the child's name (not its path) */
  char *data;       /* its data, NUL-terminated; NULL without data or ZKR_CHILDREN_DATA */
  int len;          /* data length, -1 when none */
  struct Stat stat; /* zeroed without ZKR_CHILDREN_DATA */
} zkr_cache_child_t;

typedef void (*zkr_children_cache_listener_fn)(zkr_children_cache_t *c,
                                               const zkr_cache_event_t *ev, void *arg);

/*
 * A cache of the children of path on session s (flags: 0 or ZKR_CHILDREN_DATA).
 * Events: ADDED for every child of the first listing, then INITIALIZED (path =
 * the parent, exists = whether it does); then ADDED, UPDATED (data mode),
 * REPLACED (data mode: a child deleted and created again), REMOVED, with
 * path = the child's path; CHILDREN_MISSED when children came and went between
 * two listings; PARENT_ABSENT when the parent is deleted (its children REMOVED
 * first), after which the cache waits for it to be created again; after an
 * expiry, RESYNC_BEGIN ... RESYNC_END around the difference. Read-only: it
 * never creates the parent. A child gone before its data was read is dropped
 * without an event. Its watches count against the session's watch budget
 * (zkr_session_set_watch_budget): the one that would go over stops the cache
 * (STOPPED, error ZKR_ELIMIT) and zkr_children_cache_list returns ZKR_ELIMIT.
 */
ZKR_API int zkr_children_cache_new(zkr_session_t *s, const char *path, int flags,
                                   zkr_children_cache_t **out);
ZKR_API int zkr_children_cache_set_listener(zkr_children_cache_t *c,
                                            zkr_children_cache_listener_fn fn, void *arg);
/* Start (ZKR_EBUSY if started already); the first listing waits for a connection. */
ZKR_API int zkr_children_cache_start(zkr_children_cache_t *c);
/* The children now, sorted by name, as a malloc'd array (free it with
 * zkr_cache_children_free): 0, ZNONODE when the parent is absent, ZKR_ENOTREADY
 * before INITIALIZED, the reason once it stopped (ZKR_ELIMIT). */
ZKR_API int zkr_children_cache_list(zkr_children_cache_t *c, zkr_cache_child_t **out,
                                    int *count);
ZKR_API void zkr_cache_children_free(zkr_cache_child_t *children, int count);
/* Stop and free; no event runs after this returns. NULL is a no-op. */
ZKR_API void zkr_children_cache_free(zkr_children_cache_t *c);

/* ---- tree cache ---- */

typedef struct zkr_tree_cache zkr_tree_cache_t;
typedef void (*zkr_tree_cache_listener_fn)(zkr_tree_cache_t *t, const zkr_cache_event_t *ev,
                                           void *arg);

/*
 * A cache of path and its descendants down to max_depth levels (0: the node
 * alone, 1: and its children, ...; at most 64), with their data: a node cache
 * on the root and a children cache on every node above the limit. Events carry
 * the node's path: for the root CREATED / CHANGED / DELETED / REPLACED, for the
 * descendants ADDED / UPDATED / REPLACED / REMOVED (a subtree that goes is
 * REMOVED deepest first) and CHILDREN_MISSED; INITIALIZED once everything
 * present at the start is loaded; RESYNC_BEGIN ... RESYNC_END after an expiry;
 * STOPPED when the session's watch budget is reached (ZKR_ELIMIT): the tree
 * stops following. Read-only.
 */
ZKR_API int zkr_tree_cache_new(zkr_session_t *s, const char *path, int max_depth,
                               zkr_tree_cache_t **out);
ZKR_API int zkr_tree_cache_set_listener(zkr_tree_cache_t *t, zkr_tree_cache_listener_fn fn,
                                        void *arg);
ZKR_API int zkr_tree_cache_start(zkr_tree_cache_t *t);
/* Stop and free; no event runs after this returns (also from its own listener). */
ZKR_API void zkr_tree_cache_free(zkr_tree_cache_t *t);

/* A static name for an event type ("CHANGED", ...). */
ZKR_API const char *zkr_cache_event_name(int type);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_CACHE_H */
