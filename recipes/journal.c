/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Journaled configuration: a writer logs every change, followers replay the
 * log. Znodes and guarantees: include/zkrecipes/journal.h.
 *
 * Writer. Operations (writes and trims) of one object run one at a time, in a
 * FIFO queue whose head is active, as the counter's do. A write is one multi:
 *   setData(P, v, version)          (create(P, v) when P is missing)
 *   create(J/e-<id><n>-, v, PERSISTENT_SEQUENTIAL)
 * where J = P.zkr-journal, <id> is the object's 64 random bits and <n> the
 * number of the write. A missing J is created (PERSISTENT: a container would
 * be reaped when trimmed empty and restart the sequences), missing parents of
 * P as CONTAINERs; then the write is made again. After a lost reply, once a
 * connection (any session: entries are persistent) is back: sync(J), list J,
 * read J's low-water mark. The entry found = applied. Not found: the write
 * cannot apply any more (a session's requests are applied in order, and a
 * request of a session that moved or ended is refused), so it did not, unless
 * a trim deleted it already: the sequence it could have had is at least the
 * "floor" (J's cversion before the write: an exists pipelined ahead of the
 * object's first write, then the last sequence it wrote + 1); a mark below
 * the floor means nothing of ours was trimmed, so the write is made again,
 * else ZKR_EUNKNOWN.
 *
 * Trim: list J and read the mark (its version too); delete the oldest entries
 * up to the limit in multis of at most TRIM_BATCH deletes plus
 * setData(J, highest deleted, version), then list again, until nothing is left
 * to delete. The version check makes two trims at once safe and the mark
 * never goes down; every entry at or below the mark is gone and every one
 * above it is there (entries are deleted oldest first).
 *
 * Follower: list J with a child watch, then read the mark, pipelined (the
 * mark read after the listing: an entry missing from the listing was deleted
 * before it, so the mark read after covers it). A mark above the position:
 * TRIMMED, and the position jumps to it. The entries above the position are
 * read in order, at most WINDOW at a time, and delivered as the answers come
 * (one session answers in order); the position moves with each. An entry gone
 * before its read (a trim raced it) lists again. The child watch firing lists
 * again once the reads in progress are delivered. A cut-off request lists
 * again on reconnect; a new session lists again from the position. J absent:
 * an exists watch waits for it. J's czxid changing: RESTARTED, from -1.
 *
 * Locking: j->o.mu guards everything marked (mu); user callbacks and events
 * run after it is released (the object base's effects).
 */
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOURNAL_SUFFIX    ".zkr-journal"
#define JPATH_MAX         (ZKR__PATH_MAX + 16)
#define ENTRY_PATH_MAX    (JPATH_MAX + 64)
#define MAX_PARENT_ROUNDS 8
#define WINDOW            128 /* entry reads in flight per follower */
#define TRIM_BATCH        99  /* deletes per trim multi (plus the mark) */

enum { OP_WRITE, OP_TRIM };
enum {
  PH_START,   /* not started */
  PH_WRITE,   /* the multi is in flight (write_tok) */
  PH_RESOLVE, /* its reply was lost: the check (check_tok) or a connection awaited */
  PH_LIST,    /* trim: listing and mark in flight (check_tok) */
  PH_TRIM,    /* trim: a multi in flight (write_tok) */
  PH_WAIT     /* waiting for the connection or a new session */
};

typedef struct jop {
  struct jop *next;
  int kind;
  char *data; /* write: a copy (NULL: no data) */
  int len;
  int version;
  int64_t up_to; /* trim */
  int keep;
  zkr_journal_write_cb wcb;
  zkr_journal_trim_cb tcb;
  void *arg;
  int64_t deadline; /* ms, -1: none */
  bool nowait;
  bool pcreate;      /* P is missing: the multi creates it */
  int parent_rounds; /* parents or J created for this write */
  uint32_t wno;      /* the write's number (in its entry's name) */
  int64_t floor;     /* the lowest sequence its entry can have; -1: not known */
  int64_t deleted;   /* trim */
} jop_t;

/* An entry of a listing. */
typedef struct ent {
  int64_t seq;
  char *name;
} ent_t;

typedef struct write_req {
  zkr__req_t base;
  struct Stat stat;
  char created[2][ENTRY_PATH_MAX];
} write_req_t;

typedef struct read_req {
  zkr__req_t base;
  int idx; /* the entry in pend */
} read_req_t;

struct zkr_journal {
  zkr__obj_t o;
  char *path;
  char jpath[JPATH_MAX];
  char id[17]; /* 16 hex digits */

  /* writer (mu) */
  bool stopped; /* the session was freed */
  jop_t *head, *tail;
  int phase;
  uint32_t write_tok, check_tok;
  zkr__tmr_t *deadline_timer;
  uint32_t wno;
  int64_t last_seq;  /* the last sequence this object wrote (-1: none) */
  int res_rc;        /* resolve / trim: the listing's rc ... */
  int64_t res_found; /* ... the entry found (-1: none) */
  ent_t *tl;         /* trim: the listing, sorted */
  int ntl;
  int batch; /* trim: deletes in the multi in flight */

  /* follower (mu) */
  bool following;
  bool caught_up; /* CAUGHT_UP was told */
  bool list_stale, listing, dirty, absent;
  int64_t pos;
  int64_t jczxid; /* J's incarnation (0: not seen yet) */
  uint32_t list_tok, read_tok;
  ent_t *lst; /* the listing awaiting its mark */
  int nlst;
  int64_t lst_czxid;
  ent_t *pend; /* entries to deliver, in order */
  int npend, sent, done;
  zkr__journal_stats_t stats; /* (mu) */
};

#define JNL(o) ((zkr_journal_t *)(o))

/* ---- names and listings ---- */

/* The sequence of an entry name "e-...-<10 digits>", or -1 if it is not one. */
static int64_t entry_seq(const char *name) {
  const char *dash = strrchr(name, '-');
  int32_t v;
  if (strncmp(name, "e-", 2) != 0 || !dash || dash < name + 2 ||
      zkr__seq_parse(dash + 1, &v) != 0 || v < 0)
    return -1;
  return v;
}

static void ents_free(ent_t *e, int n) {
  for (int i = 0; e && i < n; i++)
    free(e[i].name);
  free(e);
}

static int ent_cmp(const void *a, const void *b) {
  const ent_t *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The entries of a listing, sorted by sequence; -1 if out of memory. */
static int ents_from(const struct String_vector *sv, ent_t **out, int *n) {
  int cap = sv ? sv->count : 0, k = 0;
  ent_t *e = malloc((size_t)(cap ? cap : 1) * sizeof(*e));
  if (!e)
    return -1;
  for (int i = 0; i < cap; i++) {
    int64_t seq = entry_seq(sv->data[i]);
    if (seq < 0)
      continue;
    if (!(e[k].name = strdup(sv->data[i]))) {
      ents_free(e, k);
      return -1;
    }
    e[k++].seq = seq;
  }
  qsort(e, (size_t)k, sizeof(*e), ent_cmp);
  *out = e;
  *n = k;
  return 0;
}

/* The low-water mark in J's data: -1 when empty or not a number. */
static int64_t parse_mark(const char *data, int len) {
  int64_t v = 0;
  if (!data || len <= 0 || len > 19)
    return -1;
  for (int i = 0; i < len; i++) {
    if (data[i] < '0' || data[i] > '9')
      return -1;
    v = v * 10 + (data[i] - '0');
  }
  return v;
}

static int entry_path(const zkr_journal_t *j, const char *name, char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s/%s", j->jpath, name);
  return n > 0 && (size_t)n < cap ? 0 : ZKR_EINVAL;
}

/* ---- effects ---- */

static void run_done(zkr__obj_t *o, const zkr__effect_t *e) {
  jop_t *op = e->ptr;
  if (op->kind == OP_WRITE && op->wcb)
    op->wcb(JNL(o), e->rc, e->value, op->arg);
  else if (op->kind == OP_TRIM && op->tcb)
    op->tcb(JNL(o), e->rc, e->value, op->arg);
  free(op->data);
  free(op);
}

typedef struct ev_rec {
  zkr_journal_event_t ev;
  char data[];
} ev_rec_t;

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg,
                          const zkr__effect_t *e) {
  ((zkr_journal_listener_fn)fn)(JNL(o), &((ev_rec_t *)e->ptr)->ev, arg);
}

/* o.mu held: an event (data copied); NULL if nobody listens. */
static ev_rec_t *tell(zkr_journal_t *j, int type, int64_t seq, int64_t from,
                      const char *data, int len, zkr__fx_t *fx) {
  size_t dl = data && len > 0 ? (size_t)len : 0;
  ev_rec_t *r;
  if (!j->o.lfn)
    return NULL;
  if (!(r = calloc(1, sizeof(*r) + dl + 1))) {
    zkr__log(ZKR_LOG_ERROR, "journal %s: out of memory: a %s event is lost", j->path,
             zkr_journal_event_name(type));
    return NULL;
  }
  r->ev.type = type;
  r->ev.seq = seq;
  r->ev.from = from;
  r->ev.len = -1;
  if (data && len >= 0) {
    memcpy(r->data, data, dl);
    r->ev.data = r->data;
    r->ev.len = len;
  }
  if (!zkr__fx_event_owned(fx, &j->o, call_listener, type, r)) {
    free(r);
    return NULL;
  }
  return r;
}

/* ==== writer ==== */

static void proceed(zkr_journal_t *j, zkr__fx_t *fx);
static void finish(zkr_journal_t *j, int rc, int64_t value, zkr__fx_t *fx);
static void on_written(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_floor(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx);
static void on_res_list(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx);
static void on_res_mark(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx);
static void on_trimmed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);

static void ignore_reply(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  (void)o, (void)rq, (void)rc, (void)r, (void)fx; /* the retry that follows decides */
}

/* Wait for a connection (or a new session) and go on; an operation that may
 * not wait ends. */
static void wait_conn(zkr_journal_t *j, bool session, zkr__fx_t *fx) {
  jop_t *op = j->head;
  if (op->nowait) {
    finish(j, j->phase == PH_RESOLVE ? ZKR_EUNKNOWN : ZKR_ETIMEDOUT, op->deleted, fx);
    return;
  }
  if (j->phase != PH_RESOLVE)
    j->phase = PH_WAIT;
  zkr__obj_wait(&j->o, session ? ZKR__WAIT_SESSION : ZKR__WAIT_CONN, 0);
}

/* A request could not be sent or failed for reasons that are not the journal's. */
static void trouble(zkr_journal_t *j, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN: wait_conn(j, false, fx); break;
  case ZKR__RC_SESSION: wait_conn(j, true, fx); break;
  case ZKR__RC_CLOSED:
    if (zkr_session_state(j->o.s) != ZKR_STATE_CLOSED) {
      wait_conn(j, true, fx); /* an old handle closed: its session was replaced */
      break;
    }
    finish(j, j->phase == PH_RESOLVE || j->phase == PH_WRITE ? ZKR_EUNKNOWN : ZKR_ECLOSED,
           j->head->deleted, fx);
    break;
  default: finish(j, rc, j->head->deleted, fx);
  }
}

static int send_write(zkr_journal_t *j) {
  jop_t *op = j->head;
  char epath[ENTRY_PATH_MAX];
  zoo_op_t ops[2];
  write_req_t *w;
  zkr__send_t x;
  int rc;

  op->wno = ++j->wno;
  snprintf(epath, sizeof(epath), "%s/e-%s%08" PRIx32 "-", j->jpath, j->id, op->wno);
  j->write_tok = zkr__obj_token(&j->o);
  op->floor = j->last_seq >= 0 ? j->last_seq + 1 : -1;
  if (op->floor < 0) {
    /* The sequence the entry can have is at least J's cversion now: an exists
     * ahead of the multi, answered first. */
    if ((rc = zkr__send_begin(&x, &j->o, 0, ZKR__K_EXISTS, on_floor, j->write_tok, 0)) !=
            0 ||
        (rc = zkr__send_end(&x,
                            zoo_aexists(x.c.zh, j->jpath, 0, zkr__cb_stat, x.c.op))) != 0)
      return rc;
  }
  if ((rc = zkr__send_begin(&x, &j->o, 0, ZKR__K_MULTI, on_written, j->write_tok,
                            sizeof(write_req_t))) != 0)
    return rc;
  w = (write_req_t *)x.rq;
  if (op->pcreate)
    zoo_create_op_init(&ops[0], j->path, op->data, op->len, zkr_session_acl(j->o.s), 0,
                       w->created[0], (int)sizeof(w->created[0]));
  else
    zoo_set_op_init(&ops[0], j->path, op->data, op->len, op->version, &w->stat);
  zoo_create_op_init(&ops[1], epath, op->data, op->len, zkr_session_acl(j->o.s),
                     ZOO_PERSISTENT_SEQUENTIAL, w->created[1],
                     (int)sizeof(w->created[1]));
  if ((rc = zkr__send_results(&x, 2)) != 0)
    return zkr__send_end(&x, rc);
  if ((rc = zkr__send_end(
           &x, zoo_amulti(x.c.zh, 2, ops, x.c.results, zkr__cb_void, x.c.op))) != 0)
    return rc;
  j->phase = PH_WRITE;
  return 0;
}

/* After a lost reply: sync, then J's listing and its mark. */
static int send_check(zkr_journal_t *j, zkr__step_fn on_list, zkr__step_fn on_mark) {
  zkr__send_t x;
  int rc;

  j->check_tok = zkr__obj_token(&j->o);
  j->res_rc = ZCONNECTIONLOSS;
  j->res_found = -1;
  ents_free(j->tl, j->ntl);
  j->tl = NULL;
  j->ntl = 0;
  if ((rc = zkr__send_sync(&j->o, 0, j->jpath)) != 0 ||
      (rc = zkr__send_begin(&x, &j->o, 0, ZKR__K_CHILDREN, on_list, j->check_tok, 0)) !=
          0 ||
      (rc = zkr__send_end(
           &x, zoo_aget_children(x.c.zh, j->jpath, 0, zkr__cb_strings, x.c.op))) != 0 ||
      (rc = zkr__send_begin(&x, &j->o, 0, ZKR__K_GET, on_mark, j->check_tok, 0)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_aget(x.c.zh, j->jpath, 0, zkr__cb_data, x.c.op));
}

static void start_resolve(zkr_journal_t *j, zkr__fx_t *fx) {
  int rc;
  j->phase = PH_RESOLVE;
  if ((rc = send_check(j, on_res_list, on_res_mark)) != 0)
    trouble(j, rc, fx);
}

static void proceed(zkr_journal_t *j, zkr__fx_t *fx) {
  jop_t *op = j->head;
  int rc;

  if (!op || j->stopped || j->o.freed)
    return;
  if (op->kind == OP_WRITE) {
    if ((rc = send_write(j)) != 0)
      trouble(j, rc, fx);
  } else {
    j->phase = PH_LIST;
    if ((rc = send_check(j, on_res_list, on_res_mark)) != 0)
      trouble(j, rc, fx);
  }
}

static void on_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  if (!fired || !j->head || j->head->deadline < 0 || zkr__now_ms() < j->head->deadline)
    return;
  if (j->head->kind == OP_WRITE && (j->phase == PH_WRITE || j->phase == PH_RESOLVE))
    finish(j, ZKR_EUNKNOWN, 0, fx); /* a late reply only cleans up after itself */
  else
    finish(j, ZKR_ETIMEDOUT, j->head->deleted, fx);
}

static void start_op(zkr_journal_t *j, zkr__fx_t *fx) {
  jop_t *op = j->head;
  j->phase = PH_START;
  if (op->nowait && zkr_session_state(j->o.s) != ZKR_STATE_CONNECTED) {
    finish(j, ZKR_ETIMEDOUT, 0, fx); /* it would have to wait for the connection */
    return;
  }
  if (op->deadline >= 0 &&
      zkr__obj_timer(&j->o, &j->deadline_timer, op->deadline * 1000, on_deadline) != 0)
    zkr__log(ZKR_LOG_WARN, "journal %s: no deadline for an operation", j->path);
  proceed(j, fx);
}

static void finish(zkr_journal_t *j, int rc, int64_t value, zkr__fx_t *fx) {
  jop_t *op = j->head;
  zkr__effect_t *e;

  if (!op)
    return;
  if (op->kind == OP_WRITE && rc == 0)
    j->stats.writes++;
  else if (op->kind == OP_WRITE && rc == ZKR_EUNKNOWN)
    j->stats.unknown++;
  j->head = op->next;
  if (!j->head)
    j->tail = NULL;
  if ((e = zkr__fx_add(fx, run_done, NULL, NULL, rc))) {
    e->value = value;
    e->ptr = op;
  } else {
    free(op->data);
    free(op);
  }
  zkr__obj_timer_stop(&j->o, &j->deadline_timer);
  j->write_tok = j->check_tok = 0;
  j->o.wait = ZKR__WAIT_NONE;
  j->phase = PH_START;
  ents_free(j->tl, j->ntl);
  j->tl = NULL;
  j->ntl = 0;
  if (j->head && !j->o.freed && !j->stopped)
    start_op(j, fx);
}

static void on_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  if (!j->head || j->stopped)
    return;
  if (j->phase == PH_RESOLVE)
    start_resolve(j, fx);
  else
    proceed(j, fx);
}

