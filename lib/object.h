/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/object.h - the base every recipe object is built on. Not installed.
 *
 * A recipe struct embeds zkr__obj_t as its first member and gets:
 * - a reference count (the user's, plus one per request, watch and timer in
 *   flight) and a mutex, o->mu, guarding the recipe's state;
 * - a session listener: events arrive at ops->on_session with o->mu held, and
 *   a pending wait for the connection or a new session (zkr__obj_wait) ends in
 *   ops->resume, so no recipe writes that dance again;
 * - an effects outbox (zkr__fx_t): user callbacks and listener events are
 *   collected while o->mu is held and run after it is released, in callback
 *   context, in the order they were added;
 * - requests (zkr__send_*): each ZooKeeper step names its own handler, which
 *   runs exactly once with o->mu held and the outbox at hand; a request carries
 *   the token it was sent with, so a handler tells a stale reply at a glance;
 * - timers owned by the object (zkr__obj_timer), and callbacks owed outside any
 *   request (zkr__obj_owe/_pay; zkr__obj_defer completes "later, never inside
 *   the call"); zkr__obj_free_begin/_end cancel what is still owed;
 * - the error classes of a failed step (zkr__rc_class) and container-parent
 *   creation.
 *
 * Lock order: dispatch mutex -> o->mu -> session mutex. Handlers, timer
 * functions and ops run in callback context with o->mu held and must not call
 * the user; they add effects instead.
 */
#ifndef ZKR_OBJECT_H
#define ZKR_OBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

typedef struct zkr__obj zkr__obj_t;
typedef struct zkr__fx zkr__fx_t;
typedef struct zkr__req zkr__req_t;
typedef struct zkr__tmr zkr__tmr_t;
typedef struct zkr__owed zkr__owed_t;

/* ---- effects ---- */

/* A generic function pointer: a user callback of any type, cast back by the
 * recipe's trampoline before it is called. */
typedef void (*zkr__fnptr)(void);
#define ZKR__FN(f) ((zkr__fnptr)(f))

typedef struct zkr__effect zkr__effect_t;
/* Runs one effect (o->mu released, callback context). */
typedef void (*zkr__effect_fn)(zkr__obj_t *o, const zkr__effect_t *e);
struct zkr__effect {
  zkr__effect_fn run;
  zkr__fnptr cb; /* the user's function, if any */
  void *arg;     /* its argument */
  int rc;        /* or an event code */
  int64_t value;
  void *ptr; /* recipe-defined (e.g. a record the trampoline frees) */
};

#define ZKR__FX_INLINE 6
struct zkr__fx {
  zkr__effect_t inl[ZKR__FX_INLINE];
  zkr__effect_t *more; /* beyond the inline room (malloc'd) */
  int n, cap;
};
#define ZKR__FX_INIT                                                                     \
  { .n = 0 }

/* Add an effect; returns it (NULL only if out of memory, which is logged). */
ZKR__HIDDEN zkr__effect_t *zkr__fx_add(zkr__fx_t *fx, zkr__effect_fn run, zkr__fnptr cb,
                                       void *arg, int rc);

/* Calls the user's listener fn (of the recipe's type) for the event e->rc. */
typedef void (*zkr__listener_call_fn)(zkr__obj_t *o, zkr__fnptr fn, void *arg,
                                      const zkr__effect_t *e);
/* o->mu held: an event for the listener, if one is set; the listener is looked
 * up again when it runs, so one removed meanwhile is not called. */
ZKR__HIDDEN zkr__effect_t *zkr__fx_event(zkr__fx_t *fx, zkr__obj_t *o,
                                         zkr__listener_call_fn call, int ev);
/* The same with a malloc'd record in e->ptr (the event's own copy of its
 * data), freed once the event has run, whether or not a listener was called.
 * NULL (nobody listens, or out of memory): ptr was not taken. */
ZKR__HIDDEN zkr__effect_t *zkr__fx_event_owned(zkr__fx_t *fx, zkr__obj_t *o,
                                               zkr__listener_call_fn call, int ev, void *ptr);

/* ---- the object ---- */

typedef struct zkr__obj_ops {
  const char *name; /* "lock", "counter", ...: for the log */
  /* A session event (ZKR_SESSION_*), o->mu held, object not freed. Called after
   * the base has handled a pending wait (see zkr__obj_wait). May be NULL. */
  void (*on_session)(zkr__obj_t *o, int event, zkr__fx_t *fx);
  /* What waited for the connection (or a new session) may go on now. */
  void (*resume)(zkr__obj_t *o, zkr__fx_t *fx);
  /* The last reference is gone: free the recipe's fields, then zkr__obj_fini(o)
   * and the struct. Outside o->mu, any thread. */
  void (*destroy)(zkr__obj_t *o);
} zkr__obj_ops_t;

enum { ZKR__WAIT_NONE = 0, ZKR__WAIT_CONN, ZKR__WAIT_SESSION };

struct zkr__obj {
  pthread_mutex_t mu;
  _Atomic int refs;
  zkr_session_t *s; /* holds a reference */
  const zkr__obj_ops_t *ops;
  unsigned listener_id;
  bool listening;
  /* (mu) */
  bool freed;        /* zkr_x_free() has begun */
  int wait;          /* ZKR__WAIT_*: ops->resume runs when it is over */
  uint64_t wait_gen; /* WAIT_SESSION: the generation that must be replaced */
  zkr__tmr_t *resume_timer;
  uint32_t tok;      /* last token handed out (zkr__obj_token) */
  zkr__owed_t *owed; /* callbacks owed outside the requests */
  zkr__fnptr lfn;    /* the user's listener (zkr__obj_set_listener) */
  void *larg;
  void *engine; /* the engine the object embeds (a queue), for its ops */
};

/* A zeroed recipe struct of size bytes (its zkr__obj_t first) on session s,
 * set up with one reference (the user's); NULL if out of memory. */
ZKR__HIDDEN void *zkr__obj_new(size_t size, const zkr__obj_ops_t *ops, zkr_session_t *s);
/* Start hearing session events (last step of a constructor). */
ZKR__HIDDEN int zkr__obj_listen(zkr__obj_t *o);
/* Undo zkr__obj_new's set-up (called from ops->destroy, which frees the struct). */
ZKR__HIDDEN void zkr__obj_fini(zkr__obj_t *o);
ZKR__HIDDEN void zkr__obj_ref(zkr__obj_t *o);
ZKR__HIDDEN void zkr__obj_unref(zkr__obj_t *o);

/* Set (fn NULL: remove) the object's one listener. */
ZKR__HIDDEN void zkr__obj_set_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg);

