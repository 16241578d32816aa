/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leader election, latch style.
 *
 * Znodes: under the election path P, each candidate that joins creates
 *   P/_c_<uuid>-latch-<seq>   EPHEMERAL_SEQUENTIAL, data = participant id
 * (Curator LeaderLatch format). The lowest contender leads.
 *
 * Algorithm: a candidate is an exclusive lock in "latch" mode (recipes/lock.c,
 * zkr__lock_new_kind) that it acquires and never releases until it resigns: the
 * lock gives the queue (create + listing pipelined, watch on the predecessor only,
 * list again if it vanished, lead at once when the departed predecessor was the
 * leader of our last listing), the GUID recovery of ambiguous creates with the
 * ownership check, the cleanup of abandoned nodes, and the check of the node
 * after every reconnect (never leadership from a cached listing). This file adds
 * the leadership view: events, epochs, awaiting, resigning and rejoining.
 *
 * Fast failover: the waiter right behind the leader usually listed the queue
 * when others were still ahead, so the leader's departure alone would not tell
 * it that it leads: it would have to list again, on the critical path. So a new
 * leader rewrites its node's data unchanged once (zkr__lock_touch); the waiter
 * watching it hears the change and lists again at once, sees its predecessor is
 * the leader, and when that node goes it leads without another round trip.
 * Curator candidates do not do this; behind one, we list again as usual.
 *
 * Joins are numbered; the acquire of an older join (cancelled by a resign) may
 * still call back and is ignored.
 *
 * Locking: e->mu guards the fields marked (mu). It is never held while calling
 * into the lock object (whose callbacks take e->mu), nor while user callbacks run.
 */
#include "internal.h"
#include "zkrecipes/election.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct await {
  struct await *next;
  zkr_election_t *e; /* holds a reference */
  zkr_election_cb cb;
  void *arg;
  int64_t deadline;
  uint64_t timer;
  int owed;  /* (mu) the callback has not run */
  int ready; /* (mu) leading already when asked: the timer delivers success */
  int once;  /* timeout 0: ends with ZKR_ETIMEDOUT as soon as we are known to wait */
  int rc;
  int64_t epoch;
} await_t;

typedef struct join {
  zkr_election_t *e; /* holds a reference */
  uint64_t seq;
} join_t;

struct zkr_election {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* leadership or membership changed */
  _Atomic int refs;
  zkr_session_t *s; /* holds a reference */
  zkr_lock_t *lock; /* latch-mode lock: our place in the queue */

  /* (mu) */
  int freed;
  int joined;  /* an acquire is pending or held */
  int leader;  /* the acquire was granted and not lost or resigned */
  int suspect; /* disconnected since; leadership uncertain */
  int waiting; /* the current join is known not to lead yet (see zkr__lock_set_waiting_fn)
                */
  int64_t epoch;
  int rejoin;
  uint64_t join_seq; /* number of the current join */
  zkr_election_listener_fn lfn;
  void *larg;
  await_t *awaits;
};

typedef struct notes {
  int events[4];
  int64_t epochs[4];
  int nevents;
  await_t *done; /* awaits to complete (linked through next) */
} notes_t;

static void election_ref(zkr_election_t *e) {
  atomic_fetch_add(&e->refs, 1);
}

static void election_unref(zkr_election_t *e) {
  if (atomic_fetch_sub(&e->refs, 1) != 1)
    return;
  zkr_lock_free(e->lock);
  zkr__session_unref(e->s);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}

/* ---- effects (e->mu held to gather, released to deliver) ---- */

static void note_event(zkr_election_t *e, notes_t *n, int ev, int64_t epoch) {
  if (e->lfn && n->nevents < 4) {
    n->events[n->nevents] = ev;
    n->epochs[n->nevents] = epoch;
    n->nevents++;
  }
}

