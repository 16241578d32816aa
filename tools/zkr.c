/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkr - ZooKeeper recipes from the shell: a distributed flock, leader-only
 * commands, counters and lock/election inspection, built on libzkrecipes.
 *
 * Everything is checked before connecting (paths, numbers, hosts), so a typo
 * is exit status 64 at once, whatever state the servers are in.
 *
 * Process model of `lock` and `elect`: one thread (main) runs one poll loop
 * over a self-pipe. Into the pipe go, in the order they happen: the connect
 * outcome, the grant of the lock (the acquire's completion) or the LEADER
 * event, the ownership events (SUSPECT, RECOVERED, LOST), SIGCHLD and the
 * signals zkr forwards. Library callbacks run on library threads; they only
 * write one byte each. The order in the pipe is the truth: events before the
 * grant are about the wait, events after it are about CMD, so a loss in
 * between is never missed nor blamed on the wrong phase.
 *
 * Phases: connect (SIGINT/SIGTERM/SIGHUP end zkr: recipe freed, session
 * closed, then zkr dies of the signal), wait for the grant (same), check the
 * events that came after the grant (LOST: CMD is not started, exit 79;
 * SUSPECT: start only after RECOVERED, within the grace), run CMD, then wait
 * until CMD's process group is empty: like flock(1), whose lock lives as long
 * as any process holds the file, the lock is held while any process of CMD's
 * group lives. zkr is a child subreaper, so the group's orphans are reaped
 * here and do not linger as zombies. If ownership is lost, or uncertain for
 * longer than the grace period, the group gets SIGTERM (and SIGCONT) and, if
 * still there after the kill-after period, SIGKILL.
 *
 * zkr killed (kill -9, the OOM killer): its session expires and another host
 * takes over, so CMD must not outlive zkr. CMD gets PR_SET_PDEATHSIG=SIGKILL,
 * which its own children do not inherit, so a watchdog process (forked before
 * CMD, in its own process group, ignoring the terminal's signals) holds the
 * read end of a pipe that only zkr writes to: at EOF without the "done" byte
 * it kills CMD's whole group.
 *
 * Terminal: CMD runs in its own process group (so that a termination reaches
 * all of it). When zkr is the terminal's foreground job, the terminal goes to
 * CMD's group and comes back when the group is done. When CMD's group stops
 * (^Z, or reading the terminal in the background) zkr stops its own job too,
 * so the shell sees the job stopped; when continued, it continues CMD's group
 * (and hands it the terminal again if zkr is in the foreground). For the
 * stop to be taken by the main thread at once, the library's threads are
 * created with zkr's signals blocked.
 *
 * Only async-signal-safe calls between fork and exec: the environment and the
 * candidate paths of CMD are built before the fork, and an exec failure comes
 * back to zkr through a close-on-exec pipe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zkrecipes.h>

/* Exit codes (also in the help text). CMD's own status passes through otherwise. */
#define EXIT_USAGE       64 /* bad command line */
#define EXIT_UNAVAILABLE 69 /* cannot connect */
#define EXIT_FAILURE_ZK  70 /* ZooKeeper refused or failed; outcome unknown */
#define EXIT_BUSY        75 /* lock held elsewhere / not leader within -w / cas mismatch */
#define EXIT_LOST        79 /* lock or leadership lost: CMD not started, or terminated */

#define PROBE_AFTER_MS 100  /* not connected by then: see whether the hosts refuse */
#define PROBE_MAX_MS   2000 /* longest the probe waits for an answer */
#define GROUP_POLL_S   0.05 /* how often an emptying process group is looked at */
#define RELEASE_MS     5000 /* longest wait for the lock node's delete at the end */

extern char **environ;

static const char *prog = "zkr";
/* Freed on the way out (die, a signal), so that our nodes go at once. */
static zkr_session_t *g_session;
static zkr_children_cache_t *g_kids;
static zkr_tree_cache_t *g_tree;
static zkr_lock_t *g_lock;
static zkr_semaphore_t *g_sem; /* semaphore: g_lock is its lease */
static zkr_rwlock_t *g_rwlock; /* lock --read/--write: g_lock is one of its two */
static zkr_election_t *g_election;
static zkr_node_cache_t *g_cache;
static zkr_journal_t *g_journal;
static zkr_member_t *g_member;
static zkr_barrier_t *g_barrier;
static zkr_dbarrier_t *g_dbarrier; /* freed: our member node goes */
static zkr_queue_t *g_queue;
static zkr_item_t *g_item; /* freed on the way out uncommitted: delivered again */
static zkr_group_t *g_group;
static zkr_service_reg_t *g_reg;

static struct {
  const char *hosts;
  int session_ms;
  int connect_ms;
  const char *auth;
  int verbose;
  int int32;
  int at_most_once;
  double wait_s; /* -w: -1 forever */
  const char *id;
  double grace_s; /* -1: the negotiated session timeout */
  double kill_after_s;
  int quiet;         /* -q: nothing on stderr on a conflict */
  int conflict_exit; /* -E: the exit status of a conflict */
  const char *shell_cmd; /* -c: run through the shell, as flock -c does */
  int json;              /* --json: data as one JSON document */
  int watch;             /* leader --watch */
  int64_t set_version;   /* set --version V (-1: none) */
  int children;          /* watch --children */
  int tree;              /* watch --tree DEPTH (-1: not given) */
  int64_t after;         /* journal follow --after SEQ (-1: from the start) */
  int once;              /* journal follow --once */
  int keep;              /* journal trim --keep N */
  const char *data;      /* join --data D */
  int kazoo;             /* join --kazoo: kazoo Party's format */
  const char *base;      /* register, services, pick: --base BASE */
  const char *name;      /* register --name NAME */
  const char *address;   /* register --address A */
  int port, ssl_port;    /* register --port P, --ssl-port P (-1: none) */
  const char *payload;   /* register --payload JSON */
  const char *uri_spec;  /* register --uri-spec T */
  int service_type;      /* register --permanent / --static (DYNAMIC by default) */
  int strategy;          /* pick --strategy */
  int rw;                /* lock --read (1) / --write (2): the read/write lock */
  int max;               /* semaphore --max N (0: not given) */
  const char *max_from;  /* semaphore --max-from COUNTER_PATH */
  int profile;           /* semaphore --profile: ZKR_SEMAPHORE_* */
  int profile_set;       /* ... given */
  const char *profile_arg; /* ... as given */
  int priority;          /* queue put --priority */
  int members;           /* barrier --members N (0: not given) */
  int semaphore;         /* the command is semaphore */
} opt = {NULL, 10000, 15000, NULL, 0, 0, 0, -1, NULL, -1, 10, 0, EXIT_BUSY, NULL, 0, 0, -1, 0, -1,
         -1, 0, 0, NULL, 0, NULL, NULL, NULL, -1, -1, NULL, NULL, 0, 0, 0, 0, NULL, 0, 0, NULL, 0, 0, 0};

static void tty_reclaim(void);

/* -v: the session's statistics on stderr, one line, once the recipes are
 * freed (so that their last steps are counted). */
static void print_stats(zkr_session_t *s) {
  zkr_session_stats_t st;
  if (!opt.verbose || !s || zkr_session_stats(s, &st) != 0)
    return;
  fprintf(stderr,
          "%s: [stats] sessions %llu, disconnects %llu, reconnects %llu, expiries %llu, "
          "requests %llu, watches %llu, in flight %lld, watching %lld; acquires %llu, waits %llu, "
          "grants %llu, timeouts %llu, conflicts %llu, cancels %llu, failures %llu, "
          "losses %llu, wait p50 %.3f ms, p99 %.3f ms, max %.3f ms; counter ops %llu, "
          "conflicts %llu, unknown %llu\n",
          prog, (unsigned long long)st.sessions, (unsigned long long)st.disconnects,
          (unsigned long long)st.reconnects, (unsigned long long)st.expiries,
          (unsigned long long)st.requests, (unsigned long long)st.watches,
          (long long)st.in_flight, (long long)st.watching, (unsigned long long)st.acquires,
          (unsigned long long)st.waits, (unsigned long long)st.grants,
          (unsigned long long)st.timeouts, (unsigned long long)st.conflicts,
          (unsigned long long)st.cancels, (unsigned long long)st.failures,
          (unsigned long long)st.losses, (double)st.wait_p50_us / 1000,
          (double)st.wait_p99_us / 1000, (double)st.wait_max_us / 1000,
          (unsigned long long)st.counter_ops, (unsigned long long)st.counter_conflicts,
          (unsigned long long)st.counter_unknown);
}

/* With -v, the statistics first. */
static void session_end(zkr_session_t *s) {
  print_stats(s);
  zkr_session_free(s);
}

/* Free what we made on the server's side, in order: recipe, then session. */
static void cleanup_objects(void) {
  tty_reclaim();
  zkr_lock_free(g_lock); /* (a read/write lock's own: freed with it below) */
  g_lock = NULL;
  zkr_rwlock_free(g_rwlock);
  g_rwlock = NULL;
  zkr_semaphore_free(g_sem);
  g_sem = NULL;
  zkr_election_free(g_election);
  g_election = NULL;
  zkr_node_cache_free(g_cache);
  g_cache = NULL;
  zkr_children_cache_free(g_kids);
  g_kids = NULL;
  zkr_tree_cache_free(g_tree);
  g_tree = NULL;
  zkr_journal_free(g_journal);
  g_journal = NULL;
  zkr_member_free(g_member);
  g_member = NULL;
  zkr_barrier_free(g_barrier);
  g_barrier = NULL;
  zkr_item_free(g_item); /* not committed: released */
  g_item = NULL;
  zkr_queue_free(g_queue);
  g_queue = NULL;
  zkr_dbarrier_free(g_dbarrier);
  g_dbarrier = NULL;
  zkr_group_free(g_group);
  g_group = NULL;
  zkr_service_reg_free(g_reg); /* DYNAMIC and STATIC go; PERMANENT stays */
  g_reg = NULL;
  session_end(g_session);
  g_session = NULL;
}

static void vwarn(const char *fmt, va_list ap) {
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

static void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwarn(fmt, ap);
  va_end(ap);
  cleanup_objects();
  exit(code);
}

/* ZKR_EUNKNOWN from a write (counter change, journal write, queue put): it
 * may have applied or not, never twice; the tool does not try again, which
 * could apply it twice. */
static void die_unknown(const char *recipe, const char *path, const char *what)
    __attribute__((noreturn));
static void die_unknown(const char *recipe, const char *path, const char *what) {
  die(EXIT_FAILURE_ZK, "%s %s: outcome unknown: %s may or may not have applied (never twice); "
      "not retried", recipe, path, what);
}

/* A conflict (held elsewhere, not leader in time, cas mismatch): exit with -E's
 * status (default 75), silently with -q. */
static void conflict(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void print_json(json_t *doc);

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwarn(fmt, ap);
  va_end(ap);
}

static void conflict(const char *fmt, ...) {
  va_list ap;
  if (!opt.quiet) {
    va_start(ap, fmt);
    vwarn(fmt, ap);
    va_end(ap);
  }
  cleanup_objects();
  exit(opt.conflict_exit);
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
    "  lock PATH [-n|-w SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "                                                 run CMD while holding a lock\n"
    "  semaphore PATH --max N [-n|-w SEC] -- CMD [ARGS...]\n"
    "                                                 run CMD holding one of N leases\n"
    "  elect PATH --id ID [-w SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "                                                 run CMD while leading an "
    "election\n"
    "  counter PATH get|add N|set N|cas OLD NEW       read or change a shared counter\n"
    "  holders PATH                                   who holds and who waits\n"
    "  leader PATH                                    who leads an election\n"
    "  get PATH                                       print a node's data\n"
    "  set PATH VALUE [--version V]                   write a node's data\n"
    "  watch PATH [--children] [-c 'CMD' | -- CMD...] follow a node (or its children)\n"
    "  journal PATH write VALUE|follow|trim UP_TO     journaled configuration: every\n"
    "                                                 change logged and replayed\n"
    "  members PATH [--watch]                         who is in a group\n"
    "  join PATH --id ID [--data D] [-- CMD...]       be a member (while CMD runs)\n"
    "  register --base B --name N --address A --port P [--permanent] [-- CMD...]\n"
    "                                                 register a service instance\n"
    "  services --base B [NAME]                       service names, or instances\n"
    "  queue PATH put DATA|take [-- CMD]|length       a work queue, each item taken once\n"
    "  barrier PATH set|remove|wait [-w SEC]          a gate: up, down, or wait for down\n"
    "  barrier PATH --members N -- CMD [ARGS...]      run CMD when N are there; wait for\n"
    "                                                 all of them to finish\n"
    "  pick --base B NAME [--strategy S]              one instance's address:port\n"
    "  help [COMMAND]                                 this text, or a command's\n"
    "\n"
    "Options:\n"
    "  -H, --hosts HOSTS           host:port[,host:port...][/chroot]\n"
    "                              (default: $ZKR_HOSTS, else 127.0.0.1:2181)\n"
    "  -s, --session-timeout MS    session timeout (default 10000)\n"
    "  --connect-timeout MS        give up connecting after MS (default 15000)\n"
    "  -a, --auth USER:PASS        digest credentials (default: $ZKR_AUTH; prefer the\n"
    "                              variable, it stays out of ps)\n"
    "  -E, --conflict-exit-code N  exit status of a conflict (default 75)\n"
    "  -q, --quiet                 say nothing on a conflict\n"
    "  --json                      print data as JSON (holders, leader, counter, get;\n"
    "                              watch: one document per line)\n"
    "  -v, --verbose               log to stderr (-vv: debug), statistics at the end\n"
    "  -h, --help                  help\n"
    "  -V, --version               the version\n"
    "\n"
    "Environment: ZKR_HOSTS, ZKR_AUTH, ZKR_SESSION_TIMEOUT, ZKR_CONNECT_TIMEOUT,\n"
    "ZKR_WAIT (-w), ZKR_CONFLICT_EXIT_CODE (-E), ZKR_QUIET (-q when set and not 0),\n"
    "ZKR_ID (--id), ZKR_GRACE, ZKR_KILL_AFTER; the command line wins. ZKR_LOG sets\n"
    "the library's log level (error, warn, info, debug).\n"
    "\n"
    "Exit status: 0 on success; for lock and elect, CMD's status (128+N if it was\n"
    "killed by signal N); 64 usage error; 69 cannot connect (refused, unresolvable,\n"
    "or not within --connect-timeout); 70 ZooKeeper error or outcome unknown; 75 (or\n"
    "-E's N) a conflict: held elsewhere, not leader in time, or cas mismatch; 79\n"
    "lock or leadership lost (CMD was not started, or was terminated). Killed by\n"
    "SIGINT, SIGTERM or SIGHUP while it connects or waits, zkr leaves the queue and\n"
    "dies of the signal (128+N).\n";

static const char *usage_semaphore =
    "usage: zkr [OPTIONS] semaphore PATH (--max N | --max-from COUNTER_PATH)\n"
    "                       [--profile curator|kazoo|native] [-n | -w SEC] [--grace SEC]\n"
    "                       [--kill-after SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "\n"
    "Take one lease of the counting semaphore at PATH (at most N at once), run CMD\n"
    "while it is held, and exit with CMD's status: zkr lock, for N holders. The\n"
    "nodes are Apache Curator InterProcessSemaphoreV2's (PATH/locks, PATH/leases),\n"
    "so Java services with the same maximum share the path; --profile kazoo writes\n"
    "kazoo Semaphore's instead (PATH-__lock__, PATH/<hex32>, the maximum as PATH's\n"
    "data), for Python services.\n"
    "\n"
    "CMD's environment gets ZKR_FENCE (the lease's fencing token), ZKR_LEASE_SLOT (a\n"
    "number in 0..N-1 that no other zkrecipes holder of the path has meanwhile: a\n"
    "worker id; not in the native profile), ZKR_LOCK_PATH and ZKR_LOCK_NODE (the\n"
    "lease node).\n"
    "\n"
    "  --max N               the maximum (1..100000); every client must use the same:\n"
    "                        a zkrecipes lease taken with another is an error (70)\n"
    "  --max-from PATH       the maximum is the 4-byte value at PATH (Curator's\n"
    "                        SharedCount; zkr counter --int32 sets it)\n"
    "  --profile P           the node layout: curator (the default), kazoo, or native\n"
    "                        (zkrecipes only: no mutex, first come first served,\n"
    "                        each waiter woken once per grant; --max only)\n"
    "  -n, -w SEC, -E N, -q, -c, --grace, --kill-after\n"
    "                        as for zkr lock (no lease free in time: 75)\n"
    "\n"
    "Another profile's structure under PATH (or a maximum in kazoo's PATH data that\n"
    "differs, or is no number) is an error (70): sharing it would over-grant. Loss of the lease is handled as\n"
    "for zkr lock: CMD's group is ended and zkr exits with 79.\n";

static const char *usage_lock =
    "usage: zkr [OPTIONS] lock PATH [--read | --write] [-n | -w SEC] [--id ID]\n"
    "                       [--grace SEC] [--kill-after SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "\n"
    "Like flock(1), with a ZooKeeper lock: wait for the lock at PATH, run CMD while it\n"
    "is held, and exit with CMD's status. The lock is held until CMD and every\n"
    "process left in its process group have exited; a process that leaves the\n"
    "group (e.g. a daemon that calls setsid) is not waited for. The lock is a\n"
    "Curator-compatible ephemeral sequential node (shared with Curator, go-zookeeper\n"
    "and kazoo clients on the same path).\n"
    "\n"
    "CMD's environment gets ZKR_FENCE (the fencing token: it grows with every grant;\n"
    "have the resource reject smaller ones), ZKR_LOCK_PATH and ZKR_LOCK_NODE.\n"
    "\n"
    "  -c, --command CMD     run CMD with $SHELL -c (else /bin/sh), as flock -c does;\n"
    "                        or give CMD and its arguments after '--'\n"
    "  -n, --nonblock        fail at once if held elsewhere (the same as -w 0)\n"
    "  -w, --wait, --timeout SEC\n"
    "                        give up after SEC seconds with exit status 75 (-E);\n"
    "                        default: wait forever (as does a SEC too large to count\n"
    "                        in milliseconds)\n"
    "  -E N, -q              exit status and silence on a conflict, as for flock\n"
    "  --read, --write       the read/write lock's read or write side (Curator's\n"
    "                        InterProcessReadWriteLock nodes): readers run together,\n"
    "                        a writer alone; every writer format on the path (this\n"
    "                        exclusive lock, kazoo's) excludes readers\n"
    "  --id ID               data of the lock node (default: hostname:pid)\n"
    "  --grace SEC           how long a lost connection is ridden out before the lock\n"
    "                        counts as lost (default: the session timeout)\n"
    "  --kill-after SEC      SIGKILL CMD this long after SIGTERM (default 10)\n"
    "\n"
    "If the lock is lost while CMD's group runs (the session expired, or the\n"
    "connection was lost for longer than the grace), the group gets SIGTERM, then\n"
    "SIGKILL, and zkr exits with status 79; lost before CMD started, CMD is not\n"
    "started (79 too). SIGINT, SIGTERM and SIGHUP sent to zkr are passed on to\n"
    "CMD's group. Unlike flock(1), whose lock dies with the last process holding\n"
    "the file, a ZooKeeper lock dies with zkr's session: if zkr is killed (kill -9,\n"
    "the OOM killer), CMD's process group is killed too, as another host may take\n"
    "the lock as soon as the session expires.\n"
    "\n"
    "CMD may read the terminal: in the foreground, zkr hands the terminal to CMD's\n"
    "group. When CMD's group stops (^Z, or reading the terminal in the background),\n"
    "zkr's job stops too; continuing it (fg, bg) continues CMD's group. A job\n"
    "stopped for longer than the session timeout loses the lock.\n";

static const char *usage_elect =
    "usage: zkr [OPTIONS] elect PATH --id ID [-n | -w SEC] [--grace SEC]\n"
    "                       [--kill-after SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "\n"
    "Join the leader election at PATH as ID, wait until this candidate leads, then\n"
    "run CMD; leave the election when CMD and every process left in its process\n"
    "group have exited (a process that leaves the group, e.g. a daemon that calls\n"
    "setsid, is not waited for), and exit with CMD's status. The candidate is a\n"
    "Curator LeaderLatch-compatible node whose data is ID; a candidate whose\n"
    "session expires while it waits joins again.\n"
    "\n"
    "CMD's environment gets ZKR_FENCE and ZKR_EPOCH (the leadership's epoch: it grows\n"
    "with every new leadership) and ZKR_ELECTION_PATH.\n"
    "\n"
    "  --id ID               participant id (required)\n"
    "  -c, --command CMD     as for lock\n"
    "  -w, --wait SEC        give up after SEC seconds with exit status 75 (-E);\n"
    "                        -n: try once\n"
    "  --grace SEC, --kill-after SEC   as for lock\n"
    "\n"
    "If leadership is lost before CMD starts, CMD is not started; lost while CMD's\n"
    "group runs, the group is terminated; either way zkr exits with status 79.\n"
    "Signals, the terminal, and zkr being killed are handled as for lock.\n";

static const char *usage_counter =
    "usage: zkr [OPTIONS] counter PATH [--int32] [--at-most-once]\n"
    "                                   get | add N | set N | cas OLD NEW\n"
    "\n"
    "Read or change the shared counter at PATH and print the resulting value (for a\n"
    "cas that does not match, the current value, with exit status 75). The counter\n"
    "is an 8-byte big-endian integer, as Curator's DistributedAtomicLong writes it;\n"
    "--int32 uses 4 bytes, as Curator's SharedCount and kazoo's Counter with\n"
    "support_curator=True do. A missing node reads as 0 and is created by the first\n"
    "write. With --json: {\"path\": PATH, \"value\": N} (and \"applied\": true or false\n"
    "for cas). Exit status 70 with \"outcome unknown\" means the change may or may not\n"
    "have been applied (never twice); zkr does not retry it. A change is exactly\n"
    "once: a marker node written in the same transaction settles a lost reply.\n"
    "--at-most-once writes the counter alone, as other clients do (no marker), and\n"
    "reports a lost reply that may have applied as \"outcome unknown\".\n";

static const char *usage_holders =
    "usage: zkr [OPTIONS] holders PATH\n"
    "\n"
    "List the children of a lock or election path in queue order: the first one\n"
    "holds the lock or leads. For each: its sequence, owner session, the library\n"
    "format that wrote it, its name and its data. Children in no known format are\n"
    "listed last and marked unknown. A PATH that does not exist is exit status 70\n"
    "(\"no such node\"); an existing one without children prints only the header.\n"
    "With --json: {\"path\": PATH, \"contenders\": [{\"position\", \"node\", \"sequence\",\n"
    "\"format\", \"reader\", \"owner_session\", \"czxid\", \"data\"}, ...]}, position and\n"
    "sequence null for children in no known format; data null when there is none,\n"
    "and then data_hex when it is not UTF-8.\n";

static const char *usage_leader =
    "usage: zkr [OPTIONS] leader PATH [--watch]\n"
    "\n"
    "Print the id (node data) of the candidate leading the election at PATH: the\n"
    "first contender in queue order, of any library's format. Nobody leading is a\n"
    "conflict (exit status 75, or -E's; -q: silent). A PATH that does not exist is\n"
    "exit status 70. With --json: {\"path\": PATH, \"leader\": {\"id\", \"node\",\n"
    "\"epoch\", \"owner_session\", \"format\"} or null}; epoch is the leader node's\n"
    "czxid, the fencing token of the leadership.\n"
    "\n"
    "  --watch   print the leader now and again at each change (an empty line, or\n"
    "            \"leader\": null, while nobody leads; the PATH may not exist yet),\n"
    "            until a signal ends zkr (it dies of it)\n";

static const char *usage_get =
    "usage: zkr [OPTIONS] get PATH\n"
    "\n"
    "Print the data of the node at PATH as stored (no newline is added). A node that\n"
    "does not exist is exit status 70 (\"no such node\"). With --json: {\"path\",\n"
    "\"data\", \"czxid\", \"mzxid\", \"version\", \"length\", \"ephemeral_owner\"}; data\n"
    "null when the node has none, and then data_hex when it is not UTF-8.\n";

static const char *usage_set =
    "usage: zkr [OPTIONS] set PATH VALUE [--version V]\n"
    "       zkr [OPTIONS] set PATH [--version V] -- VALUE\n"
    "\n"
    "Write VALUE as the data of the node at PATH (VALUE '-': standard input, as is).\n"
    "A missing node is created, with its missing parents (persistent, empty). With\n"
    "--version V the write is a compare-and-set: it applies only if the node's data\n"
    "version is still V (a missing node is then an error, exit status 70); if it is\n"
    "not, nothing is written and the exit status is 75 (-E), the current version on\n"
    "stderr. Prints the new version (--json: {\"path\", \"version\", \"created\"}).\n"
    "Give a VALUE that starts with '-' after '--'.\n";

static const char *usage_journal =
    "usage: zkr [OPTIONS] journal PATH write VALUE [--version V]\n"
    "       zkr [OPTIONS] journal PATH follow [--after SEQ] [--once] [--json]\n"
    "       zkr [OPTIONS] journal PATH follow [--after SEQ] [--once] -c 'CMD' | -- CMD...\n"
    "       zkr [OPTIONS] journal PATH trim UP_TO|all [--keep N]\n"
    "\n"
    "Journaled configuration: PATH holds the value, and every change is also logged\n"
    "under PATH.zkr-journal, so followers see each one, in order, exactly once, also\n"
    "after a disconnection or a session expiry (a plain watch may coalesce changes).\n"
    "Every writer must write through the journal (zkr journal write, or the library).\n"
    "\n"
    "write: set PATH to VALUE ('-': standard input) and log it, in one transaction\n"
    "(PATH and its parents are created when missing). Prints the entry's sequence\n"
    "(--json: {\"path\", \"seq\"}). --version V: only if PATH's version is still V,\n"
    "else exit status 75 (-E). A write whose outcome cannot be told: exit status 70.\n"
    "-w SEC bounds the wait (default 30).\n"
    "\n"
    "follow: print every logged change after --after SEQ (default: from the first\n"
    "entry kept), then each new one, until a signal ends zkr:\n"
    "  ENTRY SEQ: DATA\n"
    "  TRIMMED FROM..SEQ      entries after FROM up to SEQ were trimmed unread\n"
    "  CAUGHT_UP SEQ          (once) everything logged at the start was printed\n"
    "  RESTARTED FROM         the journal was deleted and created again\n"
    "--once exits after CAUGHT_UP. --json: one document per line, {\"event\", \"seq\",\n"
    "\"from\", \"data\", \"zxid\", \"mtime\"}. With a command, run it once per ENTRY,\n"
    "TRIMMED and RESTARTED, in order, with the data on its standard input and\n"
    "ZKR_JOURNAL_PATH, ZKR_EVENT, ZKR_SEQ, ZKR_FROM and ZKR_ZXID in its environment;\n"
    "a run that fails stops zkr (exit status 70) and says which --after resumes.\n"
    "\n"
    "trim: delete the entries up to sequence UP_TO ('all': every one), keeping at\n"
    "least the newest N (--keep, default 0); followers behind it get TRIMMED.\n"
    "Prints how many entries were deleted.\n";

static const char *usage_members =
    "usage: zkr [OPTIONS] members PATH [--json] [--watch]\n"
    "\n"
    "List the members of the group at PATH, one line each: ID, the library whose\n"
    "format the member has (curator, kazoo, kazoo-shallow), its epoch (the node's\n"
    "czxid: a member that left and joined again has a new one) and its data.\n"
    "--json: one JSON array of {\"id\", \"format\", \"epoch\", \"owner\", \"node\",\n"
    "\"data\"}. --watch: a line now for each member, then one per change (ADDED,\n"
    "UPDATED, REPLACED, REMOVED ID), until a signal ends zkr.\n";

static const char *usage_queue =
    "usage: zkr [OPTIONS] queue PATH put DATA [--priority P] [--profile PROFILE]\n"
    "       zkr [OPTIONS] queue PATH take [-n | -w SEC] [--json] [--profile PROFILE]\n"
    "       zkr [OPTIONS] queue PATH take [-n | -w SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "       zkr [OPTIONS] queue PATH length\n"
    "\n"
    "A work queue at PATH in the nodes of another library (--profile): curator\n"
    "(the default: Apache Curator DistributedQueue's queue- items, framed), simple\n"
    "(qn- items: Curator SimpleDistributedQueue, ZooKeeper's recipes), kazoo\n"
    "(entry-NNN- items) or kazoo-locking (kazoo LockingQueue: PATH/entries and\n"
    "PATH/taken). Every item is taken exactly once: take claims it, hands it over\n"
    "and deletes it in one transaction with the claim's check.\n"
    "\n"
    "put prints the item's node name (a lost reply is settled by a receipt, never\n"
    "by a second put; if the session expired first, the put may or may not be in\n"
    "the queue: exit status 70, \"outcome unknown\", not retried). take prints the item's data (--json: name, priority, token\n"
    "and data) and then deletes it: a take that dies before that leaves the item\n"
    "to be delivered again. With a command, the item is on CMD's stdin, with\n"
    "ZKR_QUEUE_ITEM, ZKR_QUEUE_TOKEN (the claim's czxid: a deduplication key) and\n"
    "ZKR_QUEUE_PRIORITY; status 0 deletes the item, any other puts it back at the\n"
    "end of the queue (with its priority), and zkr exits with CMD's status.\n"
    "length prints the number of children of PATH (PATH/entries for kazoo-locking).\n"
    "\n"
    "  --priority P  lower first: kazoo 0..999 (kazoo's default is 100), Curator any\n"
    "                int32 (0: a plain queue- item), simple: 0 only\n"
    "  -n, -w SEC    take: wait at most SEC for an item (75 if none); default: as\n"
    "                long as it takes\n"
    "\n"
    "ZooKeeper is no broker: a few hundred items a second at most, each well under\n"
    "1 MiB; use a real broker for more.\n";

static const char *usage_barrier =
    "usage: zkr [OPTIONS] barrier PATH set|remove|wait [-n | -w SEC]\n"
    "       zkr [OPTIONS] barrier PATH --members N [-w SEC] -c 'CMD' | -- CMD [ARGS...]\n"
    "\n"
    "A barrier is up while the node PATH exists (Apache Curator DistributedBarrier's\n"
    "and kazoo Barrier's node). set raises it, remove lowers it (both are no-ops\n"
    "when it is so already), wait returns once it is down, or once it was removed\n"
    "and set again while we waited (a pulse; also one that happened while we were\n"
    "disconnected, which the other libraries miss).\n"
    "\n"
    "With --members N it is a double barrier (Curator DistributedDoubleBarrier's\n"
    "nodes: PATH/<uuid> per member, PATH/ready): zkr enters, runs CMD once N members\n"
    "are there, then leaves, returning once every member has left, and exits with\n"
    "CMD's status. Use a path per round (e.g. /batch/step-2/2026-11-27). CMD gets\n"
    "ZKR_BARRIER_PATH and ZKR_BARRIER_NODE (our member node's name).\n"
    "\n"
    "  -n, -w SEC    wait at most SEC (wait: for the barrier to go down; --members:\n"
    "                to enter, and again to leave); default: as long as it takes\n"
    "\n"
    "Exit status: 0; CMD's status; 75 (or -E's N) not down, or not all members, in\n"
    "time (our member node is removed first, so nobody counts us); 64 usage; 69\n"
    "cannot connect; 70 ZooKeeper error.\n";

static const char *usage_join =
    "usage: zkr [OPTIONS] join PATH --id ID [--data D] [--kazoo] [-c 'CMD' | -- CMD...]\n"
    "\n"
    "Join the group at PATH as ID (the node PATH/ID, ephemeral, data D; --kazoo: kazoo\n"
    "Party's format, PATH/<hex>__party__ with ID as data) and stay a member while CMD\n"
    "runs (or, with no command, until a signal ends zkr); the membership is renewed by\n"
    "itself after a session expiry. CMD gets ZKR_MEMBER_NODE and ZKR_EPOCH. An ID held\n"
    "by another session is a conflict (exit status 75, or -E N): never taken over.\n"
    "-w SEC bounds the join (default: as long as it takes).\n";

static const char *usage_register =
    "usage: zkr [OPTIONS] register --base BASE --name NAME [--id ID] --address A\n"
    "           [--port P] [--ssl-port P] [--payload JSON] [--uri-spec T]\n"
    "           [--permanent | --static] [-c 'CMD' | -- CMD...]\n"
    "\n"
    "Register an instance of service NAME at BASE/NAME/ID in Apache Curator's format\n"
    "(curator-x-discovery, Spring Cloud Zookeeper): ID defaults to a random UUID,\n"
    "printed on standard output. A dynamic instance (the default) is ephemeral and\n"
    "stays while CMD runs (or until a signal ends zkr); --static is persistent and\n"
    "deleted when zkr ends; --permanent is persistent and stays: zkr registers it\n"
    "and exits (a new registration of the same ID updates it in place). --payload is\n"
    "raw JSON passed through (a Java consumer may expect its \"@class\"); --uri-spec\n"
    "a Curator URI template such as '{scheme}://{address}:{port}'. An ID held by\n"
    "another session is a conflict (exit status 75, or -E N).\n";

static const char *usage_services =
    "usage: zkr [OPTIONS] services --base BASE [NAME] [--json]\n"
    "\n"
    "Without NAME: the service names under BASE, one per line. With NAME: its\n"
    "instances, one per line: ID ADDRESS:PORT (and \"disabled\" when an instance says\n"
    "so); nodes that are not instances are skipped with a warning. --json: an array\n"
    "of names, or of instances with every field.\n";

static const char *usage_pick =
    "usage: zkr [OPTIONS] pick --base BASE NAME [--strategy random|round-robin]\n"
    "\n"
    "Print ADDRESS:PORT of one enabled instance of service NAME (random by default;\n"
    "--json: the whole instance). No instance: exit status 70.\n";

static const char *usage_watch =
    "usage: zkr [OPTIONS] watch PATH [--children | --tree DEPTH] [--json]\n"
    "       zkr [OPTIONS] watch PATH [--children | --tree DEPTH] -c 'CMD' | -- CMD...\n"
    "\n"
    "Follow the node at PATH (it may not exist yet; nothing is created) and print a\n"
    "line for its state now and for each change, until a signal ends zkr:\n"
    "  INITIALIZED | CREATED | CHANGED | REPLACED  version V: DATA\n"
    "  INITIALIZED | DELETED                        (absent)\n"
    "REPLACED: deleted and created again. After a session expiry, RESYNC_BEGIN, the\n"
    "difference (its line says \"(after a gap)\": changes between may be unknown)\n"
    "and RESYNC_END. Changes in quick succession may be seen as one, to the last\n"
    "value. With --json, one document per line: {\"event\", \"path\", \"exists\",\n"
    "\"data\", \"czxid\", \"mzxid\", \"version\", \"gap\", \"missed\"}.\n"
    "\n"
    "--children follows the children of PATH instead, with their data: ADDED NAME\n"
    "version V: DATA for each child now, INITIALIZED, then ADDED, UPDATED, REPLACED,\n"
    "REMOVED NAME; PARENT_ABSENT when PATH is gone (it is waited for);\n"
    "CHILDREN_MISSED N when N creates or deletes of children happened unseen\n"
    "between two listings. A command then runs once per event.\n"
    "\n"
    "--tree DEPTH follows PATH and its descendants down to DEPTH levels (0..64):\n"
    "PATH's own lines as above, the descendants' as for --children with their path\n"
    "under PATH (a subtree that goes: REMOVED deepest first). Past the session's\n"
    "watch budget the tree stops: STOPPED, exit status 70.\n"
    "\n"
    "With a command, run it for the state now and after each change, one run at a\n"
    "time (changes during a run are seen by the next run, at their latest value),\n"
    "with the data on its standard input and ZKR_WATCH_PATH, ZKR_EVENT, ZKR_EXISTS\n"
    "(1 or 0), ZKR_VERSION, ZKR_CZXID, ZKR_MZXID and ZKR_GAP (1 or 0) in its\n"
    "environment. A run that fails is reported on stderr; the watch goes on.\n";

/* 0, or -1 for an unknown topic. */
static int help(const char *cmd, FILE *to) {
  if (!cmd)
    fputs(usage_main, to);
  else if (!strcmp(cmd, "lock"))
    fputs(usage_lock, to);
  else if (!strcmp(cmd, "elect"))
    fputs(usage_elect, to);
  else if (!strcmp(cmd, "semaphore"))
    fputs(usage_semaphore, to);
  else if (!strcmp(cmd, "counter"))
    fputs(usage_counter, to);
  else if (!strcmp(cmd, "holders"))
    fputs(usage_holders, to);
  else if (!strcmp(cmd, "leader"))
    fputs(usage_leader, to);
  else if (!strcmp(cmd, "get"))
    fputs(usage_get, to);
  else if (!strcmp(cmd, "set"))
    fputs(usage_set, to);
  else if (!strcmp(cmd, "watch"))
    fputs(usage_watch, to);
  else if (!strcmp(cmd, "journal"))
    fputs(usage_journal, to);
  else if (!strcmp(cmd, "members"))
    fputs(usage_members, to);
  else if (!strcmp(cmd, "join"))
    fputs(usage_join, to);
  else if (!strcmp(cmd, "barrier"))
    fputs(usage_barrier, to);
  else if (!strcmp(cmd, "queue"))
    fputs(usage_queue, to);
  else if (!strcmp(cmd, "register"))
    fputs(usage_register, to);
  else if (!strcmp(cmd, "services"))
    fputs(usage_services, to);
  else if (!strcmp(cmd, "pick"))
    fputs(usage_pick, to);
  else
    return -1;
  return 0;
}

/* ---- parsing ---- */

/* Any finite number of seconds >= 0. */
static double parse_seconds(const char *what, const char *s) {
  char *end;
  double v;
  v = strtod(s, &end);
  if (end == s || *end)
    die(EXIT_USAGE, "%s: not a number of seconds: '%s'", what, s);
  if (isnan(v) || isinf(v) || v < 0)
    die(EXIT_USAGE, "%s: out of range: '%s' (want a finite number of seconds >= 0)", what,
        s);
  return v;
}

/* Seconds to a poll(2)-style timeout: -1 (forever) when negative or too large. */
static int seconds_to_ms(double s) {
  double ms = s * 1000;
  return s < 0 || ms > INT_MAX ? -1 : (int)ms;
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
  if (zkr_path_check(p) != 0)
    die(EXIT_USAGE,
        "bad path '%s': ZooKeeper refuses it (an empty, '.' or '..' segment, a "
        "trailing '/', over 1024 bytes, invalid UTF-8 or a control character)",
        p);
}

/* ---- the event pipe ---- */

enum {
  EV_CONNECTED = 'C', /* connect_rc holds the outcome */
  EV_GRANTED = 'A',   /* lock: grant_rc holds the acquire's outcome */
  EV_LEADER = 'L',    /* election: this candidate leads */
  EV_AWAITED = 'W',   /* election: await_rc holds the await's outcome */
  EV_SUSPECT = 's',
  EV_RECOVERED = 'r',
  EV_LOST = 'l',
  EV_CHILD = 'c',
  EV_SIGNAL = 'g',
  EV_RELEASED = 'R',    /* lock: release_rc holds the final delete's outcome */
  EV_DISCONNECTED = 'd', /* the session left CONNECTED (listener used at exit) */
  EV_WATCH = 'w',        /* leader --watch: the children of PATH changed */
  EV_SESSION = 'S'       /* leader --watch: the session came (back) or was lost */
};

static int evpipe[2] = {-1, -1};
static char evbuf[256];
static int evpos, evlen;
static _Atomic int connect_rc, grant_rc, await_rc, release_rc;

/* Signals handled while zkr runs lock or elect. */
static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGCONT, SIGPIPE};
#define NHANDLED (int)(sizeof(handled) / sizeof(handled[0]))
static struct sigaction old_action[NHANDLED]; /* restored in CMD */
static sigset_t orig_mask;                    /* zkr's mask at start; CMD's */
static volatile sig_atomic_t got_signal[3];   /* SIGINT, SIGTERM, SIGHUP */
static volatile sig_atomic_t continued;       /* SIGCONT seen */
static volatile sig_atomic_t child_posted;    /* an EV_CHILD not read yet */

/* The pipe holds 64 KiB of events, far more than a recipe sends; SIGCHLD,
 * which could come in a flood, is posted once until it is read. */
static void post(char ev) {
  int saved = errno;
  ssize_t w = write(evpipe[1], &ev, 1);
  (void)w;
  errno = saved;
}

static void setup_pipe(void) {
  if (evpipe[0] >= 0)
    return;
  if (pipe2(evpipe, O_CLOEXEC | O_NONBLOCK) != 0)
    die(EXIT_FAILURE_ZK, "pipe: %s", strerror(errno));
}

/* The next event: a byte from the pipe, or -1 when none came within timeout_ms
 * (-1: no limit; 0: only what is there). May return -1 early (a signal). */
static int ev_next(int timeout_ms) {
  for (;;) {
    struct pollfd pfd = {evpipe[0], POLLIN, 0};
    ssize_t n;
    if (evpos < evlen) {
      if (evbuf[evpos] == EV_CHILD)
        child_posted = 0;
      return (unsigned char)evbuf[evpos++];
    }
    n = read(evpipe[0], evbuf, sizeof(evbuf));
    if (n > 0) {
      evpos = 0;
      evlen = (int)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (timeout_ms == 0)
      return -1;
    if (poll(&pfd, 1, timeout_ms) <= 0)
      return -1;
  }
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* poll(2) timeout until the monotonic time `at` (< 0: none). */
static int ms_until(double at) {
  double ms;
  if (at < 0)
    return -1;
  ms = (at - now_s()) * 1000 + 1;
  return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

static void on_signal(int sig) {
  got_signal[sig == SIGINT ? 0 : sig == SIGTERM ? 1 : 2] = 1;
  post(EV_SIGNAL);
}

static void on_sigchld(int sig) {
  (void)sig;
  if (!child_posted) {
    child_posted = 1;
    post(EV_CHILD);
  }
}

static void on_sigcont(int sig) {
  (void)sig;
  continued = 1;
}

/* The next signal received and not yet taken, or 0. */
static int take_signal(void) {
  static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++) {
    if (got_signal[i]) {
      got_signal[i] = 0;
      return sigs[i];
    }
  }
  return 0;
}

/* Before the session exists: handlers in place, and zkr's signals (and the
 * job-control stops) blocked, so that the library's threads, created from now
 * on, never take them; the main thread unblocks them once connecting has
 * started (session_connect). */
static void setup_signals(void) {
  struct sigaction sa;
  sigset_t block;

  setup_pipe();
  sigemptyset(&block);
  for (int i = 0; i < NHANDLED; i++)
    sigaddset(&block, handled[i]);
  sigaddset(&block, SIGTSTP);
  sigaddset(&block, SIGTTIN);
  sigaddset(&block, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &block, NULL);
  for (int i = 0; i < NHANDLED; i++) {
    sigaction(handled[i], NULL, &old_action[i]);
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_RESTART;
    switch (handled[i]) {
    case SIGCHLD: sa.sa_handler = on_sigchld; break; /* stops too: no SA_NOCLDSTOP */
    case SIGCONT: sa.sa_handler = on_sigcont; break;
    case SIGPIPE: sa.sa_handler = SIG_IGN; break; /* a dead watchdog's pipe */
    default:
      /* A signal ignored by whoever started us stays ignored (as for a
       * background job of a shell without job control). */
      if (old_action[i].sa_handler == SIG_IGN)
        continue;
      sa.sa_handler = on_signal;
    }
    sigaction(handled[i], &sa, NULL);
  }
}

static void unblock_signals(void) {
  pthread_sigmask(SIG_SETMASK, &orig_mask, NULL);
}

/* SIGINT, SIGTERM or SIGHUP before CMD runs: leave the queue, close the
 * session, and die of the signal as flock(1) would. */
static void quit_on_signal(int sig) __attribute__((noreturn));
static void quit_on_signal(int sig) {
  struct sigaction sa;
  sigset_t set;
  cleanup_objects();
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigaction(sig, &sa, NULL);
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  exit(128 + sig);
}

/* ---- session ---- */

/* Before CMD runs: a signal that ends zkr ends it now. */
static void quit_if_signalled(void) {
  int sig = take_signal();
  if (sig)
    quit_on_signal(sig);
}

static zkr_session_t *session_make(void) {
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
  return s;
}

static void on_connected(zkr_session_t *s, int rc, void *arg) {
  (void)s, (void)arg;
  atomic_store(&connect_rc, rc);
  post(EV_CONNECTED);
}

/*
 * 1 when every address of every host in opt.hosts refuses a TCP connection
 * within bound_ms; 0 when one accepts, does not answer in time, cannot be
 * resolved or fails otherwise, or when an event arrives meanwhile (it is left
 * in the pipe). A refused connection is the one failure that no waiting cures
 * quickly, and the ZooKeeper client would retry it until the connect timeout.
 */
static int hosts_refuse(int bound_ms) {
  enum { MAXFD = 64 };
  struct pollfd pfd[MAXFD + 1];
  char list[8192], *save = NULL, *slash;
  int n = 1, pending = 0, refused = 0, result = 0;
  double deadline = now_s() + bound_ms / 1000.0;

  snprintf(list, sizeof(list), "%s", opt.hosts);
  if ((slash = strchr(list, '/')))
    *slash = '\0'; /* the chroot */
  pfd[0].fd = evpipe[0];
  pfd[0].events = POLLIN;
  for (char *e = strtok_r(list, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
    struct addrinfo hints, *res, *ai;
    char *host = e, *port;
    if (*e == '[') { /* [v6-address]:port */
      char *close_br = strchr(++host, ']');
      if (!close_br || close_br[1] != ':')
        goto out;
      *close_br = '\0';
      port = close_br + 2;
    } else {
      if (!(port = strrchr(e, ':')))
        goto out;
      *port++ = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0)
      goto out; /* the connect says so, or another host resolves */
    for (ai = res; ai; ai = ai->ai_next) {
      int fd;
      if (n > MAXFD ||
          (fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol)) < 0) {
        freeaddrinfo(res);
        goto out;
      }
      if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno != EINPROGRESS) {
        int refusal = errno == ECONNREFUSED;
        close(fd);
        if (!refusal) { /* accepted, or failed otherwise */
          freeaddrinfo(res);
          goto out;
        }
        refused++;
        continue;
      }
      pfd[n].fd = fd;
      pfd[n].events = POLLOUT;
      n++;
      pending++;
    }
    freeaddrinfo(res);
  }
  while (pending > 0) {
    int r = poll(pfd, (nfds_t)n, ms_until(deadline));
    if (r == 0 || (r < 0 && errno != EINTR) || pfd[0].revents)
      goto out;
    for (int i = 1; r > 0 && i < n; i++) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (pfd[i].fd < 0 || !pfd[i].revents)
        continue;
      if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
          err != ECONNREFUSED)
        goto out;
      close(pfd[i].fd);
      pfd[i].fd = -1;
      pending--;
      refused++;
    }
  }
  result = refused > 0;
out:
  for (int i = 1; i < n; i++)
    if (pfd[i].fd >= 0)
      close(pfd[i].fd);
  return result;
}

/* Connect s, dying with the right status and message if that fails. SIGINT,
 * SIGTERM and SIGHUP end zkr meanwhile when setup_signals() was called. */
static void session_connect(zkr_session_t *s) {
  double start = now_s();
  int rc, probed = 0;

  setup_pipe();
  rc = zkr_session_connect_async(s, opt.hosts, opt.connect_ms, on_connected, NULL);
  unblock_signals(); /* the library's threads exist now, with them blocked */
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "bad hosts '%s' (want host:port[,host:port...][/chroot])", opt.hosts);
  if (rc == ZKR_ERESOLVE)
    die(EXIT_UNAVAILABLE, "cannot resolve %s", opt.hosts);
  if (rc != 0)
    die(EXIT_UNAVAILABLE, "cannot connect to %s: %s", opt.hosts, zkr_strerror(rc));
  for (;;) {
    int ev = ev_next(probed ? -1 : ms_until(start + PROBE_AFTER_MS / 1000.0));
    if (ev < 0) {
      double left_ms = (start - now_s()) * 1000 + opt.connect_ms;
      if (probed || now_s() - start < PROBE_AFTER_MS / 1000.0)
        continue;
      probed = 1;
      if (hosts_refuse(left_ms < PROBE_MAX_MS ? (int)left_ms : PROBE_MAX_MS))
        die(EXIT_UNAVAILABLE, "connection refused by %s", opt.hosts);
      continue;
    }
    if (ev == EV_SIGNAL)
      quit_if_signalled();
    if (ev != EV_CONNECTED)
      continue;
    rc = atomic_load(&connect_rc);
    if (rc == 0)
      return;
    if (rc == ZKR_ETIMEDOUT)
      die(EXIT_UNAVAILABLE, "cannot connect to %s within %d ms", opt.hosts,
          opt.connect_ms);
    if (rc == ZKR_ERESOLVE)
      die(EXIT_UNAVAILABLE, "cannot resolve %s", opt.hosts);
    die(EXIT_UNAVAILABLE, "cannot connect to %s: %s", opt.hosts, zkr_strerror(rc));
  }
}

