/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared counter.
 *
 * Znodes:
 *   P                       PERSISTENT, data = big-endian int64 (8 bytes) or int32
 *                           (4 bytes); empty or missing reads as 0. Parents are
 *                           CONTAINER nodes.
 *   P.zkr-markers/          CONTAINER, a sibling readers of P never look at
 *   P.zkr-markers/<guid>    EPHEMERAL, one per counter object; data = the number
 *                           (8 bytes, big-endian) of its last write that applied
 *
 * Algorithm (exactly once, the default): every write is one zoo_multi of
 *   setData(P, v', version)   (create(P, v') when P is missing)
 *   setData(marker, N)        (create(marker, N) for the object's first write on
 *                              a session)
 * so the marker says N exactly when write N applied (while the session lives:
 * the marker is ephemeral), and a write costs two small operations in one
 * transaction. After a lost reply (ZCONNECTIONLOSS/ZOPERATIONTIMEOUT) the marker
 * is read once the connection is back: N = applied, anything else (an earlier
 * number, or no marker) = not applied (then the write is simply made again). If
 * the session expires first, the outcome is ZKR_EUNKNOWN: never a guess, never a
 * silent retry.
 *
 * At most once (zkr_counter_set_mode): the write is the setData (or create) alone,
 * one operation as every other client of the format makes it. After a lost reply
 * P is read (after a sync) on the write's session: still the version (and
 * incarnation) the write was made against = not applied, made again; anything
 * else may be our write or another client's, so the operation ends with
 * ZKR_EUNKNOWN. Never applied twice; more often unknown.
 *
 * Round trips: the value, version and czxid of the last reply are kept (the
 * cache), so an uncontended add is one write round trip. The cache is tied to
 * the node's incarnation: versions restart at 0 when P is deleted and created
 * again, so a version from an earlier incarnation could pass on a new one and
 * write a value computed from the old node (a lost update). A child watch on P
 * guards the cache (lib/guard.c): it fires when P is deleted but not on setData,
 * so one watch, set by the read that precedes the first write and shared by
 * every counter object of the session on P, serves every write that follows. A
 * cache of another incarnation than the one the watch is set on, a watch that
 * fired or could not be set, empties the cache, and the next write reads first.
 * What remains: ZooKeeper has no check on czxid, so a delete and re-create that
 * both land within about one round trip before our write (before the watch's
 * notification reaches us) cannot be seen in time; that is the same window a
 * plain getData + versioned setData has, between the two. Should it happen, the
 * write's reply shows another czxid and it is logged. A get sets no watch.
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
 * The change listener is a node watcher (lib/nodewatch.c) on P: newer versions
 * and new incarnations only.
 *
 * Locking: c->o.mu guards everything marked (mu); each step's handler runs in
 * callback context (dispatch mutex, then c->o.mu); user callbacks run after it
 * is released (the object base's effects).
 */
#include "guard.h"
#include "nodewatch.h"
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/counter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_SUFFIX     ".zkr-markers"
#define MARKER_PATH_MAX   (ZKR__PATH_MAX + 64)
#define MAX_PARENT_ROUNDS 8
/* Keep pipelining reads this many writes after a conflict. */
#define CONTENDED_WRITES 64

enum { OP_GET, OP_ADD, OP_SET, OP_CAS };
enum {
  PH_START,   /* not started */
  PH_READ,    /* a read is in flight (read_tok) */
  PH_WRITE,   /* a write is in flight (write_tok) */
  PH_FRESH,   /* the write lost; waiting for the pipelined read (read_tok) */
  PH_BACKOFF, /* waiting before writing again (backoff timer) */
  PH_RESOLVE, /* the write's reply was lost; the marker check (check_tok) or a
                 reconnect is awaited */
  PH_WAIT     /* waiting for the connection or a new session (o.wait) */
};

/* One operation, queued on the counter. */
typedef struct counter_op {
  struct counter_op *next;
  int kind;
  int64_t a, b; /* add: delta; set: value; cas: expected, value */
  zkr_counter_cb cb;
  void *arg;
  int64_t deadline; /* ms, -1: none */
  int64_t started_ns; /* for the debug trace */
  bool nowait;      /* timeout 0: end (ZKR_ETIMEDOUT, or ZKR_EUNKNOWN if a write's
                       outcome is open) wherever the operation would wait */
  bool fresh;       /* the cached value was read during this operation */
  int conflicts;
  int parent_rounds;
  int64_t newval;
  bool single;   /* at most once: the write is the counter's own operation only */
  bool wcreate;  /* the write in flight or being resolved creates P ... */
  int32_t wver;  /* ... or sets it at this version */
  int64_t wczxid; /* of this incarnation (0: not known) */
  uint64_t seq;  /* the number of the write in flight or being resolved */
  uint64_t wgen; /* session generation of that write */
} counter_op_t;

/* A write in flight: what its reply needs. */
typedef struct write_req {
  zkr__req_t base;
  bool multi;                     /* with the marker */
  struct Stat stat;               /* setData's result */
  char paths[2][MARKER_PATH_MAX]; /* room for the two created paths */
} write_req_t;

struct zkr_counter {
  zkr__obj_t o;
  char *path, *mdir;
  int enc;
  char guid[33];
  zkr__nodewatch_t nw; /* the change listener's */

  /* (mu) */
  bool stopped; /* the session was freed: nothing can run any more */
  counter_op_t *head, *tail;
  int phase;
  uint32_t read_tok, write_tok, check_tok;
  zkr__tmr_t *backoff_timer, *deadline_timer;
  bool cache_valid; /* cache_* below describe P as of the last reply */
  bool missing;     /* ... P did not exist */
  int64_t cache_val;
  int32_t cache_ver;
  int64_t cache_czxid; /* P's incarnation; 0 when not known yet (after a create) */
  zkr__guard_t *guard; /* the child watch on P guarding the cache (shared) */
  zkr__guard_sub_t *gsub;
  char mpath[MARKER_PATH_MAX]; /* this object's marker */
  bool marker_live;            /* it exists, made on session generation marker_gen */
  uint64_t marker_gen;
  uint64_t mseq; /* number of the last write sent */
  int mode;      /* ZKR_COUNTER_EXACTLY_ONCE or _AT_MOST_ONCE, for operations to come */
  int contended;   /* writes left that get a pipelined read */
  int64_t lat_us;  /* running estimate of a write round trip */
  int64_t sent_us; /* when the write in flight was sent */
  uint64_t rng;    /* xorshift state for backoff */
  zkr__counter_stats_t stats;
};

#define COUNTER(o) ((zkr_counter_t *)(o))

/* Debug trace of a step: "counter <path>: session 0x<id>: <what>". */
#define CTRACE(c, fmt, ...)                                                              \
  ZKR__TRACE("counter %s: session 0x%llx: " fmt, (c)->path,                             \
             (unsigned long long)zkr_session_id((c)->o.s), __VA_ARGS__)

static const char *op_name(int kind) {
  switch (kind) {
  case OP_GET: return "get";
  case OP_ADD: return "add";
  case OP_SET: return "set";
  default: return "cas";
  }
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

/* ---- effects ---- */

/* An operation's end: its callback, then its record goes. */
static void run_done(zkr__obj_t *o, const zkr__effect_t *e) {
  counter_op_t *op = e->ptr;
  zkr__stat(o->s, ZKR__ST_COUNTER_OPS);
  if (e->rc == ZKR_EUNKNOWN)
    zkr__stat(o->s, ZKR__ST_COUNTER_UNKNOWN);
  if (op->cb)
    op->cb(COUNTER(o), e->rc, e->value, op->arg);
  free(op);
}

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg,
                          const zkr__effect_t *e) {
  ((zkr_counter_listener_fn)fn)(COUNTER(o), e->value, (int32_t)(intptr_t)e->ptr, arg);
}

static uint64_t rnd(zkr_counter_t *c) {
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  return c->rng;
}

static void encode_seq(uint64_t seq, char *buf) {
  for (int i = 7; i >= 0; i--, seq >>= 8)
    buf[i] = (char)(seq & 0xff);
}

static int start_op(zkr_counter_t *c, zkr__fx_t *fx);
static void finish(zkr_counter_t *c, int rc, int64_t value, zkr__fx_t *fx);
static void end_unknown(zkr_counter_t *c, zkr__fx_t *fx);
static void proceed(zkr_counter_t *c, zkr__fx_t *fx);
static void after_conflict(zkr_counter_t *c, zkr__fx_t *fx);
static void on_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx);
static void on_pipelined_read(zkr__obj_t *o, zkr__req_t *rq, int rc,
                              const zkr__reply_t *r, zkr__fx_t *fx);
