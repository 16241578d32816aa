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
 *   w1    raw create+delete (the floor), then the lock with 1 session, 2000
 *         acquire+release cycles: W1 waits for each release's reply, W1p does not
 *         (release with timeout 0); the three run in turns, 500 cycles at a time
 *   ls    raw getChildren round trip
 *   w2    the lock, 8 sessions x 250 cycles on one path, no hold time (W2, W2p)
 *   herd  the lock, 50 waiters queued: notifications per release
 *   w3a   raw blind setData (version -1, the floor) and the counter, 1 session x
 *         2000 increments, in turns: W3a exactly once (the default), W3a-amo at
 *         most once (zkr_counter_set_mode)
 *   w3b   raw get + versioned set retried on conflict (the floor), then the
 *         counter, 8 sessions x 250 increments on one counter (W3b, W3b-amo)
 *   r1    the read lock, 8 sessions x 100 cycles on one path, 1 ms hold (R1)
 *   r2    the read/write lock, 8 readers + 2 writers x 50 cycles, 1 ms hold (R2):
 *         throughput and the writers' wait
 *   q1    the work queue (simple profile): 400 puts by one producer (Q1-put),
 *         then taken and committed by 1 (Q1-take-1) or 8 consumers (Q1-take-8);
 *         200 items put at 50/s while 8 consumers take, with put -> take
 *         latency (Q1-flow-8)
 *   s1    the semaphore (max 3), 8 sessions x 60 cycles, 1 ms hold, in each
 *         profile: Curator's nodes (S1), kazoo's (S1-kazoo), native (S1-native)
 *   w4    election failover: 5 candidates; the leader's session is closed; time
 *         from the close call to the next leader's "became leader" callback, 10
 *         times; the floor: closing a raw session that holds an ephemeral node to
 *         another session's watch event for its deletion
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h"
#include <zkrecipes.h>

#define MAX_ROUNDS 20

static const char *hosts;
static char root[64];
static int w1_cycles = 2000, w2_sessions = 8, w2_cycles = 250, herd_waiters = 200;
static int release_ms = 10000; /* W2: 0 releases without waiting for the reply */
static int ls_cycles = 2000;

/* ---- measurements ---- */

typedef struct metric {
  const char *work, *lib, *key, *unit;
  double v[MAX_ROUNDS];
  int n;
} metric_t;

static metric_t metrics[128];
static int nmetrics;

static metric_t *metric(const char *work, const char *lib, const char *key,
                        const char *unit) {
  for (int i = 0; i < nmetrics; i++)
    if (!strcmp(metrics[i].work, work) && !strcmp(metrics[i].lib, lib) &&
        !strcmp(metrics[i].key, key))
      return &metrics[i];
  /* Names may come from buffers of the caller: keep copies. */
  metrics[nmetrics] =
      (metric_t){strdup(work), strdup(lib), strdup(key), strdup(unit), {0}, 0};
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

/* ---- what an operation costs, beside its rate ----
 *
 * Client CPU (this process's user + system time: the library's threads too)
 * and, from the server: requests and bytes received ("mntr"; requests include
 * reads and pings) and transactions (the zxid of "srvr", one per write,
 * failed conditional writes included). Every member of the host string is
 * asked: requests and bytes are summed, transactions are the most any member
 * saw. Figures that do not depend on how fast the machine is. Asking perturbs
 * the server for a while (measured: W1 right after it ran ~5% slower on 2
 * cores), so single-session workloads ask in a pass after their timed chunks,
 * and ZKR_BENCH_NO_MNTR=1 turns the server's side off (bench/compare_builds.py
 * sets it, so that a build that does not ask is compared fairly). */

#define COST_CYCLES 200 /* cycles of a single-session workload's cost pass */

typedef struct cost {
  double cpu_us, req, txn, bytes;
  int ok; /* the server answered mntr */
} cost_t;

static double mntr_value(const char *text, const char *key) {
  const char *p = strstr(text, key);
  return p ? strtod(p + strlen(key), NULL) : 0;
}

/* Send a four-letter command to host:port; its answer (NUL-terminated) in buf. */
static int four_letters(const char *host, const char *port, const char *cmd, char *buf,
                        size_t size) {
  struct addrinfo hints = {0}, *ai = NULL;
  struct timeval tv = {2, 0};
  size_t len = 0;
  ssize_t n;
  int fd, rc = -1;

  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai) != 0)
    return -1;
  fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 && write(fd, cmd, 4) == 4) {
      while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
      rc = 0;
    }
    close(fd);
  }
  buf[len] = '\0';
  freeaddrinfo(ai);
  return rc;
}

/* One member's counters into c: requests and bytes added, transactions (its
 * zxid, which every transaction moves by one) the most of any member. */
static int mntr_one(const char *host, const char *port, cost_t *c) {
  char buf[16384];
  const char *z;
  double txn;

  if (four_letters(host, port, "mntr", buf, sizeof(buf)) != 0 ||
      !strstr(buf, "zk_packets_received"))
    return -1;
  c->req += mntr_value(buf, "zk_packets_received\t");
  c->bytes += mntr_value(buf, "zk_bytes_received_count\t");
  if (four_letters(host, port, "srvr", buf, sizeof(buf)) != 0 ||
      !(z = strstr(buf, "Zxid: ")))
    return -1;
  txn = (double)(strtoull(z + 6, NULL, 16) & 0xffffffffULL); /* the counter, not the epoch */
  c->txn = txn > c->txn ? txn : c->txn;
  return 0;
}

