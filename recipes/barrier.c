/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Barrier and double barrier (zkrecipes/barrier.h).
 *
 * Barrier: P exists while the gate is up. set = create P PERSISTENT (missing
 * parents as containers, made when the create says ZNONODE); remove = delete
 * P; both are idempotent (ZNODEEXISTS / ZNONODE are success), so a step whose
 * reply was lost is simply sent again once the connection is back. wait =
 * follow P with the node watcher (lib/nodewatch.h): absent at the first look,
 * DELETED, or REPLACED (another czxid than the node first seen) passes.
 *
 * Double barrier, one call at a time, each a chain of steps:
 *   enter: create P/<uuid> EPHEMERAL (create2: its czxid); a lost reply is
 *     resolved by an exists of that path (ours if its ephemeralOwner is our
 *     session). Then, again on every watch event: exists(P/ready) and
 *     getChildren(P), both watched, pipelined. Members are the children named
 *     as Curator's (uuid) or kazoo's (32 hex digits) members. Pass when there
 *     are N members (making P/ready first if it is missing or older than our
 *     node: a create, or a multi that deletes the old one by its version and
 *     creates it anew), or when P/ready is younger than our node.
 *   leave: getChildren(P); no member left: done; only ours: delete it, done;
 *     ours the lowest (by name): watch the highest; else delete ours, then
 *     watch the lowest; any event: again. Done: P/ready goes (janitor).
 * A session that expires takes our member node with it: enter makes it
 * again on the new session; leave goes on without it.
 * A timeout or free hands our member node to the janitor before the caller
 * hears of it.
 */
#include "internal.h"
#include "nodewatch.h"
#include "object.h"
#include "zkrecipes/barrier.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARENT_ROUNDS 8
#define MAX_MEMBERS 10000

/* ---- shared by both ---- */

/* "<host>:<pid>", a member node's data (as the lock's). */
static int host_pid(char *buf, size_t size) {
  char host[256];
  int n;
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "unknown");
  host[sizeof(host) - 1] = '\0';
  n = snprintf(buf, size, "%s:%ld", host, (long)getpid());
  return n < 0 || (size_t)n >= size ? (int)strlen(buf) : n;
}

static void run_cb(zkr__obj_t *o, const zkr__effect_t *e) {
  ((void (*)(void *, int, void *))e->cb)(o, e->rc, e->arg);
}

/* ---- barrier ---- */

enum { OP_NONE = 0, OP_SET, OP_REMOVE, OP_WAIT, OP_ENTER, OP_LEAVE };

struct zkr_barrier {
  zkr__obj_t o; /* first */
  char *path;
  zkr__nodewatch_t nw;
  /* (o.mu) */
  int op;
  bool once; /* timeout 0 */
  uint32_t tok;
  int parent_rounds, parent_err;
  zkr__tmr_t *deadline;
  zkr_barrier_cb cb;
  void *arg;
};

#define BAR(o) ((zkr_barrier_t *)(o))

static void bar_end(zkr_barrier_t *b, int rc, zkr__fx_t *fx) {
  if (b->op == OP_NONE)
    return;
  if (b->op == OP_WAIT)
    zkr__nodewatch_stop(&b->nw);
  zkr__fx_add(fx, run_cb, ZKR__FN(b->cb), b->arg, rc);
  b->op = OP_NONE;
  b->tok = 0;
  b->cb = NULL;
  b->o.wait = ZKR__WAIT_NONE;
  zkr__obj_timer_stop(&b->o, &b->deadline);
  zkr__obj_timer_stop(&b->o, &b->o.resume_timer);
}

static int bar_send(zkr_barrier_t *b, bool parents);

/* A set or remove step failed for a reason that is not about P. */
static void bar_trouble(zkr_barrier_t *b, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN:
  case ZKR__RC_SESSION:
    if (b->once)
      bar_end(b, ZKR_ETIMEDOUT, fx);
    else
      zkr__obj_wait(&b->o, ZKR__WAIT_CONN, 0); /* both idempotent: send again */
    break;
  case ZKR__RC_CLOSED: bar_end(b, ZKR_ECLOSED, fx); break;
  default: bar_end(b, rc, fx);
  }
}

static void on_bar_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(o);
  (void)r, (void)fx;
  if (rq->tok == b->tok && rc != ZOK && rc != ZNODEEXISTS && !b->parent_err &&
      zkr__rc_class(rc) == ZKR__RC_FINAL)
    b->parent_err = rc;
}

