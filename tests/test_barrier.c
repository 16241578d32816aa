/* SPDX-License-Identifier: Apache-2.0 */
/* The barrier and the double barrier against the real test server. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

typedef struct done {
  _Atomic int n, rc;
} done_t;

static void on_bar(zkr_barrier_t *b, int rc, void *arg) {
  done_t *d = arg;
  (void)b;
  atomic_store(&d->rc, rc);
  atomic_fetch_add(&d->n, 1);
}

static void on_db(zkr_dbarrier_t *b, int rc, void *arg) {
  on_bar((zkr_barrier_t *)b, rc, arg);
}

static int done_wait(done_t *d, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (atomic_load(&d->n) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_msg(atomic_load(&d->n) == 1, "no callback within %d ms", timeout_ms);
  return atomic_load(&d->rc);
}

/* Still pending after a while (a condition that must not come true). */
static void still_pending(done_t *d, int ms) {
  usleep((useconds_t)ms * 1000);
  ck_assert_int_eq(atomic_load(&d->n), 0);
}

/* Remove and set again in one transaction: a pulse no reader sees absent. */
static int pulse(zhandle_t *zh, const char *path) {
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  zoo_delete_op_init(&ops[0], path, -1);
  zoo_create_op_init(&ops[1], path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  return zoo_multi(zh, 2, ops, res);
}

START_TEST(barrier_set_wait_remove) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_barrier_t *a, *b;
  done_t d = {0};
  struct Stat st;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/gate/b", root);
  ck_assert_int_eq(zkr_barrier_new(s, path, &a), 0);
  ck_assert_int_eq(zkr_barrier_new(t, path, &b), 0);
  ck_assert_int_eq(zkr_barrier_wait(b, 0), 0); /* not up: passes */
  ck_assert_int_eq(zkr_barrier_set(a, 5000), 0);
  ck_assert_int_eq(zkr_barrier_set(a, 5000), 0); /* up already: fine */
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s), path, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, 0);
  ck_assert_int_eq(zkr_barrier_wait(b, 0), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_barrier_wait(b, 200), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_barrier_wait_async(b, 20000, on_bar, &d), 0);
  ck_assert_int_eq(zkr_barrier_wait_async(b, 20000, on_bar, &d), ZKR_EBUSY);
  still_pending(&d, 200);
  ck_assert_int_eq(zkr_barrier_remove(a, 5000), 0);
  ck_assert_int_eq(done_wait(&d, 5000), 0);
  ck_assert_int_eq(zkr_barrier_remove(a, 5000), 0); /* down already: fine */
  ck_assert_int_eq(zkr_barrier_wait(b, 5000), 0);
  zkr_barrier_free(a);
  zkr_barrier_free(b);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A remove and set in one transaction lets the waiters through: they see the
 * node replaced (its czxid), while connected and while cut off. */
START_TEST(barrier_pulse) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble"), *others;
  char root[64], path[128];
  zkr_session_t *s, *t;
  zkr_barrier_t *b, *c;
  done_t d = {0}, e = {0};
  tu_cut_t cut;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  s = tu_cut_open(&cut, hosts, dir, &others);
  t = tu_open(others, 10000);
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/gate", root);
  ck_assert_int_eq(zkr_barrier_new(t, path, &c), 0);
  ck_assert_int_eq(zkr_barrier_set(c, 10000), 0);
  ck_assert_int_eq(zkr_barrier_wait_async(c, 20000, on_bar, &e), 0);
  ck_assert_int_eq(zkr_barrier_new(s, path, &b), 0);
  ck_assert_int_eq(zkr_barrier_wait_async(b, 60000, on_bar, &d), 0);
  still_pending(&e, 300);
  ck_assert_int_eq(pulse(zkr_session_zhandle(t), path), ZOK); /* connected */
  ck_assert_int_eq(done_wait(&e, 10000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 0);

  /* Cut off while it waits, pulsed meanwhile: it passes once back. */
  memset(&d, 0, sizeof(d));
  ck_assert_int_eq(zkr_barrier_wait_async(b, 60000, on_bar, &d), 0);
  still_pending(&d, 300);
  tu_cut_off(&cut);
  for (int64_t end = tu_now_ms() + 30000;;) { /* the ensemble elects a leader meanwhile */
    int rc = zkr_session_wait_connected(t, 15000) == 0 ? pulse(zkr_session_zhandle(t), path)
                                                       : ZCONNECTIONLOSS;
    if (rc == ZOK || tu_now_ms() > end) {
      ck_assert_int_eq(rc, ZOK);
      break;
    }
    usleep(50 * 1000);
  }
  ck_assert_int_eq(atomic_load(&d.n), 0);
  tu_cut_heal(&cut);
  ck_assert_int_eq(done_wait(&d, 20000), 0);
  zkr_barrier_free(b);
  zkr_barrier_free(c);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
  tu_cut_destroy(&cut);
}
END_TEST

