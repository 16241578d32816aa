/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listing the contenders of a lock or election path: getChildren, then one
 * getData per child, all pipelined on the session, then ordered like the
 * recipes order them. A child deleted between the listing and its read is left
 * out. The aggregate `agg` owns everything until the callback takes the array.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct agg agg_t;

typedef struct item {
  agg_t *a;
  int idx;
  int by_exists; /* its data could not be read: asked with exists instead */
} item_t;

struct agg {
  zkr_session_t *s;
  char *path;
  uint64_t gen;
  zkr_contenders_cb cb;
  void *arg;
  pthread_mutex_t mu;
  int n;       /* children listed */
  int pending; /* reads outstanding (mu) */
  int err;     /* first error (mu) */
  zkr_contender_t *list;
  item_t *items;
};

void zkr_contenders_free(zkr_contender_t *list, int count) {
  if (!list)
    return;
  for (int i = 0; i < count; i++) {
    free(list[i].name);
    free(list[i].data);
  }
  free(list);
}

static void agg_free(agg_t *a) {
  zkr__session_unref(a->s);
  pthread_mutex_destroy(&a->mu);
  zkr_contenders_free(a->list, a->n);
  free(a->items);
  free(a->path);
  free(a);
}

typedef struct sorted {
  zkr__child_t c;
  int idx;
} sorted_t;

static int sorted_cmp(const void *x, const void *y) {
  return zkr__child_cmp(&((const sorted_t *)x)->c, &((const sorted_t *)y)->c);
}

/* Order the entries that were read and hand them over. */
static void finish(agg_t *a, int rc) {
  zkr_contender_t *out = NULL;
  sorted_t *o = NULL;
  int m = 0;

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
      zkr_contender_t *e = &a->list[o[i].idx];
      out[i] = *e;
      out[i].sequence = o[i].c.seq;
      out[i].format = o[i].c.format;
      out[i].reader = o[i].c.reader;
      e->name = NULL; /* moved to out */
      e->data = NULL;
    }
  }
  free(o);
  if (rc != 0 || m == 0) {
    free(out);
    out = NULL;
    m = 0;
  }
  a->cb(rc, out, m, a->arg);
  agg_free(a);
}

static void on_data(void *ctx, int rc, const zkr__reply_t *r);

/* A child we may not read (ZNOAUTH: a creator-only ACL): exists needs no
 * permission and still tells its owner and czxid; its data stays unknown. */
static int send_exists(agg_t *a, item_t *it) {
  char *child = zkr__path_join(a->path, a->list[it->idx].name);
  zkr__call_t c;
  int rc;
  if (!child)
    return ZKR_ENOMEM;
  it->by_exists = 1;
  if ((rc = zkr__call_begin(a->s, a->gen, ZKR__K_EXISTS, on_data, it, &c)) == 0)
    rc = zkr__call_end(&c, zoo_aexists(c.zh, child, 0, zkr__cb_stat, c.op));
  free(child);
  return rc;
}

static void on_data(void *ctx, int rc, const zkr__reply_t *r) {
  item_t *it = ctx;
  agg_t *a = it->a;
  zkr_contender_t *e = &a->list[it->idx];
  int left;

  if (rc == ZNOAUTH && !it->by_exists && send_exists(a, it) == 0)
    return; /* this item answers again */
  pthread_mutex_lock(&a->mu);
  if (rc == ZOK && it->by_exists) {
    e->owner_session = r->stat ? r->stat->ephemeralOwner : 0;
    e->czxid = r->stat ? r->stat->czxid : 0;
  } else if (rc == ZOK) {
    e->owner_session = r->stat ? r->stat->ephemeralOwner : 0;
    e->czxid = r->stat ? r->stat->czxid : 0;
    e->data_len = r->data_len;
    if (r->data_len >= 0) {
      if (!(e->data = malloc((size_t)r->data_len + 1))) {
        if (!a->err)
          a->err = ZKR_ENOMEM;
      } else {
        memcpy(e->data, r->data, (size_t)r->data_len);
        e->data[r->data_len] = '\0';
      }
    }
  } else if (rc == ZNONODE) {
    free(e->name); /* gone since the listing */
    e->name = NULL;
  } else if (!a->err) {
    a->err = rc == ZCLOSING ? ZKR_ECLOSED : rc;
  }
  left = --a->pending;
  pthread_mutex_unlock(&a->mu);
  if (left == 0)
    finish(a, a->err);
}