static void on_bar_done(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(o);
  (void)r;
  if (rq->tok != b->tok || (b->op != OP_SET && b->op != OP_REMOVE))
    return;
  if (rc == ZOK || (b->op == OP_SET && rc == ZNODEEXISTS) ||
      (b->op == OP_REMOVE && rc == ZNONODE)) {
    bar_end(b, 0, fx);
  } else if (b->op == OP_SET && rc == ZNONODE) {
    if (b->parent_err)
      bar_end(b, b->parent_err, fx);
    else if (++b->parent_rounds > MAX_PARENT_ROUNDS)
      bar_end(b, ZNONODE, fx);
    else if ((rc = bar_send(b, true)) != 0)
      bar_trouble(b, rc, fx);
  } else {
    bar_trouble(b, rc, fx);
  }
}

static int bar_send(zkr_barrier_t *b, bool parents) {
  zkr__send_t x;
  int rc;

  b->tok = zkr__obj_token(&b->o);
  b->parent_err = 0;
  if (parents && (rc = zkr__send_parents(&b->o, 0, b->path, false, zkr_session_acl(b->o.s),
                                         on_bar_parent, b->tok, b)) != 0)
    return rc;
  if ((rc = zkr__send_begin(&x, &b->o, 0, b->op == OP_SET ? ZKR__K_CREATE : ZKR__K_DELETE,
                            on_bar_done, b->tok, 0)) != 0)
    return rc;
  return zkr__send_end(&x, b->op == OP_SET
                               ? zoo_acreate(x.c.zh, b->path, NULL, -1,
                                             zkr_session_acl(b->o.s), 0, zkr__cb_string,
                                             x.c.op)
                               : zoo_adelete(x.c.zh, b->path, -1, zkr__cb_void, x.c.op));
}

/* The node watcher's news: P went, or is another node than the one first seen. */
static void on_bar_news(zkr__nodewatch_t *w, const zkr__node_view_t *v, zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(w->o);
  if (b->op == OP_WAIT && (v->kind == ZKR__NODE_DELETED || v->kind == ZKR__NODE_REPLACED))
    bar_end(b, 0, fx);
}

/* A read was answered: absent at the first look passes; present and "once": no. */
static void on_bar_settled(zkr__nodewatch_t *w, zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(w->o);
  if (b->op != OP_WAIT)
    return;
  if (!w->exists)
    bar_end(b, 0, fx);
  else if (b->once)
    bar_end(b, ZKR_ETIMEDOUT, fx);
}

static void bar_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(o);
  (void)fx;
  if (b->op == OP_WAIT)
    zkr__nodewatch_on_session(&b->nw, event);
}

static void bar_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr_barrier_t *b = BAR(o);
  int rc;
  if ((b->op == OP_SET || b->op == OP_REMOVE) && (rc = bar_send(b, false)) != 0)
    bar_trouble(b, rc, fx);
}

static void bar_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  bar_end(BAR(o), fired ? ZKR_ETIMEDOUT : ZKR_ECLOSED, fx);
}

static void bar_destroy(zkr__obj_t *o) {
  free(BAR(o)->path);
  zkr__obj_fini(o);
  free(o);
}

static const zkr__obj_ops_t bar_ops = {.name = "barrier",
                                       .on_session = bar_on_session,
                                       .resume = bar_resume,
                                       .destroy = bar_destroy};

int zkr_barrier_new(zkr_session_t *s, const char *path, zkr_barrier_t **out) {
  zkr_barrier_t *b;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(b = zkr__obj_new(sizeof(*b), &bar_ops, s)))
    return ZKR_ENOMEM;
  if (!(b->path = strdup(path))) {
    zkr__obj_unref(&b->o);
    return ZKR_ENOMEM;
  }
  zkr__nodewatch_init(&b->nw, &b->o, b->path, on_bar_news);
  b->nw.settled = on_bar_settled;
  if ((rc = zkr__obj_listen(&b->o)) != 0) {
    zkr__obj_unref(&b->o);
    return rc;
  }
  *out = b;
  return 0;
}

