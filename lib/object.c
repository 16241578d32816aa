/* SPDX-License-Identifier: Apache-2.0 */
/* The recipe object base: see object.h. */
#include "object.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RESUME_DELAY_US 10000 /* a wait found over already: resume this much later */

/* ---- effects ---- */

zkr__effect_t *zkr__fx_add(zkr__fx_t *fx, zkr__effect_fn run, zkr__fnptr cb, void *arg,
                           int rc) {
  zkr__effect_t *e;

  if (fx->n < ZKR__FX_INLINE) {
    e = &fx->inl[fx->n];
  } else {
    int k = fx->n - ZKR__FX_INLINE;
    if (k >= fx->cap) {
      int cap = fx->cap ? 2 * fx->cap : 8;
      zkr__effect_t *m = realloc(fx->more, (size_t)cap * sizeof(*m));
      if (!m) {
        zkr__log(ZKR_LOG_ERROR, "out of memory: a callback or event is lost");
        return NULL;
      }
      fx->more = m;
      fx->cap = cap;
    }
    e = &fx->more[k];
  }
  memset(e, 0, sizeof(*e));
  e->run = run;
  e->cb = cb;
  e->arg = arg;
  e->rc = rc;
  fx->n++;
  return e;
}

static void run_listener(zkr__obj_t *o, const zkr__effect_t *e) {
  zkr__fnptr fn;
  void *arg;
  pthread_mutex_lock(&o->mu);
  fn = o->freed ? NULL : o->lfn;
  arg = o->larg;
  pthread_mutex_unlock(&o->mu);
  if (fn)
    ((zkr__listener_call_fn)e->cb)(o, fn, arg, e);
}

zkr__effect_t *zkr__fx_event(zkr__fx_t *fx, zkr__obj_t *o, zkr__listener_call_fn call,
                             int ev) {
  if (!o->lfn)
    return NULL;
  return zkr__fx_add(fx, run_listener, ZKR__FN(call), NULL, ev);
}

static void run_listener_owned(zkr__obj_t *o, const zkr__effect_t *e) {
  run_listener(o, e);
  free(e->ptr);
}

zkr__effect_t *zkr__fx_event_owned(zkr__fx_t *fx, zkr__obj_t *o, zkr__listener_call_fn call,
                                   int ev, void *ptr) {
  zkr__effect_t *e;
  if (!o->lfn || !(e = zkr__fx_add(fx, run_listener_owned, ZKR__FN(call), NULL, ev)))
    return NULL;
  e->ptr = ptr;
  return e;
}

void zkr__obj_set_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg) {
  pthread_mutex_lock(&o->mu);
  o->lfn = fn;
  o->larg = arg;
  pthread_mutex_unlock(&o->mu);
}

static void fx_run(zkr__obj_t *o, zkr__fx_t *fx) {
  for (int i = 0; i < fx->n; i++) {
    zkr__effect_t *e = i < ZKR__FX_INLINE ? &fx->inl[i] : &fx->more[i - ZKR__FX_INLINE];
    e->run(o, e);
  }
  free(fx->more);
  fx->more = NULL;
  fx->n = fx->cap = 0;
}

/* ---- life cycle ---- */

void *zkr__obj_new(size_t size, const zkr__obj_ops_t *ops, zkr_session_t *s) {
  zkr__obj_t *o = calloc(1, size);
  if (!o)
    return NULL;
  if (pthread_mutex_init(&o->mu, NULL) != 0) {
    free(o);
    return NULL;
  }
  atomic_init(&o->refs, 1);
  o->ops = ops;
  o->s = s;
  zkr__session_ref(s);
  return o;
}

void zkr__obj_fini(zkr__obj_t *o) {
  zkr__session_unref(o->s);
  pthread_mutex_destroy(&o->mu);
}

void zkr__obj_ref(zkr__obj_t *o) {
  atomic_fetch_add(&o->refs, 1);
}

void zkr__obj_unref(zkr__obj_t *o) {
  if (atomic_fetch_sub(&o->refs, 1) == 1)
    o->ops->destroy(o);
}

