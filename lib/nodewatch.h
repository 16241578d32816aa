/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/nodewatch.h - follow one znode: its data and stat, or its absence. Not
 * installed.
 *
 * The watcher reads the node with a data watch (an exists watch while it is
 * absent) and reads again on every event, so it always ends on the node's
 * latest state. Identity is the node's czxid: a node deleted and created again
 * is REPLACED even when both happened while we were disconnected (the C client
 * reports that as a mere change, and versions restart at 0). After a reconnect,
 * or on a new session, it reads and watches again by itself. It never creates
 * the node. Values in between are coalesced, as with any ZooKeeper watch.
 *
 * The watcher lives inside a recipe object, under its mutex: the recipe
 * forwards its session events (zkr__nodewatch_on_session).
 */
#ifndef ZKR_NODEWATCH_H
#define ZKR_NODEWATCH_H

#include "object.h"

typedef struct zkr__nodewatch zkr__nodewatch_t;

enum {
  ZKR__NODE_CREATED = 1, /* exists now; absent (or not known) before */
  ZKR__NODE_CHANGED,     /* the same node (czxid), a newer version */
  ZKR__NODE_DELETED,     /* absent now; existed before */
  ZKR__NODE_REPLACED     /* exists, but another incarnation (czxid) than before */
};

typedef struct zkr__node_view {
  int kind;                /* ZKR__NODE_* */
  const char *data;        /* node data (not NUL-terminated); NULL when absent */
  int len;                 /* -1 when the node has no data */
  const struct Stat *stat; /* NULL when absent */
} zkr__node_view_t;

/* A news of the node, o->mu held. */
typedef void (*zkr__nodewatch_fn)(zkr__nodewatch_t *w, const zkr__node_view_t *v,
                                  zkr__fx_t *fx);
/* A read was answered: the state as of now is known (and was reported, if it
 * was news). o->mu held. */
typedef void (*zkr__nodewatch_settled_fn)(zkr__nodewatch_t *w, zkr__fx_t *fx);

struct zkr__nodewatch {
  zkr__obj_t *o;
  const char *path; /* borrowed from the recipe */
  zkr__nodewatch_fn fn;
  zkr__nodewatch_settled_fn settled; /* may be NULL; set after init */
  /* (o->mu) */
  bool on;    /* following */
  bool armed; /* a read with its watch is set or in flight */
  uint32_t tok;
  bool known; /* the fields below describe the last news */
  bool exists;
  int64_t czxid;
  int32_t version;
};

ZKR__HIDDEN void zkr__nodewatch_init(zkr__nodewatch_t *w, zkr__obj_t *o, const char *path,
                                     zkr__nodewatch_fn fn);
/* Follow (again: the first news reports the node as it is then), or stop:
 * a watch still set fires into nothing. */
ZKR__HIDDEN void zkr__nodewatch_start(zkr__nodewatch_t *w);
ZKR__HIDDEN void zkr__nodewatch_stop(zkr__nodewatch_t *w);
ZKR__HIDDEN void zkr__nodewatch_on_session(zkr__nodewatch_t *w, int event);

#endif /* ZKR_NODEWATCH_H */
