/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exclusive lock.
 *
 * Znodes: under the lock path P, each acquire attempt creates
 *   P/_c_<uuid>-lock-<seq>   EPHEMERAL_SEQUENTIAL, data = contender data
 * (Curator InterProcessMutex / go-zookeeper format); missing parents are
 * CONTAINER nodes.
 *
 * Algorithm: one entry of the queue engine (lib/queue.c: create + pipelined
 * listing, GUID recovery, watch on the predecessor only, the check of a held
 * node after a reconnect) with the exclusive rule: the lowest contender of
 * every format but latches holds; a waiter watches the one right ahead of it,
 * whose departure alone grants it when it was the lowest of the last listing.
 * This file adds what a lock is: holds counted per object (reentrancy), the
 * deadline of an acquire, cancel, release, the fencing token and guard op, and
 * the SUSPECT/RECOVERED/LOST listener.
 *
 * Fencing token: czxid of our node, from the create2 reply.
 *
 * Invariants: held <=> the queue entry is HELD <=> holds > 0. At most one
 * acquire pending (acb set while the entry is ACQUIRING).
 *
 * Locking: l->o.mu guards every field below it; handlers run in callback
 * context (dispatch mutex, then l->o.mu); user callbacks run after it is
 * released (the object base's effects).
 */
#include "object.h"
#include "queue.h"
#include "recipes_internal.h"
#include "zkrecipes/lock.h"
#include "zkrecipes/semaphore.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_MUTEX, KIND_READ, KIND_WRITE, KIND_LEASE };

struct zkr_lock {
  zkr__obj_t o;
  zkr__queue_t q;
  int kind;           /* KIND_*: fixed at creation */
  zkr_rwlock_t *pair; /* the read/write lock it belongs to (NULL: a mutex) */
  /* A semaphore's lease: its own rule (the count of leases against max, which
   * the semaphore may change while it waits) and its slot. */
  zkr__queue_rule_t lrule;
  _Atomic int lmax;
  _Atomic int slot;
  bool lease_started; /* (o.mu) acquired once: never again */
  zkr_lock_cb rcb;    /* (o.mu) the pending rewrite's callback */
  void *rarg;
  /* A write lock's downgrade in flight (o.mu): the read node's path, the
   * callback, the multi's outcome, and the token of the exists that decides. */
  char *dpath;
  zkr_lock_cb dcb;
  void *darg;
  uint32_t dtok;
  int dmulti_rc;
  bool dwaiting; /* for the connection, to ask again */
  bool dlost;    /* LOST came meanwhile: told at the end, unless the read lock holds */

  /* (o.mu) */
  int holds;
  zkr_lock_cb acb; /* the pending acquire's callback */
  void *aarg;
  zkr__tmr_t *deadline;
};

#define LOCK(o) ((zkr_lock_t *)(o))

/* ---- effects ---- */

static void run_cb(zkr__obj_t *o, const zkr__effect_t *e) {
  if (e->cb)
    ((zkr_lock_cb)e->cb)(LOCK(o), e->rc, e->arg);
}

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg,
                          const zkr__effect_t *e) {
  ((zkr_lock_listener_fn)fn)(LOCK(o), e->rc, arg);
}

/* End the pending acquire with rc (the entry is IDLE already). */
static void end_acquire(zkr_lock_t *l, int rc, zkr__fx_t *fx) {
  zkr__obj_timer_stop(&l->o, &l->deadline);
  zkr__fx_add(fx, run_cb, ZKR__FN(l->acb), l->aarg, rc);
  l->acb = NULL;
}

/* ---- the queue's hooks (o.mu held) ---- */

static const zkr__queue_rule_t rule = {.tag = "lock-",
                                       .order_mode = 0,
                                       .mark_on_grant = false,
                                       .decide = zkr__rule_exclusive};

/* Read/write lock (Curator InterProcessReadWriteLock's names): a reader holds
 * while no writer of any format is ahead and watches the nearest one; a writer
 * holds when it is first, and watches the one right ahead. */
static const zkr__queue_rule_t read_rule = {
    .tag = "__READ__", .order_mode = 0, .mark_on_grant = false, .decide = zkr__rule_read};
static const zkr__queue_rule_t write_rule = {.tag = "__WRIT__",
                                             .order_mode = 0,
                                             .mark_on_grant = false,
                                             .decide = zkr__rule_exclusive};

