/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkr - ZooKeeper recipes from the shell: a distributed flock, leader-only
 * commands, counters and lock/election inspection, built on libzkrecipes.
 *
 * Process model of `lock` and `elect`: zkr takes the lock (or waits for
 * leadership), runs CMD as a child in its own process group with the fencing
 * token in ZKR_FENCE, and watches two things at once: the child, and the
 * ownership events of the recipe (delivered on a library thread and handed to
 * the main thread through a self-pipe, as is SIGCHLD). If ownership is lost, or
 * uncertain for longer than the grace period, the child's group gets SIGTERM and,
 * if it is still there after the kill-after period, SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zkrecipes.h>

/* Exit codes (also in the help text). CMD's own status passes through otherwise. */
#define EXIT_USAGE       64 /* bad command line */
#define EXIT_UNAVAILABLE 69 /* cannot connect */
#define EXIT_FAILURE_ZK  70 /* ZooKeeper refused or failed; outcome unknown */
#define EXIT_BUSY        75 /* lock held elsewhere / not leader within -w / cas mismatch */
#define EXIT_LOST        79 /* lock or leadership lost while CMD ran; CMD terminated */

static const char *prog = "zkr";
static zkr_session_t *g_session; /* closed on the way out, so our nodes go at once */

static struct {
  const char *hosts;
  int session_ms;
  int connect_ms;
  const char *auth;
  int verbose;
  int int32;
  double wait_s; /* -w: -1 forever */
  const char *id;
  double grace_s; /* -1: the negotiated session timeout */
  double kill_after_s;
} opt = {NULL, 10000, 15000, NULL, 0, 0, -1, NULL, -1, 10};

static void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  /* Closing the session deletes our ephemeral nodes now rather than when the
   * server expires the session. */
  zkr_session_free(g_session);
  exit(code);
}

static void log_to_stderr(void *arg, int level, const char *msg) {
  static const char *names[] = {"", "error", "warn", "info", "debug"};
  (void)arg;
  fprintf(stderr, "%s: [%s] %s\n", prog, level >= 1 && level <= 4 ? names[level] : "?",
          msg);
}

/* ---- help ---- */

static const char *usage_main =
    "usage: zkr [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "ZooKeeper coordination recipes from the shell.\n"
    "\n"
    "Commands:\n"
    "  lock PATH [-w SEC] [--id ID] -- CMD [ARGS...]   run CMD while holding a lock\n"
    "  elect PATH --id ID [-w SEC] -- CMD [ARGS...]    run CMD while leading an "
    "election\n"
    "  counter PATH get|add N|set N|cas OLD NEW       read or change a shared counter\n"
    "  holders PATH                                   who holds and who waits\n"
    "  help [COMMAND]                                 this text, or a command's\n"
    "\n"
    "Options:\n"
    "  -H, --hosts HOSTS           host:port[,host:port...][/chroot]\n"
    "                              (default: $ZKR_HOSTS, else 127.0.0.1:2181)\n"
    "  -s, --session-timeout MS    session timeout (default 10000)\n"
    "  -c, --connect-timeout MS    give up connecting after MS (default 15000)\n"
    "  -a, --auth USER:PASS        digest credentials (default: $ZKR_AUTH; prefer the\n"
    "                              variable, it stays out of ps)\n"
    "  -v, --verbose               log to stderr (-vv: debug)\n"
    "  -h, --help                  help; --version: the version\n"
    "\n"
    "Exit status: 0 on success; for lock and elect, CMD's status (128+N if it was\n"
    "killed by signal N); 64 usage error; 69 cannot connect; 70 ZooKeeper error or\n"
    "outcome unknown; 75 held elsewhere, not leader in time, or cas mismatch;\n"
    "79 lock or leadership lost while CMD ran (CMD was terminated).\n";

