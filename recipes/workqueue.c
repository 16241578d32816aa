/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Work queue (zkrecipes/queue.h). One call at a time per queue object (put,
 * take, length, and an item's commit or requeue, which go through its queue),
 * each a chain of steps on the object base:
 *
 * put:     multi{create I/<prefix> PERSISTENT_SEQUENTIAL, create R/<putid>
 *          EPHEMERAL, delete the last put's receipt}. ZNONODE: the parents
 *          (containers) first, then again. A lost reply: exists(R/<putid>)
 *          once connected, on the same session: there, the put applied;
 *          absent, it did not (a multi is all or none): sent again. The
 *          receipt is ephemeral so that a producer that dies leaves none
 *          behind; the price: a put whose reply was lost and whose session
 *          then expired cannot be settled (ZKR_EUNKNOWN).
 * take:    list I and C (pipelined); available = items of the profile's
 *          format, not claimed, not known bad, in name order. None: list
 *          again with child watches on both and wait for an event. Else claim
 *          one at random among the first (claims + 1): create2 C/<item>
 *          EPHEMERAL (data: our consumer id); ZNODEEXISTS: the next one; a
 *          lost reply: exists(C/<item>) says whether it is ours. Then read
 *          the item (gone: release the claim, next one) and hand it over.
 * commit / requeue: multi{check C/<item> version 0, delete I/<item>, ...,
 *          delete C/<item>}; a lost reply: on the same session, our claim gone
 *          means it applied, still there means it did not (sent again); on
 *          another session, the item gone is ZKR_EUNKNOWN, there ZKR_ELOST.
 * length:  exists(I): numChildren.
 *
 * Ownership: an item (zkr_item_t) holds a reference on its queue object; its
 * claim is deleted by the janitor when the item is freed uncommitted.
 */
#include "internal.h"
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/queue.h"

#include <stdatomic.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_PARENT_ROUNDS 8
#define MAX_BAD 64 /* items of our format we could not decode: skipped */
/* A consumer alone on the queue (the last listing showed no claim) takes the
 * next item from its last listing, if that is younger than this: one round
 * trip less per take. An item gone meanwhile costs a claim and a read. */
#define CACHE_NS (500 * 1000000LL)

enum { OP_NONE = 0, OP_PUT, OP_TAKE, OP_COMMIT, OP_REQUEUE, OP_LENGTH };

struct zkr_item {
  zkr_queue_t *q;
  char *name;
  char *data;
  int len;
  int prio;
  int64_t czxid;
  uint64_t gen; /* the session generation of the claim */
  bool done;    /* committed or requeued: no claim left to release */
};

struct zkr_queue {
  zkr__obj_t o; /* first */
  int profile;
  char *path, *items, *claims, *receipts;
  char id[33]; /* consumer id: the claims' data (kazoo compares it) */
  /* (o.mu) */
  int op;
  bool once;
  uint32_t tok;
  zkr__tmr_t *deadline;
  void (*cb)(void);
  void *arg;
  int parent_rounds;
  uint64_t rq_gen; /* the session generation of the reply being handled */
  /* put */
  char putid[33];
  char last_receipt[33]; /* the last put's receipt, deleted by the next put */
  char *pdata;
  int plen, prio;
  bool put_ambiguous;
  uint64_t put_gen; /* the session generation of an ambiguous put */
  char put_name[256];
  /* take */
  int replies, rc;
  char **its, **cls; /* the last listing (items, claims) */
  int nits, ncls;
  int64_t listed_ns; /* a take's listing kept for the next take: when */
  bool from_cache;   /* this take's candidates come from that listing */
  bool read_sent;    /* the item's read went out behind the claim */
  bool watched;     /* that listing set child watches */
  bool recheck;     /* a watch fired before both replies came */
  bool items_missing; /* the items' parent did not exist at the listing */
  char **avail;     /* points into its */
  int navail, pick, tried;
  char claim[256];  /* the item we claim */
  bool claim_ambiguous, claimed;
  int64_t claim_czxid;
  char *bad[MAX_BAD];
  int nbad;
  _Atomic uint64_t races; /* claims lost to another consumer */
  struct releasing *releasing; /* our claims on their way out */
  zkr_item_t *got;
  /* commit / requeue */
  zkr_item_t *it;
  const zoo_op_t *uops;
  int nuops;
  zoo_op_result_t *ures;
  bool commit_ambiguous;
  /* length */
  int length;
};

#define QU(o) ((zkr_queue_t *)(o))

/* A request whose multi creates a node: the buffer for the created path. */
typedef struct qreq {
  zkr__req_t base;
  char created[1024];
} qreq_t;

typedef struct creq { /* a claim's create */
  zkr__req_t base;
  char name[256]; /* the item claimed */
} creq_t;

/* ---- names and data by profile ---- */

static const char *prefix_of(int profile) {
  return profile == ZKR_QUEUE_CURATOR ? "queue-" : profile == ZKR_QUEUE_SIMPLE ? "qn-" : "entry-";
}

/* The n characters at s are all from set. */
static bool all_of(const char *s, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++)
    if (!s[i] || !strchr(set, s[i]))
      return false;
  return true;
}

/* An item of our format? Its priority into *prio. */
static bool item_name(int profile, const char *name, int *prio) {
  const char *p = prefix_of(profile);
  size_t pl = strlen(p), n = strlen(name);
  *prio = 0;
  if (strncmp(name, p, pl) != 0)
    return false;
  name += pl;
  n -= pl;
  if (profile == ZKR_QUEUE_SIMPLE || (profile == ZKR_QUEUE_CURATOR && n == 10))
    return n == 10 && all_of(name, 10, "0123456789");
  if (profile == ZKR_QUEUE_CURATOR) { /* <0|1><8 hex digits><seq10> */
    unsigned long v;
    if (n != 19 || (name[0] != '0' && name[0] != '1') || !all_of(name + 1, 8, "0123456789ABCDEF") ||
        !all_of(name + 9, 10, "0123456789"))
      return false;
    v = strtoul((char[9]){name[1], name[2], name[3], name[4], name[5], name[6], name[7],
                          name[8], 0},
                NULL, 16);
    *prio = (int)(int32_t)(uint32_t)v;
    return true;
  }
  /* kazoo: <prio %03d>-<seq10> */
  if (n != 14 || !all_of(name, 3, "0123456789") || name[3] != '-' ||
      !all_of(name + 4, 10, "0123456789"))
    return false;
  *prio = atoi(name);
  return true;
}

/* The node name prefix of a new item (before the server's sequence). */
static int item_prefix(int profile, int prio, char *buf, size_t size) {
  if (profile == ZKR_QUEUE_CURATOR && prio != 0)
    return snprintf(buf, size, "queue-%c%08X", prio >= 0 ? '1' : '0', (uint32_t)prio);
  if (profile == ZKR_QUEUE_KAZOO || profile == ZKR_QUEUE_KAZOO_LOCKING)
    return snprintf(buf, size, "entry-%03d-", prio);
  return snprintf(buf, size, "%s", prefix_of(profile));
}

/* Curator's ItemSerializer: int32 0x00010001, then per item 0x01, int32 length,
 * the bytes; then 0x02. */
static char *frame(const char *data, int len, int *out_len) {
  char *f = malloc((size_t)len + 10);
  uint32_t v;
  if (!f)
    return NULL;
  v = htonl(0x00010001u);
  memcpy(f, &v, 4);
  f[4] = 0x01;
  v = htonl((uint32_t)len);
  memcpy(f + 5, &v, 4);
  if (len > 0)
    memcpy(f + 9, data, (size_t)len);
  f[9 + len] = 0x02;
  *out_len = len + 10;
  return f;
}

/* The first item of a frame (Curator may put several in one: we take the
 * first); -1 if the data is not a frame. */
static int unframe(const char *d, int len, int *off) {
  uint32_t v;
  if (len < 10)
    return -1;
  memcpy(&v, d, 4);
  if (ntohl(v) != 0x00010001u || d[4] != 0x01)
    return -1;
  memcpy(&v, d + 5, 4);
  v = ntohl(v);
  if (v > (uint32_t)len - 10)
    return -1;
  *off = 9;
  return (int)v;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_list(char **l, int n) {
  for (int i = 0; i < n; i++)
    free(l[i]);
  free(l);
}

static int copy_list(const struct String_vector *v, char ***out, int *n) {
  *out = NULL;
  *n = 0;
  if (!v || v->count == 0)
    return 0;
  if (!(*out = calloc((size_t)v->count, sizeof(char *))))
    return ZKR_ENOMEM;
  for (int i = 0; i < v->count; i++) {
    if (!((*out)[i] = strdup(v->data[i]))) {
      free_list(*out, i);
      *out = NULL;
      return ZKR_ENOMEM;
    }
  }
  *n = v->count;
  return 0;
}

/* ---- releasing a claim ---- */

/* A claim of ours the janitor deletes. Until it is gone, this object does not
 * claim that item again: the janitor's delete may go out after a new claim of
 * ours and would take it. */
struct releasing {
  struct releasing *next;
  zkr_queue_t *q;
  char name[];
};

static void on_released(void *arg, int rc) {
  struct releasing *r = arg, **pp;
  zkr_queue_t *q = r->q;
  (void)rc;
  pthread_mutex_lock(&q->o.mu);
  for (pp = &q->releasing; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  pthread_mutex_unlock(&q->o.mu);
  free(r);
  zkr__obj_unref(&q->o);
}

/* o.mu held: forget the listing kept for the next take (an item of ours goes
 * back: it must be seen again, in its place). */
static void drop_cache(zkr_queue_t *q) {
  if (q->op == OP_TAKE)
    return; /* (the pending take owns the lists) */
  free_list(q->its, q->nits);
  free_list(q->cls, q->ncls);
  q->its = q->cls = NULL;
  q->nits = q->ncls = 0;
}

/* o.mu held: hand our claim on name (made on session generation gen) to the
 * janitor. */
/* Our claim on name goes (by the janitor); mine: known to be ours, else a
 * claim whose create's reply was lost, removed only if this session owns it
 * (it may be another consumer's, and the create may still be on its way to
 * the server we reach: the janitor syncs first). */
static void release_claim(zkr_queue_t *q, const char *name, uint64_t gen, bool mine) {
  char *p = zkr__path_join(q->claims, name);
  struct releasing *r = malloc(sizeof(*r) + strlen(name) + 1);
  if (!p || !r) {
    free(p);
    free(r);
    zkr__log(ZKR_LOG_ERROR, "queue %s: out of memory: claim %s left to its session", q->path,
             name);
    return;
  }
  strcpy(r->name, name);
  r->q = q;
  zkr__obj_ref(&q->o);
  if ((mine ? zkr__janitor_delete(q->o.s, gen, p, on_released, r)
           : zkr__janitor_delete_own(q->o.s, gen, p, on_released, r)) != 0) {
    zkr__obj_unref(&q->o);
    free(r);
  } else {
    r->next = q->releasing;
    q->releasing = r;
  }
  free(p);
}

static void release(zkr_queue_t *q, const char *name, uint64_t gen) {
  release_claim(q, name, gen, true);
}

static bool releasing(zkr_queue_t *q, const char *name) {
  for (struct releasing *r = q->releasing; r; r = r->next)
    if (strcmp(r->name, name) == 0)
      return true;
  return false;
}

/* ---- ending a call ---- */

static void run_put(zkr__obj_t *o, const zkr__effect_t *e) {
  ((void (*)(zkr_queue_t *, int, void *))e->cb)(QU(o), e->rc, e->arg);
}

static void run_take(zkr__obj_t *o, const zkr__effect_t *e) {
  ((zkr_queue_take_cb)e->cb)(QU(o), e->rc, e->ptr, e->arg);
}

static void q_end(zkr_queue_t *q, int rc, zkr__fx_t *fx) {
  zkr__effect_t *e;
  if (q->op == OP_NONE)
    return;
  if (q->op == OP_TAKE) {
    if (rc != 0 && (q->claimed || q->claim_ambiguous)) /* a claim of this attempt */
      release_claim(q, q->claim, 0, q->claimed);
    e = zkr__fx_add(fx, run_take, q->cb, q->arg, rc);
    if (e) {
      e->ptr = rc == 0 ? q->got : NULL;
    } else if (q->got) { /* (logged: out of memory): released */
      release(q, q->got->name, q->got->gen);
      free(q->got->name);
      free(q->got->data);
      free(q->got);
      zkr__obj_unref(&q->o); /* the item's (the user's is still there) */
    }
    if (rc == 0 && q->ncls == 0 && q->tried == 0) {
      /* Alone on the queue, as far as the listing showed: the next take may
       * go on from this listing (without the item just taken). */
      for (int i = 0; i < q->nits; i++)
        if (strcmp(q->its[i], q->claim) == 0) {
          free(q->its[i]);
          q->its[i] = q->its[--q->nits];
          break;
        }
      q->listed_ns = zkr__now_ns();
    } else {
      free_list(q->its, q->nits);
      free_list(q->cls, q->ncls);
      q->its = q->cls = NULL;
      q->nits = q->ncls = 0;
    }
    q->got = NULL;
  } else {
    e = zkr__fx_add(fx, run_put, q->cb, q->arg, rc);
    if (e)
      e->value = q->length;
  }
  free(q->pdata);
  q->pdata = NULL;
  free(q->avail);
  q->avail = NULL;
  q->navail = 0;
  q->op = OP_NONE;
  q->tok = 0;
  q->cb = NULL;
  q->it = NULL;
  q->o.wait = ZKR__WAIT_NONE;
  zkr__obj_timer_stop(&q->o, &q->deadline);
  zkr__obj_timer_stop(&q->o, &q->o.resume_timer);
}

static int q_step(zkr_queue_t *q);

static void q_trouble(zkr_queue_t *q, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN:
    if (q->once)
      q_end(q, ZKR_ETIMEDOUT, fx);
    else
      zkr__obj_wait(&q->o, ZKR__WAIT_CONN, 0);
    break;
  case ZKR__RC_SESSION: /* that session is gone: go on on the next one */
    if (q->once)
      q_end(q, ZKR_ETIMEDOUT, fx);
    else
      zkr__obj_wait(&q->o, ZKR__WAIT_SESSION,
                    q->rq_gen ? q->rq_gen : zkr__session_gen(q->o.s));
    break;
  case ZKR__RC_CLOSED: q_end(q, ZKR_ECLOSED, fx); break;
  default: q_end(q, rc, fx);
  }
}

static void q_next(zkr_queue_t *q, zkr__fx_t *fx) {
  int rc;
  if (q->op != OP_NONE && (rc = q_step(q)) != 0)
    q_trouble(q, rc, fx);
}

/* ---- parents ---- */

static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  (void)r;
  if (rq->tok != q->tok || q->op == OP_NONE)
    return;
  if (rq->ctx == q) /* the last one: go on */
    q_next(q, fx);
  else if (rc != ZOK && rc != ZNODEEXISTS && zkr__rc_class(rc) == ZKR__RC_FINAL)
    q_end(q, rc, fx);
}

/* Make path (and its ancestors) as containers, then go on. */
static int send_parents(zkr_queue_t *q, const char *path) {
  zkr__send_t x;
  int rc;
  if (++q->parent_rounds > MAX_PARENT_ROUNDS)
    return ZNONODE;
  q->tok = zkr__obj_token(&q->o);
  if ((rc = zkr__send_parents(&q->o, 0, path, true, zkr_session_acl(q->o.s), on_parent, q->tok,
                              NULL)) != 0)
    return rc;
  /* a sync after them: its reply says they are all answered */
  if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_OTHER, on_parent, q->tok, 0)) != 0)
    return rc;
  x.rq->ctx = q;
  return zkr__send_end(&x, zoo_async(x.c.zh, path, zkr__cb_string, x.c.op));
}