void zkr__obj_unlock(zkr__obj_t *o, zkr__fx_t *fx) {
  pthread_mutex_unlock(&o->mu);
  if (fx->n)
    fx_run(o, fx);
}

void zkr__obj_unlock_api(zkr__obj_t *o, zkr__fx_t *fx) {
  pthread_mutex_unlock(&o->mu);
  if (fx->n) {
    zkr__dispatch_enter(o->s);
    fx_run(o, fx);
    zkr__dispatch_leave(o->s);
  }
}

/* ---- session events and waiting ---- */

static int wait_over(zkr__obj_t *o) {
  uint64_t g;
  if (zkr_session_state(o->s) != ZKR_STATE_CONNECTED)
    return 0;
  if (o->wait == ZKR__WAIT_CONN)
    return 1;
  g = zkr__session_gen(o->s);
  return g != 0 && g != o->wait_gen;
}

static void resume_now(zkr__obj_t *o, zkr__fx_t *fx) {
  o->wait = ZKR__WAIT_NONE;
  zkr__obj_timer_stop(o, &o->resume_timer);
  o->ops->resume(o, fx);
}

static void on_resume_timer(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  if (fired && !o->freed && o->wait != ZKR__WAIT_NONE && wait_over(o))
    resume_now(o, fx);
}

void zkr__obj_wait(zkr__obj_t *o, int what, uint64_t gen) {
  o->wait = what;
  o->wait_gen = gen;
  if (wait_over(o) &&
      zkr__obj_timer(o, &o->resume_timer, zkr__now_ns() / 1000 + RESUME_DELAY_US,
                     on_resume_timer) != 0)
    zkr__log(ZKR_LOG_ERROR, "%s: cannot schedule a resume; waiting for the next event",
             o->ops->name);
}

static void on_session(zkr_session_t *s, int event, void *arg) {
  zkr__obj_t *o = arg;
  zkr__fx_t fx = ZKR__FX_INIT;

  (void)s;
  pthread_mutex_lock(&o->mu);
  if (!o->freed && o->ops->on_session)
    o->ops->on_session(o, event, &fx);
  if (!o->freed && o->wait != ZKR__WAIT_NONE &&
      (event == ZKR_SESSION_CONNECTED ||
       (event == ZKR_SESSION_RECONNECTED && o->wait == ZKR__WAIT_CONN)))
    resume_now(o, &fx);
  zkr__obj_unlock(o, &fx);
}

int zkr__obj_listen(zkr__obj_t *o) {
  int rc = zkr_session_add_listener(o->s, on_session, o, &o->listener_id);
  o->listening = rc == 0;
  return rc;
}

int zkr__rc_class(int rc) {
  switch (rc) {
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT: return ZKR__RC_CONN;
  case ZSESSIONEXPIRED:
  case ZINVALIDSTATE: return ZKR__RC_SESSION;
  case ZCLOSING:
  case ZKR_ECLOSED: return ZKR__RC_CLOSED;
  default: return ZKR__RC_FINAL;
  }
}

/* ---- requests ---- */

static void req_free(zkr__req_t *rq) {
  zkr__obj_t *o = rq->o;
  free(rq);
  zkr__obj_unref(o);
}

static void on_req(void *ctx, int rc, const zkr__reply_t *r) {
  zkr__req_t *rq = ctx;
  zkr__obj_t *o = rq->o;
  zkr__fx_t fx = ZKR__FX_INIT;

  pthread_mutex_lock(&o->mu);
  rq->step(o, rq, rc, r, &fx);
  zkr__obj_unlock(o, &fx);
  req_free(rq);
}

static zkr__req_t *req_new(zkr__obj_t *o, zkr__step_fn step, uint32_t tok, size_t size) {
  zkr__req_t *rq = calloc(1, size < sizeof(*rq) ? sizeof(*rq) : size);
  if (!rq)
    return NULL;
  rq->o = o;
  rq->step = step;
  rq->tok = tok;
  zkr__obj_ref(o);
  return rq;
}