/* ---- running CMD under a lock or leadership ---- */

static struct {
  int elect;
  const char *what; /* "lock" or "leadership" */
  const char *path;
  double grace;
  pid_t pgid;     /* CMD's pid, and its process group */
  pid_t wd_pid;   /* the watchdog, -1 when there is none (any more) */
  int wd_fd;      /* write end of the watchdog's pipe */
  int cmd_done;   /* CMD itself has exited and was reaped */
  int cmd_status; /* its wait status */
  int stop_sig;   /* a process of CMD's group stopped with this signal */
  /* exec material, built before the fork */
  char **env;
  char **paths; /* candidate files for CMD */
  char **sh_argv;
} R = {.wd_pid = -1, .wd_fd = -1};

static int tty_job;   /* fd 0 is our controlling terminal: mirror CMD's stops */
static int tty_given; /* CMD's group has the terminal's foreground from us */

static void tty_set_foreground(pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU); /* tcsetpgrp from the background stops us otherwise */
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  tcsetpgrp(0, pgrp);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void tty_reclaim(void) {
  if (tty_given) {
    tty_set_foreground(getpgrp());
    tty_given = 0;
  }
}

static void lock_event(zkr_lock_t *l, int ev, void *arg) {
  (void)l, (void)arg;
  post(ev == ZKR_LOCK_SUSPECT     ? EV_SUSPECT
       : ev == ZKR_LOCK_RECOVERED ? EV_RECOVERED
                                  : EV_LOST);
}