static void on_written(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_checked(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx);

/* ---- requests (mu held) ---- */

/* A read of P. For a write to come it makes sure the guard's watch is set or on
 * its way, ahead of the read (a get alone sets none). */
static int send_read(zkr_counter_t *c, zkr__step_fn step, uint32_t tok, uint64_t gen) {
  zkr__send_t x;
  int rc;

  if (c->head && c->head->kind != OP_GET)
    zkr__guard_arm(c->guard);
  if ((rc = zkr__send_begin(&x, &c->o, gen, ZKR__K_GET, step, tok, 0)) != 0)
    return rc;
  c->stats.reads++;
  return zkr__send_end(&x, zoo_aget(x.c.zh, c->path, 0, zkr__cb_data, x.c.op));
}

/* May a write use the cache? A missing P needs no guard (the next write is a
 * create, which fails if anyone made P meanwhile); otherwise the guard's watch
 * must be set on the cache's incarnation, or be on its way (then it is ahead of
 * the write in session order). A cache made by our own create learns its czxid
 * from the guard. Anything else empties the cache and sets the watch again. */
static bool cache_guarded(zkr_counter_t *c) {
  int64_t gz = 0;
  int st;

  if (!c->cache_valid)
    return false;
  if (c->missing)
    return true;
  st = zkr__guard_state(c->guard, c->cache_czxid, &gz);
  if (st == 1) {
    if (!c->cache_czxid)
      c->cache_czxid = gz;
    return true;
  }
  if (st == 0 && gz == 0)
    return true; /* being set */
  c->cache_valid = false;
  c->stats.cache_dropped++;
  return false;
}

/* After the write is sent: a read pipelined behind it while contended. */
static void after_send(zkr_counter_t *c) {
  c->phase = PH_WRITE;
  c->read_tok = 0;
  if (c->contended > 0) {
    /* The server answers in order: this read sees the state right after our
     * write, which is what a losing write needs to try again. */
    c->contended--;
    c->read_tok = c->write_tok;
    if (send_read(c, on_pipelined_read, c->read_tok, c->head->wgen) != 0)
      c->read_tok = 0;
  }
}

/* At most once: the versioned setData (or the create) alone, as any other
 * client of the format writes. */
static int send_write_single(zkr_counter_t *c, const char *val) {
  counter_op_t *op = c->head;
  zkr__send_t x;
  int rc;

  /* Traces before the send: between begin and end the session's mutex is held. */
  CTRACE(c, "%s: writes %lld %s (at most once)", op_name(op->kind), (long long)op->newval,
         op->wcreate ? "by creating the node" : "at its version");
  c->write_tok = zkr__obj_token(&c->o);
  if ((rc = zkr__send_begin(&x, &c->o, 0, op->wcreate ? ZKR__K_CREATE : ZKR__K_SET,
                            on_written, c->write_tok, sizeof(write_req_t))) != 0)
    return rc;
  op->wgen = x.c.gen;
  c->stats.writes++;
  c->sent_us = zkr__now_ns() / 1000;
  if (op->wcreate)
    rc = zoo_acreate(x.c.zh, c->path, val, c->enc, zkr_session_acl(c->o.s), 0,
                     zkr__cb_string, x.c.op);
  else
    rc = zoo_aset(x.c.zh, c->path, val, c->enc, op->wver, zkr__cb_stat, x.c.op);
  if ((rc = zkr__send_end(&x, rc)) != 0)
    return rc;
  after_send(c);
  return 0;
}

/* The write of the head operation: one multi, maybe a read pipelined behind. */
static int send_write(zkr_counter_t *c) {
  counter_op_t *op = c->head;
  zoo_op_t ops[2];
  char val[8], seq[8];
  int rc;
  write_req_t *w;
  zkr__send_t x;

  encode(c->enc, op->newval, val);
  op->wcreate = c->missing;
  op->wver = c->cache_ver;
  op->wczxid = c->cache_czxid;
  if (op->single)
    return send_write_single(c, val);
  op->seq = ++c->mseq;
  encode_seq(op->seq, seq);
  CTRACE(c, "%s: writes %lld %s, marker %s write %llu", op_name(op->kind),
         (long long)op->newval, c->missing ? "by creating the node" : "at its version",
         c->mpath, (unsigned long long)op->seq);
  c->write_tok = zkr__obj_token(&c->o);
  if (c->marker_live && c->marker_gen != zkr__session_gen(c->o.s))
    c->marker_live = false; /* it went with its session */
  /* Setting the marker needs the session that made it. */
  if ((rc = zkr__send_begin(&x, &c->o, c->marker_live ? c->marker_gen : 0, ZKR__K_MULTI,
                            on_written, c->write_tok, sizeof(write_req_t))) != 0)
    return rc;
  w = (write_req_t *)x.rq;
  w->multi = true;
  if (c->missing)
    zoo_create_op_init(&ops[0], c->path, val, c->enc, zkr_session_acl(c->o.s), 0,
                       w->paths[0], (int)sizeof(w->paths[0]));
  else
    zoo_set_op_init(&ops[0], c->path, val, c->enc, c->cache_ver, &w->stat);
  if (c->marker_live)
    zoo_set_op_init(&ops[1], c->mpath, seq, 8, -1, NULL);
  else
    zoo_create_op_init(&ops[1], c->mpath, seq, 8, zkr_session_acl(c->o.s), ZOO_EPHEMERAL,
                       w->paths[1], (int)sizeof(w->paths[1]));
  if ((rc = zkr__send_results(&x, 2)) != 0)
    return zkr__send_end(&x, rc);
  op->wgen = x.c.gen;
  c->stats.writes++;
  c->sent_us = zkr__now_ns() / 1000;
  if ((rc = zkr__send_end(&x, zoo_amulti(x.c.zh, 2, ops, x.c.results, zkr__cb_void,
                                         x.c.op))) != 0)
    return rc;
  after_send(c);
  return 0;
}

/* After a lost reply: read the marker, or (at most once) the counter itself. */
static int send_check(zkr_counter_t *c) {
  zkr__send_t x;
  int rc;

  c->check_tok = zkr__obj_token(&c->o);
  /* Only on the session that made the write: the marker is ephemeral, and only
   * that session's requests are known to be ordered before the check. The
   * server we reached after the lost reply may not have applied the write yet:
   * a sync first, so that the read sees it if it was committed. */
  const char *what = c->head->single ? c->path : c->mpath;
  if ((rc = zkr__send_sync(&c->o, c->head->wgen, what)) != 0 ||
      (rc = zkr__send_begin(&x, &c->o, c->head->wgen, ZKR__K_GET, on_checked, c->check_tok,
                            0)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_aget(x.c.zh, what, 0, zkr__cb_data, x.c.op));
}

/* ---- the head operation's steps (mu held) ---- */

/* Work out the value to write from the cache; 1 if a write should be sent, 0 if
 * the operation finished, -1 if a fresh read is needed first. */
static int compute(zkr_counter_t *c, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  int64_t v = c->missing ? 0 : c->cache_val;

  switch (op->kind) {
  case OP_ADD:
    if ((op->a > 0 && v > enc_max(c->enc) - op->a) ||
        (op->a < 0 && v < enc_min(c->enc) - op->a)) {
      if (!op->fresh)
        return -1; /* decide on a fresh value only */
      finish(c, ZKR_EOVERFLOW, v, fx);
      return 0;
    }
    op->newval = v + op->a;
    return 1;
  case OP_SET: op->newval = op->a; return 1;
  case OP_CAS:
    if (v != op->a) {
      if (!op->fresh)
        return -1;
      finish(c, ZKR_EMISMATCH, v, fx);
      return 0;
    }
    op->newval = op->b;
    return 1;
  }
  return 0;
}

/* Wait for the connection (or, with session, a new session); the object base
 * resumes. An operation that may not wait ends. */
static void wait_conn(zkr_counter_t *c, bool session, zkr__fx_t *fx) {
  if (c->head->nowait) {
    if (c->phase == PH_RESOLVE)
      end_unknown(c, fx);
    else
      finish(c, ZKR_ETIMEDOUT, 0, fx);
    return;
  }
  zkr__obj_wait(&c->o, session ? ZKR__WAIT_SESSION : ZKR__WAIT_CONN, 0);
}

/* What to do about a request that failed for reasons that are not the counter's:
 * wait for the connection or a new session, or give up. */
static void trouble(zkr_counter_t *c, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN:
    c->phase = PH_WAIT;
    wait_conn(c, false, fx);
    break;
  case ZKR__RC_SESSION:
    c->phase = PH_WAIT;
    wait_conn(c, true, fx);
    break;
  case ZKR__RC_CLOSED: finish(c, ZKR_ECLOSED, 0, fx); break;
  default: finish(c, rc, 0, fx);
  }
}

/* Read if the cache cannot be used, else write (or finish). */
static void proceed(zkr_counter_t *c, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  int rc, what;

  if (!op)
    return;
  if (op->kind == OP_GET || !cache_guarded(c)) {
    CTRACE(c, "%s: reads the counter", op_name(op->kind));
    c->read_tok = zkr__obj_token(&c->o);
    c->phase = PH_READ;
    if ((rc = send_read(c, on_read, c->read_tok, 0)) != 0)
      trouble(c, rc, fx);
    return;
  }
  what = compute(c, fx);
  if (what == 0)
    return;
  if (what < 0) {
    c->cache_valid = false;
    proceed(c, fx);
    return;
  }
  if ((rc = send_write(c)) != 0)
    trouble(c, rc, fx);
}

/* The connection or a session is back: redo what was interrupted. */
static void on_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  int rc;

  if (!c->head || c->stopped)
    return;
  if (c->phase == PH_RESOLVE) {
    rc = send_check(c);
    if (zkr__rc_class(rc) == ZKR__RC_CONN) {
      wait_conn(c, false, fx);
    } else if (rc != 0) {
      /* The write's session is gone (or the check cannot be made): undecidable. */
      c->stats.unknown++;
      finish(c, ZKR_EUNKNOWN, 0, fx);
    }
    return;
  }
  c->cache_valid = false;
  proceed(c, fx);
}

