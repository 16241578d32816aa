/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sequential-node queue engine (see queue.h).
 *
 * Znodes: under the queue path P, each attempt creates
 *   P/_c_<uuid>-<tag>-<seq>   EPHEMERAL_SEQUENTIAL, data = the entry's data
 * (or, by the rule's naming, kazoo's P/<hex32><tag><seq>, or P/<hex32>
 * EPHEMERAL: a node that is not in the sequence, for count rules)
 * Missing parents are created as CONTAINER nodes (and again if the server reaped
 * them meanwhile).
 *
 * Algorithm:
 *  1. create2 the node and, pipelined on the same session, getChildren(P): the
 *     server answers in order, so the listing already contains our node and an
 *     uncontended attempt costs one write round trip.
 *  2. Order the contenders of every format the rule counts by int32 sequence
 *     (wrap-aware); unknown children are ignored and reported to the log. The
 *     rule decides whether we hold, else which one node to watch.
 *  3. getData-with-watch that node only (no herd). getData, not exists: on a
 *     vanished node exists would leave a creation watch behind. A node we may
 *     not read (ZNOAUTH: a creator-only ACL) cannot be watched at all: the server
 *     sends a node's events only to clients that may read it. Then we list the
 *     parent with a child watch instead (the parent's ACL decides there) and list
 *     again on each child event until it goes: a herd, but only behind such a
 *     node. If the node is already gone, list again: the place in the queue is
 *     kept. When it goes and the rule said its departure alone grants us (it was
 *     the last obstacle of our last listing: sequences only grow), we hold
 *     without listing again. A change of its data (the grant mark of an entry
 *     that was just granted, see zkr__queue_mark) makes us list again to learn
 *     that it is now the last obstacle: on the event, or, when the change came
 *     before the watch was set, on the version the watch's reply shows.
 *  4. Release is one delete, handed to the janitor (retried across connection
 *     loss while the session lives).
 *  Ambiguous create (connection loss / timeout): list P, look for our GUID, adopt
 *  the node only if its ephemeralOwner is our session, else delete it and create
 *  anew. Abandoned attempts always hand their node, known or only suspected
 *  (GUID), to the janitor. Held, after a reconnect: the node is checked to exist
 *  and be ours before RECOVERED (never ownership from a cached view).
 *
 * Invariants: replies carry the token of the request that sent them
 * (create_tok/list_tok/watch_tok/owner_tok/verify_tok); a reply whose token is
 * not the current one is stale and only cleans up after itself. state HELD <=>
 * the grant was told and the node was not given up or lost since.
 */
#include "queue.h"

#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DATA          1000000 /* under the server's 1 MiB request limit */
#define MAX_PARENT_ROUNDS 8

/* A request or watch of the queue (base.ctx is the queue). */
typedef struct qreq {
  zkr__req_t base;
  char guid[37]; /* creates: the attempt's GUID, to clean up after a stale reply */
} qreq_t;

#define Q(rq) ((zkr__queue_t *)(rq)->ctx)

/* Debug trace of a step: "<recipe> <path>: session 0x<id>: <what>", the session
 * id as zkCli and the server's log print it. */
#define QTRACE(q, fmt, ...)                                                              \
  ZKR__TRACE("%s %s: session 0x%llx: " fmt, (q)->o->ops->name, (q)->path,               \
             (unsigned long long)zkr_session_id((q)->o->s), __VA_ARGS__)

static double ms_since(int64_t t_ns) {
  return (double)(zkr__now_ns() - t_ns) / 1e6;
}

static const struct ACL_vector *acl_of(zkr__queue_t *q) {
  return q->acl.count ? &q->acl : zkr_session_acl(q->o->s);
}

/* ---- sending (o->mu held) ---- */

static int begin(zkr__send_t *x, zkr__queue_t *q, int kind, zkr__step_fn step,
                 uint32_t tok) {
  int rc = zkr__send_begin(x, q->o, q->gen, kind, step, tok, sizeof(qreq_t));
  if (rc == 0) {
    x->rq->ctx = q;
    memcpy(((qreq_t *)x->rq)->guid, q->guid, sizeof(q->guid));
  }
  return rc;
}

static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx);
static void on_created(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx);
static void on_pred_data(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx);
static void on_pred_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx);
static void on_child_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx);
static void on_owner(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx);
static void on_verified(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx);

static int watch(zkr__send_t *x, zkr__queue_t *q, zkr__step_fn step, uint32_t tok) {
  int rc = zkr__send_watch(x, step, tok, sizeof(zkr__req_t));
  if (rc == 0)
    x->wrq->ctx = q;
  return rc;
}

static int send_list(zkr__queue_t *q, bool recovering) {
  zkr__send_t x;
  int rc;

  q->list_tok = zkr__obj_token(q->o);
  q->recovering = recovering;
  if ((rc = begin(&x, q, ZKR__K_CHILDREN, on_listed, q->list_tok)) != 0)
    return rc;
  q->stats.lists++;
  return zkr__send_end(&x,
                       zoo_aget_children(x.c.zh, q->path, 0, zkr__cb_strings, x.c.op));
}