static void on_granted(zkr_lock_t *l, int rc, void *arg) {
  (void)l, (void)arg;
  atomic_store(&grant_rc, rc);
  post(EV_GRANTED);
}

static void lock_event(zkr_lock_t *l, int ev, void *arg);

/* The semaphore's one lease becomes the lock zkr holds while CMD runs. */
static void on_leased(zkr_semaphore_t *sem, int rc, zkr_lock_t **leases, int n, void *arg) {
  (void)sem, (void)arg;
  if (rc == 0 && n == 1) {
    g_lock = leases[0];
    (void)zkr_lock_set_listener(g_lock, lock_event, NULL);
  }
  on_granted(NULL, rc, NULL);
}

static void election_event(zkr_election_t *e, int ev, int64_t epoch, void *arg) {
  (void)e, (void)epoch, (void)arg;
  if (ev == ZKR_ELECTION_LEADER)
    post(EV_LEADER);
  else if (ev == ZKR_ELECTION_SUSPECT)
    post(EV_SUSPECT);
  else if (ev == ZKR_ELECTION_RECOVERED)
    post(EV_RECOVERED);
  else if (ev == ZKR_ELECTION_LOST || ev == ZKR_ELECTION_NOT_LEADER)
    post(EV_LOST);
}

static void on_awaited(zkr_election_t *e, int rc, int64_t epoch, void *arg) {
  (void)e, (void)epoch, (void)arg;
  atomic_store(&await_rc, rc);
  post(EV_AWAITED);
}

/* Wait for the grant (lock) or leadership (elect). Every event before it is
 * about the wait, and is left behind. */
static void await_grant(void) {
  for (;;) {
    int ev = ev_next(-1), rc;
    switch (ev) {
    case EV_SIGNAL: quit_if_signalled(); break;
    case EV_GRANTED:
      rc = atomic_load(&grant_rc);
      if (rc == 0)
        return;
      if (rc == ZKR_ETIMEDOUT)
        conflict("%s %s: %s", opt.semaphore ? "semaphore" : "lock", R.path,
                 opt.wait_s != 0  ? "not acquired within the wait time"
                 : opt.semaphore ? "no lease free"
                                 : "held elsewhere");
      if (rc == ZKR_EMISMATCH && opt.semaphore)
        die(EXIT_FAILURE_ZK,
            "semaphore %s: a lease there was taken with another maximum than ours (%d); "
            "every client must use the same",
            R.path, zkr_semaphore_max(g_sem));
      die(EXIT_FAILURE_ZK, "%s %s: %s", opt.semaphore ? "semaphore" : "lock", R.path,
          zkr_strerror(rc));
    case EV_LEADER: return;
    case EV_AWAITED:
      rc = atomic_load(&await_rc);
      if (rc == 0)
        break; /* the LEADER event came first and is what counts */
      if (rc == ZKR_ETIMEDOUT)
        conflict("elect %s: not leader within the wait time", R.path);
      die(EXIT_FAILURE_ZK, "elect %s: %s", R.path, zkr_strerror(rc));
    default: break; /* SUSPECT, RECOVERED, LOST of the wait: the recipe rides them */
    }
  }
}

/* Test-only: ZKR_TEST_DELAY_CMD_MS widens the window between the grant and the
 * look at what came after it, so that the shell tests can expire the session
 * there. Deliberately not in the help. */
static void test_delay(void) {
  const char *d = getenv("ZKR_TEST_DELAY_CMD_MS");
  long ms = d ? strtol(d, NULL, 10) : 0;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  if (ms <= 0)
    return;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* After the grant: the events since. Returns when CMD may start; LOST, or a
 * SUSPECT not RECOVERED within the grace, ends zkr with EXIT_LOST. */
static void await_go(void) {
  double suspect_since = -1;
  for (;;) {
    int ev = ev_next(suspect_since < 0 ? 0 : ms_until(suspect_since + R.grace));
    if (ev < 0) {
      if (suspect_since < 0)
        return; /* nothing (more) to say against it */
      if (now_s() - suspect_since >= R.grace)
        die(EXIT_LOST,
            "%s lost (connection lost for longer than the grace period) before the "
            "command started; command not started",
            R.what);
      continue;
    }
    switch (ev) {
    case EV_SIGNAL: quit_if_signalled(); break;
    case EV_SUSPECT:
      if (suspect_since < 0)
        suspect_since = now_s();
      break;
    case EV_RECOVERED: suspect_since = -1; break;
    case EV_LOST:
      die(EXIT_LOST,
          "%s lost (session expired or node gone) before the command started; "
          "command not started",
          R.what);
    default: break;
    }
  }
}

/* CMD's environment: ours, with extra's variables set (replaced if present). */
static char **build_env(char **extra) {
  size_t n = 0, k = 0, ne = 0;
  char **env;
  while (environ[n])
    n++;
  while (extra[ne])
    ne++;
  if (!(env = calloc(n + ne + 1, sizeof(*env))))
    die(EXIT_FAILURE_ZK, "out of memory");
  for (size_t i = 0; i < n; i++) {
    int replaced = 0;
    for (size_t j = 0; j < ne; j++) {
      size_t len = strcspn(extra[j], "=") + 1;
      if (!strncmp(environ[i], extra[j], len))
        replaced = 1;
    }
    if (!replaced)
      env[k++] = environ[i];
  }
  for (size_t j = 0; j < ne; j++)
    env[k++] = extra[j];
  return env;
}

/* The files execvp(3) would try for cmd[0], and the argv for running one that
 * is a script without #! through /bin/sh. */
static void build_exec(char **cmd, int ncmd) {
  const char *path = getenv("PATH"), *p;
  size_t ndirs = 1, k = 0;

  if (!(R.sh_argv = calloc((size_t)ncmd + 2, sizeof(char *))))
    die(EXIT_FAILURE_ZK, "out of memory");
  R.sh_argv[0] = "sh";
  for (int i = 1; i < ncmd; i++)
    R.sh_argv[i + 1] = cmd[i];
  if (strchr(cmd[0], '/') || !*cmd[0]) {
    if (!(R.paths = calloc(2, sizeof(char *))) || !(R.paths[0] = strdup(cmd[0])))
      die(EXIT_FAILURE_ZK, "out of memory");
    return;
  }
  if (!path)
    path = "/bin:/usr/bin";
  for (p = path; *p; p++)
    ndirs += *p == ':';
  if (!(R.paths = calloc(ndirs + 1, sizeof(char *))))
    die(EXIT_FAILURE_ZK, "out of memory");
  for (p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    size_t size = len + strlen(cmd[0]) + 3;
    if (!(R.paths[k] = malloc(size)))
      die(EXIT_FAILURE_ZK, "out of memory");
    snprintf(R.paths[k++], size, "%.*s/%s", len ? (int)len : 1, len ? p : ".", cmd[0]);
    if (!end)
      break;
    p = end;
  }
}

static void free_exec(void) {
  for (size_t i = 0; R.paths && R.paths[i]; i++)
    free(R.paths[i]);
  free(R.paths);
  free(R.sh_argv);
  free(R.env);
  R.paths = R.sh_argv = R.env = NULL;
}

/* File descriptors open when zkr started: CMD inherits those, and only those
 * (the ZooKeeper client's socket and pipes are not close-on-exec). */
static int *fds_at_start, nfds_at_start;

static int fd_list(int **out) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int n = 0, cap = 0, *v = NULL;
  if (!d)
    return -1;
  while ((de = readdir(d))) {
    int fd = atoi(de->d_name);
    if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d))
      continue;
    if (n == cap) {
      int *nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(*v));
      if (!nv)
        break;
      v = nv;
    }
    v[n++] = fd;
  }
  closedir(d);
  *out = v;
  return n;
}

static void cloexec_own_fds(void) {
  int *now = NULL, n = fd_list(&now);
  for (int i = 0; i < n; i++) {
    int inherited = 0;
    for (int j = 0; j < nfds_at_start; j++)
      inherited |= fds_at_start[j] == now[i];
    if (!inherited)
      fcntl(now[i], F_SETFD, fcntl(now[i], F_GETFD) | FD_CLOEXEC);
  }
  free(now);
}

static void block_all(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, old);
}

/* Read exactly len bytes unless EOF or an error comes first. */
static ssize_t read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* The watchdog: kills CMD's group (whose id it reads first) when the pipe
 * reaches EOF without the "done" byte, i.e. when zkr died. */
