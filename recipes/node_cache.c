/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node cache: one znode followed by a node watcher (lib/nodewatch.c).
 *
 * Znodes: none of its own; it only reads path (getData or exists, with a watch).
 *
 * The watcher reports CREATED / CHANGED / DELETED / REPLACED as it sees them
 * (identity by czxid, newer data by a wrap-aware version compare within one
 * czxid, which orders as mzxid does) and, after each read's answer, that the
 * state is known ("settled"). The cache keeps a copy of the last view and:
 * - holds back the watcher's first news until the first read is settled, and
 *   reports INITIALIZED with the view then (node or absence);
 * - on LOST (the session expired) reports RESYNC_BEGIN; the watcher reads again
 *   on the new session, its news (if any) is reported with gap set, and the
 *   first settled read after it ends the bracket with RESYNC_END.
 * Within a session the C client sets the watches again after a reconnect, and
 * the watcher reads again when a read was cut off, so nothing else is needed.
 *
 * Waiters (zkr_node_cache_wait) sleep on cv with o.mu and hold a reference.
 *
 * Locking: o.mu guards everything marked (mu); the watcher's functions run with
 * it held; events run after it is released (the object base's effects).
 */
#include "nodewatch.h"
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct zkr_node_cache {
  zkr__obj_t o;
  char *path;
  zkr__nodewatch_t nw;
  pthread_cond_t cv; /* broadcast on every new view, and on free / close */

  /* (mu) */
  bool started;
  bool closed;      /* freed, or its session was */
  bool initialized; /* INITIALIZED was reported: the view is known */
  bool resyncing;   /* between RESYNC_BEGIN and RESYNC_END */
  bool exists;
  char *data; /* a copy of the data (NUL-terminated), NULL when none */
  int len;    /* -1: absent or no data */
  struct Stat stat;
};

#define NC(o) ((zkr_node_cache_t *)(o))

/* ---- events ---- */

/* An event as the listener gets it, with its own copy of the data. */
typedef struct ev_rec {
  zkr_cache_event_t ev;
  char bytes[]; /* the data */
} ev_rec_t;

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg, const zkr__effect_t *e) {
  ((zkr_node_cache_listener_fn)fn)(NC(o), &((ev_rec_t *)e->ptr)->ev, arg);
}

/* o.mu held: an event of type with the view held now, missed versions
 * skipped before it. */
static void tell(zkr_node_cache_t *c, int type, int missed, zkr__fx_t *fx) {
  size_t n = c->exists && c->len > 0 ? (size_t)c->len : 0;
  ev_rec_t *r;

  if (!c->o.lfn)
    return;
  if (!(r = calloc(1, sizeof(*r) + n))) {
    zkr__log(ZKR_LOG_ERROR, "node cache %s: out of memory: a %s event is lost", c->path,
             zkr_cache_event_name(type));
    return;
  }
  r->ev.type = type;
  r->ev.path = c->path; /* freed with the struct, after the last effect */
  r->ev.exists = c->exists;
  r->ev.len = c->exists ? c->len : -1;
  if (n)
    memcpy(r->bytes, c->data, n);
  r->ev.data = c->exists && c->data ? r->bytes : NULL;
  if (c->exists)
    r->ev.stat = c->stat;
  r->ev.gap = c->resyncing && type != ZKR_CACHE_RESYNC_BEGIN && type != ZKR_CACHE_RESYNC_END;
  r->ev.missed = missed;
  if (!zkr__fx_event_owned(fx, &c->o, call_listener, type, r))
    free(r);
}

/* ---- the watcher's news (o.mu held) ---- */