static void cost_now(cost_t *c) {
  struct rusage ru;
  char list[1024], *save = NULL, *h;

  memset(c, 0, sizeof(*c));
  if (getenv("ZKR_BENCH_NO_MNTR")) {
    c->ok = 0;
    return;
  }
  getrusage(RUSAGE_SELF, &ru);
  c->cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
              (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
  snprintf(list, sizeof(list), "%s", hosts);
  if ((h = strchr(list, '/')))
    *h = '\0'; /* a chroot */
  c->ok = 1;
  for (h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
    char *colon = strrchr(h, ':');
    if (!colon) {
      c->ok = 0;
      continue;
    }
    *colon = '\0';
    if (mntr_one(h, colon + 1, c) != 0)
      c->ok = 0;
  }
}

/* acc += b - a */
static void cost_add(cost_t *acc, const cost_t *a, const cost_t *b) {
  acc->cpu_us += b->cpu_us - a->cpu_us;
  acc->req += b->req - a->req;
  acc->txn += b->txn - a->txn;
  acc->bytes += b->bytes - a->bytes;
  acc->ok = acc->ok && a->ok && b->ok;
}

static void cost_record(int round, const char *work, const char *lib, const cost_t *c,
                        double ops) {
  if (ops <= 0)
    return;
  record(round, work, lib, "cpu_us_per_op", "us", c->cpu_us / ops);
  if (!c->ok)
    return; /* the server did not answer mntr: no server figures */
  record(round, work, lib, "server_requests_per_op", "", c->req / ops);
  record(round, work, lib, "server_txns_per_op", "", c->txn / ops);
  record(round, work, lib, "server_bytes_in_per_op", "B", c->bytes / ops);
}

/* ---- single-session workloads, measured side by side ----
 *
 * A floor and the zkrecipes workloads it is compared with run in turns, a chunk
 * of cycles each, so that drift of the server or the machine during a round
 * touches all of them alike; the ratio is taken from the same round. */

typedef struct side side_t;
struct side {
  const char *work, *lib;      /* names in the tables */
  const char *rate;            /* "cycles_per_s" or "increments_per_s" */
  const char *a_name, *b_name; /* per-cycle latencies (b_name NULL: none) */
  void (*setup)(side_t *, int round);
  void (*cycle)(side_t *, double *a_us, double *b_us);
  int release_ms;
  zkr_session_t *s;
  zhandle_t *zh;
  zkr_lock_t *lock;
  zkr_counter_t *ctr;
  char path[160], made[256];
  int i;
  double *a, *b, secs;
  int n;
  int extra; /* cycles of the cost pass */
  cost_t cost;
};

#define SIDE(w, l, r, an, bn, su, cy, rel)                                               \
  {                                                                                      \
    .work = (w), .lib = (l), .rate = (r), .a_name = (an), .b_name = (bn), .setup = (su), \
    .cycle = (cy), .release_ms = (rel)                                                   \
  }

static void cd_setup(side_t *x, int round) {
  char dir[128];
  snprintf(dir, sizeof(dir), "%s/floor-cd-%d", root, round);
  ensure(x->zh, dir);
  snprintf(x->path, sizeof(x->path), "%s/n-", dir);
}

static void cd_cycle(side_t *x, double *a, double *b) {
  int64_t t0 = now_ns(), t1;
  int rc = zoo_create(x->zh, x->path, "x", 1, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_EPHEMERAL_SEQUENTIAL, x->made, sizeof(x->made));
  t1 = now_ns();
  if (rc != ZOK || (rc = zoo_delete(x->zh, x->made, -1)) != ZOK)
    die("floor create/delete", rc);
  *a = (double)(t1 - t0) / 1e3;
  *b = (double)(now_ns() - t1) / 1e3;
}

static void lock_setup(side_t *x, int round) {
  int rc;
  snprintf(x->path, sizeof(x->path), "%s/%s-%d", root, x->work, round);
  if ((rc = zkr_lock_new(x->s, x->path, &x->lock)) != 0)
    die("lock_new", rc);
  /* One cycle first creates the parents, as in a long-lived service. */
  if ((rc = zkr_lock_acquire(x->lock, 10000)) != 0 ||
      (rc = zkr_lock_release(x->lock, 10000)) != 0)
    die("lock warm-up", rc);
}

static void lock_cycle(side_t *x, double *a, double *b) {
  int64_t t0 = now_ns(), t1;
  int rc;
  if ((rc = zkr_lock_acquire(x->lock, 10000)) != 0)
    die("lock acquire", rc);
  t1 = now_ns();
  if ((rc = zkr_lock_release(x->lock, x->release_ms)) != 0)
    die("lock release", rc);
  *a = (double)(t1 - t0) / 1e3;
  *b = (double)(now_ns() - t1) / 1e3;
}

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

static void set_setup(side_t *x, int round) {
  snprintf(x->path, sizeof(x->path), "%s/floor-set-%d", root, round);
  ensure(x->zh, x->path);
}

static void set_cycle(side_t *x, double *a, double *b) {
  char v[8];
  int64_t t0 = now_ns();
  int rc;
  encode64(++x->i, v);
  if ((rc = zoo_set(x->zh, x->path, v, 8, -1)) != ZOK)
    die("floor set", rc);
  *a = (double)(now_ns() - t0) / 1e3;
  *b = 0;
}

static void counter_setup(side_t *x, int round) {
  int rc;
  snprintf(x->path, sizeof(x->path), "%s/%s-%d", root, x->work, round);
  if ((rc = zkr_counter_new(x->s, x->path, ZKR_COUNTER_INT64, &x->ctr)) != 0)
    die("counter_new", rc);
  if ((rc = zkr_counter_add(x->ctr, 1, 10000, NULL)) != 0) /* creates the node */
    die("counter warm-up", rc);
}

static void counter_amo_setup(side_t *x, int round) {
  int rc;
  counter_setup(x, round);
  if ((rc = zkr_counter_set_mode(x->ctr, ZKR_COUNTER_AT_MOST_ONCE)) != 0)
    die("counter mode", rc);
}

static void counter_cycle(side_t *x, double *a, double *b) {
  int64_t t0 = now_ns();
  int rc;
  if ((rc = zkr_counter_add(x->ctr, 1, 10000, NULL)) != 0)
    die("counter add", rc);
  *a = (double)(now_ns() - t0) / 1e3;
  *b = 0;
}

static void interleave(int round, side_t *x, int nx, int cycles, int chunks) {
  for (int k = 0; k < nx; k++) {
    x[k].s = open_session();
    x[k].zh = zkr_session_zhandle(x[k].s);
    x[k].a = calloc((size_t)cycles, sizeof(double));
    x[k].b = calloc((size_t)cycles, sizeof(double));
    x[k].n = 0;
    x[k].extra = 0;
    x[k].secs = 0;
    memset(&x[k].cost, 0, sizeof(x[k].cost));
    x[k].cost.ok = 1;
    x[k].setup(&x[k], round);
  }
  for (int c = 0; c < chunks; c++) {
    int per = cycles / chunks;
    for (int k = 0; k < nx; k++) {
      int64_t t0 = now_ns();
      for (int i = 0; i < per; i++, x[k].n++) {
        int64_t c0 = now_ns();
        x[k].cycle(&x[k], &x[k].a[x[k].n], &x[k].b[x[k].n]);
        if (now_ns() - c0 > 500000000)
          fprintf(stderr, "zkr_bench: %s cycle %d took %.0f ms\n", x[k].work, x[k].n,
                  (double)(now_ns() - c0) / 1e6);
      }
      x[k].secs += (double)(now_ns() - t0) / 1e9;
    }
  }
  /* The cost, in a pass of its own after the timed chunks: asking the server for
   * its counters costs it some work, which must not fall into a timed chunk. */
  for (int k = 0; k < nx; k++) {
    cost_t before, after;
    double a, b;
    cost_now(&before);
    for (int i = 0; i < COST_CYCLES; i++, x[k].extra++)
      x[k].cycle(&x[k], &a, &b);
    cost_now(&after);
    cost_add(&x[k].cost, &before, &after);
  }
  for (int k = 0; k < nx; k++) {
    double rate = x[k].n / x[k].secs;
    char key[64];
    record(round, x[k].work, x[k].lib, x[k].rate, "/s", rate);
    cost_record(round, x[k].work, x[k].lib, &x[k].cost, x[k].extra);
    snprintf(key, sizeof(key), "%s_p50_us", x[k].a_name);
    record(round, x[k].work, x[k].lib, key, "us", pct(x[k].a, x[k].n, 0.5));
    snprintf(key, sizeof(key), "%s_p99_us", x[k].a_name);
    record(round, x[k].work, x[k].lib, key, "us", pct(x[k].a, x[k].n, 0.99));
    snprintf(key, sizeof(key), "%s_max_us", x[k].a_name);
    record(round, x[k].work, x[k].lib, key, "us", pct(x[k].a, x[k].n, 1.0));
    if (x[k].b_name) {
      snprintf(key, sizeof(key), "%s_p50_us", x[k].b_name);
      record(round, x[k].work, x[k].lib, key, "us", pct(x[k].b, x[k].n, 0.5));
      snprintf(key, sizeof(key), "%s_p99_us", x[k].b_name);
      record(round, x[k].work, x[k].lib, key, "us", pct(x[k].b, x[k].n, 0.99));
    }
    if (x[k].ctr) {
      /* The counter started at 1 (the set-up add): every add must be there once. */
      int64_t final = 0;
      int rc = zkr_counter_get(x[k].ctr, 10000, &final);
      if (rc != 0)
        die("counter read", rc);
      record(round, x[k].work, x[k].lib, "conflicts", "",
             (double)zkr_counter_conflicts(x[k].ctr));
      record(round, x[k].work, x[k].lib, "final_minus_expected", "",
             (double)(final - 1 - x[k].n - x[k].extra));
      if (final != 1 + x[k].n + x[k].extra) {
        fprintf(stderr,
                "zkr_bench: %s: final %lld, expected %d: LOST OR DOUBLED INCREMENTS\n",
                x[k].work, (long long) final, 1 + x[k].n + x[k].extra);
        exit(1);
      }
    }
    if (k > 0) {
      snprintf(key, sizeof(key), "vs %s", x[0].work);
      record(round, x[k].work, "ratio", key, "x", rate / (x[0].n / x[0].secs));
    }
  }
  for (int k = 0; k < nx; k++) {
    zkr_lock_free(x[k].lock);
    zkr_counter_free(x[k].ctr);
    zkr_session_free(x[k].s);
    free(x[k].a);
    free(x[k].b);
  }
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

/* ---- R1, R2, S1: read/write lock and semaphore, 1 ms hold ---- */

enum { SH_READ, SH_WRITE, SH_LEASE };
#define SH_HOLD_US 1000

typedef struct sh_run {
  const char *path;
  int per, writers, max, profile;
  pthread_barrier_t start;
  _Atomic int readers_in, writers_in, leases_in, violations;
  double *acq, *wacq; /* per cycle: every acquire; the writers' */
  _Atomic int nw;
} sh_run_t;

typedef struct sh_ctx {
  sh_run_t *r;
  int idx;
} sh_ctx_t;

static void *sh_worker(void *arg) {
  sh_ctx_t *c = arg;
  sh_run_t *r = c->r;
  zkr_session_t *s = open_session();
  zkr_rwlock_t *rw = NULL;
  zkr_semaphore_t *sem = NULL;
  int kind = r->max > 0 ? SH_LEASE : c->idx < r->writers ? SH_WRITE : SH_READ, rc;

  if (kind == SH_LEASE)
    rc = zkr_semaphore_new_profile(s, r->path, r->max, r->profile, &sem);
  else
    rc = zkr_rwlock_new(s, r->path, &rw);
  if (rc != 0)
    die("shared new", rc);
  pthread_barrier_wait(&r->start);
  for (int i = 0; i < r->per; i++) {
    zkr_lock_t *l = kind == SH_READ ? zkr_rwlock_read(rw) : kind == SH_WRITE ? zkr_rwlock_write(rw) : NULL;
    int64_t a = now_ns();
    double us;
    if (kind == SH_LEASE)
      rc = zkr_semaphore_acquire(sem, 1, 60000, &l);
    else
      rc = zkr_lock_acquire(l, 60000);
    if (rc != 0)
      die("shared acquire", rc);
    us = (double)(now_ns() - a) / 1e3;
    r->acq[c->idx * r->per + i] = us;
    if (kind == SH_WRITE) {
      r->wacq[atomic_fetch_add(&r->nw, 1)] = us;
      if (atomic_fetch_add(&r->writers_in, 1) != 0 || atomic_load(&r->readers_in) != 0)
        atomic_fetch_add(&r->violations, 1);
    } else if (kind == SH_READ) {
      atomic_fetch_add(&r->readers_in, 1);
      if (atomic_load(&r->writers_in) != 0)
        atomic_fetch_add(&r->violations, 1);
    } else if (atomic_fetch_add(&r->leases_in, 1) >= r->max) {
      atomic_fetch_add(&r->violations, 1);
    }
    usleep(SH_HOLD_US);
    atomic_fetch_sub(kind == SH_WRITE ? &r->writers_in : kind == SH_READ ? &r->readers_in
                                                                          : &r->leases_in,
                     1);
    if ((rc = zkr_lock_release(l, 60000)) != 0)
      die("shared release", rc);
    if (kind == SH_LEASE)
      zkr_lock_free(l);
  }
  zkr_rwlock_free(rw);
  zkr_semaphore_free(sem);
  zkr_session_free(s);
  return NULL;
}

static void shared_run(int round, const char *work, int n, int writers, int per, int max,
                       int profile) {
  sh_run_t r = {.per = per, .writers = writers, .max = max, .profile = profile};
  pthread_t t[64];
  sh_ctx_t c[64];
  cost_t c0, c1, cost = {.ok = 1};
  char path[128];
  int total = n * per;
  int64_t t0;
  double secs;

  snprintf(path, sizeof(path), "%s/%s-%d", root, work, round);
  r.path = path;
  r.acq = calloc((size_t)total, sizeof(double));
  r.wacq = calloc((size_t)total, sizeof(double));
  {
    zkr_session_t *s = open_session(); /* parents first, outside the clock */
    zkr_semaphore_t *sem;
    zkr_rwlock_t *rw;
    zkr_lock_t *l;
    if (max > 0 && zkr_semaphore_new_profile(s, path, max, profile, &sem) == 0) {
      if (zkr_semaphore_acquire(sem, 1, 10000, &l) == 0)
        zkr_lock_free(l);
      zkr_semaphore_free(sem);
    } else if (max == 0 && zkr_rwlock_new(s, path, &rw) == 0) {
      if (zkr_lock_acquire(zkr_rwlock_write(rw), 10000) == 0)
        zkr_lock_release(zkr_rwlock_write(rw), 10000);
      zkr_rwlock_free(rw);
    }
    zkr_session_free(s);
  }
  pthread_barrier_init(&r.start, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    c[i] = (sh_ctx_t){&r, i};
    pthread_create(&t[i], NULL, sh_worker, &c[i]);
  }
  cost_now(&c0);
  pthread_barrier_wait(&r.start);
  t0 = now_ns();
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  secs = (double)(now_ns() - t0) / 1e9;
  cost_now(&c1);
  cost_add(&cost, &c0, &c1);
  pthread_barrier_destroy(&r.start);
  record(round, work, "zkrecipes", "cycles_per_s", "/s", total / secs);
  cost_record(round, work, "zkrecipes", &cost, total);
  record(round, work, "zkrecipes", "acquire_p50_us", "us", pct(r.acq, total, 0.5));
  record(round, work, "zkrecipes", "acquire_p99_us", "us", pct(r.acq, total, 0.99));
  if (writers > 0)
    record(round, work, "zkrecipes", "writer_wait_p99_us", "us",
           pct(r.wacq, atomic_load(&r.nw), 0.99));
  record(round, work, "zkrecipes", "violations", "", atomic_load(&r.violations));
  free(r.acq);
  free(r.wacq);
}

/* ---- Q1: the work queue ---- */

#define Q1_ITEMS 400
/* Q1-flow-8 offers a fixed load, well under every library's 8-consumer take
 * rate, so that its latency is the pipeline's and not a backlog's. */
#define Q1_FLOW_ITEMS 200
#define Q1_FLOW_GAP_NS 20000000 /* one put every 20 ms: 50 items/s */

typedef struct q1_ctx {
  const char *path;
  pthread_barrier_t *start;
  int items;
  _Atomic int *taken, *errors;
  double *lat; /* put -> take latency per item (us), by item number */
  int64_t *put_ns;
} q1_ctx_t;

static void *q1_consumer(void *arg) {
  q1_ctx_t *c = arg;
  zkr_session_t *s = open_session();
  zkr_queue_t *q;
  int rc;
  if ((rc = zkr_queue_new(s, c->path, ZKR_QUEUE_SIMPLE, &q)) != 0)
    die("queue_new", rc);
  pthread_barrier_wait(c->start);
  while (atomic_load(c->taken) < c->items) {
    zkr_item_t *it;
    if ((rc = zkr_queue_take(q, 200, &it)) == ZKR_ETIMEDOUT)
      continue;
    if (rc != 0)
      die("queue take", rc);
    /* latency: put until handed to the consumer (as for the peers) */
    int k = atoi(zkr_item_data(it, NULL));
    double lat = k >= 0 && k < c->items && c->put_ns[k] > 0
                     ? (double)(now_ns() - c->put_ns[k]) / 1e3
                     : 0;
    if ((rc = zkr_item_commit(it, NULL, 0, NULL, 30000)) != 0) {
      atomic_fetch_add(c->errors, 1);
    } else {
      if (lat > 0)
        c->lat[k] = lat;
      atomic_fetch_add(c->taken, 1);
    }
    zkr_item_free(it);
  }
  zkr_queue_free(q);
  zkr_session_free(s);
  return NULL;
}

/* Q1-put: one producer puts Q1_ITEMS (nobody takes); Q1-take-N: N consumers
 * take and commit them; Q1-flow-8: a producer paced at 50 items/s and 8
 * consumers at once, with the put -> take latency. */
static void q1_run(int round) {
  char path[128];
  zkr_session_t *s = open_session();
  zkr_queue_t *q;
  int rc;

  for (int phase = 0; phase < 3; phase++) {
    int consumers = phase == 0 ? 1 : 8;
    int items = phase == 2 ? Q1_FLOW_ITEMS : Q1_ITEMS;
    pthread_barrier_t start;
    pthread_t t[8];
    q1_ctx_t c[8];
    _Atomic int taken = 0, errors = 0;
    double *lat = calloc(Q1_ITEMS, sizeof(double));
    int64_t *put_ns = calloc(Q1_ITEMS, sizeof(int64_t));
    int64_t t0;
    double put_s = 0, all_s;
    char work[32];

    snprintf(path, sizeof(path), "%s/Q1-%d-%d", root, round, phase);
    if ((rc = zkr_queue_new(s, path, ZKR_QUEUE_SIMPLE, &q)) != 0)
      die("queue_new", rc);
    if (phase < 2) { /* puts first, alone */
      t0 = now_ns();
      for (int k = 0; k < Q1_ITEMS; k++) {
        char d[16];
        int n = snprintf(d, sizeof(d), "%d", k);
        if ((rc = zkr_queue_put(q, d, n, 0, 30000, NULL, 0)) != 0)
          die("queue put", rc);
      }
      put_s = (double)(now_ns() - t0) / 1e9;
      if (phase == 0)
        record(round, "Q1-put", "zkrecipes", "puts_per_s", "/s", Q1_ITEMS / put_s);
    }
    pthread_barrier_init(&start, NULL, (unsigned)consumers + 1);
    for (int i = 0; i < consumers; i++) {
      c[i] = (q1_ctx_t){path, &start, items, &taken, &errors, lat, put_ns};
      pthread_create(&t[i], NULL, q1_consumer, &c[i]);
    }
    pthread_barrier_wait(&start);
    t0 = now_ns();
    for (int k = 0; phase == 2 && k < items; k++) {
      char d[16];
      int n = snprintf(d, sizeof(d), "%d", k);
      int64_t due = t0 + (int64_t)k * Q1_FLOW_GAP_NS, wait = due - now_ns();
      if (wait > 0)
        nanosleep(&(struct timespec){wait / 1000000000, wait % 1000000000}, NULL);
      put_ns[k] = now_ns();
      if ((rc = zkr_queue_put(q, d, n, 0, 30000, NULL, 0)) != 0)
        die("queue put", rc);
    }
    for (int i = 0; i < consumers; i++)
      pthread_join(t[i], NULL);
    all_s = (double)(now_ns() - t0) / 1e9;
    snprintf(work, sizeof(work), phase == 0 ? "Q1-take-1" : phase == 1 ? "Q1-take-8" : "Q1-flow-8");
    record(round, work, "zkrecipes", "failed_commits", "", atomic_load(&errors));
    if (phase == 2) {
      record(round, work, "zkrecipes", "put_to_take_p50_us", "us", pct(lat, items, 0.5));
      record(round, work, "zkrecipes", "put_to_take_p99_us", "us", pct(lat, items, 0.99));
    } else {
      record(round, work, "zkrecipes", "takes_per_s", "/s", items / all_s);
    }
    pthread_barrier_destroy(&start);
    zkr_queue_free(q);
    free(lat);
    free(put_ns);
  }
  zkr_session_free(s);
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
  cost_t c0, c1, cost = {.ok = 1};
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
  cost_now(&c0);
  pthread_barrier_wait(&start);
  t0 = now_ns();
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  secs = (double)(now_ns() - t0) / 1e9;
  cost_now(&c1);
  cost_add(&cost, &c0, &c1);
  pthread_barrier_destroy(&start);
  record(round, work, "zkrecipes", "cycles_per_s", "/s", total / secs);
  cost_record(round, work, "zkrecipes", &cost, total);
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
  if ((rc = zkr_lock_release_async(l, -1, NULL, NULL)) != 0)
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
      zkr__queue_stats_t st;
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
  record(round, "herd-200", "zkrecipes", "handoffs_per_s", "/s",
         (n - 1) / ((double)(now_ns() - t0) / 1e9));
  for (int i = 1; i < n; i++) {
    zkr__queue_stats_t st;
    zkr__lock_stats(l[i], &st);
    notes += st.notifications;
  }
  record(round, "herd-200", "zkrecipes", "notifications_per_release", "",
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
  int mode; /* ZKR_COUNTER_EXACTLY_ONCE or _AT_MOST_ONCE */
} w3_ctx_t;

static void *w3_worker(void *arg) {
  w3_ctx_t *c = arg;
  zkr_session_t *s = open_session();
  zkr_counter_t *k;
  int rc;
  if ((rc = zkr_counter_new(s, c->path, ZKR_COUNTER_INT64, &k)) != 0 ||
      (rc = zkr_counter_set_mode(k, c->mode)) != 0)
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

/* n sessions, each doing per increments on one counter: raw 1 the raw loop, 0 ours
 * (exactly once), 2 ours at most once. */
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
  cost_t c0, c1, cost = {.ok = 1};

  snprintf(path, sizeof(path), "%s/%s-%d", root, work, round);
  encode64(0, b);
  if (zoo_create(zh, path, b, 8, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) != ZOK)
    die("counter node", ZNODEEXISTS);
  pthread_barrier_init(&start, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    if (raw == 1) {
      lc[i] = (loop_ctx_t){path, per, &start, lat + (size_t)i * (size_t)per, &conflicts};
      pthread_create(&t[i], NULL, loop_worker, &lc[i]);
    } else {
      wc[i] = (w3_ctx_t){path, per, &start, lat + (size_t)i * (size_t)per, &conflicts,
                         raw == 2 ? ZKR_COUNTER_AT_MOST_ONCE : ZKR_COUNTER_EXACTLY_ONCE};
      pthread_create(&t[i], NULL, w3_worker, &wc[i]);
    }
  }
  cost_now(&c0);
  pthread_barrier_wait(&start);
  t0 = now_ns();
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  secs = (double)(now_ns() - t0) / 1e9;
  cost_now(&c1);
  cost_add(&cost, &c0, &c1);
  pthread_barrier_destroy(&start);
  if (zoo_get(zh, path, 0, b, &len, NULL) != ZOK)
    die("counter read", ZNONODE);
  final = decode64(b, len);
  record(round, work, lib, "increments_per_s", "/s", total / secs);
  cost_record(round, work, lib, &cost, total);
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

/* ---- W4: election failover ---- */

#define W4_CANDIDATES 5
#define W4_REPEATS    10

typedef struct cand {
  zkr_session_t *s;
  zkr_election_t *e;
  _Atomic int64_t led_ns; /* when "became leader" was called back, 0 before */
} cand_t;

static void w4_listener(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  cand_t *c = arg;
  (void)e, (void)epoch;
  if (ev == ZKR_ELECTION_LEADER)
    atomic_store(&c->led_ns, now_ns());
}

static void cand_join(cand_t *c, const char *path, int i) {
  char id[32];
  int rc;
  snprintf(id, sizeof(id), "bench-%d", i);
  c->s = open_session();
  atomic_store(&c->led_ns, 0);
  if ((rc = zkr_election_new(c->s, path, id, (int)strlen(id), &c->e)) != 0 ||
      (rc = zkr_election_set_listener(c->e, w4_listener, c)) != 0 ||
      (rc = zkr_election_start(c->e)) != 0)
    die("w4 candidate", rc);
}

static void w4(int round) {
  cand_t c[W4_CANDIDATES];
  double d[W4_REPEATS];
  char path[128];
  int joined = 0;

  snprintf(path, sizeof(path), "%s/w4-%d", root, round);
  for (int i = 0; i < W4_CANDIDATES; i++)
    cand_join(&c[i], path, joined++);
  for (int r = 0; r < W4_REPEATS; r++) {
    int leader = -1, next = -1;
    int64_t t0, deadline = now_ns() + 30000000000LL;
    /* Everyone queued and the leader known. */
    while (leader < 0) {
      for (int i = 0; i < W4_CANDIDATES; i++)
        if (zkr_election_is_leader(c[i].e))
          leader = i;
      if (now_ns() > deadline)
        die("w4: no leader", ZKR_ETIMEDOUT);
      usleep(1000);
    }
    usleep(50 * 1000); /* let the queue settle: every watch set */
    t0 = now_ns();
    zkr_session_free(c[leader].s); /* the leader's session closes */
    while (next < 0) {
      for (int i = 0; i < W4_CANDIDATES; i++)
        if (i != leader && atomic_load(&c[i].led_ns) != 0)
          next = i;
      if (now_ns() > deadline)
        die("w4: no new leader", ZKR_ETIMEDOUT);
      usleep(100);
    }
    d[r] = (double)(atomic_load(&c[next].led_ns) - t0) / 1e3;
    zkr_election_free(c[leader].e);
    cand_join(&c[leader], path, joined++); /* a new candidate at the back */
  }
  record(round, "W4", "zkrecipes", "failover_p50_us", "us", pct(d, W4_REPEATS, 0.5));
  record(round, "W4", "zkrecipes", "failover_min_us", "us", pct(d, W4_REPEATS, 0));
  record(round, "W4", "zkrecipes", "failover_max_us", "us", pct(d, W4_REPEATS, 1));
  for (int i = 0; i < W4_CANDIDATES; i++) {
    zkr_election_free(c[i].e);
    zkr_session_free(c[i].s);
  }
}

typedef struct floor_watch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t fired_ns;
} floor_watch_t;

static void floor_watcher(zhandle_t *zh, int type, int state, const char *path,
                          void *ctx) {
  floor_watch_t *w = ctx;
  (void)zh, (void)state, (void)path;
  if (type != ZOO_DELETED_EVENT)
    return;
  pthread_mutex_lock(&w->mu);
  w->fired_ns = now_ns();
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void quiet(const char *m) {
  (void)m;
}

static void floor_close_watch(int round) {
  zkr_session_t *b = open_session();
  zhandle_t *zb = zkr_session_zhandle(b);
  double d[W4_REPEATS];
  char node[128];

  snprintf(node, sizeof(node), "%s/w4-floor-%d", root, round);
  for (int r = 0; r < W4_REPEATS; r++) {
    floor_watch_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    zhandle_t *za = zookeeper_init2(hosts, NULL, 20000, NULL, NULL, 0, quiet);
    int64_t t0, deadline = now_ns() + 20000000000LL;
    struct Stat st;
    int rc;
    if (!za)
      die("w4 floor connect", ZKR_ESYSTEM);
    while (zoo_state(za) != ZOO_CONNECTED_STATE) {
      if (now_ns() > deadline)
        die("w4 floor connect", ZKR_ETIMEDOUT);
      usleep(1000);
    }
    if ((rc = zoo_create(za, node, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL,
                         0)) != ZOK ||
        (rc = zoo_wexists(zb, node, floor_watcher, &w, &st)) != ZOK)
      die("w4 floor", rc);
    usleep(50 * 1000);
    t0 = now_ns();
    zookeeper_close(za); /* closing the session deletes the ephemeral */
    pthread_mutex_lock(&w.mu);
    while (w.fired_ns == 0)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    d[r] = (double)(w.fired_ns - t0) / 1e3;
  }
  record(round, "close->watch", "raw-c", "p50_us", "us", pct(d, W4_REPEATS, 0.5));
  record(round, "close->watch", "raw-c", "min_us", "us", pct(d, W4_REPEATS, 0));
  record(round, "close->watch", "raw-c", "max_us", "us", pct(d, W4_REPEATS, 1));
  zkr_session_free(b);
}

/* ---- floor: the server's write ceiling ---- */

/* 8 raw sessions, each keeping 32 blind setData in flight on its own node: what
 * the server can commit when writes batch into its log syncs. */
#define CEIL_SESSIONS 8
#define CEIL_INFLIGHT 32
#define CEIL_WRITES   1000 /* per session */

typedef struct ceil_ctx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int sent, done, inflight;
} ceil_ctx_t;

static void ceil_done(int rc, const struct Stat *st, const void *data) {
  ceil_ctx_t *c = (ceil_ctx_t *)data;
  (void)st;
  if (rc != ZOK)
    die("write ceiling", rc);
  pthread_mutex_lock(&c->mu);
  c->done++;
  c->inflight--;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void floor_write_ceiling(int round) {
  zkr_session_t *s[CEIL_SESSIONS];
  ceil_ctx_t c[CEIL_SESSIONS];
  char path[CEIL_SESSIONS][128];
  int64_t t0;
  int left = 1;

  for (int i = 0; i < CEIL_SESSIONS; i++) {
    s[i] = open_session();
    snprintf(path[i], sizeof(path[i]), "%s/ceiling-%d-%d", root, round, i);
    ensure(zkr_session_zhandle(s[i]), path[i]);
    c[i] = (ceil_ctx_t){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
  }
  t0 = now_ns();
  /* One thread feeds all sessions: top each up to CEIL_INFLIGHT as replies come. */
  while (left) {
    left = 0;
    for (int i = 0; i < CEIL_SESSIONS; i++) {
      pthread_mutex_lock(&c[i].mu);
      while (c[i].sent < CEIL_WRITES && c[i].inflight < CEIL_INFLIGHT) {
        int rc = zoo_aset(zkr_session_zhandle(s[i]), path[i], "12345678", 8, -1,
                          ceil_done, &c[i]);
        if (rc != ZOK)
          die("write ceiling", rc);
        c[i].sent++;
        c[i].inflight++;
      }
      if (c[i].done < CEIL_WRITES) {
        left = 1;
        if (c[i].sent == CEIL_WRITES || c[i].inflight >= CEIL_INFLIGHT) {
          struct timespec ts;
          clock_gettime(CLOCK_REALTIME, &ts);
          ts.tv_nsec += 1000000;
          if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
          }
          pthread_cond_timedwait(&c[i].cv, &c[i].mu, &ts);
        }
      }
      pthread_mutex_unlock(&c[i].mu);
    }
  }
  record(round, "write-ceiling", "raw-c", "writes_per_s", "/s",
         CEIL_SESSIONS * CEIL_WRITES / ((double)(now_ns() - t0) / 1e9));
  for (int i = 0; i < CEIL_SESSIONS; i++)
    zkr_session_free(s[i]);
}

/* ---- memory: RSS per session ---- */

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

static void raw_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  (void)zh, (void)type, (void)state, (void)path, (void)ctx;
}

/* In its own process (--rss MODE N HOSTS): N sessions each holding or waiting on
 * one lock; with MODE "raw" the same by hand with the plain client (an ephemeral
 * sequential node each and an exists watch on the one before). */
static void rss_granted(zkr_lock_t *l, int rc, void *arg) {
  (void)l, (void)rc, (void)arg;
}

static int rss_mode(const char *mode, int n) {
  long before, after;
  char path[128];
  int rc;

  snprintf(path, sizeof(path), "%s/rss-%s", root, mode);
  before = rss_kb();
  if (!strcmp(mode, "zkrecipes")) {
    zkr_session_t **s = calloc((size_t)n, sizeof(*s));
    zkr_lock_t **l = calloc((size_t)n, sizeof(*l));
    int64_t deadline = now_ns() + 60000000000LL;
    for (int i = 0; i < n; i++) {
      s[i] = open_session();
      if ((rc = zkr_lock_new(s[i], path, &l[i])) != 0)
        die("lock_new", rc);
      if (i == 0 ? (rc = zkr_lock_acquire(l[i], 10000)) != 0
                 : (rc = zkr_lock_acquire_async(l[i], -1, rss_granted, NULL)) != 0)
        die("rss lock", rc);
    }
    for (int i = 1; i < n; i++) { /* all queued and watching */
      zkr__queue_stats_t st;
      do {
        zkr__lock_stats(l[i], &st);
        if (st.watches == 0)
          usleep(1000);
      } while (st.watches == 0 && now_ns() < deadline);
    }
    after = rss_kb();
    for (int i = 0; i < n; i++) {
      zkr_lock_free(l[i]);
      zkr_session_free(s[i]);
    }
    free(s);
    free(l);
  } else {
    zhandle_t **z = calloc((size_t)n, sizeof(*z));
    char prev[256] = "", made[256], prefix[160];
    zkr_session_t *setup = open_session();
    ensure(zkr_session_zhandle(setup), path);
    zkr_session_free(setup);
    snprintf(prefix, sizeof(prefix), "%s/n-", path);
    for (int i = 0; i < n; i++) {
      struct Stat st;
      int64_t deadline = now_ns() + 20000000000LL;
      z[i] = zookeeper_init2(hosts, raw_watch, 20000, NULL, NULL, 0, quiet);
      while (z[i] && zoo_state(z[i]) != ZOO_CONNECTED_STATE && now_ns() < deadline)
        usleep(1000);
      if (!z[i] || (rc = zoo_create(z[i], prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                                    ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made))) != ZOK)
        die("rss raw", ZKR_ESYSTEM);
      if (prev[0] && (rc = zoo_exists(z[i], prev, 1, &st)) != ZOK)
        die("rss raw watch", rc);
      snprintf(prev, sizeof(prev), "%s", made);
    }
    after = rss_kb();
    for (int i = 0; i < n; i++)
      zookeeper_close(z[i]);
    free(z);
  }
  printf("RESULT lib=%s work=rss-%d kb_per_session=%.3f\n",
         strcmp(mode, "raw") ? "zkrecipes" : "raw-c", n, (double)(after - before) / n);
  return 0;
}

/* Run --rss in a process of its own, and record what it prints. */
static void rss(int round, const char *mode, int n) {
  char cmd[1024], self[512], line[256];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  FILE *p;
  if (len <= 0)
    die("rss: /proc/self/exe", ZKR_ESYSTEM);
  self[len] = '\0';
  snprintf(cmd, sizeof(cmd), "'%s' --rss %s %d '%s'", self, mode, n, hosts);
  if (!(p = popen(cmd, "r")))
    die("rss", ZKR_ESYSTEM);
  while (fgets(line, sizeof(line), p)) {
    double kb;
    if (sscanf(line, "RESULT lib=%*s work=%*s kb_per_session=%lf", &kb) == 1)
      record(round, "rss-100", strcmp(mode, "raw") ? "zkrecipes" : "raw-c",
             "kb_per_session", "kB", kb);
  }
  if (pclose(p) != 0)
    die("rss child", ZKR_ESYSTEM);
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

/* ---- caches ---- */

/* C1: change to callback. One session writes a node (sync setData); another
 * learns of it. Floors: the raw watch notification alone (no value), and the
 * notification plus the getData a raw client needs to learn the value (what
 * a cache must do, as the C client's events carry no data). */
#define C1_CHANGES 200

typedef struct c1_ctx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t at_ns; /* when the news came; 0 until then */
  zhandle_t *zh;
  const char *path;
  int with_get;
} c1_ctx_t;

static void c1_got(int rc, const char *v, int len, const struct Stat *st, const void *data) {
  c1_ctx_t *c = (c1_ctx_t *)data;
  (void)rc, (void)v, (void)len, (void)st;
  pthread_mutex_lock(&c->mu);
  c->at_ns = now_ns();
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void c1_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  c1_ctx_t *c = ctx;
  (void)zh, (void)state, (void)path;
  if (type != ZOO_CHANGED_EVENT)
    return;
  if (c->with_get) {
    if (zoo_aget(c->zh, c->path, 0, c1_got, c) != ZOK)
      die("c1 get", ZKR_ESYSTEM);
    return;
  }
  c1_got(ZOK, NULL, 0, NULL, c);
}

static void c1_listener(zkr_node_cache_t *nc, const zkr_cache_event_t *ev, void *arg) {
  (void)nc;
  if (ev->type == ZKR_CACHE_CHANGED)
    c1_got(ZOK, NULL, 0, NULL, arg);
}

static int64_t c1_wait(c1_ctx_t *c) {
  int64_t t;
  pthread_mutex_lock(&c->mu);
  while (c->at_ns == 0)
    pthread_cond_wait(&c->cv, &c->mu);
  t = c->at_ns;
  c->at_ns = 0;
  pthread_mutex_unlock(&c->mu);
  return t;
}

/* c1_wait with a bound: a broken run fails instead of hanging. */
static int64_t c1_wait_or_die(c1_ctx_t *c, const char *what) {
  struct timespec until;
  int64_t t;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 60;
  pthread_mutex_lock(&c->mu);
  while (c->at_ns == 0)
    if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0 && c->at_ns == 0) {
      pthread_mutex_unlock(&c->mu);
      die(what, ZKR_ETIMEDOUT);
    }
  t = c->at_ns;
  c->at_ns = 0;
  pthread_mutex_unlock(&c->mu);
  return t;
}

/* mode 0: raw watch; 1: raw watch + get; 2: node cache. */
static void c1_run(int round, int mode) {
  static const char *libs[] = {"raw-c", "raw-c", "zkrecipes"};
  static const char *works[] = {"set->watch", "set->watch+get", "C1-node-cache"};
  zkr_session_t *w = open_session(), *r = open_session();
  zhandle_t *zw = zkr_session_zhandle(w), *zr = zkr_session_zhandle(r);
  c1_ctx_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, zr, NULL, mode == 1};
  zkr_node_cache_t *nc = NULL;
  double d[C1_CHANGES];
  char path[128];
  int rc;

  snprintf(path, sizeof(path), "%s/c1-%d-%d", root, round, mode);
  ensure(zw, path);
  c.path = path;
  if (mode == 2) {
    struct Stat st;
    if ((rc = zkr_node_cache_new(r, path, &nc)) != 0 ||
        (rc = zkr_node_cache_set_listener(nc, c1_listener, &c)) != 0 ||
        (rc = zkr_node_cache_start(nc)) != 0 ||
        (rc = zkr_node_cache_wait(nc, NULL, 10000, NULL, NULL, &st)) != 0)
      die("c1 cache", rc);
  }
  for (int i = 0; i < C1_CHANGES; i++) {
    int64_t t0;
    if (mode < 2) {
      struct Stat st;
      if ((rc = zoo_wexists(zr, path, c1_watcher, &c, &st)) != ZOK)
        die("c1 watch", rc);
    }
    t0 = now_ns();
    if ((rc = zoo_set(zw, path, "12345678", 8, -1)) != ZOK)
      die("c1 set", rc);
    d[i] = (double)(c1_wait(&c) - t0) / 1e3;
  }
  record(round, works[mode], libs[mode], "p50_us", "us", pct(d, C1_CHANGES, 0.5));
  record(round, works[mode], libs[mode], "p99_us", "us", pct(d, C1_CHANGES, 0.99));
  zkr_node_cache_free(nc);
  zkr_session_free(r);
  zkr_session_free(w);
}