static void start_watchdog(void) {
  int p[2], maxfd = (int)sysconf(_SC_OPEN_MAX);
  sigset_t old;
  pid_t pid;

  if (pipe2(p, O_CLOEXEC) != 0)
    die(EXIT_FAILURE_ZK, "pipe: %s", strerror(errno));
  block_all(&old);
  pid = fork();
  if (pid == 0) {
    static const int ign[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT,
                              SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction sa;
    sigset_t none;
    pid_t pgid;
    char c;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++)
      sigaction(ign[i], &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGCONT, &sa, NULL);
    setpgid(0, 0); /* out of reach of signals to zkr's job */
    if (p[0] != 0 && dup2(p[0], 0) != 0)
      _exit(1);
    if (close_range(1, ~0U, 0) != 0)
      for (int fd = 1; fd < maxfd; fd++)
        close(fd);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (read_full(0, &pgid, sizeof(pgid)) != (ssize_t)sizeof(pgid))
      _exit(0); /* zkr died before CMD's child could exec: it dies with zkr */
    for (;;) {
      ssize_t n = read(0, &c, 1);
      if (n == 1 && c == 'd')
        _exit(0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
    }
    kill(-pgid, SIGKILL);
    _exit(0);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    die(EXIT_FAILURE_ZK, "fork: %s", strerror(errno));
  }
  R.wd_pid = pid;
  R.wd_fd = p[1];
}

static void stop_watchdog(void) {
  if (R.wd_fd >= 0) {
    ssize_t w = write(R.wd_fd, "d", 1);
    (void)w; /* a watchdog that is gone has nothing to do */
    close(R.wd_fd);
    R.wd_fd = -1;
  }
  if (R.wd_pid > 0) {
    while (waitpid(R.wd_pid, NULL, 0) < 0 && errno == EINTR)
      ;
    R.wd_pid = -1;
  }
}

/* Start CMD in its own process group, stopped at a pipe until the watchdog
 * knows the group and the terminal is handed over. Returns its pid. */
static pid_t spawn(char **cmd) {
  pid_t zkr_pid = getpid(), pid;
  int go[2], err[2], give_tty, e = 0;
  sigset_t old;
  ssize_t n;

  tty_job = isatty(0) && tcgetpgrp(0) != -1;
  give_tty = tty_job && tcgetpgrp(0) == getpgrp();
  cloexec_own_fds();
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    die(EXIT_FAILURE_ZK, "pipe: %s", strerror(errno));
  block_all(&old);
  pid = fork();
  if (pid == 0) {
    /* Async-signal-safe calls only: zkr has other threads. */
    sigset_t ttou;
    char c;
    int saw_eacces = 0;
    setpgid(0, 0); /* its own group, so that a termination reaches its children */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != zkr_pid)
      _exit(127); /* zkr is gone already */
    for (int i = 0; i < NHANDLED; i++)
      sigaction(handled[i], &old_action[i], NULL);
    if (give_tty) {
      sigemptyset(&ttou);
      sigaddset(&ttou, SIGTTOU);
      sigprocmask(SIG_BLOCK, &ttou, NULL);
      tcsetpgrp(0, getpid());
    }
    close(go[1]);
    close(err[0]);
    while ((n = read(go[0], &c, 1)) < 0 && errno == EINTR)
      ;
    if (n != 1)
      _exit(127);
    sigprocmask(SIG_SETMASK, &orig_mask, NULL);
    for (int i = 0; R.paths[i]; i++) {
      execve(R.paths[i], cmd, R.env);
      if (errno == ENOEXEC) {
        R.sh_argv[1] = R.paths[i];
        execve("/bin/sh", R.sh_argv, R.env);
        errno = ENOEXEC;
      }
      if (errno == EACCES)
        saw_eacces = 1;
      else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
               errno != ENODEV && errno != ETIMEDOUT)
        break;
    }
    e = saw_eacces && (errno == ENOENT || errno == ENOTDIR) ? EACCES : errno;
    n = write(err[1], &e, sizeof(e));
    _exit(127);
  }
  if (pid > 0) {
    setpgid(pid, pid); /* both sides, so there is no race with the first kill */
    if (give_tty) {
      tty_set_foreground(pid);
      tty_given = 1;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(go[0]);
  close(err[1]);
  if (pid < 0) {
    close(go[1]);
    close(err[0]);
    die(EXIT_FAILURE_ZK, "fork: %s", strerror(errno));
  }
  R.pgid = pid;
  {
    ssize_t w = write(R.wd_fd, &pid, sizeof(pid));
    (void)w; /* a watchdog that is gone cannot be helped now */
  }
  n = write(go[1], "g", 1);
  close(go[1]);
  if (read_full(err[0], &e, sizeof(e)) == (ssize_t)sizeof(e))
    warn("cannot run %s: %s", cmd[0], strerror(e));
  close(err[0]);
  return pid;
}

/* Reap what has changed: CMD, the group's orphans (we are their subreaper),
 * the watchdog. Notes a stop of a process of CMD's group. */
static void reap(void) {
  pid_t p;
  int st;
  for (;;) {
    p = waitpid(-1, &st, WNOHANG | WUNTRACED);
    if (p < 0 && errno == EINTR)
      continue;
    if (p <= 0)
      return;
    if (WIFSTOPPED(st)) {
      if (p != R.wd_pid && (p == R.pgid || getpgid(p) == R.pgid))
        R.stop_sig = WSTOPSIG(st);
      continue;
    }
    if (p == R.wd_pid)
      R.wd_pid = -1;
    else if (p == R.pgid) {
      R.cmd_done = 1;
      R.cmd_status = st;
    }
  }
}

static int group_gone(pid_t pgid) {
  return kill(-pgid, 0) != 0 && errno == ESRCH;
}

/* CMD's group stopped on a job-control signal: stop our job too, so that the
 * shell sees it stopped; when continued, continue CMD's group. */
static void stop_with_cmd(void) {
  int sig = R.stop_sig;
  R.stop_sig = 0;
  if (!tty_job || (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU))
    return; /* stopped by someone who will continue it */
  tty_reclaim();
  continued = 0;
  /* Only the main thread takes SIGTSTP (the library's threads block it), so
   * the stop happens before kill() returns, and SIGCONT's handler has run by
   * the time it does. */
  kill(0, SIGTSTP);
  if (!continued) {
    /* Not stopped: our process group is orphaned, nobody would continue it. */
    tty_job = 0;
    return;
  }
  if (tcgetpgrp(0) == getpgrp()) {
    tty_set_foreground(R.pgid);
    tty_given = 1;
  }
  kill(-R.pgid, SIGCONT);
}

static int exit_status(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return EXIT_FAILURE_ZK;
}

/* Supervise CMD's group until it is empty. Returns CMD's exit status, or
 * EXIT_LOST if ownership was lost meanwhile (and the group terminated). */
static int supervise(void) {
  double suspect_since = -1, term_at = -1;
  const char *why = NULL;
  int killed = 0;

  for (;;) {
    double now, wake = -1;
    int ev;

    reap();
    if (R.stop_sig) {
      stop_with_cmd();
      continue;
    }
    if (R.cmd_done && group_gone(R.pgid))
      break;
    now = now_s();
    if (!why && suspect_since >= 0 && now - suspect_since >= R.grace)
      why = "connection lost for longer than the grace period";
    if (why && term_at < 0) {
      kill(-R.pgid, SIGTERM);
      kill(-R.pgid, SIGCONT); /* a stopped process gets its SIGTERM too */
      term_at = now;
    }
    if (why && !killed && now - term_at >= opt.kill_after_s) {
      kill(-R.pgid, SIGKILL);
      killed = 1;
    }
    if (!why && suspect_since >= 0)
      wake = suspect_since + R.grace;
    if (why && !killed)
      wake = term_at + opt.kill_after_s;
    if (R.cmd_done && (wake < 0 || wake > now + GROUP_POLL_S))
      wake = now + GROUP_POLL_S; /* orphans outside our reach: no SIGCHLD */
    ev = ev_next(ms_until(wake));
    switch (ev) {
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
      for (int sig; (sig = take_signal()) != 0;)
        kill(-R.pgid, sig); /* passed on; the group's exit decides ours */
      break;
    default: break; /* EV_CHILD: reaped at the top */
    }
  }
  tty_reclaim();
  if (why) {
    warn("%s lost (%s) while the command ran; command terminated", R.what, why);
    return EXIT_LOST;
  }
  return exit_status(R.cmd_status);
}

static void on_released(zkr_lock_t *l, int rc, void *arg) {
  (void)l, (void)arg;
  atomic_store(&release_rc, rc);
  post(EV_RELEASED);
}

static void on_session_event(zkr_session_t *s, int ev, void *arg) {
  (void)s, (void)arg;
  if (ev != ZKR_SESSION_CONNECTED && ev != ZKR_SESSION_RECONNECTED)
    post(EV_DISCONNECTED);
}

/* Delete the lock node and wait (at most RELEASE_MS) for the server to confirm.
 * The connection can drop after the look at the state and before the reply
 * (the server stopped just as CMD ended): then there is nothing to wait for,
 * and zkr says so and goes, as when it was not connected to begin with. A
 * signal also ends the wait; closing the session removes the node anyway
 * while connected. */
static void release_at_exit(zkr_session_t *s, const char *path) {
  double until = now_s() + RELEASE_MS / 1000.0;
  const char *left = NULL;
  unsigned id = 0;
  int listening = zkr_session_add_listener(s, on_session_event, NULL, &id) == 0;
  int rc;

  if (zkr_session_state(s) != ZKR_STATE_CONNECTED)
    left = "not connected to ZooKeeper at exit";
  else if ((rc = zkr_lock_release_async(g_lock, RELEASE_MS, on_released, NULL)) != 0)
    left = zkr_strerror(rc);
  while (!left) {
    int ev = ev_next(ms_until(until));
    if (ev == EV_RELEASED) {
      if ((rc = atomic_load(&release_rc)) == ZKR_ETIMEDOUT)
        left = "the server did not confirm the delete in time";
      else if (rc != 0)
        left = zkr_strerror(rc);
      break;
    }
    if (ev == EV_DISCONNECTED || ev == EV_SUSPECT || ev == EV_LOST)
      left = "not connected to ZooKeeper at exit (the connection dropped during the "
             "delete)";
    else if (ev == EV_SIGNAL)
      left = "interrupted while deleting the lock node";
    else if (ev < 0 && ms_until(until) == 0)
      left = "the server did not confirm the delete in time";
  }
  if (listening)
    zkr_session_remove_listener(s, id);
  if (left)
    warn("lock %s: %s; the lock node goes when the session ends", path, left);
}

static int cmd_run(const char *path, char **cmd, int ncmd, int elect) {
  zkr_session_t *s;
  char fence[64], env1[PATH_MAX + 32], env2[128], env3[64];
  char *extra[] = {fence, env1, env2, NULL, NULL};
  int rc, timeout_ms = seconds_to_ms(opt.wait_s);

  R.elect = elect;
  R.what = elect ? "leadership" : "lock";
  R.path = path;
  if (elect && (!opt.id || !*opt.id))
    die(EXIT_USAGE, "elect: --id ID is required (see zkr help elect)");
  if (ncmd == 0)
    die(EXIT_USAGE, "%s: missing '--' and the command to run (see zkr help %s)",
        elect ? "elect" : "lock", elect ? "elect" : "lock");
  setup_signals();
  s = session_make();
  /* The recipe object before connecting: a bad path is a usage error at once. */
  if (elect) {
    rc = zkr_election_new(s, path, opt.id, (int)strlen(opt.id), &g_election);
    if (rc == 0)
      rc = zkr_election_set_listener(g_election, election_event, NULL);
    if (rc == 0) /* a candidate whose session expired while it waits joins again */
      rc = zkr_election_set_rejoin(g_election, 1);
  } else {
    if (opt.semaphore)
      rc = opt.max_from ? zkr_semaphore_new_shared(s, path, opt.max_from, &g_sem)
                        : zkr_semaphore_new_profile(s, path, opt.max, opt.profile, &g_sem);
    else if (opt.rw && (rc = zkr_rwlock_new(s, path, &g_rwlock)) == 0)
      g_lock = opt.rw == 1 ? zkr_rwlock_read(g_rwlock) : zkr_rwlock_write(g_rwlock);
    else if (!opt.rw)
      rc = zkr_lock_new(s, path, &g_lock);
    if (rc == 0 && opt.id && !opt.semaphore &&
        (rc = zkr_lock_set_data(g_lock, opt.id, (int)strlen(opt.id))))
      die(EXIT_USAGE, "--id: %s", zkr_strerror(rc));
    if (rc == 0 && !opt.semaphore)
      rc = zkr_lock_set_listener(g_lock, lock_event, NULL);
  }
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "%s %s: the root and paths under /zookeeper cannot be used",
        elect ? "elect" : "lock", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "%s %s: %s", elect ? "elect" : "lock", path, zkr_strerror(rc));

  session_connect(s);
  R.grace = opt.grace_s >= 0 ? opt.grace_s : zkr_session_negotiated_timeout(s) / 1000.0;
  if (elect) {
    if ((rc = zkr_election_start(g_election)) != 0 ||
        (rc = zkr_election_await_async(g_election, timeout_ms, on_awaited, NULL)) != 0)
      die(EXIT_FAILURE_ZK, "elect %s: %s", path, zkr_strerror(rc));
  } else if (opt.semaphore) {
    if ((rc = zkr_semaphore_acquire_async(g_sem, 1, timeout_ms, on_leased, NULL)) != 0)
      die(EXIT_FAILURE_ZK, "semaphore %s: %s", path, zkr_strerror(rc));
  } else if ((rc = zkr_lock_acquire_async(g_lock, timeout_ms, on_granted, NULL)) != 0) {
    die(EXIT_FAILURE_ZK, "lock %s: %s", path, zkr_strerror(rc));
  }
  await_grant();
  if (elect)
    zkr_election_set_rejoin(g_election, 0); /* a leadership lost is not sought again */
  test_delay();
  await_go();

  if (elect) {
    int64_t epoch;
    if (zkr_election_epoch(g_election, &epoch) != 0)
      die(EXIT_LOST, "leadership lost before the command started; command not started");
    snprintf(fence, sizeof(fence), "ZKR_FENCE=%" PRId64, epoch);
    snprintf(env1, sizeof(env1), "ZKR_ELECTION_PATH=%s", path);
    snprintf(env2, sizeof(env2), "ZKR_EPOCH=%" PRId64, epoch);
  } else {
    zkr_lock_token_t tok;
    if (zkr_lock_token(g_lock, &tok) != 0)
      die(EXIT_LOST, "lock lost before the command started; command not started");
    snprintf(fence, sizeof(fence), "ZKR_FENCE=%" PRId64, tok.czxid);
    snprintf(env1, sizeof(env1), "ZKR_LOCK_PATH=%s", path);
    snprintf(env2, sizeof(env2), "ZKR_LOCK_NODE=%s", tok.node);
    if (opt.semaphore && zkr_lease_slot(g_lock) >= 0) { /* (none: native profile) */
      snprintf(env3, sizeof(env3), "ZKR_LEASE_SLOT=%d", zkr_lease_slot(g_lock));
      extra[3] = env3;
    }
  }
  R.env = build_env(extra);
  build_exec(cmd, ncmd);
  /* The group's orphans become our children: reaped here, not left as zombies
   * that would keep the group (and so the lock) alive. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  start_watchdog();
  spawn(cmd);
  free_exec();
  rc = supervise();
  stop_watchdog();

  /* Let go. Connected: delete the node and wait (bounded) for the server to
   * confirm. Not connected: nothing to wait for; the node goes when the server
   * expires the session (or at once, if the connection comes back in time for
   * the close). */
  if (elect ? zkr_election_epoch(g_election, &(int64_t){0}) == 0
            : zkr_lock_is_held(g_lock)) {
    if (zkr_session_state(s) != ZKR_STATE_CONNECTED)
      warn("%s %s: not connected to ZooKeeper at exit; the %s node goes when the "
           "session expires",
           elect ? "elect" : "lock", path, elect ? "candidate" : "lock");
    else if (!elect)
      release_at_exit(s, path);
  }
  cleanup_objects();
  return rc;
}

/* ---- counter and holders ---- */

static int cmd_counter(const char *path, char **args, int nargs) {
  zkr_session_t *s;
  zkr_counter_t *c;
  int64_t v = 0, a1 = 0, a2 = 0;
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
  /* Every number before connecting. */
  if (!strcmp(op, "cas")) {
    a1 = parse_i64("cas OLD", args[1]);
    a2 = parse_i64("cas NEW", args[2]);
  } else if (nargs == 2) {
    a1 = parse_i64(op, args[1]);
  }
  s = session_make();
  if ((rc = zkr_counter_new(s, path, opt.int32 ? ZKR_COUNTER_INT32 : ZKR_COUNTER_INT64,
                            &c)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "counter %s: %s", path,
        rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                         : zkr_strerror(rc));
  if (opt.at_most_once)
    zkr_counter_set_mode(c, ZKR_COUNTER_AT_MOST_ONCE);
  session_connect(s);
  if (!strcmp(op, "get"))
    rc = zkr_counter_get(c, 30000, &v);
  else if (!strcmp(op, "add"))
    rc = zkr_counter_add(c, a1, 30000, &v);
  else if (!strcmp(op, "set"))
    rc = zkr_counter_set(c, v = a1, 30000);
  else
    rc = zkr_counter_cas(c, a1, v = a2, 30000, &v);
  zkr_counter_free(c);
  session_end(s);
  g_session = NULL;
  if (rc == 0 || rc == ZKR_EMISMATCH) {
    if (opt.json) {
      json_t *doc = json_object();
      json_object_set_new(doc, "path", json_string(path));
      json_object_set_new(doc, "value", json_integer(v));
      if (!strcmp(op, "cas"))
        json_object_set_new(doc, "applied", json_boolean(rc == 0));
      print_json(doc);
    } else {
      printf("%" PRId64 "\n", v);
    }
    fflush(stdout);
  }
  switch (rc) {
  case 0: return 0;
  case ZKR_EMISMATCH:
    conflict("counter %s: cas did not apply: the value is %" PRId64, path, v);
  case ZKR_EBADDATA:
    die(EXIT_FAILURE_ZK, "counter %s: node data is not a %d-byte counter%s", path,
        opt.int32 ? 4 : 8, opt.int32 ? "" : " (try --int32?)");
  case ZKR_EOVERFLOW: die(EXIT_FAILURE_ZK, "counter %s: the result would overflow", path);
  case ZKR_EUNKNOWN: die_unknown("counter", path, "the change");
  default: die(EXIT_FAILURE_ZK, "counter %s: %s", path, zkr_strerror(rc));
  }
}

/* Printable data as text, anything else as hex; at most 60 bytes shown. */
static void print_data(FILE *to, const char *d, int len) {
  int text = 1, shown = len > 60 ? 60 : len;
  if (len < 0 || !d) {
    fprintf(to, "-");
    return;
  }
  for (int i = 0; i < len; i++)
    if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7e)
      text = 0;
  if (text)
    fprintf(to, "%.*s", shown, d);
  else
    for (int i = 0; i < shown; i++)
      fprintf(to, "%02x", (unsigned char)d[i]);
  if (len > shown)
    fprintf(to, "... (%d bytes)", len);
}

/* ---- JSON (--json) ---- */

/* One document, compact, on one line. */
static void print_json(json_t *doc) {
  if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) != 0)
    die(EXIT_FAILURE_ZK, "out of memory writing JSON");
  putchar('\n');
  json_decref(doc);
}

/* Node data under key: a string when it is UTF-8, else null plus <key>_hex;
 * null when the node has none. */
