/* SPDX-License-Identifier: Apache-2.0 */
/* The journaled configuration against the real test servers. */
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

/* ---- an event log ---- */

#define JMAX 512
typedef struct jlog {
  pthread_mutex_t mu;
  int n;
  int type[JMAX];
  int64_t seq[JMAX], from[JMAX], zxid[JMAX];
  char data[JMAX][24];
  _Atomic int freed, after_free;
} jlog_t;

#define JLOG_INIT                                                                        \
  { .mu = PTHREAD_MUTEX_INITIALIZER }

static void on_jev(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  jlog_t *l = arg;
  (void)j;
  if (atomic_load(&l->freed))
    atomic_fetch_add(&l->after_free, 1);
  pthread_mutex_lock(&l->mu);
  if (l->n < JMAX) {
    int i = l->n++;
    l->type[i] = ev->type;
    l->seq[i] = ev->seq;
    l->from[i] = ev->from;
    l->zxid[i] = ev->zxid;
    snprintf(l->data[i], sizeof(l->data[i]), "%.*s", ev->len > 0 ? ev->len : 0,
             ev->data ? ev->data : "");
  }
  pthread_mutex_unlock(&l->mu);
}

static int jl_count(jlog_t *l) {
  int n;
  pthread_mutex_lock(&l->mu);
  n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* Wait until the log holds n events; returns how many it holds. */
static int jl_wait(jlog_t *l, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int have;
  while ((have = jl_count(l)) < n && tu_now_ms() < deadline)
    usleep(1000);
  return have;
}

static void jl_dump(jlog_t *l) {
  for (int i = 0; i < l->n; i++)
    fprintf(stderr, "  event %d: %s seq %lld from %lld data '%s'\n", i,
            zkr_journal_event_name(l->type[i]), (long long)l->seq[i],
            (long long)l->from[i], l->data[i]);
}

/* Event i is type with seq (and data, for an entry). */
static void jl_check(jlog_t *l, int i, int type, int64_t seq, const char *data) {
  pthread_mutex_lock(&l->mu);
  if (i >= l->n || l->type[i] != type || l->seq[i] != seq ||
      (data && strcmp(l->data[i], data) != 0))
    jl_dump(l);
  ck_assert_int_lt(i, l->n);
  ck_assert_str_eq(zkr_journal_event_name(l->type[i]), zkr_journal_event_name(type));
  ck_assert_int_eq(l->seq[i], seq);
  if (data)
    ck_assert_str_eq(l->data[i], data);
  pthread_mutex_unlock(&l->mu);
}

/* The entries of the log: strictly increasing sequences, values "v<k>" for
 * k = first.. in order, none twice; returns how many. */
static int jl_entries_in_order(jlog_t *l, int first) {
  int64_t last = -1;
  int k = first, n = 0;
  char want[24];
  pthread_mutex_lock(&l->mu);
  for (int i = 0; i < l->n; i++) {
    if (l->type[i] != ZKR_JOURNAL_ENTRY)
      continue;
    snprintf(want, sizeof(want), "v%d", k++);
    if (l->seq[i] <= last || strcmp(l->data[i], want) != 0)
      jl_dump(l);
    ck_assert_int_gt(l->seq[i], last);
    ck_assert_str_eq(l->data[i], want);
    last = l->seq[i];
    n++;
  }
  pthread_mutex_unlock(&l->mu);
  return n;
}

static void jpaths(char *root, size_t rl, char *path, size_t pl, char *jpath, size_t jl) {
  tu_root(root, rl);
  snprintf(path, pl, "%s/app/cfg", root);
  snprintf(jpath, jl, "%s.zkr-journal", path);
}

static int64_t write_v(zkr_journal_t *j, int k) {
  char v[24];
  int64_t seq = -1;
  snprintf(v, sizeof(v), "v%d", k);
  ck_assert_int_eq(zkr_journal_write(j, v, (int)strlen(v), -1, 10000, &seq), 0);
  ck_assert_int_ge(seq, 0);
  return seq;
}

typedef struct wdone {
  _Atomic int claimed; /* slots taken */
  _Atomic int n;       /* writes called back (each slot filled first) */
  _Atomic int failed;
  int64_t seq[JMAX];
} wdone_t;

static void on_written(zkr_journal_t *j, int rc, int64_t seq, void *arg) {
  wdone_t *w = arg;
  int i = atomic_fetch_add(&w->claimed, 1);
  (void)j;
  if (rc != 0)
    atomic_fetch_add(&w->failed, 1);
  if (i < JMAX)
    w->seq[i] = seq;
  atomic_fetch_add(&w->n, 1);
}

static void write_many_async(zkr_journal_t *j, int from, int count, wdone_t *w) {
  char v[24];
  for (int k = from; k < from + count; k++) {
    snprintf(v, sizeof(v), "v%d", k);
    ck_assert_int_eq(
        zkr_journal_write_async(j, v, (int)strlen(v), -1, 20000, on_written, w), 0);
  }
}

static void wait_written(wdone_t *w, int n) {
  int64_t deadline = tu_now_ms() + 30000;
  while (atomic_load(&w->n) < n && tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&w->n), n);
  ck_assert_int_eq(atomic_load(&w->failed), 0);
}

