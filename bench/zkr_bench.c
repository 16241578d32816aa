/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkr_bench - zkrecipes next to the raw ZooKeeper C client, in one run.
 *
 *   zkr_bench [-r ROUNDS] [-w WORKLOADS] HOSTS
 *
 * Every round runs each workload once, floors first, so that noise on this
 * shared machine hits all of them alike; ratios are taken within a round and
 * the tables show the median [min..max] over rounds. Lines starting with
 * "RESULT " are for machines: RESULT lib=... work=... key=value ...
 *
 * Workloads (-w takes a comma list; default all):
 *   floor-cd     raw client: sync create (ephemeral sequential) + delete, 1 session
 *   floor-ls     raw client: sync getChildren round trip
 *   w1           zkrecipes lock, 1 session, acquire + release cycles
 *   w2           zkrecipes lock, 8 sessions x 250 cycles on one path, no hold time
 *   w1p, w2p     the same with release(l, 0): not waiting for the delete's reply
 *   herd         zkrecipes lock, 50 waiters queued: notifications per release
 *   floor-set    raw client: sync blind setData (version -1), 1 session
 *   floor-loop   raw client: get + versioned set, retried on conflict, 8 sessions
 *   w3a          zkrecipes counter, 1 session x 2000 increments
 *   w3b          zkrecipes counter, 8 sessions x 250 increments on one counter
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include <zkrecipes.h>

#define MAX_ROUNDS 20

static const char *hosts;
static char root[64];
static int w1_cycles = 2000, w2_sessions = 8, w2_cycles = 250, herd_waiters = 50;
static int release_ms = 10000; /* 0: release without waiting for the ack */
static int floor_cycles = 2000, ls_cycles = 2000;

/* ---- measurements ---- */

typedef struct metric {
  const char *work, *lib, *key, *unit;
  double v[MAX_ROUNDS];
  int n;
} metric_t;

static metric_t metrics[64];
static int nmetrics;

static metric_t *metric(const char *work, const char *lib, const char *key,
                        const char *unit) {
  for (int i = 0; i < nmetrics; i++)
    if (!strcmp(metrics[i].work, work) && !strcmp(metrics[i].lib, lib) &&
        !strcmp(metrics[i].key, key))
      return &metrics[i];
  metrics[nmetrics] = (metric_t){work, lib, key, unit, {0}, 0};
  return &metrics[nmetrics++];
}

static void record(int round, const char *work, const char *lib, const char *key,
                   const char *unit, double v) {
  metric_t *m;
  if (round == 0)
    return; /* warm-up */
  m = metric(work, lib, key, unit);
  m->v[m->n++] = v;
  printf("RESULT round=%d lib=%s work=%s %s=%.3f\n", round, lib, work, key, v);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n ? v[(int)floor((n - 1) * p + 0.5)] : 0;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "zkr_bench: %s: %s (%s)\n", what, zkr_strerror(rc), zkr_errname(rc));
  exit(1);
}

static zkr_session_t *open_session(void) {
  zkr_session_t *s;
  int rc = zkr_session_open(hosts, 20000, 20000, &s);
  if (rc != 0)
    die("connect", rc);
  return s;
}

static void ensure(zhandle_t *zh, const char *path) {
  int rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  if (rc != ZOK && rc != ZNODEEXISTS)
    die(path, rc);
}

/* ---- floors: the raw client ---- */

static void floor_create_delete(int round) {
  zkr_session_t *s = open_session();
  zhandle_t *zh = zkr_session_zhandle(s);
  char dir[128], prefix[160], made[256];
  double *cr = calloc((size_t)floor_cycles, sizeof(double));
  double *de = calloc((size_t)floor_cycles, sizeof(double));
  int64_t t0;
  double secs;

  snprintf(dir, sizeof(dir), "%s/floor-cd-%d", root, round);
  ensure(zh, dir);
  snprintf(prefix, sizeof(prefix), "%s/n-", dir);
  t0 = now_ns();
  for (int i = 0; i < floor_cycles; i++) {
    int64_t a = now_ns(), b;
    int rc = zoo_create(zh, prefix, "x", 1, &ZOO_OPEN_ACL_UNSAFE,
                        ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made));
    b = now_ns();
    if (rc != ZOK || (rc = zoo_delete(zh, made, -1)) != ZOK)
      die("floor create/delete", rc);
    cr[i] = (double)(b - a) / 1e3;
    de[i] = (double)(now_ns() - b) / 1e3;
  }
  secs = (double)(now_ns() - t0) / 1e9;
  record(round, "create+delete", "raw-c", "cycles_per_s", "/s", floor_cycles / secs);
  record(round, "create+delete", "raw-c", "create_p50_us", "us",
         pct(cr, floor_cycles, 0.5));
  record(round, "create+delete", "raw-c", "delete_p50_us", "us",
         pct(de, floor_cycles, 0.5));
  zoo_delete(zh, dir, -1);
  zkr_session_free(s);
  free(cr);
  free(de);
}

