/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The janitor removes nodes a recipe no longer wants: released lock nodes,
 * nodes of timed-out or cancelled attempts, and nodes whose create reply was
 * lost (found by the GUID in their name, or, for a node named without one, by
 * its owner: deleted only if this session owns it). It retries across
 * connection loss, with backoff, for as long as the session that owns the node
 * lives; once that session is gone the ephemeral node is gone too, which
 * counts as done.
 *
 * A janitor task owns itself: it holds a session reference and frees itself
 * after calling its done callback (in callback context).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS   1000

typedef struct jan {
  zkr_session_t *s;
  uint64_t gen;
  char *path;   /* node to delete; NULL until found in GUID mode */
  char *parent; /* GUID mode: where to look */
  char guid[37];
  zkr__done_fn done;
  void *arg;
  int backoff_ms;
  int own;      /* delete only a node this session owns, once looked at */
  int version;  /* own: the version seen (-1 until then) */
  int started;  /* past the first request: results may be settled at once */
  int first_rc; /* the first request was refused with this */
} jan_t;

static void step(jan_t *j);

static void finish(jan_t *j, int rc) {
  if (j->done) {
    zkr__dispatch_enter(j->s);
    j->done(j->arg, rc);
    zkr__dispatch_leave(j->s);
  }
  if (rc != 0)
    zkr__log(ZKR_LOG_ERROR, "could not remove %s: %s", j->path ? j->path : j->guid,
             zkr_strerror(rc));
  zkr__session_unref(j->s);
  free(j->path);
  free(j->parent);
  free(j);
}

static void settle(jan_t *j, int rc);

static void on_retry_timer(void *ctx, int fired) {
  jan_t *j = ctx;
  if (!fired)
    finish(j, 0); /* session freed: its ephemerals are gone with it */
  else if (j->first_rc)
    settle(j, j->first_rc);
  else
    step(j);
}

static void retry_later(jan_t *j) {
  int64_t due;
  j->first_rc = 0;
  due = zkr__now_ms() + j->backoff_ms;
  j->backoff_ms = j->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : j->backoff_ms * 2;
  if (zkr__timer_at(j->s, due, on_retry_timer, j, NULL) != 0)
    finish(j, ZKR_ENOMEM);
}

/* What a reply or a refused call means for the node. */
static void settle(jan_t *j, int rc) {
  switch (rc) {
  case ZOK:
  case ZNONODE:
  case ZSESSIONEXPIRED: /* owning session gone: so is the ephemeral */
  case ZINVALIDSTATE:
  case ZCLOSING:
  case ZKR_ECLOSED: finish(j, 0); break;
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
  case ZKR_ENOMEM: retry_later(j); break;
  default: finish(j, rc);
  }
}

static void on_deleted(void *ctx, int rc, const zkr__reply_t *r) {
  (void)r;
  settle(ctx, rc);
}

static void on_listed(void *ctx, int rc, const zkr__reply_t *r) {
  jan_t *j = ctx;
  if (rc == ZOK) {
    for (int i = 0; r->strings && i < r->strings->count; i++) {
      if (zkr__name_has_guid(r->strings->data[i], j->guid)) {
        if (!(j->path = zkr__path_join(j->parent, r->strings->data[i]))) {
          retry_later(j);
          return;
        }
        step(j);
        return;
      }
    }
    finish(j, 0); /* no node carries the GUID: the create never happened */
    return;
  }
  settle(j, rc);
}

/* own: the node as the server has it now, after a sync. */
static void on_owner(void *ctx, int rc, const zkr__reply_t *r) {
  jan_t *j = ctx;
  if (rc == ZOK) {
    if (!r->stat || r->stat->ephemeralOwner != zkr_session_id(j->s)) {
      finish(j, 0); /* another session's (or persistent): not ours to remove */
      return;
    }
    j->own = 0;
    j->version = r->stat->version;
    step(j);
    return;
  }
  settle(j, rc); /* ZNONODE: the create never applied (or it went already) */
}

static void on_synced(void *ctx, int rc, const zkr__reply_t *r) {
  (void)ctx, (void)rc, (void)r; /* the listing behind it decides */
}

static void step(jan_t *j) {
  zkr__call_t c;
  int first = !j->started, rc;

  /* Once a request is on its way its reply may finish (and free) j at any
   * moment on another thread: j is not touched after a successful send. */
  j->started = 1;
  if (j->path && j->own) {
    /* A sync first, as below: the create may not be applied yet there. */
    if (zkr__call_begin(j->s, j->gen, ZKR__K_OTHER, on_synced, NULL, &c) == 0)
      zkr__call_end(&c, zoo_async(c.zh, j->path, zkr__cb_string, c.op));
    if ((rc = zkr__call_begin(j->s, j->gen, ZKR__K_EXISTS, on_owner, j, &c)) == 0)
      rc = zkr__call_end(&c, zoo_aexists(c.zh, j->path, 0, zkr__cb_stat, c.op));
  } else if (j->path) {
    if ((rc = zkr__call_begin(j->s, j->gen, ZKR__K_DELETE, on_deleted, j, &c)) == 0)
      rc = zkr__call_end(&c, zoo_adelete(c.zh, j->path, j->version, zkr__cb_void, c.op));
  } else {
    /* A sync first: the create whose reply was lost may not be applied yet on
     * the server we reached since, and a listing there would miss its node. */
    if (zkr__call_begin(j->s, j->gen, ZKR__K_OTHER, on_synced, NULL, &c) == 0)
      zkr__call_end(&c, zoo_async(c.zh, j->parent, zkr__cb_string, c.op));
    if ((rc = zkr__call_begin(j->s, j->gen, ZKR__K_CHILDREN, on_listed, j, &c)) == 0)
      rc =
          zkr__call_end(&c, zoo_aget_children(c.zh, j->parent, 0, zkr__cb_strings, c.op));
  }
  if (rc == 0)
    return;
  if (first) {
    /* Never call back from inside the call that started us: settle on the worker
     * instead. */
    j->first_rc = rc;
    if (zkr__timer_at(j->s, zkr__now_ms(), on_retry_timer, j, NULL) != 0)
      finish(j, ZKR_ENOMEM);
    return;
  }
  settle(j, rc);
}

static int start(zkr_session_t *s, uint64_t gen, const char *path, const char *parent,
                 const char *guid, int own, zkr__done_fn done, void *arg) {
  jan_t *j = calloc(1, sizeof(*j));
  if (!j)
    return ZKR_ENOMEM;
  if ((path && !(j->path = strdup(path))) || (parent && !(j->parent = strdup(parent)))) {
    free(j->path);
    free(j);
    return ZKR_ENOMEM;
  }
  if (guid)
    snprintf(j->guid, sizeof(j->guid), "%s", guid);
  j->s = s;
  j->gen = gen;
  j->own = own;
  j->version = -1;
  j->done = done;
  j->arg = arg;
  j->backoff_ms = BACKOFF_FIRST_MS;
  zkr__session_ref(s);
  step(j);
  return 0;
}

int zkr__janitor_delete(zkr_session_t *s, uint64_t gen, const char *path,
                        zkr__done_fn done, void *arg) {
  return start(s, gen, path, NULL, NULL, 0, done, arg);
}

int zkr__janitor_delete_own(zkr_session_t *s, uint64_t gen, const char *path,
                            zkr__done_fn done, void *arg) {
  return start(s, gen, path, NULL, NULL, 1, done, arg);
}

int zkr__janitor_delete_guid(zkr_session_t *s, uint64_t gen, const char *parent,
                             const char *guid) {
  return start(s, gen, NULL, parent, guid, 0, NULL, NULL);
}
