/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Children cache: the children of a path, optionally with their data.
 *
 * Znodes: none of its own; it reads P's children (getChildren2 with a child
 * watch, or exists with a watch while P is absent) and, with
 * ZKR_CHILDREN_DATA, each child's data (getData with a data watch).
 *
 * Algorithm: the children are kept sorted by name. A listing is diffed
 * against them: a new name is ADDED (once its data is read, in data mode; a
 * child gone before its read is simply dropped, so it never holds back
 * INITIALIZED), a missing name is REMOVED. The parent's cversion counts every
 * create and delete of a child: when it moved by more than the diff explains,
 * children came and went between the two listings unseen, and a
 * CHILDREN_MISSED event says how many changes that was. A child's data watch fires on a change (read
 * again: UPDATED, with the versions skipped as missed) or on its deletion (the
 * child watch on P lists again). A child read again with another czxid than
 * held was deleted and created again: REPLACED.
 *
 * Initial load: every child's read is sent at once behind the listing
 * (pipelined), and INITIALIZED comes when the last one is answered.
 * Reconnect within a session: the C client sets the watches again and they
 * fire for what changed meanwhile; requests cut off by the disconnection are
 * made again (list, and the children marked stale). After an expiry:
 * RESYNC_BEGIN, then a listing and every child read again on the new session,
 * the diff with gap set, RESYNC_END once the reads are answered.
 *
 * Every request carries a token (the listing's, or the child's own); an
 * answer whose token is not the current one is stale and ignored, so an old
 * value never overwrites a newer one. Requests name the child, not a pointer.
 *
 * Locking: o.mu guards everything marked (mu); events run after it is
 * released (the object base's effects), in the order they were added.
 */
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct child {
  char *name;
  uint32_t tok;  /* the read (and its watch) that counts; 0: none */
  bool reported; /* ADDED was told */
  bool stale;    /* to be read again (its read was cut off, or a new session) */
  bool pending;  /* its read is awaited before INITIALIZED / RESYNC_END (counted
                    in unread) */
  char *data;    /* NUL-terminated copy, NULL when none */
  int len;       /* -1: no data */
  struct Stat stat;
} child_t;

struct zkr_children_cache {
  zkr__obj_t o;
  char *path;
  size_t plen;
  int flags;

  /* (mu) */
  bool started;
  bool initialized; /* INITIALIZED was told */
  bool resyncing;   /* between RESYNC_BEGIN and RESYNC_END */
  bool absent;      /* PARENT_ABSENT was told and still holds */
  bool list_stale;  /* the listing (or exists) must be made again */
  int stopped;      /* why the cache stopped following (ZKR_ELIMIT), else 0 */
  uint32_t list_tok;
  bool have_cversion;
  int32_t cversion;
  int unread;     /* children pending (see child_t) */
  child_t **kids; /* sorted by name */
  int n;
};

#define CC(o) ((zkr_children_cache_t *)(o))

typedef struct kid_req {
  zkr__req_t base;
  char name[]; /* the child it is about */
} kid_req_t;

static bool want_data(const zkr_children_cache_t *c) {
  return (c->flags & ZKR_CHILDREN_DATA) != 0;
}

/* ---- the sorted children ---- */

static int find(const zkr_children_cache_t *c, const char *name, bool *found) {
  int lo = 0, hi = c->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2, d = strcmp(c->kids[mid]->name, name);
    if (d == 0) {
      *found = true;
      return mid;
    }
    if (d < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static child_t *lookup(const zkr_children_cache_t *c, const char *name) {
  bool found;
  int i = find(c, name, &found);
  return found ? c->kids[i] : NULL;
}

/* k's awaited read is answered (or k is gone): one less to wait for. */
static void settle_kid(zkr_children_cache_t *c, child_t *k) {
  if (k->pending) {
    k->pending = false;
    c->unread--;
  }
}

static void kid_free(child_t *k) {
  if (k) {
    free(k->name);
    free(k->data);
    free(k);
  }
}

/* ---- events ---- */

typedef struct ev_rec {
  zkr_cache_event_t ev;
  char bytes[]; /* path, then data */
} ev_rec_t;

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg, const zkr__effect_t *e) {
  ((zkr_children_cache_listener_fn)fn)(CC(o), &((ev_rec_t *)e->ptr)->ev, arg);
}

/* o.mu held: an event about child k (NULL: about the parent), with missed
 * changes before it; returned to be filled in further (NULL: nobody listens). */
static ev_rec_t *tell(zkr_children_cache_t *c, int type, const child_t *k, int missed,
                      zkr__fx_t *fx) {
  size_t nl = k ? strlen(k->name) : 0;
  size_t pl = c->plen + (k ? 1 + nl : 0);
  size_t dl = k && k->data && k->len > 0 ? (size_t)k->len : 0;
  ev_rec_t *r;

  if (!c->o.lfn)
    return NULL;
  if (!(r = calloc(1, sizeof(*r) + pl + 1 + dl))) {
    zkr__log(ZKR_LOG_ERROR, "children cache %s: out of memory: a %s event is lost",
             c->path, zkr_cache_event_name(type));
    return NULL;
  }
  memcpy(r->bytes, c->path, c->plen);
  if (k) {
    r->bytes[c->plen] = '/';
    memcpy(r->bytes + c->plen + 1, k->name, nl);
  }
  r->bytes[pl] = '\0';
  r->ev.type = type;
  r->ev.path = r->bytes;
  r->ev.len = -1;
  if (k && type != ZKR_CACHE_REMOVED) {
    r->ev.exists = 1;
    r->ev.stat = k->stat;
    if (k->data) {
      memcpy(r->bytes + pl + 1, k->data, dl);
      r->ev.data = r->bytes + pl + 1;
      r->ev.len = k->len;
    }
  } else if (!k) {
    r->ev.exists = !c->absent;
  }
  r->ev.gap = c->resyncing && type != ZKR_CACHE_RESYNC_BEGIN && type != ZKR_CACHE_RESYNC_END;
  r->ev.missed = missed;
  if (!zkr__fx_event_owned(fx, &c->o, call_listener, type, r)) {
    free(r);
    return NULL;
  }
  return r;
}

/* After a read was answered: INITIALIZED or RESYNC_END once nothing is pending. */
static void maybe_settled(zkr_children_cache_t *c, zkr__fx_t *fx) {
  if (c->unread > 0 || c->list_stale)
    return;
  if (!c->initialized) {
    c->initialized = true;
    tell(c, ZKR_CACHE_INITIALIZED, NULL, 0, fx);
  } else if (c->resyncing) {
    c->resyncing = false;
    tell(c, ZKR_CACHE_RESYNC_END, NULL, 0, fx);
  }
}

/* ---- requests (o.mu held) ---- */

/* The watch about to be set would go over the session's budget: stop, once. */
static void stop(zkr_children_cache_t *c, int why, zkr__fx_t *fx) {
  ev_rec_t *r;
  if (c->stopped)
    return;
  c->stopped = why;
  c->list_tok = zkr__obj_token(&c->o); /* what is still out finds nothing */
  for (int m = 0; m < c->n; m++)
    c->kids[m]->tok = 0;
  zkr__log(ZKR_LOG_ERROR, "children cache %s: stopped: %s", c->path, zkr_strerror(why));
  if ((r = tell(c, ZKR_CACHE_STOPPED, NULL, 0, fx)))
    r->ev.error = why;
}

static void on_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx);
static void on_list_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx);
static void on_parent_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                             zkr__fx_t *fx);
static void on_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx);
static void on_kid_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx);