static int bar_start(zkr_barrier_t *b, int op, int timeout_ms, zkr_barrier_cb cb, void *arg) {
  int rc = 0;

  if (!b || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&b->o.mu);
  if (b->o.freed) {
    rc = ZKR_ECLOSED;
  } else if (b->op != OP_NONE) {
    rc = ZKR_EBUSY;
  } else {
    b->op = op;
    b->cb = cb;
    b->arg = arg;
    b->once = timeout_ms == 0;
    b->parent_rounds = 0;
    if (op == OP_WAIT) {
      zkr__nodewatch_start(&b->nw);
      if (!b->nw.armed)
        rc = zkr_session_state(b->o.s) == ZKR_STATE_CLOSED ? ZKR_ECLOSED : 0;
    } else {
      rc = bar_send(b, false);
      if (rc != 0 && zkr__rc_class(rc) != ZKR__RC_CLOSED && zkr__rc_class(rc) != ZKR__RC_FINAL) {
        zkr__obj_wait(&b->o, ZKR__WAIT_CONN, 0); /* not connected: sent when it is */
        rc = 0;
      }
    }
    if (rc == 0 && timeout_ms > 0)
      rc = zkr__obj_timer(&b->o, &b->deadline, (zkr__now_ms() + timeout_ms) * 1000,
                          bar_deadline);
    if (rc != 0) { /* the callback never runs */
      if (op == OP_WAIT)
        zkr__nodewatch_stop(&b->nw);
      b->op = OP_NONE;
      b->cb = NULL;
      b->tok = 0;
      b->o.wait = ZKR__WAIT_NONE;
    }
  }
  pthread_mutex_unlock(&b->o.mu);
  return rc;
}

int zkr_barrier_set_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb, void *arg) {
  return bar_start(b, OP_SET, timeout_ms, cb, arg);
}

int zkr_barrier_remove_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb,
                             void *arg) {
  return bar_start(b, OP_REMOVE, timeout_ms, cb, arg);
}

int zkr_barrier_wait_async(zkr_barrier_t *b, int timeout_ms, zkr_barrier_cb cb, void *arg) {
  return bar_start(b, OP_WAIT, timeout_ms, cb, arg);
}

static void bar_sync_cb(zkr_barrier_t *b, int rc, void *arg) {
  (void)b;
  zkr__sync_signal(arg, rc);
}

static int bar_sync(zkr_barrier_t *b, int op, int timeout_ms) {
  zkr__sync_t y;
  int rc;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  return zkr__sync_wait(&y, bar_start(b, op, timeout_ms, bar_sync_cb, &y));
}

int zkr_barrier_set(zkr_barrier_t *b, int timeout_ms) {
  return bar_sync(b, OP_SET, timeout_ms);
}

int zkr_barrier_remove(zkr_barrier_t *b, int timeout_ms) {
  return bar_sync(b, OP_REMOVE, timeout_ms);
}

int zkr_barrier_wait(zkr_barrier_t *b, int timeout_ms) {
  return bar_sync(b, OP_WAIT, timeout_ms);
}

void zkr_barrier_free(zkr_barrier_t *b) {
  zkr__fx_t fx = ZKR__FX_INIT;
  if (!b || !zkr__obj_free_begin(&b->o))
    return;
  bar_end(b, ZKR_ECANCELED, &fx);
  zkr__nodewatch_stop(&b->nw);
  zkr__obj_free_end(&b->o, &fx);
}

/* ---- double barrier ---- */

struct zkr_dbarrier {
  zkr__obj_t o; /* first */
  char *path, *ready_path;
  int n;
  /* (o.mu) */
  int op;
  bool once;
  bool entered;
  char name[40];      /* our member node's name ("" while none is made) */
  char node[4096];    /* ... its path */
  bool have_node;     /* it exists, as far as we know */
  bool ambiguous;     /* its create's reply was lost */
  int64_t czxid;      /* its czxid */
  uint64_t gen;       /* the session generation it was made on */
  uint32_t tok;       /* the current step's token */
  int replies;        /* enter's check: replies still to come */
  bool recheck;       /* ... a watch fired before they all came */
  int members;        /* ... members listed */
  bool mine_listed;   /* ... our node among them */
  bool ready;         /* ... P/ready exists */
  int64_t ready_czxid;
  int32_t ready_version;
  int parent_rounds, parent_err;
  zkr__tmr_t *deadline;
  zkr_dbarrier_cb cb;
  void *arg;
};