static void json_data(json_t *o, const char *key, const char *d, int len) {
  json_t *str = len >= 0 && d ? json_stringn(d, (size_t)len) : NULL;
  char hkey[32];
  char *hex;
  if (str || len < 0 || !d) {
    json_object_set_new(o, key, str ? str : json_null());
    return;
  }
  if (!(hex = malloc((size_t)len * 2 + 1)))
    die(EXIT_FAILURE_ZK, "out of memory");
  for (int i = 0; i < len; i++)
    snprintf(hex + 2 * i, 3, "%02x", (unsigned char)d[i]);
  snprintf(hkey, sizeof(hkey), "%s_hex", key);
  json_object_set_new(o, key, json_null());
  json_object_set_new(o, hkey, json_string(hex));
  free(hex);
}

static json_t *json_session(int64_t id) {
  char b[24];
  if (!id)
    return json_null();
  snprintf(b, sizeof(b), "0x%016" PRIx64, (uint64_t)id);
  return json_string(b);
}

static json_t *json_contender(const zkr_contender_t *c, int pos) {
  json_t *o = json_object();
  int known = c->format != ZKR_FORMAT_UNKNOWN;
  if (!o)
    die(EXIT_FAILURE_ZK, "out of memory");
  json_object_set_new(o, "position", known ? json_integer(pos) : json_null());
  json_object_set_new(o, "node", json_string(c->name));
  json_object_set_new(o, "sequence", known ? json_integer(c->sequence) : json_null());
  json_object_set_new(o, "format", json_string(zkr_format_name(c->format)));
  json_object_set_new(o, "reader", json_boolean(c->reader));
  json_object_set_new(o, "owner_session", json_session(c->owner_session));
  json_object_set_new(o, "czxid", json_integer(c->czxid));
  json_data(o, "data", c->data, c->data_len);
  return o;
}

/* The children of path, for holders and leader: exits on errors. */
static int list_contenders(const char *cmd, const char *path, zkr_contender_t **c, int *n) {
  zkr_session_t *s = session_make();
  int rc;
  session_connect(s);
  rc = zkr_contenders_list(s, path, 30000, c, n);
  if (rc == 0 && *n == 0) {
    /* No children, or no node: only the server can tell which. */
    zhandle_t *zh = zkr_session_zhandle(s);
    rc = zh ? zoo_exists(zh, path, 0, NULL) : ZCONNECTIONLOSS;
  }
  if (rc == ZNONODE)
    die(EXIT_FAILURE_ZK, "%s %s: no such node", cmd, path);
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "%s: bad path '%s'", cmd, path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "%s %s: %s", cmd, path, zkr_strerror(rc));
  session_end(s);
  g_session = NULL;
  return 0;
}

/* The leader's line (text or JSON) into a malloc'd string; NULL when nobody
 * leads and the output is text. */
static char *leader_line(const char *path, const zkr_contender_t *c, int n) {
  const zkr_contender_t *l = n > 0 && c[0].format != ZKR_FORMAT_UNKNOWN ? &c[0] : NULL;
  char *line = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&line, &len);
  if (!f)
    die(EXIT_FAILURE_ZK, "out of memory");
  if (opt.json) {
    json_t *doc = json_object(), *lo = json_null();
    if (l) {
      lo = json_object();
      json_data(lo, "id", l->data, l->data_len);
      json_object_set_new(lo, "node", json_string(l->name));
      json_object_set_new(lo, "epoch", json_integer(l->czxid));
      json_object_set_new(lo, "owner_session", json_session(l->owner_session));
      json_object_set_new(lo, "format", json_string(zkr_format_name(l->format)));
    }
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, "leader", lo);
    if (json_dumpf(doc, f, JSON_COMPACT) != 0)
      die(EXIT_FAILURE_ZK, "out of memory writing JSON");
    json_decref(doc);
  } else if (l) {
    print_data(f, l->data, l->data_len);
  }
  fclose(f);
  if (!l && !opt.json) {
    free(line);
    return NULL;
  }
  return line;
}

static void on_children_watch(zhandle_t *zh, int type, int state, const char *p, void *ctx) {
  (void)zh, (void)type, (void)state, (void)p, (void)ctx;
  post(EV_WATCH);
}

static void on_watch_session(zkr_session_t *s, int event, void *arg) {
  (void)s, (void)arg;
  if (event == ZKR_SESSION_CONNECTED || event == ZKR_SESSION_RECONNECTED ||
      event == ZKR_SESSION_LOST)
    post(EV_SESSION);
}

/* leader --watch: a line now and one for each change of leader (an empty text
 * line when nobody leads), until a signal. A child watch on PATH (an existence
 * watch while it is missing) wakes the loop; so does the session coming back,
 * which re-arms the watch on a new session. */
static int watch_leader(const char *path) {
  zkr_session_t *s;
  char *last = NULL;
  int have_last = 0;

  setup_signals();
  s = session_make();
  if (zkr_session_add_listener(s, on_watch_session, NULL, NULL) != 0)
    die(EXIT_FAILURE_ZK, "out of memory");
  session_connect(s);
  for (;;) {
    zhandle_t *zh = zkr_session_zhandle(s);
    struct String_vector v = {0, NULL};
    int rc = zh ? zoo_wget_children(zh, path, on_children_watch, NULL, &v) : ZCONNECTIONLOSS;
    if (rc == ZOK)
      deallocate_String_vector(&v);
    else if (rc == ZNONODE)
      rc = zoo_wexists(zh, path, on_children_watch, NULL, NULL) == ZNONODE ? ZOK : ZNONODE;
    if (rc == ZOK) {
      zkr_contender_t *c = NULL;
      int n = 0, lrc = zkr_contenders_list(s, path, 30000, &c, &n);
      if (lrc == 0 || lrc == ZNONODE) {
        char *line = leader_line(path, c, n);
        if (!have_last || (line == NULL) != (last == NULL) || (line && strcmp(line, last))) {
          printf("%s\n", line ? line : "");
          fflush(stdout);
          free(last);
          last = line;
          have_last = 1;
        } else {
          free(line);
        }
        zkr_contenders_free(c, n);
      } else if (zkr_session_state(s) == ZKR_STATE_CONNECTED) {
        post(EV_WATCH); /* a read that failed while connected: try again */
      }
    } else if (rc != ZNONODE && zkr_session_state(s) == ZKR_STATE_CONNECTED &&
               rc != ZCONNECTIONLOSS && rc != ZSESSIONEXPIRED && rc != ZINVALIDSTATE) {
      die(EXIT_FAILURE_ZK, "leader %s: %s", path, zkr_strerror(rc));
    } else if (rc == ZNONODE) {
      post(EV_WATCH); /* created between the two calls */
    }
    /* Else the connection is down: the session's event wakes us. */
    for (;;) {
      int ev = ev_next(-1);
      if (ev == EV_SIGNAL)
        quit_if_signalled();
      if (ev == EV_WATCH || ev == EV_SESSION)
        break;
    }
  }
}

/* ---- get, set, watch ---- */

static json_t *json_stat(const char *path, const char *d, int len, const struct Stat *st) {
  json_t *o = json_object();
  if (!o)
    die(EXIT_FAILURE_ZK, "out of memory");
  json_object_set_new(o, "path", json_string(path));
  json_data(o, "data", d, len);
  json_object_set_new(o, "czxid", json_integer(st->czxid));
  json_object_set_new(o, "mzxid", json_integer(st->mzxid));
  json_object_set_new(o, "version", json_integer(st->version));
  json_object_set_new(o, "length", json_integer(st->dataLength));
  json_object_set_new(o, "ephemeral_owner", json_session(st->ephemeralOwner));
  return o;
}

/* A node cache on s for path, started, with its first view read. */
static zkr_node_cache_t *cache_open(zkr_session_t *s, const char *cmd, const char *path,
                                    zkr_node_cache_listener_fn fn) {
  zkr_node_cache_t *c;
  int rc;
  if ((rc = zkr_node_cache_new(s, path, &c)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "%s %s: %s", cmd, path,
        rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                         : zkr_strerror(rc));
  g_cache = c;
  if (fn && (rc = zkr_node_cache_set_listener(c, fn, NULL)) != 0)
    die(EXIT_FAILURE_ZK, "%s %s: %s", cmd, path, zkr_strerror(rc));
  if ((rc = zkr_node_cache_start(c)) != 0)
    die(EXIT_FAILURE_ZK, "%s %s: %s", cmd, path, zkr_strerror(rc));
  return c;
}

static int cmd_get(const char *path) {
  zkr_session_t *s = session_make();
  zkr_node_cache_t *c = cache_open(s, "get", path, NULL);
  struct Stat st;
  char *data = NULL;
  int len = -1, rc;

  session_connect(s);
  rc = zkr_node_cache_wait(c, NULL, 30000, &data, &len, &st);
  if (rc == ZNONODE)
    die(EXIT_FAILURE_ZK, "get %s: no such node", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "get %s: %s", path, zkr_strerror(rc));
  if (opt.json)
    print_json(json_stat(path, data, len, &st));
  else if (len > 0 && fwrite(data, 1, (size_t)len, stdout) != (size_t)len)
    die(EXIT_FAILURE_ZK, "get %s: writing the data: %s", path, strerror(errno));
  free(data);
  if (fflush(stdout) != 0)
    die(EXIT_FAILURE_ZK, "get %s: writing the data: %s", path, strerror(errno));
  cleanup_objects();
  return 0;
}

/* VALUE, or standard input for "-". */
static char *read_value(const char *v, int *len) {
  size_t n = 0, cap = 4096;
  char *buf;
  if (strcmp(v, "-")) {
    size_t l = strlen(v);
    if (l > INT_MAX)
      die(EXIT_USAGE, "set: VALUE too long");
    *len = (int)l;
    return strdup(v);
  }
  if (!(buf = malloc(cap)))
    die(EXIT_FAILURE_ZK, "out of memory");
  for (;;) {
    size_t r;
    if (n == cap) {
      char *m;
      if (cap > 64u * 1024 * 1024 || !(m = realloc(buf, cap *= 2)))
        die(EXIT_USAGE, "set: standard input is too large for a node");
      buf = m;
    }
    r = fread(buf + n, 1, cap - n, stdin);
    n += r;
    if (r == 0) {
      if (ferror(stdin))
        die(EXIT_FAILURE_ZK, "set: reading standard input: %s", strerror(errno));
      break;
    }
  }
  *len = (int)n;
  return buf;
}

/* Create every missing ancestor of path, persistent and empty. */
static int make_parents(zhandle_t *zh, const char *path, const struct ACL_vector *acl) {
  char *p = strdup(path);
  int rc = ZOK;
  if (!p)
    return ZKR_ENOMEM;
  for (char *q = strchr(p + 1, '/'); q && rc == ZOK; q = strchr(q + 1, '/')) {
    *q = '\0';
    rc = zoo_create(zh, p, NULL, -1, acl, 0, NULL, 0);
    if (rc == ZNODEEXISTS)
      rc = ZOK;
    *q = '/';
  }
  free(p);
  return rc;
}

static int cmd_set(const char *path, const char *value) {
  zkr_session_t *s = session_make();
  struct Stat st;
  zhandle_t *zh;
  int len, rc, created = 0;
  char *data;

  data = read_value(value, &len);
  if (!data)
    die(EXIT_FAILURE_ZK, "out of memory");
  session_connect(s);
  zh = zkr_session_zhandle(s);
  memset(&st, 0, sizeof(st));
  for (int tries = 0;; tries++) {
    rc = zh ? zoo_set2(zh, path, data, len, (int)opt.set_version, &st) : ZCONNECTIONLOSS;
    if (rc != ZNONODE || opt.set_version >= 0 || tries > 8)
      break;
    /* Missing: create it (and its parents); if someone else did meanwhile, set. */
    rc = zoo_create(zh, path, data, len, zkr_session_acl(s), 0, NULL, 0);
    if (rc == ZNONODE && (rc = make_parents(zh, path, zkr_session_acl(s))) == ZOK)
      rc = zoo_create(zh, path, data, len, zkr_session_acl(s), 0, NULL, 0);
    if (rc == ZOK) {
      created = 1;
      break;
    }
    if (rc != ZNODEEXISTS && rc != ZNONODE)
      break;
  }
  free(data);
  if (rc == ZBADVERSION) {
    struct Stat now;
    if (zoo_exists(zh, path, 0, &now) == ZOK)
      conflict("set %s: version %lld expected, now %d", path, (long long)opt.set_version,
               now.version);
    conflict("set %s: version %lld expected; the node changed", path,
             (long long)opt.set_version);
  }
  if (rc == ZNONODE)
    die(EXIT_FAILURE_ZK, "set %s: no such node", path);
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
    die(EXIT_FAILURE_ZK, "set %s: %s: the write may or may not have applied", path,
        zkr_strerror(rc));
  if (rc != ZOK)
    die(EXIT_FAILURE_ZK, "set %s: %s", path, zkr_strerror(rc));
  if (opt.json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, "version", json_integer(created ? 0 : st.version));
    json_object_set_new(doc, "created", json_boolean(created));
    print_json(doc);
  } else {
    printf("%d\n", created ? 0 : st.version);
  }
  fflush(stdout);
  cleanup_objects();
  return 0;
}

/* watch: events wait in a list for the main thread (callback context must not
 * block on our stdout or on a command). */
typedef struct wev {
  struct wev *next;
  int type, exists, len, gap, missed;
  struct Stat stat;
  char *path; /* points into data[], after the node's data */
  char data[];
} wev_t;

static pthread_mutex_t wev_mu = PTHREAD_MUTEX_INITIALIZER;
static wev_t *wev_head, **wev_tail = &wev_head;

static void on_event_any(const zkr_cache_event_t *ev) {
  size_t n = ev->len > 0 ? (size_t)ev->len : 0, pl = strlen(ev->path);
  wev_t *w = calloc(1, sizeof(*w) + n + 1 + pl + 1);
  if (!w)
    return; /* the next event carries the state anyway */
  w->type = ev->type;
  w->exists = ev->exists;
  w->len = ev->len;
  w->gap = ev->gap;
  w->missed = ev->missed;
  w->stat = ev->stat;
  if (n)
    memcpy(w->data, ev->data, n);
  w->path = w->data + n + 1;
  memcpy(w->path, ev->path, pl + 1);
  pthread_mutex_lock(&wev_mu);
  *wev_tail = w;
  wev_tail = &w->next;
  pthread_mutex_unlock(&wev_mu);
  post(EV_WATCH);
}

static void on_cache_event(zkr_node_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c, (void)arg;
  on_event_any(ev);
}

static void on_kids_event(zkr_children_cache_t *c, const zkr_cache_event_t *ev, void *arg) {
  (void)c, (void)arg;
  on_event_any(ev);
}

static void on_tree_event(zkr_tree_cache_t *t, const zkr_cache_event_t *ev, void *arg) {
  (void)t, (void)arg;
  on_event_any(ev);
}

static wev_t *wev_take_all(void) {
  wev_t *all;
  pthread_mutex_lock(&wev_mu);
  all = wev_head;
  wev_head = NULL;
  wev_tail = &wev_head;
  pthread_mutex_unlock(&wev_mu);
  return all;
}

static void print_event(const char *path, const wev_t *w) {
  const char *name = zkr_cache_event_name(w->type);
  /* --children, --tree: the node's path under PATH after the event (NULL for
   * PATH's own events). */
  int sub = opt.children || opt.tree >= 0;
  const char *child = sub && strlen(w->path) > strlen(path) ? w->path + strlen(path) + 1 : NULL;
  if (opt.json) {
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(name));
    json_object_set_new(o, "path", json_string(w->path));
    json_object_set_new(o, "exists", json_boolean(w->exists));
    json_data(o, "data", w->exists ? w->data : NULL, w->exists ? w->len : -1);
    json_object_set_new(o, "czxid", json_integer(w->stat.czxid));
    json_object_set_new(o, "mzxid", json_integer(w->stat.mzxid));
    json_object_set_new(o, "version", json_integer(w->exists ? w->stat.version : -1));
    json_object_set_new(o, "gap", json_boolean(w->gap));
    json_object_set_new(o, "missed", json_integer(w->missed));
    print_json(o);
  } else if (w->type == ZKR_CACHE_RESYNC_BEGIN || w->type == ZKR_CACHE_RESYNC_END ||
             w->type == ZKR_CACHE_PARENT_ABSENT || w->type == ZKR_CACHE_STOPPED) {
    printf("%s\n", name);
  } else if (w->type == ZKR_CACHE_CHILDREN_MISSED) {
    printf("%s %d\n", name, w->missed);
  } else if (child && w->type == ZKR_CACHE_REMOVED) {
    printf("%s%s %s\n", name, w->gap ? " (after a gap)" : "", child);
  } else if (child) {
    printf("%s%s %s version %d: ", name, w->gap ? " (after a gap)" : "", child,
           w->stat.version);
    print_data(stdout, w->data, w->len);
    putchar('\n');
  } else if (sub && w->type == ZKR_CACHE_INITIALIZED) {
    printf("%s%s\n", name, w->exists ? "" : " (absent)");
  } else if (!w->exists) {
    printf("%s%s (absent)\n", name, w->gap ? " (after a gap)" : "");
  } else {
    printf("%s%s version %d: ", name, w->gap ? " (after a gap)" : "", w->stat.version);
    print_data(stdout, w->data, w->len);
    putchar('\n');
  }
}

/* Run cmd with extra in its environment and data (len bytes) on its standard
 * input; its exit status (127: it could not be started). what names the
 * command's use in a warning. */