static void on_node(zkr__nodewatch_t *nw, const zkr__node_view_t *v, zkr__fx_t *fx) {
  zkr_node_cache_t *c = NC(nw->o);
  char *copy = NULL;
  int missed = 0;

  if (v->kind == ZKR__NODE_CHANGED && c->exists)
    missed = (int)((uint32_t)v->stat->version - (uint32_t)c->stat.version) - 1;

  if (v->stat && v->len >= 0) {
    if (!(copy = malloc((size_t)v->len + 1))) {
      zkr__log(ZKR_LOG_ERROR, "node cache %s: out of memory: a change is not kept",
               c->path);
      return;
    }
    if (v->len)
      memcpy(copy, v->data, (size_t)v->len);
    copy[v->len] = '\0';
  }
  free(c->data);
  c->data = copy;
  c->exists = v->stat != NULL;
  c->len = c->exists ? v->len : -1;
  if (c->exists)
    c->stat = *v->stat;
  else
    memset(&c->stat, 0, sizeof(c->stat));
  pthread_cond_broadcast(&c->cv);
  if (!c->initialized)
    return; /* INITIALIZED, once the read is settled */
  switch (v->kind) {
  case ZKR__NODE_CREATED: tell(c, ZKR_CACHE_CREATED, 0, fx); break;
  case ZKR__NODE_CHANGED: tell(c, ZKR_CACHE_CHANGED, missed > 0 ? missed : 0, fx); break;
  case ZKR__NODE_DELETED: tell(c, ZKR_CACHE_DELETED, 0, fx); break;
  case ZKR__NODE_REPLACED: tell(c, ZKR_CACHE_REPLACED, 0, fx); break;
  }
}

static void on_settled(zkr__nodewatch_t *nw, zkr__fx_t *fx) {
  zkr_node_cache_t *c = NC(nw->o);

  if (!c->initialized) {
    c->initialized = true;
    pthread_cond_broadcast(&c->cv);
    tell(c, ZKR_CACHE_INITIALIZED, 0, fx);
  } else if (c->resyncing) {
    c->resyncing = false;
    tell(c, ZKR_CACHE_RESYNC_END, 0, fx);
  }
}

/* ---- the object ---- */

static void on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_node_cache_t *c = NC(o);

  if (event == ZKR_SESSION_LOST && c->started && c->initialized && !c->resyncing) {
    c->resyncing = true;
    tell(c, ZKR_CACHE_RESYNC_BEGIN, 0, fx);
  } else if (event == ZKR_SESSION_CLOSED) {
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
  }
  zkr__nodewatch_on_session(&c->nw, event);
}

static void destroy(zkr__obj_t *o) {
  zkr_node_cache_t *c = NC(o);
  free(c->path);
  free(c->data);
  pthread_cond_destroy(&c->cv);
  zkr__obj_fini(o);
  free(c);
}

static const zkr__obj_ops_t ops = {
    .name = "node cache", .on_session = on_session, .resume = NULL, .destroy = destroy};

/* ---- public ---- */

int zkr_node_cache_new(zkr_session_t *s, const char *path, zkr_node_cache_t **out) {
  zkr_node_cache_t *c;
  pthread_condattr_t ca;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(c = zkr__obj_new(sizeof(*c), &ops, s)))
    return ZKR_ENOMEM;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    zkr__obj_fini(&c->o);
    free(c);
    return ZKR_ENOMEM;
  }
  c->len = -1;
  if (!(c->path = strdup(path))) {
    zkr__obj_unref(&c->o);
    return ZKR_ENOMEM;
  }
  zkr__nodewatch_init(&c->nw, &c->o, c->path, on_node);
  c->nw.settled = on_settled;
  if ((rc = zkr__obj_listen(&c->o)) != 0) {
    zkr__obj_unref(&c->o);
    return rc;
  }
  *out = c;
  return 0;
}

int zkr_node_cache_set_listener(zkr_node_cache_t *c, zkr_node_cache_listener_fn fn,
                                void *arg) {
  if (!c)
    return ZKR_EINVAL;
  zkr__obj_set_listener(&c->o, ZKR__FN(fn), arg);
  return 0;
}

int zkr_node_cache_start(zkr_node_cache_t *c) {
  int rc = 0;

  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  if (c->o.freed || c->closed || zkr_session_state(c->o.s) == ZKR_STATE_CLOSED)
    rc = ZKR_ECLOSED;
  else if (c->started)
    rc = ZKR_EBUSY;
  else {
    c->started = true;
    /* Not connected yet: the watcher reads on CONNECTED. */
    if (zkr__session_gen(c->o.s) != 0)
      zkr__nodewatch_start(&c->nw);
    else
      c->nw.on = true;
  }
  pthread_mutex_unlock(&c->o.mu);
  return rc;
}