/* A listing that also sets a child watch on P, standing in for the watch on an
 * unreadable node (watch_tok names it). */
static int send_list_watched(zkr__queue_t *q) {
  zkr__send_t x;
  int rc;

  q->list_tok = zkr__obj_token(q->o);
  q->watch_tok = q->list_tok;
  q->recovering = false;
  if ((rc = begin(&x, q, ZKR__K_CHILDREN, on_listed, q->list_tok)) != 0)
    return rc;
  if ((rc = watch(&x, q, on_child_watch, q->watch_tok)) != 0)
    return zkr__send_end(&x, rc);
  q->stats.lists++;
  q->stats.watches++;
  return zkr__send_end(&x, zoo_awget_children(x.c.zh, q->path, zkr__watcher, x.c.watch,
                                              zkr__cb_strings, x.c.op));
}

/* A GUID for the next node: a UUID, or its 32 hex digits for kazoo's names. */
static int new_guid(zkr__queue_t *q) {
  int rc = zkr__guid(q->guid);
  if (rc == 0 && q->rule->naming != ZKR__NAMES_PROTECTED) {
    size_t j = 0;
    for (size_t i = 0; q->guid[i]; i++)
      if (q->guid[i] != '-')
        q->guid[j++] = q->guid[i];
    q->guid[j] = '\0';
  }
  return rc;
}

/* create2 our node, then (pipelined) list the parent. */
static int send_create(zkr__queue_t *q, bool with_parents) {
  const char *dir = strcmp(q->path, "/") ? q->path : "";
  char *prefix;
  zkr__send_t x;
  size_t n;
  int rc;

  q->create_tok = zkr__obj_token(q->o);
  q->parent_err = 0;
  if (with_parents && (rc = zkr__send_parents(q->o, q->gen, q->path, true, acl_of(q),
                                              on_parent, q->create_tok, q)) != 0)
    return rc;
  n = strlen(q->path) + strlen(q->rule->tag) + 48;
  if (!(prefix = malloc(n)))
    return ZKR_ENOMEM;
  if (q->rule->naming == ZKR__NAMES_PROTECTED)
    snprintf(prefix, n, "%s/_c_%s-%s", dir, q->guid, q->rule->tag);
  else if (q->rule->naming == ZKR__NAMES_KAZOO)
    snprintf(prefix, n, "%s/%s%s", dir, q->guid, q->rule->tag);
  else
    snprintf(prefix, n, "%s/%s", dir, q->guid);
  if ((rc = begin(&x, q, ZKR__K_CREATE, on_created, q->create_tok)) == 0)
    rc = zkr__send_end(
        &x, zoo_acreate2(x.c.zh, prefix, q->data, q->data_len, acl_of(q),
                         q->rule->naming == ZKR__NAMES_GUID ? ZOO_EPHEMERAL
                                                            : ZOO_EPHEMERAL_SEQUENTIAL,
                         zkr__cb_string_stat, x.c.op));
  free(prefix);
  if (rc != 0)
    return rc;
  return send_list(q, false);
}

static int send_watch(zkr__queue_t *q) {
  char *p = zkr__path_join(q->path, q->pred);
  zkr__send_t x;
  int rc;

  if (!p)
    return ZKR_ENOMEM;
  q->watch_tok = zkr__obj_token(q->o);
  if ((rc = begin(&x, q, ZKR__K_GET, on_pred_data, q->watch_tok)) == 0) {
    if ((rc = watch(&x, q, on_pred_watch, q->watch_tok)) != 0) {
      zkr__send_end(&x, rc);
    } else {
      q->stats.watches++;
      rc = zkr__send_end(
          &x, zoo_awget(x.c.zh, p, zkr__watcher, x.c.watch, zkr__cb_data, x.c.op));
    }
  }
  free(p);
  return rc;
}