static int value_of(zhandle_t *zh, const char *path, char *buf, int cap) {
  int len = cap - 1, rc = zoo_get(zh, path, 0, buf, &len, NULL);
  buf[rc == ZOK && len > 0 ? len : 0] = '\0';
  return rc;
}

/* ---- tests ---- */

/* Writes queued at once are logged in order; P holds the last; a follower from
 * the start gets every one, in order, then CAUGHT_UP; one from a position gets
 * the rest; one started before the journal exists waits for it. The journal
 * node is persistent, P's parents containers. */
START_TEST(every_change_in_order) {
  char root[64], path[128], jpath[160], buf[64];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_journal_t *w, *early, *all, *tail;
  jlog_t le = JLOG_INIT, la = JLOG_INIT, lt = JLOG_INIT;
  wdone_t *wd = calloc(1, sizeof(*wd));
  struct Stat st;

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(t, path, &early), 0);
  ck_assert_int_eq(zkr_journal_follow(early, -1, on_jev, &le), 0);
  ck_assert_int_eq(zkr_journal_follow(early, -1, on_jev, &le), ZKR_EBUSY);
  ck_assert_int_eq(jl_wait(&le, 1, 5000), 1);
  jl_check(&le, 0, ZKR_JOURNAL_CAUGHT_UP, -1, NULL); /* nothing logged yet */

  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  write_many_async(w, 0, 20, wd);
  wait_written(wd, 20);
  for (int k = 1; k < 20; k++)
    ck_assert_int_gt(wd->seq[k], wd->seq[k - 1]);
  ck_assert_int_eq(value_of(zh, path, buf, sizeof(buf)), ZOK);
  ck_assert_str_eq(buf, "v19");
  ck_assert_int_eq(zoo_exists(zh, jpath, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, 0);
  ck_assert_int_eq(st.numChildren, 20);
  ck_assert_int_eq(zoo_exists(zh, root, 0, &st), ZOK);

  ck_assert_int_eq(jl_wait(&le, 21, 10000), 21);
  ck_assert_int_eq(jl_entries_in_order(&le, 0), 20);
  ck_assert_int_eq(zkr_journal_position(early), wd->seq[19]);

  ck_assert_int_eq(zkr_journal_new(t, path, &all), 0);
  ck_assert_int_eq(zkr_journal_follow(all, -1, on_jev, &la), 0);
  ck_assert_int_eq(jl_wait(&la, 21, 10000), 21);
  ck_assert_int_eq(jl_entries_in_order(&la, 0), 20);
  jl_check(&la, 20, ZKR_JOURNAL_CAUGHT_UP, wd->seq[19], NULL);

  ck_assert_int_eq(zkr_journal_new(t, path, &tail), 0);
  ck_assert_int_eq(zkr_journal_follow(tail, wd->seq[14], on_jev, &lt), 0);
  ck_assert_int_eq(jl_wait(&lt, 6, 10000), 6);
  ck_assert_int_eq(jl_entries_in_order(&lt, 15), 5);
  jl_check(&lt, 5, ZKR_JOURNAL_CAUGHT_UP, wd->seq[19], NULL);

  /* Live: one more reaches every follower once. */
  write_v(w, 20);
  ck_assert_int_eq(jl_wait(&la, 22, 5000), 22);
  ck_assert_int_eq(jl_wait(&lt, 7, 5000), 7);
  ck_assert_int_eq(jl_entries_in_order(&la, 0), 21);
  ck_assert_int_eq(jl_entries_in_order(&lt, 15), 6);
  ck_assert_int_eq(jl_wait(&le, 22, 5000), 22);
  ck_assert_int_eq(jl_entries_in_order(&le, 0), 21);
  /* zxid: the write's transaction, P's mzxid then. */
  ck_assert_int_eq(zoo_exists(zh, path, 0, &st), ZOK);
  ck_assert_int_eq(la.zxid[21], st.mzxid);

  zkr_journal_free(early);
  zkr_journal_free(all);
  zkr_journal_free(tail);
  zkr_journal_free(w);
  ck_assert_int_eq(jl_count(&la), 22);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
  free(wd);
}
END_TEST

