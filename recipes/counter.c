/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared counter.
 *
 * Znodes:
 *   P                       PERSISTENT, data = big-endian int64 (8 bytes) or int32
 *                           (4 bytes); empty or missing reads as 0. Parents are
 *                           CONTAINER nodes.
 *   P.zkr-markers/          CONTAINER, a sibling readers of P never look at
 *   P.zkr-markers/<guid>-N  EPHEMERAL, empty: "this object's write number N applied"
 *
 * Algorithm: every write is one zoo_multi of
 *   setData(P, v', version)   (create(P, v') when P is missing)
 *   create(marker N)          (this operation's marker)
 *   delete(marker N-1)        (this object's previous marker, if any)
 * so each object keeps at most one marker, and the marker of a write exists iff
 * the write applied (while the session lives: markers are ephemeral). After a
 * lost reply (ZCONNECTIONLOSS/ZOPERATIONTIMEOUT) the marker is looked up once
 * the connection is back: present = applied, absent = not applied (then the write
 * is simply made again). If the session expires first, the outcome is
 * ZKR_EUNKNOWN: never a guess, never a silent retry.
 *
 * Round trips: the value, version and czxid of the last reply are kept (the
 * cache), so an uncontended add is one write round trip. The cache is tied to
 * the node's incarnation: versions restart at 0 when P is deleted and created
 * again, so a version from an earlier incarnation could pass on a new one and
 * write a value computed from the old node (a lost update). A data watch on P
 * (set by our reads, or by an exists sent after each write) is kept while the
 * cache is valid; any notification we cannot attribute to our own write in
 * flight, a watch that could not be set, or a stat whose czxid or version
 * differs from the cache, empties the cache, and the next write reads first.
 * What remains: ZooKeeper has no check on czxid, so a delete and re-create that
 * both land within about one round trip before our write (after our last reply
 * or exists, before its notification reaches us) cannot be seen in time; that is
 * the same window a plain getData + versioned setData has, between the two.
 * Should it happen, the write's reply shows another czxid and it is logged.
 * A watch stays registered in the client until it fires: one set for a write
 * outlives its object until P next changes, holding only a small anchor (see
 * anchor_t), and a get sets none, so objects made and freed around a quiet node
 * do not pile watches up.
 * After conflicts ("contended"), a
 * getData is pipelined right behind each write, so a losing write already has the
 * fresh value and version; the loser then waits a random part of a window that
 * grows with its consecutive conflicts and scales with the observed write round
 * trip (contention management is what raises throughput: every losing write
 * still costs the server a logged transaction).
 *
 * Operations of one object run one at a time (a FIFO queue; the head is active).
 * Replies carry the token of the request that sent them; a reply whose token is
 * not the one the head waits for is stale.
 *
 * Locking: c->mu guards everything marked (mu); handlers run in callback context
 * (dispatch mutex, then c->mu); user callbacks run after c->mu is released.
 */
#include "internal.h"
#include "recipes_internal.h"
#include "zkrecipes/counter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_SUFFIX     ".zkr-markers"
#define NAME_MAX_         128
#define PATH_MAX_         (ZKR__PATH_MAX + NAME_MAX_)
#define MAX_PARENT_ROUNDS 8
#define CONTENDED_WRITES                                                                 \
  64 /* keep pipelining reads this many writes after a conflict                          \
      */

enum { OP_GET, OP_ADD, OP_SET, OP_CAS };
enum {
  PH_START,   /* not started */
  PH_READ,    /* a read is in flight (read_tok) */
  PH_WRITE,   /* a write is in flight (write_tok) */
  PH_FRESH,   /* the write lost; waiting for the pipelined read (read_tok) */
  PH_BACKOFF, /* waiting before writing again (backoff timer) */
  PH_RESOLVE, /* the write's reply was lost; the marker check (check_tok) or a
                 reconnect is awaited */
  PH_WAIT     /* waiting for the connection (wait_reconnect) or a new session */
};
enum {
  RQ_READ,
  RQ_WRITE,
  RQ_PREAD,
  RQ_CHECK,
  RQ_PARENT,
  RQ_LREAD,
  RQ_LEXISTS,
  RQ_LWATCH,
  RQ_ARM /* exists that sets the cache watch */
};

/* The counter as the cache watch sees it. A watch stays registered in the
 * client until it fires, however long that takes, so it must not keep the
 * counter alive: it holds this anchor instead, whose c is cleared (in callback
 * context) when the counter is freed. */
typedef struct anchor {
  _Atomic int refs;
  zkr_counter_t *c; /* NULL once the counter is freed; read in callback context */
} anchor_t;

typedef struct cwatch {
  anchor_t *a; /* holds a reference */
  uint32_t tok;
} cwatch_t;

typedef struct cop {
  struct cop *next;
  int rc;        /* once finished */
  int64_t value; /* once finished */
  int kind;
  int64_t a, b; /* add: delta; set: value; cas: expected, value */
  zkr_counter_cb cb;
  void *arg;
  int64_t deadline; /* ms, -1: none */
  int nowait;       /* timeout 0: end (ZKR_ETIMEDOUT, or ZKR_EUNKNOWN if a write's
                       outcome is open) wherever the operation would wait */
  int fresh;        /* the cached value was read during this operation */
  int conflicts;
  int parent_rounds;
  int64_t newval;
  char marker[NAME_MAX_]; /* the marker of the write in flight or being resolved */
  uint64_t wgen;          /* session generation of that write */
} cop_t;

struct zkr_counter {
  pthread_mutex_t mu;
  _Atomic int refs; /* user + requests, watches and timers in flight */
  zkr_session_t *s; /* holds a reference */
  char *path, *mdir;
  int enc;
  unsigned listener_id;
  char guid[33];

  /* (mu) */
  int freed;
  int stopped; /* the session was freed: nothing can run any more */
  cop_t *head, *tail;
  int phase;
  uint32_t tok;
  uint32_t read_tok, write_tok, check_tok;
  uint64_t backoff_timer, deadline_timer;
  int wait_reconnect, wait_session;
  int cache_valid; /* cache_* below describe P as of the last reply */
  int missing;     /* ... P did not exist */
  int64_t cache_val;
  int32_t cache_ver;
  int64_t cache_czxid; /* P's incarnation; 0 when not known yet (after a create) */
  int w_set;           /* the data watch guarding the cache is set or being set */
  anchor_t *anchor;    /* what that watch holds; see anchor_t */
  uint32_t w_tok;      /* token of that watch */
  char prev_marker[NAME_MAX_]; /* this object's marker that exists, "" if none */
  uint64_t prev_gen;           /* session generation of prev_marker */
  uint64_t mseq;
  int contended;   /* writes left that get a pipelined read */
  int64_t lat_us;  /* running estimate of a write round trip */
  int64_t sent_us; /* when the write in flight was sent */
  uint64_t rng;    /* xorshift state for backoff */
  zkr__counter_stats_t stats;

  /* change listener (mu) */
  zkr_counter_listener_fn lfn;
  void *larg;
  uint32_t l_tok; /* current arming request/watch */
  int l_armed;    /* a watch is set or being set */
  int l_have;     /* l_ver/l_czxid hold the last value delivered */
  int32_t l_ver;
  int64_t l_czxid;
};

/* A request or watch in flight. */
typedef struct crq {
  zkr_counter_t *c; /* holds a reference */
  int kind;
  uint32_t tok;
  uint64_t gen;
  char marker[NAME_MAX_];  /* writes: to clean up after a stale reply */
  struct Stat stat;        /* writes: setData's result */
  char (*pbuf)[PATH_MAX_]; /* writes: room for the two created paths */
} crq_t;

/* Effects gathered under c->mu, delivered after it is released. */
typedef struct notes {
  cop_t *done, *done_tail; /* finished operations, in order */
  int ndone;
  int has_value;
  int64_t lvalue;
  int32_t lversion;
} notes_t;

static void counter_ref(zkr_counter_t *c) {
  atomic_fetch_add(&c->refs, 1);
}

static void anchor_unref(anchor_t *a) {
  if (atomic_fetch_sub(&a->refs, 1) == 1)
    free(a);
}

static void counter_unref(zkr_counter_t *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  while (c->head) {
    cop_t *o = c->head;
    c->head = o->next;
    free(o);
  }
  if (c->anchor) /* never freed through zkr_counter_free (a failed new) */
    anchor_unref(c->anchor);
  zkr__session_unref(c->s);
  pthread_mutex_destroy(&c->mu);
  free(c->path);
  free(c->mdir);
  free(c);
}

/* ---- encoding ---- */

static int64_t enc_min(int enc) {
  return enc == 4 ? INT32_MIN : INT64_MIN;
}
static int64_t enc_max(int enc) {
  return enc == 4 ? INT32_MAX : INT64_MAX;
}

static int decode(int enc, const char *data, int len, int64_t *out) {
  uint64_t v = 0;
  if (len <= 0) { /* empty (or no data at all) reads as 0 */
    *out = 0;
    return 0;
  }
  if (len != enc || !data)
    return ZKR_EBADDATA;
  for (int i = 0; i < len; i++)
    v = (v << 8) | (unsigned char)data[i];
  *out = enc == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
  return 0;
}

static void encode(int enc, int64_t value, char *buf) {
  uint64_t v = (uint64_t)value;
  for (int i = enc - 1; i >= 0; i--) {
    buf[i] = (char)(v & 0xff);
    v >>= 8;
  }
}

/* ---- bookkeeping (c->mu held) ---- */

static void note_done(notes_t *n, cop_t *o, int rc, int64_t value) {
  o->rc = rc;
  o->value = value;
  o->next = NULL;
  if (n->done_tail)
    n->done_tail->next = o;
  else
    n->done = o;
  n->done_tail = o;
  n->ndone++;
}

/* In callback context, c->mu released. */
static void deliver(zkr_counter_t *c, notes_t *n) {
  if (n->has_value) {
    zkr_counter_listener_fn fn;
    void *arg;
    pthread_mutex_lock(&c->mu);
    fn = c->freed ? NULL : c->lfn;
    arg = c->larg;
    pthread_mutex_unlock(&c->mu);
    if (fn)
      fn(c, n->lvalue, n->lversion, arg);
  }
  while (n->done) {
    cop_t *o = n->done;
    n->done = o->next;
    if (o->cb)
      o->cb(c, o->rc, o->value, o->arg);
    free(o);
  }
  n->done_tail = NULL;
}

static uint64_t rnd(zkr_counter_t *c) {
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  return c->rng;
}

static crq_t *rq_new(zkr_counter_t *c, int kind, uint32_t tok) {
  crq_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->c = c;
  r->kind = kind;
  r->tok = tok;
  counter_ref(c);
  return r;
}

static void rq_free(crq_t *r) {
  zkr_counter_t *c = r->c;
  free(r->pbuf);
  free(r);
  counter_unref(c);
}

static void on_reply(void *ctx, int rc, const zkr__reply_t *rep);
static void on_watch(void *ctx, int rc, const zkr__reply_t *rep);

static int start_op(zkr_counter_t *c, notes_t *n);
static void finish(zkr_counter_t *c, int rc, int64_t value, notes_t *n);
static void end_unknown(zkr_counter_t *c, notes_t *n);

/* ---- requests (c->mu held) ---- */

static void on_cache_watch(void *ctx, int rc, const zkr__reply_t *rep);

/* Ask for the cache watch with call (none was set). Its context is freed by
 * on_cache_watch, which runs exactly once. */
static int want_cache_watch(zkr_counter_t *c, zkr__call_t *call) {
  cwatch_t *w = malloc(sizeof(*w));
  if (!w)
    return ZKR_ENOMEM;
  w->a = c->anchor;
  w->tok = ++c->tok;
  atomic_fetch_add(&w->a->refs, 1);
  if (zkr__call_watch(call, on_cache_watch, w) != 0) {
    anchor_unref(w->a);
    free(w);
    return ZKR_ENOMEM;
  }
  c->w_tok = w->tok;
  c->w_set = 1;
  return 0;
}

/* A read of P; for a write to come, it also sets the cache watch when none is
 * set or being set (a get alone sets none: a watch outlives the object that set
 * it until P changes, and a get loop on a quiet node must not pile them up). */
static int send_read(zkr_counter_t *c, int kind, uint32_t tok, uint64_t gen) {
  crq_t *r = rq_new(c, kind, tok);
  zkr__call_t call;
  int rc, watch;
  if (!r)
    return ZKR_ENOMEM;
  if ((rc = zkr__call_begin(c->s, gen, ZKR__K_GET, on_reply, r, &call)) != 0) {
    rq_free(r);
    return rc;
  }
  r->gen = call.gen;
  c->stats.reads++;
  watch =
      !c->w_set && c->head && c->head->kind != OP_GET && want_cache_watch(c, &call) == 0;
  rc = watch
           ? zoo_awget(call.zh, c->path, zkr__watcher, call.watch, zkr__cb_data, call.op)
           : zoo_aget(call.zh, c->path, 0, zkr__cb_data, call.op);
  if ((rc = zkr__call_end(&call, rc)) != 0) {
    if (watch)
      c->w_set = 0; /* refused: neither the reply nor the watch will run */
    rq_free(r);
  }
  return rc;
}

/* The cache is valid and nothing guards it: set the watch with an exists (its
 * reply also tells whether P changed since the reply the cache came from). */
static void arm_cache_watch(zkr_counter_t *c) {
  crq_t *r;
  zkr__call_t call;
  int rc;

  /* A missing P needs no guard: the next write is a create, which fails if
   * anyone made P meanwhile. */
  if (!c->cache_valid || c->missing || c->w_set || c->freed || c->stopped)
    return;
  if (!(r = rq_new(c, RQ_ARM, 0)))
    goto fail;
  if (zkr__call_begin(c->s, 0, ZKR__K_WATCH, on_reply, r, &call) != 0) {
    rq_free(r);
    goto fail;
  }
  r->gen = call.gen;
  if (want_cache_watch(c, &call) != 0) {
    zkr__call_end(&call, ZKR_ENOMEM);
    rq_free(r);
    goto fail;
  }
  r->tok = c->w_tok;
  rc = zoo_awexists(call.zh, c->path, zkr__watcher, call.watch, zkr__cb_stat, call.op);
  if (zkr__call_end(&call, rc) != 0) {
    c->w_set = 0;
    rq_free(r);
    goto fail;
  }
  return;
fail:
  c->cache_valid = 0; /* unguarded: the next write reads first */
}

/* Containers for every ancestor of P and for the markers node, outermost first. */
static int send_parents(zkr_counter_t *c) {
  const char *paths[2] = {c->path, c->mdir};
  int rc;
  for (int k = 0; k < 2; k++) {
    const char *p = paths[k];
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
      char buf[PATH_MAX_];
      crq_t *r;
      zkr__call_t call;
      if (!(i == n ? k == 1 : p[i] == '/'))
        continue; /* P itself is not a container: it is made by the write */
      if (k == 1 && i < n && strncmp(p, c->path, i) == 0 && c->path[i] == '/')
        continue; /* already sent for P */
      memcpy(buf, p, i);
      buf[i] = '\0';
      if (!(r = rq_new(c, RQ_PARENT, 0)))
        return ZKR_ENOMEM;
      if ((rc = zkr__call_begin(c->s, 0, ZKR__K_CREATE, on_reply, r, &call)) != 0) {
        rq_free(r);
        return rc;
      }
      rc = zkr__call_end(&call, zoo_acreate(call.zh, buf, NULL, -1, zkr_session_acl(c->s),
                                            ZOO_CONTAINER, zkr__cb_string, call.op));
      if (rc != 0) {
        rq_free(r);
        return rc;
      }
    }
  }
  return 0;
}

/* The write of the head operation: one multi, maybe a read pipelined behind. */
static int send_write(zkr_counter_t *c) {
  cop_t *o = c->head;
  zoo_op_t ops[3];
  char val[8], mpath[PATH_MAX_], ppath[PATH_MAX_];
  int nops = 2, rc;
  crq_t *r;
  zkr__call_t call;
  uint64_t gen = c->prev_marker[0] ? c->prev_gen : 0;

  encode(c->enc, o->newval, val);
  snprintf(o->marker, sizeof(o->marker), "%s-%llu", c->guid,
           (unsigned long long)++c->mseq);
  snprintf(mpath, sizeof(mpath), "%s/%s", c->mdir, o->marker);
  c->write_tok = ++c->tok;
  if (!(r = rq_new(c, RQ_WRITE, c->write_tok)))
    return ZKR_ENOMEM;
  if (!(r->pbuf = malloc(2 * sizeof(*r->pbuf)))) {
    rq_free(r);
    return ZKR_ENOMEM;
  }
  snprintf(r->marker, sizeof(r->marker), "%s", o->marker);
  if (c->missing)
    zoo_create_op_init(&ops[0], c->path, val, c->enc, zkr_session_acl(c->s), 0,
                       r->pbuf[0], (int)sizeof(r->pbuf[0]));
  else
    zoo_set_op_init(&ops[0], c->path, val, c->enc, c->cache_ver, &r->stat);
  zoo_create_op_init(&ops[1], mpath, NULL, -1, zkr_session_acl(c->s), ZOO_EPHEMERAL,
                     r->pbuf[1], (int)sizeof(r->pbuf[1]));
  if (c->prev_marker[0]) {
    snprintf(ppath, sizeof(ppath), "%s/%s", c->mdir, c->prev_marker);
    zoo_delete_op_init(&ops[2], ppath, -1);
    nops = 3;
  }
  if ((rc = zkr__call_begin(c->s, gen, ZKR__K_MULTI, on_reply, r, &call)) != 0) {
    rq_free(r);
    return rc;
  }
  if ((rc = zkr__call_results(&call, nops)) != 0) {
    zkr__call_end(&call, rc);
    rq_free(r);
    return rc;
  }
  r->gen = o->wgen = call.gen;
  c->stats.writes++;
  c->sent_us = zkr__now_ns() / 1000;
  rc = zkr__call_end(&call,
                     zoo_amulti(call.zh, nops, ops, call.results, zkr__cb_void, call.op));
  if (rc != 0) {
    rq_free(r);
    return rc;
  }
  c->phase = PH_WRITE;
  c->read_tok = 0;
  if (c->contended > 0) {
    /* The server answers in order: this read sees the state right after our
     * write, which is what a losing write needs to try again. */
    c->contended--;
    c->read_tok = c->write_tok;
    if (send_read(c, RQ_PREAD, c->read_tok, call.gen) != 0)
      c->read_tok = 0;
  }
  return 0;
}

static int send_check(zkr_counter_t *c) {
  cop_t *o = c->head;
  char mpath[PATH_MAX_];
  crq_t *r;
  zkr__call_t call;
  int rc;

  snprintf(mpath, sizeof(mpath), "%s/%s", c->mdir, o->marker);
  c->check_tok = ++c->tok;
  if (!(r = rq_new(c, RQ_CHECK, c->check_tok)))
    return ZKR_ENOMEM;
  /* Only on the session that made the write: a marker is ephemeral. */
  if ((rc = zkr__call_begin(c->s, o->wgen, ZKR__K_EXISTS, on_reply, r, &call)) != 0) {
    rq_free(r);
    return rc;
  }
  if ((rc = zkr__call_end(&call,
                          zoo_aexists(call.zh, mpath, 0, zkr__cb_stat, call.op))) != 0)
    rq_free(r);
  return rc;
}

/* ---- the head operation's steps (c->mu held) ---- */

/* Work out the value to write from the cache; 1 if a write should be sent, 0 if
 * the operation finished, -1 if a fresh read is needed first. */
static int compute(zkr_counter_t *c, notes_t *n) {
  cop_t *o = c->head;
  int64_t v = c->missing ? 0 : c->cache_val;

  switch (o->kind) {
  case OP_ADD:
    if ((o->a > 0 && v > enc_max(c->enc) - o->a) ||
        (o->a < 0 && v < enc_min(c->enc) - o->a)) {
      if (!o->fresh)
        return -1; /* decide on a fresh value only */
      finish(c, ZKR_EOVERFLOW, v, n);
      return 0;
    }
    o->newval = v + o->a;
    return 1;
  case OP_SET: o->newval = o->a; return 1;
  case OP_CAS:
    if (v != o->a) {
      if (!o->fresh)
        return -1;
      finish(c, ZKR_EMISMATCH, v, n);
      return 0;
    }
    o->newval = o->b;
    return 1;
  }
  return 0;
}

static void schedule_resume(zkr_counter_t *c);

/* Wait for the connection (or, with session, a new session). If it is already
 * back (the failure raced the reconnect), resume shortly rather than at once, so
 * that a failing request can never spin. An operation that may not wait ends. */
static void wait_conn(zkr_counter_t *c, int session, notes_t *n) {
  if (c->head->nowait) {
    if (c->phase == PH_RESOLVE)
      end_unknown(c, n);
    else
      finish(c, ZKR_ETIMEDOUT, 0, n);
    return;
  }
  if (session)
    c->wait_session = 1;
  else
    c->wait_reconnect = 1;
  if (zkr_session_state(c->s) == ZKR_STATE_CONNECTED)
    schedule_resume(c);
}

/* What to do about a request that failed for reasons that are not the counter's:
 * wait for the connection or a new session, or give up. */
static void trouble(zkr_counter_t *c, int rc, notes_t *n) {
  switch (rc) {
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
    c->phase = PH_WAIT;
    wait_conn(c, 0, n);
    break;
  case ZSESSIONEXPIRED:
  case ZINVALIDSTATE:
    c->phase = PH_WAIT;
    wait_conn(c, 1, n);
    break;
  case ZCLOSING:
  case ZKR_ECLOSED: finish(c, ZKR_ECLOSED, 0, n); break;
  default: finish(c, rc, 0, n);
  }
}

/* Read if the cache cannot be used, else write (or finish). */
static void proceed(zkr_counter_t *c, notes_t *n) {
  cop_t *o = c->head;
  int rc, what;

  if (!o)
    return;
  if (o->kind == OP_GET || !c->cache_valid) {
    c->read_tok = ++c->tok;
    c->phase = PH_READ;
    if ((rc = send_read(c, RQ_READ, c->read_tok, 0)) != 0)
      trouble(c, rc, n);
    return;
  }
  what = compute(c, n);
  if (what == 0)
    return;
  if (what < 0) {
    c->cache_valid = 0;
    proceed(c, n);
    return;
  }
  if ((rc = send_write(c)) != 0)
    trouble(c, rc, n);
}

/* The connection or a session is back: redo what was interrupted. */
static void resume(zkr_counter_t *c, notes_t *n) {
  int rc;
  c->wait_reconnect = c->wait_session = 0;
  if (!c->head)
    return;
  if (c->phase == PH_RESOLVE) {
    rc = send_check(c);
    if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
      wait_conn(c, 0, n);
    } else if (rc != 0) {
      /* The write's session is gone (or the check cannot be made): undecidable. */
      c->stats.unknown++;
      finish(c, ZKR_EUNKNOWN, 0, n);
    }
    return;
  }
  c->cache_valid = 0;
  proceed(c, n);
}

