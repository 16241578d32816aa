/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lock_contention - several workers, each on its own ZooKeeper session, take
 * turns holding one lock.
 *
 *   lock_contention [-w WORKERS] [-r ROUNDS] [-t HOLD_MS] [-p PATH] [HOSTS]
 *
 * HOSTS defaults to $ZKR_HOSTS, then 127.0.0.1:2181. Prints a timeline (who holds,
 * the fencing token, how long it waited) and a summary: acquisitions, the most
 * holders ever seen at once (must be 1), mean and p99 wait.
 */
#define _DEFAULT_SOURCE /* getopt, clock_gettime, usleep under -std=c11 too */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zkrecipes.h>

static const char *hosts = "127.0.0.1:2181";
static const char *path;
static int workers = 4, rounds = 5, hold_ms = 20;

static _Atomic int holders, max_holders, failures;
static double *waits; /* ms, one per acquisition */
static _Atomic int nwaits;
static int64_t t0;
static int64_t last_token;
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  zkr_session_t *s;
  zkr_lock_t *l;
  char me[32];
  int rc;

  if ((rc = zkr_session_open(hosts, 10000, 10000, &s)) != 0) {
    fprintf(stderr, "worker %d: connect: %s\n", id, zkr_strerror(rc));
    atomic_fetch_add(&failures, 1);
    return NULL;
  }
  snprintf(me, sizeof(me), "worker-%d", id);
  if ((rc = zkr_lock_new(s, path, &l)) != 0 ||
      (rc = zkr_lock_set_data(l, me, (int)strlen(me))) != 0) {
    fprintf(stderr, "worker %d: lock: %s\n", id, zkr_strerror(rc));
    atomic_fetch_add(&failures, 1);
    zkr_session_free(s);
    return NULL;
  }
  for (int r = 0; r < rounds; r++) {
    int64_t asked = now_us(), got;
    zkr_lock_token_t tok;
    int now;

    if ((rc = zkr_lock_acquire(l, 30000)) != 0) {
      fprintf(stderr, "worker %d: acquire: %s\n", id, zkr_strerror(rc));
      atomic_fetch_add(&failures, 1);
      continue;
    }
    got = now_us();
    now = atomic_fetch_add(&holders, 1) + 1;
    if (now > atomic_load(&max_holders))
      atomic_store(&max_holders, now);
    zkr_lock_token(l, &tok);
    waits[atomic_fetch_add(&nwaits, 1)] = (double)(got - asked) / 1000.0;
    pthread_mutex_lock(&print_mu);
    printf("%9.1f ms  worker %d holds  token %" PRId64 "%s  seq %d  waited %7.1f ms\n",
           (double)(got - t0) / 1000.0, id, tok.czxid,
           tok.czxid > last_token ? "" : " (NOT INCREASING)", tok.sequence,
           (double)(got - asked) / 1000.0);
    if (tok.czxid <= last_token)
      atomic_fetch_add(&failures, 1);
    last_token = tok.czxid;
    pthread_mutex_unlock(&print_mu);

    usleep((useconds_t)hold_ms * 1000); /* the critical section */

    atomic_fetch_sub(&holders, 1);
    if ((rc = zkr_lock_release(l, 10000)) != 0) {
      fprintf(stderr, "worker %d: release: %s\n", id, zkr_strerror(rc));
      atomic_fetch_add(&failures, 1);
    }
  }
  zkr_lock_free(l);
  zkr_session_free(s);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  char defpath[64];
  pthread_t *t;
  double sum = 0;
  int opt, n;

  if (getenv("ZKR_HOSTS"))
    hosts = getenv("ZKR_HOSTS");
  snprintf(defpath, sizeof(defpath), "/zkrecipes-demo/lock-%ld", (long)getpid());
  path = defpath;
  while ((opt = getopt(argc, argv, "w:r:t:p:h")) != -1) {
    switch (opt) {
    case 'w': workers = atoi(optarg); break;
    case 'r': rounds = atoi(optarg); break;
    case 't': hold_ms = atoi(optarg); break;
    case 'p': path = optarg; break;
    default:
      fprintf(stderr,
              "usage: %s [-w WORKERS] [-r ROUNDS] [-t HOLD_MS] [-p PATH] [HOSTS]\n",
              argv[0]);
      return 2;
    }
  }
  if (optind < argc)
    hosts = argv[optind];
  if (workers < 1 || rounds < 1 || hold_ms < 0) {
    fprintf(stderr, "lock_contention: workers and rounds must be positive\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("%d workers x %d rounds on %s (%s), holding %d ms each\n", workers, rounds, path,
         hosts, hold_ms);
  waits = calloc((size_t)workers * (size_t)rounds, sizeof(*waits));
  t = calloc((size_t)workers, sizeof(*t));
  if (!waits || !t)
    return 1;
  t0 = now_us();
  for (int i = 0; i < workers; i++)
    pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < workers; i++)
    pthread_join(t[i], NULL);

  n = atomic_load(&nwaits);
  qsort(waits, (size_t)n, sizeof(*waits), cmp_double);
  for (int i = 0; i < n; i++)
    sum += waits[i];
  printf("\nacquisitions: %d of %d\n", n, workers * rounds);
  printf("max simultaneous holders observed: %d\n", atomic_load(&max_holders));
  if (n > 0)
    printf("wait: mean %.1f ms, p99 %.1f ms, max %.1f ms\n", sum / n,
           waits[(int)((n - 1) * 0.99)], waits[n - 1]);
  printf("elapsed: %.1f ms\n", (double)(now_us() - t0) / 1000.0);
  free(waits);
  free(t);
  if (atomic_load(&failures) || atomic_load(&max_holders) != 1 || n != workers * rounds) {
    printf("FAILED\n");
    return 1;
  }
  return 0;
}