typedef struct on_lost {
  zkr_journal_t *w;
  wdone_t *wd;
  _Atomic int done;
} on_lost_t;

/* On LOST (before the new session is opened): three writes through another
 * session, so they certainly fall while the follower has no session. */
static void write_on_lost(zkr_session_t *s, int event, void *arg) {
  on_lost_t *x = arg;
  (void)s;
  if (event == ZKR_SESSION_LOST && !atomic_exchange(&x->done, 1)) {
    for (int k = 5; k < 8; k++) {
      char v[8];
      snprintf(v, sizeof(v), "v%d", k);
      zkr_journal_write_async(x->w, v, (int)strlen(v), -1, 20000, on_written, x->wd);
    }
  }
}

/* A follower whose session expires sees every change made meanwhile, once,
 * in order, and nothing twice. */
START_TEST(follower_across_expiry) {
  char root[64], path[128], jpath[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zkr_journal_t *w, *f;
  jlog_t l = JLOG_INIT;
  wdone_t *wd = calloc(1, sizeof(*wd));
  on_lost_t x = {0};

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(t, path, &w), 0);
  for (int k = 0; k < 5; k++)
    write_v(w, k);
  x.w = w;
  x.wd = wd;
  ck_assert_int_eq(zkr_session_add_listener(s, write_on_lost, &x, NULL), 0);
  ck_assert_int_eq(zkr_journal_new(s, path, &f), 0);
  ck_assert_int_eq(zkr_journal_follow(f, -1, on_jev, &l), 0);
  ck_assert_int_eq(jl_wait(&l, 6, 5000), 6); /* 5 entries, CAUGHT_UP */
  tu_expire(s, tu_hosts());
  wait_written(wd, 3);
  ck_assert_int_eq(jl_wait(&l, 9, 20000), 9);
  write_v(w, 8);
  ck_assert_int_eq(jl_wait(&l, 10, 5000), 10);
  ck_assert_int_eq(jl_entries_in_order(&l, 0), 9);
  ck_assert_int_eq(zkr_journal_position(f), wd->seq[2] + 1); /* v8 came right after */
  zkr_journal_free(f);
  zkr_journal_free(w);
  ck_assert_int_eq(jl_count(&l), 10);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
  free(wd);
}
END_TEST

/* op until it is answered (the ensemble may be electing a leader). */
static int write_until_answered(zkr_journal_t *w, int k) {
  char v[24];
  int64_t deadline = tu_now_ms() + 30000, seq;
  int rc;
  snprintf(v, sizeof(v), "v%d", k);
  do
    rc = zkr_journal_write(w, v, (int)strlen(v), -1, 15000, &seq);
  while (rc == ZKR_ETIMEDOUT && tu_now_ms() < deadline);
  return rc;
}

/* A follower cut off from the ensemble (its one server killed) while changes
 * are written through the others: once it is back, every change, once, in
 * order (the same session: no RESTARTED, no TRIMMED). */
