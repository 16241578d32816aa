/* SPDX-License-Identifier: Apache-2.0 */
/* The node cache against the real test servers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "suites.h"
#include "testutil.h"

/* ---- an event log ---- */

#define MAX_EV 64
typedef struct evlog {
  pthread_mutex_t mu;
  int n;
  int type[MAX_EV];
  int exists[MAX_EV];
  int gap[MAX_EV];
  char data[MAX_EV][32];
  int64_t czxid[MAX_EV], mzxid[MAX_EV];
  int after_free; /* events that came after zkr_node_cache_free returned */
  int freed;
} evlog_t;

#define EVLOG_INIT                                                                       \
  { .mu = PTHREAD_MUTEX_INITIALIZER }

static void on_event(zkr_node_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  evlog_t *l = arg;
  (void)c;
  pthread_mutex_lock(&l->mu);
  if (l->freed)
    l->after_free++;
  if (l->n < MAX_EV) {
    int i = l->n++;
    l->type[i] = ev->type;
    l->exists[i] = ev->exists;
    l->gap[i] = ev->gap;
    snprintf(l->data[i], sizeof(l->data[i]), "%.*s", ev->len > 0 ? ev->len : 0,
             ev->data ? ev->data : "");
    l->czxid[i] = ev->stat.czxid;
    l->mzxid[i] = ev->stat.mzxid;
  }
  pthread_mutex_unlock(&l->mu);
}

/* Wait until the log holds n events; returns how many it holds. */
static int ev_wait(evlog_t *l, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int have;
  for (;;) {
    pthread_mutex_lock(&l->mu);
    have = l->n;
    pthread_mutex_unlock(&l->mu);
    if (have >= n || tu_now_ms() >= deadline)
      return have;
    usleep(1000);
  }
}

static void ev_dump(evlog_t *l) {
  for (int i = 0; i < l->n; i++)
    fprintf(stderr, "  event %d: %s exists %d gap %d data '%s' czxid 0x%llx\n", i,
            zkr_cache_event_name(l->type[i]), l->exists[i], l->gap[i], l->data[i],
            (unsigned long long)l->czxid[i]);
}

/* Event i is of type with data (NULL: absent). */
static void ev_check(evlog_t *l, int i, int type, const char *data, int gap) {
  pthread_mutex_lock(&l->mu);
  if (i >= l->n || l->type[i] != type || l->exists[i] != (data != NULL) ||
      (data && strcmp(l->data[i], data) != 0) || l->gap[i] != gap)
    ev_dump(l);
  ck_assert_int_lt(i, l->n);
  ck_assert_str_eq(zkr_cache_event_name(l->type[i]), zkr_cache_event_name(type));
  ck_assert_int_eq(l->exists[i], data != NULL);
  if (data)
    ck_assert_str_eq(l->data[i], data);
  ck_assert_int_eq(l->gap[i], gap);
  pthread_mutex_unlock(&l->mu);
}

static void set(zhandle_t *zh, const char *path, const char *v) {
  ck_assert_int_eq(zoo_set(zh, path, v, (int)strlen(v), -1), ZOK);
}

