/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asynchronous ZooKeeper calls made on behalf of recipes. Each call gets a record
 * on the handle it was sent on; the completion trampolines unlink the record
 * under the session mutex and run its handler in callback context. Whatever is
 * left when the handle has been closed is drained with ZCLOSING by
 * zkr__handle_drain(), so every handler runs exactly once and nothing leaks,
 * whether or not the client called the completion itself during close.
 */
#include "session_priv.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Set by tests while completions run on client threads: atomics. */
static zkr__fault_fn _Atomic fault_fn;
static void *_Atomic fault_arg;

void zkr__set_fault_hook(zkr__fault_fn fn, void *arg) {
  atomic_store(&fault_arg, arg);
  atomic_store(&fault_fn, fn);
}

/* s->mu held. */
static void rec_link(zkr__handle_t *h, zkr__rec_t *r) {
  if (!r->is_watch)
    h->nops++;
  r->h = h;
  r->next = &h->recs;
  r->prev = h->recs.prev;
  h->recs.prev->next = r;
  h->recs.prev = r;
}

static void rec_unlink(zkr__rec_t *r) {
  if (!r->is_watch && r->next != r && --r->h->nops == 0 && r->h->retired)
    pthread_cond_broadcast(&r->h->s->state_cv); /* handle_close may be waiting */
  if (r->is_watch && r->budget) {
    r->h->s->watch_bytes -= r->budget; /* fired, never set, or its handle closed */
    r->budget = 0;
  }
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->prev = r->next = r;
}

int zkr__call_begin(zkr_session_t *s, uint64_t gen, int kind, zkr__op_fn fn, void *ctx,
                    zkr__call_t *c) {
  zkr__rec_t *r;

  memset(c, 0, sizeof(*c));
  pthread_mutex_lock(&s->mu);
  if (s->freed) {
    pthread_mutex_unlock(&s->mu);
    return ZKR_ECLOSED;
  }
  if (!s->cur) {
    pthread_mutex_unlock(&s->mu);
    return gen ? ZSESSIONEXPIRED : ZINVALIDSTATE;
  }
  if (gen && s->cur->gen != gen) {
    pthread_mutex_unlock(&s->mu);
    return ZSESSIONEXPIRED;
  }
  if (!(r = calloc(1, sizeof(*r)))) {
    pthread_mutex_unlock(&s->mu);
    return ZKR_ENOMEM;
  }
  r->fn = fn;
  r->ctx = ctx;
  r->kind = (unsigned char)kind;
  rec_link(s->cur, r);
  c->s = s;
  c->zh = s->cur->zh;
  c->gen = s->cur->gen;
  c->op = r;
  c->kind = kind;
  return 0; /* s->mu stays held until zkr__call_end */
}

void zkr__session_outstanding(zkr_session_t *s, int *requests, int *watches) {
  int r = 0, w = 0;
  pthread_mutex_lock(&s->mu);
  if (s->cur)
    for (zkr__rec_t *x = s->cur->recs.next; x != &s->cur->recs; x = x->next)
      x->is_watch ? w++ : r++;
  pthread_mutex_unlock(&s->mu);
  *requests = r;
  *watches = w;
}

int zkr__call_watch(zkr__call_t *c, zkr__op_fn wfn, void *wctx) {
  zkr__rec_t *op = c->op, *w = calloc(1, sizeof(*w));

  if (!w)
    return ZKR_ENOMEM;
  w->fn = wfn;
  w->ctx = wctx;
  w->is_watch = 1; /* before linking: watches are not counted as requests */
  w->kind = op->kind;
  rec_link(op->h, w);
  op->watch = w;
  c->watch = w;
  return 0;
}

int zkr__call_budget(zkr__call_t *c, size_t bytes) {
  zkr_session_t *s = c->s; /* s->mu is held from zkr__call_begin */
  if (!c->watch || bytes > UINT32_MAX || s->watch_bytes + bytes > s->watch_budget)
    return ZKR_ELIMIT;
  ((zkr__rec_t *)c->watch)->budget = (uint32_t)bytes;
  s->watch_bytes += bytes;
  return 0;
}

int zkr__call_results(zkr__call_t *c, int n) {
  zkr__rec_t *op = c->op;

  if (n <= 0 || op->results)
    return ZKR_EINVAL;
  if (!(op->results = calloc((size_t)n, sizeof(zoo_op_result_t))))
    return ZKR_ENOMEM;
  op->nresults = n;
  c->results = op->results;
  return 0;
}

static void rec_free(zkr__rec_t *r) {
  if (r) {
    free(r->results);
    free(r);
  }
}

int zkr__call_end(zkr__call_t *c, int zrc) {
  zkr__rec_t *op = c->op;

  if (zrc != ZOK) {
    /* The client refused the call: neither the completion nor the watch runs. */
    if (op->watch) {
      rec_unlink(op->watch);
      rec_free(op->watch);
    }
    rec_unlink(op);
    rec_free(op);
  } else {
    c->s->stats.requests++;
    if (op->watch)
      c->s->stats.watches++;
  }
  pthread_mutex_unlock(&c->s->mu);
  return zrc;
}