static void floor_list(int round) {
  zkr_session_t *s = open_session();
  zhandle_t *zh = zkr_session_zhandle(s);
  char dir[128], child[160];
  double *lat = calloc((size_t)ls_cycles, sizeof(double));

  snprintf(dir, sizeof(dir), "%s/floor-ls-%d", root, round);
  ensure(zh, dir);
  snprintf(child, sizeof(child), "%s/c", dir);
  ensure(zh, child);
  for (int i = 0; i < ls_cycles; i++) {
    struct String_vector v;
    int64_t t = now_ns();
    int rc = zoo_get_children(zh, dir, 0, &v);
    if (rc != ZOK)
      die("floor getChildren", rc);
    lat[i] = (double)(now_ns() - t) / 1e3;
    deallocate_String_vector(&v);
  }
  record(round, "getChildren", "raw-c", "rtt_p50_us", "us", pct(lat, ls_cycles, 0.5));
  zoo_delete(zh, child, -1);
  zoo_delete(zh, dir, -1);
  free(lat);
  zkr_session_free(s);
}

/* ---- W1: uncontended lock ---- */

static void w1(int round, const char *work) {
  zkr_session_t *s = open_session();
  zkr_lock_t *l;
  char path[128];
  double *acq = calloc((size_t)w1_cycles, sizeof(double));
  double *rel = calloc((size_t)w1_cycles, sizeof(double));
  int64_t t0;
  double secs;
  int rc;

  snprintf(path, sizeof(path), "%s/w1-%d", root, round);
  if ((rc = zkr_lock_new(s, path, &l)) != 0)
    die("lock_new", rc);
  /* One warm-up cycle creates the parents, as it would in a long-lived service. */
  if ((rc = zkr_lock_acquire(l, 10000)) != 0 || (rc = zkr_lock_release(l, 10000)) != 0)
    die("w1 warm-up", rc);
  t0 = now_ns();
  for (int i = 0; i < w1_cycles; i++) {
    int64_t a = now_ns(), b;
    if ((rc = zkr_lock_acquire(l, 10000)) != 0)
      die("w1 acquire", rc);
    b = now_ns();
    if ((rc = zkr_lock_release(l, release_ms)) != 0)
      die("w1 release", rc);
    acq[i] = (double)(b - a) / 1e3;
    rel[i] = (double)(now_ns() - b) / 1e3;
  }
  secs = (double)(now_ns() - t0) / 1e9;
  record(round, work, "zkrecipes", "cycles_per_s", "/s", w1_cycles / secs);
  record(round, work, "zkrecipes", "acquire_p50_us", "us", pct(acq, w1_cycles, 0.5));
  record(round, work, "zkrecipes", "acquire_p99_us", "us", pct(acq, w1_cycles, 0.99));
  record(round, work, "zkrecipes", "release_p50_us", "us", pct(rel, w1_cycles, 0.5));
  record(round, work, "zkrecipes", "release_p99_us", "us", pct(rel, w1_cycles, 0.99));
  zkr_lock_free(l);
  zkr_session_free(s);
  free(acq);
  free(rel);
}

/* ---- W2: contended lock ---- */

typedef struct w2_ctx {
  const char *path;
  pthread_barrier_t *start;
  double *acq; /* w2_cycles entries for this worker */
  _Atomic int *inside, *violations;
} w2_ctx_t;

