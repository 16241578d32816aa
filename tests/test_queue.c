/* SPDX-License-Identifier: Apache-2.0 */
/* The work queue against the real test server. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h"
#include "suites.h"
#include "testutil.h"

static void paths(char *root, size_t rl, char *path, size_t pl) {
  tu_root(root, rl);
  snprintf(path, pl, "%s/jobs", root);
}

static void take_commit(zkr_queue_t *q, const char *want_data, int want_prio) {
  zkr_item_t *it;
  int len;
  ck_assert_int_eq(zkr_queue_take(q, 5000, &it), 0);
  ck_assert_str_eq(zkr_item_data(it, &len), want_data);
  ck_assert_int_eq(len, (int)strlen(want_data));
  ck_assert_int_eq(zkr_item_priority(it), want_prio);
  ck_assert_int_gt(zkr_item_token(it), 0);
  ck_assert_int_eq(zkr_item_commit(it, NULL, 0, NULL, 5000), 0);
  ck_assert_int_eq(zkr_item_commit(it, NULL, 0, NULL, 5000), ZKR_ENOTHELD);
  zkr_item_free(it);
}

/* Each profile (_i): its names, FIFO, priority order, nothing left. */
START_TEST(fifo_and_priority) {
  char root[64], path[128], name[256], items[200], claims[200], p[512];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_queue_t *q;
  zkr_item_t *it;
  int n, p1 = 5, p2 = -3, p3 = 1;

  paths(root, sizeof(root), path, sizeof(path));
  if (_i == ZKR_QUEUE_KAZOO || _i == ZKR_QUEUE_KAZOO_LOCKING)
    p1 = 100, p2 = 7, p3 = 50;
  if (_i == ZKR_QUEUE_SIMPLE)
    p1 = p2 = p3 = 0;
  snprintf(items, sizeof(items), "%s%s", path, _i == ZKR_QUEUE_KAZOO_LOCKING ? "/entries" : "");
  snprintf(claims, sizeof(claims), "%s%s", path,
           _i == ZKR_QUEUE_KAZOO_LOCKING ? "/taken" : "-claims");
  ck_assert_int_eq(zkr_queue_new(s, path, _i, &q), 0);
  ck_assert_int_eq(zkr_queue_take(q, 0, &it), ZKR_ETIMEDOUT);
  ck_assert_ptr_null(it);
  ck_assert_int_eq(zkr_queue_put(q, "first", 5, p1, 5000, name, sizeof(name)), 0);
  if (_i == ZKR_QUEUE_SIMPLE)
    ck_assert_msg(strncmp(name, "qn-", 3) == 0, "%s", name);
  else if (_i == ZKR_QUEUE_CURATOR)
    ck_assert_msg(strncmp(name, "queue-100000005", 15) == 0, "%s", name);
  else
    ck_assert_msg(strncmp(name, "entry-100-", 10) == 0, "%s", name);
  if (_i == ZKR_QUEUE_CURATOR) { /* Curator's frame */
    char buf[64];
    int len = sizeof(buf);
    snprintf(p, sizeof(p), "%s/%s", items, name);
    ck_assert_int_eq(zoo_get(zh, p, 0, buf, &len, NULL), ZOK);
    ck_assert_int_eq(len, 15);
    ck_assert(memcmp(buf, "\x00\x01\x00\x01\x01\x00\x00\x00\x05" "first\x02", 15) == 0);
  }
  ck_assert_int_eq(zkr_queue_put(q, "second", 6, p1, 5000, NULL, 0), 0);
  ck_assert_int_eq(zkr_queue_put(q, "urgent", 6, p2, 5000, NULL, 0), 0);
  ck_assert_int_eq(zkr_queue_put(q, "", 0, p3, 5000, NULL, 0), 0);
  ck_assert_int_eq(zkr_queue_length(q, 5000, &n), 0);
  ck_assert_int_eq(n, 4);
  if (_i == ZKR_QUEUE_SIMPLE) {
    take_commit(q, "first", 0);
    take_commit(q, "second", 0);
    take_commit(q, "urgent", 0);
    take_commit(q, "", 0);
  } else {
    take_commit(q, "urgent", p2);
    take_commit(q, "", p3);
    take_commit(q, "first", p1);
    take_commit(q, "second", p1);
  }
  ck_assert_int_eq(zkr_queue_take(q, 200, &it), ZKR_ETIMEDOUT);
  ck_assert_int_eq(zkr_queue_length(q, 5000, &n), 0);
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(tu_nchildren(zh, claims), 0);
  ck_assert_int_eq(zkr_queue_put(q, "x", 1, _i == ZKR_QUEUE_SIMPLE ? 1 : 1000, 5000, NULL, 0),
                   _i == ZKR_QUEUE_CURATOR ? 0 : ZKR_EINVAL);
  {
    /* each put took the last one's receipt away; the last goes with the object */
    char r[200];
    snprintf(r, sizeof(r), "%s-receipts", path);
    ck_assert_int_eq(tu_nchildren(zh, r), 1);
    zkr_queue_free(q);
    tu_wait_children(zh, r, 0, 5000);
  }
  tu_rmr(zh, root);
  {
    char r[200];
    snprintf(r, sizeof(r), "%s-receipts", path);
    tu_rmr(zh, r);
  }
  zkr_session_free(s);
}
END_TEST