static void on_floor(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  (void)fx;
  if (!j->head || rq->tok != j->write_tok)
    return;
  if (rc == ZOK && r->stat)
    j->head->floor = r->stat->cversion;
  else if (rc == ZNONODE)
    j->head->floor = 0;
}

static int failed_op(const zkr__reply_t *r, int *err) {
  for (int i = 0; r->results && i < r->nresults; i++) {
    if (r->results[i].err != ZOK && r->results[i].err != ZRUNTIMEINCONSISTENCY) {
      *err = r->results[i].err;
      return i;
    }
  }
  return -1;
}

/* A write made again after making what was missing (parents, P or J). */
static void again(zkr_journal_t *j, zkr__fx_t *fx) {
  if (++j->head->parent_rounds > MAX_PARENT_ROUNDS)
    finish(j, ZNONODE, 0, fx);
  else
    proceed(j, fx);
}

static void on_written(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  write_req_t *w = (write_req_t *)rq;
  jop_t *op = j->head;
  int err = ZKR_ESYSTEM, i, src;

  if (!op || rq->tok != j->write_tok || o->freed)
    return;
  j->write_tok = 0;
  if (rc == ZOK) {
    int64_t seq =
        entry_seq(strrchr(w->created[1], '/') ? strrchr(w->created[1], '/') + 1 : "");
    if (seq > j->last_seq)
      j->last_seq = seq;
    finish(j, seq >= 0 ? 0 : ZKR_EBADDATA, seq, fx);
    return;
  }
  if (zkr__rc_class(rc) == ZKR__RC_CONN || rc == ZCLOSING) {
    /* Sent, maybe applied (a closing handle: the session was replaced, or is
     * being freed; then the check fails and the outcome is unknown). */
    zkr__log(ZKR_LOG_INFO, "journal %s: a write's reply was lost; looking for its entry",
             j->path);
    j->stats.ambiguous++;
    j->phase = PH_RESOLVE;
    if (zkr_session_state(o->s) == ZKR_STATE_CONNECTED)
      start_resolve(j, fx);
    else
      wait_conn(j, false, fx);
    return;
  }
  if (zkr__rc_class(rc) == ZKR__RC_SESSION) {
    trouble(j, rc, fx); /* never sent: made again on the new session */
    return;
  }
  i = failed_op(r, &err);
  if (i == 0 && err == ZNONODE && !op->pcreate && op->version < 0) {
    op->pcreate = true; /* P is missing: create it */
    proceed(j, fx);
  } else if (i == 0 && err == ZNONODE && op->pcreate) {
    /* A parent of P is missing. */
    if ((src = zkr__send_parents(&j->o, 0, j->path, false, zkr_session_acl(o->s),
                                 ignore_reply, 0, NULL)) != 0)
      trouble(j, src, fx);
    else
      again(j, fx);
  } else if (i == 0 && err == ZNODEEXISTS) {
    op->pcreate = false; /* made meanwhile */
    again(j, fx);
  } else if (i == 1 && err == ZNONODE) {
    /* J is missing (P's parent is there: op 0 passed). */
    zkr__send_t x;
    if ((src = zkr__send_begin(&x, &j->o, 0, ZKR__K_CREATE, ignore_reply, 0, 0)) != 0 ||
        (src = zkr__send_end(&x, zoo_acreate(x.c.zh, j->jpath, NULL, -1,
                                             zkr_session_acl(o->s), 0, zkr__cb_string,
                                             x.c.op))) != 0)
      trouble(j, src, fx);
    else
      again(j, fx);
  } else {
    finish(j, i >= 0 ? err : rc, 0,
           fx); /* ZBADVERSION, ZNONODE (versioned), ZNOAUTH... */
  }
}