/* The head's write will not be resolved (deadline, or it may not wait):
 * ZKR_EUNKNOWN. If it applied, it deleted our previous marker and made its own;
 * the janitor removes whichever exists (after the write, in session order), so
 * the object keeps no marker, and the cache is not trusted any more. */
static void end_unknown(zkr_counter_t *c, notes_t *n) {
  cop_t *o = c->head;
  char p[PATH_MAX_];
  c->stats.unknown++;
  c->cache_valid = 0;
  if (c->prev_marker[0]) {
    snprintf(p, sizeof(p), "%s/%s", c->mdir, c->prev_marker);
    zkr__janitor_delete(c->s, c->prev_gen, p, NULL, NULL);
    c->prev_marker[0] = '\0';
  }
  snprintf(p, sizeof(p), "%s/%s", c->mdir, o->marker);
  zkr__janitor_delete(c->s, o->wgen, p, NULL, NULL);
  finish(c, ZKR_EUNKNOWN, 0, n);
}

static void finish(zkr_counter_t *c, int rc, int64_t value, notes_t *n) {
  cop_t *o = c->head;
  if (!o)
    return;
  c->head = o->next;
  if (!c->head)
    c->tail = NULL;
  note_done(n, o, rc, value);
  if (c->deadline_timer && zkr__timer_cancel(c->deadline_timer))
    counter_unref(c);
  c->deadline_timer = 0;
  if (c->backoff_timer && zkr__timer_cancel(c->backoff_timer))
    counter_unref(c);
  c->backoff_timer = 0;
  c->read_tok = c->write_tok = c->check_tok = 0;
  c->wait_reconnect = c->wait_session = 0;
  c->phase = PH_START;
  if (c->head && !c->freed && !c->stopped)
    start_op(c, n);
}