/* Whether rq is the reply the operation in progress waits for (its token is
 * the current one and op_matches: the operation is of the kind that sent
 * it); if so, its generation is recorded. */
static bool current_reply(zkr_queue_t *q, const zkr__req_t *rq, bool op_matches) {
  if (rq->tok != q->tok || !op_matches)
    return false;
  q->rq_gen = rq->gen;
  return true;
}

/* ---- put ---- */

static void on_put(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                   zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  if (!current_reply(q, rq, q->op == OP_PUT))
    return;
  if (rc == ZOK) {
    const char *made = r->nresults > 0 && r->results[0].value ? r->results[0].value : "";
    const char *slash = strrchr(made, '/');
    snprintf(q->put_name, sizeof(q->put_name), "%s", slash ? slash + 1 : made);
    snprintf(q->last_receipt, sizeof(q->last_receipt), "%s", q->putid); /* the next goes */
    q_end(q, 0, fx);
  } else if (rc == ZNONODE && r->nresults > 2 && r->results[2].err == ZNONODE) {
    q->last_receipt[0] = '\0'; /* the last receipt was gone already: without it */
    q_next(q, fx);
  } else if (rc == ZNONODE) { /* a parent: which one the results say */
    bool items = r->nresults > 0 && r->results[0].err == ZNONODE;
    if ((rc = send_parents(q, items ? q->items : q->receipts)) != 0)
      q_trouble(q, rc, fx);
  } else {
    if (zkr__rc_class(rc) == ZKR__RC_CONN || zkr__rc_class(rc) == ZKR__RC_SESSION) {
      q->put_ambiguous = true;
      q->put_gen = rq->gen;
    }
    q_trouble(q, rc, fx);
  }
}