/* Release, requeue (its priority kept), other formats left alone, too big. */
START_TEST(requeue_release_foreign) {
  char root[64], path[128], p[300];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_queue_t *q;
  zkr_item_t *it, *it2;
  static char big[ZKR_QUEUE_MAX_ITEM + 1];

  paths(root, sizeof(root), path, sizeof(path));
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_KAZOO, &q), 0);
  ck_assert_int_eq(zkr_queue_put(q, big, (int)sizeof(big), 100, 5000, NULL, 0), ZKR_EOVERFLOW);
  ck_assert_int_eq(zkr_queue_put(q, "a", 1, 10, 5000, NULL, 0), 0);
  ck_assert_int_eq(zkr_queue_put(q, "b", 1, 50, 5000, NULL, 0), 0);
  /* foreign: a Curator item, a plain node */
  snprintf(p, sizeof(p), "%s/queue-0000000099", path);
  ck_assert_int_eq(zoo_create(zh, p, "c", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(p, sizeof(p), "%s/config", path);
  ck_assert_int_eq(zoo_create(zh, p, "d", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);

  ck_assert_int_eq(zkr_queue_take(q, 5000, &it), 0);
  ck_assert_str_eq(zkr_item_data(it, NULL), "a");
  zkr_item_free(it); /* released: delivered again */
  ck_assert_int_eq(zkr_queue_take(q, 5000, &it), 0);
  ck_assert_str_eq(zkr_item_data(it, NULL), "a");
  ck_assert_int_eq(zkr_item_requeue(it, 5000), 0);
  ck_assert_int_eq(zkr_item_requeue(it, 5000), ZKR_ENOTHELD);
  zkr_item_free(it);
  /* requeued behind nothing of a lower priority: still first */
  ck_assert_int_eq(zkr_queue_take(q, 5000, &it), 0);
  ck_assert_str_eq(zkr_item_data(it, NULL), "a");
  ck_assert_msg(strncmp(zkr_item_name(it), "entry-010-", 10) == 0, "%s", zkr_item_name(it));
  ck_assert_int_eq(zkr_item_priority(it), 10);
  {
    /* a second object takes the next one while this one is claimed */
    zkr_queue_t *q2;
    ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_KAZOO, &q2), 0);
    ck_assert_int_eq(zkr_queue_take(q2, 5000, &it2), 0);
    ck_assert_str_eq(zkr_item_data(it2, NULL), "b");
    zkr_item_t *none;
    ck_assert_int_eq(zkr_queue_take(q2, 0, &none), ZKR_ETIMEDOUT);
    ck_assert_int_eq(zkr_item_commit(it2, NULL, 0, NULL, 5000), 0);
    zkr_item_free(it2);
    zkr_queue_free(q2);
  }
  zkr_item_free(it); /* (the first, released) */
  ck_assert_int_eq(tu_nchildren(zh, path), 3); /* "a" and the two foreign nodes */
  zkr_queue_free(q);
  tu_rmr(zh, root);
  snprintf(p, sizeof(p), "%s-receipts", path);
  tu_rmr(zh, p);
  zkr_session_free(s);
}
END_TEST

