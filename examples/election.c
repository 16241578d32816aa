/* SPDX-License-Identifier: Apache-2.0 */
/*
 * election - three candidate processes elect a leader; the leader works while it
 * leads. Then the leader is stopped gracefully (it resigns), and the next leader
 * is killed (SIGKILL: its session has to expire on the server). Each hand-over
 * and its duration are printed.
 *
 *   election [-p PATH] [-t SESSION_TIMEOUT_MS] [HOSTS]
 *
 * HOSTS defaults to $ZKR_HOSTS, then 127.0.0.1:2181. The parent only observes
 * (zkr_election_leader); the candidates are forked children.
 */
#define _DEFAULT_SOURCE /* getopt, clock_gettime, usleep under -std=c11 too */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zkrecipes.h>

#define CANDIDATES 3

static const char *hosts = "127.0.0.1:2181";
static const char *path;
static int session_ms = 2000;
static volatile sig_atomic_t stop;
static struct timespec t0;

static double ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
}

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static void on_event(zkr_election_t *e, int event, int64_t epoch, void *arg) {
  static const char *names[] = {"",        "LEADER",    "NOT_LEADER",
                                "SUSPECT", "RECOVERED", "LOST"};
  (void)e;
  printf("%8.1f ms  %s: %s", ms(), (const char *)arg,
         event >= 1 && event <= 5 ? names[event] : "?");
  if (event == ZKR_ELECTION_LEADER)
    printf(" (epoch %" PRId64 ")", epoch);
  printf("\n");
}

/* A candidate process: joins, works while it leads, leaves on SIGTERM. */
static int candidate(int i) {
  char id[32];
  zkr_session_t *s;
  zkr_election_t *e;
  double last = 0;
  int rc;

  snprintf(id, sizeof(id), "candidate-%d", i);
  signal(SIGTERM, on_term);
  if ((rc = zkr_session_open(hosts, session_ms, 10000, &s)) != 0 ||
      (rc = zkr_election_new(s, path, id, (int)strlen(id), &e)) != 0 ||
      (rc = zkr_election_set_listener(e, on_event, id)) != 0 ||
      (rc = zkr_election_start(e)) != 0) {
    fprintf(stderr, "%s: %s\n", id, zkr_strerror(rc));
    return 1;
  }
  while (!stop) {
    if (zkr_election_is_leader(e) && ms() - last >= 250) {
      last = ms();
      printf("%8.1f ms  %s: working as leader\n", last, id);
    }
    usleep(20 * 1000);
  }
  printf("%8.1f ms  %s: stopping (leaves the election)\n", ms(), id);
  zkr_election_free(e);
  zkr_session_free(s);
  return 0;
}

/* Observer: the leader's id, "" if none. */
static void current_leader(zkr_session_t *s, char *out, size_t len) {
  char *id = NULL;
  out[0] = '\0';
  if (zkr_election_leader(s, path, 5000, &id, NULL) == 0) {
    snprintf(out, len, "%s", id);
    free(id);
  }
}

static double wait_new_leader(zkr_session_t *s, const char *old, char *now, size_t len) {
  double start = ms();
  for (;;) {
    current_leader(s, now, len);
    if (now[0] && strcmp(now, old) != 0)
      return ms() - start;
    if (ms() - start > 60000)
      return -1;
    usleep(2 * 1000);
  }
}

int main(int argc, char **argv) {
  char defpath[64], leader[64], next[64];
  pid_t pid[CANDIDATES];
  zkr_session_t *s;
  int opt, rc, failed = 0;
  double d;

  if (getenv("ZKR_HOSTS"))
    hosts = getenv("ZKR_HOSTS");
  snprintf(defpath, sizeof(defpath), "/zkrecipes-demo/election-%ld", (long)getpid());
  path = defpath;
  while ((opt = getopt(argc, argv, "p:t:h")) != -1) {
    switch (opt) {
    case 'p': path = optarg; break;
    case 't': session_ms = atoi(optarg); break;
    default:
      fprintf(stderr, "usage: %s [-p PATH] [-t SESSION_TIMEOUT_MS] [HOSTS]\n", argv[0]);
      return 2;
    }
  }
  if (optind < argc)
    hosts = argv[optind];
  setvbuf(stdout, NULL, _IOLBF, 0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  printf("%d candidates on %s (%s), session timeout %d ms\n", CANDIDATES, path, hosts,
         session_ms);
  /* Fork before this process starts any library thread. */
  for (int i = 0; i < CANDIDATES; i++) {
    fflush(stdout);
    if ((pid[i] = fork()) == 0)
      _exit(candidate(i));
    usleep(100 * 1000); /* join in order */
  }
  if ((rc = zkr_session_open(hosts, 10000, 10000, &s)) != 0) {
    fprintf(stderr, "election: %s\n", zkr_strerror(rc));
    return 1;
  }
  leader[0] = '\0';
  if (wait_new_leader(s, "", leader, sizeof(leader)) < 0) {
    fprintf(stderr, "election: no leader\n");
    failed = 1;
    goto out;
  }
  usleep(1000 * 1000); /* let it work */

  /* 1. Graceful: the leader is asked to stop and resigns. */
  printf("%8.1f ms  observer: stopping %s gracefully\n", ms(), leader);
  kill(pid[leader[strlen(leader) - 1] - '0'], SIGTERM);
  d = wait_new_leader(s, leader, next, sizeof(next));
  printf("%8.1f ms  observer: hand-over %s -> %s took %.1f ms (graceful)\n", ms(), leader,
         next, d);
  failed |= d < 0;
  snprintf(leader, sizeof(leader), "%s", next);
  usleep(1000 * 1000);

  /* 2. Crash: the leader is killed; the server expires its session. */
  printf("%8.1f ms  observer: killing %s (SIGKILL)\n", ms(), leader);
  kill(pid[leader[strlen(leader) - 1] - '0'], SIGKILL);
  d = wait_new_leader(s, leader, next, sizeof(next));
  printf("%8.1f ms  observer: hand-over %s -> %s took %.1f ms (session expiry)\n", ms(),
         leader, next, d);
  failed |= d < 0;
  usleep(700 * 1000);

out:
  for (int i = 0; i < CANDIDATES; i++) {
    int st;
    kill(pid[i], SIGTERM);
    while (waitpid(pid[i], &st, 0) < 0 && errno == EINTR)
      ;
  }
  zkr_session_free(s);
  if (failed)
    printf("FAILED\n");
  return failed;
}