/* The put's transaction: the item, its receipt, and the delete of the last
 * put's receipt (known to be done: no longer needed), one write. */
static int send_put(zkr_queue_t *q) {
  char pre[64], *ip, *rp, *lp = NULL;
  zoo_op_t ops[3];
  zkr__send_t x;
  int rc, n = q->last_receipt[0] ? 3 : 2;

  item_prefix(q->profile, q->prio, pre, sizeof(pre));
  ip = zkr__path_join(q->items, pre);
  rp = zkr__path_join(q->receipts, q->putid);
  if (n == 3)
    lp = zkr__path_join(q->receipts, q->last_receipt);
  q->tok = zkr__obj_token(&q->o);
  if (!ip || !rp || (n == 3 && !lp)) {
    rc = ZKR_ENOMEM;
  } else if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_MULTI, on_put, q->tok,
                                   sizeof(qreq_t))) == 0) {
    if ((rc = zkr__send_results(&x, n)) == 0) {
      qreq_t *qr = (qreq_t *)x.rq;
      zoo_create_op_init(&ops[0], ip, q->pdata, q->plen, zkr_session_acl(q->o.s),
                         ZOO_SEQUENCE, qr->created, sizeof(qr->created));
      zoo_create_op_init(&ops[1], rp, NULL, -1, zkr_session_acl(q->o.s), ZOO_EPHEMERAL,
                         NULL, 0);
      if (n == 3)
        zoo_delete_op_init(&ops[2], lp, -1);
      rc = zoo_amulti(x.c.zh, n, ops, x.c.results, zkr__cb_void, x.c.op);
    }
    rc = zkr__send_end(&x, rc);
  }
  free(ip);
  free(rp);
  free(lp);
  return rc;
}

/* After a lost reply: the receipt says whether the put applied. */
static void on_receipt(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  (void)r;
  if (!current_reply(q, rq, q->op == OP_PUT))
    return;
  if (rc == ZOK) { /* applied (the last receipt went with it); its name is not known */
    q->put_ambiguous = false;
    q->put_name[0] = '\0';
    snprintf(q->last_receipt, sizeof(q->last_receipt), "%s", q->putid);
    q_end(q, 0, fx);
  } else if (rc == ZNONODE) {
    q->put_ambiguous = false; /* did not apply: again */
    q_next(q, fx);
  } else {
    q_trouble(q, rc, fx);
  }
}

/* ---- take ---- */

static bool is_bad(zkr_queue_t *q, const char *name) {
  for (int i = 0; i < q->nbad; i++)
    if (strcmp(q->bad[i], name) == 0)
      return true;
  return false;
}

