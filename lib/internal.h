/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/internal.h - what the core gives the recipes. Not installed.
 *
 * Threading model (read this before writing a recipe):
 * - Every asynchronous ZooKeeper call goes through zkr__call_begin/_end, which
 *   records it on the session's current client handle. Its handler runs exactly
 *   once in callback context: with the reply, or with ZCLOSING if the handle is
 *   closed first (the record is drained after zookeeper_close returns, so nothing
 *   leaks and nothing runs twice).
 * - "Callback context" = the library's dispatch mutex (one for the process,
 *   recursive) is held and the thread-local depth counter is non-zero. Handlers,
 *   watch handlers, timer functions and listeners all run there, so they never
 *   run concurrently, even across sessions, an old and a new client handle or the
 *   timer thread; a callback may free objects of any session without deadlock.
 * - Lock order: dispatch mutex -> recipe object mutex -> session mutex. User
 *   callbacks are called with no recipe or session mutex held.
 */
#ifndef ZKR_INTERNAL_H
#define ZKR_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>

#include "zkrecipes.h"

#define ZKR__HIDDEN __attribute__((visibility("hidden")))

/* Longest path a caller may pass (bytes, without the NUL). Recipes append at most
 * 64 bytes of node name, well under the server's limits. */
#define ZKR__PATH_MAX 1024

/* ---- time ---- */
ZKR__HIDDEN int64_t zkr__now_ms(void);
ZKR__HIDDEN int64_t zkr__now_ns(void);
/* Absolute deadline for a poll(2)-style timeout: -1 stays -1 (forever). */
ZKR__HIDDEN int64_t zkr__deadline(int timeout_ms);
/* With mu held: wait on cv until *flag is non-zero, at most timeout_ms (-1: no
 * limit, 0: only look). 0, or ZKR_ETIMEDOUT (mu held again either way). */
ZKR__HIDDEN int zkr__cond_wait_flag(pthread_cond_t *cv, pthread_mutex_t *mu, const int *flag,
                                    int timeout_ms);

/* ---- logging ---- */
ZKR__HIDDEN int zkr__log_enabled(int level);
/* A debug trace line: nothing is formatted unless debug is on. */
#define ZKR__TRACE(...)                                                                 \
  do {                                                                                   \
    if (zkr__log_enabled(ZKR_LOG_DEBUG))                                                 \
      zkr__log(ZKR_LOG_DEBUG, __VA_ARGS__);                                              \
  } while (0)
ZKR__HIDDEN void zkr__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The log hook given to every ZooKeeper client handle. */
ZKR__HIDDEN void zkr__zoo_log(const char *message);

/* ---- callback context ---- */
ZKR__HIDDEN int zkr__in_callback(void);
ZKR__HIDDEN void zkr__dispatch_enter(zkr_session_t *s);
ZKR__HIDDEN void zkr__dispatch_leave(zkr_session_t *s);

/* ---- waiter: how a sync call waits for its async form ---- */
typedef struct zkr__waiter {
  sem_t sem;
  int rc;
} zkr__waiter_t;

ZKR__HIDDEN int zkr__waiter_init(zkr__waiter_t *w);
ZKR__HIDDEN void zkr__waiter_destroy(zkr__waiter_t *w);
ZKR__HIDDEN void zkr__waiter_signal(zkr__waiter_t *w, int rc);
/* Wait until signalled (once) and return the signalled rc. Every caller's async
 * form guarantees its callback by its own deadline timer. */
ZKR__HIDDEN int zkr__waiter_wait(zkr__waiter_t *w);

/* ---- validation ---- */
/* 0 if path is an absolute ZooKeeper path the server accepts, ZKR_EINVAL otherwise. */
ZKR__HIDDEN int zkr__path_check(const char *path);
/* The same, and a path a recipe may use: not "/" and not in /zookeeper. */
ZKR__HIDDEN int zkr__recipe_path_check(const char *path);
/* 0 if hosts is "host:port[,host:port...][/chroot]" with a valid chroot. */
ZKR__HIDDEN int zkr__hosts_check(const char *hosts);