START_TEST(follower_cut_off_sees_every_change) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble"), *others;
  char root[64], path[128], jpath[160];
  zkr_session_t *s, *t;
  zkr_journal_t *w, *f;
  jlog_t l = JLOG_INIT;
  tu_cut_t cut;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  s = tu_cut_open(&cut, hosts, dir, &others);
  t = tu_open(others, 10000);
  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(t, path, &w), 0);
  ck_assert_int_eq(write_until_answered(w, 0), 0);
  ck_assert_int_eq(zkr_journal_new(s, path, &f), 0);
  ck_assert_int_eq(zkr_journal_follow(f, -1, on_jev, &l), 0);
  ck_assert_int_eq(jl_wait(&l, 2, 10000), 2);

  tu_cut_off(&cut);
  for (int k = 1; k < 6; k++)
    ck_assert_int_eq(write_until_answered(w, k), 0);
  tu_cut_heal(&cut);
  ck_assert_int_eq(jl_wait(&l, 7, 15000), 7);
  ck_assert_int_eq(jl_entries_in_order(&l, 0), 6);
  zkr_journal_free(f);
  zkr_journal_free(w);
  ck_assert_int_eq(jl_count(&l), 7);
  tu_rmr(zkr_session_zhandle(t), root);
  zkr_session_free(s);
  zkr_session_free(t);
  tu_cut_destroy(&cut);
}
END_TEST

/* ---- lost replies ---- */

static struct {
  pthread_mutex_t mu;
  zkr_session_t *s;
  int from_rc, fired;
  zhandle_t *trim_zh; /* trim everything before the check (then: unknown) */
  const char *jpath;
} hk = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int journal_hook(void *arg, zkr_session_t *s, int kind, int rc) {
  (void)arg;
  pthread_mutex_lock(&hk.mu);
  if (s == hk.s && !hk.fired && kind == ZKR__K_MULTI && rc == hk.from_rc) {
    hk.fired = 1;
    if (hk.trim_zh) {
      /* What a trim by another client would do before the check. */
      struct String_vector sv = {0};
      char p[256], mark[24];
      int64_t max = -1;
      ck_assert_int_eq(zoo_get_children(hk.trim_zh, hk.jpath, 0, &sv), ZOK);
      for (int i = 0; i < sv.count; i++) {
        int64_t q = strtoll(strrchr(sv.data[i], '-') + 1, NULL, 10);
        max = q > max ? q : max;
        snprintf(p, sizeof(p), "%s/%s", hk.jpath, sv.data[i]);
        ck_assert_int_eq(zoo_delete(hk.trim_zh, p, -1), ZOK);
      }
      deallocate_String_vector(&sv);
      snprintf(mark, sizeof(mark), "%lld", (long long)max);
      ck_assert_int_eq(zoo_set(hk.trim_zh, hk.jpath, mark, (int)strlen(mark), -1), ZOK);
    }
    rc = ZCONNECTIONLOSS;
  }
  pthread_mutex_unlock(&hk.mu);
  return rc;
}

static void hk_arm(zkr_session_t *s, int from_rc, zhandle_t *trim_zh, const char *jpath) {
  pthread_mutex_lock(&hk.mu);
  hk.s = s;
  hk.from_rc = from_rc;
  hk.fired = 0;
  hk.trim_zh = trim_zh;
  hk.jpath = jpath;
  pthread_mutex_unlock(&hk.mu);
  zkr__set_fault_hook(journal_hook, NULL);
}

static int hk_fired(void) {
  int f;
  pthread_mutex_lock(&hk.mu);
  f = hk.fired;
  pthread_mutex_unlock(&hk.mu);
  return f;
}

/* A write whose reply is lost: applied -> found, once (no second entry); not
 * applied -> made again (one entry); applied and trimmed before the check ->
 * ZKR_EUNKNOWN, never a second entry. */