/* J1: the journal. One session writes through a journal (one change at a
 * time, waiting for each), another follows it: the write's latency against a
 * plain setData's on the same path, and write-to-ENTRY against C1's floor
 * (setData, then a watch and a getData on the other session). Then a burst of
 * J1_BURST writes queued at once: writes/s, and how long until the follower
 * has every one of them (a node cache would coalesce them). */
#define J1_BURST 1000

typedef struct j1_ctx {
  c1_ctx_t c1;
  _Atomic int entries;
} j1_ctx_t;

static void j1_listener(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  j1_ctx_t *c = arg;
  (void)j;
  if (ev->type != ZKR_JOURNAL_ENTRY)
    return;
  atomic_fetch_add(&c->entries, 1);
  c1_got(ZOK, NULL, 0, NULL, &c->c1);
}

static void j1_written(zkr_journal_t *j, int rc, int64_t seq, void *arg) {
  (void)j, (void)seq, (void)arg;
  if (rc != 0)
    die("j1 burst write", rc);
}

static void j1_run(int round) {
  zkr_session_t *w = open_session(), *r = open_session();
  zhandle_t *zw = zkr_session_zhandle(w);
  j1_ctx_t c = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, NULL, 0}, 0};
  zkr_journal_t *jw, *jr;
  double wr[C1_CHANGES], dl[C1_CHANGES], set[C1_CHANGES];
  char path[128];
  int64_t t0, t_sent;
  int rc;

  snprintf(path, sizeof(path), "%s/j1-%d", root, round);
  if ((rc = zkr_journal_new(w, path, &jw)) != 0 || (rc = zkr_journal_new(r, path, &jr)) != 0 ||
      (rc = zkr_journal_write(jw, "first", 5, -1, 10000, NULL)) != 0 ||
      (rc = zkr_journal_follow(jr, -1, j1_listener, &c)) != 0)
    die("j1 journal", rc);
  c1_wait(&c.c1); /* the first entry */
  for (int i = 0; i < C1_CHANGES; i++) {
    int64_t t1;
    t0 = now_ns();
    if ((rc = zoo_set(zw, path, "12345678", 8, -1)) != ZOK)
      die("j1 set", rc);
    set[i] = (double)(now_ns() - t0) / 1e3;
    t0 = now_ns();
    if ((rc = zkr_journal_write(jw, "12345678", 8, -1, 10000, NULL)) != 0)
      die("j1 write", rc);
    t1 = now_ns();
    wr[i] = (double)(t1 - t0) / 1e3;
    dl[i] = (double)(c1_wait(&c.c1) - t0) / 1e3;
  }
  record(round, "setData", "raw-c", "p50_us", "us", pct(set, C1_CHANGES, 0.5));
  record(round, "J1-journal-write", "zkrecipes", "p50_us", "us", pct(wr, C1_CHANGES, 0.5));
  record(round, "J1-journal-write", "zkrecipes", "p99_us", "us", pct(wr, C1_CHANGES, 0.99));
  record(round, "J1-write-to-entry", "zkrecipes", "p50_us", "us", pct(dl, C1_CHANGES, 0.5));
  record(round, "J1-write-to-entry", "zkrecipes", "p99_us", "us", pct(dl, C1_CHANGES, 0.99));
  record(round, "J1-journal-write", "ratio", "p50 vs setData", "x",
         pct(wr, C1_CHANGES, 0.5) / pct(set, C1_CHANGES, 0.5));

  /* The burst. */
  atomic_store(&c.entries, 0);
  t0 = now_ns();
  for (int i = 0; i < J1_BURST; i++) {
    char v[16];
    snprintf(v, sizeof(v), "b%d", i);
    if ((rc = zkr_journal_write_async(jw, v, (int)strlen(v), -1, 30000, j1_written, NULL)) !=
        0)
      die("j1 burst", rc);
  }
  t_sent = now_ns();
  /* Writes of one object run one at a time: the last one's callback ends
   * the burst; a sync write behind it waits for them all. */
  if ((rc = zkr_journal_write(jw, "end", 3, -1, 60000, NULL)) != 0)
    die("j1 burst end", rc);
  record(round, "J1-burst", "zkrecipes", "writes_per_s", "/s",
         (J1_BURST + 1) / ((double)(now_ns() - t0) / 1e9));
  while (atomic_load(&c.entries) < J1_BURST + 1)
    c1_wait(&c.c1);
  record(round, "J1-burst", "zkrecipes", "all_delivered_ms", "ms",
         (double)(now_ns() - t0) / 1e6);
  (void)t_sent;
  zkr_journal_free(jr);
  if ((rc = zkr_journal_trim(jw, INT64_MAX, 0, 60000, NULL)) != 0)
    die("j1 trim", rc);
  zkr_journal_free(jw);
  {
    char jp[160];
    snprintf(jp, sizeof(jp), "%s.zkr-journal", path);
    zoo_delete(zw, jp, -1);
  }
  zkr_session_free(r);
  zkr_session_free(w);
}