static void on_deadline(void *ctx, int fired);

static int start_op(zkr_counter_t *c, notes_t *n) {
  cop_t *o = c->head;
  c->phase = PH_START;
  if (o->nowait && zkr_session_state(c->s) != ZKR_STATE_CONNECTED) {
    finish(c, ZKR_ETIMEDOUT, 0, n); /* it would have to wait for the connection */
    return 0;
  }
  if (o->deadline >= 0) {
    counter_ref(c);
    if (zkr__timer_at(c->s, o->deadline, on_deadline, c, &c->deadline_timer) != 0) {
      counter_unref(c);
      c->deadline_timer = 0;
    }
  }
  proceed(c, n);
  return 0;
}

static void on_backoff(void *ctx, int fired) {
  zkr_counter_t *c = ctx;
  notes_t n = {0};
  int rc;
  pthread_mutex_lock(&c->mu);
  c->backoff_timer = 0;
  if (fired && c->head && !c->freed && !c->stopped) {
    if (c->phase == PH_BACKOFF) {
      int what = compute(c, &n);
      if (what < 0) {
        c->cache_valid = 0;
        proceed(c, &n);
      } else if (what > 0 && (rc = send_write(c)) != 0) {
        trouble(c, rc, &n);
      }
    } else if ((c->wait_reconnect || c->wait_session) &&
               zkr_session_state(c->s) == ZKR_STATE_CONNECTED) {
      resume(c, &n);
    }
  }
  pthread_mutex_unlock(&c->mu);
  deliver(c, &n);
  counter_unref(c);
}