/* A read/write lock: its two lock objects, and whether its read lock holds
 * (a write acquire while it does is an upgrade: refused, never a hang). */
struct zkr_rwlock {
  zkr_lock_t *r, *w;
  _Atomic int read_held;
  _Atomic int downgrading; /* the read lock is being handed the write node's place */
};

static void read_held(zkr_lock_t *l, int held) {
  if (l->kind == KIND_READ && l->pair)
    atomic_store(&l->pair->read_held, held);
}

static void q_granted(zkr__queue_t *q, zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(q->o);
  l->holds = 1;
  read_held(l, 1);
  end_acquire(l, 0, fx);
}

static void q_failed(zkr__queue_t *q, int rc, zkr__fx_t *fx) {
  end_acquire(LOCK(q->o), rc, fx);
}

static void q_event(zkr__queue_t *q, int ev, zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(q->o);
  if (ev == ZKR__Q_LOST && q->state == ZKR__Q_IDLE) {
    l->holds = 0;
    read_held(l, 0);
  }
  if (l->dcb && ev == ZKR__Q_LOST) {
    l->dlost = true; /* its node may be gone by the downgrade itself: see its end */
    return;
  }
  zkr__fx_event(fx, &l->o, call_listener,
                ev == ZKR__Q_SUSPECT     ? ZKR_LOCK_SUSPECT
                : ev == ZKR__Q_RECOVERED ? ZKR_LOCK_RECOVERED
                                         : ZKR_LOCK_LOST);
}

static const zkr__queue_hooks_t hooks = {
    .granted = q_granted, .failed = q_failed, .waiting = NULL, .event = q_event};

static void lock_resume(zkr__obj_t *o, zkr__fx_t *fx);
static void lock_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx);

static void lock_destroy(zkr__obj_t *o) {
  free(LOCK(o)->dpath);
  zkr__queue_obj_destroy(o);
}

static const zkr__obj_ops_t ops = {.name = "lock",
                                   .on_session = lock_on_session,
                                   .resume = lock_resume,
                                   .destroy = lock_destroy};

static void on_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(o);
  if (fired && l->q.state == ZKR__Q_ACQUIRING) {
    zkr__queue_leave(&l->q, ZKR_ETIMEDOUT);
    end_acquire(l, ZKR_ETIMEDOUT, fx);
  }
}

/* ---- public ---- */

/* The leases of a semaphore, by its profile (zkrecipes/semaphore.h). Curator's
 * and kazoo's count: held while at most max leases exist (every child counts,
 * as both libraries count them; their mutex keeps one waiter). kazoo's lease
 * is P/<hex32>, not sequential. The native one ranks: held while fewer than
 * max leases are ahead; its grant mark wakes the one waiter behind it. */
static const zkr__queue_rule_t lease_rules[] = {
    [ZKR_SEMAPHORE_CURATOR] = {.tag = "lease-", .count_all = true, .decide = zkr__rule_count},
    [ZKR_SEMAPHORE_KAZOO] = {.tag = "",
                             .count_all = true,
                             .naming = ZKR__NAMES_GUID,
                             .decide = zkr__rule_count},
    [ZKR_SEMAPHORE_NATIVE] = {.tag = "lease-", .mark_on_grant = true, .decide = zkr__rule_rank},
};

/* kazoo's Lock: <hex32>__lock__<seq> (a kazoo semaphore's mutex, P-__lock__). */
static const zkr__queue_rule_t kazoo_rule = {
    .tag = "__lock__", .naming = ZKR__NAMES_KAZOO, .decide = zkr__rule_exclusive};

static int lock_new(zkr_session_t *s, const char *path, int kind, zkr_lock_t **out) {
  zkr_lock_t *l;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(l = zkr__obj_new(sizeof(*l), &ops, s)))
    return ZKR_ENOMEM;
  l->kind = kind;
  l->lrule = lease_rules[ZKR_SEMAPHORE_CURATOR];
  l->lrule.max = &l->lmax;
  atomic_init(&l->lmax, 0);
  atomic_init(&l->slot, -1);
  if ((rc = zkr__queue_init(&l->q, &l->o, path,
                            kind == KIND_READ    ? &read_rule
                            : kind == KIND_WRITE ? &write_rule
                            : kind == KIND_LEASE ? &l->lrule
                                                 : &rule,
                            &hooks)) != 0 ||
      (rc = zkr__obj_listen(&l->o)) != 0) {
    zkr__obj_unref(&l->o);
    return rc;
  }
  *out = l;
  return 0;
}

