/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the Check suites: where the test servers are, how to control
 * them, session expiry on the server, and an event recorder with deadlines. */
#ifndef ZKR_TESTUTIL_H
#define ZKR_TESTUTIL_H

#include <check.h>
#include <pthread.h>
#include <stdint.h>

#include "zkrecipes.h"

/* Host string of the standalone test server (ZKR_TEST_HOSTS or the one the
 * harness started). Fails the test when there is none. */
const char *tu_hosts(void);
/* Host string of the 3-node test ensemble, or NULL when there is none (the test
 * then reports itself as skipped and returns). */
const char *tu_ensemble(void);
/* State directory of a harness-started server ("standalone"/"ensemble") for
 * tu_zkctl, or NULL when the servers are not ours to control. */
const char *tu_zkdir(const char *which);

/* Run "zkctl.sh ARGS" (printf-style); returns its exit status. With out != NULL,
 * its stdout (trimmed) is copied there. */
int tu_zkctl(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A fresh root path for this test: "/zkrt-<pid>-<n>" (not created). */
void tu_root(char *buf, size_t len);

/* Open a session or fail the test. */
zkr_session_t *tu_open(const char *hosts, int session_timeout_ms);

/* Expire the session of s on the server: connect a second client with the same
 * session id and password, then close it; repeated until the server says the
 * session has expired. s learns of it when it next reconnects. Never waits for s,
 * so it may be called on s's own callback thread. */
void tu_expire(zkr_session_t *s, const char *hosts);

/* Number of children of path (0 when it does not exist). */
int tu_nchildren(zhandle_t *zh, const char *path);
/* Deadline-bounded wait until path has n children; fails the test otherwise. */
void tu_wait_children(zhandle_t *zh, const char *path, int n, int timeout_ms);

/* Whether the server s is connected to holds a watch (any kind) of s's
 * session on path: its "wchc" four-letter word (whitelisted by zkctl.sh). */
int tu_session_watches(zkr_session_t *s, const char *path);
/* Deadline-bounded wait until it does; fails the test otherwise. */
void tu_wait_watch(zkr_session_t *s, const char *path, int timeout_ms);

/* Delete path and everything under it (best effort, for cleanup). */
void tu_rmr(zhandle_t *zh, const char *path);

/* Records session events (with the session id seen at the time) for waiting. */
#define TU_MAX_EVENTS 64
typedef struct tu_rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
  int ev[TU_MAX_EVENTS];
  int64_t sid[TU_MAX_EVENTS];
  int64_t at_ms[TU_MAX_EVENTS];
} tu_rec_t;

void tu_rec_init(tu_rec_t *r);
void tu_rec_destroy(tu_rec_t *r);
/* A zkr_session_listener_fn; arg is a tu_rec_t. */
void tu_rec_listener(zkr_session_t *s, int event, void *arg);
/* Index of the first event == ev at index >= from, waiting at most timeout_ms;
 * -1 if it did not come. */
int tu_rec_wait(tu_rec_t *r, int from, int ev, int timeout_ms);
/* Number of events recorded so far. */
int tu_rec_count(tu_rec_t *r);

int64_t tu_now_ms(void);

/* Cutting one client off the ensemble (tests that need tu_ensemble() and
 * tu_zkdir("ensemble")). */
typedef struct tu_cut {
  const char *dir;
  char member[16]; /* the member the cut-off session knows */
  tu_rec_t rec;    /* that session's events */
  int susp;        /* index of its SUSPENDED in rec */
} tu_cut_t;
/* A session that knows one member of the ensemble only, with its events
 * recorded and a session timeout that outlives a restart; returns it and, in
 * *others, the other members (a host string, borrowed from hosts) for a
 * session that stays connected. */
zkr_session_t *tu_cut_open(tu_cut_t *c, const char *hosts, const char *dir,
                           const char **others);
/* Kill that member and wait until the session says SUSPENDED. */
void tu_cut_off(tu_cut_t *c);
/* Start it again and wait until the session says RECONNECTED. */
void tu_cut_heal(tu_cut_t *c);
void tu_cut_destroy(tu_cut_t *c);

/* Capture the library's log from level up ("<level> <message>" lines, the
 * first TU_TRACE_MAX bytes); tu_trace_stop removes the callback and copies
 * what was captured into out (NUL-terminated). */
#define TU_TRACE_MAX 16384
void tu_trace_start(int level);
int tu_trace_has(const char *needle);
void tu_trace_stop(char *out, size_t cap);

/* Skip the rest of a test with a visible note (Check has no skip status). */
#define TU_SKIP(why)                                                                     \
  do {                                                                                   \
    fprintf(stderr, "SKIP %s: %s\n", __func__, (why));                                   \
    return;                                                                              \
  } while (0)

#endif /* ZKR_TESTUTIL_H */