/* Held, after a reconnect: is our node still there, and ours? */
static int send_verify(zkr__queue_t *q) {
  zkr__send_t x;
  int rc;

  q->verify_tok = zkr__obj_token(q->o);
  if ((rc = begin(&x, q, ZKR__K_EXISTS, on_verified, q->verify_tok)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_aexists(x.c.zh, q->node_path, 0, zkr__cb_stat, x.c.op));
}

static int set_node(zkr__queue_t *q, const char *path) {
  int n = snprintf(q->node_path, sizeof(q->node_path), "%s", path);
  if (n < 0 || n >= (int)sizeof(q->node_path))
    return ZKR_EINVAL; /* not a name of ours (they are at most 64 bytes) */
  q->node_name = strrchr(q->node_path, '/') + 1;
  return 0;
}

static int send_owner_check(zkr__queue_t *q, const char *child) {
  char *p = zkr__path_join(q->path, child);
  zkr__send_t x;
  int rc;

  if (!p)
    return ZKR_ENOMEM;
  q->owner_tok = zkr__obj_token(q->o);
  if ((rc = set_node(q, p)) == 0 &&
      (rc = begin(&x, q, ZKR__K_EXISTS, on_owner, q->owner_tok)) == 0)
    rc = zkr__send_end(&x, zoo_aexists(x.c.zh, p, 0, zkr__cb_stat, x.c.op));
  free(p);
  return rc;
}

/* ---- state changes (o->mu held) ---- */

static void reset_attempt(zkr__queue_t *q) {
  q->create_tok = q->list_tok = q->watch_tok = q->owner_tok = 0;
  q->have_node = q->ambiguous = q->recovering = false;
  free(q->pred);
  q->pred = NULL;
  q->keep_watch = false;
  if (q->o->wait != ZKR__WAIT_NONE) {
    q->o->wait = ZKR__WAIT_NONE;
    zkr__obj_timer_stop(q->o, &q->o->resume_timer);
  }
}

static void grant(zkr__queue_t *q, zkr__fx_t *fx) {
  q->state = ZKR__Q_HELD;
  q->stats.grants++;
  q->granted_ns = zkr__now_ns();
  zkr__stat_grant(q->o->s, (q->granted_ns - q->started_ns) / 1000);
  QTRACE(q, "granted %s (sequence %d), token 0x%llx, after %.3f ms", q->node_name, q->seq,
         (unsigned long long)q->czxid, ms_since(q->started_ns));
  reset_attempt(q);
  if (q->rule->mark_on_grant)
    zkr__queue_mark(q); /* best effort: a failure only costs the next one a read */
  q->guard_current = false; /* a new grant: guards taken now name its node */
  q->hooks->granted(q, fx);
}

/* Hand whatever node the attempt has or may have to the janitor. */
static void drop_node(zkr__queue_t *q) {
  if (q->have_node)
    zkr__janitor_delete(q->o->s, q->gen, q->node_path, NULL, NULL);
  else if (q->ambiguous)
    zkr__janitor_delete_guid(q->o->s, q->gen, q->path, q->guid);
  reset_attempt(q);
  q->state = ZKR__Q_IDLE;
}

/* End the attempt with rc (a create still in flight cleans up after itself: its
 * token is stale). */
static void abandon(zkr__queue_t *q, int rc, zkr__fx_t *fx) {
  QTRACE(q, "attempt ends: %s, after %.3f ms", zkr_strerror(rc), ms_since(q->started_ns));
  zkr__stat(q->o->s, rc == ZKR_ETIMEDOUT && q->try_once ? ZKR__ST_CONFLICTS : ZKR__ST_FAILURES);
  drop_node(q);
  q->hooks->failed(q, rc, fx);
}

static void waiting(zkr__queue_t *q, zkr__fx_t *fx) {
  if (!q->waited) {
    q->waited = true;
    zkr__stat(q->o->s, ZKR__ST_WAITS);
  }
  if (q->hooks->waiting)
    q->hooks->waiting(q, fx);
}

static int start_attempt(zkr__queue_t *q) {
  int rc;
  reset_attempt(q);
  q->gen = zkr__session_gen(q->o->s);
  q->parent_rounds = 0;
  if (q->gen == 0) {
    int st = zkr_session_state(q->o->s);
    if (st == ZKR_STATE_CLOSED)
      return ZKR_ECLOSED;
    if (st != ZKR_STATE_CONNECTING)
      return ZINVALIDSTATE; /* nobody is connecting this session */
    zkr__obj_wait(q->o, ZKR__WAIT_SESSION, 0);
    return 0;
  }
  if ((rc = new_guid(q)) != 0)
    return rc;
  return send_create(q, false);
}

/* The connection is back: redo the step that was interrupted. */
static int resume_step(zkr__queue_t *q) {
  q->keep_watch = false; /* set the watch again after the listing */
  if (q->ambiguous) {
    /* Look for our GUID, on a server that has caught up with the create (we
     * may have moved to one that had not applied it yet). */
    int rc = zkr__send_sync(q->o, q->gen, q->path);
    return rc ? rc : send_list(q, true);
  }
  if (q->have_node)
    return send_list(q, false);
  return send_create(q, false);
}

/* A step failed for a reason that is not about the queue: wait, retry or give up. */
static void trouble(zkr__queue_t *q, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN:
    if (q->try_once) {
      abandon(q, rc, fx);
    } else {
      zkr__obj_wait(q->o, ZKR__WAIT_CONN, 0);
      waiting(q, fx);
    }
    break;
  case ZKR__RC_SESSION:
    /* The session is gone or being replaced: whatever we had is gone with it. */
    if (q->try_once) {
      abandon(q, rc, fx);
    } else {
      uint64_t gen = q->gen;
      reset_attempt(q);
      zkr__obj_wait(q->o, ZKR__WAIT_SESSION, gen);
      waiting(q, fx);
    }
    break;
  case ZKR__RC_CLOSED: abandon(q, ZKR_ECLOSED, fx); break;
  default: abandon(q, rc, fx);
  }
}

/* ---- replies ---- */

static int32_t node_seq(const char *name) {
  zkr__child_t c;
  zkr__child_parse(name, &c);
  return c.seq;
}

static void log_unknown(zkr__queue_t *q, const zkr__child_t *c, int n, int k) {
  if (n - k != q->unknown_seen) {
    q->unknown_seen = n - k;
    if (n > k)
      zkr__log(ZKR_LOG_WARN, "%s %s: %d child(ren) in no known format ignored, e.g. %s",
               q->o->ops->name, q->path, n - k, c[k].name);
  }
}

