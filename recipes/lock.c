/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exclusive lock.
 *
 * Znodes: under the lock path P, each acquire attempt creates
 *   P/_c_<uuid>-lock-<seq>   EPHEMERAL_SEQUENTIAL, data = contender data
 * (Curator InterProcessMutex / go-zookeeper format). Missing parents are created
 * as CONTAINER nodes (and again if the server reaped them meanwhile).
 *
 * Algorithm:
 *  1. create2 the node and, pipelined on the same session, getChildren(P): the
 *     server answers in order, so the listing already contains our node and an
 *     uncontended acquire costs one write round trip.
 *  2. Order the contenders of every known format by int32 sequence (wrap-aware);
 *     unknown children are ignored and reported to the log. Lowest holds.
 *  3. Otherwise getData-with-watch the predecessor only (no herd). getData, not
 *     exists: on a vanished node exists would leave a creation watch behind.
 *     A predecessor we may not read (ZNOAUTH: a creator-only ACL) cannot be
 *     watched at all: the server sends a node's events only to clients that may
 *     read it. Then we list the parent with a child watch instead (the parent's
 *     ACL decides there) and list again on each child event until it goes: a
 *     herd, but only behind such a node.
 *     If the predecessor is already gone, list again: the place in the queue is
 *     kept. When the predecessor goes and it was the lowest node of our last
 *     listing, nobody can be ahead any more (sequences only grow), so we hold
 *     without listing again. A predecessor's data change (an elected leader
 *     marks its node once, see election.c) makes us list again to learn that it
 *     is now the lowest: on the event, or, when the change came before the watch
 *     was set, on the version the watch's reply shows.
 *  4. Release is one delete (handed to the janitor, which retries across
 *     connection loss while the session lives).
 *  Ambiguous create (connection loss / timeout): list P, look for our GUID, adopt
 *  the node only if its ephemeralOwner is our session, else delete it and create
 *  anew. Abandoned attempts (timeout, cancel, free) always hand their node, known
 *  or only suspected (GUID), to the janitor.
 *
 * Fencing token: czxid of our node, from the create2 reply.
 *
 * Invariants: state HELD <=> holds > 0. Replies carry the token of the request
 * that sent them (create_tok/list_tok/watch_tok); a reply whose token is not the
 * current one is stale and only cleans up after itself.
 *
 * Locking: l->mu guards every field below `mu`; handlers run in callback
 * context (dispatch mutex, then l->mu). User callbacks and listener
 * events are collected while l->mu is held and delivered after it is released.
 */
#include "internal.h"
#include "zkrecipes/lock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DATA          1000000 /* under the server's 1 MiB request limit */
#define MAX_PARENT_ROUNDS 8
#define NODE_PATH_MAX     (ZKR__PATH_MAX + 64)

enum { ST_IDLE, ST_ACQUIRING, ST_HELD };
enum {
  OP_PARENT,
  OP_CREATE,
  OP_LIST,
  OP_WATCHGET,
  OP_WATCH,
  OP_OWNER,
  OP_VERIFY,
  OP_CHILDWATCH /* the child watch of a listing behind an unreadable predecessor */
};

struct zkr_lock {
  pthread_mutex_t mu;
  _Atomic int refs; /* user + in-flight requests, watches, timers */
  zkr_session_t *s; /* holds a reference */
  char *path;
  unsigned listener_id; /* our session listener */
  int latch;            /* election: "-latch-" nodes, every known format counts */

  /* (mu) */
  int freed;
  int state; /* ST_* */
  int holds;
  char *data;
  int data_len;
  struct ACL_vector acl; /* deep copy; count 0 = the session's */
  zkr_lock_listener_fn lfn;
  void *larg;
  void (*wfn)(void *arg); /* zkr__lock_set_waiting_fn */
  void *warg;
  int suspect;          /* SUSPECT told, RECOVERED/LOST not yet */
  struct pend *pending; /* callbacks owed (see pend_t) */

  /* the pending acquire */
  zkr_lock_cb acb;
  void *aarg;
  int64_t deadline; /* -1: none */
  uint64_t timer;
  int try_once;
  char guid[37];
  uint64_t gen; /* session generation of this attempt */
  uint32_t tok; /* last token handed out */
  uint32_t create_tok, list_tok, watch_tok, owner_tok;
  uint32_t verify_tok; /* held across a reconnect: checking the node is ours */
  int parent_rounds;
  int parent_err;      /* a parent create failed with this */
  int have_node;       /* node_path is ours and exists (as far as we know) */
  int ambiguous;       /* our create may have happened: recover by GUID */
  int recovering;      /* the current listing is a GUID search */
  int wait_reconnect;  /* resume when the connection is back */
  int wait_session;    /* restart when a new session is there */
  char *pred;          /* the predecessor we watch (malloc'd: a server-given name
                          has no length limit of ours), NULL if none */
  int pred_lowest;     /* ... was the lowest of our last listing */
  int pred_unreadable; /* ... refused our read (ZNOAUTH): we wait with child watches */
  int32_t pred_ver;    /* its data version our last listing is known to follow */
  int pred_ver_next;   /* a listing after its data changed: adopt the next version */
  int keep_watch;      /* listing again with the watch on it still set */
  int unknown_seen;    /* unknown children in the last listing (for the log) */

  /* our node; the guard op points into node_path, so it is only rewritten by a
   * new attempt */
  char node_path[NODE_PATH_MAX];
  const char *node_name;
  int32_t seq;
  int64_t czxid;
  int64_t sid;

  zkr__lock_stats_t stats;
};

/* A request or watch in flight for a lock. */
typedef struct lk_op {
  zkr_lock_t *l; /* holds a reference */
  int kind;
  uint32_t tok;
  uint64_t gen;
  char guid[37];
} lk_op_t;

/* User-visible effects gathered under l->mu, delivered after. */
typedef struct notes {
  struct {
    zkr_lock_cb cb;
    void *arg;
    int rc;
  } done[2];
  int ndone;
  int events[4];
  int nevents;
  int waiting; /* the acquire now waits (a predecessor, or the connection) */
} notes_t;

static void lock_ref(zkr_lock_t *l) {
  atomic_fetch_add(&l->refs, 1);
}

