/* SPDX-License-Identifier: Apache-2.0 */
/* The node cache against the real test servers. */
#include <pthread.h>
#include <stdatomic.h>
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
  char path[MAX_EV][160];
  int missed[MAX_EV];
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
    snprintf(l->path[i], sizeof(l->path[i]), "%s", ev->path);
    l->missed[i] = ev->missed;
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
    fprintf(stderr, "  event %d: %s %s exists %d gap %d missed %d data '%s' czxid 0x%llx\n",
            i, zkr_cache_event_name(l->type[i]), l->path[i], l->exists[i], l->gap[i],
            l->missed[i], l->data[i], (unsigned long long)l->czxid[i]);
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

/* op until it is answered (the ensemble may be electing a leader: requests
 * then fail with connection loss for a moment); a retry may meet the effect
 * of an attempt whose reply was lost, which ok2 accepts. */
static int until_answered(zkr_session_t *t, int ok2, int (*op)(zhandle_t *, void *), void *arg) {
  int64_t deadline = tu_now_ms() + 30000;
  int rc;
  for (;;) {
    rc = zkr_session_wait_connected(t, 15000) == 0 ? op(zkr_session_zhandle(t), arg)
                                                   : ZCONNECTIONLOSS;
    if ((rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT && rc != ZSESSIONMOVED) ||
        tu_now_ms() > deadline)
      break;
    usleep(50 * 1000); /* the election, not a condition we could wait on */
  }
  return rc == ok2 ? ZOK : rc;
}

static int op_delete(zhandle_t *zh, void *path) {
  return zoo_delete(zh, path, -1);
}