/* The head's write will not be resolved (deadline, or it may not wait):
 * ZKR_EUNKNOWN. The cache is not trusted any more; the marker carries on (the
 * next write's number is higher, whatever this one did). */
static void end_unknown(zkr_counter_t *c, zkr__fx_t *fx) {
  c->stats.unknown++;
  c->cache_valid = false;
  finish(c, ZKR_EUNKNOWN, 0, fx);
}

static void finish(zkr_counter_t *c, int rc, int64_t value, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  zkr__effect_t *e;

  if (!op)
    return;
  CTRACE(c, "%s ends: %s, value %lld, after %.3f ms (%d conflicts)", op_name(op->kind),
         zkr_strerror(rc), (long long)value, (double)(zkr__now_ns() - op->started_ns) / 1e6,
         op->conflicts);
  c->head = op->next;
  if (!c->head)
    c->tail = NULL;
  if ((e = zkr__fx_add(fx, run_done, NULL, NULL, rc))) {
    e->value = value;
    e->ptr = op;
  } else {
    free(op);
  }
  zkr__obj_timer_stop(&c->o, &c->deadline_timer);
  zkr__obj_timer_stop(&c->o, &c->backoff_timer);
  c->read_tok = c->write_tok = c->check_tok = 0;
  c->o.wait = ZKR__WAIT_NONE;
  c->phase = PH_START;
  if (c->head && !c->o.freed && !c->stopped)
    start_op(c, fx);
}