/* Finish every pending await with rc. */
static void end_awaits(zkr_election_t *e, notes_t *n, int rc, int64_t epoch) {
  while (e->awaits) {
    await_t *a = e->awaits;
    e->awaits = a->next;
    a->owed = 0;
    a->rc = rc;
    a->epoch = epoch;
    a->next = n->done;
    n->done = a;
  }
}

static void deliver(zkr_election_t *e, notes_t *n) {
  zkr_election_listener_fn fn;
  void *arg;

  pthread_mutex_lock(&e->mu);
  fn = e->freed ? NULL : e->lfn;
  arg = e->larg;
  pthread_mutex_unlock(&e->mu);
  for (int i = 0; i < n->nevents; i++)
    if (fn)
      fn(e, n->events[i], n->epochs[i], arg);
  while (n->done) {
    await_t *a = n->done;
    n->done = a->next;
    a->cb(e, a->rc, a->epoch, a->arg);
    /* Its timer (if any) finds it not owed and frees it; without one, we do. */
    if (!a->timer || zkr__timer_cancel(a->timer)) {
      election_unref(a->e);
      free(a);
    }
  }
}

/* Finish the awaits made with timeout 0: we are known not to lead. */
static void end_once_awaits(zkr_election_t *e, notes_t *n) {
  for (await_t **pp = &e->awaits; *pp;) {
    await_t *a = *pp;
    if (!a->once) {
      pp = &a->next;
      continue;
    }
    *pp = a->next;
    a->owed = 0;
    a->rc = ZKR_ETIMEDOUT;
    a->epoch = 0;
    a->next = n->done;
    n->done = a;
  }
}

/* From an API call: deliver in callback context. */
static void deliver_now(zkr_election_t *e, notes_t *n) {
  if (n->nevents == 0 && !n->done)
    return;
  zkr__dispatch_enter(e->s);
  deliver(e, n);
  zkr__dispatch_leave(e->s);
}

/* ---- joining ---- */

static void on_granted(zkr_lock_t *l, int rc, void *arg);

/* Queue (again). Called without e->mu. */
static int join(zkr_election_t *e) {
  join_t *j = malloc(sizeof(*j));
  int rc;

  if (!j)
    return ZKR_ENOMEM;
  pthread_mutex_lock(&e->mu);
  if (e->freed || e->joined) {
    rc = e->freed ? ZKR_ECLOSED : ZKR_EBUSY;
    pthread_mutex_unlock(&e->mu);
    free(j);
    return rc;
  }
  e->joined = 1;
  e->waiting = 0;
  j->e = e;
  j->seq = ++e->join_seq;
  election_ref(e);
  pthread_mutex_unlock(&e->mu);
  if ((rc = zkr_lock_acquire_async(e->lock, -1, on_granted, j)) != 0) {
    pthread_mutex_lock(&e->mu);
    if (e->join_seq == j->seq)
      e->joined = 0;
    pthread_mutex_unlock(&e->mu);
    election_unref(e);
    free(j);
  }
  return rc;
}

void (*zkr__election_grant_hook)(zkr_election_t *e);

static void on_granted(zkr_lock_t *l, int rc, void *arg) {
  join_t *j = arg;
  zkr_election_t *e = j->e;
  notes_t n = {0};
  int touch = 0;

  if (zkr__election_grant_hook)
    zkr__election_grant_hook(e);
  pthread_mutex_lock(&e->mu);
  if (!e->freed && j->seq == e->join_seq && e->joined) {
    if (rc == 0) {
      touch = 1;
      zkr_lock_token_t t;
      zkr_lock_token(l, &t);
      e->leader = 1;
      e->suspect = 0;
      e->epoch = t.czxid;
      note_event(e, &n, ZKR_ELECTION_LEADER, e->epoch);
      end_awaits(e, &n, 0, e->epoch);
      pthread_cond_broadcast(&e->cv);
    } else {
      /* The queue gave up on us (the session was closed, or an error). */
      e->joined = 0;
      e->leader = 0;
      end_awaits(e, &n, rc, 0);
      pthread_cond_broadcast(&e->cv);
    }
  }
  pthread_mutex_unlock(&e->mu);
  if (touch)
    zkr__lock_touch(l); /* best effort: a failure only costs the next leader a read */
  deliver(e, &n);
  election_unref(e);
  free(j);
}