static void schedule_resume(zkr_counter_t *c) {
  if (c->backoff_timer)
    return;
  counter_ref(c);
  if (zkr__timer_at(c->s, zkr__now_ms() + 10, on_backoff, c, &c->backoff_timer) != 0) {
    counter_unref(c);
    c->backoff_timer = 0;
  }
}

/* The write lost and the cache is fresh again: wait a little, then retry. */
static void after_conflict(zkr_counter_t *c, notes_t *n) {
  cop_t *o = c->head;
  int64_t base = c->lat_us > 200 ? c->lat_us : 200;
  int shift = o->conflicts - 1 < 5 ? o->conflicts - 1 : 5;
  int64_t wait = (int64_t)(rnd(c) % (uint64_t)(base << shift));
  int what;

  if (o->nowait) {
    finish(c, ZKR_ETIMEDOUT, 0, n); /* trying again means waiting first */
    return;
  }
  what = compute(c, n);
  if (what <= 0) {
    if (what < 0) {
      c->cache_valid = 0;
      proceed(c, n);
    }
    return;
  }
  c->phase = PH_BACKOFF;
  counter_ref(c);
  if (zkr__timer_at_us(c->s, zkr__now_ns() / 1000 + wait, on_backoff, c,
                       &c->backoff_timer) != 0) {
    counter_unref(c);
    c->backoff_timer = 0;
    if (send_write(c) != 0)
      finish(c, ZKR_ENOMEM, 0, n);
  }
}