static int op_create_new(zhandle_t *zh, void *path) {
  return zoo_create(zh, path, "new", 3, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
}

/* Deleted and created again while the cache's client is cut off from the
 * ensemble: REPLACED (the C client reports it as a mere change). */
START_TEST(replaced_while_disconnected) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble"), *others;
  char root[64], path[128];
  zkr_session_t *s, *t;
  zhandle_t *zh;
  zkr_node_cache_t *c;
  evlog_t l = EVLOG_INIT;
  tu_cut_t cut;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  /* The cache's session knows one member only: it stays cut off while that
   * member is down. The writer knows the other members only: the kill does
   * not cut it off. */
  s = tu_cut_open(&cut, hosts, dir, &others);
  t = tu_open(others, 10000);
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

  tu_cut_off(&cut);
  ck_assert_int_eq(until_answered(t, ZNONODE, op_delete, path), ZOK);
  ck_assert_int_eq(until_answered(t, ZNODEEXISTS, op_create_new, path), ZOK);
  zh = zkr_session_zhandle(t);
  tu_cut_heal(&cut);
  ck_assert_int_eq(ev_wait(&l, 2, 10000), 2);
  ev_check(&l, 1, ZKR_CACHE_REPLACED, "new", 0);
  ck_assert_int_gt(l.czxid[1], l.czxid[0]);
  zkr_node_cache_free(c);
  ck_assert_int_eq(l.n, 2);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
  tu_cut_destroy(&cut);
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

static _Atomic int in_cb_rc = 99;
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

/* ---- children cache ---- */

static void on_kids(zkr_children_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c;
  on_event(NULL, ev, arg);
}

/* Event i is type about child name (NULL: the parent), with data (NULL: none). */
static void kid_check(evlog_t *l, int i, int type, const char *parent, const char *name,
                      const char *data, int gap) {
  char want[160];
  snprintf(want, sizeof(want), "%s%s%s", parent, name ? "/" : "", name ? name : "");
  pthread_mutex_lock(&l->mu);
  if (i >= l->n || l->type[i] != type || strcmp(l->path[i], want) != 0 ||
      (data && strcmp(l->data[i], data) != 0) || l->gap[i] != gap)
    ev_dump(l);
  ck_assert_int_lt(i, l->n);
  ck_assert_str_eq(zkr_cache_event_name(l->type[i]), zkr_cache_event_name(type));
  ck_assert_str_eq(l->path[i], want);
  if (data)
    ck_assert_str_eq(l->data[i], data);
  ck_assert_int_eq(l->gap[i], gap);
  pthread_mutex_unlock(&l->mu);
}

/* The parent absent, created, its children added, changed, removed, the
 * parent deleted and made again: each event once, in order; nothing created. */
START_TEST(children_events_in_order) {
  char root[64], p[96], a[128], b[128], c2[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c;
  zkr_cache_child_t *kids;
  evlog_t l = EVLOG_INIT;
  int n;

  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/workers", root);
  snprintf(a, sizeof(a), "%s/a", p);
  snprintf(b, sizeof(b), "%s/b", p);
  snprintf(c2, sizeof(c2), "%s/c", p);
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_list(c, &kids, &n), ZKR_ENOTREADY);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, on_kids, &l), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), ZKR_EBUSY);
  ck_assert_int_eq(ev_wait(&l, 1, 5000), 1);
  kid_check(&l, 0, ZKR_CACHE_INITIALIZED, p, NULL, NULL, 0);
  ck_assert_int_eq(l.exists[0], 0);
  ck_assert_int_eq(zkr_children_cache_list(c, &kids, &n), ZNONODE);
  ck_assert_int_eq(zoo_exists(zh, root, 0, NULL), ZNONODE); /* read-only */

  make(zh, root, "");
  make(zh, p, "");
  make(zh, a, "1");
  ck_assert_int_eq(ev_wait(&l, 2, 5000), 2);
  kid_check(&l, 1, ZKR_CACHE_ADDED, p, "a", "1", 0);
  make(zh, b, "2");
  ck_assert_int_eq(ev_wait(&l, 3, 5000), 3);
  kid_check(&l, 2, ZKR_CACHE_ADDED, p, "b", "2", 0);
  set(zh, b, "22");
  ck_assert_int_eq(ev_wait(&l, 4, 5000), 4);
  kid_check(&l, 3, ZKR_CACHE_UPDATED, p, "b", "22", 0);
  ck_assert_int_eq(zkr_children_cache_list(c, &kids, &n), 0);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(kids[0].name, "a");
  ck_assert_str_eq(kids[0].data, "1");
  ck_assert_str_eq(kids[1].name, "b");
  ck_assert_str_eq(kids[1].data, "22");
  ck_assert_int_eq(kids[1].stat.version, 1);
  zkr_cache_children_free(kids, n);
  ck_assert_int_eq(zoo_delete(zh, a, -1), ZOK);
  ck_assert_int_eq(ev_wait(&l, 5, 5000), 5);
  kid_check(&l, 4, ZKR_CACHE_REMOVED, p, "a", NULL, 0);
  /* The parent goes (its last child first): REMOVED, then PARENT_ABSENT. */
  ck_assert_int_eq(zoo_delete(zh, b, -1), ZOK);
  ck_assert_int_eq(ev_wait(&l, 6, 5000), 6);
  kid_check(&l, 5, ZKR_CACHE_REMOVED, p, "b", NULL, 0);
  ck_assert_int_eq(zoo_delete(zh, p, -1), ZOK);
  ck_assert_int_eq(ev_wait(&l, 7, 5000), 7);
  kid_check(&l, 6, ZKR_CACHE_PARENT_ABSENT, p, NULL, NULL, 0);
  make(zh, p, "");
  make(zh, c2, "3");
  ck_assert_int_eq(ev_wait(&l, 8, 5000), 8);
  kid_check(&l, 7, ZKR_CACHE_ADDED, p, "c", "3", 0);
  zkr_children_cache_free(c);
  ck_assert_int_eq(l.n, 8);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A listener that holds the callback thread until the test lets it go, so
 * that changes pile up behind one watch notification. */
typedef struct gate {
  evlog_t l;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int armed, held, open;
} gate_t;

static void gate_pass(gate_t *g, const zkr_cache_event_t *ev) {
  on_event(NULL, ev, &g->l);
  pthread_mutex_lock(&g->mu);
  if (g->armed && !g->open) {
    g->held = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
      pthread_cond_wait(&g->cv, &g->mu);
  }
  pthread_mutex_unlock(&g->mu);
}

