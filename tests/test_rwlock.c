/* SPDX-License-Identifier: Apache-2.0 */
/* The read/write lock against the real test servers. */
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

typedef struct done {
  _Atomic int n, rc;
} done_t;

static void on_done(zkr_lock_t *l, int rc, void *arg) {
  done_t *d = arg;
  (void)l;
  atomic_store(&d->rc, rc);
  atomic_fetch_add(&d->n, 1);
}

/* Wait (bounded) until d was called back; its rc. */
static int done_wait(done_t *d, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (atomic_load(&d->n) == 0 && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_msg(atomic_load(&d->n) == 1, "no callback within %d ms", timeout_ms);
  return atomic_load(&d->rc);
}

static int is_curator_name(const char *name, const char *marker) {
  /* _c_<uuid36>-<marker><10 digits> */
  size_t ml = strlen(marker);
  return strlen(name) == 3 + 36 + 1 + ml + 10 && !strncmp(name, "_c_", 3) &&
         name[39] == '-' && !strncmp(name + 40, marker, ml);
}

static void path_of(char *root, size_t rl, char *path, size_t pl) {
  tu_root(root, rl);
  snprintf(path, pl, "%s/rw", root);
}

/* Readers hold together; a writer waits for them and holds alone; a reader
 * that comes behind a waiting writer waits for it (fair); Curator's names. */
START_TEST(readers_share_writer_excludes) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_rwlock_t *rw[5];
  zkr_lock_t *r[3], *w, *late;
  done_t dw = {0}, dl = {0};
  zkr_lock_token_t tok;

  path_of(root, sizeof(root), path, sizeof(path));
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(zkr_rwlock_new(i % 2 ? t : s, path, &rw[i]), 0);
  w = zkr_rwlock_write(rw[3]);
  late = zkr_rwlock_read(rw[4]);
  for (int i = 0; i < 3; i++) {
    r[i] = zkr_rwlock_read(rw[i]);
    ck_assert_int_eq(zkr_lock_kind(r[i]), ZKR_LOCK_READ);
    ck_assert_int_eq(zkr_lock_acquire(r[i], 5000), 0);
  }
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(zkr_lock_is_held(r[i]), 1);
  ck_assert_int_eq(zkr_lock_token(r[0], &tok), 0);
  ck_assert(is_curator_name(tok.node, "__READ__"));

  ck_assert_int_eq(zkr_lock_kind(w), ZKR_LOCK_WRITE);
  ck_assert_int_eq(zkr_lock_acquire_async(w, 10000, on_done, &dw), 0);
  tu_wait_children(zkr_session_zhandle(s), path, 4, 5000);
  ck_assert_int_eq(zkr_lock_acquire_async(late, 10000, on_done, &dl), 0);
  tu_wait_children(zkr_session_zhandle(s), path, 5, 5000);
  ck_assert_int_eq(zkr_lock_is_held(w), 0);
  ck_assert_int_eq(zkr_lock_is_held(late), 0); /* behind the waiting writer */

  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(zkr_lock_release(r[i], 5000), 0);
  ck_assert_int_eq(done_wait(&dw, 5000), 0);
  ck_assert_int_eq(zkr_lock_token(w, &tok), 0);
  ck_assert(is_curator_name(tok.node, "__WRIT__"));
  ck_assert_int_eq(zkr_lock_is_held(late), 0); /* the writer holds alone */
  ck_assert_int_eq(zkr_lock_release(w, 5000), 0);
  ck_assert_int_eq(done_wait(&dl, 5000), 0);
  ck_assert_int_eq(zkr_lock_release(late, 5000), 0);
  zkr_lock_free(late); /* a pair's own lock: nothing happens */
  ck_assert_int_eq(zkr_lock_acquire(late, 5000), 0);
  for (int i = 0; i < 5; i++)
    zkr_rwlock_free(rw[i]); /* releases late's hold too */
  tu_wait_children(zkr_session_zhandle(s), path, 0, 5000);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Writers of other formats block our readers: kazoo's __lock__ and our own
 * exclusive mutex (lock-). */
START_TEST(foreign_writers_block_readers) {
  char root[64], path[128], prefix[200], made[256];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_rwlock_t *rw;
  zkr_lock_t *r, *m;
  done_t d1 = {0}, d2 = {0};

  path_of(root, sizeof(root), path, sizeof(path));
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(prefix, sizeof(prefix), "%s/0123456789abcdef0123456789abcdef__lock__", path);
  ck_assert_int_eq(zoo_create(zh, prefix, "kazoo", 5, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made)),
                   ZOK);
  ck_assert_int_eq(zkr_rwlock_new(s, path, &rw), 0);
  r = zkr_rwlock_read(rw);
  ck_assert_int_eq(zkr_lock_acquire_async(r, 10000, on_done, &d1), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zkr_lock_is_held(r), 0);
  ck_assert_int_eq(zoo_delete(zh, made, -1), ZOK);
  ck_assert_int_eq(done_wait(&d1, 5000), 0);
  ck_assert_int_eq(zkr_lock_release(r, 5000), 0);

  /* A mutex holder is a writer too. */
  ck_assert_int_eq(zkr_lock_new(t, path, &m), 0);
  ck_assert_int_eq(zkr_lock_acquire(m, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(r, 10000, on_done, &d2), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zkr_lock_is_held(r), 0);
  ck_assert_int_eq(zkr_lock_release(m, 5000), 0);
  ck_assert_int_eq(done_wait(&d2, 5000), 0);
  zkr_rwlock_free(rw);
  zkr_lock_free(m);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* A write acquire while the pair's read lock holds is an error at once;
 * another pair's writer (even on the same session) waits; once the read lock
 * goes, the write lock holds. */
START_TEST(upgrade_is_an_error) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_rwlock_t *rw, *rw2;
  zkr_lock_t *r, *w, *w2;

  path_of(root, sizeof(root), path, sizeof(path));
  ck_assert_int_eq(zkr_rwlock_new(s, path, &rw), 0);
  ck_assert_int_eq(zkr_rwlock_new(s, path, &rw2), 0);
  r = zkr_rwlock_read(rw);
  w = zkr_rwlock_write(rw);
  w2 = zkr_rwlock_write(rw2);
  ck_assert_int_eq(zkr_lock_acquire(r, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire(w, 5000), ZKR_EDEADLK);
  ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(s), path), 1); /* nothing queued */
  ck_assert_int_eq(zkr_lock_acquire(w2, 300), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_lock_release(r, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire(w, 5000), 0); /* no read lock held now */
  ck_assert_int_eq(zkr_lock_release(w, 5000), 0);
  zkr_rwlock_free(rw);
  zkr_rwlock_free(rw2);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* One notification per waiter per grant: 20 readers behind a writer all
 * watch it and are all granted by its release, each told once; a writer
 * behind them watches only the node right ahead of it. */
START_TEST(one_notification_per_waiter) {
  enum { N = 20 };
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_rwlock_t *first, *last, *rw[N];
  zkr_lock_t *w, *r[N], *w2;
  done_t d[N], d2 = {0};
  zkr__queue_stats_t st;
  uint64_t notes = 0;

  path_of(root, sizeof(root), path, sizeof(path));
  memset(d, 0, sizeof(d));
  ck_assert_int_eq(zkr_rwlock_new(s, path, &first), 0);
  ck_assert_int_eq(zkr_rwlock_new(t, path, &last), 0);
  w = zkr_rwlock_write(first);
  w2 = zkr_rwlock_write(last);
  ck_assert_int_eq(zkr_lock_acquire(w, 5000), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(zkr_rwlock_new(i % 2 ? s : t, path, &rw[i]), 0);
    r[i] = zkr_rwlock_read(rw[i]);
    ck_assert_int_eq(zkr_lock_acquire_async(r[i], 20000, on_done, &d[i]), 0);
  }
  tu_wait_children(zkr_session_zhandle(s), path, N + 1, 10000);
  ck_assert_int_eq(zkr_lock_acquire_async(w2, 20000, on_done, &d2), 0);
  tu_wait_children(zkr_session_zhandle(s), path, N + 2, 10000);
  /* Every reader waiting with its watch set (on the writer) before the
   * release: then each must be told exactly once. */
  for (int64_t dl = tu_now_ms() + 20000;;) {
    int set = 0;
    for (int i = 0; i < N; i++)
      set += zkr__lock_stats(r[i], &st) == 0 && st.watches >= 1;
    if (set == N)
      break;
    ck_assert_msg(tu_now_ms() < dl, "only %d of %d readers watch", set, N);
    usleep(2000);
  }
  ck_assert_int_eq(zkr_lock_release(w, 5000), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(done_wait(&d[i], 10000), 0);
  ck_assert_int_eq(zkr_lock_is_held(w2), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(zkr__lock_stats(r[i], &st), 0);
    notes += st.notifications;
    /* Told once, by the writer's departure (or, if the delete overtook its
     * watch on the way to the server, it found the writer gone instead). */
    ck_assert_int_le(st.notifications, 1);
    ck_assert_int_eq(st.notifications + st.pred_vanished, 1);
  }
  ck_assert_int_le(notes, N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(zkr_lock_release(r[i], 5000), 0);
  ck_assert_int_eq(done_wait(&d2, 10000), 0);
  ck_assert_int_eq(zkr__lock_stats(w2, &st), 0);
  /* The writer watched only the reader right ahead of it, and lists again
   * when it goes: a handful of notifications, not one per reader. */
  ck_assert_int_le(st.notifications, N);
  for (int i = 0; i < N; i++)
    zkr_rwlock_free(rw[i]);
  zkr_rwlock_free(first);
  zkr_rwlock_free(last);
  tu_rmr(zkr_session_zhandle(s), root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

typedef struct lost {
  _Atomic int lost;
} lost_t;

static void on_lock_event(zkr_lock_t *l, int ev, void *arg) {
  lost_t *x = arg;
  (void)l;
  if (ev == ZKR_LOCK_LOST)
    atomic_fetch_add(&x->lost, 1);
}

/* The writer's session expires: LOST, the waiting reader is granted, and the
 * writer's guard op fails in a multi. */
START_TEST(writer_expiry) {
  char root[64], path[128], data[] = "x";
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_rwlock_t *rw1, *rw2;
  zkr_lock_t *w, *r;
  done_t dr = {0};
  lost_t x = {0};
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  char target[160];

  path_of(root, sizeof(root), path, sizeof(path));
  snprintf(target, sizeof(target), "%s/target", root);
  ck_assert_int_eq(zkr_rwlock_new(s, path, &rw1), 0);
  ck_assert_int_eq(zkr_rwlock_new(t, path, &rw2), 0);
  w = zkr_rwlock_write(rw1);
  r = zkr_rwlock_read(rw2);
  ck_assert_int_eq(zkr_lock_set_listener(w, on_lock_event, &x), 0);
  ck_assert_int_eq(zkr_lock_acquire(w, 5000), 0);
  ck_assert_int_eq(zkr_lock_guard(w, &ops[0]), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(r, 20000, on_done, &dr), 0);
  tu_wait_children(zh, path, 2, 5000);
  tu_expire(s, tu_hosts());
  ck_assert_int_eq(done_wait(&dr, 20000), 0);
  for (int64_t dl = tu_now_ms() + 20000; !atomic_load(&x.lost) && tu_now_ms() < dl;)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&x.lost), 1);
  ck_assert_int_eq(zkr_lock_is_held(w), 0);
  /* The stale guard (the writer's node path) fails a multi now. */
  zoo_create_op_init(&ops[1], target, data, 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  ck_assert_int_ne(zoo_multi(zh, 2, ops, res), ZOK);
  ck_assert_int_eq(zoo_exists(zh, target, 0, NULL), ZNONODE);
  zkr_rwlock_free(rw1);
  zkr_rwlock_free(rw2);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* Loses the reply of the first multi (the downgrade's) after it applied. */
static _Atomic int multi_lost;
static int lose_multi_reply(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg, (void)s;
  if (kind == ZKR__K_MULTI && rc == ZOK && atomic_exchange(&multi_lost, 1) == 0)
    return ZCONNECTIONLOSS;
  return rc;
}

/* A downgrade keeps the writer's place: the read node has its sequence, a
 * reader waiting behind is granted, a writer waiting behind is not; the write
 * guard fails afterwards; errors when there is nothing to downgrade. */
START_TEST(downgrade_keeps_the_place) {
  char root[64], path[128], target[160], data[] = "x";
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_rwlock_t *rw1, *rw2, *rw3;
  zkr_lock_t *w1, *r1, *r2, *w3;
  zkr_lock_token_t wt, rt;
  done_t dr = {0}, dw = {0};
  zkr_contender_t *c;
  int n;
  zoo_op_t ops[2];
  zoo_op_result_t res[2];

  path_of(root, sizeof(root), path, sizeof(path));
  snprintf(target, sizeof(target), "%s/target", root);
  ck_assert_int_eq(zkr_rwlock_new(s, path, &rw1), 0);
  ck_assert_int_eq(zkr_rwlock_new(t, path, &rw2), 0);
  ck_assert_int_eq(zkr_rwlock_new(t, path, &rw3), 0);
  w1 = zkr_rwlock_write(rw1);
  r1 = zkr_rwlock_read(rw1);
  r2 = zkr_rwlock_read(rw2);
  w3 = zkr_rwlock_write(rw3);
  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), ZKR_ENOTHELD);
  ck_assert_int_eq(zkr_lock_acquire(w1, 5000), 0);
  ck_assert_int_eq(zkr_lock_token(w1, &wt), 0);
  ck_assert_int_eq(zkr_lock_guard(w1, &ops[0]), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(r2, 20000, on_done, &dr), 0);
  tu_wait_children(zh, path, 2, 5000);
  ck_assert_int_eq(zkr_lock_acquire_async(w3, 20000, on_done, &dw), 0);
  tu_wait_children(zh, path, 3, 5000);

  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), 0);
  ck_assert_int_eq(zkr_lock_is_held(w1), 0);
  ck_assert_int_eq(zkr_lock_is_held(r1), 1);
  ck_assert_int_eq(zkr_lock_token(r1, &rt), 0);
  ck_assert_int_eq(rt.sequence, wt.sequence); /* the same place */
  ck_assert(is_curator_name(rt.node, "__READ__"));
  ck_assert_int_gt(rt.czxid, wt.czxid);
  ck_assert_int_eq(done_wait(&dr, 10000), 0); /* the reader behind: granted */
  ck_assert_int_eq(zkr_lock_is_held(w3), 0);  /* the writer behind: still waits */
  ck_assert_int_eq(zkr_contenders_list(t, path, 5000, &c, &n), 0);
  ck_assert_int_eq(n, 3);
  ck_assert_str_eq(c[0].name, rt.node);
  ck_assert_int_eq(c[0].reader, 1);
  zkr_contenders_free(c, n);
  ck_assert_int_eq(zkr_lock_is_held(w3), 0);
  ck_assert_int_eq(atomic_load(&dw.n), 0);
  /* The write grant's guard fails now. */
  zoo_create_op_init(&ops[1], target, data, 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  ck_assert_int_ne(zoo_multi(zh, 2, ops, res), ZOK);
  ck_assert_int_eq(zoo_exists(zh, target, 0, NULL), ZNONODE);
  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), ZKR_ENOTHELD);

  ck_assert_int_eq(zkr_lock_release(r1, 5000), 0);
  ck_assert_int_eq(zkr_lock_release(r2, 5000), 0);
  ck_assert_int_eq(done_wait(&dw, 10000), 0); /* the readers gone: the writer */
  ck_assert_int_eq(zkr_lock_release(w3, 5000), 0);
  /* A writer right behind the one that downgrades: the reader that takes
   * its place stays ahead of it (its departure is no grant). */
  {
    done_t dw2 = {0};
    zkr__queue_stats_t st = {0};
    int64_t until;
    uint64_t watches0, lists0;
    ck_assert_int_eq(zkr_lock_acquire(w1, 5000), 0);
    ck_assert_int_eq(zkr__lock_stats(w3, &st), 0); /* (counts since w3 was made) */
    watches0 = st.watches;
    ck_assert_int_eq(zkr_lock_acquire_async(w3, 20000, on_done, &dw2), 0);
    until = tu_now_ms() + 10000;
    do { /* w3 watches the write node, the one right ahead of it */
      ck_assert_int_eq(zkr__lock_stats(w3, &st), 0);
      if (st.watches == watches0)
        usleep(1000);
    } while (st.watches == watches0 && tu_now_ms() < until);
    ck_assert_int_eq(st.watches, watches0 + 1);
    lists0 = st.lists;
    ck_assert_int_eq(zkr_rwlock_downgrade(rw1), 0);
    until = tu_now_ms() + 10000;
    do { /* w3 heard of the write node's deletion: held (wrong) or listed again */
      ck_assert_int_eq(zkr__lock_stats(w3, &st), 0);
      if (st.lists == lists0 && !zkr_lock_is_held(w3))
        usleep(1000);
    } while (st.lists == lists0 && !zkr_lock_is_held(w3) && tu_now_ms() < until);
    ck_assert_int_eq(zkr_lock_is_held(w3), 0);
    ck_assert_int_eq(atomic_load(&dw2.n), 0);
    ck_assert_int_eq(zkr_lock_release(r1, 5000), 0);
    ck_assert_int_eq(done_wait(&dw2, 10000), 0);
    ck_assert_int_eq(zkr_lock_release(w3, 5000), 0);
  }
  /* The downgrade's own reply lost: the read node tells it applied. */
  ck_assert_int_eq(zkr_lock_acquire(w1, 5000), 0);
  zkr__set_fault_hook(lose_multi_reply, NULL);
  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), 0);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(atomic_load(&multi_lost), 1);
  ck_assert_int_eq(zkr_lock_is_held(r1), 1);
  ck_assert_int_eq(zkr_lock_is_held(w1), 0);
  ck_assert_int_eq(zkr_lock_release(r1, 5000), 0);
  /* The read side busy: no downgrade. */
  ck_assert_int_eq(zkr_lock_acquire(w1, 5000), 0);
  ck_assert_int_eq(zkr_lock_acquire(w1, 5000), 0); /* held twice */
  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), ZKR_EBUSY);
  ck_assert_int_eq(zkr_lock_release(w1, 5000), 0);
  ck_assert_int_eq(zkr_rwlock_downgrade(rw1), 0);
  ck_assert_int_eq(zkr_lock_is_held(r1), 1);
  ck_assert_int_eq(zkr_lock_hold_count(r1), 1);
  zkr_rwlock_free(rw1);
  zkr_rwlock_free(rw2);
  zkr_rwlock_free(rw3);
  tu_wait_children(zh, path, 0, 5000);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

Suite *rwlock_suite(void) {
  Suite *su = suite_create("rwlock");
  TCase *tc = tcase_create("rwlock");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, readers_share_writer_excludes);
  tcase_add_test(tc, foreign_writers_block_readers);
  tcase_add_test(tc, upgrade_is_an_error);
  tcase_add_test(tc, one_notification_per_waiter);
  tcase_add_test(tc, writer_expiry);
  tcase_add_test(tc, downgrade_keeps_the_place);
  suite_add_tcase(su, tc);
  return su;
}