static void on_read(zkr_counter_t *c, int rc, const zkr__reply_t *r, notes_t *n) {
  cop_t *o = c->head;
  int64_t v;

  c->read_tok = 0;
  if (rc == ZOK) {
    if (decode(c->enc, r->data, r->data_len, &v) != 0) {
      c->cache_valid = 0;
      finish(c, ZKR_EBADDATA, 0, n);
      return;
    }
    /* Unguarded (a get sets no watch), the value may serve a write only after
     * a fresh read. */
    c->cache_valid = o->kind != OP_GET || c->w_set;
    c->missing = 0;
    c->cache_val = v;
    c->cache_ver = r->stat ? r->stat->version : 0;
    c->cache_czxid = r->stat ? r->stat->czxid : 0;
  } else if (rc == ZNONODE) {
    c->cache_valid = 1;
    c->missing = 1;
    c->cache_val = 0;
  } else {
    trouble(c, rc, n);
    return;
  }
  o->fresh = 1;
  if (o->kind == OP_GET) {
    finish(c, 0, c->missing ? 0 : c->cache_val, n);
    return;
  }
  if (c->phase == PH_FRESH) {
    after_conflict(c, n);
    return;
  }
  proceed(c, n);
}

/* Which op of the multi failed (index), and with what; -1 if none is marked. */
static int failed_op(const zkr__reply_t *r, int *err) {
  for (int i = 0; r->results && i < r->nresults; i++) {
    if (r->results[i].err != ZOK && r->results[i].err != ZRUNTIMEINCONSISTENCY) {
      *err = r->results[i].err;
      return i;
    }
  }
  return -1;
}

static void on_write(zkr_counter_t *c, crq_t *q, int rc, const zkr__reply_t *r,
                     notes_t *n) {
  cop_t *o = c->head;
  int64_t now = zkr__now_ns() / 1000;
  int err = rc, i;

  c->write_tok = 0;
  if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
    /* The backoff scales with this estimate: one stalled write (a paused
     * server) must not inflate it for long, so a sample counts for at most four
     * times the current estimate (and the first for at most 100 ms). */
    int64_t sample = now - c->sent_us;
    if (sample > (c->lat_us ? 4 * c->lat_us : 100000))
      sample = c->lat_us ? 4 * c->lat_us : 100000;
    c->lat_us = c->lat_us ? (c->lat_us * 7 + sample) / 8 : sample;
  }
  if (rc == ZOK) {
    snprintf(c->prev_marker, sizeof(c->prev_marker), "%s", o->marker);
    c->prev_gen = q->gen;
    c->cache_valid = 1;
    if (c->missing) {
      c->cache_ver = 0;
      c->cache_czxid = 0; /* a create's result has no stat: the exists below tells */
    } else {
      if (c->cache_czxid && q->stat.czxid != c->cache_czxid) {
        /* The node was deleted and made again within a round trip before our
         * write, and the old version matched the new node's: the value was
         * computed from the old node. See the design note. */
        c->stats.incarnation_races++;
        zkr__log(ZKR_LOG_WARN,
                 "counter %s: deleted and re-created just before a write; the write "
                 "was computed from the old node's value",
                 c->path);
      }
      c->cache_ver = q->stat.version;
      c->cache_czxid = q->stat.czxid;
    }
    c->missing = 0;
    c->cache_val = o->newval;
    arm_cache_watch(c); /* our write fired the watch that was set */
    finish(c, 0, o->newval, n);
    return;
  }
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
    /* Applied or not: the marker will tell, on this session. */
    c->stats.ambiguous++;
    c->read_tok = 0;
    c->phase = PH_RESOLVE;
    if (zkr__session_gen(c->s) != q->gen) {
      c->stats.unknown++;
      finish(c, ZKR_EUNKNOWN, 0, n);
    } else if (zkr_session_state(c->s) == ZKR_STATE_CONNECTED) {
      resume(c, n); /* the connection is back already */
    } else if (o->nowait) {
      end_unknown(c, n);
    } else {
      c->wait_reconnect = 1;
    }
    return;
  }
  if (rc == ZCLOSING) {
    c->stats.unknown++;
    finish(c, ZKR_EUNKNOWN, 0, n);
    return;
  }
  i = failed_op(r, &err);
  if (i == 0 && (err == ZBADVERSION || err == ZNODEEXISTS)) {
    /* Someone else wrote first: nothing of ours applied. */
    o->conflicts++;
    c->stats.conflicts++;
    c->contended = CONTENDED_WRITES;
    c->cache_valid = 0;
    o->fresh = 0;
    if (c->read_tok) {
      c->phase = PH_FRESH; /* the pipelined read comes next */
    } else {
      c->read_tok = ++c->tok;
      c->phase = PH_FRESH;
      if ((rc = send_read(c, RQ_READ, c->read_tok, 0)) != 0)
        trouble(c, rc, n);
    }
    return;
  }
  c->read_tok = 0; /* a pipelined read of a failed write is of no use */
  if (i == 0 && err == ZNONODE && !c->missing) {
    c->missing = 1; /* deleted under us: create it */
    c->cache_val = 0;
    o->fresh = 1;
    proceed(c, n);
  } else if ((i == 0 || i == 1) && err == ZNONODE) {
    /* A parent of P or the markers node is missing: make them and retry. */
    if (++o->parent_rounds > MAX_PARENT_ROUNDS || (rc = send_parents(c)) != 0)
      finish(c, rc ? rc : ZNONODE, 0, n);
    else
      proceed(c, n);
  } else if (i == 2 && err == ZNONODE) {
    c->prev_marker[0] = '\0'; /* our old marker is gone (its session ended) */
    proceed(c, n);
  } else if (err == ZSESSIONEXPIRED || err == ZINVALIDSTATE) {
    c->prev_marker[0] = '\0';
    trouble(c, err, n); /* never sent: safe to write again on the new session */
  } else {
    finish(c, err, 0, n);
  }
}