/* The caller's ops commit with the consumption; a failing one aborts all. */
START_TEST(commit_with_own_ops) {
  char root[64], path[128], done[200], dup[200];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_queue_t *q;
  zkr_item_t *it;
  zoo_op_t op;
  zoo_op_result_t res[4];
  char made[200];

  paths(root, sizeof(root), path, sizeof(path));
  snprintf(done, sizeof(done), "%s/done-1", root);
  snprintf(dup, sizeof(dup), "%s/dup", root);
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &q), 0);
  ck_assert_int_eq(zkr_queue_put(q, "job", 3, 0, 5000, NULL, 0), 0);
  ck_assert_int_eq(zoo_create(zh, dup, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zkr_queue_take(q, 5000, &it), 0);
  zoo_create_op_init(&op, dup, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, made, sizeof(made));
  ck_assert_int_eq(zkr_item_commit(it, &op, 1, res, 5000), ZNODEEXISTS);
  ck_assert_int_eq(res[3].err, ZNODEEXISTS);
  ck_assert_int_eq(tu_nchildren(zh, path), 1); /* nothing applied */
  zoo_create_op_init(&op, done, "ok", 2, &ZOO_OPEN_ACL_UNSAFE, 0, made, sizeof(made));
  ck_assert_int_eq(zkr_item_commit(it, &op, 1, res, 5000), 0);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  ck_assert_int_eq(zoo_exists(zh, done, 0, NULL), ZOK);
  zkr_item_free(it);
  zkr_queue_free(q);
  tu_rmr(zh, root);
  snprintf(dup, sizeof(dup), "%s-receipts", path);
  tu_rmr(zh, dup);
  snprintf(dup, sizeof(dup), "%s-claims", path);
  tu_rmr(zh, dup);
  zkr_session_free(s);
}
END_TEST

/* A consumer's session expires while it holds a claim: the item goes to
 * another consumer, and the first one's commit fails. */
START_TEST(expiry_redelivers) {
  char root[64], path[128], p[200];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_queue_t *a, *b;
  zkr_item_t *ia, *ib;

  paths(root, sizeof(root), path, sizeof(path));
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_KAZOO_LOCKING, &a), 0);
  ck_assert_int_eq(zkr_queue_new(t, path, ZKR_QUEUE_KAZOO_LOCKING, &b), 0);
  ck_assert_int_eq(zkr_queue_put(a, "job", 3, 100, 5000, NULL, 0), 0);
  ck_assert_int_eq(zkr_queue_take(a, 5000, &ia), 0);
  ck_assert_int_eq(zkr_queue_take(b, 0, &ib), ZKR_ETIMEDOUT); /* claimed */
  {
    int64_t old = zkr_session_id(s);
    tu_expire(s, tu_hosts());
    ck_assert_int_eq(zkr_queue_take(b, 10000, &ib), 0);
    ck_assert_str_eq(zkr_item_data(ib, NULL), "job");
    ck_assert_int_gt(zkr_item_token(ib), zkr_item_token(ia));
    /* a's commit, once its session object is on a new session (when it learns
     * of the expiry is the client's affair): its claim went with the old one */
    for (int64_t end = tu_now_ms() + 20000;
         (zkr_session_id(s) == old || zkr_session_state(s) != ZKR_STATE_CONNECTED) &&
         tu_now_ms() < end;)
      usleep(2000);
    ck_assert_int_ne(zkr_session_id(s), old);
  }
  ck_assert_int_eq(zkr_item_commit(ia, NULL, 0, NULL, 5000), ZKR_ELOST);
  ck_assert_int_eq(zkr_item_commit(ib, NULL, 0, NULL, 5000), 0);
  zkr_item_free(ia);
  zkr_item_free(ib);
  snprintf(p, sizeof(p), "%s/entries", path);
  ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(t), p), 0);
  snprintf(p, sizeof(p), "%s/taken", path);
  ck_assert_int_eq(tu_nchildren(zkr_session_zhandle(t), p), 0);
  zkr_queue_free(a);
  zkr_queue_free(b);
  tu_rmr(zkr_session_zhandle(t), root);
  snprintf(p, sizeof(p), "%s-receipts", path);
  tu_rmr(zkr_session_zhandle(t), p);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- a consumer waiting before the queue exists ---- */