/* GUID search after an ambiguous create. */
static void on_guid_listing(zkr__queue_t *q, const struct String_vector *v,
                            zkr__fx_t *fx) {
  int rc;
  for (int i = 0; v && i < v->count; i++) {
    if (zkr__name_has_guid(v->data[i], q->guid)) {
      if ((rc = send_owner_check(q, v->data[i])) != 0)
        trouble(q, rc, fx);
      return;
    }
  }
  q->ambiguous = false; /* the create never happened: make it again */
  q->recovering = false;
  if ((rc = new_guid(q)) != 0 || (rc = send_create(q, false)) != 0)
    trouble(q, rc, fx);
}

static void on_listing(zkr__queue_t *q, const struct String_vector *v, bool watched,
                       zkr__fx_t *fx) {
  zkr__child_t *c;
  int k, me = -1, w = -1, rc;
  bool keep = q->keep_watch, last = false;

  q->keep_watch = false;
  if (q->recovering) {
    on_guid_listing(q, v, fx);
    return;
  }
  if (!q->have_node)
    return; /* the pipelined listing of a create that failed: nothing to order */
  if (zkr__children_order(v, q->rule->order_mode, &c, &k) != 0) {
    trouble(q, ZKR_ENOMEM, fx);
    return;
  }
  if (!q->rule->count_all) /* (those count the unknown ones too) */
    log_unknown(q, c, v ? v->count : 0, k);
  for (int i = 0; i < (v ? v->count : 0); i++) /* (ZKR__NAMES_GUID: not a contender) */
    if (strcmp(c[i].name, q->node_name) == 0)
      me = i;
  if (me < 0) {
    /* Our node is gone (deleted by someone, or with its session): queue again. */
    free(c);
    q->have_node = false;
    if ((rc = start_attempt(q)) != 0)
      abandon(q, rc, fx);
    return;
  }
  /* (A rule that counts every child, as Curator's semaphore does, sees them
   * all: the ones in no known format are ordered after the contenders.) */
  if (q->rule->decide(q->rule, c, q->rule->count_all && v ? v->count : k, me, &w, &last)) {
    free(c);
    grant(q, fx);
    return;
  }
  if (q->try_once) {
    free(c);
    abandon(q, ZKR_ETIMEDOUT, fx);
    return;
  }
  if (w < 0) {
    /* No one node tells: wait on any change among the children. */
    free(c);
    free(q->pred);
    q->pred = NULL;
    q->pred_last = false;
    waiting(q, fx);
    if (!watched && (rc = send_list_watched(q)) != 0)
      trouble(q, rc, fx);
    return;
  }
  if (!q->pred || strcmp(q->pred, c[w].name) != 0) {
    char *pred = strdup(c[w].name);
    if (!pred) {
      free(c);
      trouble(q, ZKR_ENOMEM, fx);
      return;
    }
    free(q->pred);
    q->pred = pred;
    q->pred_ver = 0; /* nodes are made with version 0 */
    q->pred_ver_next = false;
    q->pred_unreadable = false;
    keep = false;
  }
  q->pred_last = last;
  QTRACE(q, "waits behind %s (%d ahead of %s)%s", q->pred, me, q->node_name,
         keep && q->watch_tok != 0 ? ", watch already set" : "");
  free(c);
  if (q->pred_unreadable) {
    /* Still there: a listing with a child watch was just answered (then wait for
     * its event), or one must be made. */
    if (!watched && (rc = send_list_watched(q)) != 0)
      trouble(q, rc, fx);
    return;
  }
  waiting(q, fx);
  if (keep && q->watch_tok != 0)
    return; /* the same node, still watched */
  if ((rc = send_watch(q)) != 0)
    trouble(q, rc, fx);
}

/* The watched node is gone. */
static void pred_gone(zkr__queue_t *q, zkr__fx_t *fx) {
  int rc;
  q->watch_tok = 0;
  QTRACE(q, "predecessor %s is gone%s", q->pred ? q->pred : "",
         q->pred_last ? ": it was the last one ahead" : ": listing again");
  if (q->pred_last) {
    q->stats.grants_without_list++;
    grant(q, fx);
  } else if ((rc = send_list(q, false)) != 0) {
    trouble(q, rc, fx);
  }
}

static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);
  (void)o, (void)r, (void)fx;
  if (rq->tok == q->create_tok && rc != ZOK && rc != ZNODEEXISTS && !q->parent_err &&
      zkr__rc_class(rc) != ZKR__RC_CONN)
    q->parent_err = rc;
}