static void on_check(zkr_counter_t *c, int rc, notes_t *n) {
  cop_t *o = c->head;
  c->check_tok = 0;
  if (rc == ZOK) {
    /* Applied, exactly once. Its version is unknown: read before the next write. */
    c->stats.resolved_applied++;
    snprintf(c->prev_marker, sizeof(c->prev_marker), "%s", o->marker);
    c->prev_gen = o->wgen;
    c->cache_valid = 0;
    finish(c, 0, o->newval, n);
  } else if (rc == ZNONODE) {
    /* Not applied: make the write again, from a fresh read. */
    c->stats.resolved_not_applied++;
    c->cache_valid = 0;
    if (o->nowait)
      finish(c, ZKR_ETIMEDOUT, 0, n);
    else
      proceed(c, n);
  } else if (rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE) {
    c->stats.unknown++;
    finish(c, ZKR_EUNKNOWN, 0, n);
  } else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
    wait_conn(c, 0, n);
  } else {
    c->stats.unknown++; /* closing, or an error the check cannot get past */
    finish(c, ZKR_EUNKNOWN, 0, n);
  }
}

/* ---- the change listener (c->mu held) ---- */

static void arm(zkr_counter_t *c, int exists) {
  crq_t *r, *w;
  zkr__call_t call;
  int rc;

  c->l_tok = ++c->tok;
  c->l_armed = 1;
  r = rq_new(c, exists ? RQ_LEXISTS : RQ_LREAD, c->l_tok);
  w = rq_new(c, RQ_LWATCH, c->l_tok);
  if (!r || !w)
    goto fail;
  if ((rc = zkr__call_begin(c->s, 0, exists ? ZKR__K_EXISTS : ZKR__K_GET, on_reply, r,
                            &call)) != 0)
    goto fail;
  if (zkr__call_watch(&call, on_watch, w) != 0) {
    zkr__call_end(&call, ZKR_ENOMEM);
    goto fail;
  }
  rc = exists
           ? zoo_awexists(call.zh, c->path, zkr__watcher, call.watch, zkr__cb_stat,
                          call.op)
           : zoo_awget(call.zh, c->path, zkr__watcher, call.watch, zkr__cb_data, call.op);
  if (zkr__call_end(&call, rc) != 0)
    goto fail;
  return;
fail:
  /* Armed again on the next CONNECTED/RECONNECTED. */
  c->l_armed = 0;
  if (r)
    rq_free(r);
  if (w)
    rq_free(w);
}

static void on_lread(zkr_counter_t *c, crq_t *q, int rc, const zkr__reply_t *r,
                     notes_t *n) {
  int64_t v;
  if (q->tok != c->l_tok)
    return;
  if (rc == ZNONODE && q->kind == RQ_LREAD) {
    arm(c, 1); /* wait for it to be created */
    return;
  }
  if (rc == ZOK && q->kind == RQ_LEXISTS) {
    arm(c, 0); /* created meanwhile: read it */
    return;
  }
  if (rc != ZOK) {
    if (!(rc == ZNONODE && q->kind == RQ_LEXISTS))
      c->l_armed = 0; /* re-armed when the connection is back */
    return;
  }
  if (r->stat && decode(c->enc, r->data, r->data_len, &v) == 0 &&
      (!c->l_have || r->stat->czxid != c->l_czxid ||
       (int32_t)((uint32_t)r->stat->version - (uint32_t)c->l_ver) > 0)) {
    c->l_have = 1;
    c->l_ver = r->stat->version;
    c->l_czxid = r->stat->czxid;
    n->has_value = 1;
    n->lvalue = v;
    n->lversion = r->stat->version;
  }
}

/* The cache watch fired (rc 0), was not set, or its handle closed. */
static void on_cache_watch(void *ctx, int rc, const zkr__reply_t *rep) {
  cwatch_t *w = ctx;
  zkr_counter_t *c = w->a->c; /* callback context: free cannot clear it now */

  (void)rep;
  if (c) {
    pthread_mutex_lock(&c->mu);
    if (w->tok == c->w_tok) {
      c->w_set = 0;
      /* P changed, or the watch is gone. A write of ours in flight explains a
       * change (its reply, which comes next, decides); anything else empties
       * the cache. */
      if (!(rc == ZOK && c->phase == PH_WRITE) && c->cache_valid) {
        c->cache_valid = 0;
        c->stats.cache_dropped++;
      }
    }
    pthread_mutex_unlock(&c->mu);
  }
  anchor_unref(w->a);
  free(w);
}

static void on_watch(void *ctx, int rc, const zkr__reply_t *rep) {
  crq_t *q = ctx;
  zkr_counter_t *c = q->c;
  notes_t n = {0};

  (void)rep;
  pthread_mutex_lock(&c->mu);
  if (q->tok == c->l_tok && !c->freed && c->lfn) {
    if (rc == ZOK)
      arm(c, 0); /* changed, created or deleted: read and watch again */
    else if (rc == ZCLOSING)
      c->l_armed = 0;
  }
  pthread_mutex_unlock(&c->mu);
  deliver(c, &n);
  rq_free(q);
}

/* ---- replies ---- */

static void on_reply(void *ctx, int rc, const zkr__reply_t *r) {
  crq_t *q = ctx;
  zkr_counter_t *c = q->c;
  notes_t n = {0};

  pthread_mutex_lock(&c->mu);
  switch (q->kind) {
  case RQ_READ:
  case RQ_PREAD:
    if (c->head && q->tok == c->read_tok && (c->phase == PH_READ || c->phase == PH_FRESH))
      on_read(c, rc, r, &n);
    else if (q->kind == RQ_PREAD && rc == ZOK && r->stat && c->cache_valid &&
             !c->missing && r->stat->czxid == c->cache_czxid &&
             (int32_t)((uint32_t)r->stat->version - (uint32_t)c->cache_ver) > 0) {
      int64_t v; /* someone wrote after us: keep the newer value */
      if (decode(c->enc, r->data, r->data_len, &v) == 0) {
        c->cache_val = v;
        c->cache_ver = r->stat->version;
      }
    }
    break;
  case RQ_WRITE:
    if (c->head && q->tok == c->write_tok && !c->freed) {
      on_write(c, q, rc, r, &n);
    } else if (rc == ZOK || rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
      /* A write nobody waits for any more may have left a marker. */
      char p[PATH_MAX_];
      snprintf(p, sizeof(p), "%s/%s", c->mdir, q->marker);
      zkr__janitor_delete(c->s, q->gen, p, NULL, NULL);
    }
    break;
  case RQ_CHECK:
    if (c->head && q->tok == c->check_tok && c->phase == PH_RESOLVE)
      on_check(c, rc, &n);
    break;
  case RQ_LREAD:
  case RQ_LEXISTS: on_lread(c, q, rc, r, &n); break;
  case RQ_ARM:
    if (q->tok == c->w_tok && c->cache_valid) {
      /* The watch is set (exists sets it on ZOK and ZNONODE). The cache holds
       * only if P is still the node, at the version, the cache came from. */
      if (rc == ZOK && r->stat && !c->missing && r->stat->version == c->cache_ver &&
          (!c->cache_czxid || r->stat->czxid == c->cache_czxid)) {
        c->cache_czxid = r->stat->czxid;
      } else {
        c->cache_valid = 0;
        c->stats.cache_dropped++;
      }
    }
    break;
  }
  pthread_mutex_unlock(&c->mu);
  deliver(c, &n);
  rq_free(q);
}