static const char *usage_lock =
    "usage: zkr [OPTIONS] lock PATH [-w SEC] [--id ID] [--grace SEC] [--kill-after SEC]\n"
    "                       -- CMD [ARGS...]\n"
    "\n"
    "Like flock(1), with a ZooKeeper lock: wait for the lock at PATH, run CMD while it\n"
    "is held, release it when CMD exits, and exit with CMD's status. The lock is a\n"
    "Curator-compatible ephemeral sequential node (shared with Curator, go-zookeeper\n"
    "and kazoo clients on the same path).\n"
    "\n"
    "CMD's environment gets ZKR_FENCE (the fencing token: it grows with every grant;\n"
    "have the resource reject smaller ones), ZKR_LOCK_PATH and ZKR_LOCK_NODE.\n"
    "\n"
    "  -w, --wait SEC        give up after SEC seconds (0: fail at once if held\n"
    "                        elsewhere) with exit status 75; default: wait forever\n"
    "  --id ID               data of the lock node (default: hostname:pid)\n"
    "  --grace SEC           how long a lost connection is ridden out before the lock\n"
    "                        counts as lost (default: the session timeout)\n"
    "  --kill-after SEC      SIGKILL CMD this long after SIGTERM (default 10)\n"
    "\n"
    "If the lock is lost while CMD runs (the session expired, or the connection was\n"
    "lost for longer than the grace), CMD's process group gets SIGTERM, then SIGKILL,\n"
    "and zkr exits with status 79. SIGINT, SIGTERM and SIGHUP sent to zkr are passed\n"
    "on to CMD.\n";

static const char *usage_elect =
    "usage: zkr [OPTIONS] elect PATH --id ID [-w SEC] [--grace SEC] [--kill-after SEC]\n"
    "                       -- CMD [ARGS...]\n"
    "\n"
    "Join the leader election at PATH as ID, wait until this candidate leads, then\n"
    "run CMD; leave the election when CMD exits and exit with CMD's status. The\n"
    "candidate is a Curator LeaderLatch-compatible node whose data is ID.\n"
    "\n"
    "CMD's environment gets ZKR_FENCE and ZKR_EPOCH (the leadership's epoch: it grows\n"
    "with every new leadership) and ZKR_ELECTION_PATH.\n"
    "\n"
    "  --id ID               participant id (required)\n"
    "  -w, --wait SEC        give up after SEC seconds with exit status 75\n"
    "  --grace SEC, --kill-after SEC   as for lock\n"
    "\n"
    "If leadership is lost while CMD runs, CMD is terminated as for lock and zkr\n"
    "exits with status 79.\n";

static const char *usage_counter =
    "usage: zkr [OPTIONS] counter PATH [--int32] get | add N | set N | cas OLD NEW\n"
    "\n"
    "Read or change the shared counter at PATH and print the resulting value (for a\n"
    "cas that does not match, the current value, with exit status 75). The counter\n"
    "is an 8-byte big-endian integer, as Curator's DistributedAtomicLong writes it;\n"
    "--int32 uses 4 bytes, as Curator's SharedCount and kazoo's Counter with\n"
    "support_curator=True do. A missing node reads as 0 and is created by the first\n"
    "write. Exit status 70 with \"outcome unknown\" means the change may or may not\n"
    "have been applied (never twice); zkr does not retry it.\n";

static const char *usage_holders =
    "usage: zkr [OPTIONS] holders PATH\n"
    "\n"
    "List the children of a lock or election path in queue order: the first one\n"
    "holds the lock or leads. For each: its sequence, owner session, the library\n"
    "format that wrote it, its name and its data. Children in no known format are\n"
    "listed last and marked unknown.\n";

static void help(const char *cmd, FILE *to) {
  if (!cmd)
    fputs(usage_main, to);
  else if (!strcmp(cmd, "lock"))
    fputs(usage_lock, to);
  else if (!strcmp(cmd, "elect"))
    fputs(usage_elect, to);
  else if (!strcmp(cmd, "counter"))
    fputs(usage_counter, to);
  else if (!strcmp(cmd, "holders"))
    fputs(usage_holders, to);
  else
    fputs(usage_main, to);
}

