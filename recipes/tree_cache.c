/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tree cache: a node and its descendants down to a maximum depth, built from
 * the other caches: a node cache on the root, and a children cache (with data)
 * on the root and on every node above the maximum depth.
 *
 * Znodes: none of its own; read-only, like its parts.
 *
 * The parts report to this file (their listener) in callback context, one at a
 * time; it forwards their events with the node's full path, adds a children
 * cache under each new node above the depth limit and frees the caches of a
 * subtree that went (reporting the nodes it held there as REMOVED, deepest
 * first, before the node itself, so that nothing stays in a consumer's view).
 * INITIALIZED is told once the root and every part made during the first load
 * have loaded; RESYNC_BEGIN when the first part begins a resync, RESYNC_END
 * when the last one (and every part made meanwhile) is done. A part that stops
 * (ZKR_ELIMIT: the session's watch budget) stops the tree: STOPPED.
 *
 * Locking: the dispatch mutex first (every public call enters it, as callbacks
 * run in it), then t->mu. The parts' functions are never called with t->mu
 * held: they may run callbacks (into this file) at once.
 */
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct part {
  zkr_tree_cache_t *t;
  char *path;
  int depth; /* of the node whose children it follows */
  zkr_children_cache_t *cc;
  bool loaded;   /* its INITIALIZED came */
  bool counted;  /* it is counted in t->loading */
  bool resyncing; /* between its RESYNC_BEGIN and RESYNC_END */
} part_t;

struct zkr_tree_cache {
  zkr_session_t *s; /* holds a reference */
  char *path;
  int max_depth;
  pthread_mutex_t mu;
  /* (mu) */
  zkr_tree_cache_listener_fn fn;
  void *arg;
  bool started, freed, stopped, initialized;
  bool root_loaded, root_resyncing;
  int loading;   /* parts (and the root) whose load is awaited: INITIALIZED / RESYNC_END */
  int resyncing; /* parts (and the root) resyncing */
  bool told_resync;
  zkr_node_cache_t *root;
  part_t **parts;
  int nparts, cap;
  int busy;          /* flushes running (a listener may free the tree in one) */
  bool free_pending; /* freed during a flush: the last flush frees the struct */
};

/* Events collected under t->mu and told after it is released. */
typedef struct out {
  zkr_cache_event_t ev;
  char *path; /* owned when synthesized */
} out_t;

typedef struct outbox {
  out_t *v;
  int n, cap;
  part_t **make; /* parts to create and start, after the events */
  int nmake, capmake;
  part_t **drop; /* parts to free */
  int ndrop, capdrop;
} outbox_t;

static void *grow(void *p, int *cap, int need, size_t size) {
  if (need <= *cap)
    return p;
  int c = *cap ? *cap * 2 : 8;
  while (c < need)
    c *= 2;
  void *q = realloc(p, (size_t)c * size);
  if (q)
    *cap = c;
  return q;
}

static out_t *emit(outbox_t *ob, const zkr_cache_event_t *ev, const char *own_path) {
  out_t *v = grow(ob->v, &ob->cap, ob->n + 1, sizeof(*ob->v));
  if (!v)
    return NULL;
  ob->v = v;
  v[ob->n].ev = *ev;
  v[ob->n].path = NULL;
  if (own_path) {
    if (!(v[ob->n].path = strdup(own_path)))
      return NULL;
    v[ob->n].ev.path = v[ob->n].path;
  }
  return &v[ob->n++];
}

static void tell_simple(zkr_tree_cache_t *t, outbox_t *ob, int type, int gap) {
  zkr_cache_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.path = t->path;
  ev.len = -1;
  ev.gap = gap;
  ev.exists = zkr_node_cache_get(t->root, NULL, NULL, NULL) == 0; /* no callback runs */
  emit(ob, &ev, NULL);
}

/* t->mu held: a part for path (its node at depth), made after the events. */
static void plan_part(zkr_tree_cache_t *t, outbox_t *ob, const char *path, int depth) {
  part_t *p = calloc(1, sizeof(*p)), **m;
  if (!p || !(p->path = strdup(path)) ||
      !(m = grow(ob->make, &ob->capmake, ob->nmake + 1, sizeof(*ob->make)))) {
    if (p)
      free(p->path);
    free(p);
    zkr__log(ZKR_LOG_ERROR, "tree cache %s: out of memory: %s is not followed", t->path, path);
    return;
  }
  ob->make = m;
  p->t = t;
  p->depth = depth;
  /* Awaited by INITIALIZED during the first load, by RESYNC_END during a resync. */
  if (!t->initialized || t->resyncing > 0) {
    p->counted = true;
    t->loading++;
  }
  ob->make[ob->nmake++] = p;
}

static int by_depth_desc(const void *a, const void *b) {
  const part_t *x = *(part_t *const *)a, *y = *(part_t *const *)b;
  return y->depth - x->depth;
}

/* t->mu held: the node at path went: every part at or under it is dropped, and
 * the nodes they held are REMOVED, deepest first. */
static void drop_subtree(zkr_tree_cache_t *t, outbox_t *ob, const char *path, int gap) {
  size_t pl = strlen(path);
  part_t **gone = NULL;
  int ngone = 0, capgone = 0, k = 0;

  for (int i = 0; i < t->nparts; i++) {
    part_t *p = t->parts[i];
    if (!strncmp(p->path, path, pl) && (p->path[pl] == '\0' || p->path[pl] == '/')) {
      part_t **g = grow(gone, &capgone, ngone + 1, sizeof(*gone));
      if (!g)
        break;
      gone = g;
      gone[ngone++] = p;
    } else {
      t->parts[k++] = p;
    }
  }
  t->nparts = k; /* compacted: the parts that stay */
  if (ngone > 1)
    qsort(gone, (size_t)ngone, sizeof(*gone), by_depth_desc);
  for (int i = 0; i < ngone; i++) {
    part_t *p = gone[i], **d;
    zkr_cache_child_t *kids = NULL;
    int n = 0;
    if (zkr_children_cache_list(p->cc, &kids, &n) == 0) {
      for (int j = n - 1; j >= 0; j--) {
        zkr_cache_event_t ev;
        char *cp;
        size_t l = strlen(p->path) + strlen(kids[j].name) + 2;
        if (!(cp = malloc(l)))
          continue;
        snprintf(cp, l, "%s/%s", p->path, kids[j].name);
        memset(&ev, 0, sizeof(ev));
        ev.type = ZKR_CACHE_REMOVED;
        ev.len = -1;
        ev.gap = gap;
        emit(ob, &ev, cp);
        free(cp);
      }
      zkr_cache_children_free(kids, n);
    }
    if (p->counted && !p->loaded) {
      p->counted = false;
      t->loading--;
    }
    if (p->resyncing) {
      p->resyncing = false;
      t->resyncing--;
    }
    if ((d = grow(ob->drop, &ob->capdrop, ob->ndrop + 1, sizeof(*ob->drop)))) {
      ob->drop = d;
      ob->drop[ob->ndrop++] = p;
    }
  }
  free(gone);
}

/* t->mu held: INITIALIZED or RESYNC_END if nothing is awaited any more. */
static void maybe_done(zkr_tree_cache_t *t, outbox_t *ob) {
  if (t->loading > 0 || !t->root_loaded)
    return;
  if (!t->initialized) {
    t->initialized = true;
    tell_simple(t, ob, ZKR_CACHE_INITIALIZED, 0);
  } else if (t->told_resync && t->resyncing == 0) {
    t->told_resync = false;
    tell_simple(t, ob, ZKR_CACHE_RESYNC_END, 0);
  }
}

static void stop_tree(zkr_tree_cache_t *t, outbox_t *ob, int why) {
  zkr_cache_event_t ev;
  if (t->stopped)
    return;
  t->stopped = true;
  memset(&ev, 0, sizeof(ev));
  ev.type = ZKR_CACHE_STOPPED;
  ev.path = t->path;
  ev.len = -1;
  ev.error = why;
  emit(ob, &ev, NULL);
}

static void on_part(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg);

static void destroy(zkr_tree_cache_t *t) {
  zkr__session_unref(t->s);
  pthread_mutex_destroy(&t->mu);
  free(t->path);
  free(t);
}

/* t->mu not held: free the dropped parts, tell the events, make the new parts. */
static void flush(zkr_tree_cache_t *t, outbox_t *ob) {
  zkr_tree_cache_listener_fn fn;
  void *arg;
  bool last;

  pthread_mutex_lock(&t->mu);
  t->busy++;
  pthread_mutex_unlock(&t->mu);
  for (int i = 0; i < ob->ndrop; i++) {
    zkr_children_cache_free(ob->drop[i]->cc);
    free(ob->drop[i]->path);
    free(ob->drop[i]);
  }
  for (int i = 0; i < ob->n; i++) {
    pthread_mutex_lock(&t->mu); /* looked up each time: the listener may free the tree */
    fn = t->freed ? NULL : t->fn;
    arg = t->arg;
    pthread_mutex_unlock(&t->mu);
    if (fn)
      fn(t, &ob->v[i].ev, arg);
    free(ob->v[i].path);
  }
  for (int i = 0; i < ob->nmake; i++) {
    part_t *p = ob->make[i], **m;
    int rc = zkr_children_cache_new(t->s, p->path, ZKR_CHILDREN_DATA, &p->cc);
    if (rc == 0)
      rc = zkr_children_cache_set_listener(p->cc, on_part, p);
    pthread_mutex_lock(&t->mu);
    if (rc == 0 && !t->freed &&
        (m = grow(t->parts, &t->cap, t->nparts + 1, sizeof(*t->parts)))) {
      t->parts = m;
      t->parts[t->nparts++] = p;
      pthread_mutex_unlock(&t->mu);
      if ((rc = zkr_children_cache_start(p->cc)) != 0)
        zkr__log(ZKR_LOG_ERROR, "tree cache %s: %s not followed: %s", t->path, p->path,
                 zkr_strerror(rc));
      continue;
    }
    if (p->counted) {
      p->counted = false;
      t->loading--;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc != 0)
      zkr__log(ZKR_LOG_ERROR, "tree cache %s: %s not followed: %s", t->path, p->path,
               zkr_strerror(rc));
    zkr_children_cache_free(p->cc);
    free(p->path);
    free(p);
  }
  free(ob->v);
  free(ob->make);
  free(ob->drop);
  pthread_mutex_lock(&t->mu);
  last = --t->busy == 0 && t->free_pending;
  pthread_mutex_unlock(&t->mu);
  if (last)
    destroy(t);
}

/* A resync of the root or of a part begins or ends (t->mu held). */
static void resync_edge(zkr_tree_cache_t *t, outbox_t *ob, bool *flag, bool begin) {
  if (begin && !*flag) {
    *flag = true;
    if (t->resyncing++ == 0 && !t->told_resync) {
      t->told_resync = true;
      tell_simple(t, ob, ZKR_CACHE_RESYNC_BEGIN, 0);
    }
  } else if (!begin && *flag) {
    *flag = false;
    t->resyncing--;
  }
}

static void on_part(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg) {
  part_t *p = arg;
  zkr_tree_cache_t *t = p->t;
  outbox_t ob;
  int gap;

  (void)cc;
  memset(&ob, 0, sizeof(ob));
  pthread_mutex_lock(&t->mu);
  if (t->freed || t->stopped) {
    pthread_mutex_unlock(&t->mu);
    return;
  }
  gap = ev->gap || t->told_resync;
  switch (ev->type) {
  case ZKR_CACHE_ADDED: {
    out_t *o = emit(&ob, ev, NULL);
    if (o)
      o->ev.gap = gap;
    if (p->depth + 1 < t->max_depth)
      plan_part(t, &ob, ev->path, p->depth + 1);
    break;
  }
  case ZKR_CACHE_UPDATED:
  case ZKR_CACHE_REPLACED:
  case ZKR_CACHE_CHILDREN_MISSED: {
    out_t *o = emit(&ob, ev, NULL);
    if (o)
      o->ev.gap = gap;
    break;
  }
  case ZKR_CACHE_REMOVED: {
    out_t *o;
    drop_subtree(t, &ob, ev->path, gap);
    if ((o = emit(&ob, ev, NULL)))
      o->ev.gap = gap;
    break;
  }
  case ZKR_CACHE_INITIALIZED:
    if (!p->loaded) {
      p->loaded = true;
      if (p->counted) {
        p->counted = false;
        t->loading--;
      }
    }
    break;
  case ZKR_CACHE_RESYNC_BEGIN: resync_edge(t, &ob, &p->resyncing, true); break;
  case ZKR_CACHE_RESYNC_END: resync_edge(t, &ob, &p->resyncing, false); break;
  case ZKR_CACHE_STOPPED: stop_tree(t, &ob, ev->error); break;
  default: break; /* PARENT_ABSENT: the node's own REMOVED (or DELETED) tells */
  }
  maybe_done(t, &ob);
  pthread_mutex_unlock(&t->mu);
  flush(t, &ob);
}

static void on_root(zkr_node_cache_t *nc, const zkr_cache_event_t *ev, void *arg) {
  zkr_tree_cache_t *t = arg;
  outbox_t ob;

  (void)nc;
  memset(&ob, 0, sizeof(ob));
  pthread_mutex_lock(&t->mu);
  if (t->freed || t->stopped) {
    pthread_mutex_unlock(&t->mu);
    return;
  }
  switch (ev->type) {
  case ZKR_CACHE_INITIALIZED: t->root_loaded = true; break;
  case ZKR_CACHE_RESYNC_BEGIN: resync_edge(t, &ob, &t->root_resyncing, true); break;
  case ZKR_CACHE_RESYNC_END: resync_edge(t, &ob, &t->root_resyncing, false); break;
  default: {
    out_t *o = emit(&ob, ev, NULL);
    if (o)
      o->ev.gap = ev->gap || t->told_resync;
  }
  }
  maybe_done(t, &ob);
  pthread_mutex_unlock(&t->mu);
  flush(t, &ob);
}

/* ---- public ---- */

int zkr_tree_cache_new(zkr_session_t *s, const char *path, int max_depth,
                       zkr_tree_cache_t **out) {
  zkr_tree_cache_t *t;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || max_depth < 0 || max_depth > 64)
    return ZKR_EINVAL;
  if (!(t = calloc(1, sizeof(*t))) || !(t->path = strdup(path))) {
    free(t);
    return ZKR_ENOMEM;
  }
  t->s = s;
  t->max_depth = max_depth;
  pthread_mutex_init(&t->mu, NULL);
  if ((rc = zkr_node_cache_new(s, path, &t->root)) != 0 ||
      (rc = zkr_node_cache_set_listener(t->root, on_root, t)) != 0) {
    zkr_node_cache_free(t->root);
    pthread_mutex_destroy(&t->mu);
    free(t->path);
    free(t);
    return rc;
  }
  zkr__session_ref(s);
  *out = t;
  return 0;
}

int zkr_tree_cache_set_listener(zkr_tree_cache_t *t, zkr_tree_cache_listener_fn fn,
                                void *arg) {
  if (!t)
    return ZKR_EINVAL;
  pthread_mutex_lock(&t->mu);
  t->fn = fn;
  t->arg = arg;
  pthread_mutex_unlock(&t->mu);
  return 0;
}

int zkr_tree_cache_start(zkr_tree_cache_t *t) {
  outbox_t ob;
  int rc;

  if (!t)
    return ZKR_EINVAL;
  memset(&ob, 0, sizeof(ob));
  zkr__dispatch_enter(t->s); /* the order callbacks take: dispatch, then t->mu */
  pthread_mutex_lock(&t->mu);
  if (t->started || t->freed) {
    pthread_mutex_unlock(&t->mu);
    zkr__dispatch_leave(t->s);
    return t->freed ? ZKR_ECLOSED : ZKR_EBUSY;
  }
  t->started = true;
  if (t->max_depth > 0)
    plan_part(t, &ob, t->path, 0);
  pthread_mutex_unlock(&t->mu);
  rc = zkr_node_cache_start(t->root);
  flush(t, &ob);
  zkr__dispatch_leave(t->s);
  return rc;
}

void zkr_tree_cache_free(zkr_tree_cache_t *t) {
  part_t **parts;
  int n;

  if (!t)
    return;
  zkr__dispatch_enter(t->s);
  pthread_mutex_lock(&t->mu);
  t->freed = true;
  parts = t->parts;
  n = t->nparts;
  t->parts = NULL;
  t->nparts = 0;
  pthread_mutex_unlock(&t->mu);
  zkr_node_cache_free(t->root);
  for (int i = 0; i < n; i++) {
    zkr_children_cache_free(parts[i]->cc);
    free(parts[i]->path);
    free(parts[i]);
  }
  free(parts);
  zkr__dispatch_leave(t->s);
  pthread_mutex_lock(&t->mu);
  if (t->busy > 0) {
    t->free_pending = true; /* freed from its own listener: the flush ends it */
    pthread_mutex_unlock(&t->mu);
    return;
  }
  pthread_mutex_unlock(&t->mu);
  destroy(t);
}