typedef struct take_job {
  zkr_queue_t *q;
  int rc;
  int64_t done_ms;
  zkr_item_t *it;
} take_job_t;

static void *take_thread(void *arg) {
  take_job_t *j = arg;
  j->rc = zkr_queue_take(j->q, 20000, &j->it);
  j->done_ms = tu_now_ms();
  return NULL;
}

/* A child watch is not left on a missing node: a consumer that found no
 * queue at all watches for its creation, and the first put wakes it (it
 * waited for its own timeout before). */
START_TEST(take_before_queue_exists) {
  char root[64], path[128];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_queue_t *a, *b;
  take_job_t job = {0};
  pthread_t th;
  int64_t put_ms;

  paths(root, sizeof(root), path, sizeof(path));
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &a), 0);
  ck_assert_int_eq(zkr_queue_new(t, path, ZKR_QUEUE_SIMPLE, &b), 0);
  job.q = a;
  ck_assert_int_eq(pthread_create(&th, NULL, take_thread, &job), 0);
  tu_wait_watch(s, path, 10000); /* the consumer waits on the missing path */
  put_ms = tu_now_ms();
  ck_assert_int_eq(zkr_queue_put(b, "first", 5, 0, 5000, NULL, 0), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(job.rc, 0);
  ck_assert_str_eq(zkr_item_data(job.it, NULL), "first");
  ck_assert_int_lt(job.done_ms - put_ms, 5000); /* woken by the put, not a timeout */
  ck_assert_int_eq(zkr_item_commit(job.it, NULL, 0, NULL, 5000), 0);
  zkr_item_free(job.it);
  zkr_queue_free(a);
  zkr_queue_free(b);
  tu_rmr(zkr_session_zhandle(t), root); /* (the claims and receipts too) */
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- a take that ends while its claim's reply is lost ---- */

static zkr_session_t *_Atomic lose_claim_of = NULL;
static _Atomic int claims_cut = 0, looks_to_cut = 0;

static int lose_claim_hook(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg;
  if (s != atomic_load(&lose_claim_of))
    return rc;
  if (kind == ZKR__K_CREATE && rc == ZOK) {
    atomic_fetch_add(&claims_cut, 1);
    return ZCONNECTIONLOSS; /* the claim applied; its reply is lost */
  }
  if (kind == ZKR__K_EXISTS && atomic_load(&looks_to_cut) > 0) {
    atomic_fetch_sub(&looks_to_cut, 1);
    return ZCONNECTIONLOSS; /* and so is the reply of the look that settles it */
  }
  return rc;
}

/* The claim's reply lost, then the reply of the look that settles whose the
 * claim is: the claim stays unsettled (looked at again), it is ours, and the
 * take gets the item (the soak saw the look's loss taken for settled: the
 * take timed out and its claim stayed, blocking the item). */
START_TEST(claim_look_reply_lost) {
  char root[64], path[128], cp[200];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_queue_t *a;
  zkr_item_t *it;

  paths(root, sizeof(root), path, sizeof(path));
  snprintf(cp, sizeof(cp), "%s-claims", path);
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &a), 0);
  ck_assert_int_eq(zkr_queue_put(a, "job", 3, 0, 5000, NULL, 0), 0);
  ck_assert_int_eq(zoo_create(zh, cp, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  atomic_store(&claims_cut, 0);
  atomic_store(&looks_to_cut, 1);
  atomic_store(&lose_claim_of, s);
  zkr__set_fault_hook(lose_claim_hook, NULL);
  ck_assert_int_eq(zkr_queue_take(a, 5000, &it), 0);
  zkr__set_fault_hook(NULL, NULL);
  atomic_store(&lose_claim_of, NULL);
  ck_assert_int_eq(atomic_load(&claims_cut), 1);
  ck_assert_int_eq(atomic_load(&looks_to_cut), 0);
  ck_assert_str_eq(zkr_item_data(it, NULL), "job");
  ck_assert_int_eq(zkr_item_commit(it, NULL, 0, NULL, 5000), 0);
  zkr_item_free(it);
  ck_assert_int_eq(tu_nchildren(zh, cp), 0);
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  zkr_queue_free(a);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

/* A take that gives up (no wait) after its claim's reply was lost: the claim,
 * there on the server, is found to be this session's (after a sync) and
 * removed; the item goes to another consumer. */
START_TEST(take_ends_with_claim_reply_lost) {
  char root[64], path[128], cp[200];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zt = zkr_session_zhandle(t);
  zkr_queue_t *a, *b;
  zkr_item_t *it;

  paths(root, sizeof(root), path, sizeof(path));
  snprintf(cp, sizeof(cp), "%s-claims", path);
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &a), 0);
  ck_assert_int_eq(zkr_queue_new(t, path, ZKR_QUEUE_SIMPLE, &b), 0);
  ck_assert_int_eq(zkr_queue_put(b, "job", 3, 0, 5000, NULL, 0), 0);
  atomic_store(&claims_cut, 0);
  atomic_store(&lose_claim_of, s);
  zkr__set_fault_hook(lose_claim_hook, NULL);
  ck_assert_int_eq(zkr_queue_take(a, 0, &it), ZKR_ETIMEDOUT);
  zkr__set_fault_hook(NULL, NULL);
  atomic_store(&lose_claim_of, NULL);
  ck_assert_int_ge(atomic_load(&claims_cut), 1); /* (the claims container too) */
  tu_wait_children(zt, cp, 0, 10000); /* the claim went */
  ck_assert_int_eq(zkr_queue_take(b, 5000, &it), 0);
  ck_assert_str_eq(zkr_item_data(it, NULL), "job");
  ck_assert_int_eq(zkr_item_commit(it, NULL, 0, NULL, 5000), 0);
  zkr_item_free(it);
  zkr_queue_free(a);
  zkr_queue_free(b);
  tu_rmr(zt, root); /* (the claims and receipts too) */
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- a put's receipt ---- */

static _Atomic int expire_next_put = 0, put_reply_cut = 0;

/* The next transaction that applied: its reply reads as the session's expiry. */
static int expire_hook(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg, (void)s;
  if (kind == ZKR__K_MULTI && rc == ZOK && atomic_exchange(&expire_next_put, 0)) {
    atomic_store(&put_reply_cut, 1);
    return ZSESSIONEXPIRED;
  }
  return rc;
}

typedef struct put_job {
  zkr_queue_t *q;
  int rc;
} put_job_t;

static void *put_thread(void *arg) {
  put_job_t *j = arg;
  j->rc = zkr_queue_put(j->q, "maybe", 5, 0, 20000, NULL, 0);
  return NULL;
}

/* The receipt is ephemeral: a producer whose session ends leaves none. A put
 * whose reply was lost and whose session then expired is ZKR_EUNKNOWN (here it
 * did apply), never sent again blind. */
START_TEST(put_receipt_ephemeral) {
  char root[64], path[128], rp[200], rec[300];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zt = zkr_session_zhandle(t);
  struct String_vector v = {0, NULL};
  struct Stat st;
  zkr_queue_t *q;
  pthread_t th;
  put_job_t job;

  paths(root, sizeof(root), path, sizeof(path));
  snprintf(rp, sizeof(rp), "%s-receipts", path);
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &q), 0);
  ck_assert_int_eq(zkr_queue_put(q, "one", 3, 0, 5000, NULL, 0), 0);
  ck_assert_int_eq(zoo_get_children(zt, rp, 0, &v), ZOK);
  ck_assert_int_eq(v.count, 1); /* the last put's receipt, owned by the session */
  snprintf(rec, sizeof(rec), "%s/%s", rp, v.data[0]);
  deallocate_String_vector(&v);
  ck_assert_int_eq(zoo_exists(zt, rec, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, zkr_session_id(s));

  /* the put's reply cut, then the session expired before the receipt was read */
  atomic_store(&put_reply_cut, 0);
  atomic_store(&expire_next_put, 1);
  zkr__set_fault_hook(expire_hook, NULL);
  job = (put_job_t){q, -1};
  ck_assert_int_eq(pthread_create(&th, NULL, put_thread, &job), 0);
  for (int64_t end = tu_now_ms() + 10000; !atomic_load(&put_reply_cut) && tu_now_ms() < end;)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&put_reply_cut), 1);
  tu_expire(s, tu_hosts());
  pthread_join(th, NULL);
  zkr__set_fault_hook(NULL, NULL);
  ck_assert_int_eq(job.rc, ZKR_EUNKNOWN);
  ck_assert_int_eq(tu_nchildren(zt, path), 2); /* it had applied */
  ck_assert_int_eq(tu_nchildren(zt, rp), 0);    /* receipts went with the session */

  /* the object goes on on the new session */
  ck_assert_int_eq(zkr_queue_put(q, "three", 5, 0, 10000, NULL, 0), 0);
  ck_assert_int_eq(tu_nchildren(zt, path), 3);
  zkr_queue_free(q); /* deletes the last receipt (by the janitor, soon) */
  tu_wait_children(zt, rp, 0, 10000);
  tu_rmr(zt, root); /* (the claims and receipts too) */
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- 4 producers x 4 consumers, replies of puts and commits lost ---- */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER 40