int zkr_lock_new(zkr_session_t *s, const char *path, zkr_lock_t **out) {
  return lock_new(s, path, KIND_MUTEX, out);
}

int zkr_rwlock_new(zkr_session_t *s, const char *path, zkr_rwlock_t **out) {
  zkr_rwlock_t *rw;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!(rw = calloc(1, sizeof(*rw))))
    return ZKR_ENOMEM;
  if ((rc = lock_new(s, path, KIND_READ, &rw->r)) != 0 ||
      (rc = lock_new(s, path, KIND_WRITE, &rw->w)) != 0) {
    zkr_lock_free(rw->r);
    free(rw);
    return rc;
  }
  rw->r->pair = rw->w->pair = rw;
  *out = rw;
  return 0;
}

zkr_lock_t *zkr_rwlock_read(zkr_rwlock_t *rw) {
  return rw ? rw->r : NULL;
}

zkr_lock_t *zkr_rwlock_write(zkr_rwlock_t *rw) {
  return rw ? rw->w : NULL;
}

void zkr_rwlock_free(zkr_rwlock_t *rw) {
  if (!rw)
    return;
  /* zkr_lock_free works on them now; their hooks (under o.mu) see no pair. */
  pthread_mutex_lock(&rw->r->o.mu);
  rw->r->pair = NULL;
  pthread_mutex_unlock(&rw->r->o.mu);
  pthread_mutex_lock(&rw->w->o.mu);
  rw->w->pair = NULL;
  pthread_mutex_unlock(&rw->w->o.mu);
  zkr_lock_free(rw->w);
  zkr_lock_free(rw->r);
  free(rw);
}

int zkr_lock_kind(zkr_lock_t *l) {
  return !l                      ? -1
         : l->kind == KIND_READ  ? ZKR_LOCK_READ
         : l->kind == KIND_WRITE ? ZKR_LOCK_WRITE
         : l->kind == KIND_LEASE ? ZKR_LOCK_LEASE
                                 : ZKR_LOCK_MUTEX;
}