static void on_res_list(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  char prefix[40];
  size_t pl;
  (void)fx;

  if (!j->head || rq->tok != j->check_tok || o->freed)
    return;
  j->res_rc = rc;
  if (rc != ZOK)
    return;
  if (j->head->kind == OP_TRIM) {
    if (ents_from(r->strings, &j->tl, &j->ntl) != 0)
      j->res_rc = ZKR_ENOMEM;
    return;
  }
  pl =
      (size_t)snprintf(prefix, sizeof(prefix), "e-%s%08" PRIx32 "-", j->id, j->head->wno);
  for (int i = 0; r->strings && i < r->strings->count; i++) {
    const char *name = r->strings->data[i];
    if (strncmp(name, prefix, pl) == 0 && entry_seq(name) >= 0)
      j->res_found = entry_seq(name);
  }
}

static void trim_next(zkr_journal_t *j, int64_t mark, int32_t version, zkr__fx_t *fx);

static void on_res_mark(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  jop_t *op = j->head;
  int64_t mark;

  if (!op || rq->tok != j->check_tok || o->freed)
    return;
  j->check_tok = 0;
  if (j->res_rc == ZOK && rc == ZNONODE)
    rc = ZOK; /* J went between the two: nothing to find, nothing trimmed of ours */
  if (j->res_rc != ZOK && j->res_rc != ZNONODE)
    rc = j->res_rc;
  if (rc != ZOK && rc != ZNONODE) {
    trouble(j, rc, fx);
    return;
  }
  mark = rc == ZOK ? parse_mark(r->data, r->data_len) : -1;
  if (op->kind == OP_TRIM) {
    if (rc == ZNONODE || j->res_rc == ZNONODE)
      finish(j, 0, op->deleted, fx); /* no journal: nothing to trim */
    else
      trim_next(j, mark, r->stat ? r->stat->version : -1, fx);
    return;
  }
  if (j->res_found >= 0) {
    zkr__log(ZKR_LOG_INFO, "journal %s: the lost write applied, as entry %" PRId64,
             j->path, j->res_found);
    if (j->res_found > j->last_seq)
      j->last_seq = j->res_found;
    j->stats.found++;
    finish(j, 0, j->res_found, fx);
  } else if ((op->floor >= 0 && mark < op->floor) || mark < 0) {
    zkr__log(ZKR_LOG_INFO, "journal %s: the lost write did not apply; writing again",
             j->path);
    j->stats.rewritten++;
    if (op->nowait)
      finish(j, ZKR_ETIMEDOUT, 0, fx);
    else
      proceed(j, fx);
  } else {
    zkr__log(ZKR_LOG_WARN,
             "journal %s: a lost write's entry is not there, and a trim may have "
             "removed it: outcome unknown",
             j->path);
    finish(j, ZKR_EUNKNOWN, 0, fx);
  }
}