/* Did a read with this kind and result leave its watch set? */
static int watch_was_set(int kind, int rc) {
  return rc == ZOK || ((kind == ZKR__K_EXISTS || kind == ZKR__K_WATCH) && rc == ZNONODE);
}

static void complete(zkr__rec_t *r, int rc, zkr__reply_t *rep) {
  zkr__handle_t *h = r->h;
  zkr_session_t *s = h->s;
  zkr__rec_t *unset_watch = NULL;
  int real_rc = rc;

  zkr__fault_fn hook = atomic_load(&fault_fn);

  if (hook) {
    rc = hook(atomic_load(&fault_arg), s, r->kind, rc);
    if (rc != real_rc)
      memset(rep, 0, sizeof(*rep));
  }
  /* When the C client drops a connection it fails every request in flight with
   * the reason: ZCONNECTIONLOSS, ZOPERATIONTIMEOUT, but also ZRUNTIMEINCONSISTENCY
   * (a reply whose xid was not the one expected: seen after a paused ensemble
   * leader came back) and ZMARSHALLINGERROR (a reply it could not decode). For
   * the request all of them mean the same: it may or may not have been applied.
   * Recipes resolve that case under one code, so give them that code. */
  if (rc == ZRUNTIMEINCONSISTENCY || rc == ZMARSHALLINGERROR)
    rc = ZCONNECTIONLOSS;
  pthread_mutex_lock(&s->mu);
  rec_unlink(r);
  if (r->watch && !watch_was_set(r->kind, real_rc)) {
    unset_watch = r->watch;
    rec_unlink(unset_watch);
  }
  pthread_mutex_unlock(&s->mu);
  if (r->results && !rep->results) {
    rep->results = r->results;
    rep->nresults = r->nresults;
  }
  zkr__dispatch_enter(s);
  r->fn(r->ctx, rc, rep);
  if (unset_watch) {
    /* Its owner still gets its one call, to let go of the context. */
    zkr__reply_t none = {0};
    unset_watch->fn(unset_watch->ctx, ZNOWATCHER, &none);
  }
  zkr__dispatch_leave(s);
  rec_free(unset_watch);
  rec_free(r);
}

void zkr__cb_void(int rc, const void *data) {
  zkr__reply_t rep = {0};
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_stat(int rc, const struct Stat *stat, const void *data) {
  zkr__reply_t rep = {0};
  rep.stat = stat;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_data(int rc, const char *value, int value_len, const struct Stat *stat,
                  const void *data) {
  zkr__reply_t rep = {0};
  rep.data = value;
  rep.data_len = value_len;
  rep.stat = stat;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_strings_stat(int rc, const struct String_vector *strings,
                          const struct Stat *stat, const void *data) {
  zkr__reply_t rep = {0};
  rep.strings = strings;
  rep.stat = stat;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_strings(int rc, const struct String_vector *strings, const void *data) {
  zkr__reply_t rep = {0};
  rep.strings = strings;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_string_stat(int rc, const char *value, const struct Stat *stat,
                         const void *data) {
  zkr__reply_t rep = {0};
  rep.path = value;
  rep.stat = stat;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__cb_string(int rc, const char *value, const void *data) {
  zkr__reply_t rep = {0};
  rep.path = value;
  complete((zkr__rec_t *)data, rc, &rep);
}

void zkr__watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  zkr__rec_t *w = ctx;
  zkr_session_t *s = w->h->s;
  zkr__reply_t rep = {0};

  (void)zh;
  /* This client hands session events to every registered watcher too; the
   * session's own watcher deals with those, and the node watch stays set. */
  if (type == ZOO_SESSION_EVENT)
    return;
  pthread_mutex_lock(&s->mu);
  rec_unlink(w);
  pthread_mutex_unlock(&s->mu);
  rep.type = type;
  rep.state = state;
  rep.path = path;
  zkr__dispatch_enter(s);
  w->fn(w->ctx, 0, &rep);
  zkr__dispatch_leave(s);
  rec_free(w);
}

void zkr__handle_drain(zkr__handle_t *h) {
  zkr_session_t *s = h->s;
  zkr__rec_t *r;

  zkr__dispatch_enter(s);
  for (;;) {
    zkr__reply_t rep = {0};
    pthread_mutex_lock(&s->mu);
    r = h->recs.next;
    if (r == &h->recs) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    rec_unlink(r); /* an op's watch, if linked, is drained on its own turn */
    pthread_mutex_unlock(&s->mu);
    if (r->results) {
      rep.results = r->results;
      rep.nresults = r->nresults;
    }
    r->fn(r->ctx, ZCLOSING, &rep);
    rec_free(r);
  }
  zkr__dispatch_leave(s);
}