static void on_created(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);

  if (q->state != ZKR__Q_ACQUIRING || rq->tok != q->create_tok) {
    /* A create that no longer matters: remove what it made. */
    if (rc == ZOK && r->path)
      zkr__janitor_delete(o->s, rq->gen, r->path, NULL, NULL);
    else if (zkr__rc_class(rc) == ZKR__RC_CONN)
      zkr__janitor_delete_guid(o->s, rq->gen, q->path, ((qreq_t *)rq)->guid);
    return;
  }
  q->create_tok = 0;
  switch (rc) {
  case ZOK:
    if (set_node(q, r->path) != 0) {
      q->list_tok = 0;
      abandon(q, ZKR_EINVAL, fx);
      return;
    }
    q->seq = node_seq(q->node_name);
    q->czxid = r->stat ? r->stat->czxid : 0;
    q->sid = r->stat ? r->stat->ephemeralOwner : 0;
    q->have_node = true;
    QTRACE(q, "created %s (sequence %d, czxid 0x%llx)", q->node_name, q->seq,
           (unsigned long long)q->czxid);
    break; /* the pipelined listing comes next */
  case ZNONODE:
    /* Parent missing (never made, or a reaped container): make it and retry. */
    q->list_tok = 0;
    if (q->parent_err)
      abandon(q, q->parent_err, fx);
    else if (++q->parent_rounds > MAX_PARENT_ROUNDS)
      abandon(q, ZNONODE, fx);
    else if ((rc = send_create(q, true)) != 0)
      trouble(q, rc, fx);
    break;
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
    QTRACE(q, "create's reply lost (%s): will look for attempt %s", zkr_strerror(rc),
           q->guid);
    q->list_tok = 0;
    q->ambiguous = true;
    q->stats.recoveries++;
    trouble(q, rc, fx);
    break;
  default: q->list_tok = 0; trouble(q, rc, fx);
  }
}

static void on_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);
  (void)o;
  if (q->state != ZKR__Q_ACQUIRING || rq->tok != q->list_tok)
    return;
  q->list_tok = 0;
  if (rc == ZOK || rc == ZNONODE) /* no parent: an empty listing */
    on_listing(q, rc == ZOK ? r->strings : NULL, rq->tok == q->watch_tok, fx);
  else if (q->have_node || q->recovering)
    trouble(q, rc, fx);
  /* else: the pipelined listing of a create that failed; its reply decides */
}

static void on_pred_data(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);
  int src;

  (void)o;
  if (q->state != ZKR__Q_ACQUIRING || rq->tok != q->watch_tok)
    return;
  if (rc == ZNONODE) {
    q->stats.pred_vanished++;
    pred_gone(q, fx);
  } else if (rc == ZNOAUTH) {
    /* We may not read it, and the server sends its events only to those who
     * may: wait on P's children instead. */
    q->pred_unreadable = true;
    if ((src = send_list_watched(q)) != 0)
      trouble(q, src, fx);
  } else if (rc != ZOK) {
    q->watch_tok = 0;
    trouble(q, rc, fx);
  } else if (r->stat && q->pred_ver_next) {
    q->pred_ver = r->stat->version;
    q->pred_ver_next = false;
  } else if (r->stat && !q->pred_last && r->stat->version > q->pred_ver) {
    /* Its data changed after our listing and before the watch was set, so no
     * event will tell: a just-granted entry marks its node that way once. List
     * again (the watch stays set) to learn whether it is the last obstacle. */
    q->pred_ver = r->stat->version;
    q->stats.pred_changed_unseen++;
    q->keep_watch = true;
    if ((src = send_list(q, false)) != 0)
      trouble(q, src, fx);
  }
}

/* A watch event of ours; true if it is the current one and should be acted on. */
static bool watch_fired(zkr__queue_t *q, zkr__req_t *rq, int rc, const zkr__reply_t *r) {
  if (rc != ZOK || r->type == ZOO_NOTWATCHING_EVENT)
    return false;
  q->stats.notifications++;
  if (q->state != ZKR__Q_ACQUIRING || rq->tok != q->watch_tok)
    return false;
  q->watch_tok = 0;
  return true;
}

static void on_pred_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);
  int src;

  (void)o;
  if (!watch_fired(q, rq, rc, r))
    return;
  if (r->type == ZOO_DELETED_EVENT) {
    pred_gone(q, fx);
  } else {
    /* Data changed: the node is still there; look again and re-arm. */
    q->pred_ver_next = true;
    if ((src = send_list(q, false)) != 0)
      trouble(q, src, fx);
  }
}

/* Behind an unreadable node: some child came or went. */
static void on_child_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);
  int src;

  (void)o;
  if (watch_fired(q, rq, rc, r) && (src = send_list_watched(q)) != 0)
    trouble(q, src, fx);
}

static void on_owner(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);

  if (q->state != ZKR__Q_ACQUIRING || rq->tok != q->owner_tok)
    return;
  q->owner_tok = 0;
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(o->s) &&
      r->stat->ephemeralOwner != 0) {
    /* Our create did happen, on this session: adopt the node. */
    q->ambiguous = q->recovering = false;
    q->have_node = true;
    q->czxid = r->stat->czxid;
    q->sid = r->stat->ephemeralOwner;
    q->seq = node_seq(q->node_name);
    if ((rc = send_list(q, false)) != 0)
      trouble(q, rc, fx);
    return;
  }
  if (rc == ZOK || rc == ZNONODE) {
    /* Not ours (another session's, e.g. before an expiry) or gone: remove it if
     * it is there and start over with a new GUID. */
    if (rc == ZOK)
      zkr__janitor_delete(o->s, q->gen, q->node_path, NULL, NULL);
    q->ambiguous = q->recovering = false;
    if ((rc = new_guid(q)) != 0 || (rc = send_create(q, false)) != 0)
      trouble(q, rc, fx);
    return;
  }
  trouble(q, rc, fx);
}

