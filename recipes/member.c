/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Group member: one EPHEMERAL node under the group path, kept there while the
 * member wants to be in the group. Formats and guarantees:
 * include/zkrecipes/group.h.
 *
 * Join: create(node, data, EPHEMERAL) (zoo_acreate2, for the czxid). A missing
 * parent: CONTAINER parents, then create again. NODEEXISTS: getData with a
 * watch, and its ephemeralOwner decides:
 *   our session now     -> ours (a create whose reply was lost, or a plain
 *                          reconnect): kept; setData only if the bytes differ
 *   a session we had    -> delete(version), then create (the old session's
 *                          node outlives its expiry for a moment)
 *   anyone else, or 0   -> ZKR_EDUPLICATE, nothing touched
 * Joined: a watch on our node (the create is followed by an exists with a
 * watch; a check's getData sets one): deleted -> LEFT, join again; changed ->
 * read again (and our data written back if it differs). A new session (after
 * an expiry) joins again; the old node is then a session we had.
 *
 * Every step carries the token of the join it belongs to; a reply with an
 * older token is stale. A create that succeeds after the member stopped
 * wanting it (left, freed, timed out) is deleted at once (the janitor).
 *
 * Locking: m->o.mu guards everything marked (mu); callbacks and events run
 * after it is released (the object base's effects).
 */
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/group.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PARENT_ROUNDS 8
#define KIND_JOIN         1

enum { ST_IDLE, ST_JOINING, ST_JOINED, ST_DUPLICATE };

struct zkr_member {
  zkr__obj_t o;
  char *path;
  char *id;
  char *node; /* path/<name> */
  int profile;
  int flags; /* ZKR__MEMBER_* */

  /* (mu) */
  char *data; /* NULL: none */
  int len;
  int state;
  bool want;      /* join was called and not undone (leave, free, timeout) */
  uint32_t tok;   /* the steps of the current join */
  int64_t epoch;  /* our node's czxid while joined */
  uint64_t gen;   /* the session generation our node was made on */
  int parent_rounds;
  zkr__tmr_t *deadline_timer;
  int64_t deadline; /* ms, -1: none */
};

#define MEM(o) ((zkr_member_t *)(o))

static void join_step(zkr_member_t *m, zkr__fx_t *fx);
static void check_step(zkr_member_t *m, zkr__fx_t *fx);

/* ---- effects ---- */

static void run_join_cb(zkr__obj_t *o, const zkr__effect_t *e) {
  if (e->cb)
    ((zkr_member_join_cb)e->cb)(MEM(o), e->rc, e->rc == 0 ? e->value : 0, e->arg);
}

static void call_listener(zkr__obj_t *o, zkr__fnptr fn, void *arg, const zkr__effect_t *e) {
  ((zkr_member_listener_fn)fn)(MEM(o), e->rc, e->value, arg);
}

static void tell(zkr_member_t *m, int ev, int64_t epoch, zkr__fx_t *fx) {
  zkr__effect_t *e = zkr__fx_event(fx, &m->o, call_listener, ev);
  if (e)
    e->value = epoch;
}

/* ---- states (o.mu held) ---- */

static void joined(zkr_member_t *m, const struct Stat *st, uint64_t gen, zkr__fx_t *fx) {
  bool again = m->state == ST_JOINED && m->epoch == st->czxid;
  m->state = ST_JOINED;
  m->epoch = st->czxid;
  m->gen = gen;
  m->parent_rounds = 0;
  zkr__obj_timer_stop(&m->o, &m->deadline_timer);
  zkr__obj_settle(&m->o, KIND_JOIN, 0, m->epoch, fx);
  if (!again)
    tell(m, ZKR_MEMBER_JOINED, m->epoch, fx);
}

/* Not a member any more (our node went, or its session). */
static void lost(zkr_member_t *m, zkr__fx_t *fx) {
  if (m->state == ST_JOINED) {
    m->state = ST_JOINING;
    tell(m, ZKR_MEMBER_LEFT, m->epoch, fx);
  }
}

/* Stop wanting in: the join's callback gets rc. */
static void give_up(zkr_member_t *m, int rc, zkr__fx_t *fx) {
  m->want = false;
  m->tok = zkr__obj_token(&m->o); /* what is still out is stale */
  zkr__obj_timer_stop(&m->o, &m->deadline_timer);
  zkr__obj_settle(&m->o, KIND_JOIN, rc, 0, fx);
}

static void duplicate(zkr_member_t *m, int64_t owner, zkr__fx_t *fx) {
  zkr__log(ZKR_LOG_WARN,
           "member %s: %s holds this id: not joining (ids must be unique)", m->node,
           owner ? "another session" : "a persistent node");
  (void)owner;
  bool was = m->state == ST_JOINED;
  m->state = ST_DUPLICATE;
  give_up(m, ZKR_EDUPLICATE, fx);
  if (was)
    tell(m, ZKR_MEMBER_DUPLICATE, m->epoch, fx);
  else
    tell(m, ZKR_MEMBER_DUPLICATE, 0, fx);
}

/* A step could not be made, or failed for reasons that are not ours. */
static void trouble(zkr_member_t *m, int rc, zkr__fx_t *fx) {
  switch (zkr__rc_class(rc)) {
  case ZKR__RC_CONN: zkr__obj_wait(&m->o, ZKR__WAIT_CONN, 0); break;
  case ZKR__RC_SESSION: zkr__obj_wait(&m->o, ZKR__WAIT_SESSION, 0); break;
  case ZKR__RC_CLOSED:
    if (zkr_session_state(m->o.s) != ZKR_STATE_CLOSED)
      zkr__obj_wait(&m->o, ZKR__WAIT_SESSION, 0); /* a handle replaced */
    else
      give_up(m, ZKR_ECLOSED, fx);
    break;
  default:
    zkr__log(ZKR_LOG_ERROR, "member %s: %s", m->node, zkr_strerror(rc));
    if (m->state == ST_JOINED) {
      /* A refusal while re-joining: say we are out, and stop. */
      lost(m, fx);
    }
    m->state = ST_IDLE;
    give_up(m, rc, fx);
  }
}

/* ---- steps ---- */

static void on_created(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_checked(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx);
static void on_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx);
static void on_old_deleted(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx);
static void on_parent(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                      zkr__fx_t *fx) {
  (void)o, (void)rq, (void)rc, (void)r, (void)fx; /* the create that follows decides */
}
static void on_set(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                   zkr__fx_t *fx) {
  (void)o, (void)rq, (void)r, (void)fx;
  if (rc != ZOK && rc != ZNONODE && zkr__rc_class(rc) == ZKR__RC_FINAL)
    zkr__log(ZKR_LOG_WARN, "member: its data could not be written: %s", zkr_strerror(rc));
}

static void join_step(zkr_member_t *m, zkr__fx_t *fx) {
  zkr__send_t x;
  int rc;

  if (!m->want || m->o.freed)
    return;
  if ((rc = zkr__send_begin(&x, &m->o, 0, ZKR__K_CREATE, on_created, m->tok, 0)) != 0 ||
      (rc = zkr__send_end(
           &x, zoo_acreate2(x.c.zh, m->node, m->data, m->len, zkr_session_acl(m->o.s),
                            (m->flags & ZKR__MEMBER_PERSISTENT) ? 0 : ZOO_EPHEMERAL,
                            zkr__cb_string_stat, x.c.op))) != 0)
    trouble(m, rc, fx);
}

/* Read our node with a watch: who owns it, and its data. */
static void check_step(zkr_member_t *m, zkr__fx_t *fx) {
  zkr__send_t x;
  int rc;

  if (!m->want || m->o.freed)
    return;
  if ((rc = zkr__send_begin(&x, &m->o, 0, ZKR__K_GET, on_checked, m->tok, 0)) != 0)
    goto fail;
  if ((rc = zkr__send_watch(&x, on_watch, m->tok, 0)) != 0) {
    zkr__send_end(&x, rc);
    goto fail;
  }
  if ((rc = zkr__send_end(&x, zoo_awget(x.c.zh, m->node, zkr__watcher, x.c.watch,
                                        zkr__cb_data, x.c.op))) == 0)
    return;
fail:
  trouble(m, rc, fx);
}

static void on_created(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);

  if (rq->tok != m->tok || !m->want || o->freed) {
    if (rc == ZOK) /* made after we stopped wanting it */
      zkr__janitor_delete(o->s, rq->gen, m->node, NULL, NULL);
    return;
  }
  if (rc == ZOK && r->stat) {
    joined(m, r->stat, rq->gen, fx);
    check_step(m, fx); /* the watch on our node (and our data, as the server has it) */
  } else if (rc == ZOK || rc == ZNODEEXISTS) {
    check_step(m, fx); /* ours (a retried create) or another session's */
  } else if (rc == ZNONODE) {
    if (++m->parent_rounds > MAX_PARENT_ROUNDS) {
      trouble(m, ZNONODE, fx);
    } else if ((rc = zkr__send_parents(o, 0, m->node, false, zkr_session_acl(o->s), on_parent,
                                       m->tok, NULL)) != 0) {
      trouble(m, rc, fx);
    } else {
      join_step(m, fx);
    }
  } else {
    trouble(m, rc, fx);
  }
}

static bool same_data(const zkr_member_t *m, const zkr__reply_t *r) {
  int have = r->data_len < 0 ? -1 : r->data_len, want = m->data ? m->len : -1;
  if (have <= 0 && want <= 0)
    return true; /* none and empty read alike (the server returns none for both) */
  return have == want && memcmp(r->data, m->data, (size_t)want) == 0;
}

/* Our node, read: write our data (at the version read) if it differs. */
static void write_if_differs(zkr_member_t *m, const zkr__reply_t *r) {
  zkr__send_t x;
  if (!same_data(m, r) && zkr__send_begin(&x, &m->o, 0, ZKR__K_SET, on_set, m->tok, 0) == 0)
    zkr__send_end(&x, zoo_aset(x.c.zh, m->node, m->data, m->len, r->stat->version,
                               zkr__cb_stat, x.c.op));
}

static void on_checked(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                       zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  int64_t owner;

  if (rq->tok != m->tok || !m->want || o->freed)
    return;
  if (rc == ZNONODE) {
    lost(m, fx); /* gone meanwhile: create it */
    join_step(m, fx);
    return;
  }
  if (rc != ZOK || !r->stat) {
    trouble(m, rc, fx);
    return;
  }
  owner = r->stat->ephemeralOwner;
  if ((m->flags & ZKR__MEMBER_PERSISTENT) && owner == 0) {
    /* A persistent node under our id is ours (a registration by id): kept,
     * updated in place. */
    write_if_differs(m, r);
    joined(m, r->stat, rq->gen, fx);
  } else if (owner != 0 && owner == zkr_session_id(o->s) &&
             !(m->flags & ZKR__MEMBER_PERSISTENT)) {
    write_if_differs(m, r);
    joined(m, r->stat, rq->gen, fx);
  } else if (owner != 0 && (zkr__session_was_ours(o->s, owner) ||
                            (owner == zkr_session_id(o->s)))) {
    /* Our old session's node, not removed yet (or, for a persistent node, an
     * ephemeral one of ours): ours to replace. */
    zkr__send_t x;
    int src;
    lost(m, fx);
    if ((src = zkr__send_begin(&x, o, 0, ZKR__K_DELETE, on_old_deleted, m->tok, 0)) != 0 ||
        (src = zkr__send_end(&x, zoo_adelete(x.c.zh, m->node, r->stat->version, zkr__cb_void,
                                             x.c.op))) != 0)
      trouble(m, src, fx);
  } else {
    duplicate(m, owner, fx);
  }
}

static void on_old_deleted(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                           zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  (void)r;
  if (rq->tok != m->tok || !m->want || o->freed)
    return;
  if (rc == ZOK || rc == ZNONODE)
    join_step(m, fx);
  else if (rc == ZBADVERSION)
    check_step(m, fx); /* changed meanwhile: look again */
  else
    trouble(m, rc, fx);
}

static void on_watch(zkr__obj_t *o, zkr__req_t *rq, int rc, const zkr__reply_t *r,
                     zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  if (rq->tok != m->tok || !m->want || o->freed || rc != ZOK)
    return; /* ZNOWATCHER: the read's answer decides; ZCLOSING: the end */
  if (r->type == ZOO_DELETED_EVENT) {
    lost(m, fx);
    join_step(m, fx);
  } else if (r->type == ZOO_CHANGED_EVENT) {
    check_step(m, fx); /* written by someone: ours again if it differs */
  }
}

/* ---- the object ---- */

static void on_resume(zkr__obj_t *o, zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  if (m->want && m->state != ST_JOINED)
    join_step(m, fx);
  else if (m->want)
    check_step(m, fx); /* a step was cut off while joined: watch again */
}

static void on_session(zkr__obj_t *o, int event, zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  switch (event) {
  case ZKR_SESSION_LOST: /* our node goes with the session (or soon after) */
    if (m->want)
      lost(m, fx);
    break;
  case ZKR_SESSION_CONNECTED:
    if (m->want && m->o.wait == ZKR__WAIT_NONE)
      join_step(m, fx); /* else the base resumes it */
    break;
  case ZKR_SESSION_CLOSED:
    if (m->want) {
      lost(m, fx);
      give_up(m, ZKR_ECLOSED, fx);
    }
    break;
  }
}

static void destroy(zkr__obj_t *o) {
  zkr_member_t *m = MEM(o);
  free(m->path);
  free(m->id);
  free(m->node);
  free(m->data);
  zkr__obj_fini(o);
  free(m);
}

static const zkr__obj_ops_t ops = {
    .name = "member", .on_session = on_session, .resume = on_resume, .destroy = destroy};

/* ---- public ---- */

/* A node name: what zkr_path_check accepts as one segment, at most 255 bytes. */
static int id_check(const char *id) {
  char p[258];
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > 255 || strchr(id, '/'))
    return ZKR_EINVAL;
  p[0] = '/';
  memcpy(p + 1, id, n + 1);
  return zkr_path_check(p);
}