/* List P with a child watch (exists with a watch instead while it is absent). */
static void send_list(zkr_children_cache_t *c, bool exists, zkr__fx_t *fx) {
  zkr__send_t x;
  int rc;

  if (c->stopped)
    return;
  c->list_tok = zkr__obj_token(&c->o);
  c->list_stale = false;
  if ((rc = zkr__send_begin(&x, &c->o, 0, exists ? ZKR__K_EXISTS : ZKR__K_CHILDREN,
                            exists ? on_parent_exists : on_listed, c->list_tok, 0)) != 0)
    goto fail;
  if ((rc = zkr__send_watch(&x, on_list_watch, c->list_tok, 0)) != 0 ||
      (rc = zkr__send_watch_budget(&x, c->plen + 4)) != 0) {
    zkr__send_end(&x, rc);
    if (rc == ZKR_ELIMIT)
      stop(c, rc, fx);
    goto fail;
  }
  rc = exists ? zoo_awexists(x.c.zh, c->path, zkr__watcher, x.c.watch, zkr__cb_stat,
                             x.c.op)
              : zoo_awget_children2(x.c.zh, c->path, zkr__watcher, x.c.watch,
                                    zkr__cb_strings_stat, x.c.op);
  if (zkr__send_end(&x, rc) == 0)
    return;
fail:
  c->list_stale = true; /* made again when the connection is back */
}

