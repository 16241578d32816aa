/* SPDX-License-Identifier: Apache-2.0 */
/* The exclusive lock against the real standalone test server. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h"
#include "suites.h"
#include "testutil.h"

/* ---- helpers ---- */

typedef struct done {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int calls;
  int rc;
  int order; /* value of a shared counter when the callback ran */
} done_t;

static _Atomic int order_counter;

#define DONE_INIT                                                                        \
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 99, 0 }

static void done_cb(zkr_lock_t *l, int rc, void *arg) {
  done_t *d = arg;
  (void)l;
  pthread_mutex_lock(&d->mu);
  d->calls++;
  d->rc = rc;
  d->order = atomic_fetch_add(&order_counter, 1);
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

/* Wait until the callback ran (or timeout); returns the number of calls. */
static int done_wait(done_t *d, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int n;
  pthread_mutex_lock(&d->mu);
  while (d->calls == 0 && tu_now_ms() < deadline) {
    pthread_mutex_unlock(&d->mu);
    usleep(1000);
    pthread_mutex_lock(&d->mu);
  }
  n = d->calls;
  pthread_mutex_unlock(&d->mu);
  return n;
}

static int done_calls(done_t *d) {
  int n;
  pthread_mutex_lock(&d->mu);
  n = d->calls;
  pthread_mutex_unlock(&d->mu);
  return n;
}

static void lock_path(char *buf, size_t len, const char *root) {
  snprintf(buf, len, "%s/locks/a", root);
}

/* ---- tests ---- */

struct mx {
  const char *path;
  int rounds;
  long counter;       /* unsynchronised on purpose */
  _Atomic int inside; /* holders at this moment */
  _Atomic int max_inside;
  _Atomic int errors;
};

static void *mx_worker(void *arg) {
  struct mx *m = arg;
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  ck_assert_int_eq(zkr_lock_new(s, m->path, &l), 0);
  for (int i = 0; i < m->rounds; i++) {
    int rc = zkr_lock_acquire(l, 30000), now;
    if (rc != 0) {
      atomic_fetch_add(&m->errors, 1);
      continue;
    }
    now = atomic_fetch_add(&m->inside, 1) + 1;
    if (now > atomic_load(&m->max_inside))
      atomic_store(&m->max_inside, now);
    {
      long v = m->counter; /* read, yield, write: loses updates without the lock */
      usleep(200);
      m->counter = v + 1;
    }
    atomic_fetch_sub(&m->inside, 1);
    if (zkr_lock_release(l, 10000) != 0)
      atomic_fetch_add(&m->errors, 1);
  }
  zkr_lock_free(l);
  zkr_session_free(s);
  return NULL;
}

START_TEST(mutual_exclusion_many_sessions) {
  enum { N = 6, ROUNDS = 25 };
  char root[64], path[128];
  pthread_t t[N];
  struct mx m = {0};
  zkr_session_t *obs = tu_open(tu_hosts(), 10000);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  m.path = path;
  m.rounds = ROUNDS;
  for (int i = 0; i < N; i++)
    pthread_create(&t[i], NULL, mx_worker, &m);
  for (int i = 0; i < N; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(atomic_load(&m.errors), 0);
  ck_assert_int_eq(atomic_load(&m.max_inside), 1);
  ck_assert_int_eq(m.counter, N * ROUNDS);
  /* Every session is closed: no lock node may remain. */
  tu_wait_children(zkr_session_zhandle(obs), path, 0, 5000);
  tu_rmr(zkr_session_zhandle(obs), root);
  zkr_session_free(obs);
}
END_TEST

START_TEST(fifo_grant_order_and_one_watch_per_waiter) {
  enum { W = 4 };
  char root[64], path[128];
  zkr_session_t *s[W + 1];
  zkr_lock_t *l[W + 1];
  done_t d[W + 1] = {DONE_INIT, DONE_INIT, DONE_INIT, DONE_INIT, DONE_INIT};
  zhandle_t *zh;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  for (int i = 0; i <= W; i++) {
    s[i] = tu_open(tu_hosts(), 10000);
    ck_assert_int_eq(zkr_lock_new(s[i], path, &l[i]), 0);
  }
  zh = zkr_session_zhandle(s[0]);
  ck_assert_int_eq(zkr_lock_acquire(l[0], 10000), 0);
  for (int i = 1; i <= W; i++) {
    ck_assert_int_eq(zkr_lock_acquire_async(l[i], -1, done_cb, &d[i]), 0);
    tu_wait_children(zh, path, i + 1, 5000); /* queued in this order */
  }
  for (int i = 1; i <= W; i++)
    ck_assert_int_eq(done_calls(&d[i]), 0);
  for (int i = 1; i <= W; i++) {
    ck_assert_int_eq(zkr_lock_release(i == 1 ? l[0] : l[i - 1], 10000), 0);
    ck_assert_int_eq(done_wait(&d[i], 10000), 1);
    ck_assert_int_eq(d[i].rc, 0);
    ck_assert(zkr_lock_is_held(l[i]));
    for (int j = i + 1; j <= W; j++) /* nobody behind was granted early */
      ck_assert_int_eq(done_calls(&d[j]), 0);
  }
  for (int i = 2; i <= W; i++)
    ck_assert_int_lt(d[i - 1].order, d[i].order);
  for (int i = 1; i <= W; i++) {
    zkr__queue_stats_t st;
    ck_assert_int_eq(zkr__lock_stats(l[i], &st), 0);
    /* Herd-free: each waiter heard exactly one notification (its predecessor). */
    ck_assert_int_eq(st.notifications, 1);
  }
  ck_assert_int_eq(zkr_lock_release(l[W], 10000), 0);
  tu_wait_children(zh, path, 0, 5000);
  for (int i = 0; i <= W; i++) {
    zkr_lock_free(l[i]);
    if (i)
      zkr_session_free(s[i]);
  }
  tu_rmr(zh, root);
  zkr_session_free(s[0]);
}
END_TEST

START_TEST(timeouts_zero_positive_forever) {
  char root[64], path[128];
  zkr_session_t *a = tu_open(tu_hosts(), 10000), *b = tu_open(tu_hosts(), 10000);
  zkr_lock_t *la, *lb;
  done_t d = DONE_INIT;
  zhandle_t *zh = zkr_session_zhandle(a);
  int64_t t0, el;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(a, path, &la), 0);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  /* Free lock, try once: granted. */
  ck_assert_int_eq(zkr_lock_acquire(la, 0), 0);
  ck_assert(zkr_lock_is_held(la));

  t0 = tu_now_ms();
  ck_assert_int_eq(zkr_lock_acquire(lb, 0), ZKR_ETIMEDOUT);
  el = tu_now_ms() - t0;
  ck_assert_msg(el < 2000, "try-once took %lld ms", (long long)el);
  ck_assert(!zkr_lock_is_held(lb));
  tu_wait_children(zh, path, 1, 5000); /* the failed attempt left nothing */

  t0 = tu_now_ms();
  ck_assert_int_eq(zkr_lock_acquire(lb, 300), ZKR_ETIMEDOUT);
  el = tu_now_ms() - t0;
  ck_assert_msg(el >= 295 && el < 2000, "300 ms acquire gave up after %lld ms",
                (long long)el);
  tu_wait_children(zh, path, 1, 5000);

  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d), ZKR_EBUSY);
  ck_assert_int_eq(done_calls(&d), 0);
  ck_assert_int_eq(zkr_lock_release(la, 10000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 1);
  ck_assert_int_eq(d.rc, 0);
  ck_assert(zkr_lock_is_held(lb));
  usleep(200 * 1000); /* a duplicate callback would come within this time */
  ck_assert_int_eq(done_calls(&d), 1);

  zkr_lock_free(lb);
  zkr_lock_free(la);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(b);
  zkr_session_free(a);
}
END_TEST