int zkr__member_new(zkr_session_t *s, const char *parent, const char *name, int flags,
                    zkr_member_t **out) {
  zkr_member_t *m;
  int rc;

  *out = NULL;
  if (!(m = zkr__obj_new(sizeof(*m), &ops, s)))
    return ZKR_ENOMEM;
  m->profile = ZKR_GROUP_CURATOR;
  m->flags = flags;
  m->len = -1;
  m->deadline = -1;
  if (!(m->path = strdup(parent)) || !(m->id = strdup(name)) ||
      !(m->node = zkr__path_join(parent, name))) {
    zkr__obj_unref(&m->o);
    return ZKR_ENOMEM;
  }
  if ((rc = zkr__obj_listen(&m->o)) != 0) {
    zkr__obj_unref(&m->o);
    return rc;
  }
  *out = m;
  return 0;
}

int zkr_member_new(zkr_session_t *s, const char *path, const char *id, int profile,
                   zkr_member_t **out) {
  char name[64];
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 || id_check(id) != 0 ||
      (profile != ZKR_GROUP_CURATOR && profile != ZKR_GROUP_KAZOO))
    return ZKR_EINVAL;
  if (profile == ZKR_GROUP_KAZOO) {
    /* kazoo Party: a random hex32 name per member object; the id is the data. */
    char g[37];
    int k = 0;
    if (zkr__guid(g) != 0)
      return ZKR_ESYSTEM;
    for (int i = 0; g[i]; i++)
      if (g[i] != '-')
        name[k++] = g[i];
    snprintf(name + k, sizeof(name) - (size_t)k, "__party__");
  }
  if ((rc = zkr__member_new(s, path, profile == ZKR_GROUP_KAZOO ? name : id, 0, out)) != 0)
    return rc;
  (*out)->profile = profile;
  if (profile == ZKR_GROUP_KAZOO && (rc = zkr_member_set_data(*out, id, (int)strlen(id))) != 0) {
    zkr_member_free(*out);
    *out = NULL;
    return rc;
  }
  free((*out)->id);
  if (!((*out)->id = strdup(id))) {
    zkr_member_free(*out);
    *out = NULL;
    return ZKR_ENOMEM;
  }
  return 0;
}