static int send_list(zkr_queue_t *q, bool watch);
static int send_items_exist(zkr_queue_t *q);
static int send_claim(zkr_queue_t *q);
static bool cached_claim(zkr_queue_t *q);
static int send_read(zkr_queue_t *q);

/* Both listings are in: what is available, and the first claim. */
static void take_decide(zkr_queue_t *q, zkr__fx_t *fx) {
  int rc, window, prio;

  free(q->avail);
  q->avail = NULL;
  q->navail = 0;
  if (q->nits > 0 && !(q->avail = calloc((size_t)q->nits, sizeof(char *)))) {
    q_end(q, ZKR_ENOMEM, fx);
    return;
  }
  if (q->ncls > 0) /* (qsort and bsearch want a base even for none) */
    qsort(q->cls, (size_t)q->ncls, sizeof(char *), cmp_str);
  for (int i = 0; i < q->nits; i++) {
    const char *n = q->its[i];
    if (item_name(q->profile, n, &prio) && !is_bad(q, n) && !releasing(q, n) &&
        (q->ncls == 0 || !bsearch(&n, q->cls, (size_t)q->ncls, sizeof(char *), cmp_str)))
      q->avail[q->navail++] = q->its[i];
  }
  if (q->navail == 0) {
    if (q->once)
      q_end(q, ZKR_ETIMEDOUT, fx);
    else if (!q->watched && (rc = send_list(q, true)) != 0)
      q_trouble(q, rc, fx);
    else if (q->watched && q->recheck && (rc = send_list(q, false)) != 0)
      q_trouble(q, rc, fx);
    else if (q->watched && !q->recheck && q->items_missing && (rc = send_items_exist(q)) != 0)
      q_trouble(q, rc, fx); /* a child watch is not left on a missing node */
    /* else: the watches wake us */
    return;
  }
  qsort(q->avail, (size_t)q->navail, sizeof(char *), cmp_str);
  /* Spread: at random among the first (claims + 1). */
  window = q->ncls + 1 < q->navail ? q->ncls + 1 : q->navail;
  if (window > 1) {
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
      rnd = 0;
    q->pick = (int)(rnd % (uint32_t)window);
  } else {
    q->pick = 0;
  }
  q->tried = 0;
  if ((rc = send_claim(q)) != 0)
    q_trouble(q, rc, fx);
}

/* Available items of the kept listing, in order; the first one to claim. */
static bool cached_claim(zkr_queue_t *q) {
  int prio;
  free(q->avail);
  q->navail = 0;
  if (!(q->avail = calloc((size_t)q->nits + 1, sizeof(char *))))
    return false;
  for (int i = 0; i < q->nits; i++)
    if (item_name(q->profile, q->its[i], &prio) && !is_bad(q, q->its[i]) &&
        !releasing(q, q->its[i]))
      q->avail[q->navail++] = q->its[i];
  if (q->navail == 0)
    return false;
  qsort(q->avail, (size_t)q->navail, sizeof(char *), cmp_str);
  q->pick = q->tried = 0;
  q->watched = false;
  q->claimed = q->claim_ambiguous = false;
  q->from_cache = true;
  return true;
}

static void on_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  bool claims = rq->ctx != NULL;
  if (!current_reply(q, rq, q->op == OP_TAKE))
    return;
  if (!claims)
    q->items_missing = rc == ZNONODE;
  if (rc == ZOK || rc == ZNONODE) {
    int crc = claims ? (free_list(q->cls, q->ncls), copy_list(rc == ZOK ? r->strings : NULL,
                                                               &q->cls, &q->ncls))
                     : (free_list(q->its, q->nits), copy_list(rc == ZOK ? r->strings : NULL,
                                                              &q->its, &q->nits));
    if (crc != 0 && q->rc == 0)
      q->rc = crc;
  } else if (q->rc == 0) {
    q->rc = rc;
  }
  if (--q->replies > 0)
    return;
  if (q->rc != 0)
    q_trouble(q, q->rc, fx);
  else
    take_decide(q, fx);
}

static void on_list_event(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  (void)r;
  if (rq->tok != q->tok || q->op != OP_TAKE || rc != ZOK)
    return;
  if (q->replies > 0) {
    q->recheck = true;
    return;
  }
  if ((rc = send_list(q, false)) != 0)
    q_trouble(q, rc, fx);
}

static int send_one_list(zkr_queue_t *q, const char *path, bool watch, void *ctx) {
  zkr__send_t x;
  int rc;
  if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_CHILDREN, on_listed, q->tok, 0)) != 0)
    return rc;
  x.rq->ctx = ctx;
  if (watch && (rc = zkr__send_watch(&x, on_list_event, q->tok, 0)) != 0)
    return zkr__send_end(&x, rc);
  return zkr__send_end(&x, watch ? zoo_awget_children(x.c.zh, path, zkr__watcher, x.c.watch,
                                                      zkr__cb_strings, x.c.op)
                                 : zoo_aget_children(x.c.zh, path, 0, zkr__cb_strings,
                                                     x.c.op));
}

static int send_list(zkr_queue_t *q, bool watch) {
  int rc;
  q->from_cache = false;
  q->tok = zkr__obj_token(&q->o);
  q->replies = 2;
  q->rc = 0;
  q->watched = watch;
  q->recheck = false;
  q->claimed = q->claim_ambiguous = false;
  if ((rc = send_one_list(q, q->items, watch, NULL)) != 0)
    return rc;
  if ((rc = send_one_list(q, q->claims, watch, q)) != 0) {
    q->tok = zkr__obj_token(&q->o); /* the first reply is stale now */
    return rc;
  }
  return 0;
}

/* The items' parent is missing (no put yet, or reaped): watch for its
 * creation, as its child watch was not left. */
static void on_items_exist(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  (void)r;
  if (!current_reply(q, rq, q->op == OP_TAKE))
    return;
  q->replies = 0;
  if (rc == ZNONODE && !q->recheck)
    return; /* the watch wakes us */
  if (rc != ZOK && rc != ZNONODE)
    q_trouble(q, rc, fx);
  else if ((rc = send_list(q, true)) != 0) /* made meanwhile */
    q_trouble(q, rc, fx);
}

static int send_items_exist(zkr_queue_t *q) {
  zkr__send_t x;
  int rc;
  q->replies = 1; /* an event before the reply: look again after it */
  if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_EXISTS, on_items_exist, q->tok, 0)) != 0)
    return rc;
  if ((rc = zkr__send_watch(&x, on_list_event, q->tok, 0)) != 0)
    return zkr__send_end(&x, rc);
  return zkr__send_end(&x, zoo_awexists(x.c.zh, q->items, zkr__watcher, x.c.watch,
                                        zkr__cb_stat, x.c.op));
}