/* Read child k with a data watch (data mode). */
static void send_read(zkr_children_cache_t *c, child_t *k, zkr__fx_t *fx) {
  size_t nl = strlen(k->name) + 1;
  char path[ZKR__PATH_MAX + 2];
  zkr__send_t x;
  int rc;

  if (c->stopped)
    return;
  if (c->plen + nl + 1 > sizeof(path)) {
    k->stale = true; /* the server would refuse it too */
    return;
  }
  memcpy(path, c->path, c->plen);
  path[c->plen] = '/';
  memcpy(path + c->plen + 1, k->name, nl);
  k->tok = zkr__obj_token(&c->o);
  k->stale = false;
  if ((rc = zkr__send_begin(&x, &c->o, 0, ZKR__K_GET, on_read, k->tok,
                            sizeof(kid_req_t) + nl)) != 0)
    goto fail;
  memcpy(((kid_req_t *)x.rq)->name, k->name, nl);
  if ((rc = zkr__send_watch(&x, on_kid_watch, k->tok, sizeof(kid_req_t) + nl)) != 0 ||
      (rc = zkr__send_watch_budget(&x, c->plen + nl + 4)) != 0) {
    zkr__send_end(&x, rc);
    if (rc == ZKR_ELIMIT) {
      stop(c, rc, fx);
      return;
    }
    goto fail;
  }
  memcpy(((kid_req_t *)x.wrq)->name, k->name, nl);
  if (zkr__send_end(&x, zoo_awget(x.c.zh, path, zkr__watcher, x.c.watch, zkr__cb_data,
                                  x.c.op)) == 0)
    return;
fail:
  k->tok = 0;
  k->stale = true;
}

/* ---- the diff ---- */

/* A child that is gone: REMOVED if it was told (else it is simply dropped: a
 * child gone before its first read never holds anything back), and freed. */
static void drop(zkr_children_cache_t *c, child_t *k, zkr__fx_t *fx) {
  if (k->reported)
    tell(c, ZKR_CACHE_REMOVED, k, 0, fx);
  settle_kid(c, k);
  kid_free(k);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_listed(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);
  const struct String_vector *sv = r->strings;
  child_t **next;
  char **names;
  int n, i = 0, j = 0, k = 0, changes = 0;
  bool have_before;
  int32_t before;

  if (rq->tok != c->list_tok || o->freed)
    return;
  if (rc == ZNONODE) {
    /* P is absent: every child goes, once; then wait for P. */
    for (int m = 0; m < c->n; m++)
      drop(c, c->kids[m], fx);
    c->n = 0;
    c->have_cversion = false;
    if (!c->absent) {
      c->absent = true;
      if (c->initialized)
        tell(c, ZKR_CACHE_PARENT_ABSENT, NULL, 0, fx);
    }
    send_list(c, true, fx);
    maybe_settled(c, fx);
    return;
  }
  if (rc != ZOK) {
    c->list_stale = true; /* made again when the connection is back */
    return;
  }
  n = sv ? sv->count : 0;
  if (!(names = malloc((size_t)(n ? n : 1) * sizeof(*names))) ||
      !(next = malloc((size_t)(n + c->n + 1) * sizeof(*next)))) {
    free(names);
    zkr__log(ZKR_LOG_ERROR, "children cache %s: out of memory: the listing is lost", c->path);
    c->list_stale = true;
    return;
  }
  for (int m = 0; m < n; m++)
    names[m] = sv->data[m];
  qsort(names, (size_t)n, sizeof(*names), cmp_names);
  c->absent = false;

  have_before = c->have_cversion;
  before = c->cversion;
  if (r->stat) {
    c->cversion = r->stat->cversion;
    c->have_cversion = true;
  }

  /* Merge: keep what stays, drop what went, make what came. */
  while (i < c->n || j < n) {
    int d = i == c->n ? 1 : j == n ? -1 : strcmp(c->kids[i]->name, names[j]);
    changes += d != 0;
    if (d == 0) {
      child_t *kept = c->kids[i++];
      /* Its data watch fired a deletion (or was never set): read it again; a
       * new czxid then makes it REPLACED. */
      if (want_data(c) && !kept->tok)
        kept->stale = true;
      next[k++] = kept;
      j++;
    } else if (d < 0) {
      drop(c, c->kids[i++], fx);
    } else {
      child_t *nk = calloc(1, sizeof(*nk));
      if (!nk || !(nk->name = strdup(names[j]))) {
        free(nk);
        zkr__log(ZKR_LOG_ERROR, "children cache %s: out of memory: child %s is not kept",
                 c->path, names[j]);
        j++;
        continue;
      }
      nk->len = -1;
      next[k++] = nk;
      j++;
      if (want_data(c)) {
        nk->pending = true;
        c->unread++;
        nk->stale = true; /* read below, once the array is in place */
      } else {
        nk->reported = true;
        tell(c, ZKR_CACHE_ADDED, nk, 0, fx);
      }
    }
  }
  free(names);
  free(c->kids);
  c->kids = next;
  c->n = k;
  for (int m = 0; m < c->n; m++)
    if (c->kids[m]->stale && !c->kids[m]->tok)
      send_read(c, c->kids[m], fx);
  /* The parent's cversion counts every create and delete of a child: what it
   * moved by beyond the changes seen came and went between the two listings. */
  if (have_before && r->stat) {
    int moved = (int)((uint32_t)r->stat->cversion - (uint32_t)before);
    if (moved > changes)
      tell(c, ZKR_CACHE_CHILDREN_MISSED, NULL, moved - changes, fx);
  }
  maybe_settled(c, fx);
}

