/* SPDX-License-Identifier: Apache-2.0 */
/* Group membership against the real test servers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "suites.h"
#include "testutil.h"

/* ---- a log of group events ---- */

#define GMAX 64
typedef struct glog {
  pthread_mutex_t mu;
  int n;
  int type[GMAX];
  char id[GMAX][48];
  char data[GMAX][32];
  int format[GMAX];
  int64_t epoch[GMAX], owner[GMAX], at[GMAX];
} glog_t;

#define GLOG_INIT                                                                        \
  { .mu = PTHREAD_MUTEX_INITIALIZER }

static void on_group(zkr_group_t *g, int ev, const zkr_group_member_t *m, void *arg) {
  glog_t *l = arg;
  (void)g;
  pthread_mutex_lock(&l->mu);
  if (l->n < GMAX) {
    int i = l->n++;
    l->type[i] = ev;
    snprintf(l->id[i], sizeof(l->id[i]), "%s", m ? m->id : "");
    snprintf(l->data[i], sizeof(l->data[i]), "%.*s", m && m->len > 0 ? m->len : 0,
             m && m->data ? m->data : "");
    l->format[i] = m ? m->format : -1;
    l->epoch[i] = m ? m->epoch : 0;
    l->owner[i] = m ? m->owner : 0;
    l->at[i] = tu_now_ms();
  }
  pthread_mutex_unlock(&l->mu);
}

