/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leader election, latch style.
 *
 * Znodes: under the election path P, each candidate that joins creates
 *   P/_c_<uuid>-latch-<seq>   EPHEMERAL_SEQUENTIAL, data = participant id
 * (Curator LeaderLatch format). The lowest contender of every known format leads.
 *
 * Algorithm: a candidate is one entry of the queue engine (lib/queue.c) with the
 * latch rule: it leads when it is the lowest contender, and it holds its place
 * until it resigns. The engine gives the queue (create + listing pipelined,
 * watch on the predecessor only, lead at once when the departed predecessor was
 * the leader of our last listing), the GUID recovery of ambiguous creates, the
 * cleanup of abandoned nodes and the check of the node after every reconnect
 * (never leadership from a cached listing). This file adds the leadership view:
 * events, epochs, awaiting, resigning and rejoining.
 *
 * Fast failover: the waiter right behind the leader usually listed the queue
 * when others were still ahead, so the leader's departure alone would not tell
 * it that it leads: it would have to list again, on the critical path. So the
 * latch rule marks a new leader's node once (its data rewritten unchanged); the
 * waiter watching it hears the change and lists again at once, sees its
 * predecessor leads, and when that node goes it leads without another round
 * trip. Curator candidates do not do this; behind one, we list again as usual.
 *
 * Awaits are callbacks owed by the object (kind AWAIT, or AWAIT_ONCE for
 * timeout 0): leadership settles them with 0 and the epoch; a resign, a loss
 * without rejoin or a failed join with the reason; AWAIT_ONCE also ends with
 * ZKR_ETIMEDOUT as soon as the candidate is known to wait. The sync await is the
 * async one plus the waiter.
 *
 * Locking: e->o.mu guards the fields marked (mu); user callbacks run after it is
 * released (the object base's effects).
 */
#include "object.h"
#include "queue.h"
#include "recipes_internal.h"
#include "zkrecipes/election.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ID 1000000

enum { AWAIT = 1, AWAIT_ONCE = 2 };

struct zkr_election {
  zkr__obj_t o;
  zkr__queue_t q;

  /* (mu) */
  bool joined;  /* queued or leading (the entry is not IDLE, or waits to rejoin) */
  bool leader;  /* granted and not lost or resigned since */
  bool suspect; /* disconnected since; leadership uncertain */
  bool waiting; /* known not to lead yet */
  bool rejoin;
  int64_t epoch;
};

#define ELECTION(o) ((zkr_election_t *)(o))

/* ---- effects ---- */

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg,
                          const zkr__effect_t *e) {
  ((zkr_election_listener_fn)fn)(ELECTION(o), e->rc, e->value, arg);
}

static void tell(zkr_election_t *e, int ev, int64_t epoch, zkr__fx_t *fx) {
  zkr__effect_t *x = zkr__fx_event(fx, &e->o, call_listener, ev);
  if (x)
    x->value = epoch;
}

static void run_await(zkr__obj_t *o, const zkr__effect_t *e) {
  ((zkr_election_cb)e->cb)(ELECTION(o), e->rc, e->rc == 0 ? e->value : 0, e->arg);
}

/* ---- the queue's hooks (mu held) ---- */

static const zkr__queue_rule_t rule = {.tag = "latch-",
                                       .order_mode = 1,
                                       .mark_on_grant = true,
                                       .decide = zkr__rule_exclusive};

static int join(zkr_election_t *e) {
  int rc = zkr__queue_start(&e->q, false);
  e->joined = rc == 0;
  e->waiting = false;
  return rc;
}

static void q_granted(zkr__queue_t *q, zkr__fx_t *fx) {
  zkr_election_t *e = ELECTION(q->o);
  e->leader = true;
  e->suspect = e->waiting = false;
  e->epoch = q->czxid;
  tell(e, ZKR_ELECTION_LEADER, e->epoch, fx);
  zkr__obj_settle(&e->o, 0, 0, e->epoch, fx);
}

static void q_failed(zkr__queue_t *q, int rc, zkr__fx_t *fx) {
  zkr_election_t *e = ELECTION(q->o);
  /* The queue gave up on us (the session was closed, or an error). */
  e->joined = e->leader = e->waiting = false;
  zkr__obj_settle(&e->o, 0, rc, 0, fx);
}

static void q_waiting(zkr__queue_t *q, zkr__fx_t *fx) {
  zkr_election_t *e = ELECTION(q->o);
  e->waiting = true;
  zkr__obj_settle(&e->o, AWAIT_ONCE, ZKR_ETIMEDOUT, 0, fx);
}