/* The current join waits behind another candidate, or for the connection. */
static void on_waiting(void *arg) {
  zkr_election_t *e = arg;
  notes_t n = {0};

  pthread_mutex_lock(&e->mu);
  if (!e->freed && e->joined && !e->leader) {
    e->waiting = 1;
    end_once_awaits(e, &n);
    pthread_cond_broadcast(&e->cv);
  }
  pthread_mutex_unlock(&e->mu);
  deliver(e, &n);
}

/* Ownership changes of our place in the queue. */
static void on_lock_event(zkr_lock_t *l, int ev, void *arg) {
  zkr_election_t *e = arg;
  notes_t n = {0};
  int cancel = 0, rejoin = 0;

  (void)l;
  pthread_mutex_lock(&e->mu);
  if (e->freed || !e->joined) {
    pthread_mutex_unlock(&e->mu);
    return;
  }
  switch (ev) {
  case ZKR_LOCK_SUSPECT:
    e->suspect = 1;
    note_event(e, &n, ZKR_ELECTION_SUSPECT, 0);
    break;
  case ZKR_LOCK_RECOVERED:
    e->suspect = 0;
    note_event(e, &n, ZKR_ELECTION_RECOVERED, e->leader ? e->epoch : 0);
    break;
  case ZKR_LOCK_LOST:
    /* Leading: the lock is idle now. Waiting: it would queue again on the new
     * session, which is what rejoin means. */
    e->suspect = 0;
    note_event(e, &n, ZKR_ELECTION_LOST, 0);
    if (e->leader) {
      e->leader = 0;
      e->joined = 0;
      rejoin = e->rejoin;
    } else if (!e->rejoin) {
      e->joined = 0;
      cancel = 1;
    }
    if (!e->rejoin)
      end_awaits(e, &n, ZKR_ECANCELED, 0);
    pthread_cond_broadcast(&e->cv);
    break;
  }
  pthread_mutex_unlock(&e->mu);
  deliver(e, &n);
  if (cancel)
    zkr_lock_cancel(e->lock);
  if (rejoin && join(e) != 0)
    zkr__log(ZKR_LOG_ERROR, "election %s: rejoining after session loss failed",
             zkr_lock_path(e->lock));
}

/* ---- public ---- */

int zkr_election_new(zkr_session_t *s, const char *path, const void *id, int id_len,
                     zkr_election_t **out) {
  zkr_election_t *e;
  pthread_condattr_t ca;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || !id || id_len <= 0 || id_len > 1000000 || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(e = calloc(1, sizeof(*e))))
    return ZKR_ENOMEM;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_mutex_init(&e->mu, NULL) != 0 || pthread_cond_init(&e->cv, &ca) != 0) {
    pthread_condattr_destroy(&ca);
    free(e);
    return ZKR_ENOMEM;
  }
  pthread_condattr_destroy(&ca);
  atomic_init(&e->refs, 1);
  e->s = s;
  zkr__session_ref(s);
  if ((rc = zkr__lock_new_kind(s, path, 1, &e->lock)) != 0 ||
      (rc = zkr_lock_set_data(e->lock, id, id_len)) != 0 ||
      (rc = zkr_lock_set_listener(e->lock, on_lock_event, e)) != 0) {
    election_unref(e);
    return rc;
  }
  zkr__lock_set_waiting_fn(e->lock, on_waiting, e);
  *out = e;
  return 0;
}

int zkr_election_set_listener(zkr_election_t *e, zkr_election_listener_fn fn, void *arg) {
  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->mu);
  e->lfn = fn;
  e->larg = arg;
  pthread_mutex_unlock(&e->mu);
  return 0;
}