static int run_with_input(char **cmd, char **extra, const char *data, int len,
                          const char *what) {
  char **env = build_env(extra);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t def, pipe_set, old;
  int in[2], st, err;
  pid_t pid;

  if (pipe2(in, O_CLOEXEC) != 0)
    die(EXIT_FAILURE_ZK, "pipe: %s", strerror(errno));
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawnattr_init(&at);
  sigemptyset(&def);
  for (int i = 0; i < NHANDLED; i++)
    sigaddset(&def, handled[i]);
  posix_spawnattr_setsigdefault(&at, &def);
  posix_spawnattr_setsigmask(&at, &orig_mask);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  cloexec_own_fds();
  err = posix_spawnp(&pid, cmd[0], &fa, &at, cmd, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(env);
  close(in[0]);
  if (err != 0) {
    close(in[1]);
    warn("%s: cannot run %s: %s", what, cmd[0], strerror(err));
    return 127;
  }
  /* The data on its stdin; a command that does not read it is not an error. */
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  for (int off = 0; data && off < len;) {
    ssize_t n = write(in[1], data + off, (size_t)(len - off));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    off += (int)n;
  }
  close(in[1]);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      die(EXIT_FAILURE_ZK, "waitpid: %s", strerror(errno));
  return exit_status(st);
}

/* One run of the watch command with the state of w; its exit status. */
static int run_watch_cmd(char **cmd, const char *path, const wev_t *w) {
  char e[7][64], *extra[8], what[64];
  int st;

  snprintf(e[0], sizeof(e[0]), "ZKR_EVENT=%s", zkr_cache_event_name(w->type));
  snprintf(e[1], sizeof(e[1]), "ZKR_EXISTS=%d", w->exists);
  snprintf(e[2], sizeof(e[2]), "ZKR_VERSION=%d", w->exists ? w->stat.version : -1);
  snprintf(e[3], sizeof(e[3]), "ZKR_CZXID=%lld", (long long)w->stat.czxid);
  snprintf(e[4], sizeof(e[4]), "ZKR_MZXID=%lld", (long long)w->stat.mzxid);
  snprintf(e[5], sizeof(e[5]), "ZKR_GAP=%d", w->gap);
  for (int i = 0; i < 6; i++)
    extra[i] = e[i];
  if (asprintf(&extra[6], "ZKR_WATCH_PATH=%s",
               opt.children || opt.tree >= 0 ? w->path : path) < 0)
    die(EXIT_FAILURE_ZK, "out of memory");
  extra[7] = NULL;
  snprintf(what, sizeof(what), "watch %.50s", path);
  st = run_with_input(cmd, extra, w->exists ? w->data : NULL, w->exists ? w->len : 0, what);
  free(extra[6]);
  return st;
}

static int cmd_watch(const char *path, char **cmd) {
  zkr_session_t *s;
  wev_t *latest = NULL;

  setup_signals();
  s = session_make();
  if (opt.tree >= 0) {
    int rc;
    if ((rc = zkr_tree_cache_new(s, path, opt.tree, &g_tree)) != 0 ||
        (rc = zkr_tree_cache_set_listener(g_tree, on_tree_event, NULL)) != 0 ||
        (rc = zkr_tree_cache_start(g_tree)) != 0)
      die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "watch %s: %s", path,
          rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                           : zkr_strerror(rc));
  } else if (opt.children) {
    int rc;
    if ((rc = zkr_children_cache_new(s, path, ZKR_CHILDREN_DATA, &g_kids)) != 0 ||
        (rc = zkr_children_cache_set_listener(g_kids, on_kids_event, NULL)) != 0 ||
        (rc = zkr_children_cache_start(g_kids)) != 0)
      die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "watch %s: %s", path,
          rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                           : zkr_strerror(rc));
  } else {
    cache_open(s, "watch", path, on_cache_event);
  }
  session_connect(s);
  for (;;) {
    int ev = ev_next(-1);
    wev_t *all;
    if (ev == EV_SIGNAL)
      quit_if_signalled();
    if (ev != EV_WATCH)
      continue;
    if (!(all = wev_take_all()))
      continue;
    while (all) {
      wev_t *w = all;
      all = w->next;
      if (!cmd) {
        int stopped = w->type == ZKR_CACHE_STOPPED;
        print_event(path, w);
        free(w);
        if (stopped) {
          fflush(stdout);
          die(EXIT_FAILURE_ZK, "watch %s: stopped: the session's watch budget is reached",
              path);
        }
        continue;
      }
      /* Only the latest state runs the command; a bracket's edges are no state. */
      if (w->type == ZKR_CACHE_RESYNC_BEGIN || w->type == ZKR_CACHE_RESYNC_END) {
        free(w);
        continue;
      }
      if (w->type == ZKR_CACHE_STOPPED) {
        free(w);
        die(EXIT_FAILURE_ZK, "watch %s: stopped: the session's watch budget is reached",
            path);
      }
      if (opt.children || opt.tree >= 0) {
        /* Each node's event is news of its own: one run each. */
        int st = run_watch_cmd(cmd, path, w);
        if (st != 0)
          warn("watch %s: %s exited with status %d", w->path, cmd[0], st);
        free(w);
        continue;
      }
      free(latest);
      latest = w;
    }
    if (!cmd) {
      if (fflush(stdout) != 0) {
        cleanup_objects(); /* the reader went away (zkr watch ... | head) */
        exit(errno == EPIPE ? 0 : EXIT_FAILURE_ZK);
      }
      continue;
    }
    if (latest) {
      int st = run_watch_cmd(cmd, path, latest);
      if (st != 0)
        warn("watch %s: %s exited with status %d", path, cmd[0], st);
      free(latest);
      latest = NULL;
    }
  }
}

/* journal follow: events wait in a list for the main thread. */
typedef struct jev {
  struct jev *next;
  int type, len;
  int64_t seq, from, zxid, mtime;
  char data[];
} jev_t;

static pthread_mutex_t jev_mu = PTHREAD_MUTEX_INITIALIZER;
static jev_t *jev_head, **jev_tail = &jev_head;

static void on_journal_event(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  size_t n = ev->len > 0 ? (size_t)ev->len : 0;
  jev_t *e = calloc(1, sizeof(*e) + n + 1);
  (void)j, (void)arg;
  if (!e) {
    /* Every change matters here: better to stop than to skip one. */
    fprintf(stderr, "%s: out of memory: a journal event would be lost\n", prog);
    _exit(EXIT_FAILURE_ZK);
  }
  e->type = ev->type;
  e->len = ev->len;
  e->seq = ev->seq;
  e->from = ev->from;
  e->zxid = ev->zxid;
  e->mtime = ev->mtime;
  if (n)
    memcpy(e->data, ev->data, n);
  pthread_mutex_lock(&jev_mu);
  *jev_tail = e;
  jev_tail = &e->next;
  pthread_mutex_unlock(&jev_mu);
  post(EV_WATCH);
}

static void print_journal_event(const jev_t *e) {
  const char *name = zkr_journal_event_name(e->type);
  if (opt.json) {
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(name));
    json_object_set_new(o, "seq", json_integer(e->seq));
    json_object_set_new(o, "from", json_integer(e->from));
    json_data(o, "data", e->type == ZKR_JOURNAL_ENTRY ? e->data : NULL,
              e->type == ZKR_JOURNAL_ENTRY ? e->len : -1);
    json_object_set_new(o, "zxid", json_integer(e->zxid));
    json_object_set_new(o, "mtime", json_integer(e->mtime));
    print_json(o);
  } else if (e->type == ZKR_JOURNAL_ENTRY) {
    printf("%s %lld: ", name, (long long)e->seq);
    print_data(stdout, e->data, e->len);
    putchar('\n');
  } else if (e->type == ZKR_JOURNAL_TRIMMED) {
    printf("%s %lld..%lld\n", name, (long long)e->from, (long long)e->seq);
  } else if (e->type == ZKR_JOURNAL_RESTARTED) {
    printf("%s %lld\n", name, (long long)e->from);
  } else {
    printf("%s %lld\n", name, (long long)e->seq);
  }
}

static int run_journal_cmd(char **cmd, const char *path, const jev_t *e) {
  char n[4][64], *extra[6], what[64];
  int st;
  snprintf(n[0], sizeof(n[0]), "ZKR_EVENT=%s", zkr_journal_event_name(e->type));
  snprintf(n[1], sizeof(n[1]), "ZKR_SEQ=%lld", (long long)e->seq);
  snprintf(n[2], sizeof(n[2]), "ZKR_FROM=%lld", (long long)e->from);
  snprintf(n[3], sizeof(n[3]), "ZKR_ZXID=%lld", (long long)e->zxid);
  for (int i = 0; i < 4; i++)
    extra[i] = n[i];
  if (asprintf(&extra[4], "ZKR_JOURNAL_PATH=%s", path) < 0)
    die(EXIT_FAILURE_ZK, "out of memory");
  extra[5] = NULL;
  snprintf(what, sizeof(what), "journal %.50s", path);
  st = run_with_input(cmd, extra, e->type == ZKR_JOURNAL_ENTRY ? e->data : NULL,
                      e->type == ZKR_JOURNAL_ENTRY ? e->len : 0, what);
  free(extra[4]);
  return st;
}

static int journal_timeout_ms(void) {
  return opt.wait_s >= 0 ? seconds_to_ms(opt.wait_s) : 30000;
}

static void journal_open(zkr_session_t *s, const char *path) {
  int rc = zkr_journal_new(s, path, &g_journal);
  if (rc != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "journal %s: %s", path,
        rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                         : zkr_strerror(rc));
}

/* The one figure a write or trim prints (--json: {"path", key}); then the end. */
static int journal_result(const char *path, const char *key, int64_t value) {
  if (opt.json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, key, json_integer(value));
    print_json(doc);
  } else {
    printf("%lld\n", (long long)value);
  }
  fflush(stdout);
  cleanup_objects();
  return 0;
}

static int journal_write(const char *path, const char *value) {
  zkr_session_t *s = session_make();
  int64_t seq = -1;
  char *data;
  int len, rc;

  data = read_value(value, &len);
  if (!data)
    die(EXIT_FAILURE_ZK, "out of memory");
  if (len > ZKR_JOURNAL_MAX_DATA)
    die(EXIT_USAGE, "journal %s: VALUE is %d bytes; a journal takes at most %d", path, len,
        ZKR_JOURNAL_MAX_DATA);
  journal_open(s, path);
  session_connect(s);
  rc = zkr_journal_write(g_journal, data, len, (int)opt.set_version, journal_timeout_ms(),
                         &seq);
  free(data);
  if (rc == ZBADVERSION) {
    struct Stat now;
    zhandle_t *zh = zkr_session_zhandle(s);
    if (zh && zoo_exists(zh, path, 0, &now) == ZOK)
      conflict("journal %s: version %lld expected, now %d", path, (long long)opt.set_version,
               now.version);
    conflict("journal %s: version %lld expected; the node changed", path,
             (long long)opt.set_version);
  }
  if (rc == ZNONODE)
    die(EXIT_FAILURE_ZK, "journal %s: no such node", path);
  if (rc == ZKR_EUNKNOWN)
    die_unknown("journal", path, "the write");
  if (rc == ZKR_ETIMEDOUT)
    die(EXIT_FAILURE_ZK, "journal %s: not written within %d ms", path, journal_timeout_ms());
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "journal %s: %s", path, zkr_strerror(rc));
  return journal_result(path, "seq", seq);
}

static int journal_trim(const char *path, const char *up_to) {
  zkr_session_t *s = session_make();
  int64_t limit = !strcmp(up_to, "all") ? INT64_MAX : parse_int("UP_TO", up_to, 0, INT32_MAX);
  int64_t deleted = 0;
  int rc;

  journal_open(s, path);
  session_connect(s);
  rc = zkr_journal_trim(g_journal, limit, opt.keep, journal_timeout_ms(), &deleted);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "journal %s: trim: %s (%lld entries deleted)", path,
        zkr_strerror(rc), (long long)deleted);
  return journal_result(path, "deleted", deleted);
}

static int journal_follow(const char *path, char **cmd) {
  zkr_session_t *s;
  int rc;

  setup_signals();
  s = session_make();
  journal_open(s, path);
  if ((rc = zkr_journal_follow(g_journal, opt.after, on_journal_event, NULL)) != 0)
    die(EXIT_FAILURE_ZK, "journal %s: %s", path, zkr_strerror(rc));
  session_connect(s);
  for (;;) {
    int ev = ev_next(-1), done = 0;
    jev_t *all;
    if (ev == EV_SIGNAL)
      quit_if_signalled();
    if (ev != EV_WATCH)
      continue;
    pthread_mutex_lock(&jev_mu);
    all = jev_head;
    jev_head = NULL;
    jev_tail = &jev_head;
    pthread_mutex_unlock(&jev_mu);
    while (all) {
      jev_t *e = all;
      all = e->next;
      if (!cmd) {
        print_journal_event(e);
      } else if (e->type != ZKR_JOURNAL_CAUGHT_UP) {
        int st = run_journal_cmd(cmd, path, e);
        if (st != 0) {
          long long resume = e->type == ZKR_JOURNAL_ENTRY ? e->seq - 1 : e->from;
          free(e);
          while (all) {
            e = all;
            all = e->next;
            free(e);
          }
          die(EXIT_FAILURE_ZK,
              "journal %s: %s exited with status %d; resume with --after %lld", path,
              cmd[0], st, resume);
        }
      }
      done |= opt.once && e->type == ZKR_JOURNAL_CAUGHT_UP;
      free(e);
    }
    if (fflush(stdout) != 0) {
      cleanup_objects(); /* the reader went away (zkr journal ... | head) */
      exit(errno == EPIPE ? 0 : EXIT_FAILURE_ZK);
    }
    if (done) {
      cleanup_objects();
      return 0;
    }
  }
}

static int cmd_journal(char **pos, int npos, char **cmd, int ncmd, int dashdash) {
  const char *path = pos[0], *sub = npos > 1 ? pos[1] : NULL;
  (void)ncmd;
  if (!sub)
    die(EXIT_USAGE, "journal: want PATH write|follow|trim (see zkr help journal)");
  if (!strcmp(sub, "write")) {
    if (opt.shell_cmd || (dashdash && (ncmd != 1 || npos != 2)) || (!dashdash && npos != 3))
      die(EXIT_USAGE, "journal: want PATH write VALUE, or PATH write -- VALUE");
    return journal_write(path, dashdash ? cmd[0] : pos[2]);
  }
  if (!strcmp(sub, "trim")) {
    if (dashdash || opt.shell_cmd || npos != 3)
      die(EXIT_USAGE, "journal: want PATH trim UP_TO|all [--keep N]");
    return journal_trim(path, pos[2]);
  }
  if (!strcmp(sub, "follow")) {
    static char *shell_argv[4];
    if (npos != 2)
      die(EXIT_USAGE, "journal: unexpected '%s' after follow", pos[2]);
    if (opt.shell_cmd && dashdash)
      die(EXIT_USAGE, "journal: give the command either with -c or after '--', not both");
    if (opt.shell_cmd) {
      const char *sh = getenv("SHELL");
      shell_argv[0] = (char *)(sh && *sh ? sh : "/bin/sh");
      shell_argv[1] = "-c";
      shell_argv[2] = (char *)opt.shell_cmd;
      cmd = shell_argv;
      dashdash = 1;
    }
    if (dashdash && (!cmd || !cmd[0]))
      die(EXIT_USAGE, "journal: missing the command after '--'");
    if (dashdash && opt.json)
      die(EXIT_USAGE, "journal: --json prints events; it does not go with a command");
    return journal_follow(path, dashdash ? cmd : NULL);
  }
  die(EXIT_USAGE, "journal: unknown '%s' (write, follow, trim; see zkr help journal)", sub);
}

/* ---- membership and discovery ---- */

/* The command of join/register: -c 'CMD' as a shell's argv, or what came after
 * "--", or NULL for none. */
static char **shell_or(char **cmd, int *ncmd, int dashdash, const char *what) {
  static char *shell_argv[4];
  if (opt.shell_cmd && dashdash)
    die(EXIT_USAGE, "%s: give the command either with -c or after '--', not both", what);
  if (opt.shell_cmd) {
    const char *sh = getenv("SHELL");
    shell_argv[0] = (char *)(sh && *sh ? sh : "/bin/sh");
    shell_argv[1] = "-c";
    shell_argv[2] = (char *)opt.shell_cmd;
    *ncmd = 3;
    return shell_argv;
  }
  if (dashdash && *ncmd == 0)
    die(EXIT_USAGE, "%s: missing the command after '--'", what);
  return dashdash ? cmd : NULL;
}

/* Run cmd in its own process group with extra in its environment, until it
 * and its group are gone (signals passed on); its exit status. No command:
 * wait for a signal (which ends zkr as usual). */
static int run_while_member(char **cmd, int ncmd, char **extra, const char *what) {
  int rc;
  if (!cmd) {
    for (;;)
      if (ev_next(-1) == EV_SIGNAL)
        quit_if_signalled();
  }
  R.what = what;
  R.grace = 1e12; /* a membership is renewed, never a reason to stop CMD */
  R.env = build_env(extra);
  build_exec(cmd, ncmd);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  start_watchdog();
  spawn(cmd);
  free_exec();
  rc = supervise();
  stop_watchdog();
  return rc;
}

/* --profile's value as one of a command's profiles (names(i) for i = 0, 1, ...:
 * NULL past the last); the first one when not given. */
static int profile_of(const char *(*names)(int), const char *list) {
  int i;
  if (!opt.profile_arg)
    return 0;
  for (i = 0; names(i); i++)
    if (!strcmp(names(i), opt.profile_arg))
      return i;
  die(EXIT_USAGE, "--profile: %s, not '%s'", list, opt.profile_arg);
}

/* ---- queue ---- */

/* Run cmd with the item on its stdin and the item's facts in its environment;
 * its exit status (128+N if killed by signal N). */
