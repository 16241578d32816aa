/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_loop - a lock and an election driven from an application's own event
 * loop (epoll), the way a single-threaded service would use zkrecipes.
 *
 *   event_loop [HOSTS]      HOSTS defaults to $ZKR_HOSTS, then 127.0.0.1:2181
 *
 * zkrecipes calls back on its own threads ("callback context"). A callback here
 * does nothing but hand the event over: it appends it to a small mutex-guarded
 * queue and writes to an eventfd that the loop polls. All the application's
 * work (what to do once the lock is granted, once leadership comes) runs in the
 * loop's thread, with the application's own state, never in a callback. With
 * libuv the hand-off is uv_async_send() instead of the eventfd; with glib,
 * g_main_context_invoke().
 *
 * The program joins an election and asks for a lock, both async; when it leads
 * it takes note of the epoch, when it holds the lock it does a piece of work
 * fenced by the token, releases, and once both happened it resigns and exits.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zkrecipes.h>

/* ---- the hand-off: callback context -> the loop's thread ---- */

enum { EV_LOCK_GRANTED, EV_LOCK_FAILED, EV_RELEASED, EV_LEADER, EV_NOT_LEADER, EV_SUSPECT };

typedef struct event {
  struct event *next;
  int kind;
  int rc;
  int64_t epoch;
} event_t;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static event_t *q_head, **q_tail = &q_head;
static int q_fd = -1; /* eventfd: readable while events are queued */

/* Callback context: no blocking, no application state; queue and wake. */
static void post(int kind, int rc, int64_t epoch) {
  event_t *e = calloc(1, sizeof(*e));
  uint64_t one = 1;
  if (!e)
    abort(); /* a real service would count the loss and carry on */
  e->kind = kind;
  e->rc = rc;
  e->epoch = epoch;
  pthread_mutex_lock(&q_mu);
  *q_tail = e;
  q_tail = &e->next;
  pthread_mutex_unlock(&q_mu);
  if (write(q_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
    abort();
}

/* The loop's thread: take everything queued so far, in order. */
static event_t *take_all(void) {
  event_t *all;
  uint64_t n;
  if (read(q_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
    perror("event_loop: read eventfd");
  pthread_mutex_lock(&q_mu);
  all = q_head;
  q_head = NULL;
  q_tail = &q_head;
  pthread_mutex_unlock(&q_mu);
  return all;
}

/* ---- callbacks (callback context) ---- */

static void on_acquired(zkr_lock_t *l, int rc, void *arg) {
  (void)l, (void)arg;
  post(rc == 0 ? EV_LOCK_GRANTED : EV_LOCK_FAILED, rc, 0);
}

static void on_released(zkr_lock_t *l, int rc, void *arg) {
  (void)l, (void)arg;
  post(EV_RELEASED, rc, 0);
}

static void on_election(zkr_election_t *e, int event, int64_t epoch, void *arg) {
  (void)e, (void)arg;
  if (event == ZKR_ELECTION_LEADER)
    post(EV_LEADER, 0, epoch);
  else if (event == ZKR_ELECTION_NOT_LEADER || event == ZKR_ELECTION_LOST)
    post(EV_NOT_LEADER, 0, epoch);
  else if (event == ZKR_ELECTION_SUSPECT)
    post(EV_SUSPECT, 0, epoch);
}

/* ---- the application, in the loop's thread ---- */

int main(int argc, char **argv) {
  const char *hosts = argc > 1 ? argv[1] : getenv("ZKR_HOSTS");
  zkr_session_t *s = NULL;
  zkr_lock_t *lock = NULL;
  zkr_election_t *el = NULL;
  char lpath[96], epath[96];
  int ep = -1, rc, led = 0, worked = 0, resigned = 0, failed = 0;
  struct epoll_event ev = {.events = EPOLLIN};

  if (!hosts)
    hosts = "127.0.0.1:2181";
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(lpath, sizeof(lpath), "/zkrecipes-example-%ld/lock", (long)getpid());
  snprintf(epath, sizeof(epath), "/zkrecipes-example-%ld/leader", (long)getpid());

  if ((q_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
      (ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, q_fd, &ev) < 0) {
    perror("event_loop: eventfd/epoll");
    return 1;
  }
  if ((rc = zkr_session_open(hosts, 10000, 10000, &s)) != 0 ||
      (rc = zkr_lock_new(s, lpath, &lock)) != 0 ||
      (rc = zkr_election_new(s, epath, "loop-1", 6, &el)) != 0 ||
      (rc = zkr_election_set_listener(el, on_election, NULL)) != 0 ||
      (rc = zkr_election_start(el)) != 0 ||
      (rc = zkr_lock_acquire_async(lock, 10000, on_acquired, NULL)) != 0) {
    fprintf(stderr, "event_loop: %s: %s\n", hosts, zkr_strerror(rc));
    failed = 1;
    goto out;
  }
  printf("waiting for the lock at %s and the leadership of %s\n", lpath, epath);

  while (!(worked && resigned) && !failed) {
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, 15000); /* the application's other fds go here too */
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fprintf(stderr, "event_loop: nothing happened for 15 s\n");
      failed = 1;
      break;
    }
    for (event_t *e = take_all(), *next; e; e = next) {
      next = e->next;
      switch (e->kind) {
      case EV_LOCK_GRANTED: {
        zkr_lock_token_t tok;
        zkr_lock_token(lock, &tok);
        printf("lock granted: fencing token 0x%" PRIx64 "; working in the loop's thread\n",
               (uint64_t)tok.czxid);
        if ((rc = zkr_lock_release_async(lock, 5000, on_released, NULL)) != 0) {
          fprintf(stderr, "event_loop: release: %s\n", zkr_strerror(rc));
          failed = 1;
        }
        break;
      }
      case EV_LOCK_FAILED:
        fprintf(stderr, "event_loop: lock: %s\n", zkr_strerror(e->rc));
        failed = 1;
        break;
      case EV_RELEASED:
        printf("lock released (%s)\n", e->rc == 0 ? "ok" : zkr_strerror(e->rc));
        worked = 1;
        break;
      case EV_LEADER:
        printf("leading: epoch 0x%" PRIx64 "\n", (uint64_t)e->epoch);
        led = 1;
        break;
      case EV_SUSPECT:
        printf("connection lost: not acting as leader until it is back\n");
        break;
      case EV_NOT_LEADER:
        printf("not leading any more\n");
        resigned = led;
        break;
      }
      free(e);
    }
    if (worked && led && !resigned && zkr_election_is_leader(el))
      zkr_election_resign(el, 0); /* NOT_LEADER comes through the queue */
  }
out:
  zkr_election_free(el);
  zkr_lock_free(lock);
  if (s) {
    /* The example's parents, made as containers, go once empty; nothing else
     * of ours is left behind. */
    zkr_session_free(s);
  }
  for (event_t *e = take_all(), *next; e; e = next) {
    next = e->next;
    free(e);
  }
  if (ep >= 0)
    close(ep);
  close(q_fd);
  if (!failed)
    printf("done: the lock was held and released, the leadership held and resigned\n");
  return failed;
}