static void lock_unref(zkr_lock_t *l) {
  if (atomic_fetch_sub(&l->refs, 1) != 1)
    return;
  zkr__session_unref(l->s);
  pthread_mutex_destroy(&l->mu);
  deallocate_ACL_vector(&l->acl);
  free(l->pred);
  free(l->data);
  free(l->path);
  free(l);
}

static void note_done(notes_t *n, zkr_lock_cb cb, void *arg, int rc) {
  if (cb && n->ndone < 2) {
    n->done[n->ndone].cb = cb;
    n->done[n->ndone].arg = arg;
    n->done[n->ndone].rc = rc;
    n->ndone++;
  }
}

static void note_event(zkr_lock_t *l, notes_t *n, int ev) {
  if (l->lfn && n->nevents < 4)
    n->events[n->nevents++] = ev;
}

/* With l->mu released, in callback context. */
static void deliver(zkr_lock_t *l, notes_t *n) {
  zkr_lock_listener_fn lfn;
  void *larg, *warg;
  void (*wfn)(void *);

  pthread_mutex_lock(&l->mu);
  lfn = l->lfn;
  larg = l->larg;
  wfn = l->wfn;
  warg = l->warg;
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < n->nevents; i++)
    if (lfn)
      lfn(l, n->events[i], larg);
  if (n->waiting && wfn)
    wfn(warg);
  for (int i = 0; i < n->ndone; i++)
    n->done[i].cb(l, n->done[i].rc, n->done[i].arg);
}

static const struct ACL_vector *lock_acl(zkr_lock_t *l) {
  return l->acl.count ? &l->acl : zkr_session_acl(l->s);
}

/* ---- sending (l->mu held) ---- */

static lk_op_t *op_new(zkr_lock_t *l, int kind, uint32_t tok) {
  lk_op_t *op = calloc(1, sizeof(*op));
  if (!op)
    return NULL;
  op->l = l;
  op->kind = kind;
  op->tok = tok;
  op->gen = l->gen;
  memcpy(op->guid, l->guid, sizeof(op->guid));
  lock_ref(l);
  return op;
}

static void op_free(lk_op_t *op) {
  zkr_lock_t *l = op->l;
  free(op);
  lock_unref(l);
}

static void on_reply(void *ctx, int rc, const zkr__reply_t *r);
static void on_watch(void *ctx, int rc, const zkr__reply_t *r);

/* Begin a call for op; on a refused call the op is freed. */
static int call(zkr_lock_t *l, lk_op_t *op, int kind, zkr__call_t *c) {
  int rc;
  if (!op)
    return ZKR_ENOMEM;
  rc = zkr__call_begin(l->s, l->gen, kind, on_reply, op, c);
  if (rc != 0)
    op_free(op);
  return rc;
}

static int end(zkr__call_t *c, lk_op_t *op, int zrc) {
  int rc = zkr__call_end(c, zrc);
  if (rc != 0)
    op_free(op);
  return rc;
}