#define DB(o) ((zkr_dbarrier_t *)(o))

/* A member's node: Curator's (a UUID) or kazoo's (32 hex digits). */
static bool is_member(const char *name) {
  size_t n = strlen(name);
  if (n == 32)
    return strspn(name, "0123456789abcdef") == 32;
  if (n != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? name[i] != '-' : !strchr("0123456789abcdefABCDEF", name[i]))
      return false;
  }
  return true;
}

static void db_withdraw(zkr_dbarrier_t *d) {
  if (d->have_node || d->ambiguous)
    zkr__janitor_delete(d->o.s, d->gen, d->node, NULL, NULL);
  d->have_node = d->ambiguous = false;
  d->name[0] = '\0';
}

static void db_end(zkr_dbarrier_t *d, int rc, zkr__fx_t *fx) {
  if (d->op == OP_NONE)
    return;
  if (rc != 0)
    db_withdraw(d); /* nobody counts a member that gave up */
  if (rc == 0 && d->op == OP_ENTER)
    d->entered = true;
  if (d->op == OP_LEAVE && rc == 0)
    d->entered = false;
  if (d->op == OP_LEAVE && rc != 0)
    d->entered = false; /* our node is gone: we are out */
  zkr__fx_add(fx, run_cb, ZKR__FN(d->cb), d->arg, rc);
  d->op = OP_NONE;
  d->tok = 0;
  d->cb = NULL;
  d->o.wait = ZKR__WAIT_NONE;
  zkr__obj_timer_stop(&d->o, &d->deadline);
  zkr__obj_timer_stop(&d->o, &d->o.resume_timer);
}

static int db_step(zkr_dbarrier_t *d);

static void db_trouble(zkr_dbarrier_t *d, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN:
    if (d->once)
      db_end(d, ZKR_ETIMEDOUT, fx);
    else
      zkr__obj_wait(&d->o, ZKR__WAIT_CONN, 0);
    break;
  case ZKR__RC_SESSION: /* what the old session made is gone: on a new one */
    if (d->once)
      db_end(d, ZKR_ETIMEDOUT, fx);
    else
      zkr__obj_wait(&d->o, ZKR__WAIT_SESSION, d->gen);
    break;
  case ZKR__RC_CLOSED: db_end(d, ZKR_ECLOSED, fx); break;
  default: db_end(d, rc, fx);
  }
}

/* Go on: the next step of the pending call, or trouble. */
static void db_next(zkr_dbarrier_t *d, zkr__fx_t *fx) {
  int rc;
  if (d->op != OP_NONE && (rc = db_step(d)) != 0)
    db_trouble(d, rc, fx);
}

static void on_db_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r, (void)fx;
  if (rq->tok == d->tok && rc != ZOK && rc != ZNODEEXISTS && !d->parent_err &&
      zkr__rc_class(rc) == ZKR__RC_FINAL)
    d->parent_err = rc;
}

static int send_member(zkr_dbarrier_t *d, bool parents);

static void on_member_created(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                              zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  if (rq->tok != d->tok || d->op != OP_ENTER) {
    if (rc == ZOK && r->path) /* a create that no longer matters */
      zkr__janitor_delete(o->s, rq->gen, r->path, NULL, NULL);
    return;
  }
  if (rc == ZOK) {
    d->have_node = true;
    d->ambiguous = false;
    d->czxid = r->stat ? r->stat->czxid : 0;
    db_next(d, fx);
  } else if (rc == ZNONODE) {
    if (d->parent_err)
      db_end(d, d->parent_err, fx);
    else if (++d->parent_rounds > MAX_PARENT_ROUNDS)
      db_end(d, ZNONODE, fx);
    else if ((rc = send_member(d, true)) != 0)
      db_trouble(d, rc, fx);
  } else if (rc == ZNODEEXISTS) {
    d->ambiguous = true; /* ours from a lost reply? its owner says */
    db_next(d, fx);
  } else {
    if (zkr__rc_class(rc) == ZKR__RC_CONN)
      d->ambiguous = true;
    db_trouble(d, rc, fx);
  }
}