int zkr_lock_set_data(zkr_lock_t *l, const void *data, int len) {
  int rc;
  if (!l)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  rc = zkr__queue_set_data(&l->q, data, len);
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

int zkr_lock_set_acl(zkr_lock_t *l, const struct ACL_vector *acl) {
  int rc;
  if (!l)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  rc = zkr__queue_set_acl(&l->q, acl);
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

int zkr_lock_set_listener(zkr_lock_t *l, zkr_lock_listener_fn fn, void *arg) {
  if (!l)
    return ZKR_EINVAL;
  zkr__obj_set_listener(&l->o, ZKR__FN(fn), arg);
  return 0;
}

static int acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb, void *arg,
                         bool by_semaphore) {
  int rc;

  if (!l || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  if (l->o.freed) {
    rc = ZKR_ECLOSED;
  } else if (l->kind == KIND_LEASE && (!by_semaphore || l->lease_started)) {
    rc = ZKR_EINVAL; /* a lease comes from its semaphore, once */
  } else if (l->q.state == ZKR__Q_HELD) {
    /* Reentrant: one more hold, completed on the worker. */
    if ((rc = zkr__obj_defer(&l->o, 0, run_cb, ZKR__FN(cb), arg, 0, 0)) == 0)
      l->holds++;
  } else if (l->q.state == ZKR__Q_ACQUIRING) {
    rc = ZKR_EBUSY;
  } else if (l->kind == KIND_READ && l->pair && atomic_load(&l->pair->downgrading)) {
    rc = ZKR_EBUSY; /* the write lock is turning into this read lock */
  } else if (l->kind == KIND_WRITE && l->pair && atomic_load(&l->pair->read_held)) {
    rc = ZKR_EDEADLK; /* an upgrade: release the read lock first */
  } else if ((rc = zkr__queue_start(&l->q, timeout_ms == 0)) == 0) {
    l->acb = cb;
    l->aarg = arg;
    l->lease_started = l->kind == KIND_LEASE;
    if (timeout_ms > 0 &&
        (rc = zkr__obj_timer(&l->o, &l->deadline, (zkr__now_ms() + timeout_ms) * 1000,
                             on_deadline)) != 0) {
      zkr__queue_leave(&l->q, rc); /* its node, if any, goes to the janitor */
      l->acb = NULL;
    }
  }
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

int zkr_lock_acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb, void *arg) {
  return acquire_async(l, timeout_ms, cb, arg, false);
}

static void sync_cb(zkr_lock_t *l, int rc, void *arg);

/* ---- downgrade (write -> read, keeping the place) ---- */

typedef struct dg_req {
  zkr__req_t rq;
  char created[ZKR__PATH_MAX + 64];
} dg_req_t;

static void end_downgrade(zkr_lock_t *w, int rc, zkr__fx_t *fx) {
  if (w->dlost && rc != 0)
    zkr__fx_event(fx, &w->o, call_listener, ZKR_LOCK_LOST);
  w->dlost = false;
  zkr__fx_add(fx, run_cb, ZKR__FN(w->dcb), w->darg, rc);
  w->dcb = NULL;
  w->dtok = 0;
  w->dwaiting = false;
  free(w->dpath);
  w->dpath = NULL;
  if (w->pair)
    atomic_store(&w->pair->downgrading, 0);
}

static void on_dg_multi(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  zkr_lock_t *w = LOCK(o);
  (void)r, (void)fx;
  if (rq->tok == w->dtok)
    w->dmulti_rc = rc;
}

static int send_dg_exists(zkr_lock_t *w);

/* The exists after the multi decides: the read node there, ours: done. */
static void on_dg_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr_lock_t *w = LOCK(o), *rd;
  int cls = zkr__rc_class(rc);

  if (rq->tok != w->dtok || !w->dcb)
    return;
  /* Applied: the read node is there, ours. (The write lock may have been told
   * LOST meanwhile: after a reconnect its check found its node gone, deleted
   * by this very transaction. The read lock takes the place all the same.) */
  if (rc == ZOK && r->stat && r->stat->ephemeralOwner == w->q.sid && w->pair) {
    rd = w->pair->r;
    pthread_mutex_lock(&rd->o.mu); /* order: the write lock, then the read lock */
    if (zkr__queue_adopt(&rd->q, w->dpath, r->stat->czxid, w->q.sid, w->q.gen, w->q.guid) ==
        0) {
      rd->holds = 1;
      read_held(rd, 1);
    }
    pthread_mutex_unlock(&rd->o.mu);
    zkr__queue_disown(&w->q); /* its node went in the same transaction (no-op if IDLE) */
    w->holds = 0;
    end_downgrade(w, 0, fx);
  } else if (rc == ZNONODE || rc == ZOK) {
    /* Not applied (the multi was answered first): still the writer, unless
     * the write node is gone too (the session ended). */
    end_downgrade(w,
                  w->q.state != ZKR__Q_HELD ? ZKR_ELOST
                  : w->dmulti_rc != 0       ? w->dmulti_rc
                                            : ZKR_EUNKNOWN,
                  fx);
  } else if (cls == ZKR__RC_CONN) {
    w->dwaiting = true; /* ask again once connected (the session's end ends it) */
    zkr__obj_wait(&w->o, ZKR__WAIT_CONN, w->q.gen);
  } else {
    end_downgrade(w, cls == ZKR__RC_CLOSED ? ZKR_ECLOSED : ZKR_ELOST, fx);
  }
}

static int send_dg_exists(zkr_lock_t *w) {
  zkr__send_t x;
  int rc;
  if ((rc = zkr__send_begin(&x, &w->o, w->q.gen, ZKR__K_EXISTS, on_dg_exists, w->dtok, 0)) !=
      0)
    return rc;
  return zkr__send_end(&x, zoo_aexists(x.c.zh, w->dpath, 0, zkr__cb_stat, x.c.op));
}

static void lock_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(o);
  if (l->dcb && l->dwaiting) {
    l->dwaiting = false;
    if (send_dg_exists(l) != 0) {
      l->dwaiting = true;
      zkr__obj_wait(&l->o, ZKR__WAIT_CONN, l->q.gen);
    }
  }
  zkr__queue_obj_resume(o, fx);
}

