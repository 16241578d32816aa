/* SPDX-License-Identifier: Apache-2.0 */
/* The semaphore against the real test server. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h"
#include "suites.h"
#include "testutil.h"

#define MAXL 3
#define SESSIONS 8
#define CYCLES 6

typedef struct done {
  _Atomic int n, rc;
  zkr_lock_t *leases[4];
} done_t;

static void on_done(zkr_semaphore_t *sem, int rc, zkr_lock_t **leases, int n, void *arg) {
  done_t *d = arg;
  (void)sem;
  for (int i = 0; i < n && i < 4; i++)
    d->leases[i] = leases[i];
  atomic_store(&d->rc, rc);
  atomic_fetch_add(&d->n, 1);
}

static int done_wait(done_t *d, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (atomic_load(&d->n) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_msg(atomic_load(&d->n) == 1, "no callback within %d ms", timeout_ms);
  return atomic_load(&d->rc);
}

static void paths(char *root, size_t rl, char *path, size_t pl, char *leases, size_t ll) {
  tu_root(root, rl);
  snprintf(path, pl, "%s/sem", root);
  snprintf(leases, ll, "%s/sem/leases", root);
}

/* ---- at most max holders, unique slots ---- */

typedef struct shared {
  const char *path;
  int profile;
  _Atomic int holders, most, violations, slot_clash, grants;
  _Atomic int occupied[MAXL];
  _Atomic int64_t last_token;
} shared_t;

typedef struct worker {
  shared_t *sh;
  int id;
  _Atomic int rc;
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  shared_t *sh = w->sh;
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_semaphore_t *sem;
  int rc = zkr_semaphore_new_profile(s, sh->path, MAXL, sh->profile, &sem);
  bool slots = sh->profile != ZKR_SEMAPHORE_NATIVE;

  for (int c = 0; rc == 0 && c < CYCLES; c++) {
    /* some take two at once (one by one in the native profile) */
    int n = slots && (w->id + c) % 4 == 0 ? 2 : 1;
    zkr_lock_t *l[2];
    if ((rc = zkr_semaphore_acquire(sem, n, 30000, l)) != 0)
      break;
    int now = atomic_fetch_add(&sh->holders, n) + n, most = atomic_load(&sh->most);
    while (now > most && !atomic_compare_exchange_weak(&sh->most, &most, now))
      ;
    if (now > MAXL)
      atomic_fetch_add(&sh->violations, 1);
    for (int i = 0; i < n; i++) {
      int slot = zkr_lease_slot(l[i]);
      if (!slots ? slot != -1
                 : slot < 0 || slot >= MAXL || atomic_exchange(&sh->occupied[slot], 1) != 0)
        atomic_fetch_add(&sh->slot_clash, 1);
    }
    atomic_fetch_add(&sh->grants, 1);
    usleep(2000);
    for (int i = 0; i < n; i++) {
      int slot = zkr_lease_slot(l[i]);
      if (slot >= 0 && slot < MAXL)
        atomic_store(&sh->occupied[slot], 0);
    }
    atomic_fetch_sub(&sh->holders, n);
    for (int i = 0; i < n; i++) {
      ck_assert_int_eq(zkr_lock_kind(l[i]), ZKR_LOCK_LEASE);
      ck_assert_int_eq(zkr_lock_release(l[i], 5000), 0);
      zkr_lock_free(l[i]);
    }
  }
  atomic_store(&w->rc, rc);
  zkr_semaphore_free(sem);
  zkr_session_free(s);
  return NULL;
}