/* Trim: the listing is in j->tl; delete the next batch, or finish. */
static void trim_next(zkr_journal_t *j, int64_t mark, int32_t version, zkr__fx_t *fx) {
  jop_t *op = j->head;
  int last = j->ntl - op->keep, n = 0, rc;
  int64_t newmark = mark;
  char mbuf[24], (*paths)[ENTRY_PATH_MAX];
  zoo_op_t ops[TRIM_BATCH + 1];
  zkr__send_t x;

  if (!(paths = malloc(TRIM_BATCH * sizeof(*paths)))) {
    finish(j, ZKR_ENOMEM, op->deleted, fx);
    return;
  }
  while (n < last && n < TRIM_BATCH && j->tl[n].seq <= op->up_to) {
    if (entry_path(j, j->tl[n].name, paths[n], sizeof(paths[n])) != 0)
      break;
    if (j->tl[n].seq > newmark)
      newmark = j->tl[n].seq;
    n++;
  }
  if (n == 0) {
    free(paths);
    finish(j, 0, op->deleted, fx);
    return;
  }
  snprintf(mbuf, sizeof(mbuf), "%" PRId64, newmark);
  zoo_set_op_init(&ops[0], j->jpath, mbuf, (int)strlen(mbuf), version, NULL);
  for (int i = 0; i < n; i++)
    zoo_delete_op_init(&ops[i + 1], paths[i], -1);
  j->write_tok = zkr__obj_token(&j->o);
  if ((rc = zkr__send_begin(&x, &j->o, 0, ZKR__K_MULTI, on_trimmed, j->write_tok, 0)) ==
      0) {
    if ((rc = zkr__send_results(&x, n + 1)) == 0)
      rc = zoo_amulti(x.c.zh, n + 1, ops, x.c.results, zkr__cb_void, x.c.op);
    rc = zkr__send_end(&x, rc); /* the request is made: the paths are copied */
  }
  free(paths);
  if (rc != 0) {
    trouble(j, rc, fx);
    return;
  }
  j->phase = PH_TRIM;
  j->batch = n; /* counted when applied */
}