static void on_children(void *ctx, int rc, const zkr__reply_t *r) {
  agg_t *a = ctx;
  int n = rc == ZOK && r->strings ? r->strings->count : 0;

  if (rc == ZNONODE || (rc == ZOK && n == 0)) {
    finish(a, 0); /* no such path, or nobody queued: an empty list */
    return;
  }
  if (rc != ZOK) {
    finish(a, rc == ZCLOSING ? ZKR_ECLOSED : rc);
    return;
  }
  a->list = calloc((size_t)n, sizeof(*a->list));
  a->items = calloc((size_t)n, sizeof(*a->items));
  if (!a->list || !a->items) {
    finish(a, ZKR_ENOMEM);
    return;
  }
  a->n = n;
  a->pending = n + 1; /* +1 until every read is sent */
  for (int i = 0; i < n; i++) {
    zkr__call_t c;
    int src;
    a->list[i].name = strdup(r->strings->data[i]);
    a->list[i].data_len = -1;
    a->items[i].a = a;
    a->items[i].idx = i;
    /* Child names come from the server and may be of any length. */
    char *child = a->list[i].name ? zkr__path_join(a->path, a->list[i].name) : NULL;
    if (!child) {
      src = ZKR_ENOMEM;
    } else {
      src = zkr__call_begin(a->s, a->gen, ZKR__K_GET, on_data, &a->items[i], &c);
      if (src == 0)
        src = zkr__call_end(&c, zoo_aget(c.zh, child, 0, zkr__cb_data, c.op));
      free(child);
    }
    if (src != 0) {
      pthread_mutex_lock(&a->mu);
      if (!a->err)
        a->err = src;
      a->pending--;
      pthread_mutex_unlock(&a->mu);
    }
  }
  pthread_mutex_lock(&a->mu);
  n = --a->pending;
  pthread_mutex_unlock(&a->mu);
  if (n == 0)
    finish(a, a->err);
}

int zkr_contenders_list_async(zkr_session_t *s, const char *path, zkr_contenders_cb cb,
                              void *arg) {
  agg_t *a;
  zkr__call_t c;
  int rc;

  if (!s || !cb || zkr__path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(a = calloc(1, sizeof(*a))))
    return ZKR_ENOMEM;
  if (!(a->path = strdup(path)) || pthread_mutex_init(&a->mu, NULL) != 0) {
    free(a->path);
    free(a);
    return ZKR_ENOMEM;
  }
  a->s = s;
  a->cb = cb;
  a->arg = arg;
  zkr__session_ref(s);
  if ((rc = zkr__call_begin(s, 0, ZKR__K_CHILDREN, on_children, a, &c)) == 0) {
    a->gen = c.gen; /* every read on the session the listing came from */
    rc = zkr__call_end(&c, zoo_aget_children(c.zh, path, 0, zkr__cb_strings, c.op));
  }
  if (rc != 0) {
    a->cb = NULL;
    agg_free(a);
  }
  return rc;
}

static void sync_cb(int rc, zkr_contender_t *list, int count, void *arg) {
  zkr__sync_t *y = arg;
  y->result = list;
  y->count = count;
  zkr__sync_done(y, rc);
}

static void free_result(void *list, int count) {
  zkr_contenders_free(list, count);
}

int zkr_contenders_list(zkr_session_t *s, const char *path, int timeout_ms,
                        zkr_contender_t **out, int *count) {
  zkr__sync_t *y;
  void *res = NULL;
  int n = 0, rc;

  if (!out || !count)
    return ZKR_EINVAL;
  *out = NULL;
  *count = 0;
  if (timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK; /* the replies come on a thread we might be blocking */
  /* 0 tries once: no waiting for a connection, but the replies are awaited (the
   * client answers every request, if only with a connection error). */
  if (timeout_ms == 0 && s && zkr_session_state(s) != ZKR_STATE_CONNECTED)
    return ZKR_ETIMEDOUT;
  if (!(y = zkr__sync_new()))
    return ZKR_ENOMEM;
  y->free_result = free_result;
  if ((rc = zkr_contenders_list_async(s, path, sync_cb, y)) != 0) {
    zkr__sync_done(y, rc);
    zkr__sync_wait(y, -1, NULL, NULL);
    return rc;
  }
  rc = zkr__sync_wait(y, timeout_ms == 0 ? -1 : zkr__deadline(timeout_ms), &res, &n);
  if (rc == 0) {
    *out = res;
    *count = n;
  }
  return rc;
}