/* In each profile (_i): Curator's, kazoo's, native. */
START_TEST(never_more_than_max) {
  char root[64], path[128], leases[160];
  shared_t sh = {.profile = _i};
  worker_t w[SESSIONS];
  pthread_t th[SESSIONS];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_contender_t *list;
  int count;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  sh.path = path;
  for (int i = 0; i < SESSIONS; i++) {
    w[i] = (worker_t){.sh = &sh, .id = i};
    ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < SESSIONS; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&w[i].rc), 0);
  }
  ck_assert_int_eq(atomic_load(&sh.grants), SESSIONS * CYCLES);
  ck_assert_int_eq(atomic_load(&sh.violations), 0);
  ck_assert_int_eq(atomic_load(&sh.slot_clash), 0);
  ck_assert_int_le(atomic_load(&sh.most), MAXL);
  ck_assert_int_ge(atomic_load(&sh.most), 2); /* they did hold together */
  /* Nothing left behind: no lease, no mutex node. */
  ck_assert_int_eq(zkr_contenders_list(s, _i == ZKR_SEMAPHORE_CURATOR ? leases : path, 5000,
                                       &list, &count),
                   0);
  ck_assert_int_eq(count, 0);
  if (_i == ZKR_SEMAPHORE_KAZOO) {
    char buf[16], lock[200];
    int len = sizeof(buf) - 1;
    snprintf(lock, sizeof(lock), "%s-__lock__", path);
    ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(s), lock), 0);
    ck_assert_int_eq(zoo_get(zkr_session_zhandle(s), path, 0, buf, &len, NULL), ZOK);
    buf[len] = '\0';
    ck_assert_str_eq(buf, "3"); /* kazoo's maximum, in P's data */
  }
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
}
END_TEST

/* Curator's names; a timed-out, a try-once and a canceled acquire leave no
 * node; too many leases at once is an error; the token and the guard. */
