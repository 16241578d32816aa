/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fault_client - the fault suite's workload and inspection program.
 *
 *   fault_client lock    OPTIONS   loop: acquire -> two writes to a fenced store -> release
 *   fault_client rwlock  OPTIONS   loop: read (two fenced reads) or write (two fenced
 *                                  writes, sometimes a downgrade and two reads)
 *   fault_client semaphore OPTIONS loop: one lease of 2 -> two writes to its slot's
 *                                  fenced store (native profile: no slot, no
 *                                  writes) -> release
 *   fault_client queue   OPTIONS   loop: put an item, take one and commit it; then
 *                                  drain the queue
 *   fault_client counter OPTIONS   loop: add 1
 *   fault_client elect   OPTIONS   stand for leader; while leading, append to a leader
 *                                  log with a guarded multi; resign now and then
 *   fault_client cwrite  OPTIONS   loop: set PATH to "w<seq>"; now and then create or
 *                                  delete a child of PATH-kids (about 24 of them), or
 *                                  delete and create PATH again
 *   fault_client cache   OPTIONS   follow PATH with a node cache and PATH-kids with a
 *                                  children cache (data); log every event; at the end,
 *                                  wait until both equal the server's state
 *   fault_client jwrite  OPTIONS   loop: write "j<seq>" through a journal on PATH; now
 *                                  and then trim it, keeping the newest 300 entries
 *   fault_client journal OPTIONS   follow the journal on PATH from its start; log every
 *                                  event; at the end, wait until the position is the
 *                                  server's newest entry
 *   fault_client member  OPTIONS   join the group PATH as NAME; loop: stay a member a
 *                                  while, leave, join again; log every step and event
 *   fault_client group   OPTIONS   follow the group PATH; log every event; at the end,
 *                                  wait until the view equals the server's children
 *   fault_client expire  -h HOSTS -S SESSION_FILE
 *                                  end the session named in SESSION_FILE on the server
 *   fault_client inspect -h HOSTS -p PATH
 *                                  print one JSON line: the children of PATH with their
 *                                  owners, and PATH's data as a counter
 *   fault_client count -h HOSTS -p PATH
 *                                  print one JSON line: for each child of PATH, the
 *                                  number of znodes in its subtree (itself included;
 *                                  a node of more than 500 children: not walked)
 *   fault_client fingerprint -h HOST -p PATH
 *                                  sync, then print one JSON line: the number of
 *                                  znodes under PATH and a sum over their stats
 *                                  (members of an ensemble that agree print the same)
 *
 * Options: -h hosts, -p path, -n name, -H history file, -S session file (rewritten
 * on every new session: "<id hex> <password hex>"), -d duration ms, -t session
 * timeout ms, -F fenced store file (lock), -L leader log path (elect), -o ops
 * (counter), -M at-most-once mode (counter), -g hold ms (lock), -s seed, -P
 * semaphore profile (curator, kazoo, native), -m heap file (the bytes in use,
 * rewritten every second; one more thread).
 *
 * A workload writes its history as JSON lines (one event per line, flushed at
 * once, times from CLOCK_MONOTONIC in ns, comparable across processes):
 *   {"t":..,"c":NAME,"sess":"0x..","op":OP,"type":"invoke|ok|fail|unknown|fenced",...}
 * and ends with a "done" line. Exit status 0 unless the program itself failed
 * (bad usage, the first connect failed): faults are for the checker to judge.
 */
#include <zkrecipes.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "recipes_internal.h" /* recipe counters (notifications, resolved writes) */

static const char *hosts, *path, *name = "client", *history_path, *session_file;
static const char *store_path, *log_path;
static int duration_ms = 20000, session_timeout_ms = 3000, ops = 1000000, hold_ms = 40;
static int at_most_once; /* -M: the counter in ZKR_COUNTER_AT_MOST_ONCE mode */
static unsigned seed = 1;

static FILE *hist;
static pthread_mutex_t hist_mu = PTHREAD_MUTEX_INITIALIZER;
static zkr_session_t *sess;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void fatal(const char *what, int rc) {
  fprintf(stderr, "fault_client %s: %s: %s\n", name, what, zkr_strerror(rc));
  exit(1);
}

/* One history line: the common fields, then the caller's (already JSON) extra. */
static void event(const char *op, const char *type, const char *fmt, ...) {
  char extra[512] = "";
  if (!hist)
    return; /* inspect and expire keep no history */
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    extra[0] = ',';
    vsnprintf(extra + 1, sizeof(extra) - 1, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_lock(&hist_mu);
  fprintf(hist, "{\"t\":%" PRId64 ",\"c\":\"%s\",\"sess\":\"0x%" PRIx64
                "\",\"op\":\"%s\",\"type\":\"%s\"%s}\n",
          now_ns(), name, sess ? (uint64_t)zkr_session_id(sess) : 0, op, type, extra);
  fflush(hist);
  pthread_mutex_unlock(&hist_mu);
}

/* ---- session: publish id and password for the expiry nemesis ---- */

static void publish_session(zkr_session_t *s) {
  zhandle_t *zh = zkr_session_zhandle(s);
  const clientid_t *id = zh ? zoo_client_id(zh) : NULL;
  char tmp[4096];
  FILE *f;

  if (!session_file || !id || id->client_id == 0)
    return;
  snprintf(tmp, sizeof(tmp), "%s.tmp", session_file);
  if (!(f = fopen(tmp, "w")))
    return;
  fprintf(f, "%" PRIx64 " ", (uint64_t)id->client_id);
  for (size_t i = 0; i < sizeof(id->passwd); i++)
    fprintf(f, "%02x", (unsigned char)id->passwd[i]);
  fprintf(f, "\n");
  fclose(f);
  rename(tmp, session_file);
}

static void on_session(zkr_session_t *s, int ev, void *arg) {
  (void)arg;
  if (ev == ZKR_SESSION_CONNECTED)
    publish_session(s);
  if (ev != ZKR_SESSION_CLOSED)
    event("session", zkr_session_event_name(ev), NULL);
}

static void open_session(void) {
  int rc = zkr_session_new(&sess);
  if (rc != 0 || (rc = zkr_session_set_timeout(sess, session_timeout_ms)) != 0 ||
      zkr_session_add_listener(sess, on_session, NULL, NULL) != 0)
    fatal("session", rc ? rc : ZKR_EINVAL);
  if ((rc = zkr_session_connect(sess, hosts, 30000)) != 0)
    fatal("connect", rc);
  publish_session(sess);
}

/* Own nodes left under dir once the workload stopped: wait up to 10 s for the
 * library's clean-up, then count what remains. */
static int own_nodes_left(const char *dir) {
  int64_t deadline = now_ns() + 10 * 1000000000LL;
  int left = -1;
  for (;;) {
    zkr_contender_t *list = NULL;
    int n = 0, rc = zkr_contenders_list(sess, dir, 5000, &list, &n);
    if (rc == 0 || rc == ZNONODE) {
      left = 0;
      for (int i = 0; i < n; i++)
        if (list[i].owner_session == zkr_session_id(sess)) {
          left++;
          if (now_ns() > deadline) /* name what stays, for the report */
            event("orphan", "info", "\"node\":\"%s\",\"czxid\":%" PRId64, list[i].name,
                  list[i].czxid);
        }
      zkr_contenders_free(list, n);
      if (left == 0 || now_ns() > deadline)
        return left;
    }
    if (now_ns() > deadline)
      return left; /* could not list */
    sleep_ms(100);
  }
}

/* ---- lock workload ---- */

/* The fenced store: a file holding the highest token accepted so far, updated
 * under flock(2); a write with a lower token is rejected. Accepted writes are
 * appended to <store>.log as "token name t". Returns 1 accepted, 0 rejected. */
static int store_write(int64_t token, int64_t *highest_out) {
  int fd = open(store_path, O_RDWR | O_CREAT, 0644), ok = 0;
  char buf[64] = "";
  int64_t highest = -1;
  ssize_t n;

  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    perror("fault_client: store");
    exit(1);
  }
  n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n > 0) {
    buf[n] = '\0';
    highest = strtoll(buf, NULL, 10);
  }
  if (token >= highest) {
    char logp[4096], line[128];
    int lf;
    int len = snprintf(buf, sizeof(buf), "%" PRId64 "\n", token);
    if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len) != 0) {
      perror("fault_client: store write");
      exit(1);
    }
    snprintf(logp, sizeof(logp), "%s.log", store_path);
    lf = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
    len = snprintf(line, sizeof(line), "%" PRId64 " %s %" PRId64 "\n", token, name, now_ns());
    if (lf < 0 || write(lf, line, (size_t)len) != len) {
      perror("fault_client: store log");
      exit(1);
    }
    close(lf);
    ok = 1;
  }
  *highest_out = highest;
  flock(fd, LOCK_UN);
  close(fd);
  return ok;
}