static void on_deadline(void *ctx, int fired) {
  zkr_counter_t *c = ctx;
  notes_t n = {0};

  pthread_mutex_lock(&c->mu);
  if (fired && c->head && c->head->deadline >= 0 && zkr__now_ms() >= c->head->deadline) {
    c->deadline_timer = 0;
    if (c->phase == PH_WRITE || c->phase == PH_RESOLVE)
      end_unknown(c, &n); /* the late reply only cleans up after itself */
    else
      finish(c, ZKR_ETIMEDOUT, 0, &n); /* nothing of ours is in flight */
  }
  pthread_mutex_unlock(&c->mu);
  deliver(c, &n);
  counter_unref(c);
}

static void on_session(zkr_session_t *s, int event, void *arg) {
  zkr_counter_t *c = arg;
  notes_t n = {0};

  (void)s;
  pthread_mutex_lock(&c->mu);
  if (c->freed) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  switch (event) {
  case ZKR_SESSION_RECONNECTED:
    if (c->head && c->wait_reconnect)
      resume(c, &n);
    if (c->lfn && !c->l_armed)
      arm(c, 0);
    break;
  case ZKR_SESSION_LOST:
    /* Markers and watches went with the session. */
    c->prev_marker[0] = '\0';
    c->cache_valid = 0;
    c->w_set = 0;
    c->l_armed = 0;
    if (c->head && c->phase == PH_RESOLVE) {
      c->stats.unknown++;
      finish(c, ZKR_EUNKNOWN, 0, &n);
    } else if (c->head && c->phase != PH_WRITE) {
      c->wait_reconnect = 0;
      c->wait_session = 1;
      c->phase = PH_WAIT;
      c->read_tok = c->check_tok = 0;
      if (c->backoff_timer && zkr__timer_cancel(c->backoff_timer))
        counter_unref(c);
      c->backoff_timer = 0;
    }
    break;
  case ZKR_SESSION_CONNECTED:
    if (c->head && (c->wait_session || c->wait_reconnect))
      resume(c, &n);
    if (c->lfn && !c->l_armed)
      arm(c, 0);
    break;
  case ZKR_SESSION_CONNECT_FAILED:
  case ZKR_SESSION_AUTH_FAILED:
    /* Nothing will connect this session (until the user connects it again, or
     * ever: refused credentials). A write can only have gone out if the
     * handshake completed just as the attempt was given up: unknown then. */
    while (c->head) {
      int inflight = c->phase == PH_WRITE || c->phase == PH_RESOLVE;
      if (inflight)
        c->stats.unknown++;
      finish(c,
             inflight                           ? ZKR_EUNKNOWN
             : event == ZKR_SESSION_AUTH_FAILED ? ZAUTHFAILED
                                                : ZINVALIDSTATE,
             0, &n);
    }
    break;
  case ZKR_SESSION_CLOSED:
    c->stopped = 1;
    while (c->head) {
      int inflight = c->phase == PH_WRITE || c->phase == PH_RESOLVE;
      if (inflight)
        c->stats.unknown++;
      finish(c, inflight ? ZKR_EUNKNOWN : ZKR_ECLOSED, 0, &n);
    }
    break;
  }
  pthread_mutex_unlock(&c->mu);
  deliver(c, &n);
}

/* ---- public ---- */