static int run_with_item(char **cmd, const char *path) {
  int len, st, fd = memfd_create("zkr-item", 0);
  const char *d = zkr_item_data(g_item, &len);
  char tok[32], prio[32];
  pid_t pid;

  if (fd < 0 || (len > 0 && write(fd, d, (size_t)len) != len) || lseek(fd, 0, SEEK_SET) != 0)
    die(EXIT_FAILURE_ZK, "queue %s: could not hand the item over: %s", path, strerror(errno));
  snprintf(tok, sizeof(tok), "%" PRId64, zkr_item_token(g_item));
  snprintf(prio, sizeof(prio), "%d", zkr_item_priority(g_item));
  fflush(NULL);
  if ((pid = fork()) < 0)
    die(EXIT_FAILURE_ZK, "queue %s: fork: %s", path, strerror(errno));
  if (pid == 0) {
    dup2(fd, 0);
    close(fd);
    setenv("ZKR_QUEUE_PATH", path, 1);
    setenv("ZKR_QUEUE_ITEM", zkr_item_name(g_item), 1);
    setenv("ZKR_QUEUE_TOKEN", tok, 1);
    setenv("ZKR_QUEUE_PRIORITY", prio, 1);
    execvp(cmd[0], cmd);
    fprintf(stderr, "%s: %s: %s\n", prog, cmd[0], strerror(errno));
    _exit(127);
  }
  close(fd);
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      die(EXIT_FAILURE_ZK, "queue %s: waitpid: %s", path, strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmd_queue(char **pos, int npos, char **cmd, int ncmd, int dashdash) {
  const char *path = pos[0], *sub = npos > 1 ? pos[1] : NULL;
  int timeout_ms = seconds_to_ms(opt.wait_s), rc, profile;
  zkr_session_t *s;

  check_path(path);
  profile = profile_of(zkr_queue_profile_name, "curator, simple, kazoo or kazoo-locking");
  if (!sub)
    die(EXIT_USAGE, "queue: want PATH put DATA|take|length (see zkr help queue)");
  if (strcmp(sub, "put") && strcmp(sub, "take") && strcmp(sub, "length"))
    die(EXIT_USAGE, "queue: unknown '%s' (put, take, length; see zkr help queue)", sub);
  if (strcmp(sub, "put") && opt.priority)
    die(EXIT_USAGE, "queue: --priority is for put");
  if (!strcmp(sub, "put") ? npos != 3 || dashdash : npos != 2)
    die(EXIT_USAGE, "queue: want PATH put DATA, PATH take [-- CMD], or PATH length");
  if (strcmp(sub, "take") && (dashdash || opt.shell_cmd))
    die(EXIT_USAGE, "queue: a command goes with take only");
  if (!strcmp(sub, "take"))
    cmd = shell_or(cmd, &ncmd, dashdash, "queue");
  if (cmd && opt.json)
    die(EXIT_USAGE, "queue: --json prints the item; it does not go with a command");
  s = session_make();
  if ((rc = zkr_queue_new(s, path, profile, &g_queue)) != 0)
    die(EXIT_FAILURE_ZK, "queue %s: %s", path, zkr_strerror(rc));
  session_connect(s);
  if (!strcmp(sub, "put")) {
    char name[256];
    const char *data = pos[2];
    rc = zkr_queue_put(g_queue, data, (int)strlen(data), opt.priority,
                       timeout_ms < 0 ? 30000 : timeout_ms, name, sizeof(name));
    if (rc == ZKR_EINVAL)
      die(EXIT_USAGE, "queue %s: priority %d is not one of the %s profile's", path,
          opt.priority, zkr_queue_profile_name(profile));
    if (rc == ZKR_EOVERFLOW)
      die(EXIT_USAGE, "queue %s: the item is over %d bytes", path, ZKR_QUEUE_MAX_ITEM);
    if (rc == ZKR_EUNKNOWN)
      die_unknown("queue", path, "the session expired before the put was settled: the put");
    if (rc != 0)
      die(EXIT_FAILURE_ZK, "queue %s: put: %s", path, zkr_strerror(rc));
    if (opt.json) {
      json_t *o = json_object();
      json_object_set_new(o, "item", *name ? json_string(name) : json_null());
      print_json(o);
    } else if (*name) {
      printf("%s\n", name);
    }
  } else if (!strcmp(sub, "length")) {
    int n;
    if ((rc = zkr_queue_length(g_queue, timeout_ms < 0 ? 30000 : timeout_ms, &n)) != 0)
      die(EXIT_FAILURE_ZK, "queue %s: length: %s", path, zkr_strerror(rc));
    printf("%d\n", n);
  } else {
    int len, st = 0;
    const char *d;
    rc = zkr_queue_take(g_queue, timeout_ms, &g_item);
    if (rc == ZKR_ETIMEDOUT)
      conflict("queue %s: no item within the wait time", path);
    if (rc != 0)
      die(EXIT_FAILURE_ZK, "queue %s: take: %s", path, zkr_strerror(rc));
    d = zkr_item_data(g_item, &len);
    if (cmd) {
      st = run_with_item(cmd, path);
      rc = st == 0 ? zkr_item_commit(g_item, NULL, 0, NULL, 30000)
                   : zkr_item_requeue(g_item, 30000);
      if (rc != 0)
        die(EXIT_FAILURE_ZK, "queue %s: %s %s: %s", path, st == 0 ? "commit" : "requeue",
            zkr_item_name(g_item), zkr_strerror(rc));
    } else {
      if (opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "item", json_string(zkr_item_name(g_item)));
        json_object_set_new(o, "priority", json_integer(zkr_item_priority(g_item)));
        json_object_set_new(o, "token", json_integer(zkr_item_token(g_item)));
        json_data(o, "data", d, len);
        print_json(o);
      } else if (len > 0 && fwrite(d, 1, (size_t)len, stdout) != (size_t)len) {
        die(EXIT_FAILURE_ZK, "queue %s: the item could not be written out: not taken", path);
      }
      if (fflush(stdout) != 0)
        die(EXIT_FAILURE_ZK, "queue %s: the item could not be written out: not taken", path);
      if ((rc = zkr_item_commit(g_item, NULL, 0, NULL, 30000)) != 0)
        die(EXIT_FAILURE_ZK, "queue %s: commit %s: %s (printed; it will be delivered again)",
            path, zkr_item_name(g_item), zkr_strerror(rc));
    }
    zkr_item_free(g_item);
    g_item = NULL;
    cleanup_objects();
    return st;
  }
  cleanup_objects();
  return 0;
}

/* ---- barriers ---- */

static int cmd_barrier(char **pos, int npos, char **cmd, int ncmd, int dashdash) {
  const char *path = pos[0], *sub = npos > 1 ? pos[1] : NULL;
  int timeout_ms = seconds_to_ms(opt.wait_s), rc, st;
  char env1[PATH_MAX + 32], env2[96], node[64];
  char *extra[] = {env1, env2, NULL};
  zkr_session_t *s;

  check_path(path);
  if (opt.profile_set)
    die(EXIT_USAGE, "barrier: --profile is a semaphore or queue option");
  if (!opt.members) {
    if (!sub || npos != 2 || dashdash || opt.shell_cmd)
      die(EXIT_USAGE, "barrier: want PATH set|remove|wait, or PATH --members N -- CMD "
                      "(see zkr help barrier)");
    if (strcmp(sub, "set") && strcmp(sub, "remove") && strcmp(sub, "wait"))
      die(EXIT_USAGE, "barrier: unknown '%s' (set, remove, wait; see zkr help barrier)", sub);
    s = session_make();
    if ((rc = zkr_barrier_new(s, path, &g_barrier)) != 0)
      die(EXIT_FAILURE_ZK, "barrier %s: %s", path, zkr_strerror(rc));
    session_connect(s);
    rc = !strcmp(sub, "set")      ? zkr_barrier_set(g_barrier, timeout_ms < 0 ? 30000 : timeout_ms)
         : !strcmp(sub, "remove") ? zkr_barrier_remove(g_barrier, timeout_ms < 0 ? 30000 : timeout_ms)
                                  : zkr_barrier_wait(g_barrier, timeout_ms);
    if (rc == ZKR_ETIMEDOUT && !strcmp(sub, "wait"))
      conflict("barrier %s: still up after the wait time", path);
    if (rc != 0)
      die(EXIT_FAILURE_ZK, "barrier %s: %s: %s", path, sub, zkr_strerror(rc));
    cleanup_objects();
    return 0;
  }
  if (npos != 1)
    die(EXIT_USAGE, "barrier: unexpected '%s' with --members (see zkr help barrier)", sub);
  cmd = shell_or(cmd, &ncmd, dashdash, "barrier");
  if (!cmd)
    die(EXIT_USAGE, "barrier: --members wants a command: -c 'CMD' or -- CMD");
  setup_signals();
  s = session_make();
  if ((rc = zkr_dbarrier_new(s, path, opt.members, &g_dbarrier)) != 0)
    die(EXIT_FAILURE_ZK, "barrier %s: %s", path, zkr_strerror(rc));
  session_connect(s);
  rc = zkr_dbarrier_enter(g_dbarrier, timeout_ms);
  if (rc == ZKR_ETIMEDOUT)
    conflict("barrier %s: fewer than %d members within the wait time", path, opt.members);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "barrier %s: enter: %s", path, zkr_strerror(rc));
  snprintf(env1, sizeof(env1), "ZKR_BARRIER_PATH=%s", path);
  snprintf(env2, sizeof(env2), "ZKR_BARRIER_NODE=%s",
           zkr_dbarrier_node(g_dbarrier, node, sizeof(node)) ? node : "");
  st = run_while_member(cmd, ncmd, extra, "barrier");
  rc = zkr_dbarrier_leave(g_dbarrier, timeout_ms); /* whatever CMD's status: all wait */
  if (rc == ZKR_ETIMEDOUT)
    conflict("barrier %s: not every member left within the wait time", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "barrier %s: leave: %s", path, zkr_strerror(rc));
  cleanup_objects();
  return st;
}

static int cmd_join(const char *path, char **cmd, int ncmd) {
  char env1[PATH_MAX + 32], env2[64];
  char *extra[] = {env1, env2, NULL};
  zkr_session_t *s;
  int64_t epoch = 0;
  int rc;

  if (!opt.id || !*opt.id)
    die(EXIT_USAGE, "join: --id ID is required (see zkr help join)");
  setup_signals();
  s = session_make();
  rc = zkr_member_new(s, path, opt.id, opt.kazoo ? ZKR_GROUP_KAZOO : ZKR_GROUP_CURATOR,
                      &g_member);
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "join %s: a bad path or id ('%s': a node name, no '/')", path, opt.id);
  if (rc == 0 && opt.data)
    rc = zkr_member_set_data(g_member, opt.data, (int)strlen(opt.data));
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "join %s: %s", path, zkr_strerror(rc));
  session_connect(s);
  rc = zkr_member_join(g_member, seconds_to_ms(opt.wait_s), &epoch);
  if (rc == ZKR_EDUPLICATE)
    conflict("join %s: id %s is held by another session", path, opt.id);
  if (rc == ZKR_ETIMEDOUT)
    conflict("join %s: not joined within the wait time", path);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "join %s: %s", path, zkr_strerror(rc));
  snprintf(env1, sizeof(env1), "ZKR_MEMBER_NODE=%s", zkr_member_node(g_member));
  snprintf(env2, sizeof(env2), "ZKR_EPOCH=%" PRId64, epoch);
  rc = run_while_member(cmd, ncmd, extra, "membership");
  cleanup_objects(); /* leaves: the node goes */
  return rc;
}

/* members --watch: events wait in a list for the main thread. */
typedef struct mev {
  struct mev *next;
  int type;
  int64_t epoch;
  char id[];
} mev_t;

static pthread_mutex_t mev_mu = PTHREAD_MUTEX_INITIALIZER;
static mev_t *mev_head, **mev_tail = &mev_head;

static void on_group_event(zkr_group_t *g, int ev, const zkr_group_member_t *m, void *arg) {
  size_t n = m ? strlen(m->id) : 0;
  mev_t *e = calloc(1, sizeof(*e) + n + 1);
  (void)g, (void)arg;
  if (!e)
    return;
  e->type = ev;
  e->epoch = m ? m->epoch : 0;
  if (m)
    memcpy(e->id, m->id, n);
  pthread_mutex_lock(&mev_mu);
  *mev_tail = e;
  mev_tail = &e->next;
  pthread_mutex_unlock(&mev_mu);
  post(EV_WATCH);
}

static json_t *member_json(const zkr_group_member_t *m) {
  json_t *o = json_object();
  char owner[32];
  snprintf(owner, sizeof(owner), "0x%" PRIx64, (uint64_t)m->owner);
  json_object_set_new(o, "id", json_string(m->id));
  json_object_set_new(o, "format", json_string(zkr_group_profile_name(m->format)));
  json_object_set_new(o, "epoch", json_integer(m->epoch));
  json_object_set_new(o, "owner", json_string(owner));
  json_object_set_new(o, "node", json_string(m->node));
  json_data(o, "data", m->data, m->len);
  return o;
}

static void print_members(zkr_group_member_t *list, int n) {
  if (opt.json) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
      json_array_append_new(a, member_json(&list[i]));
    print_json(a);
    return;
  }
  for (int i = 0; i < n; i++) {
    printf("%s\t%s\t0x%" PRIx64 "\t", list[i].id, zkr_group_profile_name(list[i].format),
           (uint64_t)list[i].epoch);
    print_data(stdout, list[i].data, list[i].len);
    putchar('\n');
  }
}

static int cmd_members(const char *path) {
  zkr_session_t *s;
  zkr_group_member_t *list = NULL;
  int n = 0, rc;
  double until;

  setup_signals();
  s = session_make();
  if ((rc = zkr_group_new(s, path, &g_group)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "members %s: %s", path,
        rc == ZKR_EINVAL ? "the root and paths under /zookeeper cannot be used"
                         : zkr_strerror(rc));
  zkr_group_set_listener(g_group, on_group_event, NULL);
  session_connect(s);
  if ((rc = zkr_group_start(g_group)) != 0)
    die(EXIT_FAILURE_ZK, "members %s: %s", path, zkr_strerror(rc));
  /* The first listing: INITIALIZED among the events. */
  until = now_s() + 30;
  for (int ready = 0; !ready;) {
    int ev = ev_next(ms_until(until));
    if (ev < 0)
      die(EXIT_FAILURE_ZK, "members %s: no answer from ZooKeeper in 30 s", path);
    if (ev == EV_SIGNAL)
      quit_if_signalled();
    pthread_mutex_lock(&mev_mu);
    for (mev_t *e = mev_head; e; e = e->next)
      ready |= e->type == ZKR_CACHE_INITIALIZED;
    pthread_mutex_unlock(&mev_mu);
  }
  rc = zkr_group_list(g_group, &list, &n);
  if (rc == ZNONODE && !opt.watch)
    die(EXIT_FAILURE_ZK, "members %s: no such group", path);
  if (rc != 0 && rc != ZNONODE)
    die(EXIT_FAILURE_ZK, "members %s: %s", path, zkr_strerror(rc));
  if (!opt.watch) {
    print_members(list, n);
    zkr_group_members_free(list, n);
    fflush(stdout);
    cleanup_objects();
    return 0;
  }
  /* --watch: the members now, then each change. */
  for (int i = 0; i < n; i++) {
    if (opt.json) {
      json_t *o = member_json(&list[i]);
      json_object_set_new(o, "event", json_string("ADDED"));
      print_json(o);
    } else {
      printf("ADDED %s\n", list[i].id);
    }
  }
  zkr_group_members_free(list, n);
  fflush(stdout);
  pthread_mutex_lock(&mev_mu); /* what the listing already shows */
  while (mev_head) {
    mev_t *e = mev_head;
    mev_head = e->next;
    free(e);
  }
  mev_tail = &mev_head;
  pthread_mutex_unlock(&mev_mu);
  for (;;) {
    int ev = ev_next(-1);
    mev_t *all;
    if (ev == EV_SIGNAL)
      quit_if_signalled();
    if (ev != EV_WATCH)
      continue;
    pthread_mutex_lock(&mev_mu);
    all = mev_head;
    mev_head = NULL;
    mev_tail = &mev_head;
    pthread_mutex_unlock(&mev_mu);
    while (all) {
      mev_t *e = all;
      all = e->next;
      if (opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string(zkr_cache_event_name(e->type)));
        json_object_set_new(o, "id", e->id[0] || e->type <= ZKR_CACHE_REMOVED
                                         ? json_string(e->id)
                                         : json_null());
        json_object_set_new(o, "epoch", json_integer(e->epoch));
        print_json(o);
      } else if (e->id[0]) {
        printf("%s %s\n", zkr_cache_event_name(e->type), e->id);
      } else {
        printf("%s\n", zkr_cache_event_name(e->type));
      }
      free(e);
    }
    if (fflush(stdout) != 0) {
      cleanup_objects();
      exit(errno == EPIPE ? 0 : EXIT_FAILURE_ZK);
    }
  }
}

static json_t *instance_json(const zkr_service_instance_t *in) {
  char *raw = NULL;
  json_t *o;
  json_error_t err;
  /* The instance as Curator writes it, plus what the node told. */
  if (zkr_service_instance_to_json(in, &raw) != 0 || !(o = json_loads(raw, 0, &err)))
    o = json_object();
  free(raw);
  json_object_set_new(o, "enabled", json_boolean(in->enabled));
  json_object_set_new(o, "epoch", json_integer(in->epoch));
  return o;
}

static int cmd_register(char **cmd, int ncmd) {
  zkr_service_instance_t in;
  zkr_session_t *s;
  char env1[PATH_MAX + 32], env2[160];
  char *extra[] = {env1, env2, NULL};
  int rc;

  if (!opt.name || !opt.address)
    die(EXIT_USAGE, "register: --name and --address are required (see zkr help register)");
  if (opt.service_type == ZKR_SERVICE_PERMANENT && cmd)
    die(EXIT_USAGE, "register: a --permanent instance stays: it takes no command");
  zkr_service_instance_init(&in);
  in.name = (char *)opt.name;
  in.id = (char *)opt.id;
  in.address = (char *)opt.address;
  in.port = opt.port;
  in.ssl_port = opt.ssl_port;
  in.payload = (char *)opt.payload;
  in.uri_spec = (char *)opt.uri_spec;
  in.service_type = opt.service_type;
  {
    char *probe = NULL; /* bad fields are usage errors, before connecting */
    if (!in.id)
      in.id = "probe";
    if (zkr_service_instance_to_json(&in, &probe) != 0)
      die(EXIT_USAGE, "register: --payload must be JSON, --uri-spec a template with "
                      "closed '{...}'");
    free(probe);
    in.id = (char *)opt.id;
  }
  setup_signals();
  s = session_make();
  session_connect(s);
  rc = zkr_service_register(s, opt.base, &in, seconds_to_ms(opt.wait_s), &g_reg);
  if (rc == ZKR_EINVAL)
    die(EXIT_USAGE, "register: a bad --base, --name or --id");
  if (rc == ZKR_EDUPLICATE)
    conflict("register %s/%s: id %s is held by another session", opt.base, opt.name,
             opt.id ? opt.id : "?");
  if (rc == ZKR_ETIMEDOUT)
    conflict("register %s/%s: not registered within the wait time", opt.base, opt.name);
  if (rc != 0)
    die(EXIT_FAILURE_ZK, "register %s/%s: %s", opt.base, opt.name, zkr_strerror(rc));
  printf("%s\n", zkr_service_reg_id(g_reg));
  fflush(stdout);
  if (opt.service_type == ZKR_SERVICE_PERMANENT) {
    cleanup_objects(); /* it stays */
    return 0;
  }
  snprintf(env1, sizeof(env1), "ZKR_SERVICE_NODE=%s", zkr_service_reg_node(g_reg));
  snprintf(env2, sizeof(env2), "ZKR_SERVICE_ID=%s", zkr_service_reg_id(g_reg));
  rc = run_while_member(cmd, ncmd, extra, "membership");
  cleanup_objects(); /* unregisters */
  return rc;
}

static int cmd_services(const char *name) {
  zkr_session_t *s = session_make();
  int rc;

  session_connect(s);
  if (!name) {
    char **names = NULL;
    int n = 0;
    rc = zkr_service_names(s, opt.base, 30000, &names, &n);
    if (rc == ZNONODE)
      die(EXIT_FAILURE_ZK, "services %s: no such node", opt.base);
    if (rc != 0)
      die(EXIT_FAILURE_ZK, "services %s: %s", opt.base, zkr_strerror(rc));
    if (opt.json) {
      json_t *a = json_array();
      for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
      print_json(a);
    } else {
      for (int i = 0; i < n; i++)
        printf("%s\n", names[i]);
    }
    zkr_service_names_free(names, n);
  } else {
    zkr_service_cache_t *c;
    zkr_service_instance_t *list = NULL;
    int n = 0;
    if ((rc = zkr_service_cache_new(s, opt.base, name, &c)) != 0)
      die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "services %s %s: %s", opt.base,
          name, zkr_strerror(rc));
    if ((rc = zkr_service_cache_start(c)) != 0 ||
        (rc = zkr_service_cache_wait_ready(c, 30000)) != 0 ||
        (rc = zkr_service_cache_list(c, 0, &list, &n)) != 0)
      die(EXIT_FAILURE_ZK, "services %s %s: %s", opt.base, name, zkr_strerror(rc));
    if (opt.json) {
      json_t *a = json_array();
      for (int i = 0; i < n; i++)
        json_array_append_new(a, instance_json(&list[i]));
      print_json(a);
    } else {
      for (int i = 0; i < n; i++) {
        printf("%s %s", list[i].id, list[i].address ? list[i].address : "-");
        if (list[i].port >= 0)
          printf(":%d", list[i].port);
        printf("%s\n", list[i].enabled ? "" : " disabled");
      }
    }
    zkr_service_instances_free(list, n);
    zkr_service_cache_free(c);
  }
  fflush(stdout);
  cleanup_objects();
  return 0;
}

static int cmd_pick(const char *name) {
  zkr_session_t *s = session_make();
  zkr_service_provider_t *p;
  zkr_service_instance_t got;
  int rc;

  session_connect(s);
  if ((rc = zkr_service_provider_new(s, opt.base, name, opt.strategy, &p)) != 0)
    die(rc == ZKR_EINVAL ? EXIT_USAGE : EXIT_FAILURE_ZK, "pick %s %s: %s", opt.base, name,
        zkr_strerror(rc));
  if ((rc = zkr_service_provider_wait_ready(p, 30000)) != 0 ||
      (rc = zkr_service_provider_get(p, &got)) != 0) {
    zkr_service_provider_free(p);
    if (rc == ZNONODE)
      die(EXIT_FAILURE_ZK, "pick %s %s: no instance", opt.base, name);
    die(EXIT_FAILURE_ZK, "pick %s %s: %s", opt.base, name, zkr_strerror(rc));
  }
  if (opt.json) {
    print_json(instance_json(&got));
  } else {
    printf("%s", got.address ? got.address : "");
    if (got.port >= 0)
      printf(":%d", got.port);
    putchar('\n');
  }
  zkr_service_instance_clear(&got);
  zkr_service_provider_free(p);
  fflush(stdout);
  cleanup_objects();
  return 0;
}

static int cmd_discovery(const char *command, char **pos, int npos, char **cmd, int ncmd,
                         int dashdash) {
  if (!opt.base)
    die(EXIT_USAGE, "%s: --base BASE is required (see zkr help %s)", command, command);
  check_path(opt.base);
  if (!strcmp(command, "register")) {
    if (npos > 0)
      die(EXIT_USAGE, "register: unexpected '%s' (see zkr help register)", pos[0]);
    return cmd_register(shell_or(cmd, &ncmd, dashdash, "register"), ncmd);
  }
  if (dashdash || opt.shell_cmd)
    die(EXIT_USAGE, "%s: does not run a command", command);
  if (!strcmp(command, "services")) {
    if (npos > 1)
      die(EXIT_USAGE, "services: unexpected '%s' (see zkr help services)", pos[1]);
    return cmd_services(npos ? pos[0] : NULL);
  }
  if (npos != 1)
    die(EXIT_USAGE, "pick: want --base BASE NAME (see zkr help pick)");
  return cmd_pick(pos[0]);
}