START_TEST(timeout_leaves_nothing) {
  char root[64], path[128], leases[160], locks[160], node[256];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_semaphore_t *a, *b;
  zkr_lock_t *l, *m[2];
  zkr_lock_token_t tok;
  done_t d = {0};
  struct Stat st;
  zoo_op_t op;
  zoo_op_result_t res;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  snprintf(locks, sizeof(locks), "%s/locks", path);
  ck_assert_int_eq(zkr_semaphore_new(s, path, 1, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new(t, path, 1, &b), 0);
  ck_assert_int_eq(zkr_semaphore_max(a), 1);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 2, 1000, m), ZKR_EOVERFLOW);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 0, 1000, m), ZKR_EINVAL);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &l), 0);
  ck_assert_int_eq(zkr_lease_slot(l), 0);
  ck_assert_int_eq(zkr_lock_token(l, &tok), 0);
  ck_assert_msg(strlen(tok.node) == 3 + 36 + 1 + 6 + 10 && !strncmp(tok.node, "_c_", 3) &&
                    !strncmp(tok.node + 39, "-lease-", 7),
                "not Curator's lease name: %s", tok.node);
  snprintf(node, sizeof(node), "%s/%s", leases, tok.node);
  ck_assert_int_eq(zoo_exists(zh, node, 0, &st), ZOK);
  ck_assert_int_eq(st.czxid, tok.czxid);
  ck_assert_int_eq(st.ephemeralOwner, zkr_session_id(s));
  ck_assert_int_eq(zkr_lock_acquire(l, 1000), ZKR_EINVAL); /* a lease is not re-acquired */
  ck_assert_int_eq(zkr_lock_guard(l, &op), 0);
  ck_assert_int_eq(zoo_multi(zh, 1, &op, &res), ZOK);

  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 300, m), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 0, m), ZKR_ETIMEDOUT);
  tu_wait_children(zh, leases, 1, 5000);
  tu_wait_children(zh, locks, 0, 5000);
  ck_assert_int_eq(zkr_semaphore_acquire_async(b, 1, -1, on_done, &d), 0);
  tu_wait_children(zh, leases, 2, 5000); /* it waits with its lease node */
  ck_assert_int_eq(zkr_semaphore_acquire_async(b, 1, -1, on_done, &d), ZKR_EBUSY);
  ck_assert_int_eq(zkr_semaphore_cancel(b), 0);
  ck_assert_int_eq(done_wait(&d, 1), ZKR_ECANCELED);
  ck_assert_int_eq(zkr_semaphore_cancel(b), ZKR_ENOTHELD);
  tu_wait_children(zh, leases, 1, 5000);
  tu_wait_children(zh, locks, 0, 5000);

  /* Released: b gets it, and a's old guard fails. */
  ck_assert_int_eq(zkr_lock_release(l, 5000), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, m), 0);
  ck_assert_int_eq(zkr_lease_slot(m[0]), 0);
  ck_assert_int_ne(zoo_multi(zh, 1, &op, &res), ZOK);
  zkr_lock_free(l);
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  zkr_lock_free(m[0]); /* a lease outlives its semaphore */
  tu_wait_children(zh, leases, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

typedef struct lost {
  _Atomic int lost;
} lost_t;

static void on_lease_event(zkr_lock_t *l, int event, void *arg) {
  (void)l;
  if (event == ZKR_LOCK_LOST)
    atomic_store(&((lost_t *)arg)->lost, 1);
}

/* The holder's session expires: LOST, and the waiter is granted. */
START_TEST(expiry_frees_the_lease) {
  char root[64], path[128], leases[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_semaphore_t *a, *b;
  zkr_lock_t *l;
  done_t d = {0};
  lost_t x = {0};

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  ck_assert_int_eq(zkr_semaphore_new(s, path, 1, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new(t, path, 1, &b), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &l), 0);
  ck_assert_int_eq(zkr_lock_set_listener(l, on_lease_event, &x), 0);
  ck_assert_int_eq(zkr_semaphore_acquire_async(b, 1, 30000, on_done, &d), 0);
  tu_wait_children(zkr_session_zhandle(t), leases, 2, 5000);
  tu_expire(s, tu_hosts());
  ck_assert_int_eq(done_wait(&d, 30000), 0);
  for (int64_t dl = tu_now_ms() + 20000; !atomic_load(&x.lost) && tu_now_ms() < dl;)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&x.lost), 1);
  ck_assert_int_eq(zkr_lock_is_held(l), 0);
  ck_assert_int_eq(zkr_lock_is_held(d.leases[0]), 1);
  zkr_lock_free(l);
  zkr_lock_free(d.leases[0]);
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A lease node of an earlier session of ours is swept by the next acquire
 * (without the sweep it would take the one lease there is). */
START_TEST(orphan_sweep) {
  char root[64], path[128], leases[160], node[256], made[256];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *u = tu_open(tu_hosts(), 10000);
  zhandle_t *zu = zkr_session_zhandle(u);
  zkr_semaphore_t *a;
  zkr_lock_t *l;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  ck_assert_int_eq(zoo_create(zu, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zu, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zu, leases, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(node, sizeof(node), "%s/_c_0b0e3f5a-1111-4222-8333-944445555666-lease-", leases);
  ck_assert_int_eq(zoo_create(zu, node, "zkr-lease 0/1 h:1", 17, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made)),
                   ZOK);
  ck_assert_int_eq(zkr_semaphore_new(s, path, 1, &a), 0);
  /* Someone else's lease: it counts, nothing is swept. */
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 300, &l), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_semaphore_swept(a), 0);
  ck_assert_int_eq(zoo_exists(zu, made, 0, NULL), ZOK);
  /* Now u is an earlier session of s's object (as after an expiry whose
   * ephemerals the server has not removed yet): swept. */
  zkr__session_note_past(s, zkr_session_id(u));
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &l), 0);
  ck_assert_int_eq(zkr_semaphore_swept(a), 1);
  ck_assert_int_eq(zoo_exists(zu, made, 0, NULL), ZNONODE);
  zkr_lock_free(l);
  /* A child of P/leases in no known format counts, as Curator counts it. */
  snprintf(node, sizeof(node), "%s/junk", leases);
  tu_wait_children(zu, leases, 0, 5000);
  ck_assert_int_eq(zoo_create(zu, node, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 300, &l), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zoo_delete(zu, node, -1), ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &l), 0);
  zkr_lock_free(l);
  zkr_semaphore_free(a);
  tu_rmr(zu, root);
  zkr_session_free(s);
  zkr_session_free(u);
}
END_TEST

/* Another maximum on the path, another library's structure: errors, nothing
 * created. */