static void lock_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(o);
  zkr__queue_obj_on_session(o, event, fx);
  /* The session gone: the read node, if the transaction made it, went too. */
  if (l->dcb && (event == ZKR_SESSION_LOST || event == ZKR_SESSION_CLOSED))
    end_downgrade(l, event == ZKR_SESSION_CLOSED ? ZKR_ECLOSED : ZKR_ELOST, fx);
}

int zkr_rwlock_downgrade_async(zkr_rwlock_t *rw, zkr_lock_cb cb, void *arg) {
  zkr_lock_t *w, *rd;
  zkr__send_t x;
  zoo_op_t mops[2];
  char seq[16];
  size_t n;
  int rc = 0;

  if (!rw || !cb)
    return ZKR_EINVAL;
  w = rw->w;
  rd = rw->r;
  pthread_mutex_lock(&w->o.mu);
  if (w->q.state != ZKR__Q_HELD) {
    rc = ZKR_ENOTHELD;
  } else if (w->holds > 1 || w->dcb) {
    rc = ZKR_EBUSY; /* release the write lock's extra holds first */
  } else {
    pthread_mutex_lock(&rd->o.mu);
    if (rd->q.state != ZKR__Q_IDLE)
      rc = ZKR_EBUSY; /* the read lock holds or waits already */
    else
      atomic_store(&rw->downgrading, 1);
    pthread_mutex_unlock(&rd->o.mu);
  }
  if (rc == 0) {
    /* _c_<guid>-__READ__<the writer's sequence>: the same place in the queue. */
    snprintf(seq, sizeof(seq), "%010d", w->q.seq);
    n = strlen(w->q.path) + strlen(w->q.guid) + strlen(seq) + 32;
    if (!(w->dpath = malloc(n))) {
      rc = ZKR_ENOMEM;
    } else {
      snprintf(w->dpath, n, "%s/_c_%s-%s%s", strcmp(w->q.path, "/") ? w->q.path : "",
               w->q.guid, read_rule.tag, seq);
      w->dtok = zkr__obj_token(&w->o);
      w->dmulti_rc = 0;
      w->dwaiting = false;
      w->dlost = false;
      if ((rc = zkr__send_begin(&x, &w->o, w->q.gen, ZKR__K_MULTI, on_dg_multi, w->dtok,
                                sizeof(dg_req_t))) == 0) {
        zoo_create_op_init(&mops[0], w->dpath, rd->q.data, rd->q.data_len,
                           rd->q.acl.count ? &rd->q.acl : zkr_session_acl(w->o.s),
                           ZOO_EPHEMERAL, ((dg_req_t *)x.rq)->created,
                           (int)sizeof(((dg_req_t *)x.rq)->created));
        zoo_delete_op_init(&mops[1], w->q.node_path, -1);
        if ((rc = zkr__send_results(&x, 2)) != 0)
          rc = zkr__send_end(&x, rc);
        else
          rc = zkr__send_end(
              &x, zoo_amulti(x.c.zh, 2, mops, x.c.results, zkr__cb_void, x.c.op));
      }
      /* Pipelined: answered after the multi, so it tells what the multi did
       * even when the multi's own reply is lost. */
      if (rc == 0 && (rc = send_dg_exists(w)) != 0) {
        w->dcb = cb; /* the multi is out: the outcome comes after a reconnect */
        w->darg = arg;
        w->dwaiting = true;
        zkr__obj_wait(&w->o, ZKR__WAIT_CONN, w->q.gen);
        rc = 0;
      } else if (rc == 0) {
        w->dcb = cb;
        w->darg = arg;
      }
    }
    if (rc != 0) {
      free(w->dpath);
      w->dpath = NULL;
      w->dtok = 0;
      atomic_store(&rw->downgrading, 0);
    }
  }
  pthread_mutex_unlock(&w->o.mu);
  return rc;
}

int zkr_rwlock_downgrade(zkr_rwlock_t *rw) {
  zkr__sync_t y;
  int rc;

  if (!rw)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  return zkr__sync_wait(&y, zkr_rwlock_downgrade_async(rw, sync_cb, &y));
}

/* ---- leases (the semaphore's) ---- */

int zkr__lock_new_kazoo(zkr_session_t *s, const char *path, zkr_lock_t **out) {
  int rc = lock_new(s, path, KIND_MUTEX, out);
  if (rc == 0)
    (*out)->q.rule = &kazoo_rule; /* not started yet: nobody reads it */
  return rc;
}