/* D1: service discovery. (a) A registration made on one session, seen by a
 * watching reader on another (p50/p99 over D1_CHANGES): zkrecipes' service
 * cache listener vs the raw floor (create the instance node; the reader's
 * child watch fires, it lists and reads the new child). (b) Lookups per second
 * from the cached provider (3 instances, round robin). (c) Re-registration
 * after an expiry on the server: from the close of the session's second
 * handle (the expiry) to the reader seeing the instance again. */
#define D1_CHANGES 200
#define D1_EXPIRIES 5
#define D1_LOOKUPS 200000

static const char d1_json[] =
    "{\"name\":\"svc\",\"id\":\"x\",\"address\":\"10.0.0.7\",\"port\":8080,\"sslPort\":null,"
    "\"payload\":null,\"registrationTimeUTC\":1700000000000,\"serviceType\":\"DYNAMIC\","
    "\"uriSpec\":null}";

typedef struct d1_ctx {
  c1_ctx_t c1;     /* at_ns: when the awaited id came */
  char want[64];   /* the id awaited (ADDED) */
  zhandle_t *zh;   /* floor: the reader's handle */
  const char *dir; /* floor: the watched path */
  int nknown;      /* floor: children seen */
} d1_ctx_t;

static void d1_listener(zkr_service_cache_t *c, int ev, const char *id, void *arg) {
  d1_ctx_t *d = arg;
  int hit;
  (void)c;
  pthread_mutex_lock(&d->c1.mu);
  hit = (ev == ZKR_CACHE_ADDED || ev == ZKR_CACHE_REPLACED) && id && !strcmp(id, d->want);
  pthread_mutex_unlock(&d->c1.mu);
  if (hit)
    c1_got(ZOK, NULL, 0, NULL, &d->c1);
}