static int cmd_leader(const char *path) {
  zkr_contender_t *c;
  int n, leads;
  char *line;

  if (opt.watch)
    return watch_leader(path);
  list_contenders("leader", path, &c, &n);
  leads = n > 0 && c[0].format != ZKR_FORMAT_UNKNOWN;
  if ((line = leader_line(path, c, n)))
    printf("%s\n", line);
  free(line);
  zkr_contenders_free(c, n);
  fflush(stdout);
  if (!leads)
    conflict("leader %s: nobody leads", path);
  return 0;
}


/* A kazoo Semaphore lease: P/<hex32>. */
static int kazoo_lease(const zkr_contender_t *c) {
  return c->format == ZKR_FORMAT_UNKNOWN && strlen(c->name) == 32 &&
         strspn(c->name, "0123456789abcdef") == 32;
}

/* A lease's place among the leases: by sequence, or (kazoo's, which have none)
 * by creation. */
static int lease_rank(const zkr_contender_t *c, int n, int i) {
  int r = 0;
  if (!kazoo_lease(&c[i]))
    return i;
  for (int j = 0; j < n; j++)
    r += kazoo_lease(&c[j]) && c[j].czxid < c[i].czxid;
  return r;
}

static int cmd_holders(const char *path, int nargs) {
  zkr_contender_t *c;
  int n;

  char *leases = NULL;
  int max = -1;

  if (nargs != 0)
    die(EXIT_USAGE, "holders: takes only PATH");
  list_contenders("holders", path, &c, &n);
  /* A semaphore's path: its leases are what holds. */
  for (int i = 0; i < n && !leases; i++) {
    if (!strcmp(c[i].name, "leases") && asprintf(&leases, "%s/leases", path) < 0)
      die(EXIT_FAILURE_ZK, "holders: out of memory");
  }
  if (leases) {
    zkr_contenders_free(c, n);
    list_contenders("holders", leases, &c, &n);
    path = leases;
  }
  /* Leases hold while there are at most max (a zkrecipes lease's data says it);
   * a lease beyond that, the newest, waits. */
  for (int i = 0, m; i < n && max < 0; i++) {
    char slot[16];
    if (c[i].data && sscanf(c[i].data, "zkr-lease %15[0-9?]/%d", slot, &m) == 2)
      max = m;
  }
  if (opt.json) {
    json_t *doc = json_object(), *arr = json_array();
    for (int i = 0; i < n; i++)
      json_array_append_new(arr, json_contender(&c[i], i + 1));
    json_object_set_new(doc, "path", json_string(path));
    json_object_set_new(doc, "contenders", arr);
    print_json(doc);
    zkr_contenders_free(c, n);
    free(leases);
    return 0;
  }
  printf("%-4s %-11s %-18s %-24s %-56s %s\n", "POS", "SEQUENCE", "OWNER", "FORMAT",
         "NODE", "DATA");
  for (int i = 0, writer_ahead = 0; i < n; i++) {
    char pos[16], seq[16], owner[24];
    /* Holding (*): the first; with readers, every reader before the first
     * writer too (they hold together). */
    int lease = c[i].format == ZKR_FORMAT_CURATOR_LEASE || kazoo_lease(&c[i]);
    int holds = lease ? max < 0 || lease_rank(c, n, i) < max
                      : i == 0 || (c[i].reader && !writer_ahead);
    if (c[i].format == ZKR_FORMAT_UNKNOWN && lease) {
      snprintf(pos, sizeof(pos), "%d%s", lease_rank(c, n, i) + 1, holds ? "*" : "");
      snprintf(seq, sizeof(seq), "-");
    } else if (c[i].format == ZKR_FORMAT_UNKNOWN) {
      snprintf(pos, sizeof(pos), "-");
      snprintf(seq, sizeof(seq), "-");
    } else {
      if (!c[i].reader)
        writer_ahead = 1;
      snprintf(pos, sizeof(pos), "%d%s", i + 1, holds ? "*" : "");
      snprintf(seq, sizeof(seq), "%" PRId32, c[i].sequence);
    }
    if (c[i].owner_session)
      snprintf(owner, sizeof(owner), "0x%016" PRIx64, (uint64_t)c[i].owner_session);
    else
      snprintf(owner, sizeof(owner), "persistent");
    printf("%-4s %-11s %-18s %-24s %-56s ", pos, seq, owner, zkr_format_name(c[i].format),
           c[i].name);
    print_data(stdout, c[i].data, c[i].data_len);
    printf("%s\n", c[i].reader ? " [reader]" : lease ? " [lease]" : "");
  }
  zkr_contenders_free(c, n);
  free(leases);
  return 0;
}

/* ---- main ---- */

static const struct option longopts[] = {
    {"hosts", required_argument, NULL, 'H'},
    {"session-timeout", required_argument, NULL, 's'},
    {"connect-timeout", required_argument, NULL, 'C'},
    {"command", required_argument, NULL, 'c'},
    {"nonblock", no_argument, NULL, 'n'},
    {"nb", no_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 'w'},
    {"conflict-exit-code", required_argument, NULL, 'E'},
    {"json", no_argument, NULL, 'J'},
    {"watch", no_argument, NULL, 'W'},
    {"children", no_argument, NULL, 'K'},
    {"tree", required_argument, NULL, 'T'},
    {"quiet", no_argument, NULL, 'q'},
    {"silent", no_argument, NULL, 'q'},
    {"auth", required_argument, NULL, 'a'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"wait", required_argument, NULL, 'w'},
    {"id", required_argument, NULL, 'i'},
    {"int32", no_argument, NULL, '4'},
    {"at-most-once", no_argument, NULL, 'M'},
    {"grace", required_argument, NULL, 'g'},
    {"kill-after", required_argument, NULL, 'k'},
    {"after", required_argument, NULL, 'A'},
    {"once", no_argument, NULL, 'O'},
    {"keep", required_argument, NULL, 'P'},
    {"data", required_argument, NULL, 1001},
    {"kazoo", no_argument, NULL, 1002},
    {"base", required_argument, NULL, 1003},
    {"name", required_argument, NULL, 1004},
    {"address", required_argument, NULL, 1005},
    {"port", required_argument, NULL, 1006},
    {"ssl-port", required_argument, NULL, 1007},
    {"payload", required_argument, NULL, 1008},
    {"permanent", no_argument, NULL, 1009},
    {"static", no_argument, NULL, 1010},
    {"uri-spec", required_argument, NULL, 1011},
    {"strategy", required_argument, NULL, 1012},
    {"read", no_argument, NULL, 1013},
    {"write", no_argument, NULL, 1014},
    {"max", required_argument, NULL, 1015},
    {"max-from", required_argument, NULL, 1016},
    {"profile", required_argument, NULL, 1017},
    {"members", required_argument, NULL, 1018},
    {"priority", required_argument, NULL, 1019},
    {NULL, 0, NULL, 0}};
static const char *shortopts = ":H:s:c:a:vhw:nE:qV";
static int want_help;

/* The name to give in an error about the value of option o: the environment
 * variable it came from, else the option's name. */
#define OPTNAME(given, name) (strncmp((given), "ZKR_", 4) ? (name) : (given))

static void apply(int o, const char *arg, const char *as_given) {
  switch (o) {
  case 'H': opt.hosts = arg; break;
  case 's': opt.session_ms = parse_int(OPTNAME(as_given, "--session-timeout"), arg, 1, 3600000); break;
  case 'C': opt.connect_ms = parse_int(OPTNAME(as_given, "--connect-timeout"), arg, 1, 3600000); break;
  case 'c': opt.shell_cmd = arg; break;
  case 'n': opt.wait_s = 0; break;
  case 'E': opt.conflict_exit = parse_int(OPTNAME(as_given, "-E"), arg, 0, 255); break;
  case 'q': opt.quiet = 1; break;
  case 'J': opt.json = 1; break;
  case 'W': opt.watch = 1; break;
  case 'K': opt.children = 1; break;
  case 'T': opt.tree = parse_int(OPTNAME(as_given, "--tree"), arg, 0, 64); break;
  case 'A': opt.after = parse_int("--after", arg, -1, INT32_MAX); break;
  case 'O': opt.once = 1; break;
  case 'P': opt.keep = parse_int("--keep", arg, 0, INT32_MAX); break;
  case 1001: opt.data = arg; break;
  case 1002: opt.kazoo = 1; break;
  case 1003: opt.base = arg; break;
  case 1004: opt.name = arg; break;
  case 1005: opt.address = arg; break;
  case 1006: opt.port = parse_int("--port", arg, 0, 65535); break;
  case 1007: opt.ssl_port = parse_int("--ssl-port", arg, 0, 65535); break;
  case 1008: opt.payload = arg; break;
  case 1009: opt.service_type = ZKR_SERVICE_PERMANENT; break;
  case 1010: opt.service_type = ZKR_SERVICE_STATIC; break;
  case 1011: opt.uri_spec = arg; break;
  case 1013: opt.rw = 1; break;
  case 1014: opt.rw = 2; break;
  case 1015: opt.max = parse_int("--max", arg, 1, 100000); break;
  case 1016: opt.max_from = arg; break;
  case 1018: opt.members = parse_int("--members", arg, 1, 10000); break;
  case 1017: /* (its names depend on the command: see profile_of) */
    opt.profile_arg = arg;
    opt.profile_set = 1;
    break;
  case 1019: opt.priority = parse_int("--priority", arg, INT32_MIN, INT32_MAX); break;
  case 1012:
    if (!strcmp(arg, "random"))
      opt.strategy = ZKR_PICK_RANDOM;
    else if (!strcmp(arg, "round-robin"))
      opt.strategy = ZKR_PICK_ROUND_ROBIN;
    else
      die(EXIT_USAGE, "--strategy: random or round-robin, not '%s'", arg);
    break;
  case 'a': opt.auth = arg; break;
  case 'v': opt.verbose++; break;
  case 'h': want_help = 1; break;
  case 'V': printf("zkr (zkrecipes) %s\n", zkr_version_string()); exit(0);
  case 'w': opt.wait_s = parse_seconds(OPTNAME(as_given, "-w"), arg); break;
  case 'i': opt.id = arg; break;
  case '4': opt.int32 = 1; break;
  case 'M': opt.at_most_once = 1; break;
  case 'g': opt.grace_s = parse_seconds(OPTNAME(as_given, "--grace"), arg); break;
  case 'k': opt.kill_after_s = parse_seconds(OPTNAME(as_given, "--kill-after"), arg); break;
  case ':': die(EXIT_USAGE, "option %s needs a value (see zkr --help)", as_given);
  default: die(EXIT_USAGE, "unknown option '%s' (see zkr --help)", as_given);
  }
}

/* Every option with a value (and -q) can also come from the environment; the
 * command line wins. An empty variable counts as unset. */
static const struct {
  const char *var;
  int opt;
} env_opts[] = {{"ZKR_SESSION_TIMEOUT", 's'}, {"ZKR_CONNECT_TIMEOUT", 'C'},
                {"ZKR_WAIT", 'w'},            {"ZKR_CONFLICT_EXIT_CODE", 'E'},
                {"ZKR_ID", 'i'},              {"ZKR_GRACE", 'g'},
                {"ZKR_KILL_AFTER", 'k'}};

static void env_options(void) {
  const char *q = getenv("ZKR_QUIET");
  for (size_t i = 0; i < sizeof(env_opts) / sizeof(env_opts[0]); i++) {
    const char *v = getenv(env_opts[i].var);
    if (v && *v)
      apply(env_opts[i].opt, v, env_opts[i].var);
  }
  if (q && *q && strcmp(q, "0"))
    opt.quiet = 1;
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
 * value, never an option, so options are picked out by hand, as getopt would
 * (bundled short options like -vv, values attached or not). */
static int parse_counter_args(int argc, char **argv, int first, char **pos, int maxpos) {
  int npos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
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
      else if (lo->has_arg == no_argument)
        apply(lo->val, NULL, a);
      else if (eq)
        apply(lo->val, eq + 1, a);
      else if (i + 1 < argc)
        apply(lo->val, argv[++i], a);
      else
        apply(':', NULL, a);
      continue;
    }
    for (const char *f = a + 1; *f; f++) {
      const char *p = *f == ':' ? NULL : strchr(shortopts + 1, *f);
      char as_given[3] = {'-', *f, '\0'};
      if (!p) {
        apply('?', NULL, as_given);
      } else if (p[1] != ':') {
        apply(*f, NULL, as_given);
      } else if (f[1]) {
        apply(*f, f + 1, as_given); /* -Hhost:port */
        break;
      } else if (i + 1 < argc) {
        apply(*f, argv[++i], as_given);
        break;
      } else {
        apply(':', NULL, as_given);
      }
    }
  }
  return npos;
}

int main(int argc, char **argv) {
  char **cmd = NULL, *pos[5];
  int ncmd = 0, dashdash = 0, o, npos, first;
  const char *command;

  sigprocmask(SIG_SETMASK, NULL, &orig_mask);
  nfds_at_start = fd_list(&fds_at_start);
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
  env_options();
  while ((o = getopt_long(argc, argv, "+:H:s:c:a:vhw:nE:qV", longopts, NULL)) != -1)
    apply(o, optarg, argv[optind - 1]);
  command = optind < argc ? argv[optind] : NULL;
  first = optind + 1;
  if (command && !strcmp(command, "help")) {
    if (help(first < argc ? argv[first] : NULL, stdout) == 0)
      return 0;
    fprintf(stderr, "%s: no help on '%s' (lock, elect, counter, holders, leader)\n", prog,
            argv[first]);
    help(NULL, stderr);
    return EXIT_USAGE;
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
      strcmp(command, "holders") && strcmp(command, "leader") && strcmp(command, "get") &&
      strcmp(command, "set") && strcmp(command, "watch") && strcmp(command, "journal") &&
      strcmp(command, "members") && strcmp(command, "join") && strcmp(command, "register") &&
      strcmp(command, "services") && strcmp(command, "pick") && strcmp(command, "semaphore") &&
      strcmp(command, "barrier") && strcmp(command, "queue"))
    die(EXIT_USAGE,
        "unknown command '%s' (lock, semaphore, elect, counter, holders, leader, get, set, "
        "watch, journal, members, join, register, services, pick, barrier, queue; see zkr "
        "--help)",
        command);
  if (!strcmp(command, "set") || !strcmp(command, "journal")) {
    /* set's --version V is not the global --version: take it out first. */
    for (int i = first; i < argc; i++) {
      const char *a = argv[i], *v = NULL;
      int take = 0;
      if (!strcmp(a, "--version")) {
        if (i + 1 >= argc)
          die(EXIT_USAGE, "%s: --version needs a value (see zkr help %s)", command, command);
        v = argv[i + 1];
        take = 2;
      } else if (!strncmp(a, "--version=", 10)) {
        v = a + 10;
        take = 1;
      }
      if (take) {
        opt.set_version = parse_int("--version", v, 0, INT_MAX);
        memmove(&argv[i], &argv[i + take], (size_t)(argc - i - take) * sizeof(*argv));
        argc -= take;
        i--;
      }
    }
  }
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
  if (!strcmp(command, "register") || !strcmp(command, "services") ||
      !strcmp(command, "pick"))
    return cmd_discovery(command, pos, npos, cmd, ncmd, dashdash);
  if (npos < 1)
    die(EXIT_USAGE, "%s: missing PATH (see zkr help %s)", command, command);
  check_path(pos[0]);
  if (!strcmp(command, "members")) {
    if (npos > 1 || dashdash || opt.shell_cmd)
      die(EXIT_USAGE, "members: takes only PATH (see zkr help members)");
    return cmd_members(pos[0]);
  }
  if (!strcmp(command, "join")) {
    if (npos > 1)
      die(EXIT_USAGE, "join: unexpected '%s' (see zkr help join)", pos[1]);
    return cmd_join(pos[0], shell_or(cmd, &ncmd, dashdash, "join"), ncmd);
  }
  if (!strcmp(command, "journal"))
    return cmd_journal(pos, npos, cmd, ncmd, dashdash);
  if (!strcmp(command, "barrier"))
    return cmd_barrier(pos, npos, cmd, ncmd, dashdash);
  if (!strcmp(command, "queue"))
    return cmd_queue(pos, npos, cmd, ncmd, dashdash);
  if (opt.members)
    die(EXIT_USAGE, "%s: --members is a barrier option", command);
  if (!strcmp(command, "semaphore")) {
    opt.semaphore = 1;
    if (!opt.max == !opt.max_from)
      die(EXIT_USAGE, "semaphore: give the maximum: --max N or --max-from COUNTER_PATH "
                      "(see zkr help semaphore)");
    if (opt.rw)
      die(EXIT_USAGE, "semaphore: --read and --write are lock options");
    if (opt.max_from)
      check_path(opt.max_from);
    opt.profile = profile_of(zkr_semaphore_profile_name, "curator, kazoo or native");
    if (opt.max_from && opt.profile != ZKR_SEMAPHORE_CURATOR)
      die(EXIT_USAGE, "semaphore: --max-from is for the curator profile (kazoo's maximum "
                      "is PATH's data: give --max)");
  } else if (opt.max || opt.max_from || opt.profile_set) {
    die(EXIT_USAGE, "%s: --max, --max-from and --profile are semaphore options", command);
  }
  if (opt.priority)
    die(EXIT_USAGE, "%s: --priority is a queue option", command);
  if (!strcmp(command, "lock") || !strcmp(command, "elect") || !strcmp(command, "semaphore") ||
      (!strcmp(command, "watch") && (dashdash || opt.shell_cmd))) {
    static char *shell_argv[4];
    if (opt.shell_cmd && dashdash)
      die(EXIT_USAGE, "%s: give the command either with -c or after '--', not both",
          command);
    if (opt.shell_cmd) {
      /* As flock -c: one string, run by the user's shell. */
      const char *sh = getenv("SHELL");
      shell_argv[0] = (char *)(sh && *sh ? sh : "/bin/sh");
      shell_argv[1] = "-c";
      shell_argv[2] = (char *)opt.shell_cmd;
      cmd = shell_argv;
      ncmd = 3;
      dashdash = 1;
    }
    if (!dashdash)
      die(EXIT_USAGE,
          "%s: missing the command to run: -c 'COMMAND' or -- CMD [ARGS...] (see zkr "
          "help %s)",
          command, command);
    if (npos > 1)
      die(EXIT_USAGE, "%s: unexpected '%s' before '--' (see zkr help %s)", command,
          pos[1], command);
    if (!strcmp(command, "watch")) {
      if (opt.json)
        die(EXIT_USAGE, "watch: --json prints events; it does not go with a command");
      return cmd_watch(pos[0], cmd);
    }
    return cmd_run(pos[0], cmd, ncmd, !strcmp(command, "elect"));
  }
  if (!strcmp(command, "set")) {
    if (opt.shell_cmd || (dashdash && (ncmd != 1 || npos != 1)) || (!dashdash && npos != 2))
      die(EXIT_USAGE, "set: want PATH VALUE, or PATH -- VALUE (see zkr help set)");
    return cmd_set(pos[0], dashdash ? cmd[0] : pos[1]);
  }
  if (dashdash || opt.shell_cmd)
    die(EXIT_USAGE, "%s: does not run a command (%s given)", command,
        dashdash ? "'--'" : "-c");
  if (!strcmp(command, "counter"))
    return cmd_counter(pos[0], pos + 1, npos - 1);
  if (npos > 1)
    die(EXIT_USAGE, "%s: unexpected '%s' (takes only PATH)", command, pos[1]);
  if (!strcmp(command, "leader"))
    return cmd_leader(pos[0]);
  if (!strcmp(command, "get"))
    return cmd_get(pos[0]);
  if (!strcmp(command, "watch"))
    return cmd_watch(pos[0], NULL);
  return cmd_holders(pos[0], npos - 1);
}