/* The next candidate after a lost race (or a vanished item); all tried: list. */
static void next_candidate(zkr_queue_t *q, zkr__fx_t *fx) {
  int rc;
  q->claimed = q->claim_ambiguous = false;
  if (++q->tried >= q->navail)
    rc = send_list(q, false);
  else
    rc = send_claim(q);
  if (rc != 0)
    q_trouble(q, rc, fx);
}

static void on_item_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  zkr_item_t *it;
  int off = 0, len, prio;

  if (!current_reply(q, rq, q->op == OP_TAKE && q->claimed))
    return;
  if (rc == ZNONODE) { /* taken by one that ignores claims: ours goes */
    release(q, q->claim, rq->gen);
    next_candidate(q, fx);
    return;
  }
  if (rc != ZOK) {
    q_trouble(q, rc, fx);
    return;
  }
  len = r->data_len < 0 ? 0 : r->data_len;
  if (q->profile == ZKR_QUEUE_CURATOR && (len = unframe(r->data, r->data_len, &off)) < 0) {
    zkr__log(ZKR_LOG_WARN, "queue %s: item %s is not in Curator's frame: left alone",
             q->path, q->claim);
    if (q->nbad < MAX_BAD && (q->bad[q->nbad] = strdup(q->claim)) != NULL)
      q->nbad++;
    release(q, q->claim, rq->gen);
    next_candidate(q, fx);
    return;
  }
  if (!(it = calloc(1, sizeof(*it))) || !(it->name = strdup(q->claim)) ||
      !(it->data = malloc((size_t)len + 1))) {
    if (it)
      free(it->name);
    free(it);
    q_end(q, ZKR_ENOMEM, fx);
    return;
  }
  if (len > 0)
    memcpy(it->data, r->data + off, (size_t)len);
  it->data[len] = '\0';
  it->len = len;
  item_name(q->profile, q->claim, &prio);
  it->prio = prio;
  it->czxid = q->claim_czxid;
  it->gen = rq->gen;
  it->q = q;
  zkr__obj_ref(&q->o);
  q->got = it;
  q->claimed = false; /* the item's now */
  q_end(q, 0, fx);
}

static int send_read(zkr_queue_t *q) {
  char *p = zkr__path_join(q->items, q->claim);
  zkr__send_t x;
  int rc;
  if (!p)
    return ZKR_ENOMEM;
  q->tok = zkr__obj_token(&q->o);
  if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_GET, on_item_read, q->tok, 0)) == 0)
    rc = zkr__send_end(&x, zoo_aget(x.c.zh, p, 0, zkr__cb_data, x.c.op));
  free(p);
  return rc;
}

static void on_claimed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  if (rq->tok != q->tok || q->op != OP_TAKE) { /* a claim that no longer matters */
    if (rc == ZOK && r->path && strrchr(r->path, '/'))
      release(q, strrchr(r->path, '/') + 1, rq->gen);
    else if (zkr__rc_class(rc) == ZKR__RC_CONN) /* (the take ended first) */
      release_claim(q, ((creq_t *)rq)->name, rq->gen, false);
    return;
  }
  q->rq_gen = rq->gen;
  if (rc == ZOK) {
    q->claimed = true; /* the item's read, sent behind the claim, comes next */
    q->claim_czxid = r->stat ? r->stat->czxid : 0;
    if (!q->read_sent && (rc = send_read(q)) != 0)
      q_trouble(q, rc, fx);
    return;
  }
  q->tok = zkr__obj_token(o); /* the read sent behind it is stale */
  if (rc == ZNODEEXISTS) {
    atomic_fetch_add(&q->races, 1);
    if (q->from_cache) { /* not alone after all: a fresh listing, spread */
      q->tried = 1;
      if ((rc = send_list(q, false)) != 0)
        q_trouble(q, rc, fx);
    } else { /* another consumer's: on a few places, so the losers scatter */
      uint32_t rnd = 0;
      if (getrandom(&rnd, sizeof(rnd), 0) == sizeof(rnd))
        q->pick += (int)(rnd % 7);
      next_candidate(q, fx);
    }
  } else if (rc == ZNONODE) {
    if ((rc = send_parents(q, q->claims)) != 0)
      q_trouble(q, rc, fx);
  } else {
    if (zkr__rc_class(rc) == ZKR__RC_CONN)
      q->claim_ambiguous = true;
    q_trouble(q, rc, fx);
  }
}

/* Claim the next candidate and, pipelined behind it, read the item: the
 * read's reply counts once the claim's said ours (a failed claim makes it
 * stale). */
static int send_claim(zkr_queue_t *q) {
  char *p, *ip;
  zkr__send_t x;
  int rc;
  snprintf(q->claim, sizeof(q->claim), "%s", q->avail[(q->pick + q->tried) % q->navail]);
  p = zkr__path_join(q->claims, q->claim);
  ip = zkr__path_join(q->items, q->claim);
  q->tok = zkr__obj_token(&q->o);
  if (!p || !ip)
    rc = ZKR_ENOMEM;
  else if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_CREATE, on_claimed, q->tok,
                                 sizeof(creq_t))) == 0 &&
           snprintf(((creq_t *)x.rq)->name, sizeof(((creq_t *)x.rq)->name), "%s", q->claim) >= 0 &&
           (rc = zkr__send_end(&x, zoo_acreate2(x.c.zh, p, q->id, 32,
                                                zkr_session_acl(q->o.s), ZOO_EPHEMERAL,
                                                zkr__cb_string_stat, x.c.op))) == 0 &&
           zkr__send_begin(&x, &q->o, 0, ZKR__K_GET, on_item_read, q->tok, 0) == 0)
    q->read_sent = zkr__send_end(&x, zoo_aget(x.c.zh, ip, 0, zkr__cb_data, x.c.op)) == 0;
  else
    q->read_sent = false; /* (then the claim's reply sends it) */
  free(p);
  free(ip);
  return rc;
}

/* A claim whose reply was lost: ours if its owner is our session. */
static void on_claim_owner(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  if (!current_reply(q, rq, q->op == OP_TAKE))
    return;
  if (rc == ZOK || rc == ZNONODE) /* (else the look itself is lost: again) */
    q->claim_ambiguous = false;
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == zkr_session_id(o->s)) {
    q->claimed = true;
    q->claim_czxid = r->stat->czxid;
    rc = send_read(q);
  } else if (rc == ZOK) {
    next_candidate(q, fx); /* another's */
    return;
  } else if (rc == ZNONODE) {
    rc = send_claim(q); /* never made: again */
  }
  if (rc != 0)
    q_trouble(q, rc, fx);
}

/* ---- commit, requeue ---- */

static int finish_ops(zkr_queue_t *q, int rc, const zkr__reply_t *r, zkr__fx_t *fx);