/* ---- queue children: formats, order, GUIDs (names.c) ---- */
typedef struct zkr__child {
  const char *name; /* borrowed from the listing */
  int32_t seq;
  int format; /* zkr_format_t */
  int reader;
  int contender; /* takes part in the queue order */
} zkr__child_t;

/* Parse "%010d" as the server prints sequences; 0 or -1. */
ZKR__HIDDEN int zkr__seq_parse(const char *s, int32_t *out);
ZKR__HIDDEN void zkr__child_parse(const char *name, zkr__child_t *c);
/* qsort order: contenders by sequence (wrap-aware), then by name; others last. */
ZKR__HIDDEN int zkr__child_cmp(const void *a, const void *b);
/* Parse and order a listing. Latch children count only in latch mode. *out (free
 * with free(3)) holds v->count entries, the first *ncontenders are the queue. */
ZKR__HIDDEN int zkr__children_order(const struct String_vector *v, int latch_mode,
                                    zkr__child_t **out, int *ncontenders);
/* 1 if name may be a node we made with this GUID: "_c_<guid>-...", at most 64
 * bytes (a foreign name that merely contains the GUID is not ours). */
ZKR__HIDDEN int zkr__name_has_guid(const char *name, const char *guid);
/* parent + "/" + name in a new buffer (no doubled slash under "/"); NULL if out
 * of memory. Names listed by the server may be of any length. */
ZKR__HIDDEN char *zkr__path_join(const char *parent, const char *name);
/* A random (version 4) UUID, lowercase, 36 characters plus NUL. */
ZKR__HIDDEN int zkr__guid(char out[37]);

/* ---- the worker thread: timers and jobs, knowing nothing of sessions ---- */
typedef void (*zkr__timer_fn)(void *ctx, int fired);
/* How a timer's owner runs it: fn(ctx, fired) in whatever context the owner
 * needs, then let go of what the timer held. */
typedef void (*zkr__timer_run_fn)(void *owner, zkr__timer_fn fn, void *ctx, int fired);
/* run(owner, fn, ctx, 1) once zkr__now_ns() / 1000 reaches due_us (absolute,
 * monotonic), or run(owner, fn, ctx, 0) from zkr__worker_cancel_owner(owner). */
ZKR__HIDDEN int zkr__worker_timer_at(int64_t due_us, zkr__timer_run_fn run, void *owner,
                                     zkr__timer_fn fn, void *ctx, uint64_t *id_out);
/* 1 (and *owner_out) if the timer was pending and is now removed: it never runs. */
ZKR__HIDDEN int zkr__worker_timer_cancel(uint64_t id, void **owner_out);
/* Run every pending timer of owner now, with fired = 0. */
ZKR__HIDDEN void zkr__worker_cancel_owner(void *owner);
/* Run fn(arg) on the worker thread outside callback context, as soon as possible. */
ZKR__HIDDEN int zkr__worker_post(void (*fn)(void *), void *arg);
/* While held, an idle worker stays; released to 0 (returned), stop it with
 * zkr__worker_stop(). Started again for work that comes later, it then leaves by
 * itself when idle. */
ZKR__HIDDEN void zkr__worker_hold(void);
ZKR__HIDDEN int zkr__worker_release(void);
ZKR__HIDDEN void zkr__worker_stop(void);

/* ---- session timers (session.c, over the worker) ---- */
/*
 * fn runs once in callback context for s: with fired = 1 once zkr__now_ms()
 * reaches due_ms (absolute, monotonic), or with fired = 0 when the session is
 * freed first. A timer removed with zkr__timer_cancel() returning 1 never runs.
 * The timer holds a reference on s.
 */
ZKR__HIDDEN int zkr__timer_at(zkr_session_t *s, int64_t due_ms, zkr__timer_fn fn,
                              void *ctx, uint64_t *id_out);
/* The same with a deadline in microseconds (zkr__now_ns() / 1000). */
ZKR__HIDDEN int zkr__timer_at_us(zkr_session_t *s, int64_t due_us, zkr__timer_fn fn,
                                 void *ctx, uint64_t *id_out);
/* 1 if the timer was pending and is now removed, 0 if it already ran or is running. */
ZKR__HIDDEN int zkr__timer_cancel(uint64_t id);