static void on_trimmed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  jop_t *op = j->head;
  int err = rc, i;

  if (!op || rq->tok != j->write_tok || o->freed)
    return;
  j->write_tok = 0;
  if (rc == ZOK) {
    op->deleted += j->batch;
    proceed(j, fx); /* list again: more to delete? */
    return;
  }
  if (zkr__rc_class(rc) != ZKR__RC_FINAL || rc == ZCLOSING) {
    trouble(j, rc, fx); /* listed again once back: what is gone is gone */
    return;
  }
  i = failed_op(r, &err);
  if (err == ZBADVERSION || err == ZNONODE)
    proceed(j, fx); /* another trim moved first: list again */
  else
    finish(j, i >= 0 ? err : rc, op->deleted, fx);
}

/* ==== follower ==== */

static void on_f_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx);
static void on_f_mark(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx);
static void on_f_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_f_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx);
static void on_f_entry(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);

static void drop_pending(zkr_journal_t *j) {
  ents_free(j->pend, j->npend);
  j->pend = NULL;
  j->npend = j->sent = j->done = 0;
  j->read_tok = 0;
}

/* List J with a child watch, then read its mark (exists with a watch while
 * it is absent). Whatever is being read is dropped: the listing starts again
 * from the position. */
static void f_list(zkr_journal_t *j, bool exists) {
  zkr__send_t x;
  int rc;

  drop_pending(j);
  ents_free(j->lst, j->nlst);
  j->lst = NULL;
  j->nlst = 0;
  j->list_tok = zkr__obj_token(&j->o);
  j->list_stale = j->dirty = false;
  j->listing = !exists;
  if ((rc = zkr__send_begin(&x, &j->o, 0, exists ? ZKR__K_EXISTS : ZKR__K_CHILDREN,
                            exists ? on_f_exists : on_f_listed, j->list_tok, 0)) != 0)
    goto fail;
  if ((rc = zkr__send_watch(&x, on_f_watch, j->list_tok, 0)) != 0) {
    zkr__send_end(&x, rc);
    goto fail;
  }
  rc = exists
           ? zoo_awexists(x.c.zh, j->jpath, zkr__watcher, x.c.watch, zkr__cb_stat, x.c.op)
           : zoo_awget_children2(x.c.zh, j->jpath, zkr__watcher, x.c.watch,
                                 zkr__cb_strings_stat, x.c.op);
  if (zkr__send_end(&x, rc) != 0)
    goto fail;
  if (exists)
    return;
  if (zkr__send_begin(&x, &j->o, 0, ZKR__K_GET, on_f_mark, j->list_tok, 0) == 0 &&
      zkr__send_end(&x, zoo_aget(x.c.zh, j->jpath, 0, zkr__cb_data, x.c.op)) == 0)
    return;
fail:
  j->listing = false;
  j->list_stale = true; /* made again when the connection is back */
}