static void gated(zkr_children_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c;
  gate_pass(arg, ev);
}

static void gated_node(zkr_node_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c;
  gate_pass(arg, ev);
}

static void gate_wait_held(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->held)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* While the cache cannot look: a child created and deleted (CHILDREN_MISSED,
 * from the parent's cversion), a child deleted and created again (REPLACED),
 * a child changed twice (UPDATED, one version missed). */
START_TEST(children_unseen_changes_are_told) {
  char root[64], p[96], x[128], y[128], z[128], tmp[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c;
  gate_t g = {.l = EVLOG_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
              .cv = PTHREAD_COND_INITIALIZER};
  int seen_missed = 0, seen_replaced = 0, seen_updated = 0;

  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/w", root);
  snprintf(x, sizeof(x), "%s/x", p);
  snprintf(y, sizeof(y), "%s/y", p);
  snprintf(z, sizeof(z), "%s/z", p);
  snprintf(tmp, sizeof(tmp), "%s/tmp", p);
  make(zh, root, "");
  make(zh, p, "");
  make(zh, x, "x0");
  make(zh, y, "y0");
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, gated, &g), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&g.l, 3, 5000), 3); /* ADDED x, ADDED y, INITIALIZED */
  pthread_mutex_lock(&g.mu);
  g.armed = 1;
  pthread_mutex_unlock(&g.mu);
  make(zh, z, "z0"); /* its ADDED holds the callback thread */
  gate_wait_held(&g);
  make(zh, tmp, "");
  ck_assert_int_eq(zoo_delete(zh, tmp, -1), ZOK);
  ck_assert_int_eq(zoo_delete(zh, x, -1), ZOK);
  make(zh, x, "x1");
  set(zh, y, "y1");
  set(zh, y, "y2");
  gate_open(&g);
  for (int64_t end = tu_now_ms() + 10000; tu_now_ms() < end;) {
    pthread_mutex_lock(&g.l.mu);
    seen_missed = seen_replaced = seen_updated = 0;
    for (int i = 0; i < g.l.n; i++) {
      if (g.l.type[i] == ZKR_CACHE_CHILDREN_MISSED)
        seen_missed += g.l.missed[i];
      if (g.l.type[i] == ZKR_CACHE_REPLACED && !strcmp(g.l.data[i], "x1"))
        seen_replaced = 1;
      if (g.l.type[i] == ZKR_CACHE_UPDATED && !strcmp(g.l.data[i], "y2"))
        seen_updated = 1 + g.l.missed[i];
    }
    pthread_mutex_unlock(&g.l.mu);
    if (seen_missed && seen_replaced && seen_updated)
      break;
    usleep(1000);
  }
  if (!(seen_missed == 4 && seen_replaced && seen_updated == 2))
    ev_dump(&g.l);
  /* tmp's create and delete, and x's delete and create: four changes that no
   * listing showed. */
  ck_assert_int_eq(seen_missed, 4);
  ck_assert_int_eq(seen_replaced, 1);
  ck_assert_int_eq(seen_updated, 2); /* UPDATED to y2 with one version missed */
  zkr_children_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Two writes while the cache cannot look: one CHANGED, to the second value,
 * saying that one version was missed. */
START_TEST(node_coalesced_changes_are_counted) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_node_cache_t *c;
  gate_t g = {.l = EVLOG_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
              .cv = PTHREAD_COND_INITIALIZER};

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/cfg", root);
  make(zh, root, "");
  make(zh, path, "v0");
  ck_assert_int_eq(zkr_node_cache_new(s, path, &c), 0);
  ck_assert_int_eq(zkr_node_cache_set_listener(c, gated_node, &g), 0);
  ck_assert_int_eq(zkr_node_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&g.l, 1, 5000), 1);
  pthread_mutex_lock(&g.mu);
  g.armed = 1;
  pthread_mutex_unlock(&g.mu);
  set(zh, path, "v1"); /* its CHANGED holds the callback thread */
  gate_wait_held(&g);
  set(zh, path, "v2");
  set(zh, path, "v3");
  gate_open(&g);
  ck_assert_int_eq(ev_wait(&g.l, 3, 5000), 3);
  ev_check(&g.l, 1, ZKR_CACHE_CHANGED, "v1", 0);
  ck_assert_int_eq(g.l.missed[1], 0);
  ev_check(&g.l, 2, ZKR_CACHE_CHANGED, "v3", 0);
  ck_assert_int_eq(g.l.missed[2], 1);
  zkr_node_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