START_TEST(mismatch_and_foreign) {
  char root[64], path[128], leases[160], other[160], kazoo[200];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_semaphore_t *a, *b, *c;
  zkr_lock_t *l, *m;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  ck_assert_int_eq(zkr_semaphore_new(s, path, 2, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new(t, path, 3, &b), 0);
  /* b's first acquire checks the path before creating; its next ones list
   * the leases beside their first create: both find the other maximum. */
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), 0);
  zkr_lock_free(m);
  tu_wait_children(zh, leases, 0, 5000);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &l), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), ZKR_EMISMATCH);
  tu_wait_children(zh, leases, 1, 5000);
  ck_assert_int_eq(zkr_semaphore_new(t, path, 3, &c), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(c, 1, 5000, &m), ZKR_EMISMATCH);
  zkr_semaphore_free(c);
  tu_wait_children(zh, leases, 1, 5000);

  snprintf(other, sizeof(other), "%s/kz", root);
  snprintf(kazoo, sizeof(kazoo), "%s/0123456789abcdef0123456789abcdef", other);
  ck_assert_int_eq(zoo_create(zh, other, "2", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, kazoo, "id", 2, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zkr_semaphore_new(t, other, 2, &c), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(c, 1, 5000, &m), ZKR_EFOREIGN);
  ck_assert_int_eq(tu_nchildren(zh, other), 2); /* the lease and the mutex's parent */
  {
    char p[200];
    snprintf(p, sizeof(p), "%s/leases", other);
    ck_assert_int_eq(tu_nchildren(zh, p), 0);
  }
  zkr_lock_free(l);
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  zkr_semaphore_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* The maximum from a shared count (Curator's SharedCount: 4 bytes). */
START_TEST(shared_maximum) {
  char root[64], path[128], leases[160], count[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_counter_t *c;
  zkr_semaphore_t *a;
  zkr_lock_t *l[3];

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  snprintf(count, sizeof(count), "%s/max", root);
  ck_assert_int_eq(zkr_counter_new(s, count, ZKR_COUNTER_INT32, &c), 0);
  ck_assert_int_eq(zkr_semaphore_new_shared(s, path, count, &a), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 0, l), ZKR_ETIMEDOUT); /* 0: none */
  ck_assert_int_eq(zkr_counter_set(c, 2, 5000), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 2, 5000, l), 0);
  ck_assert_int_eq(zkr_semaphore_max(a), 2);
  ck_assert_int_eq(zkr_lease_slot(l[0]) + zkr_lease_slot(l[1]), 1);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 0, &l[2]), ZKR_ETIMEDOUT);
  {
    /* A waiting acquire hears the maximum rise: granted with no lease gone. */
    done_t d = {0};
    ck_assert_int_eq(zkr_semaphore_acquire_async(a, 1, 20000, on_done, &d), 0);
    tu_wait_children(zkr_session_zhandle(s), leases, 3, 5000);
    ck_assert_int_eq(atomic_load(&d.n), 0);
    ck_assert_int_eq(zkr_counter_set(c, 3, 5000), 0);
    ck_assert_int_eq(done_wait(&d, 10000), 0);
    ck_assert_int_eq(zkr_lease_slot(d.leases[0]), 2);
    ck_assert_int_eq(zkr_semaphore_max(a), 3);
    zkr_lock_free(d.leases[0]);
  }
  zkr_lock_free(l[0]);
  zkr_lock_free(l[1]);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 3, 5000, l), 0);
  ck_assert_int_eq(zkr_semaphore_max(a), 3);
  for (int i = 0; i < 3; i++)
    zkr_lock_free(l[i]);
  zkr_semaphore_free(a);
  zkr_counter_free(c);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
}
END_TEST

/* ---- kazoo's profile ---- */

static bool is_kazoo_lock(const char *name) {
  int32_t seq;
  return strlen(name) == 32 + 8 + 10 && strspn(name, "0123456789abcdef") == 32 &&
         strncmp(name + 32, "__lock__", 8) == 0 && zkr__seq_parse(name + 40, &seq) == 0;
}

static void get_data(zhandle_t *zh, const char *path, char *buf, int size) {
  int len = size - 1;
  ck_assert_int_eq(zoo_get(zh, path, 0, buf, &len, NULL), ZOK);
  buf[len < 0 ? 0 : len] = '\0';
}

