/* SPDX-License-Identifier: Apache-2.0 */
/* Monotonic time and the waiter that turns an async call into a sync one. */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

int64_t zkr__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t zkr__now_ms(void) {
  return zkr__now_ns() / 1000000;
}

int64_t zkr__deadline(int timeout_ms) {
  return timeout_ms < 0 ? -1 : zkr__now_ms() + timeout_ms;
}

int zkr__waiter_init(zkr__waiter_t *w) {
  pthread_condattr_t ca;
  w->done = 0;
  w->rc = 0;
  if (pthread_condattr_init(&ca) != 0)
    return ZKR_ENOMEM;
  /* Deadlines are CLOCK_MONOTONIC so wall-clock jumps cannot stretch a wait. */
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_cond_init(&w->cv, &ca) != 0) {
    pthread_condattr_destroy(&ca);
    return ZKR_ENOMEM;
  }
  pthread_condattr_destroy(&ca);
  if (pthread_mutex_init(&w->mu, NULL) != 0) {
    pthread_cond_destroy(&w->cv);
    return ZKR_ENOMEM;
  }
  return 0;
}

void zkr__waiter_destroy(zkr__waiter_t *w) {
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

void zkr__waiter_signal(zkr__waiter_t *w, int rc) {
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

int zkr__waiter_wait(zkr__waiter_t *w, int64_t deadline_ms) {
  int rc;
  pthread_mutex_lock(&w->mu);
  while (!w->done) {
    if (deadline_ms < 0) {
      pthread_cond_wait(&w->cv, &w->mu);
    } else {
      struct timespec ts = {.tv_sec = deadline_ms / 1000,
                            .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
      if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT && !w->done) {
        pthread_mutex_unlock(&w->mu);
        return ZKR_ETIMEDOUT;
      }
    }
  }
  rc = w->rc;
  pthread_mutex_unlock(&w->mu);
  return rc;
}