static int send_member(zkr_dbarrier_t *d, bool parents) {
  char data[300];
  zkr__send_t x;
  int rc, len;

  d->tok = zkr__obj_token(&d->o);
  d->parent_err = 0;
  d->gen = zkr__session_gen(d->o.s);
  if (parents && (rc = zkr__send_parents(&d->o, d->gen, d->path, true,
                                         zkr_session_acl(d->o.s), on_db_parent, d->tok, d)) != 0)
    return rc;
  if ((rc = zkr__send_begin(&x, &d->o, d->gen, ZKR__K_CREATE, on_member_created, d->tok, 0)) !=
      0)
    return rc;
  len = host_pid(data, sizeof(data));
  return zkr__send_end(&x, zoo_acreate2(x.c.zh, d->node, data, len, zkr_session_acl(d->o.s),
                                        ZOO_EPHEMERAL, zkr__cb_string_stat, x.c.op));
}

/* A create whose reply was lost, or ZNODEEXISTS: is the node ours? */
static void on_member_owner(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                            zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  if (rq->tok != d->tok || d->op != OP_ENTER)
    return;
  d->ambiguous = false;
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(d->o.s)) {
    d->have_node = true;
    d->czxid = r->stat->czxid;
  } else if (rc == ZOK || rc == ZNONODE) {
    d->name[0] = '\0'; /* not ours, or never made: a new name */
  } else {
    if (zkr__rc_class(rc) == ZKR__RC_CONN)
      d->ambiguous = true;
    db_trouble(d, rc, fx);
    return;
  }
  db_next(d, fx);
}

static void enter_decide(zkr_dbarrier_t *d, zkr__fx_t *fx);

static void on_check_ready(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  if (rq->tok != d->tok || d->op != OP_ENTER)
    return;
  if (rc == ZOK && r->stat) {
    d->ready = true;
    d->ready_czxid = r->stat->czxid;
    d->ready_version = r->stat->version;
  } else if (rc == ZNONODE) {
    d->ready = false;
  } else {
    d->tok = zkr__obj_token(o); /* the listing's reply is stale now */
    db_trouble(d, rc, fx);
    return;
  }
  if (--d->replies == 0)
    enter_decide(d, fx);
}

static void on_check_children(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                              zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  if (rq->tok != d->tok || d->op != OP_ENTER)
    return;
  if (rc == ZNONODE) { /* P went (a reaped container), and our node with it */
    d->tok = zkr__obj_token(o);
    d->have_node = false;
    d->name[0] = '\0';
    db_next(d, fx);
    return;
  }
  if (rc != ZOK) {
    d->tok = zkr__obj_token(o); /* the other reply is stale now */
    db_trouble(d, rc, fx);
    return;
  }
  d->members = 0;
  d->mine_listed = false;
  for (int i = 0; r->strings && i < r->strings->count; i++) {
    const char *c = r->strings->data[i];
    if (is_member(c)) {
      d->members++;
      d->mine_listed |= strcmp(c, d->name) == 0;
    }
  }
  if (--d->replies == 0)
    enter_decide(d, fx);
}

/* A watch of the check fired: look again (a stale one fires into nothing). */
static void on_check_event(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r;
  if (rq->tok != d->tok || d->op != OP_ENTER || rc != ZOK)
    return;
  if (d->replies != 0)
    d->recheck = true; /* before the other reply: look again once it came */
  else
    db_next(d, fx);
}

static void on_ready_made(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r;
  if (rq->tok != d->tok || d->op != OP_ENTER)
    return;
  if (rc == ZOK || rc == ZNODEEXISTS)
    db_end(d, 0, fx); /* (made by another member meanwhile: as good) */
  else if (rc == ZBADVERSION || rc == ZNONODE)
    db_next(d, fx); /* the old one changed or went meanwhile: look again */
  else
    db_trouble(d, rc, fx);
}

/* N members, P/ready missing or older than our node: make it (replacing the
 * old one by its version, in one transaction), then pass. */
static int send_ready(zkr_dbarrier_t *d) {
  zkr__send_t x;
  zoo_op_t ops[2];
  int rc, n = 0;

  d->tok = zkr__obj_token(&d->o);
  if ((rc = zkr__send_begin(&x, &d->o, d->gen, d->ready ? ZKR__K_MULTI : ZKR__K_CREATE,
                            on_ready_made, d->tok, 0)) != 0)
    return rc;
  if (!d->ready)
    return zkr__send_end(&x, zoo_acreate(x.c.zh, d->ready_path, NULL, -1,
                                         zkr_session_acl(d->o.s), 0, zkr__cb_string, x.c.op));
  if ((rc = zkr__send_results(&x, 2)) != 0)
    return zkr__send_end(&x, rc);
  zoo_delete_op_init(&ops[n++], d->ready_path, d->ready_version);
  zoo_create_op_init(&ops[n++], d->ready_path, NULL, -1, zkr_session_acl(d->o.s), 0, NULL, 0);
  return zkr__send_end(&x, zoo_amulti(x.c.zh, n, ops, x.c.results, zkr__cb_void, x.c.op));
}