static _Atomic int lose_every = 0, multis = 0, lost = 0;

/* Every lose_every-th transaction that applied: its reply is lost. */
static int lose_hook(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg, (void)s;
  if (kind == ZKR__K_MULTI && rc == ZOK && atomic_load(&lose_every) > 0 &&
      atomic_fetch_add(&multis, 1) % atomic_load(&lose_every) == 0) {
    atomic_fetch_add(&lost, 1);
    return ZCONNECTIONLOSS;
  }
  return rc;
}

typedef struct flow {
  const char *path;
  _Atomic int seen[PRODUCERS * PER];
  _Atomic int consumed, races_sum;
  _Atomic int errors;
} flow_t;

typedef struct wk {
  flow_t *f;
  int id;
} wk_t;

static void *producer(void *arg) {
  wk_t *w = arg;
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_queue_t *q;
  char data[32];
  ck_assert_int_eq(zkr_queue_new(s, w->f->path, ZKR_QUEUE_SIMPLE, &q), 0);
  for (int k = 0; k < PER; k++) {
    int n = snprintf(data, sizeof(data), "%d", w->id * PER + k);
    if (zkr_queue_put(q, data, n, 0, 20000, NULL, 0) != 0)
      atomic_fetch_add(&w->f->errors, 1);
  }
  zkr_queue_free(q);
  zkr_session_free(s);
  return NULL;
}