int zkr_member_set_data(zkr_member_t *m, const char *data, int len) {
  zkr__fx_t fx = ZKR__FX_INIT;
  char *copy = NULL;

  if (!m || len < -1 || (len > 0 && !data) || len > 1024 * 1024)
    return ZKR_EINVAL;
  if (len >= 0 && !(copy = malloc((size_t)len + 1)))
    return ZKR_ENOMEM;
  if (len > 0)
    memcpy(copy, data, (size_t)len);
  pthread_mutex_lock(&m->o.mu);
  free(m->data);
  m->data = copy;
  m->len = copy ? len : -1;
  if (m->state == ST_JOINED && !m->o.freed)
    check_step(m, &fx); /* compares, and writes if it differs */
  zkr__obj_unlock_api(&m->o, &fx);
  return 0;
}

int zkr_member_set_listener(zkr_member_t *m, zkr_member_listener_fn fn, void *arg) {
  if (!m)
    return ZKR_EINVAL;
  zkr__obj_set_listener(&m->o, ZKR__FN(fn), arg);
  return 0;
}

static void on_deadline(zkr__obj_t *o, int fired, zkr__fx_t *fx) {
  zkr_member_t *m = MEM(o);
  if (!fired || !m->want || m->state == ST_JOINED || m->deadline < 0 ||
      zkr__now_ms() < m->deadline)
    return;
  m->state = ST_IDLE;
  give_up(m, ZKR_ETIMEDOUT, fx); /* a create that lands later is deleted */
}

