/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t tu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *tu_hosts(void) {
  const char *h = getenv("ZKR_TEST_STANDALONE");
  if (!h || !*h)
    h = getenv("ZKR_TEST_HOSTS");
  ck_assert_msg(h && *h, "no test server: run under tests/zk/with-zk.sh or set "
                         "ZKR_TEST_HOSTS");
  return h;
}

const char *tu_ensemble(void) {
  const char *h = getenv("ZKR_TEST_ENSEMBLE");
  return h && *h ? h : NULL;
}

const char *tu_zkdir(const char *which) {
  const char *d = getenv(strcmp(which, "ensemble") == 0 ? "ZKR_TEST_ZKDIR_ENSEMBLE"
                                                        : "ZKR_TEST_ZKDIR_STANDALONE");
  return d && *d && getenv("ZKR_ZKCTL") ? d : NULL;
}

int tu_zkctl(char *out, size_t outlen, const char *fmt, ...) {
  char args[512], cmd[1024];
  const char *ctl = getenv("ZKR_ZKCTL");
  va_list ap;
  FILE *p;
  size_t n = 0;
  int st;

  ck_assert_msg(ctl != NULL, "ZKR_ZKCTL not set");
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof(cmd), "%s %s", ctl, args);
  fflush(NULL);
  p = popen(cmd, "r");
  ck_assert_msg(p != NULL, "popen %s", cmd);
  if (out && outlen) {
    n = fread(out, 1, outlen - 1, p);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
      n--;
    out[n] = '\0';
  } else {
    char sink[256];
    while (fread(sink, 1, sizeof(sink), p) > 0)
      ;
  }
  st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

void tu_root(char *buf, size_t len) {
  static int n;
  snprintf(buf, len, "/zkrt-%d-%d", (int)getpid(), ++n);
}

zkr_session_t *tu_open(const char *hosts, int session_timeout_ms) {
  zkr_session_t *s = NULL;
  int rc = zkr_session_open(hosts, session_timeout_ms, 15000, &s);
  ck_assert_msg(rc == 0, "open %s: %s", hosts, zkr_errname(rc));
  return s;
}

static void quiet_log(const char *m) {
  (void)m;
}
static void ignore_watch(zhandle_t *zh, int type, int state, const char *path, void *c) {
  (void)zh, (void)type, (void)state, (void)path, (void)c;
}

/* Connect a second client with the victim's session id and password, then close
 * it: closing ends the session on the server. The victim reconnects as soon as
 * the clone takes its connection over and may take the session back before the
 * clone closes it (a disconnected client cannot send the close), so repeat until
 * a clone is told the session has expired. */
static void expire(const clientid_t *victim, const char *hosts) {
  for (int attempt = 0; attempt < 20; attempt++) {
    clientid_t id = *victim;
    zhandle_t *clone =
        zookeeper_init2(hosts, ignore_watch, 10000, &id, NULL, 0, quiet_log);
    int64_t deadline = tu_now_ms() + 15000;
    int st;

    ck_assert_ptr_nonnull(clone);
    while ((st = zoo_state(clone)) != ZOO_CONNECTED_STATE &&
           st != ZOO_EXPIRED_SESSION_STATE && tu_now_ms() < deadline)
      usleep(2000);
    zookeeper_close(clone);
    if (st == ZOO_EXPIRED_SESSION_STATE)
      return;
  }
  ck_abort_msg("could not expire session 0x%llx", (unsigned long long)victim->client_id);
}

void tu_expire(zkr_session_t *s, const char *hosts) {
  zhandle_t *zh = zkr_session_zhandle(s);
  clientid_t id;

  ck_assert_ptr_nonnull(zh);
  id = *zoo_client_id(zh);
  ck_assert_msg(id.client_id != 0, "session has no id yet");
  expire(&id, hosts);
}

void tu_rmr(zhandle_t *zh, const char *path) {
  struct String_vector kids = {0, NULL};
  char child[2048];

  if (zoo_get_children(zh, path, 0, &kids) == ZOK) {
    for (int i = 0; i < kids.count; i++) {
      snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "",
               kids.data[i]);
      tu_rmr(zh, child);
    }
    deallocate_String_vector(&kids);
  }
  zoo_delete(zh, path, -1);
}

int tu_nchildren(zhandle_t *zh, const char *path) {
  struct String_vector v = {0, NULL};
  int rc = zoo_get_children(zh, path, 0, &v), n;
  if (rc == ZNONODE)
    return 0;
  ck_assert_int_eq(rc, ZOK);
  n = v.count;
  deallocate_String_vector(&v);
  return n;
}

void tu_wait_children(zhandle_t *zh, const char *path, int n, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int have;
  while ((have = tu_nchildren(zh, path)) != n && tu_now_ms() < deadline)
    usleep(2000);
  ck_assert_msg(have == n, "%s has %d children, want %d", path, have, n);
}

void tu_rec_init(tu_rec_t *r) {
  memset(r, 0, sizeof(*r));
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
}