static int gl_count(glog_t *l) {
  int n;
  pthread_mutex_lock(&l->mu);
  n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

static int gl_wait(glog_t *l, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int have;
  while ((have = gl_count(l)) < n && tu_now_ms() < deadline)
    usleep(1000);
  return have;
}

static void gl_dump(glog_t *l) {
  for (int i = 0; i < l->n; i++)
    fprintf(stderr, "  event %d: %s id '%s' data '%s' format %s epoch 0x%llx\n", i,
            zkr_cache_event_name(l->type[i]), l->id[i], l->data[i],
            zkr_group_profile_name(l->format[i]), (unsigned long long)l->epoch[i]);
}

static void gl_check(glog_t *l, int i, int type, const char *id) {
  pthread_mutex_lock(&l->mu);
  if (i >= l->n || l->type[i] != type || strcmp(l->id[i], id) != 0)
    gl_dump(l);
  ck_assert_int_lt(i, l->n);
  ck_assert_str_eq(zkr_cache_event_name(l->type[i]), zkr_cache_event_name(type));
  ck_assert_str_eq(l->id[i], id);
  pthread_mutex_unlock(&l->mu);
}

/* ---- member events ---- */

typedef struct mlog {
  _Atomic int n;
  _Atomic int ev[16];
  _Atomic int64_t epoch[16];
} mlog_t;

static void on_member(zkr_member_t *m, int ev, int64_t epoch, void *arg) {
  mlog_t *l = arg;
  int i = atomic_load(&l->n);
  (void)m;
  if (i < 16) {
    atomic_store(&l->ev[i], ev);
    atomic_store(&l->epoch[i], epoch);
  }
  atomic_fetch_add(&l->n, 1);
}

static int ml_wait(mlog_t *l, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (atomic_load(&l->n) < n && tu_now_ms() < deadline)
    usleep(1000);
  return atomic_load(&l->n);
}

static int64_t owner_of(zhandle_t *zh, const char *path) {
  struct Stat st;
  return zoo_exists(zh, path, 0, &st) == ZOK ? st.ephemeralOwner : -1;
}

/* ---- tests ---- */

/* Members in both formats join and leave; a follower sees each with its id,
 * data, format, epoch (czxid) and owner; the group node is a container made
 * by the first join. */
START_TEST(join_leave_and_view) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_member_t *a, *b;
  zkr_group_t *g;
  zkr_group_member_t *list;
  glog_t l = GLOG_INIT;
  mlog_t ml = {0};
  int64_t ea = 0, eb = 0;
  int n;
  struct Stat st;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/workers", root);
  ck_assert_int_eq(zkr_group_new(t, path, &g), 0);
  ck_assert_int_eq(zkr_group_set_listener(g, on_group, &l), 0);
  ck_assert_int_eq(zkr_group_start(g), 0);
  ck_assert_int_eq(gl_wait(&l, 1, 5000), 1);
  gl_check(&l, 0, ZKR_CACHE_INITIALIZED, ""); /* absent: nothing is created */
  ck_assert_int_eq(zoo_exists(zh, path, 0, NULL), ZNONODE);

  ck_assert_int_eq(zkr_member_new(s, path, "a", ZKR_GROUP_CURATOR, &a), 0);
  ck_assert_int_eq(zkr_member_set_listener(a, on_member, &ml), 0);
  ck_assert_int_eq(zkr_member_set_data(a, "10.0.0.7:80", 11), 0);
  ck_assert_int_eq(zkr_member_join(a, 5000, &ea), 0);
  ck_assert_int_eq(zkr_member_join(a, 5000, NULL), ZKR_EBUSY);
  ck_assert_int_eq(zkr_member_is_member(a), 1);
  ck_assert_int_eq(ml_wait(&ml, 1, 5000), 1);
  ck_assert_int_eq(atomic_load(&ml.ev[0]), ZKR_MEMBER_JOINED);
  ck_assert_int_eq(atomic_load(&ml.epoch[0]), ea);
  ck_assert_int_eq(zoo_exists(zh, path, 0, &st), ZOK);
  ck_assert_int_eq(owner_of(zh, zkr_member_node(a)), zkr_session_id(s));

  ck_assert_int_eq(zkr_member_new(s, path, "b", ZKR_GROUP_KAZOO, &b), 0);
  ck_assert_int_eq(zkr_member_join(b, 5000, &eb), 0);
  ck_assert_int_eq(strlen(strrchr(zkr_member_node(b), '/') + 1), 41);
  ck_assert(strstr(zkr_member_node(b), "__party__") != NULL);

  ck_assert_int_eq(gl_wait(&l, 3, 5000), 3);
  gl_check(&l, 1, ZKR_CACHE_ADDED, "a");
  ck_assert_str_eq(l.data[1], "10.0.0.7:80");
  ck_assert_int_eq(l.format[1], ZKR_GROUP_CURATOR);
  ck_assert_int_eq(l.epoch[1], ea);
  ck_assert_int_eq(l.owner[1], zkr_session_id(s));
  gl_check(&l, 2, ZKR_CACHE_ADDED, "b");
  ck_assert_int_eq(l.format[2], ZKR_GROUP_KAZOO);
  ck_assert_int_eq(l.epoch[2], eb);

  ck_assert_int_eq(zkr_group_list(g, &list, &n), 0);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(list[0].id, "a");
  ck_assert_str_eq(list[0].data, "10.0.0.7:80");
  ck_assert_str_eq(list[1].id, "b");
  ck_assert_str_eq(list[1].data, "b");
  ck_assert_int_eq(list[1].format, ZKR_GROUP_KAZOO);
  zkr_group_members_free(list, n);

  /* Data set while joined is written (once: the same again writes nothing). */
  ck_assert_int_eq(zkr_member_set_data(a, "10.0.0.8:80", 11), 0);
  ck_assert_int_eq(gl_wait(&l, 4, 5000), 4);
  gl_check(&l, 3, ZKR_CACHE_UPDATED, "a");
  ck_assert_str_eq(l.data[3], "10.0.0.8:80");
  ck_assert_int_eq(l.epoch[3], ea);

  ck_assert_int_eq(zkr_member_leave(a, 5000), 0);
  ck_assert_int_eq(zkr_member_is_member(a), 0);
  ck_assert_int_eq(zkr_member_leave(a, 5000), ZKR_ENOTHELD);
  ck_assert_int_eq(gl_wait(&l, 5, 5000), 5);
  gl_check(&l, 4, ZKR_CACHE_REMOVED, "a");
  ck_assert_int_eq(ml_wait(&ml, 2, 5000), 2);
  ck_assert_int_eq(atomic_load(&ml.ev[1]), ZKR_MEMBER_LEFT);
  /* Join again: a new epoch. */
  ck_assert_int_eq(zkr_member_join(a, 5000, &eb), 0);
  ck_assert_int_gt(eb, ea);
  ck_assert_int_eq(gl_wait(&l, 6, 5000), 6);
  gl_check(&l, 5, ZKR_CACHE_ADDED, "a");
  ck_assert_int_eq(l.epoch[5], eb);
  zkr_member_free(a);
  zkr_member_free(b);
  ck_assert_int_eq(gl_wait(&l, 8, 5000), 8);
  /* The kazoo member's REMOVED still names it (its id was its data). */
  pthread_mutex_lock(&l.mu);
  ck_assert((!strcmp(l.id[6], "a") && !strcmp(l.id[7], "b")) ||
            (!strcmp(l.id[6], "b") && !strcmp(l.id[7], "a")));
  ck_assert_int_eq(l.type[6], ZKR_CACHE_REMOVED);
  ck_assert_int_eq(l.type[7], ZKR_CACHE_REMOVED);
  pthread_mutex_unlock(&l.mu);
  ck_assert_int_eq(gl_count(&l), 8);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  zkr_group_free(g);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Two processes with one id: the second gets ZKR_EDUPLICATE and a DUPLICATE
 * event; the first keeps its node (never stolen), also after the second is
 * freed. A node of a session we had before is ours to replace; one of a
 * session we never had is not. */
START_TEST(duplicates_and_old_sessions) {
  char root[64], path[128], node[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000),
                *u = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t), *zu = zkr_session_zhandle(u);
  zkr_member_t *first, *second;
  mlog_t ml = {0};
  int64_t e1 = 0, e2 = 0;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/g", root);
  snprintf(node, sizeof(node), "%s/x", path);
  ck_assert_int_eq(zkr_member_new(s, path, "x", ZKR_GROUP_CURATOR, &first), 0);
  ck_assert_int_eq(zkr_member_join(first, 5000, &e1), 0);
  ck_assert_int_eq(zkr_member_new(t, path, "x", ZKR_GROUP_CURATOR, &second), 0);
  ck_assert_int_eq(zkr_member_set_listener(second, on_member, &ml), 0);
  ck_assert_int_eq(zkr_member_join(second, 5000, &e2), ZKR_EDUPLICATE);
  ck_assert_int_eq(ml_wait(&ml, 1, 5000), 1);
  ck_assert_int_eq(atomic_load(&ml.ev[0]), ZKR_MEMBER_DUPLICATE);
  ck_assert_int_eq(zkr_member_is_member(second), 0);
  ck_assert_int_eq(owner_of(zh, node), zkr_session_id(s));
  ck_assert_int_eq(zkr_member_leave(second, 5000), ZKR_ENOTHELD);
  zkr_member_free(second);
  ck_assert_int_eq(owner_of(zh, node), zkr_session_id(s));
  ck_assert_int_eq(zkr_member_is_member(first), 1);
  zkr_member_free(first);
  tu_wait_children(zh, path, 0, 5000);

  /* A node left by a session of ours that ended (u's, counted as ours): the
   * join replaces it. */
  ck_assert_int_eq(zoo_create(zu, node, "old", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zkr_member_new(t, path, "x", ZKR_GROUP_CURATOR, &second), 0);
  ck_assert_int_eq(zkr_member_join(second, 5000, NULL), ZKR_EDUPLICATE);
  zkr_member_free(second);
  ck_assert_int_eq(owner_of(zh, node), zkr_session_id(u));
  zkr__session_note_past(t, zkr_session_id(u));
  ck_assert_int_eq(zkr_member_new(t, path, "x", ZKR_GROUP_CURATOR, &second), 0);
  ck_assert_int_eq(zkr_member_join(second, 5000, &e2), 0);
  ck_assert_int_eq(owner_of(zh, node), zkr_session_id(t));
  ck_assert_int_gt(e2, e1);
  zkr_member_free(second);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
  zkr_session_free(u);
}
END_TEST

/* Expiry on the server: the member joins again by itself on the new session
 * (LEFT, then JOINED with a new epoch); a follower sees it go and come back
 * as the same id with a new epoch, and never two nodes for it. */
START_TEST(rejoin_after_expiry) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_member_t *m;
  zkr_group_t *g;
  glog_t l = GLOG_INIT;
  mlog_t ml = {0};
  int64_t e1 = 0, sid1;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/g", root);
  ck_assert_int_eq(zkr_member_new(s, path, "w1", ZKR_GROUP_CURATOR, &m), 0);
  ck_assert_int_eq(zkr_member_set_listener(m, on_member, &ml), 0);
  ck_assert_int_eq(zkr_member_join(m, 5000, &e1), 0);
  ck_assert_int_eq(zkr_group_new(t, path, &g), 0);
  ck_assert_int_eq(zkr_group_set_listener(g, on_group, &l), 0);
  ck_assert_int_eq(zkr_group_start(g), 0);
  ck_assert_int_eq(gl_wait(&l, 2, 5000), 2); /* ADDED w1, INITIALIZED */
  sid1 = zkr_session_id(s);
  tu_expire(s, tu_hosts());
  ck_assert_int_eq(ml_wait(&ml, 3, 20000), 3);
  ck_assert_int_eq(atomic_load(&ml.ev[1]), ZKR_MEMBER_LEFT);
  ck_assert_int_eq(atomic_load(&ml.ev[2]), ZKR_MEMBER_JOINED);
  ck_assert_int_gt(atomic_load(&ml.epoch[2]), e1);
  ck_assert_int_ne(zkr_session_id(s), sid1);
  ck_assert_int_eq(zkr_member_is_member(m), 1);
  ck_assert_int_eq(gl_wait(&l, 4, 10000), 4);
  gl_check(&l, 2, ZKR_CACHE_REMOVED, "w1");
  gl_check(&l, 3, ZKR_CACHE_ADDED, "w1");
  ck_assert_int_gt(l.epoch[3], e1);
  ck_assert_int_eq(l.owner[3], zkr_session_id(s));
  ck_assert_int_eq(tu_nchildren(zh, path), 1);
  zkr_member_free(m);
  zkr_group_free(g);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A member cut off from the ensemble for a while (no expiry) stays the same
 * member: no REMOVED or ADDED, the same epoch. */
START_TEST(reconnect_is_no_flap) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble"), *others;
  char root[64], path[128];
  zkr_session_t *s, *t;
  zkr_member_t *m;
  zkr_group_t *g;
  glog_t l = GLOG_INIT;
  mlog_t ml = {0};
  tu_cut_t cut;
  int64_t e1 = 0;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  s = tu_cut_open(&cut, hosts, dir, &others);
  t = tu_open(others, 10000);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/g", root);
  ck_assert_int_eq(zkr_member_new(s, path, "w1", ZKR_GROUP_CURATOR, &m), 0);
  ck_assert_int_eq(zkr_member_set_listener(m, on_member, &ml), 0);
  ck_assert_int_eq(zkr_member_join(m, 10000, &e1), 0);
  ck_assert_int_eq(zkr_group_new(t, path, &g), 0);
  ck_assert_int_eq(zkr_group_set_listener(g, on_group, &l), 0);
  ck_assert_int_eq(zkr_group_start(g), 0);
  ck_assert_int_eq(gl_wait(&l, 2, 10000), 2);
  tu_cut_off(&cut);
  tu_cut_heal(&cut);
  /* A change after the heal shows that the follower is live, and that nothing
   * came before it. */
  ck_assert_int_eq(zkr_member_set_data(m, "after", 5), 0);
  ck_assert_int_eq(gl_wait(&l, 3, 10000), 3);
  gl_check(&l, 2, ZKR_CACHE_UPDATED, "w1");
  ck_assert_int_eq(l.epoch[2], e1);
  ck_assert_int_eq(atomic_load(&ml.n), 1); /* JOINED only */
  zkr_member_free(m);
  zkr_group_free(g);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
  tu_cut_destroy(&cut);
}
END_TEST