static void *w2_worker(void *arg) {
  w2_ctx_t *c = arg;
  zkr_session_t *s = open_session();
  zkr_lock_t *l;
  int rc;

  if ((rc = zkr_lock_new(s, c->path, &l)) != 0)
    die("lock_new", rc);
  pthread_barrier_wait(c->start);
  for (int i = 0; i < w2_cycles; i++) {
    int64_t a = now_ns();
    if ((rc = zkr_lock_acquire(l, 60000)) != 0)
      die("w2 acquire", rc);
    c->acq[i] = (double)(now_ns() - a) / 1e3;
    if (atomic_fetch_add(c->inside, 1) != 0)
      atomic_fetch_add(c->violations, 1);
    atomic_fetch_sub(c->inside, 1);
    if ((rc = zkr_lock_release(l, release_ms ? 60000 : 0)) != 0)
      die("w2 release", rc);
  }
  zkr_lock_free(l);
  zkr_session_free(s);
  return NULL;
}

static void w2(int round, const char *work) {
  int n = w2_sessions, total = w2_sessions * w2_cycles;
  pthread_t t[64];
  w2_ctx_t c[64];
  pthread_barrier_t start;
  _Atomic int inside = 0, violations = 0;
  double *acq = calloc((size_t)total, sizeof(double));
  char path[128];
  int64_t t0;
  double secs;

  snprintf(path, sizeof(path), "%s/w2-%d", root, round);
  {
    zkr_session_t *s = open_session(); /* parents first, outside the clock */
    zkr_lock_t *l;
    zkr_lock_new(s, path, &l);
    zkr_lock_acquire(l, 10000);
    zkr_lock_release(l, 10000);
    zkr_lock_free(l);
    zkr_session_free(s);
  }
  pthread_barrier_init(&start, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    c[i] = (w2_ctx_t){path, &start, acq + (size_t)i * (size_t)w2_cycles, &inside,
                      &violations};
    pthread_create(&t[i], NULL, w2_worker, &c[i]);
  }
  pthread_barrier_wait(&start);
  t0 = now_ns();
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  secs = (double)(now_ns() - t0) / 1e9;
  pthread_barrier_destroy(&start);
  record(round, work, "zkrecipes", "cycles_per_s", "/s", total / secs);
  record(round, work, "zkrecipes", "acquire_p50_us", "us", pct(acq, total, 0.5));
  record(round, work, "zkrecipes", "acquire_p99_us", "us", pct(acq, total, 0.99));
  record(round, work, "zkrecipes", "exclusion_violations", "", atomic_load(&violations));
  free(acq);
}

/* ---- herd: notifications per release with many waiters ---- */

typedef struct herd_ctx {
  pthread_mutex_t mu;
  int granted;
} herd_ctx_t;

/* Granted: count it and pass the lock on at once (the async release is fine in
 * callback context). */
static void herd_granted(zkr_lock_t *l, int rc, void *arg) {
  herd_ctx_t *h = arg;
  if (rc != 0)
    die("herd acquire", rc);
  pthread_mutex_lock(&h->mu);
  h->granted++;
  pthread_mutex_unlock(&h->mu);
  if ((rc = zkr_lock_release_async(l, NULL, NULL)) != 0)
    die("herd release", rc);
}

static void herd(int round) {
  int n = herd_waiters + 1, granted = 0;
  zkr_session_t **s = calloc((size_t)n, sizeof(*s));
  zkr_lock_t **l = calloc((size_t)n, sizeof(*l));
  herd_ctx_t h = {PTHREAD_MUTEX_INITIALIZER, 0};
  char path[128];
  uint64_t notes = 0;
  int64_t t0, deadline;
  int rc;

  snprintf(path, sizeof(path), "%s/herd-%d", root, round);
  for (int i = 0; i < n; i++) {
    s[i] = open_session();
    if ((rc = zkr_lock_new(s[i], path, &l[i])) != 0)
      die("lock_new", rc);
  }
  if ((rc = zkr_lock_acquire(l[0], 10000)) != 0)
    die("herd acquire", rc);
  for (int i = 1; i < n; i++)
    if ((rc = zkr_lock_acquire_async(l[i], -1, herd_granted, &h)) != 0)
      die("herd queue", rc);
  /* Everyone queued and watching before the first release. */
  deadline = now_ns() + 30000000000LL;
  for (;;) {
    uint64_t watches = 0;
    for (int i = 1; i < n; i++) {
      zkr__lock_stats_t st;
      zkr__lock_stats(l[i], &st);
      watches += st.watches > 0;
    }
    if ((int)watches == n - 1)
      break;
    if (now_ns() > deadline)
      die("herd: waiters did not queue", ZKR_ETIMEDOUT);
    usleep(1000);
  }
  t0 = now_ns();
  if ((rc = zkr_lock_release(l[0], 10000)) != 0)
    die("herd release", rc);
  while (granted < n - 1) {
    if (now_ns() > deadline)
      die("herd: hand-offs did not finish", ZKR_ETIMEDOUT);
    usleep(200);
    pthread_mutex_lock(&h.mu);
    granted = h.granted;
    pthread_mutex_unlock(&h.mu);
  }
  record(round, "herd-50", "zkrecipes", "handoffs_per_s", "/s",
         (n - 1) / ((double)(now_ns() - t0) / 1e9));
  for (int i = 1; i < n; i++) {
    zkr__lock_stats_t st;
    zkr__lock_stats(l[i], &st);
    notes += st.notifications;
  }
  record(round, "herd-50", "zkrecipes", "notifications_per_release", "",
         (double)notes / (n - 1));
  for (int i = 0; i < n; i++) {
    zkr_lock_free(l[i]);
    zkr_session_free(s[i]);
  }
  free(s);
  free(l);
}

