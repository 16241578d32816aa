/* SPDX-License-Identifier: Apache-2.0 */
/*
 * counter - several workers, each on its own session, increment one shared
 * counter at the same time.
 *
 *   counter [-w WORKERS] [-n INCREMENTS] [-p PATH] [HOSTS]
 *
 * HOSTS defaults to $ZKR_HOSTS, then 127.0.0.1:2181. Prints the final value next to
 * the expected one, and how many version conflicts were retried.
 */
#define _DEFAULT_SOURCE /* getopt, clock_gettime, usleep under -std=c11 too */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <zkrecipes.h>

static const char *hosts = "127.0.0.1:2181";
static const char *path;
static int workers = 4, increments = 100;
static _Atomic uint64_t conflicts;
static _Atomic int failures;

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg, rc;
  zkr_session_t *s;
  zkr_counter_t *c;

  if ((rc = zkr_session_open(hosts, 10000, 10000, &s)) != 0) {
    fprintf(stderr, "worker %d: connect: %s\n", id, zkr_strerror(rc));
    atomic_fetch_add(&failures, 1);
    return NULL;
  }
  if ((rc = zkr_counter_new(s, path, ZKR_COUNTER_INT64, &c)) != 0) {
    fprintf(stderr, "worker %d: counter: %s\n", id, zkr_strerror(rc));
    atomic_fetch_add(&failures, 1);
    zkr_session_free(s);
    return NULL;
  }
  for (int i = 0; i < increments; i++) {
    if ((rc = zkr_counter_add(c, 1, 30000, NULL)) != 0) {
      /* ZKR_EUNKNOWN would mean: maybe applied. Never retried blindly. */
      fprintf(stderr, "worker %d: add: %s (%s)\n", id, zkr_strerror(rc), zkr_errname(rc));
      atomic_fetch_add(&failures, 1);
    }
  }
  atomic_fetch_add(&conflicts, zkr_counter_conflicts(c));
  zkr_counter_free(c);
  zkr_session_free(s);
  return NULL;
}

int main(int argc, char **argv) {
  char defpath[64];
  pthread_t *t;
  zkr_session_t *s;
  zkr_counter_t *c;
  int64_t start = 0, final = 0;
  struct timespec t0, t1;
  int opt, rc;

  if (getenv("ZKR_HOSTS"))
    hosts = getenv("ZKR_HOSTS");
  snprintf(defpath, sizeof(defpath), "/zkrecipes-demo/counter-%ld", (long)getpid());
  path = defpath;
  while ((opt = getopt(argc, argv, "w:n:p:h")) != -1) {
    switch (opt) {
    case 'w': workers = atoi(optarg); break;
    case 'n': increments = atoi(optarg); break;
    case 'p': path = optarg; break;
    default:
      fprintf(stderr, "usage: %s [-w WORKERS] [-n INCREMENTS] [-p PATH] [HOSTS]\n",
              argv[0]);
      return 2;
    }
  }
  if (optind < argc)
    hosts = argv[optind];
  if (workers < 1 || increments < 1) {
    fprintf(stderr, "counter: workers and increments must be positive\n");
    return 2;
  }
  if ((rc = zkr_session_open(hosts, 10000, 10000, &s)) != 0 ||
      (rc = zkr_counter_new(s, path, ZKR_COUNTER_INT64, &c)) != 0 ||
      (rc = zkr_counter_get(c, 10000, &start)) != 0) {
    fprintf(stderr, "counter: %s: %s\n", hosts, zkr_strerror(rc));
    return 1;
  }
  printf("%d workers x %d increments on %s (%s), starting at %" PRId64 "\n", workers,
         increments, path, hosts, start);
  t = calloc((size_t)workers, sizeof(*t));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < workers; i++)
    pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < workers; i++)
    pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if ((rc = zkr_counter_get(c, 10000, &final)) != 0)
    fprintf(stderr, "counter: get: %s\n", zkr_strerror(rc));
  printf("final value:  %" PRId64 "\n", final);
  printf("expected:     %" PRId64 "\n", start + (int64_t)workers * increments);
  printf("conflicts retried: %" PRIu64 "\n", (uint64_t)atomic_load(&conflicts));
  printf("elapsed: %.1f ms\n",
         (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  zkr_counter_free(c);
  zkr_session_free(s);
  free(t);
  if (rc != 0 || atomic_load(&failures) ||
      final != start + (int64_t)workers * increments) {
    printf("FAILED\n");
    return 1;
  }
  return 0;
}