/* Release o->mu and run the effects (callback context). */
ZKR__HIDDEN void zkr__obj_unlock(zkr__obj_t *o, zkr__fx_t *fx);
/* The same from an API call: the effects run in callback context entered here. */
ZKR__HIDDEN void zkr__obj_unlock_api(zkr__obj_t *o, zkr__fx_t *fx);

/* A fresh token, never 0 (o->mu held). */
static inline uint32_t zkr__obj_token(zkr__obj_t *o) {
  if (++o->tok == 0)
    ++o->tok;
  return o->tok;
}

/* zkr_x_free(): 0 if it was already freed (do nothing more), else 1 and freed
 * is set. Then the recipe ends its work (o->mu held, adding effects), and
 * zkr__obj_free_end() runs the effects, every owed callback with ZKR_ECANCELED,
 * removes the session listener and drops the user's reference. */
ZKR__HIDDEN bool zkr__obj_free_begin(zkr__obj_t *o);
ZKR__HIDDEN void zkr__obj_free_end(zkr__obj_t *o, zkr__fx_t *fx);

/* ---- what a failed step means ---- */
enum {
  ZKR__RC_FINAL = 0, /* an answer about the recipe's nodes, or a hard error */
  ZKR__RC_CONN,      /* connection lost: may have applied; resume on reconnect */
  ZKR__RC_SESSION,   /* the session is gone or being replaced */
  ZKR__RC_CLOSED     /* the session was freed (or its handle closed) */
};
ZKR__HIDDEN int zkr__rc_class(int rc);

/*
 * Wait for the connection (ZKR__WAIT_CONN) or for a session other than the one
 * of generation gen (ZKR__WAIT_SESSION; gen 0: any), then ops->resume. If that is the
 * case already (the failure raced the reconnect), resume comes from a timer shortly
 * after, never at once, so that a step refused at once cannot spin.
 */
ZKR__HIDDEN void zkr__obj_wait(zkr__obj_t *o, int what, uint64_t gen);

/* ---- requests ---- */

/* A step's handler: o->mu held, callback context; rq is freed after it returns. */
typedef void (*zkr__step_fn)(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                             zkr__fx_t *fx);

/* A request or watch in flight. Recipes that need more embed it first in a
 * larger struct and pass its size. */
struct zkr__req {
  zkr__obj_t *o; /* holds a reference */
  zkr__step_fn step;
  uint32_t tok; /* the token it was sent with */
  uint64_t gen; /* the session generation it was sent on */
  void *ctx;    /* the sender's (e.g. the engine the object embeds) */
};

typedef struct zkr__send {
  zkr__call_t c; /* c.zh, c.op (and c.watch, c.results) for the zoo_a* call */
  zkr__req_t *rq, *wrq;
} zkr__send_t;

/* o->mu held. Begin a request (size bytes, at least sizeof(zkr__req_t), zeroed)
 * on the session generation gen (0: the current one). 0: make exactly one zoo_a*
 * call, then zkr__send_end. */
ZKR__HIDDEN int zkr__send_begin(zkr__send_t *x, zkr__obj_t *o, uint64_t gen, int kind,
                                zkr__step_fn step, uint32_t tok, size_t size);
/* Ask for a watch with it: x->wrq (size bytes, as for the request) whose step
 * runs for the watch, exactly once (see zkr__call_watch). */
ZKR__HIDDEN int zkr__send_watch(zkr__send_t *x, zkr__step_fn step, uint32_t tok,
                                size_t size);