static int send_parents(zkr_lock_t *l) {
  char buf[NODE_PATH_MAX];
  size_t n = strlen(l->path);

  /* Every ancestor, outermost first; the server applies them in order. */
  for (size_t i = 1; i <= n; i++) {
    if (i == n || l->path[i] == '/') {
      zkr__call_t c;
      lk_op_t *op = op_new(l, OP_PARENT, l->create_tok);
      int rc;
      memcpy(buf, l->path, i);
      buf[i] = '\0';
      if ((rc = call(l, op, ZKR__K_CREATE, &c)) != 0)
        return rc;
      rc = end(&c, op,
               zoo_acreate(c.zh, buf, NULL, -1, lock_acl(l), ZOO_CONTAINER,
                           zkr__cb_string, c.op));
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

static int send_list(zkr_lock_t *l, int recovering) {
  zkr__call_t c;
  lk_op_t *op;
  int rc;

  l->list_tok = ++l->tok;
  l->recovering = recovering;
  op = op_new(l, OP_LIST, l->list_tok);
  if ((rc = call(l, op, ZKR__K_CHILDREN, &c)) != 0)
    return rc;
  l->stats.lists++;
  return end(&c, op, zoo_aget_children(c.zh, l->path, 0, zkr__cb_strings, c.op));
}

/* A listing that also sets a child watch on P, standing in for the watch on an
 * unreadable predecessor (watch_tok names it). */
static int send_list_watched(zkr_lock_t *l) {
  zkr__call_t c;
  lk_op_t *op, *wop;
  int rc;

  l->list_tok = ++l->tok;
  l->watch_tok = l->list_tok;
  l->recovering = 0;
  op = op_new(l, OP_LIST, l->list_tok);
  wop = op_new(l, OP_CHILDWATCH, l->watch_tok);
  if (!wop) {
    if (op)
      op_free(op);
    return ZKR_ENOMEM;
  }
  if ((rc = call(l, op, ZKR__K_CHILDREN, &c)) != 0) {
    op_free(wop);
    return rc;
  }
  if ((rc = zkr__call_watch(&c, on_watch, wop)) != 0) {
    op_free(wop);
    return end(&c, op, rc);
  }
  l->stats.lists++;
  l->stats.watches++;
  rc = end(
      &c, op,
      zoo_awget_children(c.zh, l->path, zkr__watcher, c.watch, zkr__cb_strings, c.op));
  if (rc != 0)
    op_free(wop);
  return rc;
}

/* create2 our node, then (pipelined) list the parent. */
static int send_create(zkr_lock_t *l, int with_parents) {
  char prefix[NODE_PATH_MAX];
  zkr__call_t c;
  lk_op_t *op;
  int rc;

  l->create_tok = ++l->tok;
  l->parent_err = 0;
  if (with_parents && (rc = send_parents(l)) != 0)
    return rc;
  snprintf(prefix, sizeof(prefix), "%s/_c_%s-%s-", l->path, l->guid,
           l->latch ? "latch" : "lock");
  op = op_new(l, OP_CREATE, l->create_tok);
  if ((rc = call(l, op, ZKR__K_CREATE, &c)) != 0)
    return rc;
  rc = end(&c, op,
           zoo_acreate2(c.zh, prefix, l->data, l->data_len, lock_acl(l),
                        ZOO_EPHEMERAL_SEQUENTIAL, zkr__cb_string_stat, c.op));
  if (rc != 0)
    return rc;
  return send_list(l, 0);
}

static int send_watch(zkr_lock_t *l) {
  char *p = zkr__path_join(l->path, l->pred);
  zkr__call_t c;
  lk_op_t *op, *wop;
  int rc;

  if (!p)
    return ZKR_ENOMEM;
  l->watch_tok = ++l->tok;
  op = op_new(l, OP_WATCHGET, l->watch_tok);
  wop = op_new(l, OP_WATCH, l->watch_tok);
  if (!wop) {
    if (op)
      op_free(op);
    free(p);
    return ZKR_ENOMEM;
  }
  if ((rc = call(l, op, ZKR__K_GET, &c)) != 0) {
    op_free(wop);
    free(p);
    return rc;
  }
  if ((rc = zkr__call_watch(&c, on_watch, wop)) != 0) {
    op_free(wop);
    free(p);
    return end(&c, op, rc);
  }
  l->stats.watches++;
  rc = end(&c, op, zoo_awget(c.zh, p, zkr__watcher, c.watch, zkr__cb_data, c.op));
  if (rc != 0)
    op_free(wop); /* the call was refused: the watch will never run */
  free(p);
  return rc;
}

/* Held, after a reconnect: is our node still there, and ours? */
static int send_verify(zkr_lock_t *l) {
  zkr__call_t c;
  lk_op_t *op;
  int rc;

  l->verify_tok = ++l->tok;
  op = op_new(l, OP_VERIFY, l->verify_tok);
  if ((rc = call(l, op, ZKR__K_EXISTS, &c)) != 0)
    return rc;
  return end(&c, op, zoo_aexists(c.zh, l->node_path, 0, zkr__cb_stat, c.op));
}

static int send_owner_check(zkr_lock_t *l, const char *child) {
  char p[NODE_PATH_MAX];
  zkr__call_t c;
  lk_op_t *op;
  int rc;

  snprintf(p, sizeof(p), "%s/%s", l->path, child);
  l->owner_tok = ++l->tok;
  snprintf(l->node_path, sizeof(l->node_path), "%s", p);
  l->node_name = l->node_path + strlen(l->path) + 1;
  op = op_new(l, OP_OWNER, l->owner_tok);
  if ((rc = call(l, op, ZKR__K_EXISTS, &c)) != 0)
    return rc;
  return end(&c, op, zoo_aexists(c.zh, p, 0, zkr__cb_stat, c.op));
}

/* ---- state changes (l->mu held) ---- */

static void reset_attempt(zkr_lock_t *l) {
  l->create_tok = l->list_tok = l->watch_tok = l->owner_tok = 0;
  l->have_node = l->ambiguous = l->recovering = 0;
  l->wait_reconnect = l->wait_session = 0;
  free(l->pred);
  l->pred = NULL;
  l->keep_watch = 0;
}

static void cancel_timer(zkr_lock_t *l) {
  if (l->timer && zkr__timer_cancel(l->timer))
    lock_unref(l); /* the timer's reference */
  l->timer = 0;
}

static void grant(zkr_lock_t *l, notes_t *n) {
  l->state = ST_HELD;
  l->holds = 1;
  l->stats.grants++;
  note_done(n, l->acb, l->aarg, 0);
  l->acb = NULL;
  reset_attempt(l);
  cancel_timer(l);
}

/* End a pending acquire with rc, handing whatever node it has or may have to the
 * janitor. A create still in flight cleans up after itself (its token is stale). */
static void abandon(zkr_lock_t *l, int rc, notes_t *n) {
  if (l->have_node) {
    zkr__janitor_delete(l->s, l->gen, l->node_path, NULL, NULL);
  } else if (l->ambiguous) {
    zkr__janitor_delete_guid(l->s, l->gen, l->path, l->guid);
  }
  reset_attempt(l);
  cancel_timer(l);
  l->state = ST_IDLE;
  note_done(n, l->acb, l->aarg, rc);
  l->acb = NULL;
}

static int start_attempt(zkr_lock_t *l);

/* The connection is back: redo the step that was interrupted. */
static int resume(zkr_lock_t *l) {
  l->wait_reconnect = 0;
  l->keep_watch = 0; /* set the watch again after the listing */
  if (l->ambiguous)
    return send_list(l, 1); /* look for our GUID */
  if (l->have_node)
    return send_list(l, 0);
  return send_create(l, 0);
}

/* A request could not be made or failed for a reason that is not about the
 * lock: decide whether to wait, retry or give up. */
static void trouble(zkr_lock_t *l, int rc, notes_t *n) {
  switch (rc) {
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
    if (l->try_once) {
      abandon(l, rc, n);
    } else if (zkr_session_state(l->s) == ZKR_STATE_CONNECTED) {
      /* Events are dispatched in order with replies, so CONNECTED here means the
       * reconnect was already announced: go on now. */
      if ((rc = resume(l)) == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
        l->wait_reconnect = 1; /* refused at once: wait for the next RECONNECTED */
        n->waiting = 1;
      } else if (rc != 0) {
        trouble(l, rc, n);
      }
    } else {
      l->wait_reconnect = 1;
      n->waiting = 1;
    }
    break;
  case ZSESSIONEXPIRED:
  case ZINVALIDSTATE:
    /* The session is gone or being replaced: whatever we had is gone with it. */
    if (l->try_once) {
      abandon(l, rc, n);
    } else {
      reset_attempt(l);
      l->wait_session = 1;
      if (zkr__session_gen(l->s) != 0 && zkr__session_gen(l->s) != l->gen &&
          zkr_session_state(l->s) == ZKR_STATE_CONNECTED) {
        l->wait_session = 0;
        if ((rc = start_attempt(l)) != 0)
          abandon(l, rc, n);
      } else {
        n->waiting = 1;
      }
    }
    break;
  case ZCLOSING:
  case ZKR_ECLOSED: abandon(l, ZKR_ECLOSED, n); break;
  default: abandon(l, rc, n);
  }
}

static int start_attempt(zkr_lock_t *l) {
  int rc;
  reset_attempt(l);
  l->gen = zkr__session_gen(l->s);
  l->parent_rounds = 0;
  if (l->gen == 0) {
    int st = zkr_session_state(l->s);
    if (st == ZKR_STATE_CLOSED)
      return ZKR_ECLOSED;
    if (st != ZKR_STATE_CONNECTING)
      return ZINVALIDSTATE; /* nobody is connecting this session */
    l->wait_session = 1;
    return 0;
  }
  if ((rc = zkr__guid(l->guid)) != 0)
    return rc;
  return send_create(l, 0);
}

/* ---- replies ---- */

static int32_t node_seq(const char *name) {
  zkr__child_t c;
  zkr__child_parse(name, &c);
  return c.seq;
}

static void log_unknown(zkr_lock_t *l, const zkr__child_t *c, int n, int k) {
  if (n - k != l->unknown_seen) {
    l->unknown_seen = n - k;
    if (n > k)
      zkr__log(ZKR_LOG_WARN, "lock %s: %d child(ren) in no known format ignored, e.g. %s",
               l->path, n - k, c[k].name);
  }
}

static void on_listing(zkr_lock_t *l, const struct String_vector *v, int watched,
                       notes_t *n) {
  zkr__child_t *c;
  int k, me = -1, rc, keep = l->keep_watch;

  l->keep_watch = 0;

  if (l->recovering) {
    /* GUID search after an ambiguous create. */
    for (int i = 0; v && i < v->count; i++) {
      if (zkr__name_has_guid(v->data[i], l->guid)) {
        if ((rc = send_owner_check(l, v->data[i])) != 0)
          trouble(l, rc, n);
        return;
      }
    }
    l->ambiguous = 0; /* the create never happened: make it again */
    l->recovering = 0;
    if ((rc = zkr__guid(l->guid)) != 0 || (rc = send_create(l, 0)) != 0)
      trouble(l, rc, n);
    return;
  }
  if (!l->have_node)
    return; /* the pipelined listing of a create that failed: nothing to order */
  if (zkr__children_order(v, l->latch, &c, &k) != 0) {
    trouble(l, ZKR_ENOMEM, n);
    return;
  }
  log_unknown(l, c, v ? v->count : 0, k);
  for (int i = 0; i < k; i++)
    if (strcmp(c[i].name, l->node_name) == 0)
      me = i;
  if (me < 0) {
    /* Our node is gone (deleted by someone, or with its session): queue again. */
    free(c);
    l->have_node = 0;
    if ((rc = start_attempt(l)) != 0)
      abandon(l, rc, n);
    return;
  }
  if (me == 0) {
    free(c);
    grant(l, n);
    return;
  }
  if (l->try_once) {
    free(c);
    abandon(l, ZKR_ETIMEDOUT, n);
    return;
  }
  if (!l->pred || strcmp(l->pred, c[me - 1].name) != 0) {
    char *pred = strdup(c[me - 1].name);
    if (!pred) {
      free(c);
      trouble(l, ZKR_ENOMEM, n);
      return;
    }
    free(l->pred);
    l->pred = pred;
    l->pred_ver = 0; /* nodes are made with version 0 */
    l->pred_ver_next = 0;
    l->pred_unreadable = 0;
    keep = 0;
  }
  l->pred_lowest = me == 1;
  free(c);
  if (l->pred_unreadable) {
    /* Still there: a listing with a child watch was just answered (then wait for
     * its event), or one must be made. */
    if (!watched && (rc = send_list_watched(l)) != 0)
      trouble(l, rc, n);
    return;
  }
  n->waiting = 1;
  if (keep && l->watch_tok != 0)
    return; /* the same predecessor, still watched */
  if ((rc = send_watch(l)) != 0)
    trouble(l, rc, n);
}

/* The watched predecessor is gone. */
static void pred_gone(zkr_lock_t *l, notes_t *n) {
  int rc;
  l->watch_tok = 0;
  if (l->pred_lowest) {
    l->stats.grants_without_list++;
    grant(l, n);
  } else if ((rc = send_list(l, 0)) != 0) {
    trouble(l, rc, n);
  }
}

/* A create reply that no longer matters: remove what it made. */
static void stale_create(zkr_lock_t *l, lk_op_t *op, int rc, const zkr__reply_t *r) {
  if (rc == ZOK && r->path) {
    char p[NODE_PATH_MAX];
    snprintf(p, sizeof(p), "%s", r->path);
    zkr__janitor_delete(l->s, op->gen, p, NULL, NULL);
  } else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
    zkr__janitor_delete_guid(l->s, op->gen, l->path, op->guid);
  }
}

static void on_created(zkr_lock_t *l, int rc, const zkr__reply_t *r, notes_t *n) {
  l->create_tok = 0;
  switch (rc) {
  case ZOK:
    snprintf(l->node_path, sizeof(l->node_path), "%s", r->path);
    l->node_name = l->node_path + strlen(l->path) + 1;
    l->seq = node_seq(l->node_name);
    l->czxid = r->stat ? r->stat->czxid : 0;
    l->sid = r->stat ? r->stat->ephemeralOwner : 0;
    l->have_node = 1;
    /* The pipelined listing comes next. */
    break;
  case ZNONODE:
    /* Parent missing (never made, or a reaped container): make it and retry. */
    l->list_tok = 0;
    if (l->parent_err) {
      abandon(l, l->parent_err, n);
    } else if (++l->parent_rounds > MAX_PARENT_ROUNDS) {
      abandon(l, ZNONODE, n);
    } else if ((rc = send_create(l, 1)) != 0) {
      trouble(l, rc, n);
    }
    break;
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
    l->list_tok = 0;
    l->ambiguous = 1;
    l->stats.recoveries++;
    trouble(l, rc, n);
    break;
  default: l->list_tok = 0; trouble(l, rc, n);
  }
}

static void on_owner(zkr_lock_t *l, int rc, const zkr__reply_t *r, notes_t *n) {
  l->owner_tok = 0;
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(l->s) &&
      r->stat->ephemeralOwner != 0) {
    /* Our create did happen, on this session: adopt the node. */
    l->ambiguous = 0;
    l->recovering = 0;
    l->have_node = 1;
    l->czxid = r->stat->czxid;
    l->sid = r->stat->ephemeralOwner;
    l->seq = node_seq(l->node_name);
    if ((rc = send_list(l, 0)) != 0)
      trouble(l, rc, n);
    return;
  }
  if (rc == ZOK || rc == ZNONODE) {
    /* Not ours (another session's, e.g. before an expiry) or gone: remove it if
     * it is there and start over with a new GUID. */
    if (rc == ZOK)
      zkr__janitor_delete(l->s, l->gen, l->node_path, NULL, NULL);
    l->ambiguous = 0;
    l->recovering = 0;
    if ((rc = zkr__guid(l->guid)) != 0 || (rc = send_create(l, 0)) != 0)
      trouble(l, rc, n);
    return;
  }
  trouble(l, rc, n);
}

static void on_reply(void *ctx, int rc, const zkr__reply_t *r) {
  lk_op_t *op = ctx;
  zkr_lock_t *l = op->l;
  notes_t n = {0};

  pthread_mutex_lock(&l->mu);
  switch (op->kind) {
  case OP_PARENT:
    if (op->tok == l->create_tok && rc != ZOK && rc != ZNODEEXISTS && !l->parent_err &&
        rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
      l->parent_err = rc;
    break;
  case OP_CREATE:
    if (l->state != ST_ACQUIRING || op->tok != l->create_tok)
      stale_create(l, op, rc, r);
    else
      on_created(l, rc, r, &n);
    break;
  case OP_LIST:
    if (l->state == ST_ACQUIRING && op->tok == l->list_tok) {
      l->list_tok = 0;
      if (rc == ZOK || rc == ZNONODE) /* no parent: an empty listing */
        on_listing(l, rc == ZOK ? r->strings : NULL, op->tok == l->watch_tok, &n);
      else if (l->have_node || l->recovering)
        trouble(l, rc, &n);
      /* else: the pipelined listing of a create that failed; its reply decides */
    }
    break;
  case OP_WATCHGET:
    if (l->state == ST_ACQUIRING && op->tok == l->watch_tok) {
      if (rc == ZNONODE) {
        l->stats.pred_vanished++;
        pred_gone(l, &n);
      } else if (rc == ZNOAUTH) {
        /* We may not read it, and the server sends its events only to those who
         * may: wait on P's children instead. */
        int src;
        l->pred_unreadable = 1;
        if ((src = send_list_watched(l)) != 0)
          trouble(l, src, &n);
      } else if (rc != ZOK) {
        l->watch_tok = 0;
        trouble(l, rc, &n);
      } else if (r->stat && l->pred_ver_next) {
        l->pred_ver = r->stat->version;
        l->pred_ver_next = 0;
      } else if (r->stat && !l->pred_lowest && r->stat->version > l->pred_ver) {
        /* Its data changed after our listing and before the watch was set, so
         * no event will tell: an elected leader marks its node that way once.
         * List again (the watch stays set) to learn whether it leads now. */
        int src;
        l->pred_ver = r->stat->version;
        l->stats.pred_changed_unseen++;
        l->keep_watch = 1;
        if ((src = send_list(l, 0)) != 0)
          trouble(l, src, &n);
      }
    }
    break;
  case OP_OWNER:
    if (l->state == ST_ACQUIRING && op->tok == l->owner_tok)
      on_owner(l, rc, r, &n);
    break;
  case OP_VERIFY:
    if (l->state == ST_HELD && op->tok == l->verify_tok) {
      l->verify_tok = 0;
      if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(l->s) &&
          r->stat->czxid == l->czxid) {
        l->suspect = 0;
        note_event(l, &n, ZKR_LOCK_RECOVERED);
      } else if (rc == ZOK || rc == ZNONODE) {
        /* Gone or not ours any more (deleted behind our back): not held. */
        l->stats.verify_failed++;
        l->state = ST_IDLE;
        l->holds = 0;
        l->suspect = 0;
        note_event(l, &n, ZKR_LOCK_LOST);
      }
      /* Anything else (connection lost again): still suspect. */
    }
    break;
  }
  pthread_mutex_unlock(&l->mu);
  deliver(l, &n);
  op_free(op);
}

static void on_watch(void *ctx, int rc, const zkr__reply_t *r) {
  lk_op_t *op = ctx;
  zkr_lock_t *l = op->l;
  notes_t n = {0};

  pthread_mutex_lock(&l->mu);
  if (rc == ZOK && l->state == ST_ACQUIRING && op->tok == l->watch_tok &&
      r->type != ZOO_NOTWATCHING_EVENT) {
    l->stats.notifications++;
    l->watch_tok = 0;
    if (op->kind == OP_CHILDWATCH) {
      /* Behind an unreadable predecessor: some child came or went. */
      int src = send_list_watched(l);
      if (src != 0)
        trouble(l, src, &n);
    } else if (r->type == ZOO_DELETED_EVENT) {
      pred_gone(l, &n);
    } else {
      /* Data changed: the node is still there; look again and re-arm. */
      int src;
      l->pred_ver_next = 1;
      src = send_list(l, 0);
      if (src != 0)
        trouble(l, src, &n);
    }
  } else if (rc == ZOK && r->type != ZOO_NOTWATCHING_EVENT) {
    l->stats.notifications++;
  }
  pthread_mutex_unlock(&l->mu);
  deliver(l, &n);
  op_free(op);
}

static void on_deadline(void *ctx, int fired) {
  zkr_lock_t *l = ctx;
  notes_t n = {0};

  pthread_mutex_lock(&l->mu);
  if (fired && l->state == ST_ACQUIRING && l->deadline >= 0 &&
      zkr__now_ms() >= l->deadline) {
    l->timer = 0;
    abandon(l, ZKR_ETIMEDOUT, &n);
  }
  pthread_mutex_unlock(&l->mu);
  deliver(l, &n);
  lock_unref(l); /* the timer's reference */
}

static void on_session(zkr_session_t *s, int event, void *arg) {
  zkr_lock_t *l = arg;
  notes_t n = {0};
  int rc;

  (void)s;
  pthread_mutex_lock(&l->mu);
  if (l->freed) {
    pthread_mutex_unlock(&l->mu);
    return;
  }
  switch (event) {
  case ZKR_SESSION_SUSPENDED:
    if (l->state != ST_IDLE && !l->suspect) {
      l->suspect = 1;
      note_event(l, &n, ZKR_LOCK_SUSPECT);
    }
    break;
  case ZKR_SESSION_RECONNECTED:
    if (l->suspect && l->state == ST_HELD) {
      /* Never trust the old state after a disconnection: RECOVERED only once the
       * node is seen to exist and to belong to this session. */
      if (send_verify(l) != 0)
        l->verify_tok = 0; /* still suspect; the next reconnect tries again */
    } else if (l->suspect) {
      l->suspect = 0;
      if (l->state != ST_IDLE)
        note_event(l, &n, ZKR_LOCK_RECOVERED);
    }
    if (l->state == ST_ACQUIRING && l->wait_reconnect && (rc = resume(l)) != 0)
      trouble(l, rc, &n);
    break;
  case ZKR_SESSION_LOST:
    l->suspect = 0;
    if (l->state == ST_HELD) {
      l->state = ST_IDLE;
      l->holds = 0;
      note_event(l, &n, ZKR_LOCK_LOST);
    } else if (l->state == ST_ACQUIRING) {
      note_event(l, &n, ZKR_LOCK_LOST);
      if (l->try_once) {
        abandon(l, ZSESSIONEXPIRED, &n);
      } else {
        reset_attempt(l); /* the node went with the session */
        l->wait_session = 1;
      }
    }
    break;
  case ZKR_SESSION_CLOSED:
    /* The session was freed under us: the node goes with it. */
    l->suspect = 0;
    if (l->state == ST_HELD) {
      l->state = ST_IDLE;
      l->holds = 0;
      note_event(l, &n, ZKR_LOCK_LOST);
    } else if (l->state == ST_ACQUIRING) {
      abandon(l, ZKR_ECLOSED, &n);
    }
    break;
  case ZKR_SESSION_CONNECT_FAILED:
  case ZKR_SESSION_AUTH_FAILED:
    /* Nothing will connect this session (until the user connects it again, or
     * ever: refused credentials): what waited for it ends. */
    if (l->state == ST_ACQUIRING)
      abandon(l, event == ZKR_SESSION_AUTH_FAILED ? ZAUTHFAILED : ZINVALIDSTATE, &n);
    break;
  case ZKR_SESSION_CONNECTED:
    if (l->state == ST_ACQUIRING && l->wait_session) {
      l->wait_session = 0;
      if ((rc = start_attempt(l)) != 0)
        abandon(l, rc, &n);
    }
    break;
  }
  pthread_mutex_unlock(&l->mu);
  deliver(l, &n);
}

/* ---- public ---- */

static int default_data(char **out, int *len) {
  char host[256], buf[300];
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "unknown");
  host[sizeof(host) - 1] = '\0';
  *len = snprintf(buf, sizeof(buf), "%s:%ld", host, (long)getpid());
  if (*len < 0 || *len >= (int)sizeof(buf))
    *len = (int)strlen(buf);
  return (*out = strdup(buf)) ? 0 : ZKR_ENOMEM;
}

