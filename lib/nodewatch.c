/* SPDX-License-Identifier: Apache-2.0 */
/* Following one znode (see nodewatch.h). Every function runs with o->mu held. */
#include "nodewatch.h"

#include <stdlib.h>

#define W(rq) ((zkr__nodewatch_t *)(rq)->ctx)

static void arm(zkr__nodewatch_t *w, bool exists);

/* A newer state of the node than the last news? Versions compare wrap-aware. */
static void report_present(zkr__nodewatch_t *w, const zkr__reply_t *r, zkr__fx_t *fx) {
  const struct Stat *st = r->stat;
  zkr__node_view_t v = {0, r->data, r->data_len, st};

  if (!st)
    return;
  if (!w->known || !w->exists)
    v.kind = ZKR__NODE_CREATED;
  else if (st->czxid != w->czxid)
    v.kind = ZKR__NODE_REPLACED;
  else if ((int32_t)((uint32_t)st->version - (uint32_t)w->version) > 0)
    v.kind = ZKR__NODE_CHANGED;
  else
    return; /* nothing new (a watch event of our own read's version) */
  w->known = w->exists = true;
  w->czxid = st->czxid;
  w->version = st->version;
  w->fn(w, &v, fx);
}

static void report_absent(zkr__nodewatch_t *w, zkr__fx_t *fx) {
  zkr__node_view_t v = {ZKR__NODE_DELETED, NULL, -1, NULL};
  bool was = w->known && w->exists;
  w->known = true;
  w->exists = false;
  if (was)
    w->fn(w, &v, fx);
}

static void on_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx) {
  zkr__nodewatch_t *w = W(rq);
  (void)o;
  if (rq->tok != w->tok || !w->on)
    return;
  if (rc == ZOK) {
    report_present(w, r, fx);
    if (w->settled)
      w->settled(w, fx);
  } else if (rc == ZNONODE) {
    report_absent(w, fx);
    if (w->on) /* (the news may have stopped it) */
      arm(w, true); /* wait for it to be created */
    if (w->settled)
      w->settled(w, fx);
  } else {
    w->armed = false; /* armed again when the connection is back */
  }
}

static void on_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr__nodewatch_t *w = W(rq);
  (void)o, (void)r, (void)fx;
  if (rq->tok != w->tok || !w->on)
    return;
  if (rc == ZOK)
    arm(w, false); /* created meanwhile: read it */
  else if (rc != ZNONODE)
    w->armed = false; /* armed again when the connection is back */
  /* ZNONODE: the exists watch waits for the creation */
}

static void on_event(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx) {
  zkr__nodewatch_t *w = W(rq);
  (void)o, (void)r, (void)fx;
  if (rq->tok != w->tok || !w->on)
    return;
  if (rc == ZOK)
    arm(w, false); /* changed, created or deleted: read and watch again */
  else if (rc == ZCLOSING)
    w->armed = false;
  /* ZNOWATCHER: the read's reply decides what comes next */
}

static void arm(zkr__nodewatch_t *w, bool exists) {
  zkr__send_t x;
  int rc;

  w->tok = zkr__obj_token(w->o);
  w->armed = true;
  if ((rc = zkr__send_begin(&x, w->o, 0, exists ? ZKR__K_EXISTS : ZKR__K_GET,
                            exists ? on_exists : on_read, w->tok, 0)) != 0)
    goto fail;
  x.rq->ctx = w;
  if ((rc = zkr__send_watch(&x, on_event, w->tok, 0)) != 0) {
    zkr__send_end(&x, rc);
    goto fail;
  }
  x.wrq->ctx = w;
  rc = exists
           ? zoo_awexists(x.c.zh, w->path, zkr__watcher, x.c.watch, zkr__cb_stat, x.c.op)
           : zoo_awget(x.c.zh, w->path, zkr__watcher, x.c.watch, zkr__cb_data, x.c.op);
  if (zkr__send_end(&x, rc) == 0)
    return;
fail:
  w->armed = false; /* armed again on the next CONNECTED/RECONNECTED */
}

void zkr__nodewatch_init(zkr__nodewatch_t *w, zkr__obj_t *o, const char *path,
                         zkr__nodewatch_fn fn) {
  w->o = o;
  w->path = path;
  w->fn = fn;
}

void zkr__nodewatch_start(zkr__nodewatch_t *w) {
  w->on = true;
  w->known = false;
  if (!w->armed)
    arm(w, false);
}

void zkr__nodewatch_stop(zkr__nodewatch_t *w) {
  w->on = false;
  w->armed = false;
  w->tok = zkr__obj_token(w->o); /* a watch still set fires into nothing */
}

void zkr__nodewatch_on_session(zkr__nodewatch_t *w, int event) {
  switch (event) {
  case ZKR_SESSION_LOST: w->armed = false; break; /* watches went with the session */
  case ZKR_SESSION_RECONNECTED:
  case ZKR_SESSION_CONNECTED:
    if (w->on && !w->armed)
      arm(w, false);
    break;
  }
}