static void on_verified(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr__queue_t *q = Q(rq);

  if (q->state != ZKR__Q_HELD || rq->tok != q->verify_tok)
    return;
  q->verify_tok = 0;
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(o->s) &&
      r->stat->czxid == q->czxid) {
    q->suspect = false;
    q->hooks->event(q, ZKR__Q_RECOVERED, fx);
  } else if (rc == ZOK || rc == ZNONODE) {
    /* Gone or not ours any more (deleted behind our back): not held. */
    q->stats.verify_failed++;
    zkr__stat(o->s, ZKR__ST_LOSSES);
    q->state = ZKR__Q_IDLE;
    q->suspect = false;
    q->hooks->event(q, ZKR__Q_LOST, fx);
  }
  /* Anything else (connection lost again): still suspect. */
}

static void on_marked(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  (void)o, (void)rq, (void)rc, (void)r, (void)fx;
}

/* ---- entry points (o->mu held) ---- */

void zkr__queue_obj_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr__queue_t *q = o->engine;
  switch (event) {
  case ZKR_SESSION_SUSPENDED:
    if (q->state != ZKR__Q_IDLE && !q->suspect) {
      q->suspect = true;
      q->hooks->event(q, ZKR__Q_SUSPECT, fx);
    }
    break;
  case ZKR_SESSION_RECONNECTED:
    if (q->suspect && q->state == ZKR__Q_HELD) {
      /* Never trust the old state after a disconnection: RECOVERED only once the
       * node is seen to exist and to belong to this session. */
      if (send_verify(q) != 0)
        q->verify_tok = 0; /* still suspect; the next reconnect tries again */
    } else if (q->suspect) {
      q->suspect = false;
      if (q->state != ZKR__Q_IDLE)
        q->hooks->event(q, ZKR__Q_RECOVERED, fx);
    }
    break;
  case ZKR_SESSION_LOST:
    q->suspect = false;
    if (q->state != ZKR__Q_IDLE)
      QTRACE(q, "session lost while %s", q->state == ZKR__Q_HELD ? "holding" : "waiting");
    if (q->state == ZKR__Q_HELD) {
      zkr__stat(o->s, ZKR__ST_LOSSES);
      q->state = ZKR__Q_IDLE;
      q->hooks->event(q, ZKR__Q_LOST, fx);
    } else if (q->state == ZKR__Q_ACQUIRING) {
      q->hooks->event(q, ZKR__Q_LOST, fx);
      if (q->state != ZKR__Q_ACQUIRING)
        break; /* the hook gave up the attempt */
      if (q->try_once) {
        abandon(q, ZSESSIONEXPIRED, fx);
      } else {
        uint64_t gen = q->gen;
        reset_attempt(q); /* the node went with the session */
        zkr__obj_wait(q->o, ZKR__WAIT_SESSION, gen);
      }
    }
    break;
  case ZKR_SESSION_CLOSED:
    /* The session was freed under us: the node goes with it. */
    q->suspect = false;
    if (q->state == ZKR__Q_HELD) {
      q->state = ZKR__Q_IDLE;
      q->hooks->event(q, ZKR__Q_LOST, fx);
    } else if (q->state == ZKR__Q_ACQUIRING) {
      abandon(q, ZKR_ECLOSED, fx);
    }
    break;
  case ZKR_SESSION_CONNECT_FAILED:
  case ZKR_SESSION_AUTH_FAILED:
    /* Nothing will connect this session (until the user connects it again, or
     * ever: refused credentials): what waited for it ends. */
    if (q->state == ZKR__Q_ACQUIRING)
      abandon(q, event == ZKR_SESSION_AUTH_FAILED ? ZAUTHFAILED : ZINVALIDSTATE, fx);
    break;
  }
}

void zkr__queue_obj_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr__queue_t *q = o->engine;
  int rc;
  if (q->state != ZKR__Q_ACQUIRING)
    return;
  /* A new session: whatever the attempt had went with the old one. */
  if (q->gen != zkr__session_gen(q->o->s))
    rc = start_attempt(q);
  else if ((rc = resume_step(q)) != 0 && zkr__rc_class(rc) != ZKR__RC_FINAL) {
    trouble(q, rc, fx); /* refused at once: wait again */
    return;
  }
  if (rc != 0)
    abandon(q, rc, fx);
}

int zkr__queue_start(zkr__queue_t *q, bool try_once) {
  int rc;
  if (q->state != ZKR__Q_IDLE)
    return ZKR_EBUSY;
  q->state = ZKR__Q_ACQUIRING;
  q->try_once = try_once;
  q->suspect = false;
  q->started_ns = zkr__now_ns();
  q->waited = false;
  if ((rc = start_attempt(q)) != 0)
    drop_node(q); /* nothing reached the server that the janitor would not clean */
  else
    zkr__stat(q->o->s, ZKR__ST_ACQUIRES);
  return rc;
}