static void make(zhandle_t *zh, const char *path, const char *v) {
  ck_assert_int_eq(zoo_create(zh, path, v, (int)strlen(v), &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                   ZOK);
}

/* ---- tests ---- */

/* Absent, created, changed, deleted, created again: each once, in order, with
 * the data of the time; the cache never creates the node or its parents. */
START_TEST(events_in_order_and_nothing_created) {
  char root[64], parent[96], path[128], *data;
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_node_cache_t *c;
  evlog_t l = EVLOG_INIT;
  struct Stat st;
  int len;

  tu_root(root, sizeof(root));
  snprintf(parent, sizeof(parent), "%s/config", root);
  snprintf(path, sizeof(path), "%s/app", parent);
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_get(c, &data, &len, &st), ZKR_ENOTREADY);
  ck_assert_int_eq(zkr_node_cache_set_listener(c, on_event, &l), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), ZKR_EBUSY);
  ck_assert_int_eq(ev_wait(&l, 1, 5000), 1);
  ev_check(&l, 0, ZKR_CACHE_INITIALIZED, NULL, 0);
  ck_assert_int_eq(zkr_node_cache_get(c, &data, &len, &st), ZNONODE);
  ck_assert_ptr_null(data);
  ck_assert_int_eq(len, -1);
  /* Read-only: neither the node nor its parents were made. */
  ck_assert_int_eq(zoo_exists(zh, root, 0, NULL), ZNONODE);

  make(zh, root, "");
  make(zh, parent, "");
  make(zh, path, "v1");
  ck_assert_int_eq(ev_wait(&l, 2, 5000), 2);
  ev_check(&l, 1, ZKR_CACHE_CREATED, "v1", 0);
  set(zh, path, "v2");
  ck_assert_int_eq(ev_wait(&l, 3, 5000), 3);
  ev_check(&l, 2, ZKR_CACHE_CHANGED, "v2", 0);
  ck_assert_int_eq(zkr_node_cache_get(c, &data, &len, &st), 0);
  ck_assert_str_eq(data, "v2");
  ck_assert_int_eq(len, 2);
  ck_assert_int_eq(st.version, 1);
  ck_assert_int_eq(st.mzxid, l.mzxid[2]);
  free(data);
  ck_assert_int_eq(zoo_delete(zh, path, -1), ZOK);
  ck_assert_int_eq(ev_wait(&l, 4, 5000), 4);
  ev_check(&l, 3, ZKR_CACHE_DELETED, NULL, 0);
  make(zh, path, "v3");
  ck_assert_int_eq(ev_wait(&l, 5, 5000), 5);
  ev_check(&l, 4, ZKR_CACHE_CREATED, "v3", 0);
  ck_assert_int_gt(l.czxid[4], l.czxid[1]);
  /* A node with no data. */
  ck_assert_int_eq(zoo_set(zh, path, NULL, -1, -1), ZOK);
  ck_assert_int_eq(ev_wait(&l, 6, 5000), 6);
  ck_assert_int_eq(zkr_node_cache_get(c, &data, &len, NULL), 0);
  ck_assert_ptr_null(data);
  ck_assert_int_eq(len, -1);
  zkr_node_cache_free(c);
  ck_assert_int_eq(l.n, 6);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Deleted and created again while the cache's client is cut off from the
 * ensemble: REPLACED (the C client reports it as a mere change). */
START_TEST(replaced_while_disconnected) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble");
  char root[64], path[128], one[64], member[16];
  zkr_session_t *s, *t;
  zhandle_t *zh;
  zkr_node_cache_t *c;
  evlog_t l = EVLOG_INIT;
  tu_rec_t rec;
  int susp;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  /* The cache's session knows one member only: it stays cut off while that
   * member is down. */
  snprintf(one, sizeof(one), "%.*s", (int)strcspn(hosts, ","), hosts);
  ck_assert_int_eq(tu_zkctl(member, sizeof(member), "member-of %s %s", dir, one), 0);
  tu_rec_init(&rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  ck_assert_int_eq(zkr_session_set_timeout(s, 40000), 0); /* outlives a restart */
  ck_assert_int_eq(zkr_session_connect(s, one, 15000), 0);
  t = tu_open(hosts, 10000);
  zh = zkr_session_zhandle(t);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  make(zh, root, "");
  make(zh, path, "old");
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_set_listener(c, on_event, &l), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&l, 1, 10000), 1);
  ev_check(&l, 0, ZKR_CACHE_INITIALIZED, "old", 0);

  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s %s", dir, member), 0);
  susp = tu_rec_wait(&rec, 1, ZKR_SESSION_SUSPENDED, 15000);
  ck_assert_msg(susp > 0, "no SUSPENDED after member %s was killed", member);
  ck_assert_int_eq(zoo_delete(zh, path, -1), ZOK);
  make(zh, path, "new");
  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s %s", dir, member), 0);
  ck_assert_msg(tu_rec_wait(&rec, susp + 1, ZKR_SESSION_RECONNECTED, 40000) > susp,
                "no RECONNECTED after member %s came back", member);
  ck_assert_int_eq(ev_wait(&l, 2, 10000), 2);
  ev_check(&l, 1, ZKR_CACHE_REPLACED, "new", 0);
  ck_assert_int_gt(l.czxid[1], l.czxid[0]);
  zkr_node_cache_free(c);
  ck_assert_int_eq(l.n, 2);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
  tu_rec_destroy(&rec);
}
END_TEST

typedef struct on_lost {
  zhandle_t *zh;
  const char *path;
  int done;
} on_lost_t;

/* On LOST (before the new session is opened): change the node, so that the
 * change certainly falls between the old session's view and the new one's. */
static void change_on_lost(zkr_session_t *s, int event, void *arg) {
  on_lost_t *w = arg;
  (void)s;
  if (event == ZKR_SESSION_LOST && !w->done) {
    w->done = 1;
    zoo_set(w->zh, w->path, "during", 6, -1);
  }
}