static void on_lock_event(zkr_lock_t *l, int ev, void *arg) {
  (void)l, (void)arg;
  event("lock-event", ev == ZKR_LOCK_SUSPECT     ? "SUSPECT"
                      : ev == ZKR_LOCK_RECOVERED ? "RECOVERED"
                      : ev == ZKR_LOCK_LOST      ? "LOST"
                                                 : "?",
        NULL);
}

static void store_step(int64_t token, int k) {
  int64_t highest;
  if (store_write(token, &highest))
    event("write", "ok", "\"token\":%" PRId64 ",\"k\":%d", token, k);
  else
    event("write", "fenced", "\"token\":%" PRId64 ",\"highest\":%" PRId64 ",\"k\":%d", token,
          highest, k);
}

/* SIGUSR1: hold the current (or next) grant for 8 s, writing all along, so that a
 * pause or partition of the holder outlasts its session while it still writes. */
static volatile sig_atomic_t extend_hold;
static void on_usr1(int sig) {
  (void)sig;
  extend_hold = 1;
}

static int run_lock(void) {
  zkr_lock_t *l;
  int rc;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr__queue_stats_t st;

  if ((rc = zkr_lock_new(sess, path, &l)) != 0)
    fatal("lock", rc);
  {
    /* Only this thread takes SIGUSR1 (the library's threads were started with it
     * blocked, see main). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    signal(SIGUSR1, on_usr1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  }
  zkr_lock_set_listener(l, on_lock_event, NULL);
  while (now_ns() < end) {
    zkr_lock_token_t tok;
    event("acquire", "invoke", NULL);
    rc = zkr_lock_acquire(l, 12000);
    if (rc != 0) {
      event("acquire", "fail", "\"err\":\"%s\"", zkr_errname(rc));
      sleep_ms(50);
      continue;
    }
    zkr_lock_token(l, &tok);
    event("acquire", "ok", "\"token\":%" PRId64 ",\"node\":\"%s\"", tok.czxid, tok.node);
    /* Two writes with the grant's token, hold_ms apart. The holder writes whatever
     * it was told meanwhile (like a client that does not watch for SUSPECT): a
     * stale write must be refused by the store, not avoided by luck. */
    {
      int64_t t0 = now_ns();
      int k = 0, extend = 0;
      do {
        if (k > 0)
          sleep_ms(hold_ms);
        store_step(tok.czxid, ++k);
        if (extend_hold && !extend) {
          extend = 1; /* the nemesis asked for a long hold: keep writing for 8 s */
          extend_hold = 0;
          event("hold", "extend", "\"token\":%" PRId64, tok.czxid);
        }
      } while (k < 2 || (extend && now_ns() - t0 < 8000000000LL));
    }
    event("release", "invoke", NULL);
    rc = zkr_lock_release(l, 4000);
    if (rc == 0)
      event("release", "ok", NULL);
    else
      event("release", "fail", "\"err\":\"%s\"", zkr_errname(rc));
    sleep_ms((int)(rand_r(&seed) % 20));
  }
  zkr__lock_stats(l, &st);
  event("stats", "info",
        "\"grants\":%" PRIu64 ",\"notifications\":%" PRIu64 ",\"lists\":%" PRIu64
        ",\"recoveries\":%" PRIu64 ",\"verify_failed\":%" PRIu64,
        st.grants, st.notifications, st.lists, st.recoveries, st.verify_failed);
  zkr_lock_free(l);
  event("orphans", "info", "\"n\":%d", own_nodes_left(path));
  return 0;
}

/* ---- read/write lock workload ---- */

/* A read from the fenced store: accepted iff no write with a higher token was
 * accepted (a stale reader's view is refused); accepted reads go to
 * <store>.rlog as "token name t". Returns 1 accepted. */
static int store_read(int64_t token, int64_t *highest_out) {
  int fd = open(store_path, O_RDWR | O_CREAT, 0644), ok = 0;
  char buf[64] = "";
  int64_t highest = -1;
  ssize_t n;

  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    perror("fault_client: store");
    exit(1);
  }
  n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n > 0) {
    buf[n] = '\0';
    highest = strtoll(buf, NULL, 10);
  }
  if (token >= highest) {
    char logp[4096], line[128];
    int lf, len;
    snprintf(logp, sizeof(logp), "%s.rlog", store_path);
    lf = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
    len = snprintf(line, sizeof(line), "%" PRId64 " %s %" PRId64 "\n", token, name, now_ns());
    if (lf < 0 || write(lf, line, (size_t)len) != len) {
      perror("fault_client: store read log");
      exit(1);
    }
    close(lf);
    ok = 1;
  }
  *highest_out = highest;
  flock(fd, LOCK_UN);
  close(fd);
  return ok;
}

static void read_step(int64_t token, int k) {
  int64_t highest;
  if (store_read(token, &highest))
    event("read", "ok", "\"token\":%" PRId64 ",\"k\":%d", token, k);
  else
    event("read", "fenced", "\"token\":%" PRId64 ",\"highest\":%" PRId64 ",\"k\":%d", token,
          highest, k);
}

/* Loop: a reader (two reads of the store) or, one time in three, a writer (two
 * writes; one writer in three then downgrades and reads twice as a reader). */