static void on_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  if (!fired || !c->head || c->head->deadline < 0 || zkr__now_ms() < c->head->deadline)
    return;
  if (c->phase == PH_WRITE || c->phase == PH_RESOLVE)
    end_unknown(c, fx); /* the late reply only cleans up after itself */
  else
    finish(c, ZKR_ETIMEDOUT, 0, fx); /* nothing of ours is in flight */
}

static int start_op(zkr_counter_t *c, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  c->phase = PH_START;
  if (op->nowait && zkr_session_state(c->o.s) != ZKR_STATE_CONNECTED) {
    finish(c, ZKR_ETIMEDOUT, 0, fx); /* it would have to wait for the connection */
    return 0;
  }
  if (op->deadline >= 0 &&
      zkr__obj_timer(&c->o, &c->deadline_timer, op->deadline * 1000, on_deadline) != 0)
    zkr__log(ZKR_LOG_WARN, "counter %s: no deadline for an operation", c->path);
  proceed(c, fx);
  return 0;
}

static void on_backoff(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  int rc, what;

  if (!fired || !c->head || o->freed || c->stopped || c->phase != PH_BACKOFF)
    return;
  what = compute(c, fx);
  if (what < 0) {
    c->cache_valid = false;
    proceed(c, fx);
  } else if (what > 0 && (rc = send_write(c)) != 0) {
    trouble(c, rc, fx);
  }
}