int zkr_election_set_rejoin(zkr_election_t *e, int on) {
  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->mu);
  e->rejoin = on != 0;
  pthread_mutex_unlock(&e->mu);
  return 0;
}

int zkr_election_start(zkr_election_t *e) {
  if (!e)
    return ZKR_EINVAL;
  return join(e);
}

int zkr_election_resign(zkr_election_t *e, int rejoin) {
  notes_t n = {0};
  int was_leader, rc;

  if (!e)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->mu);
  if (e->freed || !e->joined) {
    pthread_mutex_unlock(&e->mu);
    return ZKR_EINVAL;
  }
  was_leader = e->leader;
  e->leader = 0;
  e->suspect = 0;
  e->joined = 0;
  e->join_seq++; /* the cancelled acquire's callback is stale */
  if (was_leader)
    note_event(e, &n, ZKR_ELECTION_NOT_LEADER, 0);
  if (!rejoin)
    end_awaits(e, &n, ZKR_ECANCELED, 0);
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
  /* Leave: the node is deleted (in session order, before a rejoin's create).
   * When we did not lead as far as we knew, the queue may have granted us all
   * the same, its callback still on its way (it will find this join stale):
   * then the cancel finds nothing pending and the node must be released. */
  if (was_leader)
    rc = zkr_lock_release(e->lock, 0);
  else if ((rc = zkr_lock_cancel(e->lock)) != 0 && zkr_lock_held(e->lock))
    rc = zkr_lock_release(e->lock, 0);
  (void)rc; /* ENOTHELD/EINVAL: the queue had already let go of us */
  deliver_now(e, &n);
  return rejoin ? join(e) : 0;
}

int zkr_election_is_leader(zkr_election_t *e) {
  int l;
  if (!e)
    return 0;
  pthread_mutex_lock(&e->mu);
  l = e->leader && !e->suspect;
  pthread_mutex_unlock(&e->mu);
  return l;
}

int zkr_election_epoch(zkr_election_t *e, int64_t *epoch) {
  int rc = 0;
  if (!e || !epoch)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->mu);
  if (e->leader)
    *epoch = e->epoch;
  else
    rc = ZKR_ENOTHELD;
  pthread_mutex_unlock(&e->mu);
  return rc;
}

int zkr_election_guard(zkr_election_t *e, zoo_op_t *op) {
  int leader;
  if (!e || !op)
    return ZKR_EINVAL;
  pthread_mutex_lock(&e->mu);
  leader = e->leader;
  pthread_mutex_unlock(&e->mu);
  return leader ? zkr_lock_guard(e->lock, op) : ZKR_ENOTHELD;
}

int zkr_election_await(zkr_election_t *e, int timeout_ms, int64_t *epoch) {
  int64_t deadline = zkr__deadline(timeout_ms);
  uint64_t seq;
  int rc = 0;

  if (!e || timeout_ms < -1)
    return ZKR_EINVAL;
  if (timeout_ms != 0 && zkr__in_callback())
    return ZKR_EDEADLK;
  pthread_mutex_lock(&e->mu);
  seq = e->join_seq;
  if (!e->joined && !e->freed)
    rc = ZKR_EINVAL; /* not joined: nothing to wait for */
  while (rc == 0 && !e->leader) {
    if (e->freed || !e->joined || e->join_seq != seq) {
      rc = ZKR_ECANCELED; /* resigned, lost without rejoin, or freed meanwhile */
      break;
    }
    if (timeout_ms == 0) {
      /* Tries once: wait only until our place in the queue is known. */
      if (e->waiting || zkr_session_state(e->s) != ZKR_STATE_CONNECTED) {
        rc = ZKR_ETIMEDOUT;
        break;
      }
      if (zkr__in_callback()) {
        rc = ZKR_EDEADLK; /* the answer needs a reply this thread would deliver */
        break;
      }
      pthread_cond_wait(&e->cv, &e->mu);
    } else if (deadline >= 0) {
      struct timespec ts = {.tv_sec = deadline / 1000,
                            .tv_nsec = (long)(deadline % 1000) * 1000000};
      if (zkr__now_ms() >= deadline ||
          (pthread_cond_timedwait(&e->cv, &e->mu, &ts) == ETIMEDOUT && !e->leader)) {
        rc = ZKR_ETIMEDOUT;
        break;
      }
    } else {
      pthread_cond_wait(&e->cv, &e->mu);
    }
  }
  if (rc == 0 && epoch)
    *epoch = e->epoch;
  pthread_mutex_unlock(&e->mu);
  return rc;
}