/* ---- session internals ---- */
ZKR__HIDDEN void zkr__session_ref(zkr_session_t *s);
ZKR__HIDDEN void zkr__session_unref(zkr_session_t *s);
/* Requests and watches outstanding on the current client handle (tests). */
ZKR__HIDDEN void zkr__session_outstanding(zkr_session_t *s, int *requests, int *watches);
/* Generation of the current client handle (0 when there is none); it changes
 * whenever a new handle (hence a new ZooKeeper session) replaces the old one. */
ZKR__HIDDEN uint64_t zkr__session_gen(zkr_session_t *s);
/* 1 if sid is the ZooKeeper session this one has now or one of the last 16 it
 * had (what an ephemeral's ephemeralOwner says about whose it is). */
ZKR__HIDDEN int zkr__session_was_ours(zkr_session_t *s, int64_t sid);
/* Test hook: count sid among the sessions s had (as if it had expired). */
ZKR__HIDDEN void zkr__session_note_past(zkr_session_t *s, int64_t sid);

/* ---- statistics (lib/stats.c; zkr_session_stats) ---- */
enum {
  ZKR__ST_ACQUIRES = 0,
  ZKR__ST_WAITS,
  ZKR__ST_GRANTS,
  ZKR__ST_TIMEOUTS,
  ZKR__ST_CONFLICTS,
  ZKR__ST_CANCELS,
  ZKR__ST_FAILURES,
  ZKR__ST_LOSSES,
  ZKR__ST_COUNTER_OPS,
  ZKR__ST_COUNTER_CONFLICTS,
  ZKR__ST_COUNTER_UNKNOWN,
  ZKR__ST_SESSIONS,
  ZKR__ST_DISCONNECTS,
  ZKR__ST_RECONNECTS,
  ZKR__ST_EXPIRIES,
  ZKR__ST_N
};
/* Count one event of kind st (ZKR__ST_*) on s. Any thread, any lock held. */
ZKR__HIDDEN void zkr__stat(zkr_session_t *s, int st);
/* Count a grant after waiting us microseconds (ZKR__ST_GRANTS and the wait
 * histogram). */
ZKR__HIDDEN void zkr__stat_grant(zkr_session_t *s, int64_t us);

/* What a handler receives. Only the fields of its call kind are set. */
typedef struct zkr__reply {
  int type;                            /* watch: ZOO_*_EVENT */
  int state;                           /* watch: ZOO_*_STATE */
  const char *path;                    /* create: created path; watch: node path */
  const struct Stat *stat;             /* stat-returning calls */
  const struct String_vector *strings; /* getChildren */
  const char *data;                    /* getData */
  int data_len;
  zoo_op_result_t *results; /* multi */
  int nresults;
} zkr__reply_t;

typedef void (*zkr__op_fn)(void *ctx, int rc, const zkr__reply_t *r);

/* Call kinds, for the fault hook. */
enum {
  ZKR__K_OTHER = 0,
  ZKR__K_CREATE,
  ZKR__K_DELETE,
  ZKR__K_SET,
  ZKR__K_MULTI,
  ZKR__K_GET,
  ZKR__K_CHILDREN,
  ZKR__K_EXISTS,
  ZKR__K_WATCH /* an exists sent only to set a watch */
};

/* An asynchronous call in the making; see zkr__call_begin. */
typedef struct zkr__call {
  zkr_session_t *s;
  zhandle_t *zh;            /* handle to call on */
  void *op;                 /* pass as the completion's data argument */
  void *watch;              /* pass as watcherCtx (after zkr__call_watch) */
  zoo_op_result_t *results; /* pass to zoo_amulti (after zkr__call_results) */
  uint64_t gen;             /* generation of zh */
  int kind;                 /* ZKR__K_* */
} zkr__call_t;

/*
 * Start an async call on s's current handle: fn(ctx, rc, reply) will run once if
 * zkr__call_end() then returns 0. With gen != 0 the call is refused with
 * ZSESSIONEXPIRED unless the handle is still of that generation. The session
 * mutex is held from begin to end: make exactly one zoo_a* call in between.
 * kind names the call for the fault hook (ZKR__K_*).
 * Errors: ZKR_ECLOSED (session freed), ZINVALIDSTATE (no handle), ZSESSIONEXPIRED.
 */