static int run_rwlock(void) {
  zkr_rwlock_t *rw;
  zkr_lock_t *sides[2];
  int rc;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;

  if ((rc = zkr_rwlock_new(sess, path, &rw)) != 0)
    fatal("rwlock", rc);
  sides[0] = zkr_rwlock_read(rw);
  sides[1] = zkr_rwlock_write(rw);
  zkr_lock_set_listener(sides[0], on_lock_event, NULL);
  zkr_lock_set_listener(sides[1], on_lock_event, NULL);
  while (now_ns() < end) {
    int writer = rand_r(&seed) % 3 == 0;
    zkr_lock_t *l = sides[writer];
    zkr_lock_token_t tok;
    event("acquire", "invoke", "\"side\":\"%s\"", writer ? "write" : "read");
    if ((rc = zkr_lock_acquire(l, 12000)) != 0) {
      event("acquire", "fail", "\"err\":\"%s\"", zkr_errname(rc));
      sleep_ms(50);
      continue;
    }
    zkr_lock_token(l, &tok);
    event("acquire", "ok", "\"side\":\"%s\",\"token\":%" PRId64, writer ? "write" : "read",
          tok.czxid);
    for (int k = 1; k <= 2; k++) {
      if (k > 1)
        sleep_ms(hold_ms);
      if (writer)
        store_step(tok.czxid, k);
      else
        read_step(tok.czxid, k);
    }
    if (writer && rand_r(&seed) % 3 == 0) {
      event("downgrade", "invoke", NULL);
      if ((rc = zkr_rwlock_downgrade(rw)) == 0 && zkr_lock_token(sides[0], &tok) == 0) {
        event("downgrade", "ok", "\"token\":%" PRId64, tok.czxid);
        l = sides[0];
        for (int k = 1; k <= 2; k++) {
          sleep_ms(hold_ms / 2);
          read_step(tok.czxid, k);
        }
      } else {
        event("downgrade", "fail", "\"err\":\"%s\"", zkr_errname(rc != 0 ? rc : ZKR_ELOST));
      }
    }
    event("release", "invoke", NULL);
    rc = zkr_lock_release(l, 4000);
    if (rc == 0)
      event("release", "ok", NULL);
    else
      event("release", "fail", "\"err\":\"%s\"", zkr_errname(rc));
    sleep_ms(50 + (int)(rand_r(&seed) % 50)); /* lighter than the lock: 30 clients, 2 cores */
  }
  zkr_rwlock_free(rw);
  event("orphans", "info", "\"n\":%d", own_nodes_left(path));
  return 0;
}

/* ---- semaphore workload ---- */

#define SEM_MAX 2
static int sem_profile = ZKR_SEMAPHORE_CURATOR; /* -P curator|kazoo|native */

/* The fenced store of a semaphore: one token file per slot (<store>.<slot>);
 * a write with a token below its slot's highest is refused. Accepted writes go
 * to <store>.log as "slot token name t". */
static int slot_write(int slot, int64_t token, int64_t *highest_out) {
  char p[4096], buf[64] = "";
  int fd, ok = 0;
  int64_t highest = -1;
  ssize_t n;

  snprintf(p, sizeof(p), "%s.%d", store_path, slot);
  if ((fd = open(p, O_RDWR | O_CREAT, 0644)) < 0 || flock(fd, LOCK_EX) != 0) {
    perror("fault_client: slot store");
    exit(1);
  }
  if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
    buf[n] = '\0';
    highest = strtoll(buf, NULL, 10);
  }
  if (token >= highest) {
    char line[160];
    int lf, len = snprintf(buf, sizeof(buf), "%" PRId64 "\n", token);
    if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len) != 0) {
      perror("fault_client: slot store write");
      exit(1);
    }
    snprintf(p, sizeof(p), "%s.log", store_path);
    lf = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    len = snprintf(line, sizeof(line), "%d %" PRId64 " %s %" PRId64 "\n", slot, token, name,
                   now_ns());
    if (lf < 0 || write(lf, line, (size_t)len) != len) {
      perror("fault_client: slot store log");
      exit(1);
    }
    close(lf);
    ok = 1;
  }
  *highest_out = highest;
  flock(fd, LOCK_UN);
  close(fd);
  return ok;
}

static int run_semaphore(void) {
  zkr_semaphore_t *sem;
  int rc;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;

  if ((rc = zkr_semaphore_new_profile(sess, path, SEM_MAX, sem_profile, &sem)) != 0)
    fatal("semaphore", rc);
  while (now_ns() < end) {
    zkr_lock_t *l;
    zkr_lock_token_t tok;
    int slot;
    event("acquire", "invoke", NULL);
    if ((rc = zkr_semaphore_acquire(sem, 1, 12000, &l)) != 0) {
      event("acquire", "fail", "\"err\":\"%s\"", zkr_errname(rc));
      sleep_ms(50);
      continue;
    }
    zkr_lock_set_listener(l, on_lock_event, NULL);
    zkr_lock_token(l, &tok);
    slot = zkr_lease_slot(l);
    event("acquire", "ok", "\"token\":%" PRId64 ",\"slot\":%d", tok.czxid, slot);
    for (int k = 1; k <= 2; k++) {
      int64_t highest;
      if (k > 1)
        sleep_ms(hold_ms);
      if (slot < 0 && sem_profile == ZKR_SEMAPHORE_NATIVE)
        ; /* no slot, no store: the grants' intervals are checked */
      else if (slot < 0)
        event("write", "noslot", NULL);
      else if (slot_write(slot, tok.czxid, &highest))
        event("write", "ok", "\"token\":%" PRId64 ",\"slot\":%d", tok.czxid, slot);
      else
        event("write", "fenced", "\"token\":%" PRId64 ",\"slot\":%d,\"highest\":%" PRId64,
              tok.czxid, slot, highest);
    }
    event("release", "invoke", NULL);
    rc = zkr_lock_release(l, 4000);
    if (rc == 0)
      event("release", "ok", NULL);
    else
      event("release", "fail", "\"err\":\"%s\"", zkr_errname(rc));
    zkr_lock_free(l);
    sleep_ms(50 + (int)(rand_r(&seed) % 50));
  }
  {
    char leases[4096];
    snprintf(leases, sizeof(leases), "%s%s", path,
             sem_profile == ZKR_SEMAPHORE_CURATOR ? "/leases" : "");
    event("swept", "info", "\"n\":%" PRIu64, zkr_semaphore_swept(sem));
    zkr_semaphore_free(sem);
    event("orphans", "info", "\"n\":%d", own_nodes_left(leases));
  }
  return 0;
}

/* ---- queue workload ---- */

/* Loop: put an item "<name>-<k>", take one, commit it; at the end (after the
 * run), take and commit until nothing is left for a while. Events: put
 * ok/fail (id), take ok (id, token), commit ok/lost/unknown/fail (id). */
static int run_queue(void) {
  zkr_queue_t *q;
  int rc, k = 0;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;

  if ((rc = zkr_queue_new(sess, path, ZKR_QUEUE_SIMPLE, &q)) != 0)
    fatal("queue", rc);
  for (int draining = 0, idle = 0; !draining || idle < 3;) {
    zkr_item_t *it;
    if (!draining && now_ns() >= end) {
      draining = 1;
      event("drain", "info", NULL);
    }
    if (!draining) {
      char id[128];
      int n = snprintf(id, sizeof(id), "%s-%d", name, k++);
      event("put", "invoke", "\"id\":\"%s\"", id);
      if ((rc = zkr_queue_put(q, id, n, 0, 8000, NULL, 0)) == 0)
        event("put", "ok", "\"id\":\"%s\"", id);
      else
        event("put", "fail", "\"id\":\"%s\",\"err\":\"%s\"", id, zkr_errname(rc));
    }
    event("take", "invoke", NULL);
    if ((rc = zkr_queue_take(q, draining ? 1500 : 4000, &it)) != 0) {
      event("take", "fail", "\"err\":\"%s\"", zkr_errname(rc));
      idle += draining && rc == ZKR_ETIMEDOUT;
      if (rc != ZKR_ETIMEDOUT)
        sleep_ms(50);
      continue;
    }
    idle = 0;
    event("take", "ok", "\"id\":\"%s\",\"token\":%" PRId64, zkr_item_data(it, NULL),
          zkr_item_token(it));
    sleep_ms((int)(rand_r(&seed) % (unsigned)(hold_ms + 1)));
    rc = zkr_item_commit(it, NULL, 0, NULL, 8000);
    event("commit", rc == 0                ? "ok"
                    : rc == ZKR_ELOST      ? "lost"
                    : rc == ZKR_EUNKNOWN || rc == ZKR_ETIMEDOUT ? "unknown"
                                           : "fail",
          "\"id\":\"%s\",\"err\":\"%s\"", zkr_item_data(it, NULL), zkr_errname(rc));
    zkr_item_free(it);
    if (!draining) /* paced as the other workloads: the ensemble is shared */
      sleep_ms(50 + (int)(rand_r(&seed) % 50));
  }
  zkr_queue_free(q);
  {
    char claims[4096];
    snprintf(claims, sizeof(claims), "%s-claims", path);
    event("orphans", "info", "\"n\":%d", own_nodes_left(claims));
  }
  return 0;
}