static void on_commit(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  if (!current_reply(q, rq, (q->op == OP_COMMIT || q->op == OP_REQUEUE)))
    return;
  if (zkr__rc_class(rc) == ZKR__RC_CONN) {
    q->commit_ambiguous = true;
    q_trouble(q, rc, fx);
  } else if (zkr__rc_class(rc) == ZKR__RC_SESSION) {
    q->commit_ambiguous = true;
    q_trouble(q, rc, fx);
  } else {
    finish_ops(q, rc, r, fx);
  }
}

/* The commit's (or requeue's) reply: 0, or which op failed. */
static int finish_ops(zkr_queue_t *q, int rc, const zkr__reply_t *r, zkr__fx_t *fx) {
  int n = r ? r->nresults : 0, user0 = q->op == OP_COMMIT ? 3 : 4;
  if (q->ures && r && r->results)
    for (int i = 0; i < n && i < q->nuops + 3; i++)
      q->ures[i] = r->results[i];
  if (rc == ZOK) {
    q->it->done = true;
    if (q->op == OP_REQUEUE) { /* it is back under a new name: list again */
      q->op = OP_NONE; /* (drop_cache leaves a pending take's lists alone) */
      drop_cache(q);
      q->op = OP_REQUEUE;
    }
    q_end(q, 0, fx);
    return 0;
  }
  /* which op: the claim's check (ours no more), the item (taken by another),
   * or one of the caller's */
  for (int i = 0; r && i < n; i++) {
    int e = r->results[i].err;
    if (e == ZOK || e == ZRUNTIMEINCONSISTENCY)
      continue;
    if (i < user0 || (q->op == OP_REQUEUE)) {
      zkr__log(ZKR_LOG_INFO, "queue %s: %s of %s: %s (%s)", q->path,
               q->op == OP_COMMIT ? "commit" : "requeue", q->it->name,
               i == 0 ? "our claim is gone" : "the item is gone", zkr_strerror(e));
      q_end(q, ZKR_ELOST, fx);
    } else {
      q_end(q, e, fx);
    }
    return 0;
  }
  q_end(q, rc, fx);
  return 0;
}

static int send_commit(zkr_queue_t *q) {
  zkr_item_t *it = q->it;
  char *cp = zkr__path_join(q->claims, it->name), *ip = zkr__path_join(q->items, it->name),
       pre[64], *np = NULL, *fdata = NULL;
  int n = 0, rc, flen = it->len;
  zoo_op_t *ops = calloc((size_t)q->nuops + 4, sizeof(*ops));
  zkr__send_t x;

  item_prefix(q->profile, it->prio, pre, sizeof(pre));
  if (!cp || !ip || !ops || !(np = zkr__path_join(q->items, pre)) ||
      (q->profile == ZKR_QUEUE_CURATOR && !(fdata = frame(it->data, it->len, &flen)))) {
    rc = ZKR_ENOMEM;
    goto out;
  }
  q->tok = zkr__obj_token(&q->o);
  if ((rc = zkr__send_begin(&x, &q->o, it->gen, ZKR__K_MULTI, on_commit, q->tok,
                            sizeof(qreq_t))) != 0)
    goto out;
  zoo_check_op_init(&ops[n++], cp, 0);
  zoo_delete_op_init(&ops[n++], ip, -1);
  if (q->op == OP_REQUEUE)
    zoo_create_op_init(&ops[n++], np, fdata ? fdata : it->data, flen, zkr_session_acl(q->o.s),
                       ZOO_SEQUENCE, ((qreq_t *)x.rq)->created,
                       sizeof(((qreq_t *)x.rq)->created));
  zoo_delete_op_init(&ops[n++], cp, -1);
  for (int i = 0; q->op == OP_COMMIT && i < q->nuops; i++)
    ops[n++] = q->uops[i];
  if ((rc = zkr__send_results(&x, n)) == 0)
    rc = zoo_amulti(x.c.zh, n, ops, x.c.results, zkr__cb_void, x.c.op);
  rc = zkr__send_end(&x, rc);
out:
  free(cp);
  free(ip);
  free(np);
  free(fdata);
  free(ops);
  return rc;
}

/* After a lost reply: did it apply? */
static void on_commit_check(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                            zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  bool same = q->it && q->it->gen == zkr__session_gen(o->s);
  if (!current_reply(q, rq, (q->op == OP_COMMIT || q->op == OP_REQUEUE)))
    return;
  if (rc != ZOK && rc != ZNONODE) {
    q_trouble(q, rc, fx);
    return;
  }
  q->commit_ambiguous = false;
  if (same && (rc == ZNONODE || !r->stat || r->stat->ephemeralOwner != zkr_session_id(o->s))) {
    /* our claim is gone (a claim there now is another consumer's, made since):
     * only our transaction takes it while our session lives */
    q->it->done = true;
    q_end(q, 0, fx);
  } else if (same) {
    q_next(q, fx); /* it did not apply: again */
  } else {
    /* another session: we looked at the item; there, it was not consumed (our
     * claim went with the session); gone, consumed by us or by another */
    q->it->done = true; /* the claim went with the session */
    q_end(q, rc == ZOK ? ZKR_ELOST : ZKR_EUNKNOWN, fx);
  }
}

/* ---- length ---- */

static void on_length(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  if (!current_reply(q, rq, q->op == OP_LENGTH))
    return;
  if (rc == ZOK || rc == ZNONODE) {
    q->length = rc == ZOK && r->stat ? r->stat->numChildren : 0;
    q_end(q, 0, fx);
  } else {
    q_trouble(q, rc, fx);
  }
}

/* ---- the step machine ---- */

/* After a lost reply: look at path, on a server that has caught up with that
 * write (we may have moved to one that had not applied it yet: a sync first,
 * on the same session, so the exists sees every write committed before it). */
static int send_look(zkr_queue_t *q, const char *path, zkr__step_fn step) {
  zkr__send_t x;
  int rc;
  q->tok = zkr__obj_token(&q->o);
  if ((rc = zkr__send_sync(&q->o, 0, path)) != 0)
    return rc;
  if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_EXISTS, step, q->tok, 0)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_aexists(x.c.zh, path, 0, zkr__cb_stat, x.c.op));
}