static void q_event(zkr__queue_t *q, int ev, zkr__fx_t *fx) {
  zkr_election_t *e = ELECTION(q->o);

  switch (ev) {
  case ZKR__Q_SUSPECT:
    e->suspect = true;
    tell(e, ZKR_ELECTION_SUSPECT, 0, fx);
    break;
  case ZKR__Q_RECOVERED:
    e->suspect = false;
    tell(e, ZKR_ELECTION_RECOVERED, e->leader ? e->epoch : 0, fx);
    break;
  case ZKR__Q_LOST:
    /* Leading: the entry is idle now; rejoin queues again. Waiting: the entry
     * would queue again on the new session, which is what rejoin means. */
    e->suspect = false;
    tell(e, ZKR_ELECTION_LOST, 0, fx);
    if (!e->rejoin) {
      zkr__queue_leave(q, ZSESSIONEXPIRED);
      e->joined = e->leader = false;
      zkr__obj_settle(&e->o, 0, ZKR_ECANCELED, 0, fx);
    } else if (e->leader) {
      e->leader = false;
      if (join(e) != 0)
        zkr__log(ZKR_LOG_ERROR, "election %s: rejoining after session loss failed",
                 q->path);
    }
    break;
  }
}

static const zkr__queue_hooks_t hooks = {
    .granted = q_granted, .failed = q_failed, .waiting = q_waiting, .event = q_event};

static const zkr__obj_ops_t ops = {.name = "election",
                                   .on_session = zkr__queue_obj_on_session,
                                   .resume = zkr__queue_obj_resume,
                                   .destroy = zkr__queue_obj_destroy};

/* ---- public ---- */

int zkr_election_new(zkr_session_t *s, const char *path, const void *id, int id_len,
                     zkr_election_t **out) {
  zkr_election_t *e;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || !id || id_len <= 0 || id_len > MAX_ID || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(e = zkr__obj_new(sizeof(*e), &ops, s)))
    return ZKR_ENOMEM;
  if ((rc = zkr__queue_init(&e->q, &e->o, path, &rule, &hooks)) != 0 ||
      (rc = zkr__queue_set_data(&e->q, id, id_len)) != 0 ||
      (rc = zkr__obj_listen(&e->o)) != 0) {
    zkr__obj_unref(&e->o);
    return rc;
  }
  *out = e;
  return 0;
}

int zkr_election_set_listener(zkr_election_t *e, zkr_election_listener_fn fn, void *arg) {
  if (!e)
    return ZKR_EINVAL;
  zkr__obj_set_listener(&e->o, ZKR__FN(fn), arg);
  return 0;
}

int zkr_election_set_rejoin(zkr_election_t *e, int on) {
  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  e->rejoin = on != 0;
  pthread_mutex_unlock(&e->o.mu);
  return 0;
}

int zkr_election_start(zkr_election_t *e) {
  int rc;
  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  rc = e->o.freed ? ZKR_ECLOSED : e->joined ? ZKR_EBUSY : join(e);
  pthread_mutex_unlock(&e->o.mu);
  return rc;
}

int zkr_election_resign(zkr_election_t *e, int rejoin) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  if (e->o.freed || !e->joined) {
    pthread_mutex_unlock(&e->o.mu);
    return ZKR_ENOTHELD;
  }
  if (e->leader)
    tell(e, ZKR_ELECTION_NOT_LEADER, 0, &fx);
  e->leader = e->suspect = e->joined = false;
  /* Every pending await: this candidate resigned (a rejoin is a new wait). */
  zkr__obj_settle(&e->o, 0, ZKR_ECANCELED, 0, &fx);
  /* Leave: a held node is deleted in session order, before a rejoin's create. */
  if (e->q.state == ZKR__Q_HELD)
    zkr__queue_release(&e->q, NULL, NULL);
  else
    zkr__queue_leave(&e->q, ZKR_ECANCELED);
  if (rejoin)
    rc = join(e);
  zkr__obj_unlock_api(&e->o, &fx);
  return rc;
}

int zkr_election_is_leader(zkr_election_t *e) {
  int l;
  if (!e)
    return 0;
  pthread_mutex_lock(&e->o.mu);
  l = e->leader && !e->suspect;
  pthread_mutex_unlock(&e->o.mu);
  return l;
}

int zkr_election_epoch(zkr_election_t *e, int64_t *epoch) {
  int rc = 0;
  if (!e || !epoch)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  if (e->leader)
    *epoch = e->epoch;
  else
    rc = ZKR_ENOTHELD;
  pthread_mutex_unlock(&e->o.mu);
  return rc;
}