/* ---- counter workload ---- */

static int run_counter(void) {
  zkr_counter_t *c;
  zkr__counter_stats_t st;
  int rc;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;

  if ((rc = zkr_counter_new(sess, path, ZKR_COUNTER_INT64, &c)) != 0 ||
      (at_most_once && (rc = zkr_counter_set_mode(c, ZKR_COUNTER_AT_MOST_ONCE)) != 0))
    fatal("counter", rc);
  for (int i = 0; i < ops && now_ns() < end; i++) {
    int64_t v = 0;
    event("add", "invoke", NULL);
    rc = zkr_counter_add(c, 1, 4000, &v);
    if (rc == 0)
      event("add", "ok", "\"value\":%" PRId64, v);
    else if (rc == ZKR_EUNKNOWN)
      event("add", "unknown", "\"err\":\"%s\"", zkr_errname(rc));
    else
      event("add", "fail", "\"err\":\"%s\"", zkr_errname(rc));
    sleep_ms(5 + (int)(rand_r(&seed) % 10));
  }
  zkr__counter_stats(c, &st);
  event("stats", "info",
        "\"writes\":%" PRIu64 ",\"conflicts\":%" PRIu64 ",\"ambiguous\":%" PRIu64
        ",\"resolved_applied\":%" PRIu64 ",\"resolved_not_applied\":%" PRIu64
        ",\"unknown\":%" PRIu64,
        st.writes, st.conflicts, st.ambiguous, st.resolved_applied, st.resolved_not_applied,
        st.unknown);
  zkr_counter_free(c);
  return 0;
}

/* ---- election workload ---- */

static pthread_mutex_t el_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t believed_epoch; /* what the listener told us last; 0 = not leading */

static void on_election(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  static const char *names[] = {"?", "LEADER", "NOT_LEADER", "SUSPECT", "RECOVERED", "LOST"};
  (void)e, (void)arg;
  event("elect-event", ev >= 1 && ev <= 5 ? names[ev] : "?", "\"epoch\":%" PRId64, epoch);
  pthread_mutex_lock(&el_mu);
  if (ev == ZKR_ELECTION_LEADER)
    believed_epoch = epoch;
  else if (ev == ZKR_ELECTION_NOT_LEADER || ev == ZKR_ELECTION_LOST)
    believed_epoch = 0;
  pthread_mutex_unlock(&el_mu);
}

/* zoo_multi, through zoo_amulti: the C client's synchronous zoo_multi leaks
 * the per-op records of a transaction whose connection was lost (seen with
 * LeakSanitizer in this suite); its asynchronous form does not. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, rc;
} multi_wait_t;

static void multi_done(int rc, const void *data) {
  multi_wait_t *w = (multi_wait_t *)data;
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static int multi_wait(zhandle_t *zh, int n, const zoo_op_t *op, zoo_op_result_t *res) {
  multi_wait_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  int rc = zoo_amulti(zh, n, op, res, multi_done, &w);
  if (rc != ZOK)
    return rc;
  /* The C client calls every completion once: with the reply, or with the
   * error that ended the connection or the handle. */
  pthread_mutex_lock(&w.mu);
  while (!w.done)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  return w.rc;
}

/* One leader-log entry: a sequential node under log_path whose data is
 * "epoch name", created only together with the leadership guard. */
static void append_entry(zkr_election_t *e, int64_t epoch, int k) {
  zhandle_t *zh = zkr_session_zhandle(sess);
  zoo_op_t op[2];
  zoo_op_result_t res[2];
  char data[128], node[4096], created[4096];
  int len, rc;

  len = snprintf(data, sizeof(data), "%" PRId64 " %s %d", epoch, name, k);
  snprintf(node, sizeof(node), "%s/e-", log_path);
  event("append", "invoke", "\"epoch\":%" PRId64 ",\"k\":%d", epoch, k);
  rc = zkr_election_guard(e, &op[0]);
  if (rc != 0) {
    /* The library knows it does not lead (any more): nothing was sent. */
    event("append", "fail", "\"epoch\":%" PRId64 ",\"err\":\"%s\"", epoch, zkr_errname(rc));
    return;
  }
  zoo_create_op_init(&op[1], node, data, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, created,
                     sizeof(created));
  rc = zh ? multi_wait(zh, 2, op, res) : ZKR_ECLOSED;
  if (rc == ZOK)
    event("append", "ok", "\"epoch\":%" PRId64 ",\"node\":\"%s\"", epoch, created);
  else if (rc == ZNONODE || rc == ZBADVERSION)
    event("append", "fenced", "\"epoch\":%" PRId64 ",\"err\":\"%s\"", epoch, zkr_errname(rc));
  else if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
    event("append", "unknown", "\"epoch\":%" PRId64 ",\"err\":\"%s\"", epoch, zkr_errname(rc));
  else
    event("append", "fail", "\"epoch\":%" PRId64 ",\"err\":\"%s\"", epoch, zkr_errname(rc));
}

static int run_elect(void) {
  zkr_election_t *e;
  int rc, k = 0;
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000, led_since = 0, last = 0;

  if (!log_path)
    fatal("elect needs -L", ZKR_EINVAL);
  {
    /* the log node and its parents, persistent (a fault may be on: a lost
     * connection is tried again, for up to 20 s) */
    char p[4096];
    int64_t give_up = now_ns() + 20 * 1000000000LL;
    snprintf(p, sizeof(p), "%s", log_path);
    for (char *slash = strchr(p + 1, '/');; slash = strchr(slash + 1, '/')) {
      if (slash)
        *slash = '\0';
      do {
        zhandle_t *zh = zkr_session_zhandle(sess);
        rc = zh ? zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0)
                : ZCONNECTIONLOSS;
        if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED)
          sleep_ms(100);
        else
          break;
      } while (now_ns() < give_up);
      if (rc != ZOK && rc != ZNODEEXISTS)
        fatal("leader log", rc);
      if (!slash)
        break;
      *slash = '/';
    }
  }
  if ((rc = zkr_election_new(sess, path, name, (int)strlen(name), &e)) != 0)
    fatal("election", rc);
  zkr_election_set_listener(e, on_election, NULL);
  zkr_election_set_rejoin(e, 1);
  if ((rc = zkr_election_start(e)) != 0)
    fatal("election start", rc);
  while (now_ns() < end) {
    int64_t epoch;
    pthread_mutex_lock(&el_mu);
    epoch = believed_epoch;
    pthread_mutex_unlock(&el_mu);
    if (epoch != last) {
      last = epoch;
      led_since = now_ns();
    }
    if (epoch == 0) {
      sleep_ms(10);
      continue;
    }
    /* Lead for about a second, appending every 40 ms, then hand over. */
    append_entry(e, epoch, ++k);
    if (now_ns() - led_since > 1000000000LL + (int64_t)(rand_r(&seed) % 500) * 1000000) {
      event("resign", "invoke", "\"epoch\":%" PRId64, epoch);
      rc = zkr_election_resign(e, 1);
      event("resign", rc == 0 ? "ok" : "fail", "\"err\":\"%s\"", zkr_errname(rc));
      pthread_mutex_lock(&el_mu);
      if (believed_epoch == epoch)
        believed_epoch = 0;
      pthread_mutex_unlock(&el_mu);
      sleep_ms(100);
      continue;
    }
    sleep_ms(40);
  }
  {
    zkr__queue_stats_t st;
    zkr__election_stats(e, &st);
    event("stats", "info", "\"grants\":%" PRIu64 ",\"notifications\":%" PRIu64, st.grants,
          st.notifications);
  }
  zkr_election_free(e);
  event("orphans", "info", "\"n\":%d", own_nodes_left(path));
  return 0;
}