int zkr_lock_new(zkr_session_t *s, const char *path, zkr_lock_t **out) {
  return zkr__lock_new_kind(s, path, 0, out);
}

int zkr__lock_new_kind(zkr_session_t *s, const char *path, int latch, zkr_lock_t **out) {
  zkr_lock_t *l;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(l = calloc(1, sizeof(*l))))
    return ZKR_ENOMEM;
  if (pthread_mutex_init(&l->mu, NULL) != 0) {
    free(l);
    return ZKR_ENOMEM;
  }
  atomic_init(&l->refs, 1);
  l->deadline = -1;
  l->latch = latch;
  if (!(l->path = strdup(path)) || (rc = default_data(&l->data, &l->data_len)) != 0) {
    free(l->path);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return ZKR_ENOMEM;
  }
  l->s = s;
  zkr__session_ref(s);
  if ((rc = zkr_session_add_listener(s, on_session, l, &l->listener_id)) != 0) {
    lock_unref(l);
    return rc;
  }
  *out = l;
  return 0;
}

static int busy_locked(zkr_lock_t *l) {
  return l->state != ST_IDLE ? ZKR_EBUSY : 0;
}

int zkr_lock_set_data(zkr_lock_t *l, const void *data, int len) {
  char *copy = NULL;
  int rc;

  if (!l || len < 0 || len > MAX_DATA || (len > 0 && !data))
    return ZKR_EINVAL;
  if (len > 0 && !(copy = malloc((size_t)len)))
    return ZKR_ENOMEM;
  if (len > 0)
    memcpy(copy, data, (size_t)len);
  pthread_mutex_lock(&l->mu);
  if ((rc = busy_locked(l)) == 0) {
    free(l->data);
    l->data = copy;
    l->data_len = len;
    copy = NULL;
  }
  pthread_mutex_unlock(&l->mu);
  free(copy);
  return rc;
}