static int q_step(zkr_queue_t *q) {
  zkr__send_t x;
  char *p;
  int rc;

  switch (q->op) {
  case OP_PUT:
    if (!q->put_ambiguous)
      return send_put(q);
    if (zkr__session_gen(q->o.s) != q->put_gen) /* the receipt went with that session */
      return ZKR_EUNKNOWN;
    if (!(p = zkr__path_join(q->receipts, q->putid)))
      return ZKR_ENOMEM;
    rc = send_look(q, p, on_receipt);
    free(p);
    return rc;
  case OP_TAKE:
    if (q->claim_ambiguous) {
      if (!(p = zkr__path_join(q->claims, q->claim)))
        return ZKR_ENOMEM;
      rc = send_look(q, p, on_claim_owner);
      free(p);
      return rc;
    }
    if (q->claimed && q->it == NULL && zkr__session_gen(q->o.s) != 0)
      return send_read(q); /* (a read interrupted by a lost connection) */
    if (q->its && zkr__now_ns() - q->listed_ns < CACHE_NS && cached_claim(q))
      return send_claim(q); /* on from the last take's listing */
    return send_list(q, false);
  case OP_COMMIT:
  case OP_REQUEUE:
    if (!q->commit_ambiguous) {
      if (q->it->gen != zkr__session_gen(q->o.s))
        return ZKR_ELOST; /* our claim went with its session */
      return send_commit(q);
    }
    /* same session: look at our claim; another: at the item */
    p = q->it->gen == zkr__session_gen(q->o.s) ? zkr__path_join(q->claims, q->it->name)
                                               : zkr__path_join(q->items, q->it->name);
    if (!p)
      return ZKR_ENOMEM;
    rc = send_look(q, p, on_commit_check);
    free(p);
    return rc;
  case OP_LENGTH:
    q->tok = zkr__obj_token(&q->o);
    if ((rc = zkr__send_begin(&x, &q->o, 0, ZKR__K_EXISTS, on_length, q->tok, 0)) != 0)
      return rc;
    return zkr__send_end(&x, zoo_aexists(x.c.zh, q->items, 0, zkr__cb_stat, x.c.op));
  default: return 0;
  }
}

static void q_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_queue_t *q = QU(o);
  (void)fx;
  if (event != ZKR_SESSION_LOST || q->op != OP_TAKE)
    return;
  q->claimed = q->claim_ambiguous = false; /* claims went with the session */
  if (q->o.wait == ZKR__WAIT_NONE) {
    q->tok = zkr__obj_token(o); /* the watches went with it too */
    zkr__obj_wait(o, ZKR__WAIT_SESSION, 0);
  }
}

static void q_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  q_next(QU(o), fx);
}

static void q_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  q_end(QU(o), fired ? ZKR_ETIMEDOUT : ZKR_ECLOSED, fx);
}

static void q_destroy(zkr__obj_t *o) {
  zkr_queue_t *q = QU(o);
  free_list(q->its, q->nits);
  free_list(q->cls, q->ncls);
  for (int i = 0; i < q->nbad; i++)
    free(q->bad[i]);
  free(q->path);
  free(q->items);
  free(q->claims);
  free(q->receipts);
  zkr__obj_fini(o);
  free(o);
}

static const zkr__obj_ops_t q_ops = {
    .name = "queue", .on_session = q_on_session, .resume = q_resume, .destroy = q_destroy};

uint64_t zkr__workqueue_races(zkr_queue_t *q) {
  return atomic_load(&q->races);
}

const char *zkr_queue_profile_name(int profile) {
  switch (profile) {
  case ZKR_QUEUE_CURATOR: return "curator";
  case ZKR_QUEUE_SIMPLE: return "simple";
  case ZKR_QUEUE_KAZOO: return "kazoo";
  case ZKR_QUEUE_KAZOO_LOCKING: return "kazoo-locking";
  default: return NULL;
  }
}

int zkr_queue_new(zkr_session_t *s, const char *path, int profile, zkr_queue_t **out) {
  zkr_queue_t *q;
  char g[37];
  int rc;
  size_t j = 0;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || !zkr_queue_profile_name(profile) ||
      strlen(path) > 700)
    return ZKR_EINVAL;
  if (!(q = zkr__obj_new(sizeof(*q), &q_ops, s)))
    return ZKR_ENOMEM;
  q->profile = profile;
  if ((rc = zkr__guid(g)) != 0) {
    zkr__obj_unref(&q->o);
    return rc;
  }
  for (size_t i = 0; g[i]; i++)
    if (g[i] != '-')
      q->id[j++] = g[i];
  q->id[j] = '\0';
  q->path = strdup(path);
  if (profile == ZKR_QUEUE_KAZOO_LOCKING) {
    q->items = zkr__path_join(path, "entries");
    q->claims = zkr__path_join(path, "taken");
  } else {
    q->items = strdup(path);
    if ((q->claims = malloc(strlen(path) + 8)))
      sprintf(q->claims, "%s-claims", path);
  }
  if ((q->receipts = malloc(strlen(path) + 10)))
    sprintf(q->receipts, "%s-receipts", path);
  if (!q->path || !q->items || !q->claims || !q->receipts) {
    zkr__obj_unref(&q->o);
    return ZKR_ENOMEM;
  }
  if ((rc = zkr__obj_listen(&q->o)) != 0) {
    zkr__obj_unref(&q->o);
    return rc;
  }
  *out = q;
  return 0;
}

/* Start op (o.mu held): the first step, or a wait for the connection. */
static int q_start(zkr_queue_t *q, int op, int timeout_ms, void (*cb)(void), void *arg) {
  int rc;
  if (q->o.freed)
    return ZKR_ECLOSED;
  if (q->op != OP_NONE)
    return ZKR_EBUSY;
  q->op = op;
  q->cb = cb;
  q->arg = arg;
  q->once = timeout_ms == 0;
  q->parent_rounds = 0;
  q->rq_gen = 0;
  q->commit_ambiguous = q->put_ambiguous = false;
  q->claimed = q->claim_ambiguous = false;
  if ((rc = q_step(q)) != 0 && zkr__rc_class(rc) != ZKR__RC_CLOSED &&
      zkr__rc_class(rc) != ZKR__RC_FINAL) {
    zkr__obj_wait(&q->o, ZKR__WAIT_CONN, 0); /* not connected: sent when it is */
    rc = 0;
  }
  if (rc == 0 && timeout_ms > 0)
    rc = zkr__obj_timer(&q->o, &q->deadline, (zkr__now_ms() + timeout_ms) * 1000,
                        q_deadline);
  if (rc != 0) { /* the callback never runs */
    free(q->pdata);
    q->pdata = NULL;
    q->op = OP_NONE;
    q->cb = NULL;
    q->tok = 0;
    q->it = NULL;
    q->o.wait = ZKR__WAIT_NONE;
  }
  return rc;
}

typedef struct qsync {
  zkr__sync_t y;
  zkr_item_t *item;
  int64_t value;
} qsync_t;

static void sync_done(zkr_queue_t *q, int rc, void *arg) {
  qsync_t *w = arg;
  (void)q;
  zkr__sync_signal(&w->y, rc);
}

static void sync_length(zkr_queue_t *q, int rc, void *arg) {
  qsync_t *w = arg;
  pthread_mutex_lock(&q->o.mu);
  w->value = q->length;
  pthread_mutex_unlock(&q->o.mu);
  zkr__sync_signal(&w->y, rc);
}