int zkr__send_begin(zkr__send_t *x, zkr__obj_t *o, uint64_t gen, int kind,
                    zkr__step_fn step, uint32_t tok, size_t size) {
  int rc;
  x->wrq = NULL;
  if (!(x->rq = req_new(o, step, tok, size)))
    return ZKR_ENOMEM;
  if ((rc = zkr__call_begin(o->s, gen, kind, on_req, x->rq, &x->c)) != 0) {
    req_free(x->rq);
    x->rq = NULL;
    return rc;
  }
  x->rq->gen = x->c.gen;
  return 0;
}

int zkr__send_watch(zkr__send_t *x, zkr__step_fn step, uint32_t tok, size_t size) {
  zkr__req_t *w = req_new(x->rq->o, step, tok, size);
  if (!w)
    return ZKR_ENOMEM;
  w->gen = x->c.gen;
  if (zkr__call_watch(&x->c, on_req, w) != 0) {
    req_free(w);
    return ZKR_ENOMEM;
  }
  x->wrq = w;
  return 0;
}

int zkr__send_watch_budget(zkr__send_t *x, size_t bytes) {
  return zkr__call_budget(&x->c, bytes);
}

int zkr__send_results(zkr__send_t *x, int n) {
  return zkr__call_results(&x->c, n);
}

int zkr__send_end(zkr__send_t *x, int zrc) {
  int rc = zkr__call_end(&x->c, zrc);
  if (rc != 0) {
    if (x->wrq)
      req_free(x->wrq);
    req_free(x->rq);
  }
  return rc;
}

static void on_synced(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  (void)o, (void)rq, (void)rc, (void)r, (void)fx; /* the reads behind it decide */
}

int zkr__send_sync(zkr__obj_t *o, uint64_t gen, const char *path) {
  zkr__send_t x;
  int rc;
  if ((rc = zkr__send_begin(&x, o, gen, ZKR__K_OTHER, on_synced, 0, 0)) != 0)
    return rc;
  return zkr__send_end(&x, zoo_async(x.c.zh, path, zkr__cb_string, x.c.op));
}

int zkr__send_parents(zkr__obj_t *o, uint64_t gen, const char *path, bool self,
                      const struct ACL_vector *acl, zkr__step_fn step, uint32_t tok,
                      void *ctx) {
  size_t n = strlen(path);
  char *buf = malloc(n + 1);
  int rc = 0;

  if (!buf)
    return ZKR_ENOMEM;
  /* The server applies them in order, outermost first. */
  for (size_t i = 1; i <= n && rc == 0; i++) {
    zkr__send_t x;
    if (i == n ? !self : path[i] != '/')
      continue;
    memcpy(buf, path, i);
    buf[i] = '\0';
    if ((rc = zkr__send_begin(&x, o, gen, ZKR__K_CREATE, step, tok, 0)) == 0) {
      x.rq->ctx = ctx;
      rc = zkr__send_end(&x, zoo_acreate(x.c.zh, buf, NULL, -1, acl, ZOO_CONTAINER,
                                         zkr__cb_string, x.c.op));
    }
  }
  free(buf);
  return rc;
}

/* ---- timers ---- */

struct zkr__tmr {
  zkr__obj_t *o; /* holds a reference */
  zkr__tmr_t **slot;
  zkr__obj_timer_fn fn;
  uint64_t id;
};

static void run_obj_timer(void *ctx, int fired) {
  zkr__tmr_t *t = ctx;
  zkr__obj_t *o = t->o;
  zkr__fx_t fx = ZKR__FX_INIT;

  pthread_mutex_lock(&o->mu);
  if (*t->slot == t) { /* not stopped meanwhile */
    *t->slot = NULL;
    t->fn(o, fired, &fx);
  }
  zkr__obj_unlock(o, &fx);
  free(t);
  zkr__obj_unref(o);
}