int zkr__lease_new(zkr_session_t *s, const char *leases_path, int profile, int max,
                   const void *data, int len, zkr_lock_t **out) {
  int rc;
  if (profile < ZKR_SEMAPHORE_CURATOR || profile > ZKR_SEMAPHORE_NATIVE)
    return ZKR_EINVAL;
  if ((rc = lock_new(s, leases_path, KIND_LEASE, out)) == 0) {
    (*out)->lrule = lease_rules[profile];
    (*out)->lrule.max = &(*out)->lmax;
    atomic_store(&(*out)->lmax, max);
    if ((rc = zkr_lock_set_data(*out, data, len)) != 0) {
      zkr_lock_free(*out);
      *out = NULL;
    }
  }
  return rc;
}

int zkr__lease_acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb, void *arg) {
  return acquire_async(l, timeout_ms, cb, arg, true);
}

void zkr__lease_set_max(zkr_lock_t *l, int max) {
  pthread_mutex_lock(&l->o.mu);
  if (atomic_exchange(&l->lmax, max) < max && zkr__queue_relist(&l->q) != 0)
    zkr__log(ZKR_LOG_WARN, "semaphore lease %s: no listing after the maximum rose",
             l->q.path); /* the next change of the leases decides */
  pthread_mutex_unlock(&l->o.mu);
}

static void run_rcb(zkr__obj_t *o, const zkr__effect_t *e) {
  ((zkr_lock_cb)e->cb)(LOCK(o), e->rc, e->arg);
}

static void on_rewritten(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr_lock_t *l = LOCK(o);
  (void)rq, (void)r;
  if (l->rcb)
    zkr__fx_add(fx, run_rcb, ZKR__FN(l->rcb), l->rarg, rc);
  l->rcb = NULL;
}

int zkr__lease_set_slot_async(zkr_lock_t *l, int slot, const void *data, int len,
                              zkr_lock_cb cb, void *arg) {
  int rc;
  pthread_mutex_lock(&l->o.mu);
  if (l->rcb) {
    rc = ZKR_EBUSY;
  } else if ((rc = zkr__queue_rewrite(&l->q, data, len, on_rewritten)) == 0) {
    l->rcb = cb;
    l->rarg = arg;
    atomic_store(&l->slot, slot);
  }
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

void zkr__lease_note_slot(zkr_lock_t *l, int slot) {
  atomic_store(&l->slot, slot);
}

void zkr__lock_ref(zkr_lock_t *l, int delta) {
  if (delta > 0)
    zkr__obj_ref(&l->o);
  else
    zkr__obj_unref(&l->o);
}

int zkr_lease_slot(zkr_lock_t *l) {
  return l && l->kind == KIND_LEASE ? atomic_load(&l->slot) : -1;
}

static void sync_cb(zkr_lock_t *l, int rc, void *arg) {
  (void)l;
  zkr__sync_signal(arg, rc);
}

int zkr_lock_acquire(zkr_lock_t *l, int timeout_ms) {
  zkr__sync_t y;
  int rc;

  if (!l || timeout_ms < -1)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  return zkr__sync_wait(&y, zkr_lock_acquire_async(l, timeout_ms, sync_cb, &y));
}

int zkr_lock_cancel(zkr_lock_t *l) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  if (!l)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  if (l->q.state != ZKR__Q_ACQUIRING) {
    rc = ZKR_ENOTHELD;
  } else {
    zkr__queue_leave(&l->q, ZKR_ECANCELED);
    end_acquire(l, ZKR_ECANCELED, &fx);
  }
  zkr__obj_unlock_api(&l->o, &fx); /* the callback runs before we return */
  return rc;
}

static void on_deleted(void *arg, int rc) {
  zkr__obj_pay(arg, rc);
}