int zkr_lock_set_acl(zkr_lock_t *l, const struct ACL_vector *acl) {
  struct ACL_vector copy = {0, NULL};
  int rc;

  if (!l || !acl || acl->count <= 0 || !acl->data)
    return ZKR_EINVAL;
  if (!(copy.data = calloc((size_t)acl->count, sizeof(*copy.data))))
    return ZKR_ENOMEM;
  copy.count = acl->count;
  for (int i = 0; i < acl->count; i++) {
    copy.data[i].perms = acl->data[i].perms;
    copy.data[i].id.scheme = strdup(acl->data[i].id.scheme ? acl->data[i].id.scheme : "");
    copy.data[i].id.id = strdup(acl->data[i].id.id ? acl->data[i].id.id : "");
    if (!copy.data[i].id.scheme || !copy.data[i].id.id) {
      deallocate_ACL_vector(&copy);
      return ZKR_ENOMEM;
    }
  }
  pthread_mutex_lock(&l->mu);
  if ((rc = busy_locked(l)) == 0) {
    struct ACL_vector old = l->acl;
    l->acl = copy;
    copy = old;
  }
  pthread_mutex_unlock(&l->mu);
  deallocate_ACL_vector(&copy);
  return rc;
}

int zkr_lock_set_listener(zkr_lock_t *l, zkr_lock_listener_fn fn, void *arg) {
  if (!l)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  l->lfn = fn;
  l->larg = arg;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

/*
 * Callbacks owed outside the acquire state machine: a reentrant acquire or a
 * nested release completes on the worker (never inside the call that started
 * it), and a last release completes when the janitor has deleted the node.
 * zkr_lock_free() runs whatever is still owed with ZKR_ECANCELED. pend_t lives
 * on l->pending (l->mu) until its callback is run or cancelled; its memory goes
 * with whoever runs last: the timer or janitor, or free for a removed timer.
 */
typedef struct pend {
  struct pend *next;
  zkr_lock_t *l; /* holds a reference */
  zkr_lock_cb cb;
  void *arg;
  int rc;
  uint64_t timer; /* deferred: its timer; 0 for a release */
  int owed;       /* the callback has not run yet (l->mu) */
} pend_t;

static pend_t *pend_new(zkr_lock_t *l, zkr_lock_cb cb, void *arg, int rc) {
  pend_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->l = l;
  p->cb = cb;
  p->arg = arg;
  p->rc = rc;
  p->owed = 1;
  lock_ref(l);
  return p;
}

/* l->mu held. */
static void pend_unlink(zkr_lock_t *l, pend_t *p) {
  for (pend_t **pp = &l->pending; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  }
}

/* The timer or the janitor is done with p: run the callback unless free did. */
static void pend_fire(pend_t *p, int rc) {
  zkr_lock_t *l = p->l;
  int owed;
  pthread_mutex_lock(&l->mu);
  owed = p->owed;
  p->owed = 0;
  if (owed)
    pend_unlink(l, p);
  pthread_mutex_unlock(&l->mu);
  if (owed && p->cb)
    p->cb(l, rc, p->arg);
  free(p);
  lock_unref(l);
}

static void on_deferred(void *ctx, int fired) {
  pend_t *p = ctx;
  (void)fired; /* a session being freed still owes the callback its one run */
  pend_fire(p, p->rc);
}

static void on_released(void *arg, int rc) {
  pend_fire(arg, rc);
}

/* l->mu held. Complete cb with rc on the worker. */
static int defer(zkr_lock_t *l, zkr_lock_cb cb, void *arg, int rc) {
  pend_t *p = pend_new(l, cb, arg, rc);
  int err;
  if (!p)
    return ZKR_ENOMEM;
  if ((err = zkr__timer_at(l->s, zkr__now_ms(), on_deferred, p, &p->timer)) != 0) {
    lock_unref(l);
    free(p);
    return err;
  }
  p->next = l->pending;
  l->pending = p;
  return 0;
}

/* From zkr_lock_free: run every owed callback now with ZKR_ECANCELED. */
static void cancel_pending(zkr_lock_t *l) {
  pend_t *list;

  pthread_mutex_lock(&l->mu);
  list = l->pending;
  l->pending = NULL;
  for (pend_t *p = list; p; p = p->next)
    p->owed = 0;
  pthread_mutex_unlock(&l->mu);
  zkr__dispatch_enter(l->s);
  while (list) {
    pend_t *p = list;
    list = p->next;
    if (p->cb)
      p->cb(l, ZKR_ECANCELED, p->arg);
    if (p->timer && zkr__timer_cancel(p->timer)) {
      free(p); /* its timer will not run: the memory is ours */
      lock_unref(l);
    }
  }
  zkr__dispatch_leave(l->s);
}

int zkr_lock_acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb, void *arg) {
  int rc;

  if (!l || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  if (l->freed) {
    rc = ZKR_ECLOSED;
  } else if (l->state == ST_HELD) {
    if ((rc = defer(l, cb, arg, 0)) == 0)
      l->holds++;
  } else if (l->state == ST_ACQUIRING) {
    rc = ZKR_EBUSY;
  } else {
    l->state = ST_ACQUIRING;
    l->acb = cb;
    l->aarg = arg;
    l->try_once = timeout_ms == 0;
    l->deadline = timeout_ms > 0 ? zkr__now_ms() + timeout_ms : -1;
    l->timer = 0;
    rc = start_attempt(l);
    if (rc == 0 && timeout_ms > 0) {
      lock_ref(l);
      if ((rc = zkr__timer_at(l->s, l->deadline, on_deadline, l, &l->timer)) != 0)
        lock_unref(l);
    }
    if (rc != 0) {
      /* Nothing reached the server that the janitor would not clean up. */
      notes_t n = {0};
      l->acb = NULL;
      abandon(l, rc, &n);
    }
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

static void waiter_cb(zkr_lock_t *l, int rc, void *arg) {
  (void)l;
  zkr__waiter_signal(arg, rc);
}

int zkr_lock_acquire(zkr_lock_t *l, int timeout_ms) {
  zkr__waiter_t w;
  int rc;

  if (!l || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if ((rc = zkr__waiter_init(&w)) != 0)
    return rc;
  rc = zkr_lock_acquire_async(l, timeout_ms, waiter_cb, &w);
  if (rc == 0)
    rc = zkr__waiter_wait(&w, -1); /* the deadline timer guarantees the callback */
  zkr__waiter_destroy(&w);
  return rc;
}

/* From an API call: end the pending acquire with rc, callback before returning. */
static int end_pending(zkr_lock_t *l, int rc) {
  notes_t n = {0};
  int found;

  pthread_mutex_lock(&l->mu);
  found = l->state == ST_ACQUIRING;
  if (found)
    abandon(l, rc, &n);
  pthread_mutex_unlock(&l->mu);
  if (found) {
    zkr__dispatch_enter(l->s);
    deliver(l, &n);
    zkr__dispatch_leave(l->s);
  }
  return found;
}

int zkr_lock_cancel(zkr_lock_t *l) {
  if (!l)
    return ZKR_EINVAL;
  return end_pending(l, ZKR_ECANCELED) ? 0 : ZKR_EINVAL;
}

int zkr_lock_release_async(zkr_lock_t *l, zkr_lock_cb cb, void *arg) {
  char path[NODE_PATH_MAX];
  pend_t *p = NULL;
  uint64_t gen = 0;
  int rc = 0;

  if (!l)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  if (l->state != ST_HELD) {
    rc = ZKR_ENOTHELD;
  } else if (l->holds > 1) {
    if ((rc = defer(l, cb, arg, 0)) == 0)
      l->holds--;
  } else if (!(p = pend_new(l, cb, arg, 0))) {
    rc = ZKR_ENOMEM;
  } else {
    /* held() is 0 from here on; the janitor owns the node. */
    p->next = l->pending;
    l->pending = p;
    l->state = ST_IDLE;
    l->holds = 0;
    l->suspect = 0;
    gen = l->gen;
    snprintf(path, sizeof(path), "%s", l->node_path);
  }
  pthread_mutex_unlock(&l->mu);
  /* Outside l->mu: the janitor's callback takes it. */
  if (p && (rc = zkr__janitor_delete(l->s, gen, path, on_released, p)) != 0) {
    pthread_mutex_lock(&l->mu);
    pend_unlink(l, p);
    if (l->state == ST_IDLE) { /* nothing else happened meanwhile: still ours */
      l->state = ST_HELD;
      l->holds = 1;
    }
    pthread_mutex_unlock(&l->mu);
    free(p);
    lock_unref(l);
  }
  return rc;
}

static void release_sync_cb(zkr_lock_t *l, int rc, void *arg) {
  (void)l;
  zkr__sync_done(arg, rc);
}

int zkr_lock_release(zkr_lock_t *l, int timeout_ms) {
  zkr__sync_t *y;
  int rc;

  if (!l || timeout_ms < -1)
    return ZKR_EINVAL;
  if (timeout_ms == 0) /* do not wait: the delete is on its way, in session order */
    return zkr_lock_release_async(l, NULL, NULL);
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if (!(y = zkr__sync_new()))
    return ZKR_ENOMEM;
  rc = zkr_lock_release_async(l, release_sync_cb, y);
  if (rc != 0) {
    zkr__sync_done(y, rc); /* the callback's share */
    zkr__sync_wait(y, -1, NULL, NULL);
    return rc;
  }
  return zkr__sync_wait(y, zkr__deadline(timeout_ms), NULL, NULL);
}

int zkr_lock_held(zkr_lock_t *l) {
  int h;
  if (!l)
    return 0;
  pthread_mutex_lock(&l->mu);
  h = l->state == ST_HELD;
  pthread_mutex_unlock(&l->mu);
  return h;
}

int zkr_lock_hold_count(zkr_lock_t *l) {
  int h;
  if (!l)
    return 0;
  pthread_mutex_lock(&l->mu);
  h = l->holds;
  pthread_mutex_unlock(&l->mu);
  return h;
}

int zkr_lock_token(zkr_lock_t *l, zkr_lock_token_t *out) {
  int rc = 0;
  if (!l || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  if (l->state != ST_HELD) {
    rc = ZKR_ENOTHELD;
  } else {
    memset(out, 0, sizeof(*out));
    out->czxid = l->czxid;
    out->session_id = l->sid;
    out->sequence = l->seq;
    snprintf(out->node, sizeof(out->node), "%s", l->node_name);
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

int zkr_lock_guard(zkr_lock_t *l, zoo_op_t *op) {
  int rc = 0;
  if (!l || !op)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  if (l->state != ST_HELD)
    rc = ZKR_ENOTHELD;
  else
    zoo_check_op_init(op, l->node_path, -1);
  pthread_mutex_unlock(&l->mu);
  return rc;
}

const char *zkr_lock_path(zkr_lock_t *l) {
  return l ? l->path : NULL;
}

void zkr_lock_free(zkr_lock_t *l) {
  if (!l)
    return;
  end_pending(l, ZKR_ECANCELED);
  cancel_pending(l);
  pthread_mutex_lock(&l->mu);
  if (l->freed) {
    pthread_mutex_unlock(&l->mu);
    return;
  }
  l->freed = 1;
  if (l->state == ST_HELD) {
    zkr__janitor_delete(l->s, l->gen, l->node_path, NULL, NULL);
    l->state = ST_IDLE;
    l->holds = 0;
  }
  cancel_timer(l);
  pthread_mutex_unlock(&l->mu);
  /* After this no session event reaches the lock (outside callback context it
   * also waits for one being delivered). */
  zkr_session_remove_listener(l->s, l->listener_id);
  lock_unref(l);
}

static void on_touched(void *ctx, int rc, const zkr__reply_t *r) {
  (void)rc, (void)r;
  lock_unref(ctx);
}

int zkr__lock_touch(zkr_lock_t *l) {
  zkr__call_t c;
  int rc;

  pthread_mutex_lock(&l->mu);
  if (l->state != ST_HELD) {
    pthread_mutex_unlock(&l->mu);
    return ZKR_ENOTHELD;
  }
  lock_ref(l);
  /* Same data, new version: a watcher of this node hears NodeDataChanged. */
  if ((rc = zkr__call_begin(l->s, l->gen, ZKR__K_SET, on_touched, l, &c)) == 0)
    rc = zkr__call_end(
        &c, zoo_aset(c.zh, l->node_path, l->data, l->data_len, -1, zkr__cb_stat, c.op));
  pthread_mutex_unlock(&l->mu);
  if (rc != 0)
    lock_unref(l);
  return rc;
}

void zkr__lock_set_waiting_fn(zkr_lock_t *l, void (*fn)(void *arg), void *arg) {
  pthread_mutex_lock(&l->mu);
  l->wfn = fn;
  l->warg = arg;
  pthread_mutex_unlock(&l->mu);
}

int zkr__lock_stats(zkr_lock_t *l, zkr__lock_stats_t *out) {
  if (!l || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->mu);
  *out = l->stats;
  out->next_in_line = l->state == ST_ACQUIRING && l->watch_tok != 0 && l->pred_lowest;
  pthread_mutex_unlock(&l->mu);
  return 0;
}