int zkr_counter_new(zkr_session_t *s, const char *path, int encoding,
                    zkr_counter_t **out) {
  zkr_counter_t *c;
  size_t n;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 ||
      (encoding != ZKR_COUNTER_INT64 && encoding != ZKR_COUNTER_INT32))
    return ZKR_EINVAL;
  n = strlen(path);
  if (n + sizeof(MARKER_SUFFIX) > ZKR__PATH_MAX)
    return ZKR_EINVAL;
  if (!(c = calloc(1, sizeof(*c))))
    return ZKR_ENOMEM;
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    free(c);
    return ZKR_ENOMEM;
  }
  atomic_init(&c->refs, 1);
  c->enc = encoding;
  c->path = strdup(path);
  c->mdir = malloc(n + sizeof(MARKER_SUFFIX));
  if ((c->anchor = malloc(sizeof(*c->anchor))) != NULL) {
    atomic_init(&c->anchor->refs, 1); /* the counter's, until zkr_counter_free */
    c->anchor->c = c;
  }
  {
    char g[37];
    if (zkr__guid(g) != 0) {
      free(c->path);
      free(c->mdir);
      free(c->anchor);
      pthread_mutex_destroy(&c->mu);
      free(c);
      return ZKR_ESYSTEM;
    }
    for (int i = 0, j = 0; g[i]; i++) /* 32 hex digits, no dashes */
      if (g[i] != '-')
        c->guid[j++] = g[i];
    c->rng = ((uint64_t)zkr__now_ns() << 1) | 1;
    for (int i = 0; i < 16; i++)
      c->rng = c->rng * 31 + (unsigned char)c->guid[i];
    if (!c->rng)
      c->rng = 88172645463325252ULL;
  }
  if (!c->path || !c->mdir || !c->anchor) {
    free(c->path);
    free(c->mdir);
    free(c->anchor);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return ZKR_ENOMEM;
  }
  memcpy(c->mdir, path, n);
  memcpy(c->mdir + n, MARKER_SUFFIX, sizeof(MARKER_SUFFIX));
  c->s = s;
  zkr__session_ref(s);
  if ((rc = zkr_session_add_listener(s, on_session, c, &c->listener_id)) != 0) {
    counter_unref(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* Queue an operation; start it if nothing runs. A start that fails at once is
 * reported by the return value, not the callback. */
static int submit(zkr_counter_t *c, int kind, int64_t a, int64_t b, int timeout_ms,
                  zkr_counter_cb cb, void *arg) {
  cop_t *o;
  int rc = 0;

  if (!(o = calloc(1, sizeof(*o))))
    return ZKR_ENOMEM;
  o->kind = kind;
  o->a = a;
  o->b = b;
  o->cb = cb;
  o->arg = arg;
  o->nowait = timeout_ms == 0;
  o->deadline = timeout_ms > 0 ? zkr__deadline(timeout_ms) : -1;
  pthread_mutex_lock(&c->mu);
  if (c->freed || c->stopped) {
    rc = ZKR_ECLOSED;
  } else if (zkr_session_state(c->s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (zkr__session_gen(c->s) == 0 &&
             zkr_session_state(c->s) != ZKR_STATE_CONNECTING) {
    rc = ZINVALIDSTATE; /* not connected, and nobody is connecting */
  } else if (c->head) {
    c->tail->next = o;
    c->tail = o;
    o = NULL;
  } else {
    notes_t n = {0};
    c->head = c->tail = o;
    o = NULL;
    start_op(c, &n);
    if (n.done) {
      /* Refused before anything was sent: an async call that fails never calls
       * back, so say it here. */
      rc = n.done->rc ? n.done->rc : ZKR_ESYSTEM;
      o = n.done;
    }
  }
  pthread_mutex_unlock(&c->mu);
  free(o);
  return rc;
}

int zkr_counter_get_async(zkr_counter_t *c, int timeout_ms, zkr_counter_cb cb,
                          void *arg) {
  if (!c || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  return submit(c, OP_GET, 0, 0, timeout_ms, cb, arg);
}

int zkr_counter_add_async(zkr_counter_t *c, int64_t delta, int timeout_ms,
                          zkr_counter_cb cb, void *arg) {
  if (!c || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  return submit(c, OP_ADD, delta, 0, timeout_ms, cb, arg);
}

int zkr_counter_set_async(zkr_counter_t *c, int64_t value, int timeout_ms,
                          zkr_counter_cb cb, void *arg) {
  if (!c || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  if (value < enc_min(c->enc) || value > enc_max(c->enc))
    return ZKR_EOVERFLOW;
  return submit(c, OP_SET, value, 0, timeout_ms, cb, arg);
}

int zkr_counter_cas_async(zkr_counter_t *c, int64_t expected, int64_t value,
                          int timeout_ms, zkr_counter_cb cb, void *arg) {
  if (!c || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  if (value < enc_min(c->enc) || value > enc_max(c->enc))
    return ZKR_EOVERFLOW;
  return submit(c, OP_CAS, expected, value, timeout_ms, cb, arg);
}

typedef struct sync_res {
  zkr__waiter_t w;
  int64_t value;
} sync_res_t;

static void sync_cb(zkr_counter_t *c, int rc, int64_t value, void *arg) {
  sync_res_t *r = arg;
  (void)c;
  r->value = value;
  zkr__waiter_signal(&r->w, rc);
}

/* The sync forms: the deadline lives in the operation, so it always calls back. */
static int run_sync(zkr_counter_t *c, int kind, int64_t a, int64_t b, int timeout_ms,
                    int64_t *value) {
  sync_res_t r = {0};
  int rc;

  if (!c || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if ((rc = zkr__waiter_init(&r.w)) != 0)
    return rc;
  rc = submit(c, kind, a, b, timeout_ms, sync_cb, &r);
  if (rc == 0) {
    rc = zkr__waiter_wait(&r.w, -1);
    if (value && (rc == 0 || rc == ZKR_EMISMATCH))
      *value = r.value;
  }
  zkr__waiter_destroy(&r.w);
  return rc;
}

int zkr_counter_get(zkr_counter_t *c, int timeout_ms, int64_t *value) {
  if (!value)
    return ZKR_EINVAL;
  return run_sync(c, OP_GET, 0, 0, timeout_ms, value);
}

int zkr_counter_add(zkr_counter_t *c, int64_t delta, int timeout_ms, int64_t *new_value) {
  return run_sync(c, OP_ADD, delta, 0, timeout_ms, new_value);
}

int zkr_counter_set(zkr_counter_t *c, int64_t value, int timeout_ms) {
  if (c && (value < enc_min(c->enc) || value > enc_max(c->enc)))
    return ZKR_EOVERFLOW;
  return run_sync(c, OP_SET, value, 0, timeout_ms, NULL);
}

int zkr_counter_cas(zkr_counter_t *c, int64_t expected, int64_t value, int timeout_ms,
                    int64_t *current) {
  if (c && (value < enc_min(c->enc) || value > enc_max(c->enc)))
    return ZKR_EOVERFLOW;
  return run_sync(c, OP_CAS, expected, value, timeout_ms, current);
}

int zkr_counter_set_listener(zkr_counter_t *c, zkr_counter_listener_fn fn, void *arg) {
  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->mu);
  c->lfn = fn;
  c->larg = arg;
  c->l_have = 0;
  if (fn && !c->l_armed && !c->freed)
    arm(c, 0);
  else if (!fn)
    c->l_tok = ++c->tok; /* a watch still set fires into nothing */
  pthread_mutex_unlock(&c->mu);
  return 0;
}

uint64_t zkr_counter_conflicts(zkr_counter_t *c) {
  uint64_t n;
  if (!c)
    return 0;
  pthread_mutex_lock(&c->mu);
  n = c->stats.conflicts;
  pthread_mutex_unlock(&c->mu);
  return n;
}

int zkr__counter_stats(zkr_counter_t *c, zkr__counter_stats_t *out) {
  if (!c || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->mu);
  *out = c->stats;
  out->write_rtt_us = c->lat_us;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void zkr_counter_free(zkr_counter_t *c) {
  notes_t n = {0};

  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  if (c->freed) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  c->freed = 1; /* finish() starts nothing more */
  while (c->head) {
    int inflight = c->phase == PH_WRITE || c->phase == PH_RESOLVE;
    if (inflight)
      c->stats.unknown++;
    finish(c, inflight ? ZKR_EUNKNOWN : ZKR_ECANCELED, 0, &n);
  }
  c->lfn = NULL;
  c->l_tok = ++c->tok;
  if (c->prev_marker[0]) {
    char p[PATH_MAX_];
    snprintf(p, sizeof(p), "%s/%s", c->mdir, c->prev_marker);
    zkr__janitor_delete(c->s, c->prev_gen, p, NULL, NULL);
    c->prev_marker[0] = '\0';
  }
  pthread_mutex_unlock(&c->mu);
  zkr__dispatch_enter(c->s);
  deliver(c, &n);
  /* A cache watch still set fires into nothing from now on (and lets go of the
   * anchor, not of the counter). */
  c->anchor->c = NULL;
  anchor_unref(c->anchor);
  c->anchor = NULL;
  zkr__dispatch_leave(c->s);
  zkr_session_remove_listener(c->s, c->listener_id);
  counter_unref(c);
}
