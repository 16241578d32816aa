/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election against the real standalone test server. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h"
#include "suites.h"
#include "testutil.h"

#define MAXC 6

typedef struct cand {
  zkr_session_t *s;
  zkr_election_t *e;
  char id[24];
  pthread_mutex_t mu;
  int events[64];
  int64_t epochs[64];
  int nev;
} cand_t;

static void record_event(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  cand_t *c = arg;
  (void)e;
  pthread_mutex_lock(&c->mu);
  if (c->nev < 64) {
    c->events[c->nev] = ev;
    c->epochs[c->nev] = epoch;
    c->nev++;
  }
  pthread_mutex_unlock(&c->mu);
}

static int count_event(cand_t *c, int ev) {
  int n = 0;
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->nev; i++)
    n += c->events[i] == ev;
  pthread_mutex_unlock(&c->mu);
  return n;
}

static int wait_event(cand_t *c, int ev, int count, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (count_event(c, ev) < count && tu_now_ms() < deadline)
    usleep(1000);
  return count_event(c, ev) >= count;
}

static void cand_open(cand_t *c, const char *path, int i, int session_ms) {
  memset(c, 0, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  snprintf(c->id, sizeof(c->id), "cand-%d", i);
  c->s = tu_open(tu_hosts(), session_ms);
  ck_assert_int_eq(zkr_election_new(c->s, path, c->id, (int)strlen(c->id), &c->e), 0);
  ck_assert_int_eq(zkr_election_set_listener(c->e, record_event, c), 0);
}

static void cand_close(cand_t *c) {
  zkr_election_free(c->e);
  zkr_session_free(c->s);
  pthread_mutex_destroy(&c->mu);
}

/* Poll until exactly one candidate leads; fail if two ever do. Returns it. */
static int sole_leader(cand_t *c, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  for (;;) {
    int leaders = 0, who = -1;
    for (int i = 0; i < n; i++) {
      if (c[i].e && zkr_election_is_leader(c[i].e)) {
        leaders++;
        who = i;
      }
    }
    ck_assert_msg(leaders <= 1, "%d leaders at once", leaders);
    if (leaders == 1)
      return who;
    ck_assert_msg(tu_now_ms() < deadline, "no leader within %d ms", timeout_ms);
    usleep(500);
  }
}

START_TEST(one_leader_and_graceful_handovers) {
  enum { N = 4, HANDOVERS = 12 };
  char root[64], path[128];
  cand_t c[N];
  zkr_session_t *obs = tu_open(tu_hosts(), 10000);
  int64_t last_epoch = 0;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  for (int i = 0; i < N; i++) {
    cand_open(&c[i], path, i, 10000);
    ck_assert_int_eq(zkr_election_start(c[i].e), 0);
  }
  ck_assert_int_eq(zkr_election_start(c[0].e), ZKR_EBUSY);
  for (int h = 0; h < HANDOVERS; h++) {
    int who = sole_leader(c, N, 10000);
    int64_t epoch;
    char *id;
    int len;
    ck_assert_int_eq(zkr_election_epoch(c[who].e, &epoch), 0);
    ck_assert_msg(epoch > last_epoch, "epoch %lld after %lld", (long long)epoch,
                  (long long)last_epoch);
    last_epoch = epoch;
    /* An observer that never joined sees the same leader. */
    ck_assert_int_eq(zkr_election_leader(obs, path, 5000, &id, &len), 0);
    ck_assert_str_eq(id, c[who].id);
    ck_assert_int_eq(len, (int)strlen(c[who].id));
    free(id);
    for (int i = 0; i < N; i++)
      if (i != who)
        ck_assert_int_eq(zkr_election_epoch(c[i].e, &epoch), ZKR_ENOTHELD);
    /* The next in line heard the new leader's touch and listed again: it knows
     * it will lead as soon as the leader's node goes. */
    {
      int64_t until = tu_now_ms() + 10000;
      int ready = 0;
      while (!ready && tu_now_ms() < until) {
        for (int i = 0; i < N; i++) {
          zkr__queue_stats_t st;
          zkr__election_stats(c[i].e, &st);
          ready |= st.next_in_line;
        }
        if (!ready)
          usleep(1000);
      }
      ck_assert_msg(ready, "nobody became next in line after hand-over %d", h);
    }
    /* Graceful handover: the leader steps back to the end of the queue. */
    ck_assert_int_eq(zkr_election_resign(c[who].e, 1), 0);
    ck_assert(!zkr_election_is_leader(c[who].e));
    ck_assert_int_eq(count_event(&c[who], ZKR_ELECTION_NOT_LEADER),
                     count_event(&c[who], ZKR_ELECTION_LEADER));
  }
  sole_leader(c, N, 10000);
  {
    /* Each new leader had heard its predecessor's touch, listed again while it
     * was still second, and led on the departure without another listing. */
    uint64_t without = 0;
    for (int i = 0; i < N; i++) {
      zkr__queue_stats_t st;
      ck_assert_int_eq(zkr__election_stats(c[i].e, &st), 0);
      without += st.grants_without_list;
    }
    ck_assert_msg(without >= HANDOVERS, "only %llu of %d hand-overs skipped the listing",
                  (unsigned long long)without, HANDOVERS);
  }
  for (int i = 0; i < N; i++)
    cand_close(&c[i]);
  tu_wait_children(zkr_session_zhandle(obs), path, 0, 5000);
  {
    char *id;
    ck_assert_int_eq(zkr_election_leader(obs, path, 5000, &id, NULL), ZNONODE);
    ck_assert_ptr_null(id);
  }
  tu_rmr(zkr_session_zhandle(obs), root);
  zkr_session_free(obs);
}
END_TEST

START_TEST(leader_expired_lost_next_leads_guard_fails) {
  char root[64], path[128], data[160];
  cand_t a, b;
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  int64_t ea, eb;
  zkr_session_t *obs = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(obs);

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  snprintf(data, sizeof(data), "%s/data", root);
  cand_open(&a, path, 0, 4000);
  cand_open(&b, path, 1, 10000);
  ck_assert_int_eq(zkr_election_set_rejoin(a.e, 1), 0);
  ck_assert_int_eq(zkr_election_start(a.e), 0);
  ck_assert_int_eq(zkr_election_await(a.e, 10000, &ea), 0);
  ck_assert(wait_event(&a, ZKR_ELECTION_LEADER, 1, 5000));
  ck_assert_int_eq(a.epochs[0], ea);
  ck_assert_int_eq(zkr_election_start(b.e), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zoo_create(zh, data, "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_election_guard(a.e, &ops[0]), 0);
  zoo_set_op_init(&ops[1], data, "1", 1, -1, NULL);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZOK); /* leader-only write commits */
  ck_assert_int_eq(zkr_election_guard(b.e, &ops[1]), ZKR_ENOTHELD);

  tu_expire(a.s, tu_hosts());
  ck_assert_int_eq(zkr_election_await(b.e, 20000, &eb), 0);
  ck_assert_msg(eb > ea, "epochs must increase");
  ck_assert(wait_event(&a, ZKR_ELECTION_LOST, 1, 10000));
  ck_assert(!zkr_election_is_leader(a.e));
  /* The guard taken while a led no longer lets a write through. */
  zoo_set_op_init(&ops[1], data, "2", 1, -1, NULL);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZNONODE);
  /* a asked to rejoin: it is queued again, behind b, on its new session. */
  tu_wait_children(zh, path, 2, 10000);
  ck_assert(zkr_election_is_leader(b.e) && !zkr_election_is_leader(a.e));
  /* ... and the old guard still names the old node, not a's new one. */
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZNONODE);
  /* b leaves: a leads again, with a newer epoch. */
  ck_assert_int_eq(zkr_election_resign(b.e, 0), 0);
  ck_assert_int_eq(zkr_election_await(a.e, 10000, &ea), 0);
  ck_assert(ea > eb);
  cand_close(&a);
  cand_close(&b);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(obs);
}
END_TEST