START_TEST(free_or_cancel_pending_acquire) {
  char root[64], path[128];
  zkr_session_t *a = tu_open(tu_hosts(), 10000), *b = tu_open(tu_hosts(), 10000);
  zkr_lock_t *la, *lb;
  done_t d1 = DONE_INIT, d2 = DONE_INIT, rel = DONE_INIT;
  zhandle_t *zh = zkr_session_zhandle(a);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(a, path, &la), 0);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  ck_assert_int_eq(zkr_lock_acquire(la, -1), 0);

  ck_assert_int_eq(zkr_lock_cancel(lb), ZKR_ENOTHELD); /* nothing pending */
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d1), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zkr_lock_cancel(lb), 0);
  ck_assert_int_eq(done_calls(&d1), 1); /* before cancel returned */
  ck_assert_int_eq(d1.rc, ZKR_ECANCELED);
  tu_wait_children(zh, path, 1, 5000);

  /* Free right after starting: the create may still be in flight. */
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d2), 0);
  zkr_lock_free(lb);
  ck_assert_int_eq(done_calls(&d2), 1);
  ck_assert_int_eq(d2.rc, ZKR_ECANCELED);
  tu_wait_children(zh, path, 1, 5000);

  ck_assert_int_eq(zkr_lock_release_async(la, -1, done_cb, &rel), 0);
  ck_assert(!zkr_lock_is_held(la));
  ck_assert_int_eq(done_wait(&rel, 10000), 1);
  ck_assert_int_eq(rel.rc, 0);
  tu_wait_children(zh, path, 0, 5000);
  usleep(100 * 1000);
  ck_assert_int_eq(done_calls(&d1), 1);
  ck_assert_int_eq(done_calls(&d2), 1);
  zkr_lock_free(la);
  tu_rmr(zh, root);
  zkr_session_free(b);
  zkr_session_free(a);
}
END_TEST

/* Fault hook: while armed, act once on a chosen reply kind of a chosen session. */
static struct {
  zkr_session_t *s;
  int kind;
  int fired;
  zhandle_t *zh;    /* for the "predecessor vanishes" case */
  char victim[256]; /* node to delete when the listing comes back */
  char touch[256];  /* node whose data to set then */
  int turn_into;    /* else: replace the reply's rc with this */
  int from_rc;      /* ... when it is this (ZOK unless set) */
} hook;

static int fault_hook(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg;
  if (hook.fired || s != hook.s || kind != hook.kind || rc != hook.from_rc)
    return rc;
  hook.fired = 1;
  if (hook.victim[0] || hook.touch[0]) {
    if (hook.victim[0])
      ck_assert_int_eq(zoo_delete(hook.zh, hook.victim, -1), ZOK);
    if (hook.touch[0])
      ck_assert_int_eq(zoo_set(hook.zh, hook.touch, "t", 1, -1), ZOK);
    return rc;
  }
  return hook.turn_into;
}

/* Arm the fault hook for session s and reply kind (the caller fills the rest
 * and installs it). */
static void arm_hook(zkr_session_t *s, int kind) {
  memset(&hook, 0, sizeof(hook));
  hook.s = s;
  hook.kind = kind;
}

/* Make a lock's parents by hand: root, root/locks and path (= root/locks/x). */
static void raw_lock_parents(zhandle_t *zh, const char *root, const char *path) {
  char locks[256];
  snprintf(locks, sizeof(locks), "%s/locks", root);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, locks, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
}

/* Queue a kazoo-format lock node under path on zh's session; its path in out. */
static void raw_kazoo_node(zhandle_t *zh, const char *path, char *out, size_t len) {
  char pre[256];
  snprintf(pre, sizeof(pre), "%s/0123456789abcdef0123456789abcdef__lock__", path);
  ck_assert_int_eq(zoo_create(zh, pre, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, out, (int)len),
                   ZOK);
}

/* b listed [r1, r2, b]; before b's watch on r2 is set, r1 goes and r2's data
 * changes (what an elected leader does to its node): no event will come for
 * that change, so b must see it in the watch's reply, list again, and learn that
 * r2 is now the lowest, so that it holds without a listing when r2 goes. */
START_TEST(predecessor_changed_before_watch) {
  char root[64], path[128], r1[256], r2[256];
  zkr_session_t *b = tu_open(tu_hosts(), 10000), *x = tu_open(tu_hosts(), 10000);
  zkr_lock_t *lb;
  zkr__queue_stats_t st;
  done_t d = DONE_INIT;
  zhandle_t *zh = zkr_session_zhandle(x);
  int64_t until;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  raw_lock_parents(zh, root, path);
  raw_kazoo_node(zh, path, r1, sizeof(r1));
  raw_kazoo_node(zh, path, r2, sizeof(r2));
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  arm_hook(b, ZKR__K_CHILDREN);
  hook.zh = zh;
  snprintf(hook.victim, sizeof(hook.victim), "%s", r1);
  snprintf(hook.touch, sizeof(hook.touch), "%s", r2);
  zkr__set_fault_hook(fault_hook, NULL);
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d), 0);
  until = tu_now_ms() + 10000;
  do {
    ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
    if (!st.next_in_line)
      usleep(1000);
  } while (!st.next_in_line && tu_now_ms() < until);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(hook.fired, 1);
  ck_assert_msg(st.next_in_line, "b never learned that r2 leads");
  ck_assert_int_eq(st.pred_changed_unseen, 1);
  ck_assert_int_eq(st.lists, 2);
  ck_assert_int_eq(done_calls(&d), 0);
  ck_assert_int_eq(zoo_delete(zh, r2, -1), ZOK);
  ck_assert_int_eq(done_wait(&d, 10000), 1);
  ck_assert_int_eq(d.rc, 0);
  ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
  ck_assert_int_eq(st.grants_without_list, 1);
  ck_assert_int_eq(st.lists, 2);
  ck_assert_int_eq(st.notifications, 1);
  ck_assert_int_eq(zkr_lock_release(lb, 10000), 0);
  zkr_lock_free(lb);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(b);
  zkr_session_free(x);
}
END_TEST

/* A contender's name may be longer than any buffer of ours (the server takes
 * names up to its request limit). 0.1.0 truncated it: the watch on the truncated
 * path answered ZNONODE, read as "predecessor gone", and granted the lock while
 * the long node held it (or spun listing when it was not the lowest). */
