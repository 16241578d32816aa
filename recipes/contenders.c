/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listing the contenders of a lock or election path: getChildren, then one
 * getData per child, all pipelined on the session, then ordered like the
 * recipes order them. A child deleted between the listing and its read is left
 * out; one we may not read (a creator-only ACL) is asked with exists instead.
 *
 * A listing is a short-lived object of the recipe base: its requests hold it,
 * and its deadline timer ends it with ZKR_ETIMEDOUT (late replies are then
 * ignored). It owns everything until the callback takes the array.
 */
#include "object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct listing {
  zkr__obj_t o;
  char *path;
  zkr_contenders_cb cb;
  void *arg;

  /* (o.mu) */
  bool done;    /* the callback is on its way */
  uint64_t gen; /* every read on the session the listing came from */
  int n;        /* children listed */
  int pending;  /* reads outstanding */
  int err;      /* first error */
  zkr_contender_t *list;
  zkr__tmr_t *deadline;
} listing_t;

/* A read of one child. */
typedef struct child_req {
  zkr__req_t base;
  int idx;
} child_req_t;

void zkr_contenders_free(zkr_contender_t *list, int count) {
  if (!list)
    return;
  for (int i = 0; i < count; i++) {
    free(list[i].name);
    free(list[i].data);
  }
  free(list);
}

static void destroy(zkr__obj_t *o) {
  listing_t *a = (listing_t *)o;
  zkr_contenders_free(a->list, a->n);
  free(a->path);
  zkr__obj_fini(o);
  free(a);
}

static const zkr__obj_ops_t ops = {.name = "contenders", .destroy = destroy};

typedef struct sorted {
  zkr__child_t c;
  int idx;
} sorted_t;

static int sorted_cmp(const void *x, const void *y) {
  return zkr__child_cmp(&((const sorted_t *)x)->c, &((const sorted_t *)y)->c);
}

static void run_done(zkr__obj_t *o, const zkr__effect_t *e) {
  listing_t *a = (listing_t *)o;
  a->cb(e->rc, e->ptr, (int)e->value, a->arg);
}

/* Order the entries that were read and hand them over (o.mu held). */
static void finish(listing_t *a, int rc, zkr__fx_t *fx) {
  zkr_contender_t *out = NULL;
  sorted_t *o = NULL;
  zkr__effect_t *e;
  int m = 0;

  if (a->done)
    return;
  a->done = true;
  zkr__obj_timer_stop(&a->o, &a->deadline);
  if (rc == 0 && a->n > 0) {
    o = calloc((size_t)a->n, sizeof(*o));
    out = calloc((size_t)a->n, sizeof(*out));
    if (!o || !out)
      rc = ZKR_ENOMEM;
  }
  if (rc == 0 && a->n > 0) {
    for (int i = 0; i < a->n; i++) {
      if (!a->list[i].name)
        continue; /* vanished since the listing */
      zkr__child_parse(a->list[i].name, &o[m].c);
      o[m].c.contender = o[m].c.format != ZKR_FORMAT_UNKNOWN;
      o[m].idx = i;
      m++;
    }
    qsort(o, (size_t)m, sizeof(*o), sorted_cmp);
    for (int i = 0; i < m; i++) {
      zkr_contender_t *c = &a->list[o[i].idx];
      out[i] = *c;
      out[i].sequence = o[i].c.seq;
      out[i].format = o[i].c.format;
      out[i].reader = o[i].c.reader;
      c->name = NULL; /* moved to out */
      c->data = NULL;
    }
  }
  free(o);
  if (rc != 0 || m == 0) {
    free(out);
    out = NULL;
    m = 0;
  }
  if ((e = zkr__fx_add(fx, run_done, NULL, NULL, rc))) {
    e->ptr = out;
    e->value = m;
  } else {
    zkr_contenders_free(out, m);
  }
}

static void on_data(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx);

/* A child we may not read (ZNOAUTH: a creator-only ACL): exists needs no
 * permission and still tells its owner and czxid; its data stays unknown. */
static int send_read(listing_t *a, int idx, bool by_exists) {
  char *child = zkr__path_join(a->path, a->list[idx].name);
  zkr__send_t x;
  int rc;

  if (!child)
    return ZKR_ENOMEM;
  if ((rc = zkr__send_begin(&x, &a->o, a->gen, by_exists ? ZKR__K_EXISTS : ZKR__K_GET,
                            on_data, by_exists, sizeof(child_req_t))) == 0) {
    ((child_req_t *)x.rq)->idx = idx;
    rc = zkr__send_end(&x, by_exists ? zoo_aexists(x.c.zh, child, 0, zkr__cb_stat, x.c.op)
                                     : zoo_aget(x.c.zh, child, 0, zkr__cb_data, x.c.op));
  }
  free(child);
  return rc;
}