int zkr_queue_put(zkr_queue_t *q, const void *data, int len, int priority, int timeout_ms,
                  char *name, size_t name_size) {
  qsync_t w = {0};
  char g[37];
  int rc;
  size_t j = 0;

  if (!q || (len > 0 && !data) || len < 0 || timeout_ms < -1)
    return ZKR_EINVAL;
  if (len > ZKR_QUEUE_MAX_ITEM)
    return ZKR_EOVERFLOW;
  if ((q->profile == ZKR_QUEUE_SIMPLE && priority != 0) ||
      ((q->profile == ZKR_QUEUE_KAZOO || q->profile == ZKR_QUEUE_KAZOO_LOCKING) &&
       (priority < 0 || priority > 999)))
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&w.y)) != 0 || (rc = zkr__guid(g)) != 0)
    return rc;
  pthread_mutex_lock(&q->o.mu);
  if (q->op != OP_NONE) {
    pthread_mutex_unlock(&q->o.mu);
    return zkr__sync_wait(&w.y, ZKR_EBUSY);
  }
  for (size_t i = 0; g[i]; i++)
    if (g[i] != '-')
      q->putid[j++] = g[i];
  q->putid[j] = '\0';
  q->prio = priority;
  q->put_name[0] = '\0';
  if (q->profile == ZKR_QUEUE_CURATOR) {
    q->pdata = frame(data, len, &q->plen);
  } else if ((q->pdata = malloc(len > 0 ? (size_t)len : 1)) != NULL) {
    if (len > 0)
      memcpy(q->pdata, data, (size_t)len);
    q->plen = len;
  }
  rc = q->pdata ? q_start(q, OP_PUT, timeout_ms, ZKR__FN(sync_done), &w) : ZKR_ENOMEM;
  if (!q->pdata || rc != 0) {
    free(q->pdata);
    q->pdata = NULL;
  }
  pthread_mutex_unlock(&q->o.mu);
  rc = zkr__sync_wait(&w.y, rc);
  if (rc == 0 && name && name_size > 0) {
    pthread_mutex_lock(&q->o.mu);
    snprintf(name, name_size, "%s", q->put_name);
    pthread_mutex_unlock(&q->o.mu);
  }
  return rc;
}

int zkr_queue_take_async(zkr_queue_t *q, int timeout_ms, zkr_queue_take_cb cb, void *arg) {
  int rc;
  if (!q || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&q->o.mu);
  rc = q_start(q, OP_TAKE, timeout_ms, ZKR__FN(cb), arg);
  pthread_mutex_unlock(&q->o.mu);
  return rc;
}

static void sync_take(zkr_queue_t *q, int rc, zkr_item_t *item, void *arg) {
  qsync_t *w = arg;
  (void)q;
  w->item = item;
  zkr__sync_signal(&w->y, rc);
}

int zkr_queue_take(zkr_queue_t *q, int timeout_ms, zkr_item_t **out) {
  qsync_t w = {0};
  int rc;
  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if ((rc = zkr__sync_init(&w.y)) != 0)
    return rc;
  rc = zkr__sync_wait(&w.y, zkr_queue_take_async(q, timeout_ms, sync_take, &w));
  *out = w.item;
  return rc;
}

int zkr_queue_length(zkr_queue_t *q, int timeout_ms, int *out) {
  qsync_t w = {0};
  int rc;
  if (!q || !out || timeout_ms < -1)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&w.y)) != 0)
    return rc;
  pthread_mutex_lock(&q->o.mu);
  rc = q_start(q, OP_LENGTH, timeout_ms, ZKR__FN(sync_length), &w);
  pthread_mutex_unlock(&q->o.mu);
  rc = zkr__sync_wait(&w.y, rc);
  *out = rc == 0 ? (int)w.value : 0;
  return rc;
}

static int item_op(zkr_item_t *it, int op, const zoo_op_t *ops, int nops,
                   zoo_op_result_t *results, int timeout_ms) {
  qsync_t w = {0};
  zkr_queue_t *q;
  int rc;

  if (!it || nops < 0 || (nops > 0 && !ops) || timeout_ms < -1)
    return ZKR_EINVAL;
  if (it->done)
    return ZKR_ENOTHELD;
  q = it->q;
  if ((rc = zkr__sync_init(&w.y)) != 0)
    return rc;
  pthread_mutex_lock(&q->o.mu);
  q->it = it;
  q->uops = ops;
  q->nuops = nops;
  q->ures = results;
  if (q->op != OP_NONE)
    rc = ZKR_EBUSY;
  else
    rc = q_start(q, op, timeout_ms, ZKR__FN(sync_done), &w);
  pthread_mutex_unlock(&q->o.mu);
  return zkr__sync_wait(&w.y, rc);
}

int zkr_item_commit(zkr_item_t *it, const zoo_op_t *ops, int nops, zoo_op_result_t *results,
                    int timeout_ms) {
  return item_op(it, OP_COMMIT, ops, nops, results, timeout_ms);
}

int zkr_item_requeue(zkr_item_t *it, int timeout_ms) {
  return item_op(it, OP_REQUEUE, NULL, 0, NULL, timeout_ms);
}

const char *zkr_item_data(const zkr_item_t *it, int *len) {
  if (len)
    *len = it ? it->len : 0;
  return it ? it->data : NULL;
}

const char *zkr_item_name(const zkr_item_t *it) {
  return it ? it->name : NULL;
}

int zkr_item_priority(const zkr_item_t *it) {
  return it ? it->prio : 0;
}

int64_t zkr_item_token(const zkr_item_t *it) {
  return it ? it->czxid : 0;
}

void zkr_item_free(zkr_item_t *it) {
  if (!it)
    return;
  if (!it->done) { /* released: delivered again */
    pthread_mutex_lock(&it->q->o.mu);
    release(it->q, it->name, it->gen);
    drop_cache(it->q);
    pthread_mutex_unlock(&it->q->o.mu);
  }
  zkr__obj_unref(&it->q->o);
  free(it->name);
  free(it->data);
  free(it);
}

void zkr_queue_free(zkr_queue_t *q) {
  zkr__fx_t fx = ZKR__FX_INIT;
  if (!q || !zkr__obj_free_begin(&q->o))
    return;
  q_end(q, ZKR_ECANCELED, &fx);
  if (q->last_receipt[0]) { /* the last put's receipt: no longer needed */
    char *p = zkr__path_join(q->receipts, q->last_receipt);
    if (p)
      zkr__janitor_delete(q->o.s, 0, p, NULL, NULL);
    free(p);
    q->last_receipt[0] = '\0';
  }
  zkr__obj_free_end(&q->o, &fx);
}