static void on_list_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                          zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);
  (void)r, (void)fx;
  if (rq->tok != c->list_tok || o->freed || rc != ZOK)
    return; /* ZNOWATCHER: the request's answer decides; ZCLOSING: the end */
  send_list(c, false, fx); /* children changed, P created or deleted: list again */
}

static void on_parent_exists(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                             zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);
  (void)r, (void)fx;
  if (rq->tok != c->list_tok || o->freed)
    return;
  if (rc == ZOK)
    send_list(c, false, fx); /* created meanwhile */
  else if (rc != ZNONODE)
    c->list_stale = true;
  /* ZNONODE: the exists watch waits for the creation */
}

static void on_read(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                    zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);
  child_t *k = lookup(c, ((kid_req_t *)rq)->name);
  char *copy = NULL;
  int type, missed = 0;

  if (!k || k->tok != rq->tok || o->freed)
    return;
  if (rc == ZNONODE) {
    /* Deleted: the child watch on P lists again and removes it. */
    k->tok = 0;
    settle_kid(c, k); /* never holds INITIALIZED back (CURATOR-476) */
    maybe_settled(c, fx);
    return;
  }
  if (rc != ZOK || !r->stat) {
    k->tok = 0;
    k->stale = true; /* read again when the connection is back */
    return;
  }
  if (r->data_len >= 0 && !(copy = malloc((size_t)r->data_len + 1))) {
    zkr__log(ZKR_LOG_ERROR, "children cache %s: out of memory: child %s not read", c->path,
             k->name);
    return;
  }
  if (copy) {
    memcpy(copy, r->data, (size_t)r->data_len);
    copy[r->data_len] = '\0';
  }
  settle_kid(c, k);
  if (!k->reported) {
    type = ZKR_CACHE_ADDED;
  } else if (r->stat->czxid != k->stat.czxid) {
    type = ZKR_CACHE_REPLACED;
  } else if ((int32_t)((uint32_t)r->stat->version - (uint32_t)k->stat.version) > 0) {
    type = ZKR_CACHE_UPDATED;
    missed = (int)((uint32_t)r->stat->version - (uint32_t)k->stat.version) - 1;
  } else {
    free(copy); /* nothing new: the version we hold */
    maybe_settled(c, fx);
    return;
  }
  free(k->data);
  k->data = copy;
  k->len = r->data_len;
  k->stat = *r->stat;
  k->reported = true;
  tell(c, type, k, missed, fx);
  maybe_settled(c, fx);
}

static void on_kid_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                         zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);
  child_t *k = lookup(c, ((kid_req_t *)rq)->name);
  (void)fx;
  if (!k || k->tok != rq->tok || o->freed || rc != ZOK)
    return;
  if (r->type == ZOO_DELETED_EVENT) {
    k->tok = 0; /* the child watch on P tells the rest */
    return;
  }
  send_read(c, k, fx); /* changed (or deleted and created again): read it */
}

/* ---- the object ---- */

static void resume(zkr_children_cache_t *c, bool new_session, zkr__fx_t *fx) {
  if (new_session) {
    /* Every watch went with the old session: list and read everything again,
     * and RESYNC_END waits for all of it. */
    for (int m = 0; m < c->n; m++) {
      child_t *k = c->kids[m];
      k->tok = 0;
      k->stale = want_data(c);
      if (want_data(c) && !k->pending) {
        k->pending = true;
        c->unread++;
      }
    }
    c->list_stale = true;
  }
  if (c->list_stale)
    send_list(c, false, fx);
  /* Reads cut off (or of the old session) are made by the listing's answer
   * (it reads every stale child); with the listing in place, read them now. */
  else
    for (int m = 0; m < c->n; m++)
      if (c->kids[m]->stale && want_data(c))
        send_read(c, c->kids[m], fx);
}