static void on_data(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx) {
  listing_t *a = (listing_t *)o;
  int idx = ((child_req_t *)rq)->idx;
  zkr_contender_t *c = &a->list[idx];
  bool by_exists = rq->tok != 0;

  if (a->done)
    return;
  if (rc == ZNOAUTH && !by_exists && send_read(a, idx, true) == 0)
    return; /* this child answers again */
  if (rc == ZOK) {
    c->owner_session = r->stat ? r->stat->ephemeralOwner : 0;
    c->czxid = r->stat ? r->stat->czxid : 0;
    if (!by_exists && r->data_len >= 0) {
      c->data_len = r->data_len;
      if (!(c->data = malloc((size_t)r->data_len + 1))) {
        if (!a->err)
          a->err = ZKR_ENOMEM;
      } else {
        memcpy(c->data, r->data, (size_t)r->data_len);
        c->data[r->data_len] = '\0';
      }
    }
  } else if (rc == ZNONODE) {
    free(c->name); /* gone since the listing */
    c->name = NULL;
  } else if (!a->err) {
    a->err = zkr__rc_class(rc) == ZKR__RC_CLOSED ? ZKR_ECLOSED : rc;
  }
  if (--a->pending == 0)
    finish(a, a->err, fx);
}

static void on_children(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                        zkr__fx_t *fx) {
  listing_t *a = (listing_t *)o;
  int n = rc == ZOK && r->strings ? r->strings->count : 0;

  (void)rq;
  if (a->done)
    return;
  if (rc == ZNONODE || (rc == ZOK && n == 0)) {
    finish(a, 0, fx); /* no such path, or nobody queued: an empty list */
    return;
  }
  if (rc != ZOK) {
    finish(a, zkr__rc_class(rc) == ZKR__RC_CLOSED ? ZKR_ECLOSED : rc, fx);
    return;
  }
  if (!(a->list = calloc((size_t)n, sizeof(*a->list)))) {
    finish(a, ZKR_ENOMEM, fx);
    return;
  }
  a->n = n;
  a->pending = n;
  for (int i = 0; i < n; i++) {
    int src = ZKR_ENOMEM;
    a->list[i].data_len = -1;
    /* Child names come from the server and may be of any length. */
    if ((a->list[i].name = strdup(r->strings->data[i])))
      src = send_read(a, i, false);
    if (src != 0) {
      if (!a->err)
        a->err = src;
      a->pending--;
    }
  }
  if (a->pending == 0)
    finish(a, a->err, fx);
}

static void on_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  finish((listing_t *)o, fired ? ZKR_ETIMEDOUT : ZKR_ECLOSED, fx);
}

int zkr_contenders_list_async(zkr_session_t *s, const char *path, int timeout_ms,
                              zkr_contenders_cb cb, void *arg) {
  zkr__fx_t fx = ZKR__FX_INIT;
  listing_t *a;
  zkr__send_t x;
  int rc;

  if (!s || !cb || timeout_ms < -1 || zkr__path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(a = zkr__obj_new(sizeof(*a), &ops, s)))
    return ZKR_ENOMEM;
  a->cb = cb;
  a->arg = arg;
  pthread_mutex_lock(&a->o.mu);
  if (!(a->path = strdup(path))) {
    rc = ZKR_ENOMEM;
  } else if (timeout_ms == 0 && zkr_session_state(s) != ZKR_STATE_CONNECTED) {
    /* One attempt, no waiting for the connection: ZKR_ETIMEDOUT, from the worker. */
    rc = zkr__obj_timer(&a->o, &a->deadline, zkr__now_ns() / 1000, on_deadline);
  } else if ((rc = zkr__send_begin(&x, &a->o, 0, ZKR__K_CHILDREN, on_children, 0, 0)) ==
             0) {
    a->gen = x.c.gen;
    rc = zkr__send_end(&x, zoo_aget_children(x.c.zh, path, 0, zkr__cb_strings, x.c.op));
    /* The client answers every request, if only with a connection error: with
     * timeout 0 the replies are awaited, with no deadline. */
    if (rc == 0 && timeout_ms > 0 &&
        zkr__obj_timer(&a->o, &a->deadline, (zkr__now_ms() + timeout_ms) * 1000,
                       on_deadline) != 0)
      zkr__log(ZKR_LOG_WARN, "contenders %s: no deadline", path);
  }
  if (rc != 0)
    a->done = true; /* an async call that fails never calls back */
  zkr__obj_unlock_api(&a->o, &fx);
  zkr__obj_unref(&a->o); /* the requests and the timer hold it from here */
  return rc;
}

static void sync_cb(int rc, zkr_contender_t *list, int count, void *arg) {
  zkr__sync_t *y = arg;
  y->ptr = list;
  y->count = count;
  zkr__sync_signal(y, rc);
}

int zkr_contenders_list(zkr_session_t *s, const char *path, int timeout_ms,
                        zkr_contender_t **out, int *count) {
  zkr__sync_t y;
  int rc;

  if (!out || !count)
    return ZKR_EINVAL;
  *out = NULL;
  *count = 0;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(&y, zkr_contenders_list_async(s, path, timeout_ms, sync_cb, &y));
  if (rc == 0) {
    *out = y.ptr;
    *count = y.count;
  } else {
    zkr_contenders_free(y.ptr, y.count);
  }
  return rc;
}