/* After an expiry: RESYNC_BEGIN, the difference with gap set, RESYNC_END; then
 * live events again, without gap. */
START_TEST(resync_after_expiry) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_node_cache_t *c;
  evlog_t l = EVLOG_INIT;
  on_lost_t w = {zh, NULL, 0};

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  w.path = path;
  make(zh, root, "");
  make(zh, path, "before");
  ck_assert_int_eq(zkr_session_add_listener(s, change_on_lost, &w, NULL), 0);
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_set_listener(c, on_event, &l), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&l, 1, 5000), 1);
  tu_expire(s, tu_hosts());
  ck_assert_int_eq(ev_wait(&l, 4, 20000), 4);
  ev_check(&l, 0, ZKR_CACHE_INITIALIZED, "before", 0);
  ev_check(&l, 1, ZKR_CACHE_RESYNC_BEGIN, "before", 0); /* the view held then */
  ev_check(&l, 2, ZKR_CACHE_CHANGED, "during", 1);
  ev_check(&l, 3, ZKR_CACHE_RESYNC_END, "during", 0);
  /* Live again on the new session. */
  set(zh, path, "after");
  ck_assert_int_eq(ev_wait(&l, 5, 5000), 5);
  ev_check(&l, 4, ZKR_CACHE_CHANGED, "after", 0);
  zkr_node_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

typedef struct waiter {
  zkr_node_cache_t *c;
  struct Stat known;
  int timeout_ms;
  int rc;
  char *data;
  struct Stat stat;
} waiter_t;

static void *wait_thread(void *arg) {
  waiter_t *w = arg;
  w->rc = zkr_node_cache_wait(w->c, &w->known, w->timeout_ms, &w->data, NULL, &w->stat);
  return NULL;
}

static int in_cb_rc = 99;
static void wait_in_callback(zkr_node_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)ev, (void)arg;
  in_cb_rc = zkr_node_cache_wait(c, NULL, 1000, NULL, NULL, NULL);
}

/* The blocking wait for a reload: returns the new view once it differs, ends
 * at its deadline, refuses in callback context, ends when the cache is freed. */
START_TEST(wait_for_a_change) {
  char root[64], path[128], *data = NULL;
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_node_cache_t *c;
  struct Stat st, zero;
  waiter_t w;
  pthread_t th;
  int64_t t0;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  make(zh, root, "");
  make(zh, path, "v1");
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_wait(c, NULL, 100, NULL, NULL, NULL), ZKR_EBUSY);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(zkr_node_cache_wait(c, NULL, 5000, &data, NULL, &st), 0);
  ck_assert_str_eq(data, "v1");
  free(data);
  /* Unchanged: the deadline ends it, with nothing returned. */
  t0 = tu_now_ms();
  data = (char *)"stale";
  ck_assert_int_eq(zkr_node_cache_wait(c, &st, 200, &data, NULL, NULL), ZKR_ETIMEDOUT);
  ck_assert_int_ge(tu_now_ms() - t0, 190);
  ck_assert_ptr_null(data); /* never a pointer the caller might free twice */
  ck_assert_int_eq(zkr_node_cache_wait(c, &st, 0, NULL, NULL, NULL), ZKR_ETIMEDOUT);
  /* Known as absent (a zeroed stat): it exists, so at once. */
  memset(&zero, 0, sizeof(zero));
  ck_assert_int_eq(zkr_node_cache_wait(c, &zero, 0, NULL, NULL, NULL), 0);

  memset(&w, 0, sizeof(w));
  w.c = c;
  w.known = st;
  w.timeout_ms = 10000;
  ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
  set(zh, path, "v2");
  pthread_join(th, NULL);
  ck_assert_int_eq(w.rc, 0);
  ck_assert_str_eq(w.data, "v2");
  ck_assert_int_gt(w.stat.mzxid, st.mzxid);
  free(w.data);
  /* Deleted: ZNONODE, and waiting on "absent" then sees the new node. */
  st = w.stat;
  w.known = st;
  w.data = NULL;
  ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
  ck_assert_int_eq(zoo_delete(zh, path, -1), ZOK);
  pthread_join(th, NULL);
  ck_assert_int_eq(w.rc, ZNONODE);
  ck_assert_ptr_null(w.data);
  w.known = w.stat; /* zeroed: absent */
  ck_assert_int_eq(w.known.czxid, 0);
  ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
  make(zh, path, "v3");
  pthread_join(th, NULL);
  ck_assert_int_eq(w.rc, 0);
  ck_assert_str_eq(w.data, "v3");
  free(w.data);

  /* In callback context: refused, not a hang. */
  ck_assert_int_eq(zkr_node_cache_set_listener(c, wait_in_callback, NULL), 0);
  set(zh, path, "v4");
  for (int64_t end = tu_now_ms() + 5000; in_cb_rc == 99 && tu_now_ms() < end;)
    usleep(1000);
  ck_assert_int_eq(in_cb_rc, ZKR_EDEADLK);
  ck_assert_int_eq(zkr_node_cache_set_listener(c, NULL, NULL), 0);

  /* Freed while a wait sleeps: it ends with ZKR_ECLOSED. */
  ck_assert_int_eq(zkr_node_cache_get(c, NULL, NULL, &st), 0);
  w.known = st;
  w.timeout_ms = -1;
  w.data = NULL;
  ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
  usleep(100 * 1000); /* let it block (it returns ZKR_ECLOSED either way) */
  zkr_node_cache_free(c);
  pthread_join(th, NULL);
  ck_assert_int_eq(w.rc, ZKR_ECLOSED);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Freed with reads and watches in flight: no event after free returns. */
