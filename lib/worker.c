/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library's one worker thread: timers (deadlines of async operations,
 * retries) and jobs that must not run on a ZooKeeper client thread (closing a
 * retired client handle joins that handle's threads).
 *
 * Started on first use, stopped by zkr__worker_stop() when the last hold is
 * let go (the session code holds the worker while a session is open), so a
 * program that frees what it made ends with no thread of ours. The worker knows
 * nothing of sessions: a timer's owner runs it (zkr__timer_run_fn), so that the
 * session code can wrap it in callback context and let go of its reference.
 * wmu guards everything below; timer functions and jobs run without it.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

typedef struct timer {
  struct timer *next;
  uint64_t id;
  int64_t due_us;
  zkr__timer_run_fn run;
  void *owner;
  zkr__timer_fn fn;
  void *ctx;
} wtimer_t;

typedef struct job {
  struct job *next;
  void (*fn)(void *);
  void *arg;
} job_t;

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv; /* work arrived, or the stop finished */
static pthread_once_t wonce = PTHREAD_ONCE_INIT;
static pthread_t wthread;
static int running, stopping;
static int holds;        /* zkr__worker_hold() not yet released */
static wtimer_t *timers; /* sorted by due_us, then id */
static job_t *jobs_head, *jobs_tail;
static uint64_t next_id = 1;
static int64_t wake_at; /* when (us) the sleeping worker wakes by itself; 0: awake */

#define IDLE_WAKE_MS 1000

static void init_cv(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&wcv, &ca);
  pthread_condattr_destroy(&ca);
}

static void fire(wtimer_t *t, int fired) {
  t->run(t->owner, t->fn, t->ctx, fired);
  free(t);
}

static void *worker_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&wmu);
  for (;;) {
    if (jobs_head) {
      job_t *j = jobs_head;
      jobs_head = j->next;
      if (!jobs_head)
        jobs_tail = NULL;
      pthread_mutex_unlock(&wmu);
      j->fn(j->arg);
      free(j);
      pthread_mutex_lock(&wmu);
      continue;
    }
    if (stopping)
      break;
    if (!timers && holds == 0) {
      /* Idle with nobody holding us: leave by ourselves (no one will join us). */
      running = 0;
      pthread_detach(pthread_self());
      pthread_cond_broadcast(&wcv);
      break;
    }
    if (timers && timers->due_us <= zkr__now_ns() / 1000) {
      wtimer_t *t = timers;
      timers = t->next;
      pthread_mutex_unlock(&wmu);
      fire(t, 1);
      pthread_mutex_lock(&wmu);
      continue;
    }
    /* Never sleep longer than IDLE_WAKE_MS: a timer due later than our wake-up
     * then needs no signal (see zkr__timer_at), which keeps the common case, a
     * deadline that will be cancelled, free of context switches. */
    wake_at = zkr__now_ns() / 1000 + IDLE_WAKE_MS * 1000;
    if (timers && timers->due_us < wake_at)
      wake_at = timers->due_us;
    {
      struct timespec ts = {.tv_sec = wake_at / 1000000,
                            .tv_nsec = (long)(wake_at % 1000000) * 1000};
      pthread_cond_timedwait(&wcv, &wmu, &ts);
    }
    wake_at = 0;
  }
  /* Stopping: nothing holds us, so no timer should be left; any that is
   * still here runs as cancelled so that its owner can let go of memory. */
  while (timers) {
    wtimer_t *t = timers;
    timers = t->next;
    pthread_mutex_unlock(&wmu);
    fire(t, 0);
    pthread_mutex_lock(&wmu);
  }
  pthread_mutex_unlock(&wmu);
  return NULL;
}

/* With wmu held: make sure a worker is running to take new work. */
static int ensure_running(void) {
  pthread_once(&wonce, init_cv);
  if (running && pthread_equal(wthread, pthread_self()))
    return 0;
  while (running && stopping) /* a stop is in progress: let it finish */
    pthread_cond_wait(&wcv, &wmu);
  if (running)
    return 0;
  if (pthread_create(&wthread, NULL, worker_main, NULL) != 0)
    return ZKR_ESYSTEM;
  running = 1;
  return 0;
}