static void f_read_more(zkr_journal_t *j) {
  char path[ENTRY_PATH_MAX];
  zkr__send_t x;

  while (j->sent < j->npend && j->sent - j->done < WINDOW) {
    if (entry_path(j, j->pend[j->sent].name, path, sizeof(path)) != 0 ||
        zkr__send_begin(&x, &j->o, 0, ZKR__K_GET, on_f_entry, j->read_tok,
                        sizeof(read_req_t)) != 0) {
      j->list_stale = true; /* listed again when the connection is back */
      j->read_tok = 0;
      return;
    }
    ((read_req_t *)x.rq)->idx = j->sent;
    if (zkr__send_end(&x, zoo_aget(x.c.zh, path, 0, zkr__cb_data, x.c.op)) != 0) {
      j->list_stale = true;
      j->read_tok = 0;
      return;
    }
    j->sent++;
  }
}

/* Everything listed is delivered. */
static void f_idle(zkr_journal_t *j, zkr__fx_t *fx) {
  drop_pending(j);
  if (j->dirty) {
    f_list(j, false);
  } else if (!j->caught_up) {
    j->caught_up = true;
    tell(j, ZKR_JOURNAL_CAUGHT_UP, j->pos, j->pos, NULL, -1, fx);
  }
}

static void on_f_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  (void)fx;
  if (rq->tok != j->list_tok || o->freed || !j->following)
    return;
  if (rc == ZNONODE) {
    j->absent = true; /* the mark's answer (ZNONODE too) waits for it */
    return;
  }
  if (rc != ZOK || ents_from(r->strings, &j->lst, &j->nlst) != 0) {
    if (rc == ZOK)
      zkr__log(ZKR_LOG_ERROR, "journal %s: out of memory: listing again later", j->path);
    j->listing = false;
    j->list_stale = true;
    return;
  }
  j->absent = false;
  j->lst_czxid = r->stat ? r->stat->czxid : 0;
}

static void on_f_mark(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  int64_t mark;
  int first = 0;

  if (rq->tok != j->list_tok || o->freed || !j->following || !j->listing)
    return;
  j->listing = false;
  if (j->absent) {
    f_list(j, true); /* wait for J */
    return;
  }
  if (rc == ZNONODE) {
    f_list(j, false); /* deleted between the two: list again */
    return;
  }
  if (rc != ZOK) {
    j->list_stale = true;
    return;
  }
  if (j->jczxid && j->lst_czxid && j->lst_czxid != j->jczxid) {
    zkr__log(ZKR_LOG_WARN,
             "journal %s: the journal node was created again: following "
             "it from its start",
             j->path);
    tell(j, ZKR_JOURNAL_RESTARTED, -1, j->pos, NULL, -1, fx);
    j->pos = -1;
  }
  if (j->lst_czxid)
    j->jczxid = j->lst_czxid;
  mark = parse_mark(r->data, r->data_len);
  if (mark > j->pos) {
    tell(j, ZKR_JOURNAL_TRIMMED, mark, j->pos, NULL, -1, fx);
    j->pos = mark;
  }
  while (first < j->nlst && j->lst[first].seq <= j->pos)
    free(j->lst[first++].name);
  /* What remains becomes the reads to make. */
  memmove(j->lst, j->lst + first, (size_t)(j->nlst - first) * sizeof(*j->lst));
  j->pend = j->lst;
  j->npend = j->nlst - first;
  j->sent = j->done = 0;
  j->lst = NULL;
  j->nlst = 0;
  if (j->npend == 0) {
    f_idle(j, fx);
    return;
  }
  j->read_tok = zkr__obj_token(&j->o);
  f_read_more(j);
}