static void on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_children_cache_t *c = CC(o);

  if (!c->started)
    return;
  switch (event) {
  case ZKR_SESSION_LOST:
    if (c->initialized && !c->resyncing) {
      c->resyncing = true;
      tell(c, ZKR_CACHE_RESYNC_BEGIN, NULL, 0, fx);
    }
    c->list_stale = true;
    break;
  case ZKR_SESSION_CONNECTED: resume(c, true, fx); break;
  case ZKR_SESSION_RECONNECTED: resume(c, false, fx); break;
  }
}

static void destroy(zkr__obj_t *o) {
  zkr_children_cache_t *c = CC(o);
  for (int m = 0; m < c->n; m++)
    kid_free(c->kids[m]);
  free(c->kids);
  free(c->path);
  zkr__obj_fini(o);
  free(c);
}

static const zkr__obj_ops_t ops = {
    .name = "children cache", .on_session = on_session, .resume = NULL, .destroy = destroy};

/* ---- public ---- */

int zkr_children_cache_new(zkr_session_t *s, const char *path, int flags,
                           zkr_children_cache_t **out) {
  zkr_children_cache_t *c;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || (flags & ~ZKR_CHILDREN_DATA) != 0)
    return ZKR_EINVAL;
  if (!(c = zkr__obj_new(sizeof(*c), &ops, s)))
    return ZKR_ENOMEM;
  c->flags = flags;
  if (!(c->path = strdup(path))) {
    zkr__obj_unref(&c->o);
    return ZKR_ENOMEM;
  }
  c->plen = strlen(path);
  if ((rc = zkr__obj_listen(&c->o)) != 0) {
    zkr__obj_unref(&c->o);
    return rc;
  }
  *out = c;
  return 0;
}

int zkr_children_cache_set_listener(zkr_children_cache_t *c,
                                    zkr_children_cache_listener_fn fn, void *arg) {
  if (!c)
    return ZKR_EINVAL;
  zkr__obj_set_listener(&c->o, ZKR__FN(fn), arg);
  return 0;
}

int zkr_children_cache_start(zkr_children_cache_t *c) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  if (c->o.freed || zkr_session_state(c->o.s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (c->started) {
    rc = ZKR_EBUSY;
  } else {
    c->started = true;
    c->list_stale = true;
    if (zkr__session_gen(c->o.s) != 0)
      send_list(c, false, &fx); /* else on CONNECTED */
  }
  zkr__obj_unlock_api(&c->o, &fx);
  return rc;
}

int zkr_children_cache_list(zkr_children_cache_t *c, zkr_cache_child_t **out, int *count) {
  zkr_cache_child_t *a = NULL;
  int rc = 0, n = 0;

  if (out)
    *out = NULL;
  if (count)
    *count = 0;
  if (!c || !out || !count)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  if (c->stopped) {
    rc = c->stopped;
  } else if (!c->initialized) {
    rc = ZKR_ENOTREADY;
  } else if (c->absent) {
    rc = ZNONODE;
  } else if (c->n > 0 && !(a = calloc((size_t)c->n, sizeof(*a)))) {
    rc = ZKR_ENOMEM;
  } else {
    for (int m = 0; m < c->n && rc == 0; m++) {
      const child_t *k = c->kids[m];
      zkr_cache_child_t *e;
      if (!k->reported)
        continue; /* not read yet: not in the view */
      e = &a[n++]; /* counted at once: freed with the rest on failure */
      e->len = -1;
      e->stat = k->stat;
      if (!(e->name = strdup(k->name)))
        rc = ZKR_ENOMEM;
      else if (k->data && !(e->data = malloc((size_t)k->len + 1)))
        rc = ZKR_ENOMEM;
      else if (k->data) {
        memcpy(e->data, k->data, (size_t)k->len + 1);
        e->len = k->len;
      }
    }
  }
  pthread_mutex_unlock(&c->o.mu);
  if (rc != 0) {
    zkr_cache_children_free(a, n);
    return rc;
  }
  *out = a;
  *count = n;
  return 0;
}

void zkr_cache_children_free(zkr_cache_child_t *a, int count) {
  for (int m = 0; a && m < count; m++) {
    free(a[m].name);
    free(a[m].data);
  }
  free(a);
}

void zkr_children_cache_free(zkr_children_cache_t *c) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!c || !zkr__obj_free_begin(&c->o))
    return;
  c->list_tok = zkr__obj_token(&c->o); /* answers and watches still out find nothing */
  for (int m = 0; m < c->n; m++)
    c->kids[m]->tok = 0;
  zkr__obj_free_end(&c->o, &fx);
}