static void enter_decide(zkr_dbarrier_t *d, zkr__fx_t *fx) {
  bool fresh = d->ready && d->ready_czxid > d->czxid;
  int rc;

  if (!d->mine_listed) { /* our node is gone (deleted by someone): make it again */
    d->have_node = false;
    d->name[0] = '\0';
    db_next(d, fx);
    return;
  }
  if (fresh) {
    db_end(d, 0, fx);
  } else if (d->members >= d->n) {
    if ((rc = send_ready(d)) != 0)
      db_trouble(d, rc, fx);
  } else if (d->once) {
    db_end(d, ZKR_ETIMEDOUT, fx);
  } else if (d->recheck) {
    db_next(d, fx);
  }
  /* else: the watches set with the check wake us */
}

static int send_check(zkr_dbarrier_t *d) {
  zkr__send_t x;
  int rc;

  d->tok = zkr__obj_token(&d->o);
  d->replies = 2;
  d->recheck = false;
  if ((rc = zkr__send_begin(&x, &d->o, d->gen, ZKR__K_EXISTS, on_check_ready, d->tok, 0)) !=
      0)
    return rc;
  if ((rc = zkr__send_watch(&x, on_check_event, d->tok, 0)) != 0)
    return zkr__send_end(&x, rc);
  if ((rc = zkr__send_end(&x, zoo_awexists(x.c.zh, d->ready_path, zkr__watcher, x.c.watch,
                                           zkr__cb_stat, x.c.op))) != 0)
    return rc;
  if ((rc = zkr__send_begin(&x, &d->o, d->gen, ZKR__K_CHILDREN, on_check_children, d->tok,
                            0)) != 0)
    return rc;
  if ((rc = zkr__send_watch(&x, on_check_event, d->tok, 0)) != 0)
    return zkr__send_end(&x, rc);
  return zkr__send_end(&x, zoo_awget_children(x.c.zh, d->path, zkr__watcher, x.c.watch,
                                              zkr__cb_strings, x.c.op));
}

/* ---- leave ---- */

static void on_leave_event(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r;
  if (rq->tok == d->tok && d->op == OP_LEAVE && rc == ZOK)
    db_next(d, fx);
}

static void on_leave_watched(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                             zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r;
  if (rq->tok != d->tok || d->op != OP_LEAVE)
    return;
  if (rc == ZNONODE)
    db_next(d, fx); /* gone already: look again */
  else if (rc == ZOK && d->once)
    db_end(d, ZKR_ETIMEDOUT, fx);
  else if (rc != ZOK)
    db_trouble(d, rc, fx);
  /* ZOK: its event wakes us */
}

static void on_mine_deleted(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                            zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)r;
  if (rq->tok != d->tok || d->op != OP_LEAVE)
    return;
  if (rc == ZOK || rc == ZNONODE) {
    d->have_node = false;
    d->name[0] = '\0';
    db_next(d, fx);
  } else {
    db_trouble(d, rc, fx);
  }
}