START_TEST(free_with_work_in_flight) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  evlog_t l = EVLOG_INIT;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  make(zh, root, "");
  make(zh, path, "x");
  for (int i = 0; i < 50; i++) {
    zkr_node_cache_t *c;
    ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
    ck_assert_int_eq(zkr_node_cache_set_listener(c, on_event, &l), 0);
    ck_assert_int_eq(zkr_node_cache_start(c), 0);
    if (i % 2)
      set(zh, path, "y");
    zkr_node_cache_free(c);
  }
  pthread_mutex_lock(&l.mu);
  l.freed = 1;
  pthread_mutex_unlock(&l.mu);
  set(zh, path, "z");
  /* Give a stray event the time to show up: one more cache sees "z" first. */
  {
    zkr_node_cache_t *c;
    ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
    ck_assert_int_eq(zkr_node_cache_start(c), 0);
    ck_assert_int_eq(zkr_node_cache_wait(c, NULL, 5000, NULL, NULL, NULL), 0);
    zkr_node_cache_free(c);
  }
  ck_assert_int_eq(l.after_free, 0);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Started before the session is connected: the first read waits for it. */
START_TEST(started_before_connect) {
  char root[64], path[128];
  zkr_session_t *s, *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_node_cache_t *c;
  char *data = NULL;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  make(zh, root, "");
  make(zh, path, "hello");
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(zkr_session_connect(s, tu_hosts(), 10000), 0);
  ck_assert_int_eq(zkr_node_cache_wait(c, NULL, 5000, &data, NULL, NULL), 0);
  ck_assert_str_eq(data, "hello");
  free(data);
  zkr_node_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

START_TEST(bad_input) {
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_node_cache_t *c = (zkr_node_cache_t *)&c;

  ck_assert_int_eq(zkr_node_cache_new(NULL, "/a", &c), ZKR_EINVAL);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(zkr_node_cache_new(s, "/a", NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, NULL, &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, "relative", &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, "/", &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, "/a/", &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, "/zookeeper/config", &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_start(NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_get(NULL, NULL, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_wait(NULL, NULL, 0, NULL, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_set_listener(NULL, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_node_cache_new(s, "/a", &c), 0);
  ck_assert_int_eq(zkr_node_cache_wait(c, NULL, -2, NULL, NULL, NULL), ZKR_EINVAL);
  zkr_node_cache_free(c);
  zkr_node_cache_free(NULL);
  ck_assert_str_eq(zkr_cache_event_name(ZKR_CACHE_REPLACED), "REPLACED");
  ck_assert_str_eq(zkr_cache_event_name(99), "UNKNOWN");
  ck_assert_str_eq(zkr_errname(ZKR_ENOTREADY), "ZKR_ENOTREADY");
  zkr_session_free(s);
}
END_TEST

Suite *cache_suite(void) {
  Suite *su = suite_create("cache");
  TCase *tc = tcase_create("cache");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bad_input);
  tcase_add_test(tc, events_in_order_and_nothing_created);
  tcase_add_test(tc, wait_for_a_change);
  tcase_add_test(tc, started_before_connect);
  tcase_add_test(tc, free_with_work_in_flight);
  tcase_add_test(tc, resync_after_expiry);
  tcase_add_test(tc, replaced_while_disconnected);
  suite_add_tcase(su, tc);
  return su;
}