int zkr__obj_timer(zkr__obj_t *o, zkr__tmr_t **slot, int64_t due_us,
                   zkr__obj_timer_fn fn) {
  zkr__tmr_t *t;
  int rc;

  zkr__obj_timer_stop(o, slot);
  if (!(t = calloc(1, sizeof(*t))))
    return ZKR_ENOMEM;
  t->o = o;
  t->slot = slot;
  t->fn = fn;
  zkr__obj_ref(o);
  *slot = t;
  if ((rc = zkr__timer_at_us(o->s, due_us, run_obj_timer, t, &t->id)) != 0) {
    *slot = NULL;
    free(t);
    zkr__obj_unref(o); /* not the last: the caller holds one */
  }
  return rc;
}

void zkr__obj_timer_stop(zkr__obj_t *o, zkr__tmr_t **slot) {
  zkr__tmr_t *t = *slot;
  if (!t)
    return;
  *slot = NULL; /* if it is running already, it finds itself stopped */
  if (zkr__timer_cancel(t->id)) {
    free(t);
    zkr__obj_unref(o); /* not the last: the caller holds one */
  }
}

/* ---- owed callbacks ---- */

struct zkr__owed {
  zkr__owed_t *next; /* in o->owed while owed (mu) */
  zkr__obj_t *o;     /* holds a reference */
  zkr__effect_t e;
  int kind;
  _Atomic int refs; /* the list's while owed, one per pending timer and holder */
  bool owed;        /* (mu) */
  uint64_t timer;   /* (mu) a timer that pays it (deferred, or the deadline) */
};

zkr__owed_t *zkr__obj_owe(zkr__obj_t *o, int kind, zkr__effect_fn run, zkr__fnptr cb,
                          void *arg) {
  zkr__owed_t *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->o = o;
  w->e.run = run;
  w->e.cb = cb;
  w->e.arg = arg;
  w->kind = kind;
  w->owed = true;
  atomic_init(&w->refs, 1);
  w->next = o->owed;
  o->owed = w;
  zkr__obj_ref(o);
  return w;
}

void zkr__obj_owe_hold(zkr__owed_t *w) {
  atomic_fetch_add(&w->refs, 1);
}

static void owed_put(zkr__owed_t *w) {
  zkr__obj_t *o = w->o;
  if (atomic_fetch_sub(&w->refs, 1) != 1)
    return;
  free(w);
  zkr__obj_unref(o); /* never the last while o->mu is held: its holder has one */
}

/* o->mu held: no longer owed; the list's reference is the caller's to drop.
 * Returns the pending timer (now the caller's to cancel), or 0. */
static uint64_t owed_unlink(zkr__owed_t *w) {
  uint64_t timer = w->timer;
  for (zkr__owed_t **pp = &w->o->owed; *pp; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  }
  w->owed = false;
  w->timer = 0;
  return timer;
}

/* A timer removed before it ran will not pay: drop its reference. */
static void owed_cancel_timer(zkr__owed_t *w, uint64_t timer) {
  if (timer && zkr__timer_cancel(timer))
    owed_put(w);
}

void zkr__obj_unowe(zkr__owed_t *w) {
  zkr__obj_t *o = w->o;
  owed_unlink(w);
  free(w);
  zkr__obj_unref(o); /* not the last: the caller holds one */
}

void zkr__obj_pay(zkr__owed_t *w, int rc) {
  zkr__obj_t *o = w->o;
  uint64_t timer = 0;
  bool owed;

  pthread_mutex_lock(&o->mu);
  owed = w->owed;
  if (owed)
    timer = owed_unlink(w);
  pthread_mutex_unlock(&o->mu);
  if (owed) {
    w->e.rc = rc;
    w->e.run(o, &w->e);
    owed_cancel_timer(w, timer); /* the deadline of a paid callback */
    owed_put(w);                 /* the list's */
  }
  owed_put(w); /* the payer's */
}

void zkr__obj_settle(zkr__obj_t *o, int kind, int rc, int64_t value, zkr__fx_t *fx) {
  zkr__owed_t **pp = &o->owed;
  while (*pp) {
    zkr__owed_t *w = *pp;
    zkr__effect_t *e;
    if (kind && w->kind != kind) {
      pp = &w->next;
      continue;
    }
    if ((e = zkr__fx_add(fx, w->e.run, w->e.cb, w->e.arg, rc)))
      e->value = value;
    owed_cancel_timer(w, owed_unlink(w)); /* unlinks w: *pp is the next one */
    owed_put(w);
  }
}