typedef struct kid_lost {
  zhandle_t *zh;
  const char *add, *del;
  int done;
} kid_lost_t;

static void kids_change_on_lost(zkr_session_t *s, int event, void *arg) {
  kid_lost_t *w = arg;
  (void)s;
  if (event == ZKR_SESSION_LOST && !w->done) {
    w->done = 1;
    zoo_create(w->zh, w->add, "new", 3, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    zoo_delete(w->zh, w->del, -1);
  }
}

START_TEST(children_resync_after_expiry) {
  char root[64], p[96], keep[128], gone[128], added[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c;
  evlog_t l = EVLOG_INIT;
  kid_lost_t w = {zh, NULL, NULL, 0};

  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/w", root);
  snprintf(keep, sizeof(keep), "%s/keep", p);
  snprintf(gone, sizeof(gone), "%s/gone", p);
  snprintf(added, sizeof(added), "%s/added", p);
  w.add = added;
  w.del = gone;
  make(zh, root, "");
  make(zh, p, "");
  make(zh, keep, "k");
  make(zh, gone, "g");
  ck_assert_int_eq(zkr_session_add_listener(s, kids_change_on_lost, &w, NULL), 0);
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, on_kids, &l), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&l, 3, 5000), 3);
  kid_check(&l, 0, ZKR_CACHE_ADDED, p, "gone", "g", 0);
  kid_check(&l, 1, ZKR_CACHE_ADDED, p, "keep", "k", 0);
  kid_check(&l, 2, ZKR_CACHE_INITIALIZED, p, NULL, NULL, 0);
  tu_expire(s, tu_hosts());
  ck_assert_int_eq(ev_wait(&l, 7, 20000), 7);
  kid_check(&l, 3, ZKR_CACHE_RESYNC_BEGIN, p, NULL, NULL, 0);
  /* The listing's diff first (gone is removed at once), then the new child's
   * data read. */
  kid_check(&l, 4, ZKR_CACHE_REMOVED, p, "gone", NULL, 1);
  kid_check(&l, 5, ZKR_CACHE_ADDED, p, "added", "new", 1);
  kid_check(&l, 6, ZKR_CACHE_RESYNC_END, p, NULL, NULL, 0);
  /* Live again. */
  set(zh, keep, "k2");
  ck_assert_int_eq(ev_wait(&l, 8, 5000), 8);
  kid_check(&l, 7, ZKR_CACHE_UPDATED, p, "keep", "k2", 0);
  zkr_children_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

static _Atomic int adds;
static _Atomic int initialized;
static void count_kids(zkr_children_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c, (void)arg;
  if (ev->type == ZKR_CACHE_ADDED)
    atomic_fetch_add(&adds, 1);
  else if (ev->type == ZKR_CACHE_INITIALIZED)
    atomic_store(&initialized, 1);
}

