/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared child-watch guard (see guard.h). Guards live in one registry,
 * keyed by session and path. Lock order: a recipe object's mutex, then g->mu,
 * then the session's; the registry mutex is taken alone.
 */
#include "guard.h"

#include <stdlib.h>
#include <string.h>

enum { G_OFF, G_ARMING, G_ARMED };

struct zkr__guard_sub {
  zkr__guard_sub_t *next;
  void (*fn)(void *ctx);
  void *ctx;
};

struct zkr__guard {
  zkr__guard_t *next; /* in the registry (reg_mu) */
  zkr_session_t *s;   /* holds a reference */
  char *path;
  int refs;           /* subscribers' objects and the arm in flight (reg_mu) */
  pthread_mutex_t mu; /* guards the fields below */
  int state;          /* G_* */
  uint32_t tok;       /* of the current arm */
  int64_t czxid;      /* the incarnation the watch is set on (G_ARMED) */
  zkr__guard_sub_t *subs; /* changed in callback context only, under mu */
};

/* The request or the watch of one arm. */
typedef struct arm {
  zkr__guard_t *g; /* holds a reference */
  uint32_t tok;
} arm_t;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static zkr__guard_t *reg;

zkr__guard_t *zkr__guard_get(zkr_session_t *s, const char *path) {
  zkr__guard_t *g;

  pthread_mutex_lock(&reg_mu);
  for (g = reg; g; g = g->next) {
    if (g->s == s && strcmp(g->path, path) == 0) {
      g->refs++;
      pthread_mutex_unlock(&reg_mu);
      return g;
    }
  }
  if ((g = calloc(1, sizeof(*g))) && (g->path = strdup(path)) &&
      pthread_mutex_init(&g->mu, NULL) == 0) {
    g->s = s;
    g->refs = 1;
    zkr__session_ref(s);
    g->next = reg;
    reg = g;
  } else if (g) {
    free(g->path);
    free(g);
    g = NULL;
  }
  pthread_mutex_unlock(&reg_mu);
  return g;
}

static void ref(zkr__guard_t *g) {
  pthread_mutex_lock(&reg_mu);
  g->refs++;
  pthread_mutex_unlock(&reg_mu);
}

void zkr__guard_put(zkr__guard_t *g) {
  int last;

  if (!g)
    return;
  pthread_mutex_lock(&reg_mu);
  if ((last = --g->refs == 0)) {
    for (zkr__guard_t **pp = &reg; *pp; pp = &(*pp)->next) {
      if (*pp == g) {
        *pp = g->next;
        break;
      }
    }
  }
  pthread_mutex_unlock(&reg_mu);
  if (!last)
    return;
  while (g->subs) { /* none should be left; do not leak them */
    zkr__guard_sub_t *sub = g->subs;
    g->subs = sub->next;
    free(sub);
  }
  pthread_mutex_destroy(&g->mu);
  zkr__session_unref(g->s);
  free(g->path);
  free(g);
}

zkr__guard_sub_t *zkr__guard_subscribe(zkr__guard_t *g, void (*fn)(void *ctx), void *ctx) {
  zkr__guard_sub_t *sub = calloc(1, sizeof(*sub));
  if (!sub)
    return NULL;
  sub->fn = fn;
  sub->ctx = ctx;
  pthread_mutex_lock(&g->mu);
  sub->next = g->subs;
  g->subs = sub;
  pthread_mutex_unlock(&g->mu);
  return sub;
}

void zkr__guard_unsubscribe(zkr__guard_t *g, zkr__guard_sub_t *sub) {
  if (!sub)
    return;
  pthread_mutex_lock(&g->mu);
  for (zkr__guard_sub_t **pp = &g->subs; *pp; pp = &(*pp)->next) {
    if (*pp == sub) {
      *pp = sub->next;
      break;
    }
  }
  pthread_mutex_unlock(&g->mu);
  free(sub);
}

int zkr__guard_state(zkr__guard_t *g, int64_t czxid, int64_t *czxid_out) {
  int st;
  pthread_mutex_lock(&g->mu);
  st = g->state == G_OFF ? -1
       : g->state == G_ARMING ? 0
       : !czxid || czxid == g->czxid ? 1
                                      : 0;
  if (czxid_out)
    *czxid_out = g->state == G_ARMED ? g->czxid : 0;
  pthread_mutex_unlock(&g->mu);
  return st;
}

static arm_t *arm_new(zkr__guard_t *g, uint32_t tok) {
  arm_t *a = malloc(sizeof(*a));
  if (!a)
    return NULL;
  a->g = g;
  a->tok = tok;
  ref(g);
  return a;
}

static void arm_free(arm_t *a) {
  zkr__guard_put(a->g);
  free(a);
}

static void on_reply(void *ctx, int rc, const zkr__reply_t *r) {
  arm_t *a = ctx;
  zkr__guard_t *g = a->g;

  pthread_mutex_lock(&g->mu);
  if (a->tok == g->tok && g->state == G_ARMING) {
    if (rc == ZOK && r->stat) {
      g->state = G_ARMED;
      g->czxid = r->stat->czxid;
    } else {
      g->state = G_OFF; /* no such node, or no answer: nothing is guarded */
    }
  }
  pthread_mutex_unlock(&g->mu);
  arm_free(a);
}

static void on_watch(void *ctx, int rc, const zkr__reply_t *r) {
  arm_t *a = ctx;
  zkr__guard_t *g = a->g;
  bool was_armed = false;

  (void)r;
  pthread_mutex_lock(&g->mu);
  if (a->tok == g->tok && (rc == ZOK || g->state == G_ARMED)) {
    was_armed = g->state == G_ARMED || rc == ZOK;
    g->state = G_OFF;
    g->czxid = 0;
  }
  pthread_mutex_unlock(&g->mu);
  /* Callback context: subscribers change only in callback context, so the list
   * holds still while we walk it. */
  if (was_armed)
    for (zkr__guard_sub_t *sub = g->subs; sub; sub = sub->next)
      sub->fn(sub->ctx);
  arm_free(a);
}

void zkr__guard_arm(zkr__guard_t *g) {
  arm_t *rq = NULL, *w = NULL;
  zkr__call_t c;
  uint32_t tok;
  int rc;

  pthread_mutex_lock(&g->mu);
  if (g->state != G_OFF) {
    pthread_mutex_unlock(&g->mu);
    return;
  }
  g->state = G_ARMING;
  tok = ++g->tok;
  pthread_mutex_unlock(&g->mu);
  if (!(rq = arm_new(g, tok)) || !(w = arm_new(g, tok)))
    goto fail;
  if ((rc = zkr__call_begin(g->s, 0, ZKR__K_CHILDREN, on_reply, rq, &c)) != 0)
    goto fail;
  if (zkr__call_watch(&c, on_watch, w) != 0) {
    zkr__call_end(&c, ZKR_ENOMEM);
    goto fail;
  }
  if (zkr__call_end(&c, zoo_awget_children2(c.zh, g->path, zkr__watcher, c.watch,
                                            zkr__cb_strings_stat, c.op)) != 0)
    goto fail;
  return;
fail:
  if (rq)
    arm_free(rq);
  if (w)
    arm_free(w);
  pthread_mutex_lock(&g->mu);
  if (g->tok == tok)
    g->state = G_OFF;
  pthread_mutex_unlock(&g->mu);
}