int zkr_election_guard(zkr_election_t *e, zoo_op_t *op) {
  int rc = 0;
  if (!e || !op)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  if (!e->leader || e->q.state != ZKR__Q_HELD)
    rc = ZKR_ENOTHELD;
  else
    rc = zkr__queue_guard(&e->q, op);
  pthread_mutex_unlock(&e->o.mu);
  return rc;
}

int zkr_election_await_async(zkr_election_t *e, int timeout_ms, zkr_election_cb cb,
                             void *arg) {
  zkr__owed_t *w;
  int rc = 0;

  if (!e || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->o.mu);
  if (e->o.freed) {
    rc = ZKR_ECLOSED;
  } else if (!e->joined) {
    rc = ZKR_ENOTHELD; /* not joined: nothing to wait for */
  } else if (e->leader) {
    /* Leading already: complete on the worker, never inside this call. */
    rc = zkr__obj_defer(&e->o, AWAIT, run_await, ZKR__FN(cb), arg, 0, e->epoch);
  } else if (timeout_ms == 0 &&
             (e->waiting || zkr_session_state(e->o.s) != ZKR_STATE_CONNECTED)) {
    /* One attempt, no waiting on others: known to wait. */
    rc = zkr__obj_defer(&e->o, AWAIT_ONCE, run_await, ZKR__FN(cb), arg, ZKR_ETIMEDOUT, 0);
  } else if (!(w = zkr__obj_owe(&e->o, timeout_ms == 0 ? AWAIT_ONCE : AWAIT, run_await,
                                ZKR__FN(cb), arg))) {
    rc = ZKR_ENOMEM;
  } else if (timeout_ms > 0 && (rc = zkr__obj_owe_by(w, zkr__now_ms() + timeout_ms,
                                                     ZKR_ETIMEDOUT, 0)) != 0) {
    zkr__obj_unowe(w);
  }
  pthread_mutex_unlock(&e->o.mu);
  return rc;
}

static void sync_cb(zkr_election_t *e, int rc, int64_t epoch, void *arg) {
  zkr__sync_t *y = arg;
  (void)e;
  y->value = epoch;
  zkr__sync_signal(y, rc);
}

int zkr_election_await(zkr_election_t *e, int timeout_ms, int64_t *epoch) {
  zkr__sync_t y;
  int rc;

  if (!e || timeout_ms < -1)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(&y, zkr_election_await_async(e, timeout_ms, sync_cb, &y));
  if (rc == 0 && epoch)
    *epoch = y.value;
  return rc;
}

int zkr_election_leader(zkr_session_t *s, const char *path, int timeout_ms, char **id,
                        int *id_len) {
  zkr_contender_t *c = NULL;
  int n = 0, rc;

  if (!id)
    return ZKR_EINVAL;
  *id = NULL;
  if (id_len)
    *id_len = 0;
  if ((rc = zkr_contenders_list(s, path, timeout_ms, &c, &n)) != 0)
    return rc;
  if (n == 0 || c[0].format == ZKR_FORMAT_UNKNOWN) {
    rc = ZNONODE;
  } else {
    *id = c[0].data ? c[0].data : strdup("");
    c[0].data = NULL;
    if (!*id)
      rc = ZKR_ENOMEM;
    else if (id_len)
      *id_len = c[0].data_len < 0 ? 0 : c[0].data_len;
  }
  zkr_contenders_free(c, n);
  return rc;
}

void zkr_election_free(zkr_election_t *e) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!e || !zkr__obj_free_begin(&e->o))
    return;
  /* Leave now: a pending attempt ends, a held node is deleted. Pending awaits
   * end with ZKR_ECANCELED (zkr__obj_free_end). */
  if (e->q.state == ZKR__Q_HELD)
    zkr__queue_release(&e->q, NULL, NULL);
  else
    zkr__queue_leave(&e->q, ZKR_ECANCELED);
  e->leader = e->joined = false;
  zkr__obj_free_end(&e->o, &fx);
}

int zkr__election_stats(zkr_election_t *e, zkr__queue_stats_t *out) {
  return e ? zkr__queue_stats(&e->q, out) : ZKR_EINVAL;
}

int zkr__election_awaiting(zkr_election_t *e) {
  int n;
  pthread_mutex_lock(&e->o.mu);
  n = zkr__obj_owed_count(&e->o, 0);
  pthread_mutex_unlock(&e->o.mu);
  return n;
}