static int send_watch_member(zkr_dbarrier_t *d, const char *name) {
  char p[4200];
  zkr__send_t x;
  int rc;
  snprintf(p, sizeof(p), "%s/%s", d->path, name);
  if ((rc = zkr__send_begin(&x, &d->o, 0, ZKR__K_EXISTS, on_leave_watched, d->tok, 0)) != 0)
    return rc;
  if ((rc = zkr__send_watch(&x, on_leave_event, d->tok, 0)) != 0)
    return zkr__send_end(&x, rc);
  return zkr__send_end(
      &x, zoo_awexists(x.c.zh, p, zkr__watcher, x.c.watch, zkr__cb_stat, x.c.op));
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_leave_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                            zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  char **m = NULL;
  int n = 0, mine = -1;
  zkr__send_t x;

  if (rq->tok != d->tok || d->op != OP_LEAVE)
    return;
  if (rc != ZOK && rc != ZNONODE) {
    db_trouble(d, rc, fx);
    return;
  }
  if (rc == ZOK && r->strings && r->strings->count > 0 &&
      !(m = calloc((size_t)r->strings->count, sizeof(*m)))) {
    db_end(d, ZKR_ENOMEM, fx);
    return;
  }
  for (int i = 0; rc == ZOK && r->strings && i < r->strings->count; i++)
    if (is_member(r->strings->data[i]))
      m[n++] = r->strings->data[i];
  if (n > 0)
    qsort(m, (size_t)n, sizeof(*m), cmp_names);
  for (int i = 0; i < n; i++)
    if (d->have_node && strcmp(m[i], d->name) == 0)
      mine = i;
  if (mine < 0)
    d->have_node = false; /* (gone with an expired session) */
  d->tok = zkr__obj_token(o);
  if (n == 0) {
    zkr__janitor_delete(o->s, 0, d->ready_path, NULL, NULL); /* as Curator: at the end */
    db_end(d, 0, fx);
  } else if (mine >= 0 && (n == 1 || mine > 0)) {
    /* only ours, or not the lowest: ours goes first */
    if ((rc = zkr__send_begin(&x, o, d->gen, ZKR__K_DELETE, on_mine_deleted, d->tok, 0)) == 0)
      rc = zkr__send_end(&x, zoo_adelete(x.c.zh, d->node, -1, zkr__cb_void, x.c.op));
    if (rc != 0)
      db_trouble(d, rc, fx);
  } else if ((rc = send_watch_member(d, mine == 0 ? m[n - 1] : m[0])) != 0) {
    /* ours the lowest: wait for the highest; else for the lowest */
    db_trouble(d, rc, fx);
  }
  free(m);
}

static int send_leave_list(zkr_dbarrier_t *d) {
  zkr__send_t x;
  int rc;
  d->tok = zkr__obj_token(&d->o);
  if ((rc = zkr__send_begin(&x, &d->o, 0, ZKR__K_CHILDREN, on_leave_listed, d->tok, 0)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_aget_children(x.c.zh, d->path, 0, zkr__cb_strings, x.c.op));
}

/* The next step of the pending call, from what is known. */
static int db_step(zkr_dbarrier_t *d) {
  zkr__send_t x;
  char g[37];
  int rc;

  if (d->op == OP_LEAVE)
    return send_leave_list(d);
  if (d->ambiguous) { /* is the node of the lost reply ours? */
    d->tok = zkr__obj_token(&d->o);
    if ((rc = zkr__send_begin(&x, &d->o, 0, ZKR__K_EXISTS, on_member_owner, d->tok, 0)) != 0)
      return rc;
    return zkr__send_end(&x, zoo_aexists(x.c.zh, d->node, 0, zkr__cb_stat, x.c.op));
  }
  if (!d->have_node) {
    if (!d->name[0]) {
      if ((rc = zkr__guid(g)) != 0)
        return rc;
      snprintf(d->name, sizeof(d->name), "%s", g);
      snprintf(d->node, sizeof(d->node), "%s/%s", d->path, d->name);
    }
    d->parent_rounds = 0;
    return send_member(d, false);
  }
  return send_check(d);
}

static void db_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_dbarrier_t *d = DB(o);
  (void)fx;
  if (event != ZKR_SESSION_LOST)
    return;
  if (d->have_node || d->ambiguous) {
    d->have_node = d->ambiguous = false; /* gone with the session */
    d->name[0] = '\0';
  }
  if (d->op != OP_NONE && d->o.wait == ZKR__WAIT_NONE) {
    d->tok = zkr__obj_token(o);                    /* the watches went with it */
    zkr__obj_wait(o, ZKR__WAIT_SESSION, d->gen); /* go on on the new session */
  }
}

static void db_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  db_next(DB(o), fx);
}

static void db_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  db_end(DB(o), fired ? ZKR_ETIMEDOUT : ZKR_ECLOSED, fx);
}

static void db_destroy(zkr__obj_t *o) {
  free(DB(o)->path);
  free(DB(o)->ready_path);
  zkr__obj_fini(o);
  free(o);
}

static const zkr__obj_ops_t db_ops = {.name = "double barrier",
                                      .on_session = db_on_session,
                                      .resume = db_resume,
                                      .destroy = db_destroy};