int zkr_member_join_async(zkr_member_t *m, int timeout_ms, zkr_member_join_cb cb, void *arg) {
  zkr__fx_t fx = ZKR__FX_INIT;
  int rc = 0;

  if (!m || !cb || timeout_ms < -1)
    return ZKR_EINVAL;
  pthread_mutex_lock(&m->o.mu);
  if (m->o.freed || zkr_session_state(m->o.s) == ZKR_STATE_CLOSED) {
    rc = ZKR_ECLOSED;
  } else if (m->want) {
    rc = ZKR_EBUSY;
  } else if (!zkr__obj_owe(&m->o, KIND_JOIN, run_join_cb, ZKR__FN(cb), arg)) {
    rc = ZKR_ENOMEM;
  } else {
    m->want = true;
    m->state = ST_JOINING;
    m->tok = zkr__obj_token(&m->o);
    m->parent_rounds = 0;
    m->deadline = timeout_ms >= 0 ? zkr__deadline(timeout_ms) : -1;
    if (m->deadline >= 0 &&
        zkr__obj_timer(&m->o, &m->deadline_timer, m->deadline * 1000, on_deadline) != 0)
      zkr__log(ZKR_LOG_WARN, "member %s: no deadline for the join", m->node);
    if (zkr__session_gen(m->o.s) != 0)
      join_step(m, &fx); /* else on CONNECTED */
  }
  zkr__obj_unlock_api(&m->o, &fx);
  return rc;
}