static void d1_floor_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx);

static void d1_floor_got(int rc, const char *v, int len, const struct Stat *st,
                         const void *data) {
  d1_ctx_t *d = (d1_ctx_t *)data;
  (void)v, (void)len, (void)st;
  if (rc == ZOK)
    c1_got(ZOK, NULL, 0, NULL, &d->c1);
}

static void d1_floor_listed(int rc, const struct String_vector *sv, const void *data) {
  d1_ctx_t *d = (d1_ctx_t *)data;
  char p[256];
  if (rc != ZOK || !sv)
    return;
  for (int i = 0; i < sv->count; i++)
    if (!strcmp(sv->data[i], d->want)) {
      snprintf(p, sizeof(p), "%s/%s", d->dir, sv->data[i]);
      zoo_aget(d->zh, p, 0, d1_floor_got, d);
    }
}

static void d1_floor_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  d1_ctx_t *d = ctx;
  (void)state, (void)path;
  if (type == ZOO_CHILD_EVENT)
    zoo_awget_children(zh, d->dir, d1_floor_watch, d, d1_floor_listed, d);
}

/* Expire s on the server: a second handle with its id and password, closed;
 * again until a further one is told the session has expired. Returns when
 * (now_ns) the closing that ended it was made. */
static int64_t expire_session(zkr_session_t *s) {
  clientid_t victim = *zoo_client_id(zkr_session_zhandle(s));
  int64_t closed = now_ns();
  for (int attempt = 0; attempt < 20; attempt++) {
    clientid_t id = victim;
    zhandle_t *zh = zookeeper_init(hosts, NULL, 10000, &id, NULL, 0);
    int64_t deadline = now_ns() + 15000000000LL;
    int st = 0;
    while (zh && (st = zoo_state(zh)) != ZOO_CONNECTED_STATE &&
           st != ZOO_EXPIRED_SESSION_STATE && now_ns() < deadline)
      usleep(500);
    if (!zh)
      die("d1 expire", ZKR_ESYSTEM);
    if (st == ZOO_CONNECTED_STATE)
      closed = now_ns();
    zookeeper_close(zh);
    if (st == ZOO_EXPIRED_SESSION_STATE)
      return closed;
  }
  die("d1 expire", ZSESSIONEXPIRED);
  return 0;
}