/* The write lost and the cache is fresh again: wait a little, then retry. */
static void after_conflict(zkr_counter_t *c, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  int64_t base = c->lat_us > 200 ? c->lat_us : 200;
  int shift = op->conflicts - 1 < 5 ? op->conflicts - 1 : 5;
  int64_t wait = (int64_t)(rnd(c) % (uint64_t)(base << shift));
  int what;

  if (op->nowait) {
    finish(c, ZKR_ETIMEDOUT, 0, fx); /* trying again means waiting first */
    return;
  }
  what = compute(c, fx);
  if (what <= 0) {
    if (what < 0) {
      c->cache_valid = false;
      proceed(c, fx);
    }
    return;
  }
  c->phase = PH_BACKOFF;
  CTRACE(c, "%s: backs off %.3f ms before writing %lld", op_name(op->kind),
         (double)wait / 1000, (long long)op->newval);
  if (zkr__obj_timer(&c->o, &c->backoff_timer, zkr__now_ns() / 1000 + wait, on_backoff) !=
          0 &&
      send_write(c) != 0)
    finish(c, ZKR_ENOMEM, 0, fx);
}

/* ---- replies (mu held) ---- */

static void take_read(zkr_counter_t *c, int rc, const zkr__reply_t *r, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  int64_t v;

  c->read_tok = 0;
  if (rc == ZOK) {
    if (decode(c->enc, r->data, r->data_len, &v) != 0) {
      c->cache_valid = false;
      finish(c, ZKR_EBADDATA, 0, fx);
      return;
    }
    c->cache_valid = true;
    c->missing = false;
    c->cache_val = v;
    c->cache_ver = r->stat ? r->stat->version : 0;
    c->cache_czxid = r->stat ? r->stat->czxid : 0;
    /* A get sets no watch: unguarded, the value serves a write only after a
     * fresh read. */
    if (op->kind == OP_GET && zkr__guard_state(c->guard, c->cache_czxid, NULL) != 1)
      c->cache_valid = false;
  } else if (rc == ZNONODE) {
    c->cache_valid = c->missing = true;
    c->cache_val = 0;
  } else {
    trouble(c, rc, fx);
    return;
  }
  op->fresh = true;
  if (op->kind == OP_GET) {
    finish(c, 0, c->missing ? 0 : c->cache_val, fx);
    return;
  }
  if (c->phase == PH_FRESH) {
    after_conflict(c, fx);
    return;
  }
  proceed(c, fx);
}

static bool read_awaited(zkr_counter_t *c, zkr__req_t *rq) {
  return c->head && rq->tok == c->read_tok &&
         (c->phase == PH_READ || c->phase == PH_FRESH);
}

static void on_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  if (read_awaited(c, rq))
    take_read(c, rc, r, fx);
}

