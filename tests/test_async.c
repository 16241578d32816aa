/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one async contract, against a real server: every operation's async form
 * takes the timeout of its sync form; -1 waits as long as it takes, 0 makes one
 * attempt without waiting on others, > 0 ends at the deadline. The callback
 * runs exactly once, never inside the call that started it. Deadlines are
 * forced by pausing the standalone server (SIGSTOP), so the server is there but
 * silent.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "recipes_internal.h"
#include "suites.h"
#include "testutil.h"

/* One async outcome. */
typedef struct outcome {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int calls;
  int rc;
  int64_t value;
  int inside; /* ran inside the call that started it */
  pthread_t caller;
  _Atomic int in_call;
  zkr_contender_t *list;
  int count;
} outcome_t;

static void oc_init(outcome_t *o) {
  memset(o, 0, sizeof(*o));
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  o->rc = 12345;
}

static void oc_destroy(outcome_t *o) {
  zkr_contenders_free(o->list, o->count);
  pthread_mutex_destroy(&o->mu);
  pthread_cond_destroy(&o->cv);
}

/* Around an async call: remember who made it, to catch a callback inside it. */
static void oc_call_begin(outcome_t *o) {
  o->caller = pthread_self();
  atomic_store(&o->in_call, 1);
}

static void oc_call_end(outcome_t *o) {
  atomic_store(&o->in_call, 0);
}