void zkr__queue_leave(zkr__queue_t *q, int why) {
  if (q->state == ZKR__Q_ACQUIRING) {
    QTRACE(q, "attempt ends: %s, after %.3f ms", zkr_strerror(why),
           ms_since(q->started_ns));
    zkr__stat(q->o->s, why == ZKR_ETIMEDOUT    ? ZKR__ST_TIMEOUTS
                       : why == ZKR_ECANCELED ? ZKR__ST_CANCELS
                                              : ZKR__ST_FAILURES);
    drop_node(q);
  }
}

int zkr__queue_release(zkr__queue_t *q, zkr__done_fn done, void *arg) {
  int rc;
  if (q->state != ZKR__Q_HELD)
    return ZKR_ENOTHELD;
  if ((rc = zkr__janitor_delete(q->o->s, q->gen, q->node_path, done, arg)) != 0)
    return rc;
  QTRACE(q, "released %s after holding %.3f ms", q->node_name, ms_since(q->granted_ns));
  q->state = ZKR__Q_IDLE;
  q->suspect = false;
  return 0;
}

int zkr__queue_mark(zkr__queue_t *q) {
  zkr__send_t x;
  int rc;
  if (q->state != ZKR__Q_HELD)
    return ZKR_ENOTHELD;
  /* Same data, new version: a watcher of this node hears NodeDataChanged. */
  if ((rc = begin(&x, q, ZKR__K_SET, on_marked, 0)) != 0)
    return rc;
  return zkr__send_end(
      &x, zoo_aset(x.c.zh, q->node_path, q->data, q->data_len, -1, zkr__cb_stat, x.c.op));
}

int zkr__queue_rewrite(zkr__queue_t *q, const void *data, int len, zkr__step_fn step) {
  zkr__send_t x;
  char *copy;
  int rc;
  if (q->state != ZKR__Q_HELD)
    return ZKR_ENOTHELD;
  if (len < 0 || !(copy = malloc(len > 0 ? (size_t)len : 1)))
    return len < 0 ? ZKR_EINVAL : ZKR_ENOMEM;
  if (len > 0)
    memcpy(copy, data, (size_t)len);
  if ((rc = begin(&x, q, ZKR__K_SET, step, 0)) != 0) {
    free(copy);
    return rc;
  }
  free(q->data);
  q->data = copy;
  q->data_len = len;
  return zkr__send_end(
      &x, zoo_aset(x.c.zh, q->node_path, q->data, q->data_len, -1, zkr__cb_stat, x.c.op));
}

int zkr__queue_relist(zkr__queue_t *q) {
  /* Only an attempt waiting with its node made and no listing in flight (a
   * listing in flight decides with what the rule says when it is answered). */
  if (q->state != ZKR__Q_ACQUIRING || !q->have_node || q->list_tok != 0 ||
      q->o->wait != ZKR__WAIT_NONE)
    return 0;
  QTRACE(q, "listing again: %s", "the rule's input changed");
  return send_list(q, false);
}

int zkr__queue_adopt(zkr__queue_t *q, const char *node_path, int64_t czxid, int64_t sid,
                     uint64_t gen, const char *guid) {
  int rc;
  if (q->state != ZKR__Q_IDLE)
    return ZKR_EBUSY;
  if ((rc = set_node(q, node_path)) != 0)
    return rc;
  q->seq = node_seq(q->node_name);
  q->czxid = czxid;
  q->sid = sid;
  q->gen = gen;
  snprintf(q->guid, sizeof(q->guid), "%s", guid);
  q->suspect = false;
  q->state = ZKR__Q_HELD;
  q->stats.grants++;
  q->started_ns = q->granted_ns = zkr__now_ns();
  q->guard_current = false;
  QTRACE(q, "holds %s (sequence %d) handed over, token 0x%llx", q->node_name, q->seq,
         (unsigned long long)q->czxid);
  return 0;
}

void zkr__queue_disown(zkr__queue_t *q) {
  if (q->state != ZKR__Q_HELD)
    return;
  QTRACE(q, "handed %s over after holding %.3f ms", q->node_name, ms_since(q->granted_ns));
  q->state = ZKR__Q_IDLE;
  q->suspect = false;
}

/* ---- rules ---- */

bool zkr__rule_exclusive(const zkr__queue_rule_t *rule, const zkr__child_t *c, int n,
                         int me, int *watch, bool *last) {
  (void)rule, (void)n;
  *watch = me - 1;
  /* The departure of the one ahead grants us without a listing, unless it is
   * a read/write lock's writer: a downgrade replaces it, in the transaction
   * that deletes it, by a reader with its sequence, which we must see. */
  *last = me == 1 && !(c[0].format == ZKR_FORMAT_CURATOR_RW && !c[0].reader);
  return me == 0;
}

bool zkr__rule_read(const zkr__queue_rule_t *rule, const zkr__child_t *c, int n, int me,
                    int *watch, bool *last) {
  int writers = 0;
  (void)rule, (void)n;
  *watch = -1;
  for (int i = 0; i < me; i++) {
    if (!c[i].reader) {
      writers++;
      *watch = i; /* the nearest one ahead, in the end */
    }
  }
  *last = writers == 1;
  return writers == 0;
}