static void on_pipelined_read(zkr__obj_t *o, zkr__req_t *rq, int rc,
                              const zkr__reply_t *r, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  int64_t v;

  if (read_awaited(c, rq)) {
    take_read(c, rc, r, fx);
  } else if (rc == ZOK && r->stat && c->cache_valid && !c->missing &&
             r->stat->czxid == c->cache_czxid &&
             (int32_t)((uint32_t)r->stat->version - (uint32_t)c->cache_ver) > 0 &&
             decode(c->enc, r->data, r->data_len, &v) == 0) {
    /* Someone wrote after us: keep the newer value. */
    c->cache_val = v;
    c->cache_ver = r->stat->version;
  }
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

static void write_applied(zkr_counter_t *c, write_req_t *w, zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  if (!op->single) {
    c->marker_live = true;
    c->marker_gen = w->base.gen;
  }
  c->cache_valid = true;
  if (c->missing) {
    c->cache_ver = 0;
    c->cache_czxid = 0; /* a create's result has no stat: the exists below tells */
  } else {
    if (c->cache_czxid && w->stat.czxid != c->cache_czxid) {
      /* The node was deleted and made again within a round trip before our
       * write, and the old version matched the new node's: the value was
       * computed from the old node. See the design note. */
      c->stats.incarnation_races++;
      zkr__log(ZKR_LOG_WARN,
               "counter %s: deleted and re-created just before a write; the write "
               "was computed from the old node's value",
               c->path);
    }
    c->cache_ver = w->stat.version;
    c->cache_czxid = w->stat.czxid;
  }
  c->missing = false;
  c->cache_val = op->newval;
  finish(c, 0, op->newval, fx);
}

static void write_lost_reply(zkr_counter_t *c, write_req_t *w, zkr__fx_t *fx) {
  /* Applied or not: the marker will tell, on this session. */
  c->stats.ambiguous++;
  CTRACE(c, "%s: the write's reply was lost; resolving it by reading the %s",
         op_name(c->head->kind), c->head->single ? "counter" : "marker");
  c->read_tok = 0;
  c->phase = PH_RESOLVE;
  if (zkr__session_gen(c->o.s) != w->base.gen) {
    c->stats.unknown++;
    finish(c, ZKR_EUNKNOWN, 0, fx);
  } else if (zkr_session_state(c->o.s) == ZKR_STATE_CONNECTED) {
    on_resume(&c->o, fx); /* the connection is back already */
  } else if (c->head->nowait) {
    end_unknown(c, fx);
  } else {
    zkr__obj_wait(&c->o, ZKR__WAIT_CONN, 0);
  }
}

/* The write failed: op i of it (0 the counter's, 1 the marker's; -1 not known)
 * with err. */
static void write_refused(zkr_counter_t *c, write_req_t *w, int i, int err,
                          zkr__fx_t *fx) {
  counter_op_t *op = c->head;
  int rc;

  if (i == 0 && (err == ZBADVERSION || err == ZNODEEXISTS)) {
    /* Someone else wrote first: nothing of ours applied. */
    op->conflicts++;
    c->stats.conflicts++;
    zkr__stat(c->o.s, ZKR__ST_COUNTER_CONFLICTS);
    CTRACE(c, "%s: another client wrote first (conflict %d), reading again",
           op_name(op->kind), op->conflicts);
    c->contended = CONTENDED_WRITES;
    c->cache_valid = op->fresh = false;
    c->phase = PH_FRESH;
    if (!c->read_tok) { /* else the pipelined read comes next */
      c->read_tok = zkr__obj_token(&c->o);
      if ((rc = send_read(c, on_read, c->read_tok, 0)) != 0)
        trouble(c, rc, fx);
    }
    return;
  }
  c->read_tok = 0; /* a pipelined read of a failed write is of no use */
  if (i == 0 && err == ZNONODE && !c->missing) {
    c->missing = true; /* deleted under us: create it */
    c->cache_val = 0;
    op->fresh = true;
    proceed(c, fx);
  } else if ((i == 0 || i == 1) && err == ZNONODE) {
    /* A parent of P or the markers node is missing: make them and retry. */
    CTRACE(c, "%s: %s missing: creating the parents, then writing again",
           op_name(op->kind), i == 0 ? "a parent of the counter is" : "the markers node is");
    if (++op->parent_rounds > MAX_PARENT_ROUNDS)
      finish(c, ZNONODE, 0, fx);
    else if ((rc = zkr__send_parents(&c->o, 0, op->single ? c->path : c->mdir,
                                     !op->single, zkr_session_acl(c->o.s), on_parent, 0,
                                     NULL)) != 0)
      finish(c, rc, 0, fx);
    else
      proceed(c, fx);
  } else if (i == 1 && (err == ZNONODE || err == ZNODEEXISTS)) {
    /* The marker is not where we thought (gone with its session, or made by a
     * write we stopped waiting for): create it, or set it, next time. */
    c->marker_live = err == ZNODEEXISTS;
    c->marker_gen = w->base.gen;
    proceed(c, fx);
  } else if (zkr__rc_class(err) == ZKR__RC_SESSION) {
    c->marker_live = false;
    trouble(c, err, fx); /* never sent: safe to write again on the new session */
  } else {
    finish(c, err, 0, fx);
  }
}

static void on_written(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  write_req_t *w = (write_req_t *)rq;

  if (!c->head || rq->tok != c->write_tok || o->freed) {
    if (rc == ZOK && !c->marker_live && w->multi) {
      /* a write nobody waits for made the marker */
      c->marker_live = true;
      c->marker_gen = rq->gen;
    }
    return;
  }
  c->write_tok = 0;
  if (zkr__rc_class(rc) != ZKR__RC_CONN) {
    /* The backoff scales with this estimate: one stalled write (a paused
     * server) must not inflate it for long, so a sample counts for at most four
     * times the current estimate (and the first for at most 100 ms). */
    int64_t sample = zkr__now_ns() / 1000 - c->sent_us;
    if (sample > (c->lat_us ? 4 * c->lat_us : 100000))
      sample = c->lat_us ? 4 * c->lat_us : 100000;
    c->lat_us = c->lat_us ? (c->lat_us * 7 + sample) / 8 : sample;
  }
  if (rc == ZOK && c->head->single && !c->head->wcreate && r->stat)
    w->stat = *r->stat;
  if (rc == ZOK) {
    write_applied(c, w, fx);
  } else if (zkr__rc_class(rc) == ZKR__RC_CONN) {
    write_lost_reply(c, w, fx);
  } else if (rc == ZCLOSING) {
    c->stats.unknown++;
    finish(c, ZKR_EUNKNOWN, 0, fx);
  } else if (c->head->single) {
    write_refused(c, w, 0, rc, fx);
  } else {
    int err = ZKR_ESYSTEM, i = failed_op(r, &err);
    write_refused(c, w, i, err, fx);
  }
}

static void on_checked(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);
  counter_op_t *op = c->head;

  if (!op || rq->tok != c->check_tok || c->phase != PH_RESOLVE)
    return;
  c->check_tok = 0;
  if (op->single) {
    /* At most once: P as it was before the write means not applied, and it
     * cannot apply any more (our session's requests are answered in order);
     * any change may be ours or another client's. */
    if (zkr__rc_class(rc) == ZKR__RC_CONN)
      rc = ZCONNECTIONLOSS;
    else if ((op->wcreate && rc == ZNONODE) ||
             (!op->wcreate && rc == ZOK && r->stat && r->stat->version == op->wver &&
              (!op->wczxid || r->stat->czxid == op->wczxid)))
      rc = ZNONODE;
    else if (rc == ZOK || rc == ZNONODE)
      rc = ZKR_EUNKNOWN;
  } else if (rc == ZOK && r->data_len == 8 && r->data) {
    uint64_t seq = 0;
    for (int k = 0; k < 8; k++)
      seq = (seq << 8) | (unsigned char)r->data[k];
    c->marker_live = true;
    c->marker_gen = op->wgen;
    rc = seq == op->seq ? ZOK : ZNONODE;
  } else if (rc == ZOK) {
    rc = ZKR_EBADDATA; /* not a marker of ours */
  }
  CTRACE(c, "%s: lost write resolved: %s", op_name(op->kind),
         rc == ZOK                                ? "applied"
         : rc == ZNONODE                          ? "not applied"
         : zkr__rc_class(rc) == ZKR__RC_CONN ? "not yet (connection lost again)"
                                                  : "unknown");
  if (rc == ZOK) {
    /* Applied, exactly once. Its version is unknown: read before the next write. */
    c->stats.resolved_applied++;
    c->cache_valid = false;
    finish(c, 0, op->newval, fx);
  } else if (rc == ZNONODE) {
    /* Not applied: make the write again, from a fresh read. */
    c->stats.resolved_not_applied++;
    c->cache_valid = false;
    if (op->nowait)
      finish(c, ZKR_ETIMEDOUT, 0, fx);
    else
      proceed(c, fx);
  } else if (zkr__rc_class(rc) == ZKR__RC_CONN) {
    wait_conn(c, false, fx);
  } else {
    /* The session ended, it is closing, or an error the check cannot get past. */
    c->stats.unknown++;
    finish(c, ZKR_EUNKNOWN, 0, fx);
  }
}