static void d1_run(int round) {
  zkr_session_t *w = open_session(), *r = open_session();
  zhandle_t *zw = zkr_session_zhandle(w), *zr = zkr_session_zhandle(r);
  d1_ctx_t d = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, NULL, 0}, "", NULL,
                NULL, 0};
  zkr_service_cache_t *c;
  zkr_service_provider_t *p;
  zkr_service_reg_t *reg, *three[3];
  zkr_service_instance_t in;
  double raw[D1_CHANGES], zk[D1_CHANGES], ex[D1_EXPIRIES];
  char base[160], dir[200], node[260];
  int64_t t0;
  int rc;

  snprintf(base, sizeof(base), "%s/d1-%d", root, round);
  snprintf(dir, sizeof(dir), "%s/floor", base);
  ensure(zw, base);
  ensure(zw, dir);
  /* (a) the floor */
  d.zh = zr;
  d.dir = dir;
  if ((rc = zoo_awget_children(zr, dir, d1_floor_watch, &d, d1_floor_listed, &d)) != ZOK)
    die("d1 floor watch", rc);
  for (int i = 0; i < D1_CHANGES; i++) {
    pthread_mutex_lock(&d.c1.mu);
    snprintf(d.want, sizeof(d.want), "i%d", i);
    pthread_mutex_unlock(&d.c1.mu);
    snprintf(node, sizeof(node), "%s/i%d", dir, i);
    t0 = now_ns();
    if ((rc = zoo_create(zw, node, d1_json, (int)strlen(d1_json), &ZOO_OPEN_ACL_UNSAFE,
                         ZOO_EPHEMERAL, NULL, 0)) != ZOK)
      die("d1 floor create", rc);
    raw[i] = (double)(c1_wait_or_die(&d.c1, "d1 floor") - t0) / 1e3;
  }
  record(round, "create->watch+list+get", "raw-c", "p50_us", "us", pct(raw, D1_CHANGES, 0.5));
  record(round, "create->watch+list+get", "raw-c", "p99_us", "us", pct(raw, D1_CHANGES, 0.99));

  /* (a) zkrecipes */
  zkr_service_instance_init(&in);
  in.name = "svc";
  in.address = "10.0.0.7";
  in.port = 8080;
  if ((rc = zkr_service_cache_new(r, base, "svc", &c)) != 0 ||
      (rc = zkr_service_cache_set_listener(c, d1_listener, &d)) != 0 ||
      (rc = zkr_service_cache_start(c)) != 0 || (rc = zkr_service_cache_wait_ready(c, 10000)))
    die("d1 cache", rc);
  for (int i = 0; i < D1_CHANGES; i++) {
    char id[16];
    snprintf(id, sizeof(id), "z%d", i);
    pthread_mutex_lock(&d.c1.mu);
    snprintf(d.want, sizeof(d.want), "%s", id);
    pthread_mutex_unlock(&d.c1.mu);
    in.id = id;
    t0 = now_ns();
    if ((rc = zkr_service_register(w, base, &in, 10000, &reg)) != 0)
      die("d1 register", rc);
    zk[i] = (double)(c1_wait_or_die(&d.c1, "d1 seen") - t0) / 1e3;
    zkr_service_reg_free(reg);
  }
  record(round, "D1-register-seen", "zkrecipes", "p50_us", "us", pct(zk, D1_CHANGES, 0.5));
  record(round, "D1-register-seen", "zkrecipes", "p99_us", "us", pct(zk, D1_CHANGES, 0.99));
  record(round, "D1-register-seen", "ratio", "p50 vs create->watch+list+get", "x",
         pct(zk, D1_CHANGES, 0.5) / pct(raw, D1_CHANGES, 0.5));

  /* (b) lookups from the cached provider */
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof(id), "p%d", i);
    in.id = id;
    if ((rc = zkr_service_register(w, base, &in, 10000, &three[i])) != 0)
      die("d1 register", rc);
  }
  if ((rc = zkr_service_provider_new(r, base, "svc", ZKR_PICK_ROUND_ROBIN, &p)) != 0 ||
      (rc = zkr_service_provider_wait_ready(p, 10000)) != 0)
    die("d1 provider", rc);
  t0 = now_ns();
  for (int i = 0; i < D1_LOOKUPS; i++) {
    zkr_service_instance_t got;
    if ((rc = zkr_service_provider_get(p, &got)) != 0)
      die("d1 lookup", rc);
    zkr_service_instance_clear(&got);
  }
  record(round, "D1-lookup", "zkrecipes", "lookups_per_s", "/s",
         D1_LOOKUPS / ((double)(now_ns() - t0) / 1e9));
  zkr_service_provider_free(p);
  for (int i = 0; i < 3; i++)
    zkr_service_reg_free(three[i]);

  /* (c) re-registration after an expiry */
  in.id = "again";
  if ((rc = zkr_service_register(w, base, &in, 10000, &reg)) != 0)
    die("d1 register", rc);
  pthread_mutex_lock(&d.c1.mu);
  snprintf(d.want, sizeof(d.want), "again");
  pthread_mutex_unlock(&d.c1.mu);
  c1_wait_or_die(&d.c1, "d1 again");
  for (int i = 0; i < D1_EXPIRIES; i++) {
    t0 = expire_session(w);
    ex[i] = (double)(c1_wait_or_die(&d.c1, "d1 re-registration") - t0) / 1e6;
  }
  record(round, "D1-reregister-after-expiry", "zkrecipes", "p50_ms", "ms",
         pct(ex, D1_EXPIRIES, 0.5));
  zkr_service_reg_free(reg);
  zkr_service_cache_free(c);
  zkr_session_free(r);
  zkr_session_free(w);
}