START_TEST(lost_replies_are_resolved) {
  char root[64], path[128], jpath[160], buf[32];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_journal_t *w;
  int64_t seq = -1, seq2 = -1;

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  /* Not applied: the first write finds no journal node (ZNONODE), reported as
   * lost. The check finds no entry and nothing trimmed: written again, once. */
  hk_arm(s, ZNONODE, NULL, NULL);
  ck_assert_int_eq(zkr_journal_write(w, "v0", 2, -1, 10000, &seq), 0);
  ck_assert_int_eq(hk_fired(), 1);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 1);
  /* Applied: found by its entry, with its sequence; no second entry. */
  hk_arm(s, ZOK, NULL, NULL);
  ck_assert_int_eq(zkr_journal_write(w, "v1", 2, -1, 10000, &seq2), 0);
  ck_assert_int_eq(hk_fired(), 1);
  ck_assert_int_gt(seq2, seq);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 2);
  ck_assert_int_eq(value_of(zh, path, buf, sizeof(buf)), ZOK);
  ck_assert_str_eq(buf, "v1");
  /* Applied, then trimmed by another client before the check: unknown. */
  hk_arm(s, ZOK, zh, jpath);
  ck_assert_int_eq(zkr_journal_write(w, "v2", 2, -1, 10000, &seq), ZKR_EUNKNOWN);
  ck_assert_int_eq(seq, -1);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 0);
  zkr__set_fault_hook(NULL, NULL);
  /* And the journal goes on. */
  ck_assert_int_eq(zkr_journal_write(w, "v3", 2, -1, 10000, &seq), 0);
  ck_assert_int_gt(seq, seq2);
  zkr_journal_free(w);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* ---- trim ---- */

/* Trim up to a sequence, keeping some, in several transactions: the mark is
 * the highest deleted; a follower behind it gets TRIMMED (from, to) then the
 * rest; one past it nothing of the kind; a trim with nothing to do deletes
 * nothing. */
START_TEST(trim_and_trimmed) {
  char root[64], path[128], jpath[160], buf[32];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_journal_t *w, *behind, *ahead, *live;
  jlog_t lb = JLOG_INIT, la = JLOG_INIT, ll = JLOG_INIT;
  wdone_t *wd = calloc(1, sizeof(*wd));
  int64_t deleted = -1;

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  write_many_async(w, 0, 250, wd);
  wait_written(wd, 250);
  /* A follower that will be behind the trim: stopped after its first entries. */
  ck_assert_int_eq(zkr_journal_new(s, path, &live), 0);
  ck_assert_int_eq(zkr_journal_follow(live, -1, on_jev, &ll), 0);
  ck_assert_int_eq(jl_wait(&ll, 251, 15000), 251);

  ck_assert_int_eq(zkr_journal_trim(w, wd->seq[209], 0, 10000, &deleted), 0);
  ck_assert_int_eq(deleted, 210); /* three transactions */
  ck_assert_int_eq(value_of(zh, jpath, buf, sizeof(buf)), ZOK);
  ck_assert_int_eq(strtoll(buf, NULL, 10), wd->seq[209]);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 40);
  ck_assert_int_eq(zkr_journal_trim(w, wd->seq[209], 0, 10000, &deleted), 0);
  ck_assert_int_eq(deleted, 0);

  ck_assert_int_eq(zkr_journal_new(s, path, &behind), 0);
  ck_assert_int_eq(zkr_journal_follow(behind, wd->seq[99], on_jev, &lb), 0);
  ck_assert_int_eq(jl_wait(&lb, 42, 10000), 42);
  jl_check(&lb, 0, ZKR_JOURNAL_TRIMMED, wd->seq[209], NULL);
  ck_assert_int_eq(lb.from[0], wd->seq[99]);
  ck_assert_int_eq(jl_entries_in_order(&lb, 210), 40);
  jl_check(&lb, 41, ZKR_JOURNAL_CAUGHT_UP, wd->seq[249], NULL);

  ck_assert_int_eq(zkr_journal_new(s, path, &ahead), 0);
  ck_assert_int_eq(zkr_journal_follow(ahead, wd->seq[229], on_jev, &la), 0);
  ck_assert_int_eq(jl_wait(&la, 21, 10000), 21);
  ck_assert_int_eq(jl_entries_in_order(&la, 230), 20);

  /* Keep the newest 5 of what is left (all: up_to past the end). */
  ck_assert_int_eq(zkr_journal_trim(w, INT64_MAX, 5, 10000, &deleted), 0);
  ck_assert_int_eq(deleted, 35);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 5);
  /* The follower that had everything reports nothing trimmed. */
  write_v(w, 250);
  ck_assert_int_eq(jl_wait(&ll, 252, 5000), 252);
  ck_assert_int_eq(jl_entries_in_order(&ll, 0), 251);
  zkr_journal_free(behind);
  zkr_journal_free(ahead);
  zkr_journal_free(live);
  zkr_journal_free(w);
  tu_rmr(zh, root);
  zkr_session_free(s);
  free(wd);
}
END_TEST