/* Members enter together and leave together; nothing is left. */
#define NM 3
START_TEST(dbarrier_enter_leave) {
  char root[64], path[128], ready[160], node[40];
  zkr_session_t *s[NM];
  zkr_dbarrier_t *m[NM];
  done_t d[NM];
  struct Stat st;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/round-1", root);
  snprintf(ready, sizeof(ready), "%s/ready", path);
  memset(d, 0, sizeof(d));
  for (int i = 0; i < NM; i++) {
    s[i] = tu_open(tu_hosts(), 10000);
    ck_assert_int_eq(zkr_dbarrier_new(s[i], path, NM, &m[i]), 0);
  }
  ck_assert_int_eq(zkr_dbarrier_leave(m[0], 1000), ZKR_ENOTHELD);
  for (int i = 0; i < NM - 1; i++)
    ck_assert_int_eq(zkr_dbarrier_enter_async(m[i], 30000, on_db, &d[i]), 0);
  tu_wait_children(zkr_session_zhandle(s[0]), path, NM - 1, 5000);
  still_pending(&d[0], 300);
  ck_assert_int_eq(atomic_load(&d[1].n), 0);
  ck_assert_int_eq(zkr_dbarrier_enter(m[NM - 1], 10000), 0);
  for (int i = 0; i < NM - 1; i++)
    ck_assert_int_eq(done_wait(&d[i], 10000), 0);
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s[0]), ready, 0, &st), ZOK);
  ck_assert_ptr_nonnull(zkr_dbarrier_node(m[0], node, sizeof(node)));
  ck_assert_int_eq(strlen(node), 36);
  ck_assert_int_eq(zkr_dbarrier_enter(m[0], 1000), ZKR_EBUSY); /* entered */

  /* Leave: the first to leave waits for the others. */
  memset(d, 0, sizeof(d));
  for (int i = 0; i < NM - 1; i++)
    ck_assert_int_eq(zkr_dbarrier_leave_async(m[i], 30000, on_db, &d[i]), 0);
  still_pending(&d[0], 300);
  ck_assert_int_eq(atomic_load(&d[1].n), 0);
  ck_assert_int_eq(zkr_dbarrier_leave(m[NM - 1], 10000), 0);
  for (int i = 0; i < NM - 1; i++)
    ck_assert_int_eq(done_wait(&d[i], 10000), 0);
  tu_wait_children(zkr_session_zhandle(s[0]), path, 0, 5000); /* ready went too */
  ck_assert_ptr_null(zkr_dbarrier_node(m[0], node, sizeof(node)));
  for (int i = 0; i < NM; i++) {
    zkr_dbarrier_free(m[i]);
    if (i > 0)
      zkr_session_free(s[i]);
  }
  tu_rmr(zkr_session_zhandle(s[0]), root);
  zkr_session_free(s[0]);
}
END_TEST

/* A ready left over from an earlier round neither lets a member through
 * alone nor keeps the members waiting: it is replaced. A member whose enter
 * times out removes its node (the others do not count it). */