ZKR__HIDDEN int zkr__call_begin(zkr_session_t *s, uint64_t gen, int kind, zkr__op_fn fn,
                                void *ctx, zkr__call_t *c);
/* Ask for a watch with the call. Once zkr__call_end returned 0, wfn(wctx, rc, reply)
 * runs exactly once: rc 0 with reply{type,state,path} when it fires; ZNOWATCHER
 * right after the call's own handler if the reply did not set it (an exists sets
 * it on ZOK and ZNONODE, other reads on ZOK); ZCLOSING if the handle is closed
 * first. Pass zkr__watcher as the watcher and c->watch as its context. */
ZKR__HIDDEN int zkr__call_watch(zkr__call_t *c, zkr__op_fn wfn, void *wctx);
/* Room for n multi results, handed back in the reply. */
ZKR__HIDDEN int zkr__call_results(zkr__call_t *c, int n);
/* Finish: zrc is what the zoo_a* call returned. Returns zrc (0: fn will run). */
ZKR__HIDDEN int zkr__call_end(zkr__call_t *c, int zrc);
/* Count the call's watch (zkr__call_watch first) against the session's budget
 * of watched path bytes: ZKR_ELIMIT if it would go over. The C client sends
 * every watched path in one request on each reconnect, which the server
 * refuses past its jute.maxbuffer: the budget keeps a session below that. */
ZKR__HIDDEN int zkr__call_budget(zkr__call_t *c, size_t bytes);

/* Completion trampolines matching the ZooKeeper client's typedefs. */
ZKR__HIDDEN void zkr__cb_void(int rc, const void *data);
ZKR__HIDDEN void zkr__cb_stat(int rc, const struct Stat *stat, const void *data);
ZKR__HIDDEN void zkr__cb_data(int rc, const char *value, int value_len,
                              const struct Stat *stat, const void *data);
ZKR__HIDDEN void zkr__cb_strings(int rc, const struct String_vector *strings,
                                 const void *data);
ZKR__HIDDEN void zkr__cb_strings_stat(int rc, const struct String_vector *strings,
                                      const struct Stat *stat, const void *data);
ZKR__HIDDEN void zkr__cb_string_stat(int rc, const char *value, const struct Stat *stat,
                                     const void *data);
ZKR__HIDDEN void zkr__cb_string(int rc, const char *value, const void *data);
ZKR__HIDDEN void zkr__watcher(zhandle_t *zh, int type, int state, const char *path,
                              void *ctx);

/* ---- janitor: removing nodes we no longer want (janitor.c) ---- */
typedef void (*zkr__done_fn)(void *arg, int rc);
/* Delete path, a node made on session generation gen, until ZOK/ZNONODE, retrying
 * across connection loss while that session lives. done (may be NULL) runs once in
 * callback context: 0 once the node is gone (deleted, or gone with its session),
 * or the server's refusal (e.g. ZNOAUTH). Returns 0 or ZKR_ENOMEM (nothing runs). */
ZKR__HIDDEN int zkr__janitor_delete(zkr_session_t *s, uint64_t gen, const char *path,
                                    zkr__done_fn done, void *arg);
/* The same for a node whose create's reply was lost and whose name carries no
 * GUID: after a sync, deleted (at the version seen) only if this session owns
 * it; absent or another session's: done (0). */
ZKR__HIDDEN int zkr__janitor_delete_own(zkr_session_t *s, uint64_t gen, const char *path,
                                        zkr__done_fn done, void *arg);
/* The same for the child of parent whose name contains guid (a create whose reply
 * was lost); nothing to do if there is none. */
ZKR__HIDDEN int zkr__janitor_delete_guid(zkr_session_t *s, uint64_t gen,
                                         const char *parent, const char *guid);

/* Test-only fault hook: when set, it sees every completion before its handler and
 * may replace the rc (e.g. turn a successful create's reply into ZCONNECTIONLOSS);
 * kind is the ZKR__K_* given to zkr__call_begin. */
typedef int (*zkr__fault_fn)(void *arg, zkr_session_t *s, int kind, int rc);
ZKR__HIDDEN void zkr__set_fault_hook(zkr__fault_fn fn, void *arg);

#endif /* ZKR_INTERNAL_H */