/* kazoo's nodes: its mutex names beside P, leases P/<hex32>, the maximum in
 * P's data; kazoo's own nodes count; mismatches and foreign structures. */
START_TEST(kazoo_profile) {
  char root[64], path[128], leases[160], lock[200], node[300], buf[64];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_semaphore_t *a, *b;
  zkr_lock_t *l[2], *m;
  struct String_vector v;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  snprintf(lock, sizeof(lock), "%s-__lock__", path);
  ck_assert_int_eq(zkr_semaphore_new_profile(s, path, 2, ZKR_SEMAPHORE_KAZOO, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(t, path, 2, ZKR_SEMAPHORE_KAZOO, &b), 0);
  ck_assert_str_eq(zkr_semaphore_profile_name(ZKR_SEMAPHORE_KAZOO), "kazoo");
  ck_assert_int_eq(zkr_semaphore_acquire(a, 2, 5000, l), 0);
  get_data(zh, path, buf, sizeof(buf));
  ck_assert_str_eq(buf, "2"); /* P made by us, with the maximum */
  ck_assert_int_eq(zoo_get_children(zh, path, 0, &v), ZOK);
  ck_assert_int_eq(v.count, 2);
  for (int i = 0; i < v.count; i++) /* leases P/<hex32> */
    ck_assert_msg(strlen(v.data[i]) == 32 && strspn(v.data[i], "0123456789abcdef") == 32,
                  "lease %s", v.data[i]);
  deallocate_String_vector(&v);
  ck_assert_int_eq(zkr_lease_slot(l[0]) + zkr_lease_slot(l[1]), 1);
  {
    zkr_lock_token_t tok;
    ck_assert_int_eq(zkr_lock_token(l[0], &tok), 0);
    ck_assert_int_gt(tok.czxid, 0);
  }

  /* b waits, holding the mutex: its node has kazoo's name. */
  {
    done_t d = {0};
    ck_assert_int_eq(zkr_semaphore_acquire_async(b, 1, 20000, on_done, &d), 0);
    tu_wait_children(zh, path, 3, 5000);
    ck_assert_int_eq(zoo_get_children(zh, lock, 0, &v), ZOK);
    ck_assert_int_eq(v.count, 1);
    ck_assert_msg(is_kazoo_lock(v.data[0]), "mutex node %s", v.data[0]);
    deallocate_String_vector(&v);
    ck_assert_int_eq(atomic_load(&d.n), 0);
    zkr_lock_free(l[1]);
    ck_assert_int_eq(done_wait(&d, 10000), 0);
    ck_assert_int_eq(zkr_lease_slot(d.leases[0]), 1);
    zkr_lock_free(d.leases[0]);
  }
  zkr_lock_free(l[0]);
  tu_wait_children(zh, path, 0, 5000);

  /* kazoo's own nodes: a lease counts, a lock node ahead is waited for. */
  snprintf(node, sizeof(node), "%s/00112233445566778899aabbccddeeff", path);
  ck_assert_int_eq(zoo_create(zh, node, "py", 2, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 0, l), ZKR_ETIMEDOUT); /* 2 held */
  zkr_lock_free(m);
  snprintf(node, sizeof(node), "%s/ffeeddccbbaa99887766554433221100__lock__", lock);
  ck_assert_int_eq(zoo_create(zh, node, "py", 2, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL | ZOO_SEQUENCE, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 300, l), ZKR_ETIMEDOUT); /* kazoo's mutex */
  tu_wait_children(zh, path, 1, 5000); /* nothing left */
  tu_wait_children(zh, lock, 1, 5000);

  /* Another maximum in P's data; data that is no number. */
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  tu_rmr(zh, root);
  ck_assert_int_eq(zkr_semaphore_new_profile(s, path, 2, ZKR_SEMAPHORE_KAZOO, &a), 0);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, path, "5", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), ZKR_EMISMATCH);
  ck_assert_int_eq(zoo_set(zh, path, "config", 6, -1), ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), ZKR_EFOREIGN);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  /* Empty data (made by another): ours is written there. */
  ck_assert_int_eq(zoo_set(zh, path, NULL, -1, -1), ZOK);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), 0);
  zkr_lock_free(l[0]);
  get_data(zh, path, buf, sizeof(buf));
  ck_assert_str_eq(buf, "2");
  zkr_semaphore_free(a);

  /* Curator's structure under a kazoo profile, and the other way round. */
  ck_assert_int_eq(zkr_semaphore_new(s, path, 2, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(t, path, 2, ZKR_SEMAPHORE_KAZOO, &b), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), ZKR_EFOREIGN);
  zkr_lock_free(l[0]);
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  tu_rmr(zh, root);
  ck_assert_int_eq(zkr_semaphore_new(s, path, 2, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(t, path, 2, ZKR_SEMAPHORE_KAZOO, &b), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), ZKR_EFOREIGN);
  zkr_lock_free(m);
  zkr_semaphore_free(a);
  zkr_semaphore_free(b);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- the native profile ---- */