int zkr__worker_timer_at(int64_t due_us, zkr__timer_run_fn run, void *owner,
                         zkr__timer_fn fn, void *ctx, uint64_t *id_out) {
  wtimer_t *t = calloc(1, sizeof(*t)), **pp;
  int rc;

  if (!t)
    return ZKR_ENOMEM;
  pthread_mutex_lock(&wmu);
  if ((rc = ensure_running()) != 0) {
    pthread_mutex_unlock(&wmu);
    free(t);
    return rc;
  }
  t->id = next_id++;
  t->due_us = due_us;
  t->run = run;
  t->owner = owner;
  t->fn = fn;
  t->ctx = ctx;
  for (pp = &timers; *pp && (*pp)->due_us <= t->due_us; pp = &(*pp)->next)
    ;
  t->next = *pp;
  *pp = t;
  if (id_out)
    *id_out = t->id;
  /* Wake the worker only if it would sleep past the new timer: most timers are
   * deadlines that get cancelled long before they are due, and a wake-up per
   * acquire costs a context switch on the hot path. */
  if (t->due_us < wake_at)
    pthread_cond_broadcast(&wcv);
  pthread_mutex_unlock(&wmu);
  return 0;
}

int zkr__worker_timer_cancel(uint64_t id, void **owner_out) {
  wtimer_t *t = NULL, **pp;

  pthread_mutex_lock(&wmu);
  for (pp = &timers; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      t = *pp;
      *pp = t->next;
      break;
    }
  }
  pthread_mutex_unlock(&wmu);
  if (!t)
    return 0;
  if (owner_out)
    *owner_out = t->owner;
  free(t);
  return 1;
}

void zkr__worker_cancel_owner(void *owner) {
  wtimer_t *mine = NULL, **pp, *t;

  pthread_mutex_lock(&wmu);
  for (pp = &timers; *pp;) {
    t = *pp;
    if (t->owner == owner) {
      *pp = t->next;
      t->next = mine;
      mine = t;
    } else {
      pp = &t->next;
    }
  }
  pthread_mutex_unlock(&wmu);
  while ((t = mine)) {
    mine = t->next;
    fire(t, 0);
  }
}

void zkr__worker_hold(void) {
  pthread_mutex_lock(&wmu);
  holds++;
  pthread_mutex_unlock(&wmu);
}

int zkr__worker_release(void) {
  int left;
  pthread_mutex_lock(&wmu);
  left = --holds;
  pthread_mutex_unlock(&wmu);
  return left;
}

int zkr__worker_post(void (*fn)(void *), void *arg) {
  job_t *j = calloc(1, sizeof(*j));
  int rc;

  if (!j)
    return ZKR_ENOMEM;
  j->fn = fn;
  j->arg = arg;
  pthread_mutex_lock(&wmu);
  if ((rc = ensure_running()) != 0) {
    pthread_mutex_unlock(&wmu);
    free(j);
    return rc;
  }
  if (jobs_tail)
    jobs_tail->next = j;
  else
    jobs_head = j;
  jobs_tail = j;
  pthread_cond_broadcast(&wcv);
  pthread_mutex_unlock(&wmu);
  return 0;
}

void zkr__worker_stop(void) {
  pthread_t t;

  pthread_mutex_lock(&wmu);
  if (!running || stopping || pthread_equal(wthread, pthread_self())) {
    pthread_mutex_unlock(&wmu);
    return;
  }
  stopping = 1;
  t = wthread;
  pthread_cond_broadcast(&wcv);
  pthread_mutex_unlock(&wmu);
  pthread_join(t, NULL);
  pthread_mutex_lock(&wmu);
  running = 0;
  stopping = 0;
  pthread_cond_broadcast(&wcv);
  pthread_mutex_unlock(&wmu);
}