int zkr_dbarrier_new(zkr_session_t *s, const char *path, int members, zkr_dbarrier_t **out) {
  zkr_dbarrier_t *d;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || members < 1 || members > MAX_MEMBERS ||
      strlen(path) > 4000)
    return ZKR_EINVAL;
  if (!(d = zkr__obj_new(sizeof(*d), &db_ops, s)))
    return ZKR_ENOMEM;
  d->n = members;
  if (!(d->path = strdup(path)) || !(d->ready_path = zkr__path_join(path, "ready"))) {
    zkr__obj_unref(&d->o);
    return ZKR_ENOMEM;
  }
  if ((rc = zkr__obj_listen(&d->o)) != 0) {
    zkr__obj_unref(&d->o);
    return rc;
  }
  *out = d;
  return 0;
}

static int db_start(zkr_dbarrier_t *d, int op, int timeout_ms, zkr_dbarrier_cb cb,
                    void *arg) {
  int rc = 0;

  if (!d || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&d->o.mu);
  if (d->o.freed)
    rc = ZKR_ECLOSED;
  else if (d->op != OP_NONE || (op == OP_ENTER && d->entered))
    rc = ZKR_EBUSY;
  else if (op == OP_LEAVE && !d->entered)
    rc = ZKR_ENOTHELD;
  if (rc == 0) {
    d->op = op;
    d->cb = cb;
    d->arg = arg;
    d->once = timeout_ms == 0;
    if ((rc = db_step(d)) != 0 && zkr__rc_class(rc) != ZKR__RC_CLOSED &&
        zkr__rc_class(rc) != ZKR__RC_FINAL) {
      zkr__obj_wait(&d->o, ZKR__WAIT_CONN, 0); /* not connected: sent when it is */
      rc = 0;
    }
    if (rc == 0 && timeout_ms > 0)
      rc = zkr__obj_timer(&d->o, &d->deadline, (zkr__now_ms() + timeout_ms) * 1000,
                          db_deadline);
    if (rc != 0) { /* the callback never runs */
      if (op == OP_ENTER)
        db_withdraw(d);
      d->op = OP_NONE;
      d->cb = NULL;
      d->tok = 0;
      d->o.wait = ZKR__WAIT_NONE;
    }
  }
  pthread_mutex_unlock(&d->o.mu);
  return rc;
}

int zkr_dbarrier_enter_async(zkr_dbarrier_t *d, int timeout_ms, zkr_dbarrier_cb cb,
                             void *arg) {
  return db_start(d, OP_ENTER, timeout_ms, cb, arg);
}

int zkr_dbarrier_leave_async(zkr_dbarrier_t *d, int timeout_ms, zkr_dbarrier_cb cb,
                             void *arg) {
  return db_start(d, OP_LEAVE, timeout_ms, cb, arg);
}

static void db_sync_cb(zkr_dbarrier_t *d, int rc, void *arg) {
  (void)d;
  zkr__sync_signal(arg, rc);
}

static int db_sync(zkr_dbarrier_t *d, int op, int timeout_ms) {
  zkr__sync_t y;
  int rc;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  return zkr__sync_wait(&y, db_start(d, op, timeout_ms, db_sync_cb, &y));
}

int zkr_dbarrier_enter(zkr_dbarrier_t *d, int timeout_ms) {
  return db_sync(d, OP_ENTER, timeout_ms);
}

int zkr_dbarrier_leave(zkr_dbarrier_t *d, int timeout_ms) {
  return db_sync(d, OP_LEAVE, timeout_ms);
}

const char *zkr_dbarrier_node(zkr_dbarrier_t *d, char *buf, size_t size) {
  const char *n = NULL;
  if (!d || !buf || size == 0)
    return NULL;
  pthread_mutex_lock(&d->o.mu);
  if (d->have_node && strlen(d->name) < size) {
    strcpy(buf, d->name);
    n = buf;
  }
  pthread_mutex_unlock(&d->o.mu);
  return n;
}

void zkr_dbarrier_free(zkr_dbarrier_t *d) {
  zkr__fx_t fx = ZKR__FX_INIT;
  if (!d || !zkr__obj_free_begin(&d->o))
    return;
  db_end(d, ZKR_ECANCELED, &fx);
  db_withdraw(d);
  zkr__obj_free_end(&d->o, &fx);
}
