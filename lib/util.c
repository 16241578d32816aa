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

int zkr__cond_wait_flag(pthread_cond_t *cv, pthread_mutex_t *mu, const int *flag,
                        int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  if (timeout_ms > 0) {
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
  }
  while (!*flag) {
    if (timeout_ms < 0)
      pthread_cond_wait(cv, mu);
    else if (timeout_ms == 0 || pthread_cond_timedwait(cv, mu, &until) == ETIMEDOUT)
      return *flag ? 0 : ZKR_ETIMEDOUT;
  }
  return 0;
}

/*
 * The waiter is a semaphore, not a mutex and condition variable: the signalling
 * thread posts once and never touches the waiter again, so the waiting thread
 * wakes with one futex call and does not then block on a mutex the signaller
 * still holds. glibc's sem_post does not touch the semaphore after the post
 * that a sem_wait can return on, so the waiter may live on the waiting thread's
 * stack and be destroyed as soon as the wait returns.
 */
int zkr__waiter_init(zkr__waiter_t *w) {
  w->rc = 0;
  return sem_init(&w->sem, 0, 0) == 0 ? 0 : ZKR_ENOMEM;
}

void zkr__waiter_destroy(zkr__waiter_t *w) {
  sem_destroy(&w->sem);
}

void zkr__waiter_signal(zkr__waiter_t *w, int rc) {
  w->rc = rc; /* published by sem_post, which has release semantics */
  sem_post(&w->sem);
}

int zkr__waiter_wait(zkr__waiter_t *w) {
  while (sem_wait(&w->sem) != 0) {
    if (errno != EINTR)
      abort(); /* only EINVAL, a corrupt waiter */
  }
  return w->rc;
}