/* Count x's watch (path bytes) against the session's watch budget (ZKR_ELIMIT). */
ZKR__HIDDEN int zkr__send_watch_budget(zkr__send_t *x, size_t bytes);
/* Room for n multi results. */
ZKR__HIDDEN int zkr__send_results(zkr__send_t *x, int n);
/* Finish with what the zoo_a* call returned (or an error of ours): on failure
 * nothing will run and the requests are freed. Returns zrc. */
ZKR__HIDDEN int zkr__send_end(zkr__send_t *x, int zrc);

/* A sync of path on generation gen, so that the reads sent after it see every
 * write committed before it: after a lost reply the client may have moved to a
 * server that has not applied that write yet. Its reply needs no handling (the
 * reads that follow fail alike if the connection goes). */
ZKR__HIDDEN int zkr__send_sync(zkr__obj_t *o, uint64_t gen, const char *path);

/* Create every ancestor of path (and path itself with self) as a CONTAINER,
 * outermost first, on generation gen; step sees each reply (rq->tok = tok,
 * rq->ctx = ctx). */
ZKR__HIDDEN int zkr__send_parents(zkr__obj_t *o, uint64_t gen, const char *path,
                                  bool self, const struct ACL_vector *acl,
                                  zkr__step_fn step, uint32_t tok, void *ctx);

/* ---- timers owned by the object ---- */

/* o->mu held, o->freed or not. fired: 0 when the session is being freed. */
typedef void (*zkr__obj_timer_fn)(zkr__obj_t *o, int fired, zkr__fx_t *fx);
/* Arm *slot (cancelling what it held) to run fn at due_us. The timer holds a
 * reference; *slot is NULL again when it has run or was stopped. */
ZKR__HIDDEN int zkr__obj_timer(zkr__obj_t *o, zkr__tmr_t **slot, int64_t due_us,
                               zkr__obj_timer_fn fn);
ZKR__HIDDEN void zkr__obj_timer_stop(zkr__obj_t *o, zkr__tmr_t **slot);

/* ---- callbacks owed outside the requests ---- */

/*
 * An owed callback is listed on the object until it is paid, settled or
 * cancelled by zkr_x_free (ZKR_ECANCELED); it runs exactly once. Its payers: the
 * object itself (zkr__obj_settle), a timer (zkr__obj_owe_by: deferred
 * completion, or a deadline), or outside work that holds it (zkr__obj_owe_hold,
 * then zkr__obj_pay: e.g. a janitor task). The record goes with its last payer.
 * kind is the recipe's, to settle some owed callbacks and not others.
 */
ZKR__HIDDEN zkr__owed_t *zkr__obj_owe(zkr__obj_t *o, int kind, zkr__effect_fn run,
                                      zkr__fnptr cb, void *arg);
/* o->mu held: one more payer will call zkr__obj_pay. */
ZKR__HIDDEN void zkr__obj_owe_hold(zkr__owed_t *w);
/* o->mu held: a timer pays it with rc and value at due_ms (absolute), unless it
 * is paid first (then the timer is cancelled). */
ZKR__HIDDEN int zkr__obj_owe_by(zkr__owed_t *w, int64_t due_ms, int rc, int64_t value);
/* o->mu held: forget it without running it; only while no payer has started. */
ZKR__HIDDEN void zkr__obj_unowe(zkr__owed_t *w);
/* A holder's payment (callback context, o->mu not held): run it with rc unless it
 * ran already, and let go. */
ZKR__HIDDEN void zkr__obj_pay(zkr__owed_t *w, int rc);
/* o->mu held: settle every owed callback of this kind (0: every kind) into fx. */
ZKR__HIDDEN void zkr__obj_settle(zkr__obj_t *o, int kind, int rc, int64_t value,
                                 zkr__fx_t *fx);
/* o->mu held: how many owed callbacks of this kind (0: every kind) are listed. */
ZKR__HIDDEN int zkr__obj_owed_count(zkr__obj_t *o, int kind);
/* o->mu held: run it with rc and value on the worker, never inside this call. */
ZKR__HIDDEN int zkr__obj_defer(zkr__obj_t *o, int kind, zkr__effect_fn run, zkr__fnptr cb,
                               void *arg, int rc, int64_t value);

/* ---- the one waiter of every sync form ---- */

/* A sync form: ZKR_EDEADLK in callback context, else a waiter to pass to the
 * async form's callback (zkr__sync_signal). */
typedef struct zkr__sync {
  zkr__waiter_t w;
  int64_t value;
  void *ptr;
  int count;
} zkr__sync_t;
ZKR__HIDDEN int zkr__sync_init(zkr__sync_t *y);
/* rc is what the async form returned: 0 waits for the callback. Returns its rc. */
ZKR__HIDDEN int zkr__sync_wait(zkr__sync_t *y, int rc);
ZKR__HIDDEN void zkr__sync_signal(zkr__sync_t *y, int rc);

#endif /* ZKR_OBJECT_H */