static void sync_join_cb(zkr_member_t *m, int rc, int64_t epoch, void *arg) {
  zkr__sync_t *y = arg;
  (void)m;
  y->value = epoch;
  zkr__sync_signal(y, rc);
}

int zkr_member_join(zkr_member_t *m, int timeout_ms, int64_t *epoch) {
  zkr__sync_t y;
  int rc;

  if (epoch)
    *epoch = 0;
  if ((rc = zkr__sync_init(&y)) != 0)
    return rc;
  rc = zkr__sync_wait(&y, zkr_member_join_async(m, timeout_ms, sync_join_cb, &y));
  if (rc == 0 && epoch)
    *epoch = y.value;
  return rc;
}

int zkr_member_is_member(zkr_member_t *m) {
  int in;
  if (!m)
    return 0;
  pthread_mutex_lock(&m->o.mu);
  in = m->want && m->state == ST_JOINED;
  pthread_mutex_unlock(&m->o.mu);
  return in;
}

const char *zkr_member_node(zkr_member_t *m) {
  return m ? m->node : NULL;
}

/* A leave's wait, shared with the janitor's callback (whoever is last frees). */
typedef struct leave_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, rc, refs;
} leave_wait_t;

static void leave_put(leave_wait_t *w) {
  int last;
  pthread_mutex_lock(&w->mu);
  last = --w->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if (last) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
  }
}

