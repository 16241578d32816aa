/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Group view: the members of a group, in any library's format, built on a
 * children cache with data (recipes/children_cache.c) on the group path.
 *
 * Znodes: none of its own (read-only). A child's format is told by its name:
 * 32 lowercase hex digits + "__party__" is a kazoo Party member (id = its
 * data), 32 hex digits + "-" + id a kazoo ShallowParty member, anything else a
 * Curator GroupMember (id = the name, data = its payload).
 *
 * The cache's events are passed on with the member parsed from the child's
 * name, data and stat (epoch = czxid, owner = ephemeralOwner); they run in the
 * cache's callback context, one at a time. The cache's own guarantees carry
 * over: REPLACED when a member's node was deleted and created again (a new
 * epoch), the RESYNC bracket after an expiry, CHILDREN_MISSED for members that
 * came and went between two listings.
 */
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/cache.h"
#include "zkrecipes/group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A kazoo Party member's id lives in its data, which a REMOVED event no
 * longer has: the ids of those members are kept by node name. */
typedef struct kid_id {
  char *node, *id;
} kid_id_t;

/* The settle timer's state, shared with the timer (which may run after the
 * group is freed: then g is NULL). */
typedef struct settle {
  pthread_mutex_t mu;
  int refs;      /* (mu) the group's and the armed timer's */
  zkr_group_t *g; /* (mu) NULL once the group is freed */
  bool armed;    /* (mu) */
  int64_t last;  /* (mu) the last change, ms */
} settle_t;

struct zkr_group {
  zkr_session_t *s; /* holds a reference */
  zkr_children_cache_t *cc;
  int settle_ms;
  settle_t *st;
  size_t plen;
  pthread_mutex_t mu;
  /* (mu) */
  zkr_group_listener_fn fn;
  void *arg;
  kid_id_t *ids; /* sorted by node */
  int nids, capids;
  int ready; /* INITIALIZED came */
  pthread_cond_t cv;
};