START_TEST(long_names_hold_their_place) {
  char root[64], path[128], prefix[2048], made[2304];
  zkr_session_t *b = tu_open(tu_hosts(), 10000), *x = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(x);
  zkr_lock_t *lb, *lx;
  zkr__queue_stats_t st;
  zkr_contender_t *c;
  int n;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  raw_lock_parents(zh, root, path);
  n = snprintf(prefix, sizeof(prefix), "%s/", path);
  memset(prefix + n, 'k', 1500);
  snprintf(prefix + n + 1500, sizeof(prefix) - (size_t)n - 1500, "-lock-");
  ck_assert_int_eq(zoo_create(zh, prefix, "long", 4, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, made, (int)sizeof(made)),
                   ZOK);
  ck_assert_int_gt(strlen(made), 1500);

  /* The long node is the lowest: it holds, b must not. */
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  ck_assert_int_eq(zkr_lock_acquire(lb, 1500), ZKR_ETIMEDOUT);
  ck_assert(!zkr_lock_is_held(lb));
  ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
  ck_assert_uint_le(st.lists, 2);
  ck_assert_int_eq(zkr_contenders_list(b, path, 5000, &c, &n), 0);
  ck_assert_int_ge(n, 1);
  ck_assert_str_eq(c[0].name, made + strlen(path) + 1);
  ck_assert_int_eq(c[0].format, ZKR_FORMAT_PLAIN);
  ck_assert_int_eq(c[0].data_len, 4);
  zkr_contenders_free(c, n);
  tu_wait_children(zh, path, 1, 5000); /* b's timed-out node went */

  /* The long node waits behind x's lock; b waits behind it without spinning. */
  ck_assert_int_eq(zoo_delete(zh, made, -1), ZOK);
  ck_assert_int_eq(zkr_lock_new(x, path, &lx), 0);
  ck_assert_int_eq(zkr_lock_acquire(lx, 5000), 0);
  ck_assert_int_eq(zoo_create(zh, prefix, "long", 4, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, made, (int)sizeof(made)),
                   ZOK);
  zkr_lock_free(lb);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  ck_assert_int_eq(zkr_lock_acquire(lb, 1000), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
  ck_assert_msg(st.lists <= 2 && st.watches <= 2, "%llu listings, %llu watches in 1 s",
                (unsigned long long)st.lists, (unsigned long long)st.watches);
  /* Once x and then the long node go, b holds. */
  ck_assert_int_eq(zkr_lock_release(lx, 5000), 0);
  ck_assert_int_eq(zoo_delete(zh, made, -1), ZOK);
  ck_assert_int_eq(zkr_lock_acquire(lb, 5000), 0);
  ck_assert_int_eq(zkr_lock_release(lb, 5000), 0);
  zkr_lock_free(lb);
  zkr_lock_free(lx);

  /* Listing "/" names its children "/child", not "//child". */
  ck_assert_int_eq(zkr_contenders_list(b, "/", 5000, &c, &n), 0);
  {
    int found = 0;
    for (int i = 0; i < n; i++)
      found |= strcmp(c[i].name, "zookeeper") == 0;
    ck_assert_msg(found, "/zookeeper missing from the listing of /");
  }
  zkr_contenders_free(c, n);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(b);
  zkr_session_free(x);
}
END_TEST

/* W7: the node ahead has a creator-only ACL (ZKR_ACL_CREATOR), so a waiter may
 * not read it, and the server does not send it the node's events. 0.1.0 failed
 * the waiter at once with ZNOAUTH; it must wait (on the parent's children) and
 * hold once the node goes. */
START_TEST(waits_behind_a_creator_only_node) {
  char root[64], path[128];
  zkr_session_t *alice, *bob = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(bob);
  zkr_lock_t *la, *lb;
  zkr_contender_t *c;
  zkr__queue_stats_t st;
  int n;

  ck_assert_int_eq(zkr_session_new(&alice), 0);
  ck_assert_int_eq(zkr_session_set_auth(alice, "digest", "alice:secret"), 0);
  ck_assert_int_eq(zkr_session_set_acl(alice, ZKR_ACL_CREATOR), 0);
  ck_assert_int_eq(zkr_session_connect(alice, tu_hosts(), 15000), 0);
  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  raw_lock_parents(zh, root, path); /* open parents: anyone may queue */
  ck_assert_int_eq(zkr_lock_new(alice, path, &la), 0);
  ck_assert_int_eq(zkr_lock_acquire(la, 5000), 0);
  ck_assert_int_eq(zkr_lock_new(bob, path, &lb), 0);
  ck_assert_int_eq(zkr_lock_acquire(lb, 1000), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
  ck_assert_uint_eq(st.watches, 2); /* getData refused, then a child watch */
  /* Alice is listed: her data cannot be read, her owner still shows. */
  ck_assert_int_eq(zkr_contenders_list(bob, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(c[0].data_len, -1);
  ck_assert_int_eq(c[0].owner_session, zkr_session_id(alice));
  zkr_contenders_free(c, n);
  ck_assert_int_eq(zkr_lock_release(la, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire(la, 5000), 0);
  {
    done_t d = DONE_INIT;
    ck_assert_int_eq(zkr_lock_acquire_async(lb, 10000, done_cb, &d), 0);
    tu_wait_children(zh, path, 2, 5000);
    ck_assert_int_eq(zkr_lock_release(la, 5000), 0); /* bob holds once it goes */
    ck_assert_int_eq(done_wait(&d, 15000), 1);
    ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
    ck_assert_msg(
        d.rc == 0,
        "rc %d lists %llu watches %llu notif %llu vanished %llu grants %llu gwl %llu",
        d.rc, (unsigned long long)st.lists, (unsigned long long)st.watches,
        (unsigned long long)st.notifications, (unsigned long long)st.pred_vanished,
        (unsigned long long)st.grants, (unsigned long long)st.grants_without_list);
  }
  ck_assert_int_eq(zkr_lock_release(lb, 5000), 0);
  zkr_lock_free(lb);
  zkr_lock_free(la);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(alice);
  zkr_session_free(bob);
}
END_TEST

/* UTF-8 of one code point. */
static int utf8(unsigned cp, char *o) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 63));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 63));
    o[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 63));
  o[2] = (char)(0x80 | ((cp >> 6) & 63));
  o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* W4: our path check says what the server says, and a path it refuses is
 * refused before anything is written (0.1.0 passed such paths, the create
 * failed with ZBADARGUMENTS, and the container parents made for it stayed). */