int zkr_lock_release_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb, void *arg) {
  zkr__owed_t *w = NULL;
  int rc;

  if (!l || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  if (l->q.state != ZKR__Q_HELD) {
    rc = ZKR_ENOTHELD;
  } else if (l->holds > 1) {
    if ((rc = zkr__obj_defer(&l->o, 0, run_cb, ZKR__FN(cb), arg, 0, 0)) == 0)
      l->holds--;
  } else if (!cb || timeout_ms == 0) {
    /* Nothing to wait for: the delete is on its way, ahead of anything this
     * session sends later (so a next acquire queues behind it). */
    if ((rc = zkr__queue_release(&l->q, NULL, NULL)) == 0) {
      l->holds = 0;
      read_held(l, 0);
      if (cb) /* on failure (out of memory) released all the same, and no callback */
        rc = zkr__obj_defer(&l->o, 0, run_cb, ZKR__FN(cb), arg, 0, 0);
    }
  } else if (!(w = zkr__obj_owe(&l->o, 0, run_cb, ZKR__FN(cb), arg))) {
    rc = ZKR_ENOMEM;
  } else {
    zkr__obj_owe_hold(w); /* the janitor pays it: on_deleted */
    if ((rc = zkr__queue_release(&l->q, on_deleted, w)) != 0) {
      zkr__obj_unowe(w); /* the janitor never started */
    } else {
      l->holds = 0;
      read_held(l, 0);
      /* The delete goes on after the deadline (the janitor owns the node). */
      if (timeout_ms > 0 &&
          zkr__obj_owe_by(w, zkr__now_ms() + timeout_ms, ZKR_ETIMEDOUT, 0) != 0)
        zkr__log(ZKR_LOG_WARN, "lock %s: no deadline for the release", l->q.path);
    }
  }
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

int zkr_lock_release(zkr_lock_t *l, int timeout_ms) {
  zkr__sync_t y;
  int rc;

  if (!l || timeout_ms < -1)
    return ZKR_EINVAL;
  if (timeout_ms == 0) /* do not wait: the delete is on its way, in session order */
    return zkr_lock_release_async(l, 0, NULL, NULL);
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  return zkr__sync_wait(&y, zkr_lock_release_async(l, timeout_ms, sync_cb, &y));
}

int zkr_lock_is_held(zkr_lock_t *l) {
  int h;
  if (!l)
    return 0;
  pthread_mutex_lock(&l->o.mu);
  h = l->q.state == ZKR__Q_HELD;
  pthread_mutex_unlock(&l->o.mu);
  return h;
}

int zkr_lock_hold_count(zkr_lock_t *l) {
  int h;
  if (!l)
    return 0;
  pthread_mutex_lock(&l->o.mu);
  h = l->holds;
  pthread_mutex_unlock(&l->o.mu);
  return h;
}

int zkr_lock_token(zkr_lock_t *l, zkr_lock_token_t *out) {
  int rc = 0;
  if (!l || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  if (l->q.state != ZKR__Q_HELD) {
    rc = ZKR_ENOTHELD;
  } else {
    memset(out, 0, sizeof(*out));
    out->czxid = l->q.czxid;
    out->session_id = l->q.sid;
    out->sequence = l->q.seq;
    snprintf(out->node, sizeof(out->node), "%s", l->q.node_name);
  }
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

int zkr_lock_guard(zkr_lock_t *l, zoo_op_t *op) {
  int rc = 0;
  if (!l || !op)
    return ZKR_EINVAL;
  pthread_mutex_lock(&l->o.mu);
  if (l->q.state != ZKR__Q_HELD)
    rc = ZKR_ENOTHELD;
  else
    rc = zkr__queue_guard(&l->q, op);
  pthread_mutex_unlock(&l->o.mu);
  return rc;
}

const char *zkr_lock_path(zkr_lock_t *l) {
  return l ? l->q.path : NULL;
}

void zkr_lock_free(zkr_lock_t *l) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!l)
    return;
  pthread_mutex_lock(&l->o.mu);
  if (l->pair) { /* a read/write lock's own: zkr_rwlock_free frees it */
    pthread_mutex_unlock(&l->o.mu);
    return;
  }
  pthread_mutex_unlock(&l->o.mu);
  if (!zkr__obj_free_begin(&l->o))
    return;
  if (l->q.state == ZKR__Q_ACQUIRING) {
    zkr__queue_leave(&l->q, ZKR_ECANCELED);
    end_acquire(l, ZKR_ECANCELED, &fx);
  } else if (l->q.state == ZKR__Q_HELD) {
    zkr__queue_release(&l->q, NULL, NULL);
    l->holds = 0;
  }
  read_held(l, 0);
  zkr__obj_free_end(&l->o, &fx);
}

int zkr__lock_stats(zkr_lock_t *l, zkr__queue_stats_t *out) {
  return l ? zkr__queue_stats(&l->q, out) : ZKR_EINVAL;
}