static int is_hex32(const char *s) {
  for (int i = 0; i < 32; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* The format of a member node's name, and where its id is (*id_at: an offset
 * into the name, or -1: the id is the node's data). */
static int parse_name(const char *name, int *id_at) {
  size_t n = strlen(name);
  if (n == 41 && is_hex32(name) && !strcmp(name + 32, "__party__")) {
    *id_at = -1;
    return ZKR_GROUP_KAZOO;
  }
  if (n > 33 && is_hex32(name) && name[32] == '-') {
    *id_at = 33;
    return ZKR_GROUP_KAZOO_SHALLOW;
  }
  *id_at = 0;
  return ZKR_GROUP_CURATOR;
}

/* Fill m from a child (its name, data, stat); the strings are malloc'd when
 * copy, else borrowed (and the id of a kazoo member is put in idbuf). */
static int member_of(zkr_group_member_t *m, const char *name, const char *data, int len,
                     const struct Stat *st, int copy, char *idbuf, size_t idcap) {
  int id_at, f = parse_name(name, &id_at);
  const char *id = name + (id_at > 0 ? id_at : 0);
  memset(m, 0, sizeof(*m));
  m->format = f;
  m->len = data ? len : -1;
  m->epoch = st ? st->czxid : 0;
  m->owner = st ? st->ephemeralOwner : 0;
  if (id_at < 0) {
    /* kazoo Party: the identifier is the data (UTF-8, no NUL expected) */
    size_t n = data && len > 0 ? (size_t)len : 0;
    if (copy) {
      if (!(m->id = malloc(n + 1)))
        return ZKR_ENOMEM;
      memcpy(m->id, data ? data : "", n);
      m->id[n] = '\0';
    } else {
      if (n >= idcap)
        n = idcap - 1;
      memcpy(idbuf, data ? data : "", n);
      idbuf[n] = '\0';
      m->id = idbuf;
    }
  } else if (copy) {
    if (!(m->id = strdup(id)))
      return ZKR_ENOMEM;
  } else {
    m->id = (char *)id;
  }
  if (copy) {
    if (!(m->node = strdup(name)) ||
        (data && !(m->data = malloc((size_t)(len > 0 ? len : 0) + 1))))
      return ZKR_ENOMEM;
    if (m->data) {
      memcpy(m->data, data, (size_t)(len > 0 ? len : 0));
      m->data[len > 0 ? len : 0] = '\0';
    }
  } else {
    m->node = (char *)name;
    m->data = (char *)data;
  }
  return 0;
}

/* (mu) The slot of node in g->ids, or where it would go (*found 0). */
static int id_slot(const zkr_group_t *g, const char *node, int *found) {
  int lo = 0, hi = g->nids;
  while (lo < hi) {
    int mid = (lo + hi) / 2, d = strcmp(g->ids[mid].node, node);
    if (d == 0) {
      *found = 1;
      return mid;
    }
    if (d < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

/* (mu) Remember (id non-NULL) or forget the id of a kazoo member's node. */
static void id_keep(zkr_group_t *g, const char *node, const char *id) {
  int found, i = id_slot(g, node, &found);
  if (found) {
    free(g->ids[i].node);
    free(g->ids[i].id);
    memmove(&g->ids[i], &g->ids[i + 1], (size_t)(g->nids - i - 1) * sizeof(*g->ids));
    g->nids--;
  }
  if (!id)
    return;
  if (g->nids == g->capids) {
    int cap = g->capids ? 2 * g->capids : 16;
    kid_id_t *a = realloc(g->ids, (size_t)cap * sizeof(*a));
    if (!a)
      return; /* its REMOVED will carry no id */
    g->ids = a;
    g->capids = cap;
  }
  kid_id_t k = {strdup(node), strdup(id)};
  if (!k.node || !k.id) {
    free(k.node);
    free(k.id);
    return;
  }
  memmove(&g->ids[i + 1], &g->ids[i], (size_t)(g->nids - i) * sizeof(*g->ids));
  g->ids[i] = k;
  g->nids++;
}

static void settle_put(settle_t *st) {
  bool last;
  pthread_mutex_lock(&st->mu);
  last = --st->refs == 0;
  pthread_mutex_unlock(&st->mu);
  if (last) {
    pthread_mutex_destroy(&st->mu);
    free(st);
  }
}

static void on_settle_timer(void *ctx, int fired);

/* (st->mu) Arm the timer for the end of the quiet spell. */
static void settle_arm(settle_t *st, zkr_session_t *s, int64_t due) {
  st->refs++;
  st->armed = true;
  if (zkr__timer_at(s, due, on_settle_timer, st, NULL) != 0) {
    st->refs--;
    st->armed = false;
    zkr__log(ZKR_LOG_WARN, "group: no timer for the settle period");
  }
}

/* Callback context (as the cache's events: one at a time). */
static void on_settle_timer(void *ctx, int fired) {
  settle_t *st = ctx;
  zkr_group_listener_fn fn = NULL;
  zkr_group_t *g;
  void *fa = NULL;

  pthread_mutex_lock(&st->mu);
  st->armed = false;
  g = st->g;
  if (g && fired) {
    int64_t due = st->last + g->settle_ms;
    if (zkr__now_ms() < due) {
      settle_arm(st, g->s, due); /* changed since: a new spell */
    } else {
      pthread_mutex_lock(&g->mu);
      fn = g->fn;
      fa = g->arg;
      pthread_mutex_unlock(&g->mu);
    }
  }
  pthread_mutex_unlock(&st->mu);
  if (fn)
    fn(g, ZKR_CACHE_SETTLED, NULL, fa);
  settle_put(st);
}

static void deliver(zkr_group_t *g, const zkr_cache_event_t *ev, zkr_group_listener_fn fn,
                    void *fa);

static void on_kids(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg) {
  zkr_group_t *g = arg;
  zkr_group_listener_fn fn;
  void *fa;
  (void)cc;

  pthread_mutex_lock(&g->mu);
  fn = g->fn;
  fa = g->arg;
  if (ev->type == ZKR_CACHE_INITIALIZED) {
    g->ready = 1;
    pthread_cond_broadcast(&g->cv);
  }
  pthread_mutex_unlock(&g->mu);
  if (fn) /* (kazoo ids are kept only for a listener) */
    deliver(g, ev, fn, fa);
  if (g->st && ev->type != ZKR_CACHE_RESYNC_BEGIN) {
    /* A change (or the first view), told to the listener by now: a quiet
     * spell starts, so SETTLED comes at least settle_ms after the listener
     * heard the last change. */
    pthread_mutex_lock(&g->st->mu);
    g->st->last = zkr__now_ms();
    if (!g->st->armed)
      settle_arm(g->st, g->s, g->st->last + g->settle_ms);
    pthread_mutex_unlock(&g->st->mu);
  }
}

static void deliver(zkr_group_t *g, const zkr_cache_event_t *ev, zkr_group_listener_fn fn,
                    void *fa) {
  if (strlen(ev->path) > g->plen && ev->path[g->plen] == '/' &&
      ev->type != ZKR_CACHE_INITIALIZED && ev->type != ZKR_CACHE_PARENT_ABSENT) {
    zkr_group_member_t m;
    char idbuf[1024];
    const char *name = ev->path + g->plen + 1;
    member_of(&m, name, ev->data, ev->len, ev->type == ZKR_CACHE_REMOVED ? NULL : &ev->stat,
              0, idbuf, sizeof(idbuf));
    if (m.format == ZKR_GROUP_KAZOO) {
      pthread_mutex_lock(&g->mu);
      if (ev->type == ZKR_CACHE_REMOVED) {
        int found, i = id_slot(g, name, &found);
        if (found)
          snprintf(idbuf, sizeof(idbuf), "%s", g->ids[i].id);
        id_keep(g, name, NULL);
      } else {
        id_keep(g, name, idbuf);
      }
      pthread_mutex_unlock(&g->mu);
    }
    fn(g, ev->type, &m, fa);
  } else {
    fn(g, ev->type, NULL, fa);
  }
}

int zkr_group_new(zkr_session_t *s, const char *path, zkr_group_t **out) {
  zkr_group_t *g;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0)
    return ZKR_EINVAL;
  if (!(g = calloc(1, sizeof(*g))))
    return ZKR_ENOMEM;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->plen = strlen(path);
  g->s = s;
  zkr__session_ref(s);
  if ((rc = zkr_children_cache_new(s, path, ZKR_CHILDREN_DATA, &g->cc)) != 0 ||
      (rc = zkr_children_cache_set_listener(g->cc, on_kids, g)) != 0) {
    zkr_children_cache_free(g->cc);
    zkr__session_unref(s);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return rc;
  }
  *out = g;
  return 0;
}

int zkr_group_set_listener(zkr_group_t *g, zkr_group_listener_fn fn, void *arg) {
  if (!g)
    return ZKR_EINVAL;
  pthread_mutex_lock(&g->mu);
  g->fn = fn;
  g->arg = arg;
  pthread_mutex_unlock(&g->mu);
  return 0;
}

int zkr_group_set_settle(zkr_group_t *g, int quiet_ms) {
  if (!g || quiet_ms < 0)
    return ZKR_EINVAL;
  if (g->st)
    return ZKR_EBUSY; /* set once, before the start */
  if (quiet_ms == 0)
    return 0;
  if (!(g->st = calloc(1, sizeof(*g->st))))
    return ZKR_ENOMEM;
  pthread_mutex_init(&g->st->mu, NULL);
  g->st->refs = 1;
  g->st->g = g;
  g->settle_ms = quiet_ms;
  return 0;
}

int zkr_group_start(zkr_group_t *g) {
  return g ? zkr_children_cache_start(g->cc) : ZKR_EINVAL;
}

int zkr_group_wait_ready(zkr_group_t *g, int timeout_ms) {
  int rc;

  if (!g || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  pthread_mutex_lock(&g->mu);
  rc = zkr__cond_wait_flag(&g->cv, &g->mu, &g->ready, timeout_ms);
  pthread_mutex_unlock(&g->mu);
  return rc;
}

static int cmp_id(const void *a, const void *b) {
  const zkr_group_member_t *x = a, *y = b;
  int d = strcmp(x->id, y->id);
  return d ? d : strcmp(x->node, y->node);
}

int zkr_group_list(zkr_group_t *g, zkr_group_member_t **out, int *count) {
  zkr_cache_child_t *kids = NULL;
  zkr_group_member_t *a = NULL;
  int n = 0, rc;

  if (out)
    *out = NULL;
  if (count)
    *count = 0;
  if (!g || !out || !count)
    return ZKR_EINVAL;
  if ((rc = zkr_children_cache_list(g->cc, &kids, &n)) != 0)
    return rc;
  if (n > 0 && !(a = calloc((size_t)n, sizeof(*a)))) {
    zkr_cache_children_free(kids, n);
    return ZKR_ENOMEM;
  }
  for (int i = 0; i < n && rc == 0; i++)
    rc = member_of(&a[i], kids[i].name, kids[i].data, kids[i].len, &kids[i].stat, 1, NULL, 0);
  zkr_cache_children_free(kids, n);
  if (rc != 0) {
    zkr_group_members_free(a, n);
    return rc;
  }
  if (n > 1)
    qsort(a, (size_t)n, sizeof(*a), cmp_id);
  *out = a;
  *count = n;
  return 0;
}

void zkr_group_members_free(zkr_group_member_t *members, int count) {
  for (int i = 0; members && i < count; i++) {
    free(members[i].id);
    free(members[i].node);
    free(members[i].data);
  }
  free(members);
}

void zkr_group_free(zkr_group_t *g) {
  if (!g)
    return;
  zkr_children_cache_free(g->cc); /* no event after this */
  if (g->st) {
    /* A timer still armed finds no group (and no event runs after this). */
    zkr__dispatch_enter(g->s);
    pthread_mutex_lock(&g->st->mu);
    g->st->g = NULL;
    pthread_mutex_unlock(&g->st->mu);
    zkr__dispatch_leave(g->s);
    settle_put(g->st);
  }
  zkr__session_unref(g->s);
  for (int i = 0; i < g->nids; i++) {
    free(g->ids[i].node);
    free(g->ids[i].id);
  }
  free(g->ids);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  free(g);
}