static void oc_done(outcome_t *o, int rc, int64_t value) {
  pthread_mutex_lock(&o->mu);
  if (atomic_load(&o->in_call) && pthread_equal(o->caller, pthread_self()))
    o->inside = 1;
  o->calls++;
  o->rc = rc;
  o->value = value;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

/* Wait (bounded) for the callback; returns its rc, or 12345 if it did not come.
 * *ms is how long it took from t0. */
static int oc_wait(outcome_t *o, int timeout_ms, int64_t t0, int64_t *ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int rc;
  pthread_mutex_lock(&o->mu);
  while (o->calls == 0 && tu_now_ms() < deadline) {
    pthread_mutex_unlock(&o->mu);
    usleep(1000);
    pthread_mutex_lock(&o->mu);
  }
  rc = o->calls ? o->rc : 12345;
  pthread_mutex_unlock(&o->mu);
  if (ms)
    *ms = tu_now_ms() - t0;
  return rc;
}

static int oc_calls(outcome_t *o) {
  int n;
  pthread_mutex_lock(&o->mu);
  n = o->calls;
  pthread_mutex_unlock(&o->mu);
  return n;
}

static void lock_cb(zkr_lock_t *l, int rc, void *arg) {
  (void)l;
  oc_done(arg, rc, 0);
}

static void counter_cb(zkr_counter_t *c, int rc, int64_t value, void *arg) {
  (void)c;
  oc_done(arg, rc, value);
}

static void election_cb(zkr_election_t *e, int rc, int64_t epoch, void *arg) {
  (void)e;
  oc_done(arg, rc, epoch);
}

static void contenders_cb(int rc, zkr_contender_t *list, int count, void *arg) {
  outcome_t *o = arg;
  pthread_mutex_lock(&o->mu);
  o->list = list;
  o->count = count;
  pthread_mutex_unlock(&o->mu);
  oc_done(o, rc, count);
}

/* Run `call` (an async call taking &o) and check it returned 0 and did not call
 * back inside. */
#define ASYNC(o, call)                                                                   \
  do {                                                                                   \
    oc_init(&(o));                                                                       \
    oc_call_begin(&(o));                                                                 \
    ck_assert_int_eq((call), 0);                                                         \
    oc_call_end(&(o));                                                                   \
  } while (0)

/* Every outcome: exactly one call, none inside the call that started it. */
static void oc_check_once(outcome_t *o) {
  usleep(100 * 1000); /* a second callback would come within this time */
  ck_assert_int_eq(oc_calls(o), 1);
  ck_assert_int_eq(o->inside, 0);
}

static const char *pause_dir(void) {
  return tu_zkdir("standalone");
}

static void pause_server(const char *dir) {
  ck_assert_int_eq(tu_zkctl(NULL, 0, "pause-member %s 1", dir), 0);
}

static void resume_server(const char *dir) {
  ck_assert_int_eq(tu_zkctl(NULL, 0, "resume-member %s 1", dir), 0);
}

/* ---- lock: acquire and release ---- */

START_TEST(lock_async_timeouts) {
  const char *dir = pause_dir();
  char root[64], path[128];
  zkr_session_t *a, *b;
  zkr_lock_t *la, *lb;
  zhandle_t *zh;
  outcome_t o;
  int64_t t0, ms;

  if (!dir)
    TU_SKIP("the test server is not ours to pause");
  a = tu_open(tu_hosts(), 20000);
  b = tu_open(tu_hosts(), 20000);
  zh = zkr_session_zhandle(a);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/lock", root);
  ck_assert_int_eq(zkr_lock_new(a, path, &la), 0);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);

  /* acquire: 0 on a free lock holds; 0 behind a holder ends at once. */
  ASYNC(o, zkr_lock_acquire_async(la, 0, lock_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  oc_check_once(&o);
  oc_destroy(&o);
  t0 = tu_now_ms();
  ASYNC(o, zkr_lock_acquire_async(lb, 0, lock_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms < 2000, "acquire_async(0) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  tu_wait_children(zh, path, 1, 5000);
  /* > 0 behind a holder: at the deadline. */
  t0 = tu_now_ms();
  ASYNC(o, zkr_lock_acquire_async(lb, 300, lock_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms >= 295 && ms < 2000, "acquire_async(300) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  tu_wait_children(zh, path, 1, 5000);

  /* release: -1 calls back once the delete is acknowledged; then -1 acquire is
   * granted behind it. */
  {
    outcome_t g;
    ASYNC(g, zkr_lock_acquire_async(lb, -1, lock_cb, &g));
    tu_wait_children(zh, path, 2, 5000);
    ASYNC(o, zkr_lock_release_async(la, -1, lock_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    ck_assert(!zkr_lock_is_held(la));
    oc_check_once(&o);
    oc_destroy(&o);
    ck_assert_int_eq(oc_wait(&g, 10000, 0, NULL), 0);
    ck_assert(zkr_lock_is_held(lb));
    oc_check_once(&g);
    oc_destroy(&g);
  }
  /* release 0: once the delete is on its way (calls back, never inside). */
  ASYNC(o, zkr_lock_release_async(lb, 0, lock_cb, &o));
  ck_assert(!zkr_lock_is_held(lb));
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  oc_check_once(&o);
  oc_destroy(&o);
  tu_wait_children(zh, path, 0, 5000);

  /* release > 0 with the server silent: ZKR_ETIMEDOUT at the deadline, and the
   * delete goes on: the node is gone once the server is back. */
  ck_assert_int_eq(zkr_lock_acquire(la, 10000), 0);
  pause_server(dir);
  t0 = tu_now_ms();
  ASYNC(o, zkr_lock_release_async(la, 400, lock_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  resume_server(dir);
  ck_assert_msg(ms >= 390 && ms < 3000, "release_async(400) took %lld ms", (long long)ms);
  ck_assert(!zkr_lock_is_held(la));
  oc_check_once(&o);
  oc_destroy(&o);
  tu_wait_children(zh, path, 0, 10000);

  zkr_lock_free(la);
  zkr_lock_free(lb);
  tu_rmr(zh, root);
  zkr_session_free(a);
  zkr_session_free(b);
}
END_TEST

/* ---- counter: get, add, set, cas ---- */

START_TEST(counter_async_timeouts) {
  const char *dir = pause_dir();
  char root[64], path[128];
  zkr_session_t *s;
  zkr_counter_t *c;
  outcome_t o;
  int64_t t0, ms;

  if (!dir)
    TU_SKIP("the test server is not ours to pause");
  s = tu_open(tu_hosts(), 20000);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/counter", root);
  ck_assert_int_eq(zkr_counter_new(s, path, ZKR_COUNTER_INT64, &c), 0);

  /* -1 and 0, connected and uncontended: each completes. */
  for (int t = -1; t <= 0; t++) {
    ASYNC(o, zkr_counter_set_async(c, 10, t, counter_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    oc_check_once(&o);
    oc_destroy(&o);
    ASYNC(o, zkr_counter_add_async(c, 5, t, counter_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    ck_assert_int_eq(o.value, 15);
    oc_check_once(&o);
    oc_destroy(&o);
    ASYNC(o, zkr_counter_cas_async(c, 15, 20, t, counter_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    ck_assert_int_eq(o.value, 20);
    oc_check_once(&o);
    oc_destroy(&o);
    ASYNC(o, zkr_counter_cas_async(c, 15, 30, t, counter_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), ZKR_EMISMATCH);
    ck_assert_int_eq(o.value, 20);
    oc_check_once(&o);
    oc_destroy(&o);
    ASYNC(o, zkr_counter_get_async(c, t, counter_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    ck_assert_int_eq(o.value, 20);
    oc_check_once(&o);
    oc_destroy(&o);
  }

  /* > 0 with the server silent: a read ends with ZKR_ETIMEDOUT at the deadline,
   * a write in flight with ZKR_EUNKNOWN. */
  pause_server(dir);
  t0 = tu_now_ms();
  ASYNC(o, zkr_counter_get_async(c, 400, counter_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms >= 390 && ms < 3000, "get_async(400) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  t0 = tu_now_ms();
  ASYNC(o, zkr_counter_add_async(c, 1, 400, counter_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_EUNKNOWN);
  ck_assert_msg(ms >= 390 && ms < 3000, "add_async(400) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  resume_server(dir);
  /* ... and the counter is still usable, at 20 or 21 (the unknown write). */
  ASYNC(o, zkr_counter_get_async(c, 10000, counter_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 15000, 0, NULL), 0);
  ck_assert_msg(o.value == 20 || o.value == 21, "value %lld", (long long)o.value);
  oc_destroy(&o);

  zkr_counter_free(c);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
}
END_TEST

/* ---- contenders ---- */

static void connect_cb(zkr_session_t *s, int rc, void *arg) {
  (void)s, (void)rc, (void)arg; /* the connect never succeeds: nothing to do */
}

START_TEST(contenders_async_timeouts) {
  const char *dir = pause_dir();
  char root[64], path[128];
  zkr_session_t *s, *idle;
  zkr_lock_t *l;
  outcome_t o;
  int64_t t0, ms;

  if (!dir)
    TU_SKIP("the test server is not ours to pause");
  s = tu_open(tu_hosts(), 20000);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/lock", root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);

  /* -1, 0 and > 0, connected: the holder is listed. */
  for (int i = 0; i < 3; i++) {
    static const int timeouts[3] = {-1, 0, 5000};
    ASYNC(o, zkr_contenders_list_async(s, path, timeouts[i], contenders_cb, &o));
    ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
    ck_assert_int_eq(o.count, 1);
    oc_check_once(&o);
    oc_destroy(&o);
  }
  /* 0 on a session that is not connected: ZKR_ETIMEDOUT, no waiting. */
  ck_assert_int_eq(zkr_session_new(&idle), 0);
  ck_assert_int_eq(
      zkr_session_connect_async(idle, "127.0.0.1:1", 60000, connect_cb, NULL), 0);
  t0 = tu_now_ms();
  ASYNC(o, zkr_contenders_list_async(idle, path, 0, contenders_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms < 1000, "list_async(0) not connected took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  zkr_session_free(idle);
  /* > 0 with the server silent: at the deadline. */
  pause_server(dir);
  t0 = tu_now_ms();
  ASYNC(o, zkr_contenders_list_async(s, path, 400, contenders_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  resume_server(dir);
  ck_assert_msg(ms >= 390 && ms < 3000, "list_async(400) took %lld ms", (long long)ms);
  ck_assert_ptr_null(o.list);
  oc_check_once(&o);
  oc_destroy(&o);

  zkr_lock_free(l);
  tu_wait_children(zkr_session_zhandle(s), path, 0, 10000);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
}
END_TEST

/* ---- election await ---- */

START_TEST(election_await_async_timeouts) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 20000), *t = tu_open(tu_hosts(), 20000);
  zkr_election_t *a, *b;
  outcome_t o;
  int64_t t0, ms, epoch;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  ck_assert_int_eq(zkr_election_new(s, path, "a", 1, &a), 0);
  ck_assert_int_eq(zkr_election_new(t, path, "b", 1, &b), 0);
  ck_assert_int_eq(zkr_election_start(a), 0);
  /* -1 on the lone candidate: leads. */
  ASYNC(o, zkr_election_await_async(a, -1, election_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  ck_assert_int_eq(zkr_election_epoch(a, &epoch), 0);
  ck_assert_int_eq(o.value, epoch);
  oc_check_once(&o);
  oc_destroy(&o);
  /* 0 when leading already: 0, not inside the call. */
  ASYNC(o, zkr_election_await_async(a, 0, election_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  oc_check_once(&o);
  oc_destroy(&o);
  /* Behind the leader: 0 ends once the place is known, > 0 at the deadline. */
  ck_assert_int_eq(zkr_election_start(b), 0);
  t0 = tu_now_ms();
  ASYNC(o, zkr_election_await_async(b, 0, election_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms < 2000, "await_async(0) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  t0 = tu_now_ms();
  ASYNC(o, zkr_election_await_async(b, 300, election_cb, &o));
  ck_assert_int_eq(oc_wait(&o, 10000, t0, &ms), ZKR_ETIMEDOUT);
  ck_assert_msg(ms >= 295 && ms < 2000, "await_async(300) took %lld ms", (long long)ms);
  oc_check_once(&o);
  oc_destroy(&o);
  /* -1 behind the leader: 0 with the new epoch once the leader resigns. */
  ASYNC(o, zkr_election_await_async(b, -1, election_cb, &o));
  ck_assert_int_eq(zkr_election_resign(a, 0), 0);
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  ck_assert_int_eq(zkr_election_epoch(b, &epoch), 0);
  ck_assert_int_eq(o.value, epoch);
  oc_check_once(&o);
  oc_destroy(&o);

  zkr_election_free(a);
  zkr_election_free(b);
  tu_wait_children(zkr_session_zhandle(s), path, 0, 5000);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* 0.1.0: after zkr_election_resign(e, 1) the sync await returned ZKR_ECANCELED
 * while pending async awaits stayed and later completed with 0. Both are the
 * same code path now, and both end with ZKR_ECANCELED. */
typedef struct sync_await {
  zkr_election_t *e;
  int rc;
} sync_await_t;

static void *await_thread(void *arg) {
  sync_await_t *w = arg;
  w->rc = zkr_election_await(w->e, 20000, NULL);
  return NULL;
}

START_TEST(resign_with_rejoin_cancels_every_await) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 20000), *t = tu_open(tu_hosts(), 20000);
  zkr_election_t *a, *b;
  outcome_t o;
  sync_await_t w;
  pthread_t th;
  int64_t deadline;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  ck_assert_int_eq(zkr_election_new(s, path, "a", 1, &a), 0);
  ck_assert_int_eq(zkr_election_new(t, path, "b", 1, &b), 0);
  ck_assert_int_eq(zkr_election_start(a), 0);
  ck_assert_int_eq(zkr_election_await(a, 10000, NULL), 0);
  ck_assert_int_eq(zkr_election_start(b), 0);
  /* b waits behind a: one async and one sync await pending. */
  ASYNC(o, zkr_election_await_async(b, -1, election_cb, &o));
  w.e = b;
  w.rc = 12345;
  pthread_create(&th, NULL, await_thread, &w);
  deadline = tu_now_ms() + 10000;
  while (zkr__election_awaiting(b) < 2 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(zkr__election_awaiting(b), 2);
  ck_assert_int_eq(zkr_election_resign(b, 1), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(w.rc, ZKR_ECANCELED);
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), ZKR_ECANCELED);
  oc_check_once(&o);
  oc_destroy(&o);
  /* Rejoined: a new await waits for the new place, and leads after a goes. */
  ASYNC(o, zkr_election_await_async(b, -1, election_cb, &o));
  ck_assert_int_eq(zkr_election_resign(a, 0), 0);
  ck_assert_int_eq(oc_wait(&o, 10000, 0, NULL), 0);
  oc_check_once(&o);
  oc_destroy(&o);

  zkr_election_free(a);
  zkr_election_free(b);
  tu_wait_children(zkr_session_zhandle(s), path, 0, 5000);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

Suite *async_suite(void) {
  Suite *s = suite_create("async");
  TCase *tc = tcase_create("async");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, lock_async_timeouts);
  tcase_add_test(tc, counter_async_timeouts);
  tcase_add_test(tc, contenders_async_timeouts);
  tcase_add_test(tc, election_await_async_timeouts);
  tcase_add_test(tc, resign_with_rejoin_cancels_every_await);
  suite_add_tcase(s, tc);
  return s;
}