/* ---- expire: end a session on the server ---- */

static void quiet(const char *m) {
  (void)m;
}

/* Connect with the victim's id and password, then close: the close ends the
 * session. The victim may take the session back before the clone closes it, so
 * repeat until a clone is told the session has expired (or give up after 20). */
static int run_expire(void) {
  char line[256];
  clientid_t id;
  FILE *f = fopen(session_file, "r");
  unsigned long long cid;
  char pw[64];

  if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "%llx %63s", &cid, pw) != 2 ||
      strlen(pw) != 2 * sizeof(id.passwd)) {
    fprintf(stderr, "fault_client expire: cannot read %s\n", session_file);
    return 1;
  }
  fclose(f);
  memset(&id, 0, sizeof(id));
  id.client_id = (int64_t)cid;
  for (size_t i = 0; i < sizeof(id.passwd); i++) {
    unsigned b;
    sscanf(pw + 2 * i, "%2x", &b);
    id.passwd[i] = (char)b;
  }
  for (int attempt = 0; attempt < 20; attempt++) {
    clientid_t c = id;
    zhandle_t *zh = zookeeper_init2(hosts, NULL, session_timeout_ms, &c, NULL, 0, quiet);
    int64_t deadline = now_ns() + 10 * 1000000000LL;
    int st = 0;
    if (!zh)
      return 1;
    while ((st = zoo_state(zh)) != ZOO_CONNECTED_STATE && st != ZOO_EXPIRED_SESSION_STATE &&
           now_ns() < deadline)
      sleep_ms(2);
    zookeeper_close(zh);
    if (st == ZOO_EXPIRED_SESSION_STATE) {
      printf("expired 0x%llx after %d attempt(s)\n", cid, attempt + 1);
      return 0;
    }
  }
  fprintf(stderr, "fault_client expire: could not expire 0x%llx\n", cid);
  return 1;
}

/* ---- cache workloads ---- */

static char kids_path[1100];

/* A sync write through the session's current handle. */
static zhandle_t *zh_now(void) {
  return zkr_session_zhandle(sess);
}

/* The writer's children stay near KIDS_TARGET: it first creates that many,
 * then each child operation creates with probability (2T - n) / 2T and
 * deletes otherwise, so the count wanders around T instead of climbing to a
 * cap (a soak reads a climb as growth). */
#define KIDS_TARGET 24