START_TEST(paths_refused_like_the_server) {
  char root[64], path[160], p[96];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_lock_t *l = NULL;
  int agree = 0, refused = 0;

  tu_root(root, sizeof(root));
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  /* Code points across the whole range (every 61st, and the edges). */
  for (unsigned cp = 0x20; cp < 0x20000; cp += cp < 0x10000 ? 61 : 4099) {
    unsigned edges[] = {cp,     0x7f,   0x9f,   0xa0,   0xd7ff,
                        0xe000, 0xf8ff, 0xf900, 0xffef, 0xfff0};
    for (size_t e = 0; e < (cp == 0x20 ? sizeof(edges) / sizeof(edges[0]) : 1); e++) {
      int n = snprintf(p, sizeof(p), "%s/x", root), server, ours;
      if (edges[e] == '/' || (edges[e] >= 0xd800 && edges[e] <= 0xdfff))
        continue;
      p[n + utf8(edges[e], p + n)] = '\0';
      server = zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
      ours = zkr__path_check(p);
      ck_assert_msg((server == ZOK) == (ours == 0), "U+%04X: server %d, ours %d",
                    edges[e], server, ours);
      agree++;
      refused += server != ZOK;
    }
  }
  ck_assert_int_gt(agree, 1000);
  ck_assert_int_gt(refused, 50);
  /* Malformed UTF-8 is refused by both as well. */
  {
    const char *bad[] = {"\xc3", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      snprintf(p, sizeof(p), "%s/m%s", root, bad[i]);
      ck_assert_int_ne(zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                       ZOK);
      ck_assert_int_eq(zkr__path_check(p), ZKR_EINVAL);
    }
  }
  /* A refused path leaves nothing behind. */
  tu_rmr(zh, root);
  snprintf(path, sizeof(path), "%s/a/b/\xc2\x80", root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), ZKR_EINVAL);
  ck_assert_ptr_null(l);
  ck_assert_int_eq(zoo_exists(zh, root, 0, NULL), ZNONODE);
  zkr_session_free(s);
}
END_TEST

/* b's predecessor is a raw node r (another library's, say) that vanishes after b
 * listed the queue and before b could watch it. With lowest == 0 a lock held
 * through lx stays ahead of r. */
static void predecessor_vanishes(int lowest) {
  char root[64], path[128], r[256];
  zkr_session_t *b = tu_open(tu_hosts(), 10000), *x = tu_open(tu_hosts(), 10000);
  zkr_lock_t *lb, *lx = NULL;
  zkr_lock_token_t tok;
  zkr__queue_stats_t st;
  done_t d = DONE_INIT;
  zhandle_t *zh = zkr_session_zhandle(x);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  if (!lowest) {
    ck_assert_int_eq(zkr_lock_new(x, path, &lx), 0);
    ck_assert_int_eq(zkr_lock_acquire(lx, -1), 0);
  } else {
    raw_lock_parents(zh, root, path);
  }
  raw_kazoo_node(zh, path, r, sizeof(r));
  arm_hook(b, ZKR__K_CHILDREN);
  hook.zh = zh;
  snprintf(hook.victim, sizeof(hook.victim), "%s", r);
  zkr__set_fault_hook(fault_hook, NULL);
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d), 0);
  if (lowest) {
    /* b listed [r, b]; r vanished before b could watch it: b holds at once. */
    ck_assert_int_eq(done_wait(&d, 10000), 1);
    ck_assert_int_eq(d.rc, 0);
  } else {
    /* b listed [x, r, b]; r vanished: b keeps its place, lists again and waits
     * for x. */
    tu_wait_children(zh, path, 2, 5000);
    usleep(100 * 1000);
    ck_assert_int_eq(done_calls(&d), 0);
    ck_assert_int_eq(zkr_lock_release(lx, 10000), 0);
    ck_assert_int_eq(done_wait(&d, 10000), 1);
    ck_assert_int_eq(d.rc, 0);
  }
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(hook.fired, 1);
  ck_assert_int_eq(zkr__lock_stats(lb, &st), 0);
  ck_assert_int_eq(st.pred_vanished, 1);
  ck_assert_int_eq(st.lists, lowest ? 1 : 2);
  ck_assert_int_eq(zkr_lock_token(lb, &tok), 0);
  ck_assert_int_eq(zkr_lock_release(lb, 10000), 0);
  zkr_lock_free(lb);
  zkr_lock_free(lx);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(b);
  zkr_session_free(x);
}

START_TEST(predecessor_vanishes_lowest) {
  predecessor_vanishes(1);
}
END_TEST

START_TEST(predecessor_vanishes_not_lowest) {
  predecessor_vanishes(0);
}
END_TEST

static _Atomic int lost_events, suspect_events, recovered_events;
static void count_lock_events(zkr_lock_t *l, int ev, void *arg) {
  (void)l, (void)arg;
  if (ev == ZKR_LOCK_LOST)
    atomic_fetch_add(&lost_events, 1);
  else if (ev == ZKR_LOCK_SUSPECT)
    atomic_fetch_add(&suspect_events, 1);
  else if (ev == ZKR_LOCK_RECOVERED)
    atomic_fetch_add(&recovered_events, 1);
}

START_TEST(holder_expired_lost_next_granted_guard_fails) {
  char root[64], path[128], data[128];
  zkr_session_t *a = tu_open(tu_hosts(), 4000), *b = tu_open(tu_hosts(), 10000);
  zkr_session_t *x = tu_open(tu_hosts(), 10000);
  zkr_lock_t *la, *lb;
  zkr_lock_token_t ta, tb;
  done_t d = DONE_INIT;
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  zhandle_t *zh = zkr_session_zhandle(x);
  int64_t deadline;

  atomic_store(&lost_events, 0);
  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  snprintf(data, sizeof(data), "%s/data", root);
  ck_assert_int_eq(zkr_lock_new(a, path, &la), 0);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  ck_assert_int_eq(zkr_lock_set_listener(la, count_lock_events, NULL), 0);
  ck_assert_int_eq(zkr_lock_acquire(la, -1), 0);
  ck_assert_int_eq(zkr_lock_token(la, &ta), 0);
  ck_assert_int_eq(zoo_create(zh, data, "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);

  /* A guarded write commits while held. */
  ck_assert_int_eq(zkr_lock_guard(la, &ops[0]), 0);
  zoo_set_op_init(&ops[1], data, "1", 1, -1, NULL);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZOK);

  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d), 0);
  tu_wait_children(zh, path, 2, 5000);
  tu_expire(a, tu_hosts());
  ck_assert_int_eq(done_wait(&d, 20000), 1);
  ck_assert_int_eq(d.rc, 0);
  deadline = tu_now_ms() + 10000;
  while (atomic_load(&lost_events) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&lost_events), 1);
  ck_assert(!zkr_lock_is_held(la));
  ck_assert_int_eq(zkr_lock_token(la, &ta) == ZKR_ENOTHELD, 1);
  ck_assert_int_eq(zkr_lock_release(la, 1000), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_token(lb, &tb), 0);
  ck_assert_msg(tb.czxid > ta.czxid, "token did not increase");

  /* The guard op taken while a held is stale now: the multi must fail. */
  zoo_set_op_init(&ops[1], data, "2", 1, -1, NULL);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZNONODE);
  {
    char buf[8];
    int len = sizeof(buf);
    ck_assert_int_eq(zoo_get(zh, data, 0, buf, &len, NULL), ZOK);
    ck_assert_int_eq(buf[0], '1');
  }
  /* a works again on its new session. */
  ck_assert_int_eq(zkr_session_wait_connected(a, 10000), 0);
  ck_assert_int_eq(zkr_lock_release(lb, 10000), 0);
  ck_assert_int_eq(zkr_lock_acquire(la, 10000), 0);
  ck_assert_int_eq(zkr_lock_release(la, 10000), 0);
  zkr_lock_free(la);
  zkr_lock_free(lb);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(a);
  zkr_session_free(b);
  zkr_session_free(x);
}
END_TEST