static void await_cb(zkr_election_t *e, int rc, int64_t epoch, void *arg) {
  int *out = arg;
  (void)e, (void)epoch;
  __atomic_store_n(&out[1], rc, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&out[0], 1, __ATOMIC_SEQ_CST);
}

START_TEST(await_timeouts_resign_and_rejoin) {
  char root[64], path[128];
  cand_t a, b;
  int64_t t0, el, epoch;
  int r1[2] = {0, 99}, r2[2] = {0, 99}, r3[2] = {0, 99};
  zkr_contender_t *c;
  int n;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  cand_open(&a, path, 0, 10000);
  cand_open(&b, path, 1, 10000);
  ck_assert_int_eq(zkr_election_await(b.e, 100, &epoch), ZKR_ENOTHELD); /* not joined */
  ck_assert_int_eq(zkr_election_resign(b.e, 0), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_election_start(a.e), 0);
  ck_assert_int_eq(zkr_election_await(a.e, 10000, NULL), 0);
  ck_assert_int_eq(zkr_election_start(b.e), 0);
  t0 = tu_now_ms();
  ck_assert_int_eq(zkr_election_await(b.e, 300, &epoch), ZKR_ETIMEDOUT);
  el = tu_now_ms() - t0;
  ck_assert_msg(el >= 295 && el < 2000, "await gave up after %lld ms", (long long)el);
  ck_assert_int_eq(zkr_election_await_async(b.e, 200, await_cb, r1), 0);
  ck_assert_int_eq(zkr_election_await_async(a.e, 200, await_cb, r2),
                   0); /* leads already */
  t0 = tu_now_ms();
  while ((__atomic_load_n(&r1[0], __ATOMIC_SEQ_CST) == 0 ||
          __atomic_load_n(&r2[0], __ATOMIC_SEQ_CST) == 0) &&
         tu_now_ms() - t0 < 5000)
    usleep(1000);
  ck_assert_int_eq(r1[0], 1);
  ck_assert_int_eq(r1[1], ZKR_ETIMEDOUT);
  ck_assert_int_eq(r2[0], 1);
  ck_assert_int_eq(r2[1], 0);

  /* b waits without a deadline; a resigns and rejoins at the back. */
  ck_assert_int_eq(zkr_election_await_async(b.e, -1, await_cb, r3), 0);
  ck_assert_int_eq(zkr_election_resign(a.e, 1), 0);
  ck_assert(wait_event(&a, ZKR_ELECTION_NOT_LEADER, 1, 5000));
  t0 = tu_now_ms();
  while (__atomic_load_n(&r3[0], __ATOMIC_SEQ_CST) == 0 && tu_now_ms() - t0 < 10000)
    usleep(1000);
  ck_assert_int_eq(r3[1], 0);
  ck_assert(zkr_election_is_leader(b.e));
  ck_assert_int_eq(zkr_contenders_list(b.s, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(c[0].data, "cand-1");
  ck_assert_str_eq(c[1].data, "cand-0"); /* a at the back */
  ck_assert_int_eq(c[0].format, ZKR_FORMAT_CURATOR_LATCH);
  ck_assert_ptr_nonnull(strstr(c[0].name, "-latch-"));
  zkr_contenders_free(c, n);
  usleep(100 * 1000);
  ck_assert_int_eq(r1[0] + r2[0] + r3[0], 3); /* each exactly once */
  cand_close(&a);
  cand_close(&b);
  {
    zkr_session_t *x = tu_open(tu_hosts(), 10000);
    tu_wait_children(zkr_session_zhandle(x), path, 0, 5000);
    tu_rmr(zkr_session_zhandle(x), root);
    zkr_session_free(x);
  }
}
END_TEST

START_TEST(curator_latch_nodes_ordered_with_ours) {
  char root[64], path[128], pre[256], first[256], last[256];
  cand_t a;
  zkr_session_t *x = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(x);
  zkr_contender_t *c;
  int n;
  char *id;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  /* What a Curator LeaderLatch participant writes. */
  snprintf(pre, sizeof(pre), "%s/_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-latch-", path);
  ck_assert_int_eq(zoo_create(zh, pre, "java-1", 6, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, first, sizeof(first)),
                   ZOK);
  cand_open(&a, path, 0, 10000);
  ck_assert_int_eq(zkr_election_start(a.e), 0);
  tu_wait_children(zh, path, 2, 5000);
  snprintf(pre, sizeof(pre), "%s/_c_7ba7b810-9dad-41d1-80b4-00c04fd430c8-latch-", path);
  ck_assert_int_eq(zoo_create(zh, pre, "java-2", 6, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, last, sizeof(last)),
                   ZOK);
  ck_assert_int_eq(zkr_election_await(a.e, 300, NULL), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_election_leader(x, path, 5000, &id, NULL), 0);
  ck_assert_str_eq(id, "java-1");
  free(id);
  ck_assert_int_eq(zkr_contenders_list(x, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 3);
  ck_assert_str_eq(c[0].data, "java-1");
  ck_assert_str_eq(c[1].data, "cand-0");
  ck_assert_str_eq(c[2].data, "java-2");
  zkr_contenders_free(c, n);
  /* The Java leader leaves: we lead, ahead of the later Java candidate. */
  ck_assert_int_eq(zoo_delete(zh, first, -1), ZOK);
  ck_assert_int_eq(zkr_election_await(a.e, 10000, NULL), 0);
  ck_assert_int_eq(zoo_delete(zh, last, -1), ZOK);
  cand_close(&a);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(x);
}
END_TEST

START_TEST(suspect_and_recovered_across_server_restart) {
  const char *dir = tu_zkdir("standalone");
  char root[64], path[128];
  cand_t a;
  int64_t e1, e2;

  if (!dir)
    TU_SKIP("the test server is not ours to restart");
  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  cand_open(&a, path, 0, 30000);
  ck_assert_int_eq(zkr_election_start(a.e), 0);
  ck_assert_int_eq(zkr_election_await(a.e, 10000, &e1), 0);
  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s 1", dir), 0);
  ck_assert(wait_event(&a, ZKR_ELECTION_SUSPECT, 1, 15000));
  ck_assert(!zkr_election_is_leader(a.e)); /* uncertain: not acting as leader */
  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s 1", dir), 0);
  ck_assert(wait_event(&a, ZKR_ELECTION_RECOVERED, 1, 30000));
  ck_assert(zkr_election_is_leader(a.e));
  ck_assert_int_eq(zkr_election_epoch(a.e, &e2), 0);
  ck_assert_int_eq(e1, e2); /* the same leadership */
  ck_assert_int_eq(count_event(&a, ZKR_ELECTION_LOST), 0);
  cand_close(&a);
  {
    zkr_session_t *x = tu_open(tu_hosts(), 10000);
    tu_rmr(zkr_session_zhandle(x), root);
    zkr_session_free(x);
  }
}
END_TEST

/* W2: timeout 0 tries once. 0.1.0 gave ZKR_ETIMEDOUT for await(0) right after
 * start even alone in the election, and for zkr_election_leader(..., 0) and
 * zkr_contenders_list(..., 0) always. */
typedef struct awaited {
  _Atomic int calls, rc;
} awaited_t;

static void on_awaited(zkr_election_t *e, int rc, int64_t epoch, void *arg) {
  awaited_t *a = arg;
  (void)e, (void)epoch;
  atomic_store(&a->rc, rc);
  atomic_fetch_add(&a->calls, 1);
}

static int awaited_wait(awaited_t *a, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (atomic_load(&a->calls) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  return atomic_load(&a->calls);
}

START_TEST(timeout_zero_tries_once) {
  char root[64], path[128], *id = NULL;
  cand_t c[3];
  awaited_t a1 = {0, 99}, a2 = {0, 99};
  zkr_contender_t *list;
  int n, len;
  int64_t epoch = 0;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  for (int i = 0; i < 3; i++)
    cand_open(&c[i], path, i, 10000);
  /* Alone, right after start: the answer waits for the first listing. */
  ck_assert_int_eq(zkr_election_start(c[0].e), 0);
  ck_assert_int_eq(zkr_election_await(c[0].e, 0, &epoch), 0);
  ck_assert_int_gt(epoch, 0);
  ck_assert_int_eq(zkr_election_leader(c[0].s, path, 0, &id, &len), 0);
  ck_assert_str_eq(id, "cand-0");
  free(id);
  ck_assert_int_eq(zkr_contenders_list(c[0].s, path, 0, &list, &n), 0);
  ck_assert_int_eq(n, 1);
  zkr_contenders_free(list, n);
  /* Behind the leader: ZKR_ETIMEDOUT once the place is known, sync and async. */
  ck_assert_int_eq(zkr_election_start(c[1].e), 0);
  ck_assert_int_eq(zkr_election_await(c[1].e, 0, NULL), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_election_start(c[2].e), 0);
  ck_assert_int_eq(zkr_election_await_async(c[2].e, 0, on_awaited, &a1), 0);
  ck_assert_int_eq(awaited_wait(&a1, 10000), 1);
  ck_assert_int_eq(atomic_load(&a1.rc), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_election_await_async(c[1].e, 0, on_awaited, &a2), 0);
  ck_assert_int_eq(awaited_wait(&a2, 10000), 1);
  ck_assert_int_eq(atomic_load(&a2.rc), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_election_await(c[0].e, 0, NULL), 0);
  for (int i = 0; i < 3; i++)
    cand_close(&c[i]);
  {
    zkr_session_t *s = tu_open(tu_hosts(), 10000);
    tu_wait_children(zkr_session_zhandle(s), path, 0, 5000);
    tu_rmr(zkr_session_zhandle(s), root);
    zkr_session_free(s);
  }
}
END_TEST

/* H3: resign racing the grant. In 0.1.0 the queue could grant (the node
 * leads) before the election heard of it; a resign in between found nothing to
 * cancel, the late grant was ignored as stale, and the leader node stayed for
 * good: nobody else could lead. The grant and the election's state now change
 * together, under one mutex, so the earliest a resign can come is from the
 * LEADER event itself (callback context): it must leave no node behind. */
static zkr_election_t *_Atomic resign_in_grant;
static _Atomic int resigned_in_grant;

static void resign_at_leader_event(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  record_event(e, ev, epoch, arg);
  if (ev == ZKR_ELECTION_LEADER && e == atomic_load(&resign_in_grant)) {
    atomic_store(&resign_in_grant, NULL);
    atomic_store(&resigned_in_grant, zkr_election_resign(e, 0) == 0 ? 1 : -1);
  }
}

START_TEST(resign_at_the_grant_leaves_no_node) {
  char root[64], path[128];
  cand_t c[2];
  zhandle_t *zh;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  cand_open(&c[0], path, 0, 10000);
  cand_open(&c[1], path, 1, 10000);
  zh = zkr_session_zhandle(c[1].s);
  atomic_store(&resigned_in_grant, 0);
  atomic_store(&resign_in_grant, c[0].e);
  ck_assert_int_eq(zkr_election_set_listener(c[0].e, resign_at_leader_event, &c[0]), 0);
  ck_assert_int_eq(zkr_election_start(c[0].e), 0);
  {
    int64_t deadline = tu_now_ms() + 10000;
    while (atomic_load(&resigned_in_grant) == 0 && tu_now_ms() < deadline)
      usleep(1000);
  }
  ck_assert_int_eq(atomic_load(&resigned_in_grant), 1);
  ck_assert(!zkr_election_is_leader(c[0].e));
  ck_assert_int_eq(count_event(&c[0], ZKR_ELECTION_LEADER), 1);
  ck_assert(wait_event(&c[0], ZKR_ELECTION_NOT_LEADER, 1, 5000));
  tu_wait_children(zh, path, 0, 5000);
  ck_assert_int_eq(zkr_election_start(c[1].e), 0);
  ck_assert_int_eq(zkr_election_await(c[1].e, 10000, NULL), 0);
  cand_close(&c[0]);
  cand_close(&c[1]);
  {
    zkr_session_t *s = tu_open(tu_hosts(), 10000);
    tu_wait_children(zkr_session_zhandle(s), path, 0, 5000);
    tu_rmr(zkr_session_zhandle(s), root);
    zkr_session_free(s);
  }
}
END_TEST

START_TEST(bad_input_creates_nothing) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_election_t *e = (zkr_election_t *)0x1;
  char *big = calloc(2000000, 1);

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/election", root);
  ck_assert_int_eq(zkr_election_new(s, "relative", "x", 1, &e), ZKR_EINVAL);
  ck_assert_ptr_null(e);
  ck_assert_int_eq(zkr_election_new(s, "/a/", "x", 1, &e), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_new(s, path, NULL, 1, &e), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_new(s, path, "x", 0, &e), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_new(s, path, big, 2000000, &e), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_new(NULL, path, "x", 1, &e), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_new(s, path, "x", 1, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s), root, 0, NULL), ZNONODE);
  ck_assert_int_eq(zkr_election_new(s, path, "x", 1, &e), 0);
  ck_assert_int_eq(zkr_election_await_async(e, 100, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_await(e, -5, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_election_guard(e, NULL), ZKR_EINVAL);
  zkr_election_free(e);
  zkr_election_free(NULL);
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s), root, 0, NULL), ZNONODE);
  free(big);
  zkr_session_free(s);
}
END_TEST

Suite *election_suite(void) {
  Suite *s = suite_create("election");
  TCase *tc = tcase_create("election");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bad_input_creates_nothing);
  tcase_add_test(tc, one_leader_and_graceful_handovers);
  tcase_add_test(tc, await_timeouts_resign_and_rejoin);
  tcase_add_test(tc, curator_latch_nodes_ordered_with_ours);
  tcase_add_test(tc, leader_expired_lost_next_leads_guard_fails);
  tcase_add_test(tc, suspect_and_recovered_across_server_restart);
  tcase_add_test(tc, timeout_zero_tries_once);
  tcase_add_test(tc, resign_at_the_grant_leaves_no_node);
  suite_add_tcase(s, tc);
  return s;
}