/* kazoo Party and ShallowParty nodes on the same path as Curator-format
 * members: each read with its id and format. */
START_TEST(foreign_members_and_bad_input) {
  char root[64], path[128], p[256];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_group_t *g;
  zkr_member_t *m;
  zkr_group_member_t *list;
  glog_t l = GLOG_INIT;
  int n;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/g", root);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(p, sizeof(p), "%s/0123456789abcdef0123456789abcdef__party__", path);
  ck_assert_int_eq(
      zoo_create(zh, p, "kazoo-1", 7, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
  snprintf(p, sizeof(p), "%s/fedcba9876543210fedcba9876543210-shallow-1", path);
  ck_assert_int_eq(
      zoo_create(zh, p, "shallow-1", 9, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
  snprintf(p, sizeof(p), "%s/curator-1", path);
  ck_assert_int_eq(zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zkr_group_new(s, path, &g), 0);
  ck_assert_int_eq(zkr_group_list(g, &list, &n), ZKR_ENOTREADY);
  ck_assert_int_eq(zkr_group_set_listener(g, on_group, &l), 0);
  ck_assert_int_eq(zkr_group_start(g), 0);
  ck_assert_int_eq(gl_wait(&l, 4, 5000), 4);
  ck_assert_int_eq(zkr_group_list(g, &list, &n), 0);
  ck_assert_int_eq(n, 3);
  ck_assert_str_eq(list[0].id, "curator-1");
  ck_assert_int_eq(list[0].format, ZKR_GROUP_CURATOR);
  ck_assert_int_eq(list[0].len, -1);
  ck_assert_str_eq(list[1].id, "kazoo-1");
  ck_assert_int_eq(list[1].format, ZKR_GROUP_KAZOO);
  ck_assert_str_eq(list[2].id, "shallow-1");
  ck_assert_int_eq(list[2].format, ZKR_GROUP_KAZOO_SHALLOW);
  ck_assert_int_eq(list[2].owner, zkr_session_id(s));
  zkr_group_members_free(list, n);
  zkr_group_free(g);

  ck_assert_int_eq(zkr_member_new(NULL, path, "a", 0, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, "rel", "a", 0, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "a/b", 0, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "..", 0, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "", 0, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "a", 7, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "a", ZKR_GROUP_KAZOO_SHALLOW, &m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "a", 0, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_group_new(s, "/", &g), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_new(s, path, "a", 0, &m), 0);
  ck_assert_int_eq(zkr_member_set_data(m, NULL, 3), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_join_async(m, 1000, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_member_leave(m, 1000), ZKR_ENOTHELD);
  ck_assert_str_eq(zkr_group_profile_name(ZKR_GROUP_KAZOO), "kazoo");
  ck_assert_str_eq(zkr_strerror(ZKR_EDUPLICATE), "another session holds this id");
  zkr_member_free(m);
  zkr_member_free(NULL);
  zkr_group_free(NULL);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

/* A settled view: one SETTLED after the first view, and one after a burst of
 * joins, at least the quiet period after the burst's last change. */
START_TEST(settled_view) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_member_t *m[3];
  zkr_group_t *g;
  glog_t l = GLOG_INIT;
  int settled = 0, last_added = -1, second = -1;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/g", root);
  ck_assert_int_eq(zkr_group_new(t, path, &g), 0);
  ck_assert_int_eq(zkr_group_set_settle(g, -1), ZKR_EINVAL);
  ck_assert_int_eq(zkr_group_set_settle(g, 300), 0);
  ck_assert_int_eq(zkr_group_set_settle(g, 300), ZKR_EBUSY);
  ck_assert_int_eq(zkr_group_set_listener(g, on_group, &l), 0);
  ck_assert_int_eq(zkr_group_start(g), 0);
  ck_assert_int_eq(gl_wait(&l, 2, 5000), 2);
  gl_check(&l, 0, ZKR_CACHE_INITIALIZED, "");
  gl_check(&l, 1, ZKR_CACHE_SETTLED, "");
  ck_assert_int_ge(l.at[1] - l.at[0], 300);
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof(id), "m%d", i);
    ck_assert_int_eq(zkr_member_new(s, path, id, ZKR_GROUP_CURATOR, &m[i]), 0);
    ck_assert_int_eq(zkr_member_join(m[i], 5000, NULL), 0);
  }
  ck_assert_int_eq(gl_wait(&l, 6, 5000), 6);
  pthread_mutex_lock(&l.mu);
  for (int i = 0; i < l.n; i++) {
    if (l.type[i] == ZKR_CACHE_SETTLED && ++settled == 2)
      second = i;
    if (l.type[i] == ZKR_CACHE_ADDED)
      last_added = i;
  }
  if (settled != 2 || second != 5)
    gl_dump(&l);
  ck_assert_int_eq(settled, 2);
  ck_assert_int_eq(second, 5); /* after the three ADDED, not between them */
  ck_assert_int_ge(l.at[second] - l.at[last_added], 300);
  pthread_mutex_unlock(&l.mu);
  for (int i = 0; i < 3; i++)
    zkr_member_free(m[i]);
  zkr_group_free(g); /* a spell in progress: its timer finds no group */
  {
    int at_free = gl_count(&l);
    usleep(400 * 1000); /* past the spell: time for a stray SETTLED to show */
    ck_assert_int_eq(gl_count(&l), at_free);
  }
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

Suite *group_suite(void) {
  Suite *su = suite_create("group");
  TCase *tc = tcase_create("group");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, join_leave_and_view);
  tcase_add_test(tc, duplicates_and_old_sessions);
  tcase_add_test(tc, rejoin_after_expiry);
  tcase_add_test(tc, foreign_members_and_bad_input);
  tcase_add_test(tc, settled_view);
  tcase_add_test(tc, reconnect_is_no_flap);
  suite_add_tcase(su, tc);
  return su;
}