/* The journal node deleted and created again under a follower: RESTARTED
 * (from its old position), then the new journal's entries from its start. */
START_TEST(restarted_journal) {
  char root[64], path[128], jpath[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_journal_t *w, *f;
  jlog_t l = JLOG_INIT;
  int64_t seq;

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  write_v(w, 0);
  seq = write_v(w, 1);
  ck_assert_int_eq(zkr_journal_new(s, path, &f), 0);
  ck_assert_int_eq(zkr_journal_follow(f, -1, on_jev, &l), 0);
  ck_assert_int_eq(jl_wait(&l, 3, 5000), 3);
  tu_rmr(zh, jpath);
  write_v(w, 2);
  ck_assert_int_eq(jl_wait(&l, 5, 5000), 5);
  jl_check(&l, 3, ZKR_JOURNAL_RESTARTED, -1, NULL);
  ck_assert_int_eq(l.from[3], seq);
  jl_check(&l, 4, ZKR_JOURNAL_ENTRY, 0, "v2");
  zkr_journal_free(f);
  zkr_journal_free(w);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

/* ---- API ---- */

typedef struct cbrec {
  _Atomic int n, rc[8];
} cbrec_t;

static void on_cb(zkr_journal_t *j, int rc, int64_t v, void *arg) {
  cbrec_t *r = arg;
  int i = atomic_fetch_add(&r->n, 1);
  (void)j, (void)v;
  if (i < 8)
    atomic_store(&r->rc[i], rc);
}

static void in_callback(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  (void)ev;
  atomic_store((_Atomic int *)arg, zkr_journal_write(j, "x", 1, -1, 1000, NULL));
}

/* Compare-and-set by version; bad input; a blocking call in a callback;
 * freeing with writes queued: each called back once, before free returns, and
 * no event after it. */
START_TEST(versions_bad_input_and_free) {
  char root[64], path[128], jpath[160], big[64];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_journal_t *w, *f;
  jlog_t l = JLOG_INIT;
  cbrec_t r = {0};
  struct Stat st;
  char *huge;
  int64_t seq;
  _Atomic int deadlk = 0;

  jpaths(root, sizeof(root), path, sizeof(path), jpath, sizeof(jpath));
  ck_assert_int_eq(zkr_journal_new(NULL, path, &w), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_new(s, "relative", &w), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_new(s, "/", &w), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_new(s, path, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  ck_assert_int_eq(zkr_journal_write(w, NULL, 3, -1, 1000, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_write(w, "x", 1, -2, 1000, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_write(w, "x", 1, -1, -2, NULL), ZKR_EINVAL);
  ck_assert_ptr_nonnull(huge = calloc(1, ZKR_JOURNAL_MAX_DATA + 1));
  ck_assert_int_eq(zkr_journal_write(w, huge, ZKR_JOURNAL_MAX_DATA + 1, -1, 1000, NULL),
                   ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_write_async(w, "x", 1, -1, 1000, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_trim(w, -1, 0, 1000, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_trim(w, 5, -1, 1000, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_follow(w, -2, on_jev, &l), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_follow(w, -1, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_journal_position(NULL), -1);
  ck_assert_int_eq(zkr_journal_position(w), -1);
  ck_assert_str_eq(zkr_journal_event_name(99), "UNKNOWN");
  /* A version on a missing node: ZNONODE, nothing created. */
  ck_assert_int_eq(zkr_journal_write(w, "x", 1, 0, 5000, NULL), ZNONODE);
  ck_assert_int_eq(zoo_exists(zh, path, 0, NULL), ZNONODE);
  /* The largest value goes through (P and its entry). */
  ck_assert_int_eq(zkr_journal_write(w, huge, ZKR_JOURNAL_MAX_DATA, -1, 10000, &seq), 0);
  free(huge);
  ck_assert_int_eq(zoo_exists(zh, path, 0, &st), ZOK);
  ck_assert_int_eq(zkr_journal_write(w, "a", 1, st.version, 5000, &seq), 0);
  ck_assert_int_eq(zkr_journal_write(w, "b", 1, st.version, 5000, &seq), ZBADVERSION);
  ck_assert_int_eq(tu_nchildren(zh, jpath), 2); /* the refused write logged nothing */
  ck_assert_int_eq(zkr_journal_write(w, NULL, -1, -1, 5000, &seq), 0); /* no data */

  /* A blocking call from a callback: ZKR_EDEADLK. */
  ck_assert_int_eq(zkr_journal_new(s, path, &f), 0);
  ck_assert_int_eq(zkr_journal_follow(f, -1, in_callback, (void *)&deadlk), 0);
  for (int64_t d = tu_now_ms() + 5000; !atomic_load(&deadlk) && tu_now_ms() < d;)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&deadlk), ZKR_EDEADLK);
  zkr_journal_free(f);

  /* Free with writes queued and a follower reading. */
  ck_assert_int_eq(zkr_journal_new(s, path, &f), 0);
  ck_assert_int_eq(zkr_journal_follow(f, -1, on_jev, &l), 0);
  for (int k = 0; k < 6; k++) {
    snprintf(big, sizeof(big), "q%d", k);
    ck_assert_int_eq(
        zkr_journal_write_async(w, big, (int)strlen(big), -1, 5000, on_cb, &r), 0);
  }
  zkr_journal_free(w);
  /* Each called back once, in order: those done before the free with 0, the
   * one in flight (if any) with ZKR_EUNKNOWN, the queued ones ZKR_ECANCELED. */
  ck_assert_int_eq(atomic_load(&r.n), 6);
  {
    int k = 0;
    while (k < 6 && atomic_load(&r.rc[k]) == 0)
      k++;
    if (k < 6 && atomic_load(&r.rc[k]) == ZKR_EUNKNOWN)
      k++;
    while (k < 6 && atomic_load(&r.rc[k]) == ZKR_ECANCELED)
      k++;
    ck_assert_msg(k == 6, "write %d ended with %s", k, zkr_errname(atomic_load(&r.rc[k])));
  }
  zkr_journal_free(f);
  atomic_store(&l.freed, 1);
  usleep(100 * 1000); /* time for a stray event to show itself */
  ck_assert_int_eq(atomic_load(&l.after_free), 0);
  zkr_journal_free(NULL);

  /* A freed session: the journal object outlives it, and says so. */
  tu_rmr(zh, root);
  ck_assert_int_eq(zkr_journal_new(s, path, &w), 0);
  zkr_session_free(s);
  ck_assert_int_eq(zkr_journal_write(w, "x", 1, -1, 1000, NULL), ZKR_ECLOSED);
  ck_assert_int_eq(zkr_journal_follow(w, -1, on_jev, &l), ZKR_ECLOSED);
  zkr_journal_free(w);
}
END_TEST

Suite *journal_suite(void) {
  Suite *su = suite_create("journal");
  TCase *tc = tcase_create("journal");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, every_change_in_order);
  tcase_add_test(tc, follower_across_expiry);
  tcase_add_test(tc, lost_replies_are_resolved);
  tcase_add_test(tc, trim_and_trimmed);
  tcase_add_test(tc, restarted_journal);
  tcase_add_test(tc, versions_bad_input_and_free);
  tcase_add_test(tc, follower_cut_off_sees_every_change);
  suite_add_tcase(su, tc);
  return su;
}