static void *consumer(void *arg) {
  wk_t *w = arg;
  flow_t *f = w->f;
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zkr_queue_t *q;
  ck_assert_int_eq(zkr_queue_new(s, f->path, ZKR_QUEUE_SIMPLE, &q), 0);
  while (atomic_load(&f->consumed) < PRODUCERS * PER) {
    zkr_item_t *it;
    int rc = zkr_queue_take(q, 300, &it);
    if (rc == ZKR_ETIMEDOUT)
      continue;
    if (rc != 0) {
      atomic_fetch_add(&f->errors, 1);
      break;
    }
    if ((rc = zkr_item_commit(it, NULL, 0, NULL, 20000)) == 0) {
      int v = atoi(zkr_item_data(it, NULL));
      if (v >= 0 && v < PRODUCERS * PER)
        atomic_fetch_add(&f->seen[v], 1);
      atomic_fetch_add(&f->consumed, 1);
    } else {
      atomic_fetch_add(&f->errors, 1);
    }
    zkr_item_free(it);
  }
  atomic_fetch_add(&f->races_sum, (int)zkr__workqueue_races(q));
  zkr_queue_free(q);
  zkr_session_free(s);
  return NULL;
}

START_TEST(exactly_once_with_lost_replies) {
  char root[64], path[128], p[200];
  static flow_t f;
  wk_t w[PRODUCERS + CONSUMERS];
  pthread_t th[PRODUCERS + CONSUMERS];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);

  paths(root, sizeof(root), path, sizeof(path));
  memset(&f, 0, sizeof(f));
  f.path = path;
  atomic_store(&multis, 0);
  atomic_store(&lost, 0);
  atomic_store(&lose_every, 7);
  zkr__set_fault_hook(lose_hook, NULL);
  for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
    w[i] = (wk_t){&f, i < PRODUCERS ? i : i - PRODUCERS};
    ck_assert_int_eq(pthread_create(&th[i], NULL, i < PRODUCERS ? producer : consumer, &w[i]),
                     0);
  }
  for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
    pthread_join(th[i], NULL);
  zkr__set_fault_hook(NULL, NULL);
  atomic_store(&lose_every, 0);
  ck_assert_int_eq(atomic_load(&f.errors), 0);
  ck_assert_int_gt(atomic_load(&lost), 10); /* replies were lost, puts and commits */
  for (int v = 0; v < PRODUCERS * PER; v++)
    ck_assert_msg(atomic_load(&f.seen[v]) == 1, "item %d consumed %d times", v,
                  atomic_load(&f.seen[v]));
  ck_assert_int_eq(tu_nchildren(zh, path), 0);
  snprintf(p, sizeof(p), "%s-claims", path);
  ck_assert_int_eq(tu_nchildren(zh, p), 0);
  snprintf(p, sizeof(p), "%s-receipts", path);
  tu_wait_children(zh, p, 0, 5000);
  tu_rmr(zh, root);
  tu_rmr(zh, p);
  snprintf(p, sizeof(p), "%s-claims", path);
  tu_rmr(zh, p);
  zkr_session_free(s);
}
END_TEST