/* ---- counters: W3 and its floors ---- */

static int w3_cycles = 2000, w3_sessions = 8;

static void encode64(int64_t v, char *b) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    b[i] = (char)(v & 0xff);
}

static int64_t decode64(const char *b, int len) {
  uint64_t v = 0;
  for (int i = 0; i < len; i++)
    v = (v << 8) | (unsigned char)b[i];
  return (int64_t)v;
}

static void floor_set(int round) {
  zkr_session_t *s = open_session();
  zhandle_t *zh = zkr_session_zhandle(s);
  char path[128], b[8];
  double *lat = calloc((size_t)w3_cycles, sizeof(double));
  int64_t t0;
  double secs;

  snprintf(path, sizeof(path), "%s/floor-set-%d", root, round);
  ensure(zh, path);
  t0 = now_ns();
  for (int i = 0; i < w3_cycles; i++) {
    int64_t a = now_ns();
    int rc;
    encode64(i + 1, b);
    if ((rc = zoo_set(zh, path, b, 8, -1)) != ZOK)
      die("floor set", rc);
    lat[i] = (double)(now_ns() - a) / 1e3;
  }
  secs = (double)(now_ns() - t0) / 1e9;
  record(round, "blind-set", "raw-c", "increments_per_s", "/s", w3_cycles / secs);
  record(round, "blind-set", "raw-c", "p50_us", "us", pct(lat, w3_cycles, 0.5));
  zoo_delete(zh, path, -1);
  zkr_session_free(s);
  free(lat);
}

typedef struct loop_ctx {
  const char *path;
  int n;
  pthread_barrier_t *start;
  double *lat;
  _Atomic long *conflicts;
} loop_ctx_t;

/* The plain loop: read, write with the version read, retry on ZBADVERSION. */
static void *loop_worker(void *arg) {
  loop_ctx_t *c = arg;
  zkr_session_t *s = open_session();
  zhandle_t *zh = zkr_session_zhandle(s);
  pthread_barrier_wait(c->start);
  for (int i = 0; i < c->n; i++) {
    int64_t a = now_ns();
    for (;;) {
      char buf[16], b[8];
      int len = sizeof(buf), rc;
      struct Stat st;
      if ((rc = zoo_get(zh, c->path, 0, buf, &len, &st)) != ZOK)
        die("floor loop get", rc);
      encode64(decode64(buf, len) + 1, b);
      rc = zoo_set(zh, c->path, b, 8, st.version);
      if (rc == ZOK)
        break;
      if (rc != ZBADVERSION)
        die("floor loop set", rc);
      atomic_fetch_add(c->conflicts, 1);
    }
    c->lat[i] = (double)(now_ns() - a) / 1e3;
  }
  zkr_session_free(s);
  return NULL;
}

typedef struct w3_ctx {
  const char *path;
  int n;
  pthread_barrier_t *start;
  double *lat;
  _Atomic long *conflicts;
} w3_ctx_t;

static void *w3_worker(void *arg) {
  w3_ctx_t *c = arg;
  zkr_session_t *s = open_session();
  zkr_counter_t *k;
  int rc;
  if ((rc = zkr_counter_new(s, c->path, ZKR_COUNTER_INT64, &k)) != 0)
    die("counter_new", rc);
  pthread_barrier_wait(c->start);
  for (int i = 0; i < c->n; i++) {
    int64_t a = now_ns();
    if ((rc = zkr_counter_add(k, 1, 60000, NULL)) != 0)
      die("counter add", rc);
    c->lat[i] = (double)(now_ns() - a) / 1e3;
  }
  atomic_fetch_add(c->conflicts, (long)zkr_counter_conflicts(k));
  zkr_counter_free(k);
  zkr_session_free(s);
  return NULL;
}