static int run_cwrite(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  int live[64], nlive = 0, next_kid = 0;
  char val[32], kid[1200];

  snprintf(kids_path, sizeof(kids_path), "%s-kids", path);
  for (int seq = 1; seq <= ops && now_ns() < end; seq++) {
    int r = (int)(rand_r(&seed) % 100), rc;
    int grow = (int)(rand_r(&seed) % (2 * KIDS_TARGET)) >= nlive;
    struct Stat st;
    zhandle_t *zh = zh_now();
    if (!zh) {
      sleep_ms(20);
      continue;
    }
    if (nlive < KIDS_TARGET && seq <= KIDS_TARGET) /* the first children */
      r = 60, grow = 1;
    if (r < 60) {
      snprintf(val, sizeof(val), "w%d", seq);
      event("set", "invoke", "\"data\":\"%s\"", val);
      rc = zoo_set2(zh, path, val, (int)strlen(val), -1, &st);
      if (rc == ZNONODE)
        rc = zoo_create(zh, path, val, (int)strlen(val), &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
      event("set", rc == ZOK ? "ok" : rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT
                                          ? "unknown"
                                          : "fail",
            "\"data\":\"%s\",\"err\":\"%s\"", val, zkr_errname(rc));
    } else if (r < 97 && (grow || nlive == 0) && nlive < 64) {
      int k = next_kid++;
      snprintf(kid, sizeof(kid), "%s/k%d", kids_path, k);
      snprintf(val, sizeof(val), "k%d-%d", k, seq);
      event("kid-create", "invoke", "\"name\":\"k%d\",\"data\":\"%s\"", k, val);
      rc = zoo_create(zh, kid, val, (int)strlen(val), &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
      if (rc == ZNONODE) { /* the parent, on first use */
        zoo_create(zh, kids_path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        rc = zoo_create(zh, kid, val, (int)strlen(val), &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
      }
      /* (one whose outcome is unknown may be there: deleted later too) */
      if (rc == ZOK || rc == ZNODEEXISTS || rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
        live[nlive++] = k;
      event("kid-create", rc == ZOK ? "ok" : "other", "\"name\":\"k%d\",\"err\":\"%s\"", k,
            zkr_errname(rc));
    } else if (r < 97) {
      int i = (int)(rand_r(&seed) % (unsigned)nlive);
      snprintf(kid, sizeof(kid), "%s/k%d", kids_path, live[i]);
      rc = zoo_delete(zh, kid, -1);
      event("kid-delete", rc == ZOK ? "ok" : "other", "\"name\":\"k%d\",\"err\":\"%s\"",
            live[i], zkr_errname(rc));
      if (rc == ZOK || rc == ZNONODE) /* (else it may still be there: again later) */
        live[i] = live[--nlive];
    } else {
      /* The node deleted and made again: caches must say REPLACED (or DELETED,
       * then CREATED), never a mere change. */
      snprintf(val, sizeof(val), "w%d", seq);
      zoo_delete(zh, path, -1);
      rc = zoo_create(zh, path, val, (int)strlen(val), &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
      event("replace", rc == ZOK ? "ok" : "other", "\"data\":\"%s\",\"err\":\"%s\"", val,
            zkr_errname(rc));
    }
    sleep_ms(5 + (int)(rand_r(&seed) % 15));
  }
  return 0;
}

static void log_cache_event(const char *op, const zkr_cache_event_t *ev) {
  char data[64] = "";
  if (ev->data && ev->len > 0 && ev->len < (int)sizeof(data) &&
      !memchr(ev->data, '"', (size_t)ev->len) && !memchr(ev->data, '\\', (size_t)ev->len))
    snprintf(data, sizeof(data), "%.*s", ev->len, ev->data);
  event(op, zkr_cache_event_name(ev->type),
        "\"path\":\"%s\",\"exists\":%d,\"data\":\"%s\",\"czxid\":%" PRId64
        ",\"mzxid\":%" PRId64 ",\"version\":%d,\"gap\":%d,\"missed\":%d",
        ev->path, ev->exists, data, ev->stat.czxid, ev->stat.mzxid, ev->stat.version, ev->gap,
        ev->missed);
}

static void on_node_event(zkr_node_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c, (void)arg;
  log_cache_event("node-event", ev);
}

static void on_kids_event(zkr_children_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c, (void)arg;
  log_cache_event("kids-event", ev);
}

/* 1 when the caches hold what the server holds now (read on a fresh handle, so
 * that the comparison does not depend on the cache's own session). */
static int caches_match(zhandle_t *zh, zkr_node_cache_t *nc, zkr_children_cache_t *kc,
                        char *why, size_t whylen) {
  char sdata[256], *cdata = NULL;
  int slen = sizeof(sdata), clen = -1, src, crc, match = 1, n = 0;
  struct Stat sst, cst;
  struct String_vector sv = {0, NULL};
  zkr_cache_child_t *kids = NULL;

  src = zoo_get(zh, path, 0, sdata, &slen, &sst);
  crc = zkr_node_cache_get(nc, &cdata, &clen, &cst);
  if (src != crc || (src == ZOK && (sst.mzxid != cst.mzxid || sst.czxid != cst.czxid))) {
    snprintf(why, whylen, "node: server %s mzxid %" PRId64 ", cache %s mzxid %" PRId64,
             zkr_errname(src), src == ZOK ? sst.mzxid : 0, zkr_errname(crc),
             crc == 0 ? cst.mzxid : 0);
    match = 0;
  }
  free(cdata);
  src = zoo_get_children(zh, kids_path, 0, &sv);
  crc = zkr_children_cache_list(kc, &kids, &n);
  if (match && src != crc && !(src == ZOK && crc == 0)) {
    snprintf(why, whylen, "kids: server %s, cache %s", zkr_errname(src), zkr_errname(crc));
    match = 0;
  } else if (match && src == ZOK) {
    if (sv.count != n) {
      snprintf(why, whylen, "kids: server %d, cache %d", sv.count, n);
      match = 0;
    }
    for (int i = 0; match && i < sv.count; i++) {
      int found = 0;
      for (int j = 0; j < n && !found; j++)
        found = !strcmp(sv.data[i], kids[j].name);
      if (!found) {
        snprintf(why, whylen, "kids: %s not in the cache", sv.data[i]);
        match = 0;
      }
    }
  }
  deallocate_String_vector(&sv);
  zkr_cache_children_free(kids, n);
  return match;
}

/* After the run: a handle of its own (so that the comparison does not depend
 * on the workload's session), then match() until it holds twice, 300 ms apart
 * (a writer's last change may still be on its way), for at most 20 s. Logs a
 * "converge" event with the time it took. */
typedef int (*match_fn)(zhandle_t *zh, void *arg, char *why, size_t whylen);
static void converge(match_fn match, void *arg) {
  zhandle_t *check = zookeeper_init2(hosts, NULL, 10000, NULL, NULL, 0, quiet);
  int64_t t0 = now_ns();
  char why[256] = "";
  int ok = 0;

  while (check && zoo_state(check) != ZOO_CONNECTED_STATE && now_ns() - t0 < 10000000000LL)
    sleep_ms(5);
  t0 = now_ns();
  while (check && now_ns() - t0 < 20000000000LL) {
    if (match(check, arg, why, sizeof(why))) {
      sleep_ms(300);
      if (match(check, arg, why, sizeof(why))) {
        ok = 1;
        break;
      }
    }
    sleep_ms(20);
  }
  event("converge", ok ? "ok" : "fail", "\"ms\":%" PRId64 ",\"why\":\"%s\"",
        (now_ns() - t0) / 1000000, ok ? "" : why);
  if (check)
    zookeeper_close(check);
}

typedef struct caches {
  zkr_node_cache_t *nc;
  zkr_children_cache_t *kc;
} caches_t;

static int caches_match_fn(zhandle_t *zh, void *arg, char *why, size_t whylen) {
  caches_t *c = arg;
  return caches_match(zh, c->nc, c->kc, why, whylen);
}

static int run_cache(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr_node_cache_t *nc;
  zkr_children_cache_t *kc;
  int rc;

  snprintf(kids_path, sizeof(kids_path), "%s-kids", path);
  if ((rc = zkr_node_cache_new(sess, path, &nc)) != 0 ||
      (rc = zkr_node_cache_set_listener(nc, on_node_event, NULL)) != 0 ||
      (rc = zkr_node_cache_start(nc)) != 0 ||
      (rc = zkr_children_cache_new(sess, kids_path, ZKR_CHILDREN_DATA, &kc)) != 0 ||
      (rc = zkr_children_cache_set_listener(kc, on_kids_event, NULL)) != 0 ||
      (rc = zkr_children_cache_start(kc)) != 0)
    fatal("caches", rc);
  while (now_ns() < end)
    sleep_ms(50);
  /* The writers stop at about this time too; the caches must come to the
   * server's state within the bound. */
  {
    caches_t both = {nc, kc};
    converge(caches_match_fn, &both);
  }
  zkr_node_cache_free(nc);
  zkr_children_cache_free(kc);
  return 0;
}

/* ---- journal workloads ---- */

static int run_jwrite(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr_journal_t *j;
  char val[32];
  int rc;

  if ((rc = zkr_journal_new(sess, path, &j)) != 0)
    fatal("journal", rc);
  for (int seq = 1; seq <= ops && now_ns() < end; seq++) {
    int64_t at = -1, deleted = 0;
    snprintf(val, sizeof(val), "j%d", seq);
    event("jwrite", "invoke", "\"data\":\"%s\"", val);
    rc = zkr_journal_write(j, val, (int)strlen(val), -1, 2000, &at);
    event("jwrite", rc == 0 ? "ok" : rc == ZKR_EUNKNOWN ? "unknown" : "fail",
          "\"data\":\"%s\",\"seq\":%" PRId64 ",\"err\":\"%s\"", val, at, zkr_errname(rc));
    if (seq % 100 == 0) {
      event("jtrim", "invoke", NULL);
      rc = zkr_journal_trim(j, INT64_MAX, 300, 2000, &deleted);
      event("jtrim", rc == 0 ? "ok" : "fail", "\"deleted\":%" PRId64 ",\"err\":\"%s\"",
            deleted, zkr_errname(rc));
    }
    sleep_ms(2 + (int)(rand_r(&seed) % 10));
  }
  {
    zkr__journal_stats_t st;
    zkr__journal_stats(j, &st);
    event("jstats", "info",
          "\"ambiguous\":%" PRIu64 ",\"found\":%" PRIu64 ",\"rewritten\":%" PRIu64
          ",\"unknown\":%" PRIu64,
          st.ambiguous, st.found, st.rewritten, st.unknown);
  }
  zkr_journal_free(j);
  return 0;
}

static _Atomic int64_t jpos = -1;

static void on_journal_event(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  char data[32] = "";
  (void)j, (void)arg;
  if (ev->data && ev->len > 0 && ev->len < (int)sizeof(data) &&
      !memchr(ev->data, '"', (size_t)ev->len) && !memchr(ev->data, '\\', (size_t)ev->len))
    snprintf(data, sizeof(data), "%.*s", ev->len, ev->data);
  event("journal-event", zkr_journal_event_name(ev->type),
        "\"seq\":%" PRId64 ",\"from\":%" PRId64 ",\"data\":\"%s\"", ev->seq, ev->from, data);
  if (ev->type == ZKR_JOURNAL_ENTRY || ev->type == ZKR_JOURNAL_TRIMMED)
    atomic_store(&jpos, ev->seq);
}

/* The newest entry's sequence on the server (-1: none), or -2 if unknown. */
static int64_t journal_head(zhandle_t *zh) {
  char jp[1200];
  struct String_vector sv = {0, NULL};
  int64_t max = -1;
  snprintf(jp, sizeof(jp), "%s.zkr-journal", path);
  int rc = zoo_get_children(zh, jp, 0, &sv);
  if (rc == ZNONODE)
    return -1;
  if (rc != ZOK)
    return -2;
  for (int i = 0; i < sv.count; i++) {
    const char *d = strrchr(sv.data[i], '-');
    int64_t q = d ? strtoll(d + 1, NULL, 10) : -1;
    max = q > max ? q : max;
  }
  deallocate_String_vector(&sv);
  return max;
}

static int journal_match(zhandle_t *zh, void *arg, char *why, size_t whylen) {
  int64_t head = journal_head(zh), pos = atomic_load(&jpos);
  (void)arg;
  snprintf(why, whylen, "position %" PRId64 ", newest entry %" PRId64, pos, head);
  return head >= -1 && pos >= head;
}

static int run_journal(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr_journal_t *j;
  int rc;

  if ((rc = zkr_journal_new(sess, path, &j)) != 0 ||
      (rc = zkr_journal_follow(j, -1, on_journal_event, NULL)) != 0)
    fatal("journal", rc);
  while (now_ns() < end)
    sleep_ms(50);
  converge(journal_match, NULL);
  zkr_journal_free(j);
  return 0;
}

/* ---- membership workloads ---- */

static void on_member_event(zkr_member_t *m, int ev, int64_t epoch, void *arg) {
  (void)m, (void)arg;
  event("member-event",
        ev == ZKR_MEMBER_JOINED  ? "JOINED"
        : ev == ZKR_MEMBER_LEFT  ? "LEFT"
        : ev == ZKR_MEMBER_DUPLICATE ? "DUPLICATE"
                                     : "?",
        "\"epoch\":%" PRId64, epoch);
}

static int run_member(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr_member_t *m;
  int rc;

  if ((rc = zkr_member_new(sess, path, name, ZKR_GROUP_CURATOR, &m)) != 0 ||
      (rc = zkr_member_set_data(m, name, (int)strlen(name))) != 0 ||
      (rc = zkr_member_set_listener(m, on_member_event, NULL)) != 0)
    fatal("member", rc);
  while (now_ns() < end) {
    int64_t epoch = 0;
    event("join", "invoke", NULL);
    rc = zkr_member_join(m, 5000, &epoch);
    event("join", rc == 0 ? "ok" : "fail", "\"epoch\":%" PRId64 ",\"err\":\"%s\"", epoch,
          zkr_errname(rc));
    if (rc == ZKR_EDUPLICATE)
      break; /* a violation for the checker; nothing more to do */
    sleep_ms(1000 + (int)(rand_r(&seed) % 3000));
    if (now_ns() >= end)
      break;
    event("leave", "invoke", NULL);
    rc = zkr_member_leave(m, 5000);
    event("leave", rc == 0 ? "ok" : "other", "\"err\":\"%s\"", zkr_errname(rc));
    sleep_ms(200 + (int)(rand_r(&seed) % 800));
  }
  event("final", zkr_member_is_member(m) ? "member" : "out", NULL);
  zkr_member_free(m);
  return 0;
}

static void on_group_event(zkr_group_t *g, int ev, const zkr_group_member_t *mb, void *arg) {
  (void)g, (void)arg;
  event("group-event", zkr_cache_event_name(ev),
        "\"id\":\"%s\",\"epoch\":%" PRId64 ",\"owner\":\"0x%" PRIx64 "\"",
        mb && !strpbrk(mb->id, "\"\\") ? mb->id : "", mb ? mb->epoch : 0,
        mb ? (uint64_t)mb->owner : 0);
}

static int group_match(zhandle_t *zh, void *arg, char *why, size_t whylen) {
  zkr_group_t *g = arg;
  struct String_vector sv = {0, NULL};
  zkr_group_member_t *list = NULL;
  int n = 0, src = zoo_get_children(zh, path, 0, &sv), crc = zkr_group_list(g, &list, &n),
      match = 1;

  if (src == ZNONODE)
    sv.count = 0;
  else if (src != ZOK) {
    snprintf(why, whylen, "server: %s", zkr_errname(src));
    match = 0;
  }
  if (match && crc != 0 && crc != ZNONODE) {
    snprintf(why, whylen, "view: %s", zkr_errname(crc));
    match = 0;
  }
  if (match && sv.count != n) {
    snprintf(why, whylen, "server %d members, view %d", sv.count, n);
    match = 0;
  }
  for (int i = 0; match && i < sv.count; i++) {
    int found = 0;
    for (int j = 0; j < n && !found; j++)
      found = !strcmp(sv.data[i], list[j].node);
    if (!found) {
      snprintf(why, whylen, "%s not in the view", sv.data[i]);
      match = 0;
    }
  }
  if (src == ZOK)
    deallocate_String_vector(&sv);
  zkr_group_members_free(list, n);
  return match;
}

static int run_group(void) {
  int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
  zkr_group_t *g;
  int rc;

  if ((rc = zkr_group_new(sess, path, &g)) != 0 ||
      (rc = zkr_group_set_listener(g, on_group_event, NULL)) != 0 ||
      (rc = zkr_group_start(g)) != 0)
    fatal("group", rc);
  while (now_ns() < end)
    sleep_ms(50);
  /* The members stop about now: their nodes go as they leave. */
  converge(group_match, g);
  zkr_group_free(g);
  return 0;
}

/* ---- inspect: children with owners, and the node's data as a counter ---- */

static int run_inspect(void) {
  zkr_contender_t *list = NULL;
  int n = 0, rc;
  char data[64];
  int len = sizeof(data);
  struct Stat stat;
  long long value = -1;

  rc = zkr_contenders_list(sess, path, 10000, &list, &n);
  if (rc != 0 && rc != ZNONODE)
    fatal("inspect list", rc);
  printf("{\"children\":[");
  for (int i = 0; i < n; i++)
    printf("%s{\"name\":\"%s\",\"owner\":\"0x%" PRIx64 "\",\"czxid\":%" PRId64
           ",\"data\":\"%s\"}",
           i ? "," : "", list[i].name, (uint64_t)list[i].owner_session, list[i].czxid,
           list[i].data_len > 0 && !strpbrk(list[i].data, "\"\\") ? list[i].data : "");
  zkr_contenders_free(list, n);
  rc = zoo_get(zkr_session_zhandle(sess), path, 0, data, &len, &stat);
  if (rc == ZOK && len == 8) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
      u = u << 8 | (unsigned char)data[i];
    value = (long long)u;
  }
  printf("],\"value\":%lld,\"exists\":%d}\n", value, rc == ZOK);
  return 0;
}

/* ---- count: znodes per subtree under PATH (the soak's growth check) ---- */

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* Znodes in the subtree at p. With fp, also folds each node's stat into *fp
 * (a sum, so the order of the walk does not matter): two servers that hold
 * the same tree give the same sum. */
static long count_tree(zhandle_t *zh, const char *p, uint64_t *fp) {
  struct String_vector kids = {0, NULL};
  struct Stat st;
  long n = 1;
  int rc = zoo_get_children2(zh, p, 0, &kids, &st);
  if (rc == ZNONODE)
    return 0; /* gone meanwhile */
  if (rc != ZOK)
    fatal("count list", rc);
  if (fp)
    *fp += mix64((uint64_t)st.czxid ^ mix64((uint64_t)st.mzxid ^ mix64((uint64_t)st.pzxid)) ^
                 ((uint64_t)st.version << 32 | (uint32_t)st.cversion) ^
                 (uint64_t)st.ephemeralOwner);
  if (kids.count > 500) { /* a log of leaves (the leader log): not walked */
    n += kids.count;
    deallocate_String_vector(&kids);
    return n;
  }
  for (int i = 0; i < kids.count; i++) {
    size_t len = strlen(p) + strlen(kids.data[i]) + 2;
    char *c = malloc(len);
    if (!c)
      fatal("count", ZKR_ENOMEM);
    snprintf(c, len, "%s/%s", strcmp(p, "/") ? p : "", kids.data[i]);
    n += count_tree(zh, c, fp);
    free(c);
  }
  deallocate_String_vector(&kids);
  return n;
}

static int run_count(void) {
  zhandle_t *zh = zkr_session_zhandle(sess);
  struct String_vector kids = {0, NULL};
  int rc = zoo_get_children(zh, path, 0, &kids);
  if (rc != ZOK && rc != ZNONODE)
    fatal("count list", rc);
  printf("{");
  for (int i = 0; i < kids.count; i++) {
    char c[1024];
    snprintf(c, sizeof(c), "%s/%s", path, kids.data[i]);
    printf("%s\"%s\":%ld", i ? "," : "", kids.data[i], count_tree(zh, c, NULL));
  }
  printf("}\n");
  deallocate_String_vector(&kids);
  return 0;
}

/* ---- fingerprint: what one server holds under PATH ---- */

static void on_synced(int rc, const char *value, const void *data) {
  (void)value;
  *(volatile int *)data = rc;
}

/* After a sync (the server has every write committed before it), prints
 * {"zxid":Z,"znodes":N,"fp":"HEX"}: the number of znodes under PATH and a
 * sum over their stats. Meant for a handle on one member: members that
 * agree print the same line; a member whose data diverged (lost or extra
 * transactions) prints another, and keeps printing it. */
static int run_fingerprint(void) {
  zhandle_t *zh = zkr_session_zhandle(sess);
  volatile int synced = INT_MIN;
  int64_t deadline = now_ns() + 10 * 1000000000LL;
  uint64_t fp = 0;
  long n;
  int rc = zoo_async(zh, path, on_synced, (const void *)&synced);
  if (rc != ZOK)
    fatal("fingerprint sync", rc);
  while (synced == INT_MIN && now_ns() < deadline)
    sleep_ms(2);
  if (synced != ZOK && synced != ZNONODE)
    fatal("fingerprint sync", synced == INT_MIN ? ZOPERATIONTIMEOUT : synced);
  n = count_tree(zh, path, &fp);
  printf("{\"znodes\":%ld,\"fp\":\"%016" PRIx64 "\"}\n", n, fp);
  return 0;
}

/* ---- -m FILE: the heap in use, for the soak ---- */

/* RSS also counts memory the allocator keeps after free() and pages touched
 * once; the bytes in use (mallinfo2: arena chunks in use plus mmapped
 * blocks) are what a leak makes grow. Written to FILE (replaced atomically)
 * every second: "<in use bytes> <arena bytes> <mmapped bytes>". */
static const char *heap_file;

static void *heap_reporter(void *arg) {
  char tmp[1200];
  (void)arg;
  snprintf(tmp, sizeof(tmp), "%s.tmp", heap_file);
  for (;;) {
    struct mallinfo2 mi = mallinfo2();
    FILE *f = fopen(tmp, "w");
    if (f) {
      fprintf(f, "%zu %zu %zu\n", mi.uordblks + mi.hblkhd, mi.arena, mi.hblkhd);
      if (fclose(f) == 0)
        rename(tmp, heap_file);
    }
    sleep_ms(1000);
  }
  return NULL;
}

static void usage(void) __attribute__((noreturn));
static void usage(void) {
  fprintf(stderr, "usage: fault_client lock|rwlock|semaphore|queue|counter|elect|cwrite|cache|jwrite|journal|member|group|expire|inspect|count|fingerprint -h HOSTS [-p PATH] "
                  "[-n NAME] [-H HISTORY] [-S SESSION_FILE] [-d MS] [-t MS] [-F STORE] "
                  "[-L LOG_PATH] [-o OPS] [-M] [-g HOLD_MS] [-s SEED] [-P PROFILE] [-m HEAP_FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mode;
  int opt, rc;

  if (argc < 2)
    usage();
  mode = argv[1];
  optind = 2;
  while ((opt = getopt(argc, argv, "h:p:n:H:S:d:t:F:L:o:Mg:s:P:m:")) != -1) {
    switch (opt) {
    case 'h': hosts = optarg; break;
    case 'p': path = optarg; break;
    case 'n': name = optarg; break;
    case 'm': heap_file = optarg; break;
    case 'H': history_path = optarg; break;
    case 'S': session_file = optarg; break;
    case 'd': duration_ms = atoi(optarg); break;
    case 't': session_timeout_ms = atoi(optarg); break;
    case 'F': store_path = optarg; break;
    case 'L': log_path = optarg; break;
    case 'o': ops = atoi(optarg); break;
    case 'M': at_most_once = 1; break;
    case 'g': hold_ms = atoi(optarg); break;
    case 's': seed = (unsigned)strtoul(optarg, NULL, 10); break;
    case 'P':
      for (sem_profile = 0; zkr_semaphore_profile_name(sem_profile) &&
                            strcmp(zkr_semaphore_profile_name(sem_profile), optarg);
           sem_profile++)
        ;
      if (!zkr_semaphore_profile_name(sem_profile))
        usage();
      break;
    default: usage();
    }
  }
  if (!hosts)
    usage();
  if (strcmp(mode, "expire") == 0) {
    if (!session_file)
      usage();
    return run_expire();
  }
  if (!path)
    usage();
  hist = history_path ? fopen(history_path, "a") : stdout;
  if (!hist) {
    perror(history_path);
    return 1;
  }
  if (strcmp(mode, "inspect") == 0 || strcmp(mode, "count") == 0 ||
      strcmp(mode, "fingerprint") == 0) {
    hist = NULL;
    open_session();
    rc = strcmp(mode, "inspect") == 0 ? run_inspect()
         : strcmp(mode, "count") == 0 ? run_count()
                                      : run_fingerprint();
    zkr_session_free(sess);
    return rc;
  }
  if ((strcmp(mode, "lock") == 0 || strcmp(mode, "rwlock") == 0 ||
       strcmp(mode, "semaphore") == 0) &&
      !store_path)
    usage();
  {
    sigset_t set; /* threads started from here on inherit SIGUSR1 blocked */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
  }
  open_session();
  if (heap_file) {
    pthread_t t;
    if (pthread_create(&t, NULL, heap_reporter, NULL) == 0)
      pthread_detach(t);
  }
  event("start", "info", "\"mode\":\"%s\",\"pid\":%d", mode, (int)getpid());
  if (strcmp(mode, "lock") == 0)
    rc = run_lock();
  else if (strcmp(mode, "rwlock") == 0)
    rc = run_rwlock();
  else if (strcmp(mode, "semaphore") == 0)
    rc = run_semaphore();
  else if (strcmp(mode, "counter") == 0)
    rc = run_counter();
  else if (strcmp(mode, "elect") == 0)
    rc = run_elect();
  else if (strcmp(mode, "cwrite") == 0)
    rc = run_cwrite();
  else if (strcmp(mode, "cache") == 0)
    rc = run_cache();
  else if (strcmp(mode, "jwrite") == 0)
    rc = run_jwrite();
  else if (strcmp(mode, "member") == 0)
    rc = run_member();
  else if (strcmp(mode, "group") == 0)
    rc = run_group();
  else if (strcmp(mode, "journal") == 0)
    rc = run_journal();
  else if (strcmp(mode, "queue") == 0)
    rc = run_queue();
  else
    usage();
  event("done", "info", NULL);
  zkr_session_free(sess);
  sess = NULL;
  if (hist != stdout)
    fclose(hist);
  return rc;
}