START_TEST(tokens_increase_across_reaped_parent) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  zkr_lock_token_t t, prev = {0};
  zhandle_t *zh = zkr_session_zhandle(s);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 3; i++) {
      ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
      ck_assert_int_eq(zkr_lock_token(l, &t), 0);
      ck_assert_msg(t.czxid > prev.czxid, "token %lld after %lld", (long long)t.czxid,
                    (long long)prev.czxid);
      ck_assert_int_eq(t.session_id, zkr_session_id(s));
      ck_assert_int_eq(strncmp(t.node, "_c_", 3), 0);
      ck_assert_ptr_nonnull(strstr(t.node, "-lock-"));
      if (i == 0)
        ck_assert_int_eq(t.sequence, 0); /* a new parent starts counting again */
      else
        ck_assert_int_eq(t.sequence, prev.sequence + 1);
      prev = t;
      ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
    }
    /* What the server does to an empty container, done now: the next acquire
     * must recreate the parents. */
    ck_assert_int_eq(zoo_delete(zh, path, -1), ZOK);
  }
  zkr_lock_free(l);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

START_TEST(ambiguous_create_resolved_without_orphan) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  zkr_lock_token_t t;
  zkr__queue_stats_t st;
  zkr_contender_t *c;
  int n;
  zhandle_t *zh = zkr_session_zhandle(s);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  arm_hook(s, ZKR__K_CREATE);
  hook.turn_into = ZCONNECTIONLOSS;
  /* Make the parents first, so the faked reply is the lock node's own create. */
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  zkr__set_fault_hook(fault_hook, NULL);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(hook.fired, 1);
  ck_assert_int_eq(zkr__lock_stats(l, &st), 0);
  ck_assert_int_eq(st.recoveries, 1);
  ck_assert_int_eq(zkr_lock_token(l, &t), 0);
  ck_assert_int_eq(zkr_contenders_list(s, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 1); /* adopted, not duplicated */
  ck_assert_str_eq(c[0].name, t.node);
  ck_assert_int_eq(c[0].owner_session, zkr_session_id(s));
  ck_assert_int_eq(c[0].czxid, t.czxid);
  zkr_contenders_free(c, n);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);

  /* The same when the C client fails the create with ZRUNTIMEINCONSISTENCY (it
   * dropped the connection over a reply out of order): a lost reply as well. */
  arm_hook(s, ZKR__K_CREATE);
  hook.turn_into = ZRUNTIMEINCONSISTENCY;
  zkr__set_fault_hook(fault_hook, NULL);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(hook.fired, 1);
  ck_assert_int_eq(zkr__lock_stats(l, &st), 0);
  ck_assert_int_eq(st.recoveries, 2);
  ck_assert_int_eq(tu_nchildren(zh, path), 1);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  zkr_lock_free(l);

  /* Not applied: the first create fails (no parent yet) and its reply is turned
   * into CONNECTIONLOSS; the GUID search finds nothing and the lock starts over. */
  snprintf(path, sizeof(path), "%s/fresh/lock", root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  arm_hook(s, ZKR__K_CREATE);
  hook.from_rc = ZNONODE;
  hook.turn_into = ZCONNECTIONLOSS;
  zkr__set_fault_hook(fault_hook, NULL);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(hook.fired, 1);
  ck_assert_int_eq(zkr__lock_stats(l, &st), 0);
  ck_assert_int_eq(st.recoveries, 1);
  ck_assert_int_eq(tu_nchildren(zh, path), 1);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  zkr_lock_free(l);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

static char logged_unknown[512];
/* Debug traces: every step of a contended acquire is logged once at debug
 * level, with the session id as zkCli prints it; nothing of it at info. */

START_TEST(debug_trace_of_a_contended_lock) {
  static char copy[TU_TRACE_MAX];
  char root[64], path[128], want[400];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_lock_t *a, *b;
  zkr_lock_token_t tok;
  done_t d = DONE_INIT;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(s, path, &a), 0);
  ck_assert_int_eq(zkr_lock_new(t, path, &b), 0);
  tu_trace_start(ZKR_LOG_DEBUG);
  ck_assert_int_eq(zkr_lock_acquire(a, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(b, 10000, done_cb, &d), 0);
  snprintf(want, sizeof(want), "lock %s: session 0x%llx: ", path,
           (unsigned long long)zkr_session_id(t));
  tu_wait_children(zkr_session_zhandle(s), path, 2, 5000);
  for (int i = 0; i < 200 && !tu_trace_has(": waits behind "); i++)
    usleep(10 * 1000);
  ck_assert_int_eq(zkr_lock_release(a, 5000), 0);
  ck_assert_int_eq(done_wait(&d, 10000), 1);
  ck_assert_int_eq(d.rc, 0);
  ck_assert_int_eq(zkr_lock_token(b, &tok), 0);
  ck_assert_int_eq(zkr_lock_release(b, 5000), 0);
  /* Checked on a copy, with the callback gone: a failed check must not leave a
   * lock held or a callback behind for the tests that follow (CK_FORK=no). */
  tu_trace_stop(copy, sizeof(copy));
  {
    char line[640];
    const char *steps[] = {"created ", "waits behind ", "predecessor ", "granted ",
                           "released "};
    for (int i = 0; i < 6; i++) {
      if (i < 5)
        snprintf(line, sizeof(line), "4 %s%s", want, steps[i]);
      else
        snprintf(line, sizeof(line), "token 0x%llx, after ", (unsigned long long)tok.czxid);
      if (!strstr(copy, line))
        fprintf(stderr, "the trace:\n%s", copy); /* too long for the message */
      ck_assert_msg(strstr(copy, line), "no '%s' in the trace", line);
    }
  }

  /* At info: none of it. */
  tu_trace_start(ZKR_LOG_INFO);
  ck_assert_int_eq(zkr_lock_acquire(a, 5000), 0);
  ck_assert_int_eq(zkr_lock_release(a, 5000), 0);
  zkr_log_set_callback(NULL, NULL, 0);
  ck_assert_msg(!tu_trace_has("granted"), "a grant at info level");
  ck_assert_msg(!tu_trace_has("created"), "a create at info level");
  zkr_lock_free(a);
  zkr_lock_free(b);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

static zkr_session_stats_t stats_of(zkr_session_t *s) {
  zkr_session_stats_t st;
  ck_assert_int_eq(zkr_session_stats(s, &st), 0);
  return st;
}

/* Until s has counted n waits (an attempt waits once it has listed the queue,
 * after its node is created). */
static void wait_waits(zkr_session_t *s, uint64_t n) {
  int64_t deadline = tu_now_ms() + 10000;
  zkr_session_stats_t st;
  do {
    st = stats_of(s);
  } while (st.waits < n && tu_now_ms() < deadline && usleep(1000) == 0);
  ck_assert_uint_eq(st.waits, n);
}

/* Every attempt ends once, in the counter of its outcome; the grant wait is
 * measured; an expiry while held counts as a loss. */
START_TEST(session_statistics_of_lock_attempts) {
  char root[64], path[128];
  zkr_session_t *a = tu_open(tu_hosts(), 10000), *b = tu_open(tu_hosts(), 4000);
  zkr_lock_t *la, *lb;
  zkr_session_stats_t st;
  done_t d1 = DONE_INIT, d2 = DONE_INIT;
  int64_t deadline;

  ck_assert_int_eq(zkr_session_stats(NULL, &st), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_stats(a, NULL), ZKR_EINVAL);
  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(a, path, &la), 0);
  ck_assert_int_eq(zkr_lock_new(b, path, &lb), 0);
  st = stats_of(b);
  ck_assert_uint_eq(st.sessions, 1);
  ck_assert_uint_eq(st.acquires, 0);
  ck_assert_uint_eq(st.wait_p50_us, 0);

  ck_assert_int_eq(zkr_lock_acquire(la, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire(lb, 0), ZKR_ETIMEDOUT);   /* conflict */
  ck_assert_int_eq(zkr_lock_acquire(lb, 200), ZKR_ETIMEDOUT); /* timeout */
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d1), 0);
  wait_waits(b, 2);
  ck_assert_int_eq(zkr_lock_cancel(lb), 0); /* cancel */
  ck_assert_int_eq(done_wait(&d1, 5000), 1);
  ck_assert_int_eq(d1.rc, ZKR_ECANCELED);
  /* Granted after waiting at least 300 ms. */
  ck_assert_int_eq(zkr_lock_acquire_async(lb, -1, done_cb, &d2), 0);
  wait_waits(b, 3);
  usleep(300 * 1000);
  ck_assert_int_eq(zkr_lock_release(la, 5000), 0);
  ck_assert_int_eq(done_wait(&d2, 5000), 1);
  ck_assert_int_eq(d2.rc, 0);

  st = stats_of(b);
  ck_assert_uint_eq(st.acquires, 4);
  ck_assert_uint_eq(st.conflicts, 1);
  ck_assert_uint_eq(st.timeouts, 1);
  ck_assert_uint_eq(st.cancels, 1);
  ck_assert_uint_eq(st.grants, 1);
  ck_assert_uint_eq(st.failures, 0);
  ck_assert_uint_eq(st.waits, 3); /* the one with no wait allowed never waited */
  ck_assert_uint_ge(st.wait_p50_us, 300000);
  ck_assert_uint_le(st.wait_p50_us, st.wait_p99_us);
  ck_assert_uint_le(st.wait_p99_us, st.wait_max_us);
  ck_assert_uint_lt(st.wait_max_us, 5000000);
  ck_assert_uint_ge(st.requests, 8); /* at least a create and a listing per attempt */
  ck_assert_uint_ge(st.watches, 1);
  ck_assert_int_ge(st.in_flight, 0);
  st = stats_of(a);
  ck_assert_uint_eq(st.acquires, 1);
  ck_assert_uint_eq(st.grants, 1);
  ck_assert_uint_eq(st.waits, 0);
  ck_assert_uint_lt(st.wait_max_us, 5000000);

  /* Expired while holding: a loss, an expiry, and a second session. */
  tu_expire(b, tu_hosts());
  ck_assert_int_eq(zkr_session_wait_connected(b, 15000), 0);
  deadline = tu_now_ms() + 10000;
  do {
    st = stats_of(b);
  } while ((st.losses == 0 || st.sessions < 2) && tu_now_ms() < deadline &&
           usleep(1000) == 0);
  ck_assert_uint_eq(st.losses, 1);
  ck_assert_uint_eq(st.expiries, 1);
  ck_assert_uint_eq(st.sessions, 2);
  ck_assert_uint_eq(st.grants, 1);
  ck_assert(!zkr_lock_is_held(lb));

  zkr_lock_free(la);
  zkr_lock_free(lb);
  tu_wait_children(zkr_session_zhandle(a), path, 0, 5000);
  tu_rmr(zkr_session_zhandle(a), root);
  zkr_session_free(a);
  zkr_session_free(b);
}
END_TEST