/* n sessions, each doing per increments on one counter, the raw loop or ours. */
static void counter_run(int round, const char *work, const char *lib, int n, int per,
                        int raw) {
  pthread_t t[64];
  loop_ctx_t lc[64];
  w3_ctx_t wc[64];
  pthread_barrier_t start;
  _Atomic long conflicts = 0;
  int total = n * per;
  double *lat = calloc((size_t)total, sizeof(double));
  char path[128], b[16];
  int64_t t0, final;
  double secs;
  zkr_session_t *s = open_session();
  zhandle_t *zh = zkr_session_zhandle(s);
  int len = sizeof(b);

  snprintf(path, sizeof(path), "%s/%s-%d", root, work, round);
  encode64(0, b);
  if (zoo_create(zh, path, b, 8, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK)
    die("counter node", ZNODEEXISTS);
  pthread_barrier_init(&start, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    if (raw) {
      lc[i] = (loop_ctx_t){path, per, &start, lat + (size_t)i * (size_t)per, &conflicts};
      pthread_create(&t[i], NULL, loop_worker, &lc[i]);
    } else {
      wc[i] = (w3_ctx_t){path, per, &start, lat + (size_t)i * (size_t)per, &conflicts};
      pthread_create(&t[i], NULL, w3_worker, &wc[i]);
    }
  }
  pthread_barrier_wait(&start);
  t0 = now_ns();
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  secs = (double)(now_ns() - t0) / 1e9;
  pthread_barrier_destroy(&start);
  if (zoo_get(zh, path, 0, b, &len, NULL) != ZOK)
    die("counter read", ZNONODE);
  final = decode64(b, len);
  record(round, work, lib, "increments_per_s", "/s", total / secs);
  record(round, work, lib, "p50_us", "us", pct(lat, total, 0.5));
  record(round, work, lib, "p99_us", "us", pct(lat, total, 0.99));
  record(round, work, lib, "conflicts", "", (double)atomic_load(&conflicts));
  record(round, work, lib, "final_minus_expected", "", (double)(final - total));
  if (final != total && round > 0) {
    fprintf(stderr,
            "zkr_bench: %s: final %lld, expected %d: LOST OR DOUBLED INCREMENTS\n", work,
            (long long) final, total);
    exit(1);
  }
  free(lat);
  zkr_session_free(s);
}

/* ---- driver ---- */

static double median_of(const char *work, const char *lib, const char *key) {
  metric_t *m = metric(work, lib, key, "");
  double v[MAX_ROUNDS];
  memcpy(v, m->v, sizeof(v));
  return pct(v, m->n, 0.5);
}

static void summary(void) {
  const char *lastwork = "";
  printf("\n%-14s %-10s %-28s %12s  %s\n", "workload", "library", "figure", "median",
         "[min..max] over rounds");
  for (int i = 0; i < nmetrics; i++) {
    metric_t *m = &metrics[i];
    double v[MAX_ROUNDS];
    if (m->n == 0)
      continue;
    memcpy(v, m->v, sizeof(v));
    qsort(v, (size_t)m->n, sizeof(double), cmp_double);
    printf("%-14s %-10s %-28s %12.2f  [%.2f..%.2f]\n",
           strcmp(lastwork, m->work) ? m->work : "", m->lib, m->key, pct(v, m->n, 0.5),
           v[0], v[m->n - 1]);
    lastwork = m->work;
  }
  (void)median_of;
}

static int wanted(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *p = list; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && strncmp(p, w, n) == 0)
      return 1;
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *only = "floor-cd,floor-ls,w1,w2,w1p,w2p,herd,floor-set,floor-loop,w3a,w3b";
  int rounds = 3, opt;

  while ((opt = getopt(argc, argv, "r:w:h")) != -1) {
    switch (opt) {
    case 'r': rounds = atoi(optarg); break;
    case 'w': only = optarg; break;
    default:
      fprintf(
          stderr,
          "usage: %s [-r ROUNDS] [-w WORKLOAD,...] HOSTS (see the source for the list)\n",
          argv[0]);
      return 2;
    }
  }
  if (optind >= argc || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: %s [-r ROUNDS (1..%d)] [-w WORKLOADS] HOSTS\n", argv[0],
            MAX_ROUNDS);
    return 2;
  }
  hosts = argv[optind];
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(root, sizeof(root), "/zkr-bench-%ld", (long)getpid());
  {
    zkr_session_t *s = open_session();
    ensure(zkr_session_zhandle(s), root);
    zkr_session_free(s);
  }
  printf("zkrecipes %s bench on %s, %d round(s)\n", zkr_version_string(), hosts, rounds);
  /* Warm the server up (JIT, log preallocation) before anything is measured:
   * a fresh JVM is much slower for its first few thousand requests. */
  printf("-- warm-up\n");
  {
    int saved_floor = floor_cycles, saved_ls = ls_cycles, saved_w2 = w2_cycles;
    floor_cycles = ls_cycles = 3000;
    w2_cycles = 100;
    floor_create_delete(0);
    floor_list(0);
    w2(0, "W2");
    floor_cycles = saved_floor;
    ls_cycles = saved_ls;
    w2_cycles = saved_w2;
  }
  for (int r = 1; r <= rounds; r++) {
    double floor_cd = 0;
    printf("-- round %d\n", r);
    if (wanted(only, "floor-cd")) {
      floor_create_delete(r);
      floor_cd = metric("create+delete", "raw-c", "cycles_per_s", "")->v[r - 1];
    }
    if (wanted(only, "floor-ls"))
      floor_list(r);
    /* W1/W2 wait for the release's acknowledgement, as every peer library does;
     * W1p/W2p release with timeout 0 (the delete rides ahead of the next acquire
     * in session order), a zkrecipes option. */
    for (int p = 0; p < 2; p++) {
      const char *w1name = p ? "W1p" : "W1", *w2name = p ? "W2p" : "W2";
      release_ms = p ? 0 : 10000;
      if (wanted(only, p ? "w1p" : "w1")) {
        w1(r, w1name);
        if (floor_cd > 0)
          record(r, w1name, "ratio", "vs create+delete", "x",
                 metric(w1name, "zkrecipes", "cycles_per_s", "")->v[r - 1] / floor_cd);
      }
      if (wanted(only, p ? "w2p" : "w2")) {
        w2(r, w2name);
        if (floor_cd > 0)
          record(r, w2name, "ratio", "vs create+delete", "x",
                 metric(w2name, "zkrecipes", "cycles_per_s", "")->v[r - 1] / floor_cd);
      }
    }
    if (wanted(only, "herd"))
      herd(r);
    {
      double fset = 0, floop = 0;
      if (wanted(only, "floor-set")) {
        floor_set(r);
        fset = metric("blind-set", "raw-c", "increments_per_s", "")->v[r - 1];
      }
      if (wanted(only, "floor-loop")) {
        counter_run(r, "get+set-loop", "raw-c", w3_sessions, w3_cycles / w3_sessions, 1);
        floop = metric("get+set-loop", "raw-c", "increments_per_s", "")->v[r - 1];
      }
      if (wanted(only, "w3a")) {
        counter_run(r, "W3a", "zkrecipes", 1, w3_cycles, 0);
        if (fset > 0)
          record(r, "W3a", "ratio", "vs blind-set", "x",
                 metric("W3a", "zkrecipes", "increments_per_s", "")->v[r - 1] / fset);
      }
      if (wanted(only, "w3b")) {
        counter_run(r, "W3b", "zkrecipes", w3_sessions, w3_cycles / w3_sessions, 0);
        if (floop > 0)
          record(r, "W3b", "ratio", "vs get+set-loop", "x",
                 metric("W3b", "zkrecipes", "increments_per_s", "")->v[r - 1] / floop);
      }
    }
  }
  summary();
  {
    zkr_session_t *s = open_session();
    zhandle_t *zh = zkr_session_zhandle(s);
    struct String_vector v;
    if (zoo_get_children(zh, root, 0, &v) == ZOK) {
      for (int i = 0; i < v.count; i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", root, v.data[i]);
        zoo_delete(zh, p, -1);
      }
      deallocate_String_vector(&v);
    }
    zoo_delete(zh, root, -1);
    zkr_session_free(s);
  }
  return 0;
}