void tu_rec_destroy(tu_rec_t *r) {
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

void tu_rec_listener(zkr_session_t *s, int event, void *arg) {
  tu_rec_t *r = arg;
  int64_t sid = zkr_session_id(s);
  pthread_mutex_lock(&r->mu);
  if (r->n < TU_MAX_EVENTS) {
    r->ev[r->n] = event;
    r->sid[r->n] = sid;
    r->at_ms[r->n] = tu_now_ms();
    r->n++;
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int tu_rec_wait(tu_rec_t *r, int from, int ev, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  int found = -1;

  pthread_mutex_lock(&r->mu);
  for (;;) {
    for (int i = from; i < r->n; i++) {
      if (r->ev[i] == ev) {
        found = i;
        break;
      }
    }
    if (found >= 0 || tu_now_ms() >= deadline)
      break;
    {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
  }
  pthread_mutex_unlock(&r->mu);
  return found;
}

int tu_rec_count(tu_rec_t *r) {
  int n;
  pthread_mutex_lock(&r->mu);
  n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static char trace_buf[TU_TRACE_MAX];
static size_t trace_len;

static void trace_capture(void *arg, int level, const char *msg) {
  (void)arg;
  pthread_mutex_lock(&trace_mu);
  trace_len += (size_t)snprintf(trace_buf + trace_len, sizeof(trace_buf) - trace_len,
                                "%d %s\n", level, msg);
  if (trace_len >= sizeof(trace_buf))
    trace_len = sizeof(trace_buf) - 1;
  pthread_mutex_unlock(&trace_mu);
}

void tu_trace_start(int level) {
  pthread_mutex_lock(&trace_mu);
  trace_len = 0;
  trace_buf[0] = '\0';
  pthread_mutex_unlock(&trace_mu);
  zkr_log_set_callback(trace_capture, NULL, level);
}

int tu_trace_has(const char *needle) {
  int found;
  pthread_mutex_lock(&trace_mu);
  found = strstr(trace_buf, needle) != NULL;
  pthread_mutex_unlock(&trace_mu);
  return found;
}

void tu_trace_stop(char *out, size_t cap) {
  zkr_log_set_callback(NULL, NULL, 0);
  pthread_mutex_lock(&trace_mu);
  snprintf(out, cap, "%s", trace_buf);
  pthread_mutex_unlock(&trace_mu);
}

zkr_session_t *tu_cut_open(tu_cut_t *c, const char *hosts, const char *dir,
                           const char **others) {
  char one[64];
  zkr_session_t *s;

  memset(c, 0, sizeof(*c));
  c->dir = dir;
  snprintf(one, sizeof(one), "%.*s", (int)strcspn(hosts, ","), hosts);
  ck_assert_int_eq(tu_zkctl(c->member, sizeof(c->member), "member-of %s %s", dir, one), 0);
  tu_rec_init(&c->rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &c->rec, NULL), 0);
  ck_assert_int_eq(zkr_session_set_timeout(s, 40000), 0); /* outlives a restart */
  ck_assert_int_eq(zkr_session_connect(s, one, 15000), 0);
  *others = hosts + strlen(one) + 1;
  return s;
}

void tu_cut_off(tu_cut_t *c) {
  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s %s", c->dir, c->member), 0);
  c->susp = tu_rec_wait(&c->rec, 1, ZKR_SESSION_SUSPENDED, 15000);
  ck_assert_msg(c->susp > 0, "no SUSPENDED after member %s was killed", c->member);
}

void tu_cut_heal(tu_cut_t *c) {
  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s %s", c->dir, c->member), 0);
  ck_assert_msg(tu_rec_wait(&c->rec, c->susp + 1, ZKR_SESSION_RECONNECTED, 40000) > c->susp,
                "no RECONNECTED after member %s came back", c->member);
}

void tu_cut_destroy(tu_cut_t *c) {
  tu_rec_destroy(&c->rec);
}

int tu_session_watches(zkr_session_t *s, const char *path) {
  zhandle_t *zh = zkr_session_zhandle(s);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char buf[1 << 16], sid[32];
  size_t n = 0;
  ssize_t r;
  int fd, in = 0;
  const char *line;

  ck_assert_ptr_nonnull(zh);
  if (!zookeeper_get_connected_host(zh, (struct sockaddr *)&ss, &sl))
    return 0; /* not connected now */
  if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
    return 0;
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0 || write(fd, "wchc", 4) != 4) {
    close(fd);
    return 0;
  }
  while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  /* "0x<session id>\n\t<path>\n\t<path>\n..." per session */
  snprintf(sid, sizeof(sid), "0x%" PRIx64, zkr_session_id(s));
  for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] != '\t')
      in = strcmp(line, sid) == 0;
    else if (in && strcmp(line + 1, path) == 0)
      return 1;
  }
  return 0;
}

void tu_wait_watch(zkr_session_t *s, const char *path, int timeout_ms) {
  int64_t end = tu_now_ms() + timeout_ms;
  while (!tu_session_watches(s, path)) {
    ck_assert_msg(tu_now_ms() < end, "no watch on %s within %d ms", path, timeout_ms);
    usleep(5000);
  }
}