static void log_capture(void *arg, int level, const char *msg) {
  (void)arg;
  if (level == ZKR_LOG_WARN && strstr(msg, "no known format"))
    snprintf(logged_unknown, sizeof(logged_unknown), "%s", msg);
}

START_TEST(foreign_formats_respected_in_order) {
  char root[64], path[128], p[256], made[6][256];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *x = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  done_t d = DONE_INIT;
  zkr_contender_t *c;
  int n;
  zhandle_t *zh = zkr_session_zhandle(x);
  char hex16[17];
  const char *prefixes[] = {
      "0123456789abcdef0123456789abcdef__lock__",      /* kazoo */
      "_c_0123456789abcdef0123456789abcdef-lock-",     /* go */
      "_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-lock-", /* Curator */
      NULL,                                            /* ZooKeeper C recipe */
      "0123456789abcdef0123456789abcdef__rlock__",     /* kazoo reader */
      "x-72057594037927936-",                          /* ZooKeeper Java recipe */
  };
  const int formats[] = {ZKR_FORMAT_KAZOO, ZKR_FORMAT_GO,    ZKR_FORMAT_CURATOR,
                         ZKR_FORMAT_ZK_C,  ZKR_FORMAT_KAZOO, ZKR_FORMAT_ZK_JAVA};

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  raw_lock_parents(zh, root, path);
  /* A child in no known format: ignored for ordering, reported to the log. */
  snprintf(p, sizeof(p), "%s/config", path);
  ck_assert_int_eq(zoo_create(zh, p, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(hex16, sizeof(hex16), "%016llx", (unsigned long long)zkr_session_id(x));
  for (int i = 0; i < 6; i++) {
    char pre[256];
    if (prefixes[i])
      snprintf(pre, sizeof(pre), "%s/%s", path, prefixes[i]);
    else
      snprintf(pre, sizeof(pre), "%s/x-%s-", path, hex16);
    ck_assert_int_eq(zoo_create(zh, pre, "foreign", 7, &ZOO_OPEN_ACL_UNSAFE,
                                ZOO_EPHEMERAL_SEQUENTIAL, made[i], sizeof(made[i])),
                     ZOK);
  }
  zkr_log_set_callback(log_capture, NULL, ZKR_LOG_WARN);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  ck_assert_int_eq(zkr_lock_acquire(l, 0), ZKR_ETIMEDOUT);
  ck_assert_ptr_nonnull(strstr(logged_unknown, "config"));
  /* The failed attempt's node goes through the janitor, just after the answer. */
  tu_wait_children(zh, path, 7, 5000);

  ck_assert_int_eq(zkr_contenders_list(x, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 7);
  for (int i = 0; i < 6; i++) {
    ck_assert_str_eq(c[i].name, strrchr(made[i], '/') + 1);
    ck_assert_int_eq(c[i].format, formats[i]);
    ck_assert_int_eq(c[i].sequence, c[0].sequence + i); /* "config" took one */
    ck_assert_int_eq(c[i].owner_session, zkr_session_id(x));
    ck_assert_str_eq(c[i].data, "foreign");
  }
  ck_assert_int_eq(c[4].reader, 1);
  ck_assert_str_eq(c[6].name, "config");
  ck_assert_int_eq(c[6].format, ZKR_FORMAT_UNKNOWN);
  ck_assert_str_eq(zkr_format_name(c[0].format), "kazoo");
  zkr_contenders_free(c, n);

  ck_assert_int_eq(zkr_lock_acquire_async(l, -1, done_cb, &d), 0);
  for (int i = 0; i < 6; i++) {
    usleep(50 * 1000);
    ck_assert_msg(done_calls(&d) == 0, "granted while %s was still queued", made[i]);
    ck_assert_int_eq(zoo_delete(zh, made[i], -1), ZOK);
  }
  ck_assert_int_eq(done_wait(&d, 10000), 1);
  ck_assert_int_eq(d.rc, 0);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  zkr_log_set_callback(NULL, NULL, 0);
  zkr_lock_free(l);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(x);
}
END_TEST

START_TEST(reentrant_holds) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  zkr_lock_token_t t1, t2;
  done_t d = DONE_INIT;
  zhandle_t *zh = zkr_session_zhandle(s);

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  ck_assert_int_eq(zkr_lock_token(l, &t1), 0);
  ck_assert_int_eq(zkr_lock_acquire(l, 0), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(l, 0, done_cb, &d), 0);
  ck_assert_int_eq(done_wait(&d, 5000), 1);
  ck_assert_int_eq(d.rc, 0);
  ck_assert_int_eq(zkr_lock_hold_count(l), 3);
  ck_assert_int_eq(zkr_lock_token(l, &t2), 0);
  ck_assert_int_eq(t1.czxid, t2.czxid);
  ck_assert_int_eq(tu_nchildren(zh, path), 1);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert(zkr_lock_is_held(l));
  ck_assert_int_eq(tu_nchildren(zh, path), 1);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  ck_assert(!zkr_lock_is_held(l));
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  ck_assert_int_eq(zkr_lock_release(l, 10000), ZKR_ENOTHELD);

  /* Release without waiting: done at once, the delete goes first on the session,
   * so the next acquire of the same object queues behind nothing. */
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
    ck_assert_int_eq(zkr_lock_token(l, &t2), 0);
    ck_assert_int_gt(t2.czxid, t1.czxid);
    t1 = t2;
    ck_assert_int_eq(zkr_lock_release(l, 0), 0);
    ck_assert(!zkr_lock_is_held(l));
  }
  tu_wait_children(zh, path, 0, 5000);
  zkr_lock_free(l);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

/* From inside a callback, blocking calls are refused. */
static int deadlk_rc[3];
static void deadlk_cb(zkr_lock_t *l, int rc, void *arg) {
  (void)rc;
  deadlk_rc[0] = zkr_lock_acquire(l, 1000);
  deadlk_rc[1] = zkr_lock_release(l, 1000); /* would block */
  deadlk_rc[2] = zkr_lock_release_async(l, -1, done_cb, arg);
}

START_TEST(bad_input_and_closed_session) {
  char root[64], path[128], longp[ZKR__PATH_MAX + 8];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l = (zkr_lock_t *)0x1, *m;
  done_t d = DONE_INIT, rel = DONE_INIT;
  zoo_op_t op;
  zkr_lock_token_t t;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  memset(longp, 'a', sizeof(longp));
  longp[0] = '/';
  longp[sizeof(longp) - 1] = '\0';
  ck_assert_int_eq(zkr_lock_new(s, "relative/path", &l), ZKR_EINVAL);
  ck_assert_ptr_null(l);
  ck_assert_int_eq(zkr_lock_new(s, "/trailing/", &l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_new(s, "/", &l), ZKR_EINVAL);
  /* The server's own tree, refused by every recipe alike (0.1.0: only the
   * counter refused it). */
  ck_assert_int_eq(zkr_lock_new(s, "/zookeeper/locks/x", &l), ZKR_EINVAL);
  {
    zkr_election_t *e = NULL;
    ck_assert_int_eq(zkr_election_new(s, "/zookeeper/e", "x", 1, &e), ZKR_EINVAL);
    ck_assert_ptr_null(e);
  }
  ck_assert_int_eq(zkr_lock_new(s, longp, &l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_new(s, NULL, &l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_new(NULL, path, &l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_new(s, path, NULL), ZKR_EINVAL);
  ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(s), root), 0);

  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  ck_assert_int_eq(zkr_lock_release(l, 1000), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_release_async(l, -1, NULL, NULL), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_token(l, &t), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_guard(l, &op), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_acquire(l, -2), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_acquire_async(l, 0, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_set_data(l, NULL, 5), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_set_data(l, "x", 1000001), ZKR_EINVAL); /* checked first */
  ck_assert_int_eq(zkr_lock_set_data(l, "worker-7", 8), 0);
  ck_assert_int_eq(zkr_lock_set_acl(l, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_lock_set_acl(l, &ZOO_OPEN_ACL_UNSAFE), 0);

  /* Blocking calls inside a completion callback. */
  ck_assert_int_eq(zkr_lock_acquire_async(l, 10000, deadlk_cb, &rel), 0);
  ck_assert_int_eq(done_wait(&rel, 10000), 1);
  ck_assert_int_eq(deadlk_rc[0], ZKR_EDEADLK);
  ck_assert_int_eq(deadlk_rc[1], ZKR_EDEADLK);
  ck_assert_int_eq(deadlk_rc[2], 0); /* the async form is fine there */
  ck_assert_int_eq(rel.rc, 0);
  ck_assert(!zkr_lock_is_held(l));

  /* The session goes away under a held lock and a waiting one. */
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  ck_assert_int_eq(zkr_lock_new(s, path, &m), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(m, -1, done_cb, &d), 0);
  zkr__session_ref(s); /* keep the memory to show calls on it fail cleanly */
  zkr_session_free(s);
  ck_assert_int_eq(done_calls(&d), 1);
  ck_assert_int_eq(d.rc, ZKR_ECLOSED);
  ck_assert(!zkr_lock_is_held(l));
  ck_assert_int_eq(zkr_lock_acquire(l, 1000), ZKR_ECLOSED);
  ck_assert_int_eq(zkr_lock_acquire(m, 0), ZKR_ECLOSED);
  ck_assert_int_eq(zkr_lock_release(l, 1000), ZKR_ENOTHELD);
  {
    zkr_lock_t *n = NULL;
    ck_assert_int_eq(zkr_lock_new(s, path, &n), ZKR_ECLOSED);
    ck_assert_ptr_null(n);
  }
  zkr_lock_free(m);
  zkr_lock_free(l);
  zkr__session_unref(s);
  {
    zkr_session_t *x = tu_open(tu_hosts(), 10000);
    tu_wait_children(zkr_session_zhandle(x), path, 0, 5000);
    tu_rmr(zkr_session_zhandle(x), root);
    zkr_session_free(x);
  }
}
END_TEST

static _Atomic int l3_lost, l3_recovered;
static void count_l3_events(zkr_lock_t *l, int ev, void *arg) {
  (void)l, (void)arg;
  if (ev == ZKR_LOCK_LOST)
    atomic_fetch_add(&l3_lost, 1);
  else if (ev == ZKR_LOCK_RECOVERED)
    atomic_fetch_add(&l3_recovered, 1);
}

START_TEST(suspect_recovered_and_release_across_server_restart) {
  const char *dir = tu_zkdir("standalone");
  char root[64], path[128], path2[160], path3[160], node3[256];
  zkr_session_t *s;
  zkr_lock_t *l, *l2, *l3;
  zkr_lock_token_t t1, t2, t3;
  done_t rel = DONE_INIT;
  int64_t deadline;

  if (!dir)
    TU_SKIP("the test server is not ours to restart");
  atomic_store(&suspect_events, 0);
  atomic_store(&recovered_events, 0);
  atomic_store(&lost_events, 0);
  atomic_store(&l3_lost, 0);
  atomic_store(&l3_recovered, 0);
  s = tu_open(tu_hosts(), 30000);
  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  snprintf(path2, sizeof(path2), "%s/locks/b", root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  ck_assert_int_eq(zkr_lock_new(s, path2, &l2), 0);
  ck_assert_int_eq(zkr_lock_set_listener(l, count_lock_events, NULL), 0);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  ck_assert_int_eq(zkr_lock_acquire(l2, 10000), 0);
  ck_assert_int_eq(zkr_lock_token(l, &t1), 0);
  /* l3's node is deleted behind its back; it cannot know until it checks. */
  snprintf(path3, sizeof(path3), "%s/locks/c", root);
  ck_assert_int_eq(zkr_lock_new(s, path3, &l3), 0);
  ck_assert_int_eq(zkr_lock_set_listener(l3, count_l3_events, NULL), 0);
  ck_assert_int_eq(zkr_lock_acquire(l3, 10000), 0);
  ck_assert_int_eq(zkr_lock_token(l3, &t3), 0);
  snprintf(node3, sizeof(node3), "%s/%s", path3, t3.node);
  ck_assert_int_eq(zoo_delete(zkr_session_zhandle(s), node3, -1), ZOK);
  ck_assert(zkr_lock_is_held(l3));
  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s 1", dir), 0);
  deadline = tu_now_ms() + 15000;
  while (atomic_load(&suspect_events) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&suspect_events), 1);

  /* Released while the server is down: not held at once, deleted once back. */
  ck_assert_int_eq(zkr_lock_release_async(l2, -1, done_cb, &rel), 0);
  ck_assert(!zkr_lock_is_held(l2));
  usleep(300 * 1000); /* the delete fails and is retried meanwhile */
  ck_assert_int_eq(done_calls(&rel), 0);

  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s 1", dir), 0);
  deadline = tu_now_ms() + 30000;
  while (atomic_load(&recovered_events) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&recovered_events), 1);
  ck_assert_int_eq(atomic_load(&lost_events), 0);
  ck_assert(zkr_lock_is_held(l));
  ck_assert_int_eq(zkr_lock_token(l, &t2), 0);
  ck_assert_int_eq(t1.czxid, t2.czxid);
  ck_assert_int_eq(done_wait(&rel, 15000), 1);
  ck_assert_int_eq(rel.rc, 0);
  ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(s), path2), 0);
  /* After the reconnect l3 checked its node: gone, so LOST, not RECOVERED. */
  deadline = tu_now_ms() + 10000;
  while (atomic_load(&l3_lost) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&l3_lost), 1);
  ck_assert_int_eq(atomic_load(&l3_recovered), 0);
  ck_assert(!zkr_lock_is_held(l3));
  {
    zkr__queue_stats_t st;
    ck_assert_int_eq(zkr__lock_stats(l3, &st), 0);
    ck_assert_int_eq(st.verify_failed, 1);
  }
  zkr_lock_free(l3);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  zkr_lock_free(l);
  zkr_lock_free(l2);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
}
END_TEST

/* A guard op names its grant's node through a copy of the path that the lock
 * keeps: every copy stays for the grace after a later grant took a guard (an
 * op of an earlier grant still fails), then goes, so a lock granted again and
 * again does not grow (the soak saw ~100 bytes more per leadership). */
START_TEST(guard_copies_kept_for_the_grace_then_freed) {
  char root[64], path[128], data[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_lock_t *l;
  zkr__queue_stats_t st;
  zoo_op_t first, ops[2];
  zoo_op_result_t res[2];
  int saved = zkr__guard_grace_ms;

  tu_root(root, sizeof(root));
  lock_path(path, sizeof(path), root);
  snprintf(data, sizeof(data), "%s/data", root);
  ck_assert_int_eq(zkr_lock_new(s, path, &l), 0);
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
    ck_assert_int_eq(zkr_lock_guard(l, i == 0 ? &first : &ops[0]), 0);
    ck_assert_int_eq(zkr_lock_guard(l, &ops[0]), 0); /* (the same grant: no copy) */
    ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  }
  ck_assert_int_eq(zkr__lock_stats(l, &st), 0);
  ck_assert_int_eq(st.guard_paths, 20);
  ck_assert_int_eq(zoo_create(zh, data, "0", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
  /* The first grant's op fails while a later grant of the same lock holds. */
  ops[0] = first;
  zoo_set_op_init(&ops[1], data, "1", 1, -1, NULL);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZNONODE);
  ck_assert_int_eq(zkr_lock_guard(l, &ops[0]), 0);
  ck_assert_int_eq(zoo_multi(zh, 2, ops, res), ZOK);
  ck_assert_int_eq(zkr_lock_release(l, 10000), 0);

  /* Past the grace, a new grant's guard frees the retired copies. */
  zkr__guard_grace_ms = 0;
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(zkr_lock_acquire(l, 10000), 0);
    ck_assert_int_eq(zkr_lock_guard(l, &ops[0]), 0);
    ck_assert_int_eq(zkr_lock_release(l, 10000), 0);
  }
  zkr__guard_grace_ms = saved;
  ck_assert_int_eq(zkr__lock_stats(l, &st), 0);
  ck_assert_int_eq(st.guard_paths, 1);
  zkr_lock_free(l);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

Suite *lock_suite(void) {
  Suite *s = suite_create("lock");
  TCase *tc = tcase_create("lock");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bad_input_and_closed_session);
  tcase_add_test(tc, reentrant_holds);
  tcase_add_test(tc, timeouts_zero_positive_forever);
  tcase_add_test(tc, free_or_cancel_pending_acquire);
  tcase_add_test(tc, fifo_grant_order_and_one_watch_per_waiter);
  tcase_add_test(tc, mutual_exclusion_many_sessions);
  tcase_add_test(tc, long_names_hold_their_place);
  tcase_add_test(tc, paths_refused_like_the_server);
  tcase_add_test(tc, waits_behind_a_creator_only_node);
  tcase_add_test(tc, predecessor_vanishes_lowest);
  tcase_add_test(tc, predecessor_vanishes_not_lowest);
  tcase_add_test(tc, predecessor_changed_before_watch);
  tcase_add_test(tc, tokens_increase_across_reaped_parent);
  tcase_add_test(tc, ambiguous_create_resolved_without_orphan);
  tcase_add_test(tc, foreign_formats_respected_in_order);
  tcase_add_test(tc, debug_trace_of_a_contended_lock);
  tcase_add_test(tc, session_statistics_of_lock_attempts);
  tcase_add_test(tc, holder_expired_lost_next_granted_guard_fails);
  tcase_add_test(tc, guard_copies_kept_for_the_grace_then_freed);
  tcase_add_test(tc, suspect_recovered_and_release_across_server_restart);
  suite_add_tcase(s, tc);
  return s;
}