static void on_left(void *arg, int rc) {
  leave_wait_t *w = arg;
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  w->rc = rc;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  leave_put(w);
}

/* o.mu held: stop wanting in and delete our node if we have one; done (may
 * be NULL) gets the outcome. 0, or ZKR_ENOTHELD when there was nothing. */
static int stop(zkr_member_t *m, zkr__done_fn done, void *arg, zkr__fx_t *fx) {
  bool was_in = m->want && m->state == ST_JOINED;
  if (!m->want)
    return ZKR_ENOTHELD;
  lost(m, fx);
  m->state = ST_IDLE;
  give_up(m, ZKR_ECANCELED, fx);
  /* Only a node we know is ours is deleted (one of another session is never
   * touched); a create still in flight is deleted by its reply. */
  if (!was_in)
    return ZKR_ENOTHELD;
  if (zkr__janitor_delete(m->o.s, m->gen, m->node, done, arg) != 0)
    return ZKR_ENOMEM;
  return 0;
}

int zkr_member_leave(zkr_member_t *m, int timeout_ms) {
  zkr__fx_t fx = ZKR__FX_INIT;
  leave_wait_t *w;
  int rc;

  if (!m || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if (!(w = calloc(1, sizeof(*w))))
    return ZKR_ENOMEM;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->refs = 2;
  pthread_mutex_lock(&m->o.mu);
  rc = m->o.freed ? ZKR_ECLOSED : stop(m, on_left, w, &fx);
  zkr__obj_unlock_api(&m->o, &fx);
  if (rc != 0) {
    w->refs = 1;
    leave_put(w);
    return rc;
  }
  pthread_mutex_lock(&w->mu);
  zkr__cond_wait_flag(&w->cv, &w->mu, &w->done, timeout_ms);
  rc = w->done ? w->rc : ZKR_ETIMEDOUT;
  pthread_mutex_unlock(&w->mu);
  leave_put(w);
  return rc;
}

void zkr_member_free(zkr_member_t *m) {
  zkr__fx_t fx = ZKR__FX_INIT;

  if (!m || !zkr__obj_free_begin(&m->o))
    return;
  m->o.lfn = NULL;
  if (m->flags & ZKR__MEMBER_KEEP_ON_FREE) {
    m->want = false; /* the node stays */
    m->tok = zkr__obj_token(&m->o);
    zkr__obj_settle(&m->o, KIND_JOIN, ZKR_ECANCELED, 0, &fx);
  } else {
    stop(m, NULL, NULL, &fx);
  }
  zkr__obj_timer_stop(&m->o, &m->deadline_timer);
  zkr__obj_free_end(&m->o, &fx);
}

const char *zkr_group_profile_name(int profile) {
  switch (profile) {
  case ZKR_GROUP_CURATOR: return "curator";
  case ZKR_GROUP_KAZOO: return "kazoo";
  case ZKR_GROUP_KAZOO_SHALLOW: return "kazoo-shallow";
  default: return "unknown";
  }
}