static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  (void)o, (void)rq, (void)rc, (void)r, (void)fx; /* the write's retry decides */
}

/* The guard's watch ended (P deleted, its children changed, or the handle
 * closed): the cache is not guarded any more. Callback context. */
static void on_guard(void *ctx) {
  zkr_counter_t *c = ctx;
  pthread_mutex_lock(&c->o.mu);
  if (c->cache_valid && !c->missing) {
    c->cache_valid = false;
    c->stats.cache_dropped++;
  }
  pthread_mutex_unlock(&c->o.mu);
}

/* The change listener's news. */
static void on_node(zkr__nodewatch_t *nw, const zkr__node_view_t *v, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(nw->o);
  zkr__effect_t *e;
  int64_t value;

  if (!v->stat || decode(c->enc, v->data, v->len, &value) != 0)
    return; /* gone (a counter reads as 0 only when asked), or not a counter */
  if ((e = zkr__fx_event(fx, &c->o, call_listener, 0))) {
    e->value = value;
    e->ptr = (void *)(intptr_t)v->stat->version;
  }
}

/* ---- the object ---- */

/* Every operation ends with rc; a write whose outcome is open with ZKR_EUNKNOWN. */
static void end_all(zkr_counter_t *c, int rc, zkr__fx_t *fx) {
  while (c->head) {
    bool inflight = c->phase == PH_WRITE || c->phase == PH_RESOLVE;
    if (inflight)
      c->stats.unknown++;
    finish(c, inflight ? ZKR_EUNKNOWN : rc, 0, fx);
  }
}

static void on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_counter_t *c = COUNTER(o);

  zkr__nodewatch_on_session(&c->nw, event);
  switch (event) {
  case ZKR_SESSION_LOST:
    /* The marker and the watches went with the session. */
    c->marker_live = false;
    c->cache_valid = false;
    if (c->head && c->phase == PH_RESOLVE) {
      c->stats.unknown++;
      finish(c, ZKR_EUNKNOWN, 0, fx);
    } else if (c->head && c->phase != PH_WRITE) {
      c->phase = PH_WAIT;
      c->read_tok = c->check_tok = 0;
      zkr__obj_timer_stop(o, &c->backoff_timer);
      zkr__obj_wait(o, ZKR__WAIT_SESSION, 0);
    }
    break;
  case ZKR_SESSION_CONNECT_FAILED:
  case ZKR_SESSION_AUTH_FAILED:
    /* Nothing will connect this session (until the user connects it again, or
     * ever: refused credentials). A write can only have gone out if the
     * handshake completed just as the attempt was given up: unknown then. */
    end_all(c, event == ZKR_SESSION_AUTH_FAILED ? ZAUTHFAILED : ZINVALIDSTATE, fx);
    break;
  case ZKR_SESSION_CLOSED:
    c->stopped = true;
    end_all(c, ZKR_ECLOSED, fx);
    break;
  }
}

static void destroy(zkr__obj_t *o) {
  zkr_counter_t *c = COUNTER(o);
  while (c->head) {
    counter_op_t *op = c->head;
    c->head = op->next;
    free(op);
  }
  zkr__guard_put(c->guard); /* unsubscribed by zkr_counter_free (or never) */
  free(c->path);
  free(c->mdir);
  zkr__obj_fini(o);
  free(c);
}

static const zkr__obj_ops_t ops = {
    .name = "counter", .on_session = on_session, .resume = on_resume, .destroy = destroy};

/* ---- public ---- */

/* The object's GUID (32 hex digits, no dashes) and the backoff's seed. */
static int set_identity(zkr_counter_t *c) {
  char g[37];
  if (zkr__guid(g) != 0)
    return ZKR_ESYSTEM;
  for (int i = 0, j = 0; g[i]; i++)
    if (g[i] != '-')
      c->guid[j++] = g[i];
  c->rng = ((uint64_t)zkr__now_ns() << 1) | 1;
  for (int i = 0; i < 16; i++)
    c->rng = c->rng * 31 + (unsigned char)c->guid[i];
  if (!c->rng)
    c->rng = 88172645463325252ULL;
  return 0;
}

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
  if (!(c = zkr__obj_new(sizeof(*c), &ops, s)))
    return ZKR_ENOMEM;
  c->enc = encoding;
  if (!(c->path = strdup(path)) || !(c->mdir = malloc(n + sizeof(MARKER_SUFFIX))) ||
      !(c->guard = zkr__guard_get(s, path))) {
    rc = ZKR_ENOMEM;
    goto fail;
  }
  memcpy(c->mdir, path, n);
  memcpy(c->mdir + n, MARKER_SUFFIX, sizeof(MARKER_SUFFIX));
  zkr__nodewatch_init(&c->nw, &c->o, c->path, on_node);
  if ((rc = set_identity(c)) != 0)
    goto fail;
  snprintf(c->mpath, sizeof(c->mpath), "%s/%s", c->mdir, c->guid);
  zkr__dispatch_enter(s); /* subscribers change in callback context only */
  c->gsub = zkr__guard_subscribe(c->guard, on_guard, c);
  zkr__dispatch_leave(s);
  if (!c->gsub) {
    rc = ZKR_ENOMEM;
    goto fail;
  }
  if ((rc = zkr__obj_listen(&c->o)) != 0) {
    zkr__dispatch_enter(s);
    zkr__guard_unsubscribe(c->guard, c->gsub);
    zkr__dispatch_leave(s);
    goto fail;
  }
  *out = c;
  return 0;