/* ---- parsing ---- */

static double parse_seconds(const char *what, const char *s) {
  char *end;
  double v;
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end || v < 0 || v > 1e7)
    die(EXIT_USAGE, "%s: not a number of seconds: '%s'", what, s);
  return v;
}

static int parse_int(const char *what, const char *s, long lo, long hi) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    die(EXIT_USAGE, "%s: not a number in %ld..%ld: '%s'", what, lo, hi, s);
  return (int)v;
}

static int64_t parse_i64(const char *what, const char *s) {
  char *end;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    die(EXIT_USAGE, "%s: not an integer: '%s'", what, s);
  return (int64_t)v;
}

static void check_path(const char *p) {
  if (!p || p[0] != '/')
    die(EXIT_USAGE, "path must be absolute, like /app/lock: '%s'", p ? p : "");
}

/* ---- session ---- */

static zkr_session_t *connect_or_die(void) {
  zkr_session_t *s;
  int rc;

  if ((rc = zkr_session_new(&s)) != 0)
    die(EXIT_FAILURE_ZK, "%s", zkr_strerror(rc));
  g_session = s; /* freed by die() too */
  if ((rc = zkr_session_set_timeout(s, opt.session_ms)) != 0)
    die(EXIT_USAGE, "session timeout %d: %s", opt.session_ms, zkr_strerror(rc));
  if (opt.auth) {
    if ((rc = zkr_session_set_auth(s, "digest", opt.auth)) != 0)
      die(EXIT_USAGE, "--auth must be USER:PASS");
  }
  rc = zkr_session_connect(s, opt.hosts, opt.connect_ms);
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "bad hosts '%s' (want host:port[,host:port...][/chroot])", opt.hosts);
  if (rc == ZKR_ETIMEDOUT)
    die(EXIT_UNAVAILABLE, "cannot connect to %s within %d ms", opt.hosts, opt.connect_ms);
  if (rc != 0)
    die(EXIT_UNAVAILABLE, "cannot connect to %s: %s", opt.hosts, zkr_strerror(rc));
  g_session = s;
  return s;
}

/* ---- running CMD under a lock or leadership ---- */

enum {
  EV_CHILD = 'c',
  EV_SUSPECT = 's',
  EV_RECOVERED = 'r',
  EV_LOST = 'l',
  EV_SIGNAL = 'g'
};

static int evpipe[2] = {-1, -1};
static volatile sig_atomic_t pending_sig;

static void post(char ev) {
  int saved = errno;
  ssize_t w = write(evpipe[1], &ev, 1);
  (void)w; /* a full pipe already holds a wake-up */
  errno = saved;
}

static void on_sigchld(int sig) {
  (void)sig;
  post(EV_CHILD);
}

static void on_forward(int sig) {
  pending_sig = sig;
  post(EV_SIGNAL);
}

static void lock_event(zkr_lock_t *l, int ev, void *arg) {
  (void)l, (void)arg;
  post(ev == ZKR_LOCK_SUSPECT     ? EV_SUSPECT
       : ev == ZKR_LOCK_RECOVERED ? EV_RECOVERED
                                  : EV_LOST);
}