/* Its names, one lease per acquire, FIFO, the other profiles' structures and
 * other maxima reported, expiry of a holder. */
START_TEST(native_profile) {
  char root[64], path[128], leases[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_semaphore_t *a, *b, *c;
  zkr_lock_t *l[2], *m;
  zkr_contender_t *list;
  int count;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  ck_assert_int_eq(zkr_semaphore_new_profile(s, path, 1, 3, &a), ZKR_EINVAL);
  ck_assert_int_eq(zkr_semaphore_new_profile(s, path, 1, ZKR_SEMAPHORE_NATIVE, &a), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(t, path, 1, ZKR_SEMAPHORE_NATIVE, &b), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 2, 5000, l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, l), 0);
  ck_assert_int_eq(zkr_lease_slot(l[0]), -1);
  {
    zkr_lock_token_t tok;
    ck_assert_int_eq(zkr_lock_token(l[0], &tok), 0);
    ck_assert_int_gt(tok.czxid, 0);
  }
  ck_assert_int_eq(zkr_contenders_list(s, path, 5000, &list, &count), 0);
  ck_assert_int_eq(count, 1);
  ck_assert_int_eq(list[0].format, ZKR_FORMAT_CURATOR_LEASE);
  zkr_contenders_free(list, count);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 0, &m), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 200, &m), ZKR_ETIMEDOUT);
  tu_wait_children(zh, path, 1, 5000); /* the timed-out ones leave nothing */
  {
    /* The holder's session expires: LOST, and the waiter is granted. */
    done_t d = {0};
    ck_assert_int_eq(zkr_semaphore_acquire_async(b, 1, 20000, on_done, &d), 0);
    tu_wait_children(zh, path, 2, 5000);
    ck_assert_int_eq(atomic_load(&d.n), 0);
    tu_expire(s, tu_hosts());
    ck_assert_int_eq(done_wait(&d, 20000), 0);
    for (int64_t end = tu_now_ms() + 10000; zkr_lock_is_held(l[0]) && tu_now_ms() < end;)
      usleep(2000); /* (s hears of its expiry when it reconnects) */
    ck_assert(!zkr_lock_is_held(l[0]));
    zkr_lock_free(l[0]);
    zkr_lock_free(d.leases[0]);
  }
  zkr_semaphore_free(a);
  zh = zkr_session_zhandle(t); /* (s has a new handle now) */
  /* Another maximum: reported by a first acquire. */
  ck_assert_int_eq(zkr_semaphore_acquire(b, 1, 5000, &m), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(s, path, 2, ZKR_SEMAPHORE_NATIVE, &c), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(c, 1, 5000, l), ZKR_EMISMATCH);
  zkr_semaphore_free(c);
  /* Curator's structure: refused, both ways. */
  ck_assert_int_eq(zkr_semaphore_new(s, path, 1, &c), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(c, 1, 5000, l), ZKR_EFOREIGN);
  zkr_lock_free(m);
  tu_wait_children(zh, path, 1, 5000); /* the mutex's P/locks (an empty container) */
  ck_assert_int_eq(zkr_semaphore_acquire(c, 1, 5000, l), 0);
  ck_assert_int_eq(zkr_semaphore_new_profile(t, path, 1, ZKR_SEMAPHORE_NATIVE, &a), 0);
  ck_assert_int_eq(zkr_semaphore_acquire(a, 1, 5000, &m), ZKR_EFOREIGN);
  zkr_semaphore_free(a);
  zkr_lock_free(l[0]);
  zkr_semaphore_free(c);
  zkr_semaphore_free(b);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