int zkr__obj_owed_count(zkr__obj_t *o, int kind) {
  int n = 0;
  for (zkr__owed_t *w = o->owed; w; w = w->next)
    n += !kind || w->kind == kind;
  return n;
}

static void on_pay_timer(void *ctx, int fired) {
  zkr__owed_t *w = ctx;
  zkr__obj_t *o = w->o;
  bool owed;
  zkr__effect_t e;

  pthread_mutex_lock(&o->mu);
  owed = w->owed;
  if (owed)
    owed_unlink(w); /* its timer is this one */
  e = w->e;
  pthread_mutex_unlock(&o->mu);
  if (owed) {
    (void)fired; /* due, or the session is going: it gets its one run either way */
    e.run(o, &e);
    owed_put(w); /* the list's */
  }
  owed_put(w); /* the timer's */
}

int zkr__obj_owe_by(zkr__owed_t *w, int64_t due_ms, int rc, int64_t value) {
  int err;
  atomic_fetch_add(&w->refs, 1);
  w->e.rc = rc;
  w->e.value = value;
  if ((err = zkr__timer_at(w->o->s, due_ms, on_pay_timer, w, &w->timer)) != 0) {
    w->timer = 0;
    atomic_fetch_sub(&w->refs, 1);
  }
  return err;
}

int zkr__obj_defer(zkr__obj_t *o, int kind, zkr__effect_fn run, zkr__fnptr cb, void *arg,
                   int rc, int64_t value) {
  zkr__owed_t *w = zkr__obj_owe(o, kind, run, cb, arg);
  int err;
  if (!w)
    return ZKR_ENOMEM;
  if ((err = zkr__obj_owe_by(w, zkr__now_ms(), rc, value)) != 0)
    zkr__obj_unowe(w);
  return err;
}

/* ---- free ---- */

bool zkr__obj_free_begin(zkr__obj_t *o) {
  pthread_mutex_lock(&o->mu);
  if (o->freed) {
    pthread_mutex_unlock(&o->mu);
    return false;
  }
  o->freed = true;
  return true; /* o->mu stays held */
}

void zkr__obj_free_end(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr__owed_t *list;

  o->wait = ZKR__WAIT_NONE;
  zkr__obj_timer_stop(o, &o->resume_timer);
  list = o->owed;
  o->owed = NULL;
  for (zkr__owed_t *w = list; w; w = w->next)
    w->owed = false; /* w->timer stays: it is cancelled below */
  pthread_mutex_unlock(&o->mu);
  zkr__dispatch_enter(o->s);
  if (fx->n)
    fx_run(o, fx);
  while (list) {
    zkr__owed_t *w = list;
    uint64_t timer = w->timer;
    zkr__effect_t e = w->e;
    list = w->next;
    w->timer = 0;
    e.rc = ZKR_ECANCELED;
    e.value = 0;
    e.run(o, &e);
    owed_cancel_timer(w, timer);
    owed_put(w); /* the list's (the object stays: the user's reference is below) */
  }
  zkr__dispatch_leave(o->s);
  /* After this no session event reaches the object (outside callback context it
   * also waits for one being delivered). */
  if (o->listening)
    zkr_session_remove_listener(o->s, o->listener_id);
  zkr__obj_unref(o);
}

/* ---- sync ---- */

int zkr__sync_init(zkr__sync_t *y) {
  memset(y, 0, sizeof(*y));
  if (zkr__in_callback())
    return ZKR_EDEADLK; /* the callback would come on a thread we might block */
  return zkr__waiter_init(&y->w);
}

int zkr__sync_wait(zkr__sync_t *y, int rc) {
  if (rc == 0)
    rc = zkr__waiter_wait(&y->w); /* the async form ends by its deadline */
  zkr__waiter_destroy(&y->w);
  return rc;
}

void zkr__sync_signal(zkr__sync_t *y, int rc) {
  zkr__waiter_signal(&y->w, rc);
}