static void election_event(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  (void)e, (void)epoch, (void)arg;
  if (ev == ZKR_ELECTION_SUSPECT)
    post(EV_SUSPECT);
  else if (ev == ZKR_ELECTION_RECOVERED)
    post(EV_RECOVERED);
  else if (ev == ZKR_ELECTION_LOST || ev == ZKR_ELECTION_NOT_LEADER)
    post(EV_LOST);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void setup_signals(void) {
  struct sigaction sa;
  if (pipe(evpipe) != 0)
    die(EXIT_FAILURE_ZK, "pipe: %s", strerror(errno));
  for (int i = 0; i < 2; i++)
    fcntl(evpipe[i], F_SETFL, fcntl(evpipe[i], F_GETFL) | O_NONBLOCK);
  fcntl(evpipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(evpipe[1], F_SETFD, FD_CLOEXEC);
  memset(&sa, 0, sizeof(sa));
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sa.sa_handler = on_sigchld;
  sigaction(SIGCHLD, &sa, NULL);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_forward;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

static pid_t spawn(char **cmd, char **env_extra) {
  pid_t pid = fork();
  if (pid < 0)
    die(EXIT_FAILURE_ZK, "fork: %s", strerror(errno));
  if (pid == 0) {
    struct sigaction sa;
    setpgid(0, 0); /* its own group, so that a termination reaches its children */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    for (int i = 0; env_extra[i]; i++)
      putenv(env_extra[i]);
    execvp(cmd[0], cmd);
    fprintf(stderr, "%s: cannot run %s: %s\n", prog, cmd[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid); /* both sides, so there is no race with the first kill */
  return pid;
}

static int exit_status(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return EXIT_FAILURE_ZK;
}

/* Supervise CMD until it exits. grace < 0: use the session's negotiated timeout.
 * Returns CMD's exit status, or EXIT_LOST if it had to be terminated. */
static int supervise(zkr_session_t *s, pid_t pid, const char *what) {
  double grace =
      opt.grace_s >= 0 ? opt.grace_s : zkr_session_negotiated_timeout(s) / 1000.0;
  double suspect_since = -1, term_at = -1;
  const char *why = NULL;
  int status = 0;

  for (;;) {
    struct pollfd pfd = {evpipe[0], POLLIN, 0};
    double now = now_s(), wake = -1;
    char buf[64];
    ssize_t n;
    pid_t w;

    while ((w = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR)
      ;
    if (w == pid) {
      if (why) {
        fprintf(stderr, "%s: %s lost (%s) while the command ran; command terminated\n",
                prog, what, why);
        return EXIT_LOST;
      }
      return exit_status(status);
    }
    if (!why && suspect_since >= 0 && now - suspect_since >= grace)
      why = "connection lost for longer than the grace period";
    if (why && term_at < 0) {
      kill(-pid, SIGTERM);
      term_at = now;
    }
    if (why && now - term_at >= opt.kill_after_s)
      kill(-pid, SIGKILL);
    if (!why && suspect_since >= 0)
      wake = suspect_since + grace;
    if (why)
      wake = term_at + opt.kill_after_s;
    if (poll(&pfd, 1, wake < 0 ? -1 : (int)((wake - now) * 1000) + 1) > 0) {
      while ((n = read(evpipe[0], buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
          switch (buf[i]) {
          case EV_SUSPECT:
            if (suspect_since < 0)
              suspect_since = now_s();
            break;
          case EV_RECOVERED: suspect_since = -1; break;
          case EV_LOST:
            if (!why)
              why = "session expired or node gone";
            break;
          case EV_SIGNAL:
            if (pending_sig)
              kill(-pid, pending_sig); /* passed on; its exit decides ours */
            break;
          }
        }
      }
    }
  }
}

static int cmd_lock(const char *path, char **cmd, int ncmd) {
  zkr_session_t *s;
  zkr_lock_t *l;
  zkr_lock_token_t tok;
  char fence[64], lpath[PATH_MAX + 32], lnode[128];
  char *env[] = {fence, lpath, lnode, NULL};
  int rc, timeout_ms;
  pid_t pid;

  if (ncmd == 0)
    die(EXIT_USAGE, "lock: missing '--' and the command to run (see zkr help lock)");
  setup_signals();
  s = connect_or_die();
  if ((rc = zkr_lock_new(s, path, &l)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "lock %s: %s", path,
        zkr_strerror(rc));
  if (opt.id && (rc = zkr_lock_set_data(l, opt.id, (int)strlen(opt.id))) != 0)
    die(EXIT_USAGE, "--id: %s", zkr_strerror(rc));
  zkr_lock_set_listener(l, lock_event, NULL);
  timeout_ms = opt.wait_s < 0                ? -1
               : opt.wait_s * 1000 > INT_MAX ? INT_MAX
                                             : (int)(opt.wait_s * 1000);
  rc = zkr_lock_acquire(l, timeout_ms);
  if (rc == ZKR_ETIMEDOUT)
    die(EXIT_BUSY, "lock %s: %s", path,
        opt.wait_s == 0 ? "held elsewhere" : "not acquired within the wait time");
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "lock %s: %s", path, zkr_strerror(rc));
  zkr_lock_token(l, &tok);
  snprintf(fence, sizeof(fence), "ZKR_FENCE=%" PRId64, tok.czxid);
  snprintf(lpath, sizeof(lpath), "ZKR_LOCK_PATH=%s", path);
  snprintf(lnode, sizeof(lnode), "ZKR_LOCK_NODE=%s", tok.node);
  pid = spawn(cmd, env);
  rc = supervise(s, pid, "lock");
  zkr_lock_release(l, 5000); /* bounded: with the server gone, the session ends it */
  zkr_lock_free(l);
  zkr_session_free(s);
  g_session = NULL;
  return rc;
}

static int cmd_elect(const char *path, char **cmd, int ncmd) {
  zkr_session_t *s;
  zkr_election_t *e;
  char fence[64], epoch_env[64], epath[PATH_MAX + 32];
  char *env[] = {fence, epoch_env, epath, NULL};
  int64_t epoch;
  int rc, timeout_ms;
  pid_t pid;

  if (!opt.id || !*opt.id)
    die(EXIT_USAGE, "elect: --id ID is required (see zkr help elect)");
  if (ncmd == 0)
    die(EXIT_USAGE, "elect: missing '--' and the command to run (see zkr help elect)");
  setup_signals();
  s = connect_or_die();
  if ((rc = zkr_election_new(s, path, opt.id, (int)strlen(opt.id), &e)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "elect %s: %s", path,
        zkr_strerror(rc));
  zkr_election_set_listener(e, election_event, NULL);
  if ((rc = zkr_election_start(e)) != 0)
    die(EXIT_FAILURE_ZK, "elect %s: %s", path, zkr_strerror(rc));
  timeout_ms = opt.wait_s < 0                ? -1
               : opt.wait_s * 1000 > INT_MAX ? INT_MAX
                                             : (int)(opt.wait_s * 1000);
  rc = zkr_election_await(e, timeout_ms, &epoch);
  if (rc == ZKR_ETIMEDOUT)
    die(EXIT_BUSY, "elect %s: not leader within the wait time", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "elect %s: %s", path, zkr_strerror(rc));
  {
    /* Events before CMD starts (none expected) are not about CMD. */
    char buf[64];
    while (read(evpipe[0], buf, sizeof(buf)) > 0)
      ;
  }
  snprintf(fence, sizeof(fence), "ZKR_FENCE=%" PRId64, epoch);
  snprintf(epoch_env, sizeof(epoch_env), "ZKR_EPOCH=%" PRId64, epoch);
  snprintf(epath, sizeof(epath), "ZKR_ELECTION_PATH=%s", path);
  pid = spawn(cmd, env);
  rc = supervise(s, pid, "leadership");
  zkr_election_free(e);
  zkr_session_free(s);
  g_session = NULL;
  return rc;
}

static int cmd_counter(const char *path, char **args, int nargs) {
  zkr_session_t *s;
  zkr_counter_t *c;
  int64_t v = 0;
  int rc;
  const char *op = nargs > 0 ? args[0] : NULL;

  if (!op)
    die(EXIT_USAGE, "counter: missing get | add N | set N | cas OLD NEW");
  if (!strcmp(op, "get")                         ? nargs != 1
      : !strcmp(op, "add") || !strcmp(op, "set") ? nargs != 2
      : !strcmp(op, "cas")                       ? nargs != 3
                                                 : 1)
    die(EXIT_USAGE,
        "counter: unknown or incomplete operation '%s' (get | add N | set N | "
        "cas OLD NEW)",
        op);
  s = connect_or_die();
  if ((rc = zkr_counter_new(s, path, opt.int32 ? ZKR_COUNTER_INT32 : ZKR_COUNTER_INT64,
                            &c)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "counter %s: %s", path,
        zkr_strerror(rc));
  if (!strcmp(op, "get"))
    rc = zkr_counter_get(c, 30000, &v);
  else if (!strcmp(op, "add"))
    rc = zkr_counter_add(c, parse_i64("add", args[1]), 30000, &v);
  else if (!strcmp(op, "set"))
    rc = zkr_counter_set(c, v = parse_i64("set", args[1]), 30000);
  else
    rc = zkr_counter_cas(c, parse_i64("cas OLD", args[1]),
                         v = parse_i64("cas NEW", args[2]), 30000, &v);
  zkr_counter_free(c);
  zkr_session_free(s);
  g_session = NULL;
  switch (rc) {
  case 0: printf("%" PRId64 "\n", v); return 0;
  case ZKR_EMISMATCH:
    printf("%" PRId64 "\n", v);
    fprintf(stderr, "%s: counter %s: cas did not apply: the value is %" PRId64 "\n", prog,
            path, v);
    return EXIT_BUSY;
  case ZKR_EBADDATA:
    die(EXIT_FAILURE_ZK, "counter %s: node data is not a %d-byte counter%s", path,
        opt.int32 ? 4 : 8, opt.int32 ? "" : " (try --int32?)");
  case ZKR_EOVERFLOW: die(EXIT_FAILURE_ZK, "counter %s: the result would overflow", path);
  case ZKR_EUNKNOWN:
    die(EXIT_FAILURE_ZK,
        "counter %s: outcome unknown: the change may or may not have "
        "been applied (never twice); not retried",
        path);
  default: die(EXIT_FAILURE_ZK, "counter %s: %s", path, zkr_strerror(rc));
  }
}

/* Printable data as text, anything else as hex; at most 60 bytes shown. */
static void print_data(const char *d, int len) {
  int text = 1, shown = len > 60 ? 60 : len;
  if (len < 0 || !d) {
    printf("-");
    return;
  }
  for (int i = 0; i < len; i++)
    if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7e)
      text = 0;
  if (text)
    printf("%.*s", shown, d);
  else
    for (int i = 0; i < shown; i++)
      printf("%02x", (unsigned char)d[i]);
  if (len > shown)
    printf("... (%d bytes)", len);
}

static int cmd_holders(const char *path, int nargs) {
  zkr_session_t *s;
  zkr_contender_t *c;
  int n, rc;

  if (nargs != 0)
    die(EXIT_USAGE, "holders: takes only PATH");
  s = connect_or_die();
  rc = zkr_contenders_list(s, path, 30000, &c, &n);
  zkr_session_free(s);
  g_session = NULL;
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "holders: bad path '%s'", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "holders %s: %s", path, zkr_strerror(rc));
  printf("%-4s %-11s %-18s %-24s %-56s %s\n", "POS", "SEQUENCE", "OWNER", "FORMAT",
         "NODE", "DATA");
  for (int i = 0; i < n; i++) {
    char pos[16], seq[16], owner[24];
    if (c[i].format == ZKR_FORMAT_UNKNOWN) {
      snprintf(pos, sizeof(pos), "-");
      snprintf(seq, sizeof(seq), "-");
    } else {
      snprintf(pos, sizeof(pos), "%d%s", i + 1, i == 0 ? "*" : "");
      snprintf(seq, sizeof(seq), "%" PRId32, c[i].sequence);
    }
    if (c[i].owner_session)
      snprintf(owner, sizeof(owner), "0x%016" PRIx64, (uint64_t)c[i].owner_session);
    else
      snprintf(owner, sizeof(owner), "persistent");
    printf("%-4s %-11s %-18s %-24s %-56s ", pos, seq, owner, zkr_format_name(c[i].format),
           c[i].name);
    print_data(c[i].data, c[i].data_len);
    printf("%s\n", c[i].reader ? " [reader]" : "");
  }
  zkr_contenders_free(c, n);
  return 0;
}

/* ---- main ---- */

static const struct option longopts[] = {
    {"hosts", required_argument, NULL, 'H'},
    {"session-timeout", required_argument, NULL, 's'},
    {"connect-timeout", required_argument, NULL, 'c'},
    {"auth", required_argument, NULL, 'a'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"wait", required_argument, NULL, 'w'},
    {"id", required_argument, NULL, 'i'},
    {"int32", no_argument, NULL, '4'},
    {"grace", required_argument, NULL, 'g'},
    {"kill-after", required_argument, NULL, 'k'},
    {NULL, 0, NULL, 0}};
static const char *shortopts = ":H:s:c:a:vhw:";
static int want_help;

static void apply(int o, const char *arg, const char *as_given) {
  switch (o) {
  case 'H': opt.hosts = arg; break;
  case 's': opt.session_ms = parse_int("--session-timeout", arg, 1, 3600000); break;
  case 'c': opt.connect_ms = parse_int("--connect-timeout", arg, 1, 3600000); break;
  case 'a': opt.auth = arg; break;
  case 'v': opt.verbose++; break;
  case 'h': want_help = 1; break;
  case 'V': printf("zkr (zkrecipes) %s\n", zkr_version_string()); exit(0);
  case 'w': opt.wait_s = parse_seconds("-w", arg); break;
  case 'i': opt.id = arg; break;
  case '4': opt.int32 = 1; break;
  case 'g': opt.grace_s = parse_seconds("--grace", arg); break;
  case 'k': opt.kill_after_s = parse_seconds("--kill-after", arg); break;
  case ':': die(EXIT_USAGE, "option %s needs a value (see zkr --help)", as_given);
  default: die(EXIT_USAGE, "unknown option '%s' (see zkr --help)", as_given);
  }
}

/* Options with getopt_long, in any order with the positionals (which are
 * collected in order). Stops at nothing: "--" was split off already. */
static int parse_opts(int argc, char **argv, int first, char **pos, int maxpos) {
  int npos = 0, o;
  /* getopt wants argv[0] to be skipped: start one before the first argument. */
  char **v = argv + first - 1;
  int c = argc - first + 1;
  optind = 0; /* 0, not 1: glibc then resets its permutation state too */
  opterr = 0;
  while ((o = getopt_long(c, v, shortopts, longopts, NULL)) != -1)
    apply(o, optarg, v[optind - 1]);
  for (int i = optind; i < c; i++) {
    if (npos >= maxpos)
      die(EXIT_USAGE, "unexpected argument '%s' (see zkr --help)", v[i]);
    pos[npos++] = v[i];
  }
  return npos;
}

/* counter's values may be negative ("add -5"): an argument that is a number is a
 * value, never an option, so options are picked out by hand. */
static int parse_counter_args(int argc, char **argv, int first, char **pos, int maxpos) {
  int npos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    int o = 0;
    if (a[0] != '-' || (a[1] >= '0' && a[1] <= '9') || !a[1]) {
      if (npos >= maxpos)
        die(EXIT_USAGE, "counter: unexpected argument '%s'", a);
      pos[npos++] = argv[i];
      continue;
    }
    if (a[1] == '-') {
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      const struct option *lo = NULL;
      for (const struct option *p = longopts; p->name; p++)
        if (strlen(p->name) == len && !strncmp(p->name, a + 2, len))
          lo = p;
      if (!lo)
        apply('?', NULL, a);
      o = lo->val;
      if (lo->has_arg == no_argument)
        apply(o, NULL, a);
      else if (eq)
        apply(o, eq + 1, a);
      else if (i + 1 < argc)
        apply(o, argv[++i], a);
      else
        apply(':', NULL, a);
    } else {
      const char *p = strchr(shortopts + 1, a[1]);
      if (!p || a[2])
        apply(p && !a[2] ? a[1] : '?', NULL, a);
      else if (p[1] == ':')
        i + 1 < argc ? apply(a[1], argv[++i], a) : apply(':', NULL, a);
      else
        apply(a[1], NULL, a);
    }
  }
  return npos;
}

int main(int argc, char **argv) {
  char **cmd = NULL, *pos[5];
  int ncmd = 0, dashdash = 0, o, npos, first;
  const char *command;

  /* Everything after the first "--" is the command to run, untouched. */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      cmd = argv + i + 1;
      ncmd = argc - i - 1;
      argc = i;
      dashdash = 1;
      break;
    }
  }
  opt.hosts = getenv("ZKR_HOSTS") && *getenv("ZKR_HOSTS") ? getenv("ZKR_HOSTS")
                                                          : "127.0.0.1:2181";
  opt.auth = getenv("ZKR_AUTH") && *getenv("ZKR_AUTH") ? getenv("ZKR_AUTH") : NULL;
  /* Options before the command. */
  opterr = 0;
  while ((o = getopt_long(argc, argv, "+:H:s:c:a:vhw:", longopts, NULL)) != -1)
    apply(o, optarg, argv[optind - 1]);
  command = optind < argc ? argv[optind] : NULL;
  first = optind + 1;
  if (command && !strcmp(command, "help")) {
    help(first < argc ? argv[first] : NULL, stdout);
    return 0;
  }
  if (!command) {
    if (want_help) {
      help(NULL, stdout);
      return 0;
    }
    help(NULL, stderr);
    return EXIT_USAGE;
  }
  if (strcmp(command, "lock") && strcmp(command, "elect") && strcmp(command, "counter") &&
      strcmp(command, "holders"))
    die(EXIT_USAGE,
        "unknown command '%s' (lock, elect, counter, holders; see zkr --help)", command);
  /* The command's own arguments and options, in any order. */
  if (!strcmp(command, "counter"))
    npos = parse_counter_args(argc, argv, first, pos, 4);
  else
    npos = parse_opts(argc, argv, first, pos, 4);
  if (want_help) {
    help(command, stdout);
    return 0;
  }
  if (opt.verbose)
    zkr_log_set_callback(log_to_stderr, NULL,
                         opt.verbose > 1 ? ZKR_LOG_DEBUG : ZKR_LOG_INFO);
  if (npos < 1)
    die(EXIT_USAGE, "%s: missing PATH (see zkr help %s)", command, command);
  check_path(pos[0]);
  if (!strcmp(command, "lock") || !strcmp(command, "elect")) {
    if (!dashdash)
      die(EXIT_USAGE, "%s: missing '--' before the command to run (see zkr help %s)",
          command, command);
    if (npos > 1)
      die(EXIT_USAGE, "%s: unexpected '%s' before '--' (see zkr help %s)", command,
          pos[1], command);
    return !strcmp(command, "lock") ? cmd_lock(pos[0], cmd, ncmd)
                                    : cmd_elect(pos[0], cmd, ncmd);
  }
  if (dashdash)
    die(EXIT_USAGE, "%s: does not run a command ('--' given)", command);
  if (!strcmp(command, "counter"))
    return cmd_counter(pos[0], pos + 1, npos - 1);
  if (npos > 1)
    die(EXIT_USAGE, "holders: unexpected '%s' (takes only PATH)", pos[1]);
  return cmd_holders(pos[0], npos - 1);
}