/* o.mu held: the view as get returns it. */
static int view(zkr_node_cache_t *c, char **data, int *len, struct Stat *stat) {
  if (data)
    *data = NULL;
  if (len)
    *len = -1;
  if (stat)
    memset(stat, 0, sizeof(*stat));
  if (!c->initialized)
    return ZKR_ENOTREADY;
  if (!c->exists)
    return ZNONODE;
  if (data && c->data) {
    if (!(*data = malloc((size_t)c->len + 1)))
      return ZKR_ENOMEM;
    memcpy(*data, c->data, (size_t)c->len + 1); /* with its NUL */
  }
  if (len)
    *len = c->len;
  if (stat)
    *stat = c->stat;
  return 0;
}

int zkr_node_cache_get(zkr_node_cache_t *c, char **data, int *len, struct Stat *stat) {
  int rc;
  if (data)
    *data = NULL;
  if (len)
    *len = -1;
  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->o.mu);
  rc = view(c, data, len, stat);
  pthread_mutex_unlock(&c->o.mu);
  return rc;
}

/* o.mu held: does the view differ from known? */
static bool differs(const zkr_node_cache_t *c, const struct Stat *known) {
  if (!c->initialized)
    return false;
  if (!known)
    return true;
  if (!c->exists)
    return known->czxid != 0;
  return c->stat.czxid != known->czxid || c->stat.mzxid != known->mzxid;
}

int zkr_node_cache_wait(zkr_node_cache_t *c, const struct Stat *known, int timeout_ms,
                        char **data, int *len, struct Stat *stat) {
  int64_t deadline;
  int rc = 0;

  if (data)
    *data = NULL; /* whatever the outcome: never a stale pointer to free twice */
  if (len)
    *len = -1;
  if (!c || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK; /* the view is updated on the thread we would block */
  deadline = zkr__deadline(timeout_ms);
  pthread_mutex_lock(&c->o.mu);
  if (!c->started) {
    pthread_mutex_unlock(&c->o.mu);
    return ZKR_EBUSY;
  }
  zkr__obj_ref(&c->o); /* the struct outlives a free while we sleep in it */
  while (!differs(c, known)) {
    if (c->closed || c->o.freed) {
      rc = ZKR_ECLOSED;
      break;
    }
    if (timeout_ms == 0 || (deadline >= 0 && zkr__now_ms() >= deadline)) {
      rc = ZKR_ETIMEDOUT;
      break;
    }
    if (deadline < 0) {
      pthread_cond_wait(&c->cv, &c->o.mu);
    } else {
      struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
      pthread_cond_timedwait(&c->cv, &c->o.mu, &ts);
    }
  }
  if (rc == 0)
    rc = view(c, data, len, stat);
  pthread_mutex_unlock(&c->o.mu);
  zkr__obj_unref(&c->o);
  return rc;
}

void zkr_node_cache_free(zkr_node_cache_t *c) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!c || !zkr__obj_free_begin(&c->o))
    return;
  zkr__nodewatch_stop(&c->nw);
  c->closed = true;
  pthread_cond_broadcast(&c->cv);
  zkr__obj_free_end(&c->o, &fx);
}

const char *zkr_cache_event_name(int type) {
  switch (type) {
  case ZKR_CACHE_INITIALIZED: return "INITIALIZED";
  case ZKR_CACHE_CREATED: return "CREATED";
  case ZKR_CACHE_CHANGED: return "CHANGED";
  case ZKR_CACHE_DELETED: return "DELETED";
  case ZKR_CACHE_REPLACED: return "REPLACED";
  case ZKR_CACHE_RESYNC_BEGIN: return "RESYNC_BEGIN";
  case ZKR_CACHE_RESYNC_END: return "RESYNC_END";
  case ZKR_CACHE_ADDED: return "ADDED";
  case ZKR_CACHE_UPDATED: return "UPDATED";
  case ZKR_CACHE_REMOVED: return "REMOVED";
  case ZKR_CACHE_PARENT_ABSENT: return "PARENT_ABSENT";
  case ZKR_CACHE_CHILDREN_MISSED: return "CHILDREN_MISSED";
  case ZKR_CACHE_STOPPED: return "STOPPED";
  case ZKR_CACHE_SETTLED: return "SETTLED";
  default: return "UNKNOWN";
  }
}