bool zkr__rule_first_n(const zkr__queue_rule_t *rule, const zkr__child_t *c, int n,
                       int me, int *watch, bool *last) {
  (void)c, (void)n;
  *watch = -1;
  *last = false;
  return me < rule->limit;
}

bool zkr__rule_count(const zkr__queue_rule_t *rule, const zkr__child_t *c, int n, int me,
                     int *watch, bool *last) {
  (void)c, (void)me;
  *watch = -1;
  *last = false;
  return n <= atomic_load(rule->max);
}

bool zkr__rule_rank(const zkr__queue_rule_t *rule, const zkr__child_t *c, int n, int me,
                    int *watch, bool *last) {
  int max = atomic_load(rule->max);
  (void)c, (void)n;
  *last = false;
  if (me < max)
    return true;
  *watch = me == max ? -1 : me - 1;
  return false;
}

/* ---- set-up ---- */

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

int zkr__queue_init(zkr__queue_t *q, zkr__obj_t *o, const char *path,
                    const zkr__queue_rule_t *rule, const zkr__queue_hooks_t *hooks) {
  q->o = o;
  q->rule = rule;
  q->hooks = hooks;
  o->engine = q;
  if (!(q->path = strdup(path)))
    return ZKR_ENOMEM;
  return default_data(&q->data, &q->data_len);
}

/* A guard op points at a copy of its grant's node path, newest first. The
 * copy outlives the grant, so that an op still in a caller's hands names the
 * old node and fails (a copy rewritten with a later grant's path would let a
 * stale op pass); it is freed once it has been retired (a later grant took a
 * guard) for zkr__guard_grace_ms. Keeping every copy until the object went
 * grew a long-lived lock or election by a path per grant: about 100 bytes a
 * leadership in the soak, without bound. */
struct zkr__guard_path {
  struct zkr__guard_path *next;
  int64_t retired_ns; /* 0: the newest */
  char path[];
};

int zkr__guard_grace_ms = ZKR__GUARD_GRACE_MS;

int zkr__queue_guard(zkr__queue_t *q, zoo_op_t *op) {
  if (q->state != ZKR__Q_HELD)
    return ZKR_ENOTHELD;
  if (!q->guard_current) {
    size_t n = strlen(q->node_path) + 1;
    int64_t now = zkr__now_ns();
    struct zkr__guard_path *g = malloc(sizeof(*g) + n), **pp;
    if (!g)
      return ZKR_ENOMEM;
    memcpy(g->path, q->node_path, n);
    g->retired_ns = 0;
    if (q->guard_paths)
      q->guard_paths->retired_ns = now;
    g->next = q->guard_paths;
    q->guard_paths = g;
    q->guard_current = true;
    /* Older copies were retired earlier still: drop the tail past the grace. */
    for (pp = &g->next; *pp; pp = &(*pp)->next) {
      if (now - (*pp)->retired_ns >= (int64_t)zkr__guard_grace_ms * 1000000) {
        while (*pp) {
          struct zkr__guard_path *old = *pp;
          *pp = old->next;
          free(old);
        }
        break;
      }
    }
  }
  zoo_check_op_init(op, q->guard_paths->path, -1);
  return 0;
}

void zkr__queue_fini(zkr__queue_t *q) {
  while (q->guard_paths) {
    struct zkr__guard_path *g = q->guard_paths;
    q->guard_paths = g->next;
    free(g);
  }
  deallocate_ACL_vector(&q->acl);
  free(q->pred);
  free(q->data);
  free(q->path);
}

int zkr__queue_stats(zkr__queue_t *q, zkr__queue_stats_t *out) {
  if (!out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&q->o->mu);
  *out = q->stats;
  out->next_in_line = q->state == ZKR__Q_ACQUIRING && q->watch_tok != 0 && q->pred_last;
  out->guard_paths = 0;
  for (const struct zkr__guard_path *g = q->guard_paths; g; g = g->next)
    out->guard_paths++;
  pthread_mutex_unlock(&q->o->mu);
  return 0;
}

void zkr__queue_obj_destroy(zkr__obj_t *o) {
  zkr__queue_fini(o->engine);
  zkr__obj_fini(o);
  free(o);
}

int zkr__queue_set_data(zkr__queue_t *q, const void *data, int len) {
  char *copy = NULL;
  if (len < 0 || len > MAX_DATA || (len > 0 && !data))
    return ZKR_EINVAL;
  if (q->state != ZKR__Q_IDLE)
    return ZKR_EBUSY;
  if (len > 0 && !(copy = malloc((size_t)len)))
    return ZKR_ENOMEM;
  if (len > 0)
    memcpy(copy, data, (size_t)len);
  free(q->data);
  q->data = copy;
  q->data_len = len;
  return 0;
}

int zkr__queue_set_acl(zkr__queue_t *q, const struct ACL_vector *acl) {
  struct ACL_vector copy = {0, NULL};

  if (!acl || acl->count <= 0 || !acl->data)
    return ZKR_EINVAL;
  if (q->state != ZKR__Q_IDLE)
    return ZKR_EBUSY;
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
  deallocate_ACL_vector(&q->acl);
  q->acl = copy;
  return 0;
}