static void on_f_entry(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  int idx = ((read_req_t *)rq)->idx;
  ev_rec_t *e;
  int64_t before;

  if (!j->read_tok || rq->tok != j->read_tok || o->freed || !j->following)
    return;
  if (idx != j->done || rc == ZNONODE) {
    /* Trimmed (or deleted) before it was read: list again from the position,
     * and the mark tells. (Out of order cannot happen on one session.) */
    f_list(j, false);
    return;
  }
  if (rc != ZOK || !r->stat) {
    j->read_tok = 0;
    j->list_stale = true;
    return;
  }
  before = j->pos;
  j->pos = j->pend[idx].seq;
  j->done++;
  if ((e = tell(j, ZKR_JOURNAL_ENTRY, j->pos, before, r->data, r->data_len, fx))) {
    e->ev.zxid = r->stat->czxid;
    e->ev.mtime = r->stat->ctime;
  }
  if (j->done == j->npend)
    f_idle(j, fx);
  else
    f_read_more(j);
}

static void on_f_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  (void)r, (void)fx;
  if (rq->tok != j->list_tok || o->freed || !j->following || rc != ZOK)
    return; /* ZNOWATCHER: the request's answer decides; ZCLOSING: the end */
  if (j->listing || j->npend > 0)
    j->dirty = true; /* listed again once what is being read is delivered */
  else
    f_list(j, false);
}

static void on_f_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);
  (void)r, (void)fx;
  if (rq->tok != j->list_tok || o->freed || !j->following)
    return;
  if (rc == ZOK)
    f_list(j, false); /* created meanwhile */
  else if (rc != ZNONODE)
    j->list_stale = true;
  else if (!j->caught_up) {
    j->caught_up = true; /* nothing logged yet */
    tell(j, ZKR_JOURNAL_CAUGHT_UP, j->pos, j->pos, NULL, -1, fx);
  }
}

/* ==== the object ==== */

static void end_all(zkr_journal_t *j, int rc, zkr__fx_t *fx) {
  while (j->head) {
    bool open =
        j->head->kind == OP_WRITE && (j->phase == PH_WRITE || j->phase == PH_RESOLVE);
    finish(j, open ? ZKR_EUNKNOWN : rc, j->head->deleted, fx);
  }
}

static void on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_journal_t *j = JNL(o);

  switch (event) {
  case ZKR_SESSION_LOST:
    if (j->following) {
      j->list_tok = zkr__obj_token(&j->o); /* what is still out finds nothing */
      drop_pending(j);
      j->listing = false;
      j->list_stale = true;
    }
    break;
  case ZKR_SESSION_CONNECTED: /* a new session: every watch went with the old one */
    if (j->following)
      f_list(j, false);
    break;
  case ZKR_SESSION_RECONNECTED:
    if (j->following && j->list_stale)
      f_list(j, false);
    break;
  case ZKR_SESSION_CONNECT_FAILED:
  case ZKR_SESSION_AUTH_FAILED:
    end_all(j, event == ZKR_SESSION_AUTH_FAILED ? ZAUTHFAILED : ZINVALIDSTATE, fx);
    break;
  case ZKR_SESSION_CLOSED:
    j->stopped = true;
    end_all(j, ZKR_ECLOSED, fx);
    break;
  }
}

static void destroy(zkr__obj_t *o) {
  zkr_journal_t *j = JNL(o);
  while (j->head) {
    jop_t *op = j->head;
    j->head = op->next;
    free(op->data);
    free(op);
  }
  ents_free(j->tl, j->ntl);
  ents_free(j->lst, j->nlst);
  ents_free(j->pend, j->npend);
  free(j->path);
  zkr__obj_fini(o);
  free(j);
}

static const zkr__obj_ops_t ops = {
    .name = "journal", .on_session = on_session, .resume = on_resume, .destroy = destroy};

/* ---- public ---- */

int zkr_journal_new(zkr_session_t *s, const char *path, zkr_journal_t **out) {
  zkr_journal_t *j;
  char g[37];
  int rc, k = 0;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || strlen(path) > ZKR__PATH_MAX)
    return ZKR_EINVAL;
  if (zkr__guid(g) != 0)
    return ZKR_ESYSTEM;
  if (!(j = zkr__obj_new(sizeof(*j), &ops, s)))
    return ZKR_ENOMEM;
  for (int i = 0; g[i] && k < 16; i++)
    if (g[i] != '-')
      j->id[k++] = g[i];
  j->last_seq = -1;
  j->pos = -1;
  snprintf(j->jpath, sizeof(j->jpath), "%s%s", path, JOURNAL_SUFFIX);
  if (!(j->path = strdup(path))) {
    zkr__obj_unref(&j->o);
    return ZKR_ENOMEM;
  }
  if ((rc = zkr__obj_listen(&j->o)) != 0) {
    zkr__obj_unref(&j->o);
    return rc;
  }
  *out = j;
  return 0;
}