/* 8 consumers on a full queue: claims spread over the head, so a take loses
 * fewer than one claim race on average. */
#define SPREAD_CONSUMERS 8
#define SPREAD_ITEMS 160
START_TEST(claims_spread) {
  char root[64], path[128], p[200];
  static flow_t f;
  wk_t w[SPREAD_CONSUMERS];
  pthread_t th[SPREAD_CONSUMERS];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_queue_t *q;

  paths(root, sizeof(root), path, sizeof(path));
  memset(&f, 0, sizeof(f));
  f.path = path;
  ck_assert_int_eq(zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &q), 0);
  for (int k = 0; k < SPREAD_ITEMS; k++) {
    char d[16];
    int n = snprintf(d, sizeof(d), "%d", k);
    ck_assert_int_eq(zkr_queue_put(q, d, n, 0, 5000, NULL, 0), 0);
  }
  zkr_queue_free(q);
  for (int i = 0; i < SPREAD_CONSUMERS; i++) {
    w[i] = (wk_t){&f, i};
    ck_assert_int_eq(pthread_create(&th[i], NULL, consumer, &w[i]), 0);
  }
  /* (consumer() stops at PRODUCERS * PER consumed) */
  ck_assert_int_eq(SPREAD_ITEMS, PRODUCERS * PER);
  for (int i = 0; i < SPREAD_CONSUMERS; i++)
    pthread_join(th[i], NULL);
  ck_assert_int_eq(atomic_load(&f.errors), 0);
  ck_assert_int_eq(atomic_load(&f.consumed), SPREAD_ITEMS);
  ck_assert_msg(atomic_load(&f.races_sum) <= SPREAD_ITEMS, "%d claim races for %d takes",
                atomic_load(&f.races_sum), SPREAD_ITEMS);
  tu_rmr(zh, root);
  snprintf(p, sizeof(p), "%s-receipts", path);
  tu_rmr(zh, p);
  snprintf(p, sizeof(p), "%s-claims", path);
  tu_rmr(zh, p);
  zkr_session_free(s);
}
END_TEST

Suite *queue_suite(void) {
  Suite *su = suite_create("queue");
  TCase *tc = tcase_create("queue");
  tcase_set_timeout(tc, 180);
  tcase_add_loop_test(tc, fifo_and_priority, ZKR_QUEUE_CURATOR, ZKR_QUEUE_KAZOO_LOCKING + 1);
  tcase_add_test(tc, requeue_release_foreign);
  tcase_add_test(tc, commit_with_own_ops);
  tcase_add_test(tc, expiry_redelivers);
  tcase_add_test(tc, put_receipt_ephemeral);
  tcase_add_test(tc, take_before_queue_exists);
  tcase_add_test(tc, take_ends_with_claim_reply_lost);
  tcase_add_test(tc, claim_look_reply_lost);
  tcase_add_test(tc, exactly_once_with_lost_replies);
  tcase_add_test(tc, claims_spread);
  suite_add_tcase(su, tc);
  return su;
}