#define NW 8
/* max 2, NW more waiting in line: each release grants the next in line
 * (first come, first served), with about two wake-ups per grant in all (the
 * first waiter's, then the one behind it), not one per waiter. */
START_TEST(native_one_wakeup_per_grant) {
  char root[64], path[128], leases[160];
  zkr_session_t *s[NW + 2];
  zkr_semaphore_t *sem[NW + 2];
  done_t d[NW + 2];
  zkr_lock_t *held[NW + 2];
  uint64_t notes = 0;

  paths(root, sizeof(root), path, sizeof(path), leases, sizeof(leases));
  memset(d, 0, sizeof(d));
  for (int i = 0; i < NW + 2; i++) {
    s[i] = tu_open(tu_hosts(), 10000);
    ck_assert_int_eq(zkr_semaphore_new_profile(s[i], path, 2, ZKR_SEMAPHORE_NATIVE, &sem[i]),
                     0);
    /* one after another: the order of their nodes is i's */
    ck_assert_int_eq(zkr_semaphore_acquire_async(sem[i], 1, 60000, on_done, &d[i]), 0);
    tu_wait_children(zkr_session_zhandle(s[0]), path, i + 1, 5000);
  }
  ck_assert_int_eq(done_wait(&d[0], 5000), 0);
  ck_assert_int_eq(done_wait(&d[1], 5000), 0);
  held[0] = d[0].leases[0];
  held[1] = d[1].leases[0];
  for (int i = 2; i < NW + 2; i++)
    ck_assert_int_eq(atomic_load(&d[i].n), 0);
  /* Release the oldest holder each time: the next in line, and only it, gets in. */
  for (int next = 2; next < NW + 2; next++) {
    zkr_lock_free(held[next - 2]);
    ck_assert_int_eq(done_wait(&d[next], 10000), 0);
    held[next] = d[next].leases[0];
    for (int j = next + 1; j < NW + 2; j++)
      ck_assert_msg(atomic_load(&d[j].n) == 0, "%d granted before %d", j, next);
    {
      zkr__queue_stats_t st; /* (what it heard while it waited) */
      ck_assert_int_eq(zkr__lock_stats(held[next], &st), 0);
      notes += st.notifications;
    }
  }
  /* Queued one by one: the first waiter heard each later create (NW - 1), then
   * each of the NW grants costs the granted one's event and the event of the
   * one behind it (the grant mark): at most 3 * NW in all; a herd would be
   * about NW * NW / 2. */
  ck_assert_msg(notes <= 3 * NW, "%llu notifications for %d grants", (unsigned long long)notes,
                NW);
  for (int i = NW; i < NW + 2; i++)
    zkr_lock_free(held[i]);
  for (int i = 0; i < NW + 2; i++) {
    zkr_semaphore_free(sem[i]);
    if (i > 0)
      zkr_session_free(s[i]);
  }
  tu_rmr(zkr_session_zhandle(s[0]), root);
  zkr_session_free(s[0]);
}
END_TEST

Suite *semaphore_suite(void) {
  Suite *su = suite_create("semaphore");
  TCase *tc = tcase_create("semaphore");
  tcase_set_timeout(tc, 180);
  tcase_add_loop_test(tc, never_more_than_max, ZKR_SEMAPHORE_CURATOR, ZKR_SEMAPHORE_NATIVE + 1);
  tcase_add_test(tc, kazoo_profile);
  tcase_add_test(tc, native_profile);
  tcase_add_test(tc, native_one_wakeup_per_grant);
  tcase_add_test(tc, timeout_leaves_nothing);
  tcase_add_test(tc, expiry_frees_the_lease);
  tcase_add_test(tc, orphan_sweep);
  tcase_add_test(tc, mismatch_and_foreign);
  tcase_add_test(tc, shared_maximum);
  suite_add_tcase(su, tc);
  return su;
}