static int submit(zkr_journal_t *j, jop_t *op, int timeout_ms) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  op->nowait = timeout_ms == 0;
  op->deadline = timeout_ms > 0 ? zkr__deadline(timeout_ms) : -1;
  op->floor = -1;
  pthread_mutex_lock(&j->o.mu);
  if (j->o.freed || j->stopped || zkr_session_state(j->o.s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (zkr__session_gen(j->o.s) == 0 &&
             zkr_session_state(j->o.s) != ZKR_STATE_CONNECTING) {
    rc = ZINVALIDSTATE; /* not connected, and nobody is connecting */
  } else if (j->head) {
    j->tail->next = op;
    j->tail = op;
    op = NULL;
  } else {
    j->head = j->tail = op;
    op = NULL;
    start_op(j, &fx);
    if (fx.n) {
      /* Refused before anything was sent: an async call that fails never calls
       * back, so say it here (the one effect is this operation's end). */
      jop_t *done = fx.inl[0].ptr;
      rc = fx.inl[0].rc ? fx.inl[0].rc : ZKR_ESYSTEM;
      fx.n = 0;
      free(done->data);
      free(done);
    }
  }
  pthread_mutex_unlock(&j->o.mu);
  if (op) {
    free(op->data);
    free(op);
  }
  return rc;
}

int zkr_journal_write_async(zkr_journal_t *j, const char *data, int len, int version,
                            int timeout_ms, zkr_journal_write_cb cb, void *arg) {
  jop_t *op;

  if (!j || !cb || timeout_ms < -1 || version < -1 || len < -1 || (len > 0 && !data) ||
      (len == -1 && data) || len > ZKR_JOURNAL_MAX_DATA)
    return ZKR_EINVAL;
  if (!(op = calloc(1, sizeof(*op))))
    return ZKR_ENOMEM;
  op->kind = OP_WRITE;
  op->len = len;
  op->version = version;
  op->wcb = cb;
  op->arg = arg;
  if (len >= 0 && !(op->data = malloc((size_t)len + 1))) {
    free(op);
    return ZKR_ENOMEM;
  }
  if (len > 0)
    memcpy(op->data, data, (size_t)len);
  return submit(j, op, timeout_ms);
}

int zkr_journal_trim_async(zkr_journal_t *j, int64_t up_to, int keep, int timeout_ms,
                           zkr_journal_trim_cb cb, void *arg) {
  jop_t *op;

  if (!j || !cb || timeout_ms < -1 || keep < 0 || up_to < 0)
    return ZKR_EINVAL;
  if (!(op = calloc(1, sizeof(*op))))
    return ZKR_ENOMEM;
  op->kind = OP_TRIM;
  op->up_to = up_to;
  op->keep = keep;
  op->tcb = cb;
  op->arg = arg;
  return submit(j, op, timeout_ms);
}

static void sync_write_cb(zkr_journal_t *j, int rc, int64_t value, void *arg) {
  zkr__sync_t *y = arg;
  (void)j;
  y->value = value;
  zkr__sync_signal(y, rc);
}

static void sync_trim_cb(zkr_journal_t *j, int rc, int64_t deleted, void *arg) {
  sync_write_cb(j, rc, deleted, arg);
}

int zkr_journal_write(zkr_journal_t *j, const char *data, int len, int version,
                      int timeout_ms, int64_t *seq) {
  zkr__sync_t y;
  int rc;

  if (seq)
    *seq = -1;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(
      &y, zkr_journal_write_async(j, data, len, version, timeout_ms, sync_write_cb, &y));
  if (rc == 0 && seq)
    *seq = y.value;
  return rc;
}

int zkr_journal_trim(zkr_journal_t *j, int64_t up_to, int keep, int timeout_ms,
                     int64_t *deleted) {
  zkr__sync_t y;
  int rc;

  if (deleted)
    *deleted = 0;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(
      &y, zkr_journal_trim_async(j, up_to, keep, timeout_ms, sync_trim_cb, &y));
  if (deleted && rc != ZKR_EINVAL)
    *deleted = y.value;
  return rc;
}

int zkr_journal_follow(zkr_journal_t *j, int64_t after, zkr_journal_listener_fn fn,
                       void *arg) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  if (!j || !fn || after < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&j->o.mu);
  if (j->o.freed || j->stopped || zkr_session_state(j->o.s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (j->following) {
    rc = ZKR_EBUSY;
  } else {
    j->following = true;
    j->pos = after;
    j->o.lfn = ZKR__FN(fn);
    j->o.larg = arg;
    j->list_stale = true;
    if (zkr__session_gen(j->o.s) != 0)
      f_list(j, false); /* else on CONNECTED */
  }
  zkr__obj_unlock_api(&j->o, &fx);
  return rc;
}

int64_t zkr_journal_position(zkr_journal_t *j) {
  int64_t pos;
  if (!j)
    return -1;
  pthread_mutex_lock(&j->o.mu);
  pos = j->following ? j->pos : -1;
  pthread_mutex_unlock(&j->o.mu);
  return pos;
}

void zkr_journal_free(zkr_journal_t *j) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!j || !zkr__obj_free_begin(&j->o))
    return;
  end_all(j, ZKR_ECANCELED, &fx);
  j->o.lfn = NULL;
  j->following = false;
  j->list_tok = zkr__obj_token(&j->o); /* answers and watches still out find nothing */
  drop_pending(j);
  zkr__obj_free_end(&j->o, &fx);
}

int zkr__journal_stats(zkr_journal_t *j, zkr__journal_stats_t *out) {
  if (!j || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&j->o.mu);
  *out = j->stats;
  pthread_mutex_unlock(&j->o.mu);
  return 0;
}

const char *zkr_journal_event_name(int type) {
  switch (type) {
  case ZKR_JOURNAL_ENTRY: return "ENTRY";
  case ZKR_JOURNAL_TRIMMED: return "TRIMMED";
  case ZKR_JOURNAL_CAUGHT_UP: return "CAUGHT_UP";
  case ZKR_JOURNAL_RESTARTED: return "RESTARTED";
  default: return "UNKNOWN";
  }
}