fail:
  zkr__obj_unref(&c->o);
  return rc;
}

/* Queue an operation; start it if nothing runs. A start that fails at once is
 * reported by the return value, not the callback. */
static int submit(zkr_counter_t *c, int kind, int64_t a, int64_t b, int timeout_ms,
                  zkr_counter_cb cb, void *arg) {
  zkr__fx_t fx = ZKR__FX_INIT;
  counter_op_t *op;
  int rc = 0;

  if (!(op = calloc(1, sizeof(*op))))
    return ZKR_ENOMEM;
  op->kind = kind;
  op->a = a;
  op->b = b;
  op->cb = cb;
  op->arg = arg;
  op->nowait = timeout_ms == 0;
  op->deadline = timeout_ms > 0 ? zkr__deadline(timeout_ms) : -1;
  op->started_ns = zkr__now_ns();
  pthread_mutex_lock(&c->o.mu);
  op->single = c->mode == ZKR_COUNTER_AT_MOST_ONCE;
  if (c->o.freed || c->stopped || zkr_session_state(c->o.s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (zkr__session_gen(c->o.s) == 0 &&
             zkr_session_state(c->o.s) != ZKR_STATE_CONNECTING) {
    rc = ZINVALIDSTATE; /* not connected, and nobody is connecting */
  } else if (c->head) {
    c->tail->next = op;
    c->tail = op;
    op = NULL;
  } else {
    c->head = c->tail = op;
    op = NULL;
    start_op(c, &fx);
    if (fx.n) {
      /* Refused before anything was sent: an async call that fails never calls
       * back, so say it here (the one effect is this operation's end). */
      counter_op_t *done = fx.inl[0].ptr;
      rc = fx.inl[0].rc ? fx.inl[0].rc : ZKR_ESYSTEM;
      fx.n = 0;
      free(done);
    }
  }
  pthread_mutex_unlock(&c->o.mu);
  free(op);
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

static void sync_cb(zkr_counter_t *c, int rc, int64_t value, void *arg) {
  zkr__sync_t *y = arg;
  (void)c;
  y->value = value;
  zkr__sync_signal(y, rc);
}

/* The sync forms: the async form (whose deadline always calls back) + the waiter. */
static int run_sync(zkr_counter_t *c, int kind, int64_t a, int64_t b, int timeout_ms,
                    int64_t *value) {
  zkr__sync_t y;
  int rc;

  if (!c || timeout_ms < -1)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(&y, submit(c, kind, a, b, timeout_ms, sync_cb, &y));
  if (value && (rc == 0 || rc == ZKR_EMISMATCH))
    *value = y.value;
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

int zkr_counter_set_mode(zkr_counter_t *c, int mode) {
  if (!c || (mode != ZKR_COUNTER_EXACTLY_ONCE && mode != ZKR_COUNTER_AT_MOST_ONCE))
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  c->mode = mode;
  pthread_mutex_unlock(&c->o.mu);
  return 0;
}

int zkr_counter_set_listener(zkr_counter_t *c, zkr_counter_listener_fn fn, void *arg) {
  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  c->o.lfn = ZKR__FN(fn);
  c->o.larg = arg;
  if (fn && !c->o.freed)
    zkr__nodewatch_start(&c->nw);
  else if (!fn)
    zkr__nodewatch_stop(&c->nw);
  pthread_mutex_unlock(&c->o.mu);
  return 0;
}

uint64_t zkr_counter_conflicts(zkr_counter_t *c) {
  uint64_t n;
  if (!c)
    return 0;
  pthread_mutex_lock(&c->o.mu);
  n = c->stats.conflicts;
  pthread_mutex_unlock(&c->o.mu);
  return n;
}

int zkr__counter_stats(zkr_counter_t *c, zkr__counter_stats_t *out) {
  if (!c || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  *out = c->stats;
  out->write_rtt_us = c->lat_us;
  pthread_mutex_unlock(&c->o.mu);
  return 0;
}

void zkr_counter_free(zkr_counter_t *c) {
  zkr__fx_t fx = ZKR__FX_INIT;
  zkr_session_t *s;

  if (!c)
    return;
  /* In callback context (dispatch mutex, then the object's): the guard calls its
   * subscribers there, so it never calls a counter that has gone. */
  s = c->o.s;
  zkr__dispatch_enter(s);
  if (!zkr__obj_free_begin(&c->o)) {
    zkr__dispatch_leave(s);
    return;
  }
  end_all(c, ZKR_ECANCELED, &fx);
  c->o.lfn = NULL;
  zkr__nodewatch_stop(&c->nw);
  /* The marker goes now rather than with the session (a write whose outcome was
   * left unknown may have made it: then on the current session). */
  if (c->marker_live || c->mseq)
    zkr__janitor_delete(c->o.s, c->marker_live ? c->marker_gen : zkr__session_gen(c->o.s),
                        c->mpath, NULL, NULL);
  c->marker_live = false;
  /* The guard's watch may outlive us: we hear no more of it. */
  zkr__guard_unsubscribe(c->guard, c->gsub);
  c->gsub = NULL;
  zkr__obj_free_end(&c->o, &fx); /* may free c */
  zkr__dispatch_leave(s);
}