/* 10,000 children with data: one INITIALIZED after all of them, none missing. */
START_TEST(children_ten_thousand) {
  char root[64], p[96];
  zkr_session_t *s = tu_open(tu_hosts(), 20000), *t = tu_open(tu_hosts(), 20000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c;
  zkr_cache_child_t *kids;
  int n;

  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/many", root);
  make(zh, root, "");
  make(zh, p, "");
  for (int b = 0; b < 100; b++) {
    zoo_op_t ops[100];
    zoo_op_result_t res[100];
    char paths[100][128], vals[100][16];
    for (int i = 0; i < 100; i++) {
      snprintf(paths[i], sizeof(paths[i]), "%s/n%05d", p, b * 100 + i);
      snprintf(vals[i], sizeof(vals[i]), "v%d", b * 100 + i);
      zoo_create_op_init(&ops[i], paths[i], vals[i], (int)strlen(vals[i]),
                         &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    }
    ck_assert_int_eq(zoo_multi(zh, 100, ops, res), ZOK);
  }
  atomic_store(&adds, 0);
  atomic_store(&initialized, 0);
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, count_kids, NULL), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  for (int64_t end = tu_now_ms() + 60000; !atomic_load(&initialized) && tu_now_ms() < end;)
    usleep(2000);
  ck_assert_int_eq(atomic_load(&initialized), 1);
  ck_assert_int_eq(atomic_load(&adds), 10000);
  ck_assert_int_eq(zkr_children_cache_list(c, &kids, &n), 0);
  ck_assert_int_eq(n, 10000);
  ck_assert_str_eq(kids[1234].name, "n01234");
  ck_assert_str_eq(kids[1234].data, "v1234");
  zkr_cache_children_free(kids, n);
  zkr_children_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Past the session's watch budget the cache stops, loudly, and the session
 * never holds more watched bytes than the budget. */
START_TEST(children_watch_budget) {
  char root[64], p[96], kid[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c;
  zkr_cache_child_t *kids;
  zkr_session_stats_t st;
  evlog_t l = EVLOG_INIT;
  int n, lrc, stopped = -1;

  ck_assert_int_eq(zkr_session_set_watch_budget(NULL, 100), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_watch_budget(s, 0), ZKR_EINVAL);
  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/w", root);
  make(zh, root, "");
  make(zh, p, "");
  for (int i = 0; i < 20; i++) {
    snprintf(kid, sizeof(kid), "%s/child-%02d", p, i);
    make(zh, kid, "x");
  }
  /* Room for the listing's watch and some of the children's, not all. */
  ck_assert_int_eq(zkr_session_set_watch_budget(s, 400), 0);
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, on_kids, &l), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  for (int64_t end = tu_now_ms() + 5000; stopped < 0 && tu_now_ms() < end;) {
    pthread_mutex_lock(&l.mu);
    for (int i = 0; i < l.n; i++)
      if (l.type[i] == ZKR_CACHE_STOPPED)
        stopped = i;
    pthread_mutex_unlock(&l.mu);
    usleep(1000);
  }
  if (stopped < 0)
    ev_dump(&l);
  ck_assert_int_ge(stopped, 0);
  ck_assert_int_eq(zkr_children_cache_list(c, &kids, &n), ZKR_ELIMIT);
  ck_assert_int_eq(zkr_session_stats(s, &st), 0);
  ck_assert_uint_gt(st.watch_bytes, 0);
  ck_assert_uint_le(st.watch_bytes, 400);
  zkr_children_cache_free(c);
  /* Within the budget, the same cache loads. */
  ck_assert_int_eq(zkr_session_set_watch_budget(s, ZKR_DEFAULT_WATCH_BUDGET), 0);
  ck_assert_int_eq(zkr_children_cache_new(s, p, ZKR_CHILDREN_DATA, &c), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  for (int64_t end = tu_now_ms() + 5000;
       (lrc = zkr_children_cache_list(c, &kids, &n)) == ZKR_ENOTREADY && tu_now_ms() < end;)
    usleep(1000);
  ck_assert_int_eq(lrc, 0);
  ck_assert_int_eq(n, 20);
  zkr_cache_children_free(kids, n);
  zkr_children_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Names only, freed with work in flight, bad input. */
START_TEST(children_names_only_free_and_bad_input) {
  char root[64], p[96], a[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_children_cache_t *c = (zkr_children_cache_t *)&c;
  evlog_t l = EVLOG_INIT;

  ck_assert_int_eq(zkr_children_cache_new(NULL, "/a", 0, &c), ZKR_EINVAL);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(zkr_children_cache_new(s, "/a", 0, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_children_cache_new(s, "/", 0, &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_children_cache_new(s, "a", 0, &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_children_cache_new(s, "/a", 8, &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_children_cache_start(NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_children_cache_list(NULL, NULL, NULL), ZKR_EINVAL);
  zkr_children_cache_free(NULL);
  zkr_cache_children_free(NULL, 0);

  tu_root(root, sizeof(root));
  snprintf(p, sizeof(p), "%s/w", root);
  snprintf(a, sizeof(a), "%s/a", p);
  make(zh, root, "");
  make(zh, p, "");
  make(zh, a, "data not read");
  ck_assert_int_eq(zkr_children_cache_new(s, p, 0, &c), 0);
  ck_assert_int_eq(zkr_children_cache_set_listener(c, on_kids, &l), 0);
  ck_assert_int_eq(zkr_children_cache_start(c), 0);
  ck_assert_int_eq(ev_wait(&l, 2, 5000), 2);
  kid_check(&l, 0, ZKR_CACHE_ADDED, p, "a", "", 0);
  ck_assert_int_eq(l.exists[0], 1);
  kid_check(&l, 1, ZKR_CACHE_INITIALIZED, p, NULL, NULL, 0);
  zkr_children_cache_free(c);
  for (int i = 0; i < 30; i++) {
    evlog_t *lp = &l;
    ck_assert_int_eq(zkr_children_cache_new(s, p, i % 2 ? ZKR_CHILDREN_DATA : 0, &c), 0);
    ck_assert_int_eq(zkr_children_cache_set_listener(c, on_kids, lp), 0);
    ck_assert_int_eq(zkr_children_cache_start(c), 0);
    zkr_children_cache_free(c);
  }
  pthread_mutex_lock(&l.mu);
  l.freed = 1;
  pthread_mutex_unlock(&l.mu);
  set(zh, a, "x");
  tu_rmr(zh, root);
  ck_assert_int_eq(l.after_free, 0);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- tree cache ---- */

static void on_tree(zkr_tree_cache_t *t, const zkr_cache_event_t *ev, void *arg) {
  (void)t;
  on_event(NULL, ev, arg);
}

/* Index of the first event of type about path at or after from; -1 if none. */
static int ev_find(evlog_t *l, int from, int type, const char *path) {
  int at = -1;
  pthread_mutex_lock(&l->mu);
  for (int i = from; i < l->n && at < 0; i++)
    if (l->type[i] == type && !strcmp(l->path[i], path))
      at = i;
  pthread_mutex_unlock(&l->mu);
  return at;
}

static int ev_wait_for(evlog_t *l, int from, int type, const char *path, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int at;
  while ((at = ev_find(l, from, type, path)) < 0 && tu_now_ms() < deadline)
    usleep(1000);
  if (at < 0)
    ev_dump(l);
  return at;
}

/* Descendants down to the depth limit, each event once with its path; a
 * subtree that goes is REMOVED deepest first. */
START_TEST(tree_events_and_depth) {
  char root[64], r[96], a[128], ax[160], deep[200], b[128], by[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_tree_cache_t *c;
  evlog_t l = EVLOG_INIT;
  int init, i;

  tu_root(root, sizeof(root));
  snprintf(r, sizeof(r), "%s/r", root);
  snprintf(a, sizeof(a), "%s/a", r);
  snprintf(ax, sizeof(ax), "%s/x", a);
  snprintf(deep, sizeof(deep), "%s/deep", ax);
  snprintf(b, sizeof(b), "%s/b", r);
  snprintf(by, sizeof(by), "%s/y", b);
  make(zh, root, "");
  make(zh, r, "r0");
  make(zh, a, "a0");
  make(zh, ax, "x0");
  make(zh, deep, "too deep");
  make(zh, b, "b0");
  ck_assert_int_eq(zkr_tree_cache_new(s, r, -1, &c), ZKR_EINVAL);
  ck_assert_int_eq(zkr_tree_cache_new(s, r, 2, &c), 0);
  ck_assert_int_eq(zkr_tree_cache_set_listener(c, on_tree, &l), 0);
  ck_assert_int_eq(zkr_tree_cache_start(c), 0);
  ck_assert_int_eq(zkr_tree_cache_start(c), ZKR_EBUSY);
  init = ev_wait_for(&l, 0, ZKR_CACHE_INITIALIZED, r, 10000);
  ck_assert_int_ge(init, 0);
  ck_assert_int_eq(l.exists[init], 1);
  /* Before INITIALIZED: a, b and a/x, each once; nothing deeper. */
  ck_assert_int_eq(init, 3);
  ck_assert_int_ge(ev_find(&l, 0, ZKR_CACHE_ADDED, a), 0);
  ck_assert_int_ge(ev_find(&l, 0, ZKR_CACHE_ADDED, b), 0);
  i = ev_find(&l, 0, ZKR_CACHE_ADDED, ax);
  ck_assert_int_ge(i, 0);
  ck_assert_str_eq(l.data[i], "x0");
  ck_assert_int_lt(ev_find(&l, 0, ZKR_CACHE_ADDED, deep), 0);

  set(zh, ax, "x1");
  i = ev_wait_for(&l, init, ZKR_CACHE_UPDATED, ax, 5000);
  ck_assert_int_ge(i, 0);
  ck_assert_str_eq(l.data[i], "x1");
  set(zh, r, "r1");
  i = ev_wait_for(&l, init, ZKR_CACHE_CHANGED, r, 5000);
  ck_assert_int_ge(i, 0);
  ck_assert_str_eq(l.data[i], "r1");
  make(zh, by, "y0");
  ck_assert_int_ge(ev_wait_for(&l, init, ZKR_CACHE_ADDED, by, 5000), 0);
  set(zh, deep, "unseen"); /* below the limit: no event */
  ck_assert_int_eq(zoo_delete(zh, deep, -1), ZOK);
  ck_assert_int_eq(zoo_delete(zh, ax, -1), ZOK);
  ck_assert_int_eq(zoo_delete(zh, a, -1), ZOK);
  i = ev_wait_for(&l, init, ZKR_CACHE_REMOVED, a, 5000);
  ck_assert_int_ge(i, 0);
  ck_assert_int_ge(ev_find(&l, init, ZKR_CACHE_REMOVED, ax), 0);
  ck_assert_int_lt(ev_find(&l, init, ZKR_CACHE_REMOVED, ax), i); /* deepest first */
  ck_assert_int_lt(ev_find(&l, 0, ZKR_CACHE_UPDATED, deep), 0);
  zkr_tree_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* After an expiry: one RESYNC bracket for the whole tree, with the change made
 * in the gap inside it. */
START_TEST(tree_resync_after_expiry) {
  char root[64], r[96], a[128], ax[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_tree_cache_t *c;
  evlog_t l = EVLOG_INIT;
  on_lost_t w = {zh, NULL, 0};
  int init, begin, end, i, begins = 0;

  tu_root(root, sizeof(root));
  snprintf(r, sizeof(r), "%s/r", root);
  snprintf(a, sizeof(a), "%s/a", r);
  snprintf(ax, sizeof(ax), "%s/x", a);
  w.path = ax;
  make(zh, root, "");
  make(zh, r, "");
  make(zh, a, "");
  make(zh, ax, "before");
  ck_assert_int_eq(zkr_session_add_listener(s, change_on_lost, &w, NULL), 0);
  ck_assert_int_eq(zkr_tree_cache_new(s, r, 3, &c), 0);
  ck_assert_int_eq(zkr_tree_cache_set_listener(c, on_tree, &l), 0);
  ck_assert_int_eq(zkr_tree_cache_start(c), 0);
  init = ev_wait_for(&l, 0, ZKR_CACHE_INITIALIZED, r, 10000);
  ck_assert_int_ge(init, 0);
  tu_expire(s, tu_hosts());
  begin = ev_wait_for(&l, init, ZKR_CACHE_RESYNC_BEGIN, r, 20000);
  end = ev_wait_for(&l, init, ZKR_CACHE_RESYNC_END, r, 20000);
  ck_assert_int_gt(begin, init);
  ck_assert_int_gt(end, begin);
  i = ev_find(&l, begin, ZKR_CACHE_UPDATED, ax);
  ck_assert_int_gt(i, begin);
  ck_assert_int_lt(i, end);
  ck_assert_str_eq(l.data[i], "during");
  ck_assert_int_eq(l.gap[i], 1);
  pthread_mutex_lock(&l.mu);
  for (int k = 0; k < l.n; k++)
    begins += l.type[k] == ZKR_CACHE_RESYNC_BEGIN;
  pthread_mutex_unlock(&l.mu);
  ck_assert_int_eq(begins, 1);
  zkr_tree_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

static _Atomic int tree_events_after_free;
static void free_on_first(zkr_tree_cache_t *t, const zkr_cache_event_t *ev, void *arg) {
  _Atomic int *freed = arg;
  (void)ev;
  if (*freed) {
    atomic_fetch_add(&tree_events_after_free, 1);
    return;
  }
  *freed = 1;
  zkr_tree_cache_free(t); /* from its own listener */
}

/* Over the watch budget: STOPPED; freed from its own listener: no event after. */
START_TEST(tree_budget_and_free_in_listener) {
  char root[64], r[96], kid[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_tree_cache_t *c;
  evlog_t l = EVLOG_INIT;
  _Atomic int freed = 0;

  tu_root(root, sizeof(root));
  snprintf(r, sizeof(r), "%s/r", root);
  make(zh, root, "");
  make(zh, r, "");
  for (int i = 0; i < 20; i++) {
    snprintf(kid, sizeof(kid), "%s/node-%02d", r, i);
    make(zh, kid, "");
  }
  ck_assert_int_eq(zkr_session_set_watch_budget(s, 300), 0);
  ck_assert_int_eq(zkr_tree_cache_new(s, r, 4, &c), 0);
  ck_assert_int_eq(zkr_tree_cache_set_listener(c, on_tree, &l), 0);
  ck_assert_int_eq(zkr_tree_cache_start(c), 0);
  ck_assert_int_ge(ev_wait_for(&l, 0, ZKR_CACHE_STOPPED, r, 10000), 0);
  zkr_tree_cache_free(c);
  ck_assert_int_eq(zkr_session_set_watch_budget(s, ZKR_DEFAULT_WATCH_BUDGET), 0);

  atomic_store(&tree_events_after_free, 0);
  ck_assert_int_eq(zkr_tree_cache_new(s, r, 2, &c), 0);
  ck_assert_int_eq(zkr_tree_cache_set_listener(c, free_on_first, (void *)&freed), 0);
  ck_assert_int_eq(zkr_tree_cache_start(c), 0);
  for (int64_t end = tu_now_ms() + 5000; !freed && tu_now_ms() < end;)
    usleep(1000);
  ck_assert_int_eq(freed, 1);
  /* A later change must reach nobody; a node cache on the same session shows
   * the change was delivered by then. */
  {
    zkr_node_cache_t *nc;
    struct Stat st;
    snprintf(kid, sizeof(kid), "%s/node-00", r);
    ck_assert_int_eq(zkr_node_cache_new(s, kid, &nc), 0);
    ck_assert_int_eq(zkr_node_cache_start(nc), 0);
    ck_assert_int_eq(zkr_node_cache_wait(nc, NULL, 5000, NULL, NULL, &st), 0);
    set(zh, kid, "after");
    ck_assert_int_eq(zkr_node_cache_wait(nc, &st, 5000, NULL, NULL, NULL), 0);
    zkr_node_cache_free(nc);
  }
  ck_assert_int_eq(atomic_load(&tree_events_after_free), 0);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
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
  tcase_add_test(tc, node_coalesced_changes_are_counted);
  tcase_add_test(tc, children_events_in_order);
  tcase_add_test(tc, children_unseen_changes_are_told);
  tcase_add_test(tc, children_resync_after_expiry);
  tcase_add_test(tc, children_ten_thousand);
  tcase_add_test(tc, children_names_only_free_and_bad_input);
  tcase_add_test(tc, children_watch_budget);
  tcase_add_test(tc, tree_events_and_depth);
  tcase_add_test(tc, tree_resync_after_expiry);
  tcase_add_test(tc, tree_budget_and_free_in_listener);
  suite_add_tcase(su, tc);
  return su;
}