static void on_await_timer(void *ctx, int fired) {
  await_t *a = ctx;
  zkr_election_t *e = a->e;
  int owed, rc = ZKR_ETIMEDOUT;
  int64_t epoch = 0;

  (void)fired; /* due, or the session is going: either way it ends here */
  pthread_mutex_lock(&e->mu);
  owed = a->owed;
  if (owed) {
    a->owed = 0;
    if (a->ready) {
      rc = 0;
      epoch = a->epoch;
    }
    for (await_t **pp = &e->awaits; *pp; pp = &(*pp)->next) {
      if (*pp == a) {
        *pp = a->next;
        break;
      }
    }
  }
  pthread_mutex_unlock(&e->mu);
  if (owed)
    a->cb(e, rc, epoch, a->arg);
  election_unref(e);
  free(a);
}

int zkr_election_await_async(zkr_election_t *e, int timeout_ms, zkr_election_cb cb,
                             void *arg) {
  await_t *a;
  int rc = 0;

  if (!e || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  if (!(a = calloc(1, sizeof(*a))))
    return ZKR_ENOMEM;
  a->e = e;
  a->cb = cb;
  a->arg = arg;
  a->owed = 1;
  pthread_mutex_lock(&e->mu);
  if (e->freed || !e->joined) {
    rc = e->freed ? ZKR_ECLOSED : ZKR_EINVAL;
  } else {
    /* Leading already, or (timeout 0) known to wait: complete on the worker,
     * never inside this call. Timeout 0 otherwise ends when the queue tells. */
    int known_waiting = e->waiting || zkr_session_state(e->s) != ZKR_STATE_CONNECTED;
    int64_t due = e->leader || (timeout_ms == 0 && known_waiting) ? zkr__now_ms()
                  : timeout_ms > 0 ? zkr__now_ms() + timeout_ms
                                   : -1;
    a->once = timeout_ms == 0;
    a->ready = e->leader;
    a->epoch = e->epoch;
    election_ref(e);
    a->next = e->awaits;
    e->awaits = a;
    if (due >= 0 && (rc = zkr__timer_at(e->s, due, on_await_timer, a, &a->timer)) != 0) {
      e->awaits = a->next;
      election_unref(e);
    }
  }
  pthread_mutex_unlock(&e->mu);
  if (rc != 0)
    free(a);
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

zkr_lock_t *zkr__election_lock(zkr_election_t *e) {
  return e ? e->lock : NULL;
}

void zkr_election_free(zkr_election_t *e) {
  notes_t n = {0};

  if (!e)
    return;
  pthread_mutex_lock(&e->mu);
  if (e->freed) {
    pthread_mutex_unlock(&e->mu);
    return;
  }
  e->freed = 1;
  e->leader = e->joined = 0;
  end_awaits(e, &n, ZKR_ECANCELED, 0);
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
  deliver_now(e, &n);
  /* Leave now: a pending acquire ends (its callback is stale), a held node is
   * deleted. The lock object itself goes with the last reference. */
  zkr_lock_set_listener(e->lock, NULL, NULL);
  zkr_lock_cancel(e->lock);
  if (zkr_lock_held(e->lock))
    zkr_lock_release(e->lock, 0);
  election_unref(e);
}