START_TEST(dbarrier_stale_ready_and_timeout) {
  char root[64], path[128], ready[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_dbarrier_t *a, *b, *c;
  done_t d = {0};
  struct Stat old, now;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/round", root);
  snprintf(ready, sizeof(ready), "%s/ready", path);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, ready, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_exists(zh, ready, 0, &old), ZOK);
  ck_assert_int_eq(zkr_dbarrier_new(s, path, 2, &a), 0);
  ck_assert_int_eq(zkr_dbarrier_new(t, path, 2, &b), 0);
  ck_assert_int_eq(zkr_dbarrier_new(t, path, 2, &c), 0);

  /* Alone with the stale ready: waits; times out and takes its node away. */
  ck_assert_int_eq(zkr_dbarrier_enter(a, 0), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_dbarrier_enter(a, 300), ZKR_ETIMEDOUT);
  tu_wait_children(zh, path, 1, 5000); /* only ready */
  ck_assert_int_eq(zkr_dbarrier_enter(c, 300), ZKR_ETIMEDOUT);
  tu_wait_children(zh, path, 1, 5000);
  /* a waits; b comes: both pass, the ready is a new one. */
  ck_assert_int_eq(zkr_dbarrier_enter_async(a, 20000, on_db, &d), 0);
  tu_wait_children(zh, path, 2, 5000);
  still_pending(&d, 300);
  ck_assert_int_eq(zkr_dbarrier_enter(b, 10000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 0);
  ck_assert_int_eq(zoo_exists(zh, ready, 0, &now), ZOK);
  ck_assert_int_gt(now.czxid, old.czxid);
  memset(&d, 0, sizeof(d));
  ck_assert_int_eq(zkr_dbarrier_leave_async(a, 20000, on_db, &d), 0);
  ck_assert_int_eq(zkr_dbarrier_leave(b, 10000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 0);
  tu_wait_children(zh, path, 0, 5000);
  zkr_dbarrier_free(a);
  zkr_dbarrier_free(b);
  zkr_dbarrier_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A waiting member's session expires: its node is made again on the new
 * session, and it passes with the others. */
START_TEST(dbarrier_expiry_while_waiting) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_dbarrier_t *a, *b;
  done_t d = {0};
  char first[40], node[40];

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/round", root);
  ck_assert_int_eq(zkr_dbarrier_new(s, path, 2, &a), 0);
  ck_assert_int_eq(zkr_dbarrier_new(t, path, 2, &b), 0);
  ck_assert_int_eq(zkr_dbarrier_enter_async(a, 30000, on_db, &d), 0);
  tu_wait_children(zkr_session_zhandle(t), path, 1, 5000);
  /* (the server has the node; the create's reply may still be on its way) */
  for (int64_t end = tu_now_ms() + 10000;
       !zkr_dbarrier_node(a, first, sizeof(first)) && tu_now_ms() < end;)
    usleep(2000);
  ck_assert_ptr_nonnull(zkr_dbarrier_node(a, first, sizeof(first)));
  tu_expire(s, tu_hosts());
  for (int64_t end = tu_now_ms() + 10000; tu_now_ms() < end; usleep(2000)) {
    const char *n = zkr_dbarrier_node(a, node, sizeof(node)); /* made again, renamed */
    if (n && strcmp(n, first) != 0)
      break;
  }
  ck_assert_ptr_nonnull(zkr_dbarrier_node(a, node, sizeof(node)));
  ck_assert_str_ne(node, first);
  tu_wait_children(zkr_session_zhandle(t), path, 1, 10000);
  still_pending(&d, 100);
  ck_assert_int_eq(zkr_dbarrier_enter(b, 10000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 0);
  zkr_dbarrier_free(a); /* entered: its node goes */
  zkr_dbarrier_free(b);
  tu_wait_children(zkr_session_zhandle(t), path, 1, 5000); /* the ready */
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

Suite *barrier_suite(void) {
  Suite *su = suite_create("barrier");
  TCase *tc = tcase_create("barrier");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, barrier_set_wait_remove);
  tcase_add_test(tc, barrier_pulse);
  tcase_add_test(tc, dbarrier_enter_leave);
  tcase_add_test(tc, dbarrier_stale_ready_and_timeout);
  tcase_add_test(tc, dbarrier_expiry_while_waiting);
  suite_add_tcase(su, tc);
  return su;
}