/* C2: the initial load of a children cache with data over n children, against
 * the floor of a raw client that lists with getChildren and sends every
 * getData at once; and the heap the cache holds per child (mallinfo2). */
typedef struct c2_ctx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int left;
} c2_ctx_t;

static void c2_got(int rc, const char *v, int len, const struct Stat *st, const void *data) {
  c2_ctx_t *c = (c2_ctx_t *)data;
  (void)rc, (void)v, (void)len, (void)st;
  pthread_mutex_lock(&c->mu);
  if (--c->left == 0)
    pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void c2_init(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg) {
  (void)cc;
  if (ev->type == ZKR_CACHE_INITIALIZED) {
    c2_ctx_t *c = arg;
    pthread_mutex_lock(&c->mu);
    c->left = 0;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
}

static void c2_wait(c2_ctx_t *c) {
  pthread_mutex_lock(&c->mu);
  while (c->left > 0)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

static void c2_run(int round, int n) {
  zkr_session_t *w = open_session(), *r = open_session();
  zhandle_t *zw = zkr_session_zhandle(w), *zr = zkr_session_zhandle(r);
  char path[128], work[48];
  int64_t t0;
  int rc;

  snprintf(path, sizeof(path), "%s/c2-%d-%d", root, round, n);
  ensure(zw, path);
  for (int b = 0; b < n; b += 100) {
    zoo_op_t ops[100];
    zoo_op_result_t res[100];
    char names[100][160];
    int k = n - b < 100 ? n - b : 100;
    for (int i = 0; i < k; i++) {
      snprintf(names[i], sizeof(names[i]), "%s/member-%06d", path, b + i);
      zoo_create_op_init(&ops[i], names[i], "host-1.example:8080", 19,
                         &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    }
    if ((rc = zoo_multi(zw, k, ops, res)) != ZOK)
      die("c2 populate", rc);
  }
  /* The floor: list, then every read at once. */
  {
    struct String_vector sv;
    c2_ctx_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    char child[200];
    t0 = now_ns();
    if ((rc = zoo_get_children(zr, path, 0, &sv)) != ZOK)
      die("c2 list", rc);
    c.left = sv.count;
    for (int i = 0; i < sv.count; i++) {
      snprintf(child, sizeof(child), "%s/%s", path, sv.data[i]);
      if ((rc = zoo_aget(zr, child, 0, c2_got, &c)) != ZOK)
        die("c2 get", rc);
    }
    c2_wait(&c);
    deallocate_String_vector(&sv);
    snprintf(work, sizeof(work), "list+get-%d", n);
    record(round, work, "raw-c", "load_ms", "ms", (double)(now_ns() - t0) / 1e6);
  }
  {
    c2_ctx_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1};
    zkr_children_cache_t *cc;
    struct mallinfo2 before = mallinfo2(), after;
    t0 = now_ns();
    if ((rc = zkr_children_cache_new(r, path, ZKR_CHILDREN_DATA, &cc)) != 0 ||
        (rc = zkr_children_cache_set_listener(cc, c2_init, &c)) != 0 ||
        (rc = zkr_children_cache_start(cc)) != 0)
      die("c2 cache", rc);
    c2_wait(&c);
    snprintf(work, sizeof(work), "C2-children-%d", n);
    record(round, work, "zkrecipes", "load_ms", "ms", (double)(now_ns() - t0) / 1e6);
    after = mallinfo2();
    record(round, work, "zkrecipes", "heap_bytes_per_child", "B",
           ((double)after.uordblks - (double)before.uordblks) / n);
    zkr_children_cache_free(cc);
  }
  zkr_session_free(r);
  zkr_session_free(w);
}

/* C3: 8 writer sessions change their own child of P as fast as they can (one
 * setData in flight each) for C3_SECONDS; a children cache with data follows
 * P. Figures: the writes applied per second, the cache's UPDATED events per
 * second, the versions it reports as coalesced (missed), and how long after the
 * last write the cache holds every child's last version. */
#define C3_WRITERS 8
#define C3_SECONDS 3

typedef struct c3_ctx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t events, missed;
  int32_t seen[C3_WRITERS]; /* the last version the cache reported per child */
} c3_ctx_t;

typedef struct c3_writer {
  zkr_session_t *s;
  char path[160];
  int64_t end_ns;
  int64_t writes;
  int32_t last_version;
} c3_writer_t;

static void c3_listener(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg) {
  c3_ctx_t *c = arg;
  const char *dash = strrchr(ev->path, '-');
  (void)cc;
  if (ev->type != ZKR_CACHE_UPDATED || !dash)
    return;
  pthread_mutex_lock(&c->mu);
  c->events++;
  c->missed += ev->missed;
  c->seen[atoi(dash + 1) % C3_WRITERS] = ev->stat.version;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void *c3_write(void *arg) {
  c3_writer_t *w = arg;
  zhandle_t *zh = zkr_session_zhandle(w->s);
  while (now_ns() < w->end_ns) {
    struct Stat st;
    int rc = zoo_set2(zh, w->path, "12345678", 8, -1, &st);
    if (rc != ZOK)
      die("c3 set", rc);
    w->writes++;
    w->last_version = st.version;
  }
  return NULL;
}

static void c3_run(int round) {
  zkr_session_t *r = open_session();
  c3_writer_t w[C3_WRITERS];
  pthread_t th[C3_WRITERS];
  c3_ctx_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}};
  zkr_children_cache_t *cc;
  char path[128];
  int64_t t0, t_end, writes = 0;
  int rc, caught = 0;

  snprintf(path, sizeof(path), "%s/c3-%d", root, round);
  ensure(zkr_session_zhandle(r), path);
  for (int i = 0; i < C3_WRITERS; i++) {
    w[i].s = open_session();
    snprintf(w[i].path, sizeof(w[i].path), "%s/writer-%d", path, i);
    ensure(zkr_session_zhandle(w[i].s), w[i].path);
    w[i].writes = 0;
    w[i].last_version = 0;
  }
  if ((rc = zkr_children_cache_new(r, path, ZKR_CHILDREN_DATA, &cc)) != 0 ||
      (rc = zkr_children_cache_set_listener(cc, c3_listener, &c)) != 0 ||
      (rc = zkr_children_cache_start(cc)) != 0)
    die("c3 cache", rc);
  {
    zkr_cache_child_t *kids;
    int n;
    int64_t deadline = now_ns() + 10000000000LL;
    while ((rc = zkr_children_cache_list(cc, &kids, &n)) == ZKR_ENOTREADY && now_ns() < deadline)
      usleep(1000);
    if (rc != 0)
      die("c3 initial load", rc);
    zkr_cache_children_free(kids, n);
  }
  t0 = now_ns();
  for (int i = 0; i < C3_WRITERS; i++) {
    w[i].end_ns = t0 + (int64_t)C3_SECONDS * 1000000000;
    pthread_create(&th[i], NULL, c3_write, &w[i]);
  }
  for (int i = 0; i < C3_WRITERS; i++) {
    pthread_join(th[i], NULL);
    writes += w[i].writes;
  }
  t_end = now_ns();
  pthread_mutex_lock(&c.mu);
  while (!caught && now_ns() < t_end + 10000000000LL) {
    struct timespec ts;
    caught = 1;
    for (int i = 0; i < C3_WRITERS; i++)
      caught &= c.seen[i] == w[i].last_version;
    if (caught)
      break;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 2000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&c.cv, &c.mu, &ts);
  }
  pthread_mutex_unlock(&c.mu);
  if (!caught)
    die("c3: the cache never caught up", ZKR_ETIMEDOUT);
  record(round, "C3-children-8-writers", "raw-c", "writes_per_s", "/s",
         (double)writes / ((double)(t_end - t0) / 1e9));
  record(round, "C3-children-8-writers", "zkrecipes", "updates_per_s", "/s",
         (double)c.events / ((double)(t_end - t0) / 1e9));
  record(round, "C3-children-8-writers", "zkrecipes", "versions_coalesced_pct", "%",
         writes ? 100.0 * (double)c.missed / (double)writes : 0);
  record(round, "C3-children-8-writers", "zkrecipes", "caught_up_ms", "ms",
         (double)(now_ns() - t_end) / 1e6);
  zkr_children_cache_free(cc);
  for (int i = 0; i < C3_WRITERS; i++)
    zkr_session_free(w[i].s);
  zkr_session_free(r);
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
  const char *only = "w1,ls,ceiling,w2,herd,r1,r2,s1,w3a,w3b,w4,c1,c2,c3,j1,d1,q1,rss";
  int rounds = 3, opt, warm = 1, table = 1;

  if (argc == 5 && !strcmp(argv[1], "--rss")) {
    hosts = argv[4];
    snprintf(root, sizeof(root), "/zkr-bench-rss-%ld", (long)getpid());
    {
      zkr_session_t *s = open_session();
      ensure(zkr_session_zhandle(s), root);
      zkr_session_free(s);
    }
    return rss_mode(argv[2], atoi(argv[3]));
  }
  while ((opt = getopt(argc, argv, "r:w:nqh")) != -1) {
    switch (opt) {
    case 'r': rounds = atoi(optarg); break;
    case 'w': only = optarg; break;
    case 'n': warm = 0; break;  /* the server is warm already (a driver's later rounds) */
    case 'q': table = 0; break; /* RESULT lines only (a driver makes the tables) */
    default:
      fprintf(stderr,
              "usage: %s [-r ROUNDS] [-n] [-q] [-w w1,ls,ceiling,w2,herd,r1,r2,s1,w3a,w3b,w4,c1,c2,c3,j1,d1,q1,rss] "
              "HOSTS\n",
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
  if (warm) {
    printf("-- warm-up\n");
    side_t warmup[1] = {SIDE("create+delete", "raw-c", "cycles_per_s", "create", "delete",
                             cd_setup, cd_cycle, 0)};
    int saved_w2 = w2_cycles;
    w2_cycles = 100;
    interleave(0, warmup, 1, 3000, 1);
    floor_list(0);
    w2(0, "W2");
    w2_cycles = saved_w2;
  }
  for (int r = 1; r <= rounds; r++) {
    double floor_cd = 0, floop = 0;
    printf("-- round %d\n", r);
    if (wanted(only, "w1")) {
      /* W1 waits for the release's reply, as every peer library does; W1p
       * releases with timeout 0 (the delete rides ahead of the next acquire in
       * session order), a zkrecipes option. */
      side_t x[3] = {SIDE("create+delete", "raw-c", "cycles_per_s", "create", "delete",
                          cd_setup, cd_cycle, 0),
                     SIDE("W1", "zkrecipes", "cycles_per_s", "acquire", "release",
                          lock_setup, lock_cycle, 10000),
                     SIDE("W1p", "zkrecipes", "cycles_per_s", "acquire", "release",
                          lock_setup, lock_cycle, 0)};
      interleave(r, x, 3, w1_cycles, 4);
      floor_cd = metric("create+delete", "raw-c", "cycles_per_s", "")->v[r - 1];
    }
    if (wanted(only, "ls"))
      floor_list(r);
    if (wanted(only, "ceiling"))
      floor_write_ceiling(r);
    if (wanted(only, "w2")) {
      for (int p = 0; p < 2; p++) {
        const char *name = p ? "W2p" : "W2";
        release_ms = p ? 0 : 10000;
        w2(r, name);
        if (floor_cd > 0)
          record(r, name, "ratio", "vs create+delete", "x",
                 metric(name, "zkrecipes", "cycles_per_s", "")->v[r - 1] / floor_cd);
      }
    }
    if (wanted(only, "herd"))
      herd(r);
    if (wanted(only, "w3a")) {
      side_t x[3] = {SIDE("blind-set", "raw-c", "increments_per_s", "set", NULL,
                          set_setup, set_cycle, 0),
                     SIDE("W3a", "zkrecipes", "increments_per_s", "add", NULL,
                          counter_setup, counter_cycle, 0),
                     SIDE("W3a-amo", "zkrecipes", "increments_per_s", "add", NULL,
                          counter_amo_setup, counter_cycle, 0)};
      interleave(r, x, 3, w3_cycles, 4);
    }
    if (wanted(only, "w4")) {
      floor_close_watch(r);
      w4(r);
      record(r, "W4", "ratio", "p50 vs close->watch", "x",
             metric("W4", "zkrecipes", "failover_p50_us", "")->v[r - 1] /
                 metric("close->watch", "raw-c", "p50_us", "")->v[r - 1]);
    }
    if (wanted(only, "c1")) {
      for (int m = 0; m < 3; m++)
        c1_run(r, m);
      record(r, "C1-node-cache", "ratio", "p50 vs set->watch+get", "x",
             metric("C1-node-cache", "zkrecipes", "p50_us", "")->v[r - 1] /
                 metric("set->watch+get", "raw-c", "p50_us", "")->v[r - 1]);
      record(r, "C1-node-cache", "ratio", "p50 vs set->watch", "x",
             metric("C1-node-cache", "zkrecipes", "p50_us", "")->v[r - 1] /
                 metric("set->watch", "raw-c", "p50_us", "")->v[r - 1]);
    }
    if (wanted(only, "c2")) {
      c2_run(r, 1000);
      c2_run(r, 10000);
    }
    if (wanted(only, "r1"))
      shared_run(r, "R1", 8, 0, 100, 0, 0);
    if (wanted(only, "r2"))
      shared_run(r, "R2", 10, 2, 50, 0, 0);
    if (wanted(only, "s1")) {
      /* the three profiles in turns: Curator's nodes (S1), kazoo's, native */
      shared_run(r, "S1", 8, 0, 60, 3, ZKR_SEMAPHORE_CURATOR);
      shared_run(r, "S1-kazoo", 8, 0, 60, 3, ZKR_SEMAPHORE_KAZOO);
      shared_run(r, "S1-native", 8, 0, 60, 3, ZKR_SEMAPHORE_NATIVE);
    }
    if (wanted(only, "c3"))
      c3_run(r);
    if (wanted(only, "q1"))
      q1_run(r);
    if (wanted(only, "d1"))
      d1_run(r);
    if (wanted(only, "j1")) {
      j1_run(r);
      if (wanted(only, "c1"))
        record(r, "J1-write-to-entry", "ratio", "p50 vs set->watch+get", "x",
               metric("J1-write-to-entry", "zkrecipes", "p50_us", "")->v[r - 1] /
                   metric("set->watch+get", "raw-c", "p50_us", "")->v[r - 1]);
    }
    if (wanted(only, "w3b")) {
      counter_run(r, "get+set-loop", "raw-c", w3_sessions, w3_cycles / w3_sessions, 1);
      floop = metric("get+set-loop", "raw-c", "increments_per_s", "")->v[r - 1];
      counter_run(r, "W3b", "zkrecipes", w3_sessions, w3_cycles / w3_sessions, 0);
      record(r, "W3b", "ratio", "vs get+set-loop", "x",
             metric("W3b", "zkrecipes", "increments_per_s", "")->v[r - 1] / floop);
      counter_run(r, "W3b-amo", "zkrecipes", w3_sessions, w3_cycles / w3_sessions, 2);
      record(r, "W3b-amo", "ratio", "vs get+set-loop", "x",
             metric("W3b-amo", "zkrecipes", "increments_per_s", "")->v[r - 1] / floop);
    }
  }
  if (wanted(only, "rss")) {
    rss(rounds, "zkrecipes", 100);
    rss(rounds, "raw", 100);
  }
  if (table)
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
