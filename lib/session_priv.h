/* SPDX-License-Identifier: Apache-2.0 */
/* lib/session_priv.h - the session's private structures, shared by session.c and
 * call.c only. Recipes use the functions in internal.h. */
#ifndef ZKR_SESSION_PRIV_H
#define ZKR_SESSION_PRIV_H

#include <stdatomic.h>

#include "internal.h"

#define ZKR__PAST_IDS 16

typedef struct zkr__handle zkr__handle_t;
typedef struct zkr__rec zkr__rec_t;

/* One outstanding completion or watch on a client handle. */
struct zkr__rec {
  zkr__rec_t *prev, *next; /* in h->recs; s->mu */
  zkr__handle_t *h;
  zkr__op_fn fn;
  void *ctx;
  zkr__rec_t *watch; /* op: its watch, until the reply tells whether it was set */
  unsigned char is_watch;
  uint32_t budget; /* watch: bytes it holds of the session's watch budget; s->mu */
  unsigned char kind; /* ZKR__K_* */
  int nresults;
  zoo_op_result_t *results; /* multi */
};

/* One ZooKeeper client handle, hence one ZooKeeper session attempt. Freed after
 * zookeeper_close() has returned and its leftover records were drained. */
struct zkr__handle {
  zhandle_t *zh;
  zkr_session_t *s; /* holds a reference */
  uint64_t gen;
  zkr__rec_t recs; /* list sentinel; s->mu */
  int nops;        /* requests (not watches) in recs; s->mu */
  int connected;   /* saw CONNECTED; s->mu */
  int auth_done;   /* auth answered, or none was needed; s->mu */
  int retired;     /* no longer s->cur: its session events are ignored; s->mu */
};

/* Log-linear histogram of microseconds: 8 buckets per power of two. */
#define ZKR__HIST_N 320

typedef struct zkr__stats {
  _Atomic uint64_t n[ZKR__ST_N]; /* ZKR__ST_* */
  _Atomic uint64_t hist[ZKR__HIST_N];
  _Atomic uint64_t wait_max;
  uint64_t requests, watches; /* s->mu (counted where the call records are) */
} zkr__stats_t;

typedef struct zkr__listener {
  unsigned id;
  zkr_session_listener_fn fn;
  void *arg;
} zkr__listener_t;

struct zkr_session {
  pthread_mutex_t mu;      /* guards the fields marked (mu) */
  pthread_cond_t state_cv; /* broadcast on every state change */
  _Atomic int refs;        /* user + handles + timers + recipe objects */

  /* Configuration, fixed once connecting starts. */
  int session_timeout_ms;
  char *auth_scheme;
  char *auth_cred;
  int acl_mode;

  /* (mu) */
  char *hosts;
  int state;          /* zkr_session_state_t */
  int freed;          /* zkr_session_free() was called */
  zkr__handle_t *cur; /* the live handle, or NULL */
  uint64_t last_gen;
  int64_t session_id;
  int64_t past_ids[ZKR__PAST_IDS]; /* the ZooKeeper sessions this one had, newest
                                      last (ring): ephemerals of ours may outlive
                                      them for a moment after an expiry */
  unsigned npast;
  int negotiated_ms;
  int connect_pending; /* a connect call waits for its outcome */
  zkr_session_connect_cb connect_cb;
  void *connect_arg;
  uint64_t connect_timer;
  int64_t connect_deadline; /* tells a stale timeout from the current one */
  zkr__listener_t *listeners;
  size_t nlisteners, caplisteners;
  unsigned next_listener_id;

  zkr__stats_t stats;
  size_t watch_bytes;  /* (mu) path bytes of the budgeted watches set now */
  size_t watch_budget; /* (mu) their limit (zkr_session_set_watch_budget) */
};

/* After zookeeper_close(h->zh) has returned: run what is left with ZCLOSING. */
ZKR__HIDDEN void zkr__handle_drain(zkr__handle_t *h);

#endif /* ZKR_SESSION_PRIV_H */
