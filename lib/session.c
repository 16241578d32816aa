/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session wrapper.
 *
 * A zkr_session_t owns at most one live ZooKeeper client handle (s->cur). The
 * client reports connection changes to the handle's watcher (on_session_event,
 * on the handle's completion thread), which turns them into listener events:
 *   first CONNECTED of a handle        -> CONNECTED (new session id)
 *   CONNECTING after CONNECTED         -> SUSPENDED
 *   CONNECTED after SUSPENDED          -> RECONNECTED
 *   EXPIRED_SESSION                    -> LOST, then a new handle is opened
 *   AUTH_FAILED                        -> AUTH_FAILED
 * LOST is delivered to every listener before the new handle exists, so recipes
 * reset their state before anything can happen on the new session.
 *
 * A handle that is replaced (expiry) or abandoned (connect timeout, free from a
 * callback) is "retired": its events are ignored and it is closed on the worker
 * thread, because zookeeper_close() joins the handle's own threads. Handles are
 * closed without any zkrecipes mutex held for the same reason.
 *
 * Mutexes: the dispatch mutex (one for the process, recursive) before mu. mu guards the
 * (mu) fields of struct zkr_session and every handle's record list.
 */
#include "session_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SESSION_TIMEOUT_MS 10000
/* What the C client can work with: it gives the handshake two thirds of the
 * requested timeout (1 ms never connects) and computes 2 * timeout in an int
 * (2^30 and above overflow, and it never connects either). */
#define MIN_SESSION_TIMEOUT_MS 100
#define MAX_SESSION_TIMEOUT_MS ((1 << 30) - 1)
#define REOPEN_RETRY_MS        1000
#define CLOSE_DRAIN_MS         1000 /* longest wait for requests in flight at close */
#define RESOLVE_DELAY_MS       1000 /* least time between routine DNS lookups */

static _Thread_local int tls_depth;

/* One dispatch mutex for every session, not one per session: callbacks of one
 * session may free or cancel objects of another, which enters that session's
 * dispatch; with a mutex per session two such callbacks running at once on two
 * sessions' threads would each wait for the other's mutex for ever. One mutex
 * also makes "in callback context" mean the same thing for every session, so a
 * listener removed from another session's callback cannot be running. The cost
 * is that callbacks of different sessions do not run at the same time; they are
 * short (the library's own handlers take microseconds). */
static pthread_mutex_t dispatch_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

/* ---- callback context ---- */

int zkr__in_callback(void) {
  return tls_depth > 0;
}

void zkr__dispatch_enter(zkr_session_t *s) {
  (void)s;
  pthread_mutex_lock(&dispatch_mu);
  tls_depth++;
}

void zkr__dispatch_leave(zkr_session_t *s) {
  (void)s;
  tls_depth--;
  pthread_mutex_unlock(&dispatch_mu);
}

/* ---- timers: the worker's, run in callback context, holding the session ---- */

static void run_timer(void *owner, zkr__timer_fn fn, void *ctx, int fired) {
  zkr_session_t *s = owner;
  zkr__dispatch_enter(s);
  fn(ctx, fired);
  zkr__dispatch_leave(s);
  zkr__session_unref(s);
}

int zkr__timer_at_us(zkr_session_t *s, int64_t due_us, zkr__timer_fn fn, void *ctx,
                     uint64_t *id_out) {
  int rc;
  zkr__session_ref(s);
  if ((rc = zkr__worker_timer_at(due_us, run_timer, s, fn, ctx, id_out)) != 0)
    zkr__session_unref(s);
  return rc;
}

int zkr__timer_at(zkr_session_t *s, int64_t due_ms, zkr__timer_fn fn, void *ctx,
                  uint64_t *id_out) {
  return zkr__timer_at_us(s, due_ms * 1000, fn, ctx, id_out);
}

int zkr__timer_cancel(uint64_t id) {
  void *owner;
  if (!zkr__worker_timer_cancel(id, &owner))
    return 0;
  zkr__session_unref(owner);
  return 1;
}

/* ---- names ---- */

const char *zkr_session_event_name(int event) {
  switch (event) {
  case ZKR_SESSION_CONNECTED: return "CONNECTED";
  case ZKR_SESSION_SUSPENDED: return "SUSPENDED";
  case ZKR_SESSION_RECONNECTED: return "RECONNECTED";
  case ZKR_SESSION_LOST: return "LOST";
  case ZKR_SESSION_AUTH_FAILED: return "AUTH_FAILED";
  case ZKR_SESSION_CLOSED: return "CLOSED";
  case ZKR_SESSION_CONNECT_FAILED: return "CONNECT_FAILED";
  default: return "UNKNOWN";
  }
}

const char *zkr_session_state_name(int state) {
  switch (state) {
  case ZKR_STATE_IDLE: return "IDLE";
  case ZKR_STATE_CONNECTING: return "CONNECTING";
  case ZKR_STATE_CONNECTED: return "CONNECTED";
  case ZKR_STATE_SUSPENDED: return "SUSPENDED";
  case ZKR_STATE_AUTH_FAILED: return "AUTH_FAILED";
  case ZKR_STATE_CLOSED: return "CLOSED";
  default: return "UNKNOWN";
  }
}

/* ---- life cycle ---- */

void zkr__session_ref(zkr_session_t *s) {
  atomic_fetch_add(&s->refs, 1);
}

void zkr__session_unref(zkr_session_t *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->state_cv);
  free(s->hosts);
  free(s->auth_scheme);
  free(s->auth_cred);
  free(s->listeners);
  free(s);
}

int zkr_session_new(zkr_session_t **out) {
  zkr_session_t *s;
  pthread_condattr_t ca;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!(s = calloc(1, sizeof(*s))))
    return ZKR_ENOMEM;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    pthread_condattr_destroy(&ca);
    free(s);
    return ZKR_ENOMEM;
  }
  if (pthread_cond_init(&s->state_cv, &ca) != 0) {
    pthread_mutex_destroy(&s->mu);
    pthread_condattr_destroy(&ca);
    free(s);
    return ZKR_ENOMEM;
  }
  pthread_condattr_destroy(&ca);
  atomic_init(&s->refs, 1);
  s->session_timeout_ms = DEFAULT_SESSION_TIMEOUT_MS;
  s->acl_mode = ZKR_ACL_OPEN;
  s->state = ZKR_STATE_IDLE;
  s->next_listener_id = 1;
  s->watch_budget = ZKR_DEFAULT_WATCH_BUDGET;
  zkr__worker_hold(); /* an open session keeps the worker */
  *out = s;
  return 0;
}

/* Configuration is frozen once the first connect starts. */
static int config_locked(zkr_session_t *s) {
  if (s->freed)
    return ZKR_ECLOSED;
  if (s->state != ZKR_STATE_IDLE || s->last_gen != 0)
    return ZKR_EBUSY;
  return 0;
}

static int timeout_ok(int ms) {
  return ms >= MIN_SESSION_TIMEOUT_MS && ms <= MAX_SESSION_TIMEOUT_MS;
}

int zkr_session_set_timeout(zkr_session_t *s, int session_timeout_ms) {
  int rc;
  if (!s || !timeout_ok(session_timeout_ms))
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  if ((rc = config_locked(s)) == 0)
    s->session_timeout_ms = session_timeout_ms;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int zkr_session_set_auth(zkr_session_t *s, const char *scheme, const char *cred) {
  char *sc, *cr;
  int rc;

  if (!s || !scheme || !*scheme || !cred || !*cred)
    return ZKR_EINVAL;
  /* A digest identity is "user:password"; anything else would be refused later
   * with a much less helpful error. */
  if (strcmp(scheme, "digest") == 0 && (!strchr(cred, ':') || cred[0] == ':'))
    return ZKR_EINVAL;
  sc = strdup(scheme);
  cr = strdup(cred);
  if (!sc || !cr) {
    free(sc);
    free(cr);
    return ZKR_ENOMEM;
  }
  pthread_mutex_lock(&s->mu);
  if ((rc = config_locked(s)) == 0) {
    free(s->auth_scheme);
    free(s->auth_cred);
    s->auth_scheme = sc;
    s->auth_cred = cr;
    sc = cr = NULL;
  }
  pthread_mutex_unlock(&s->mu);
  free(sc);
  free(cr);
  return rc;
}

int zkr_session_set_watch_budget(zkr_session_t *s, size_t bytes) {
  if (!s || bytes == 0)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  s->watch_budget = bytes;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int zkr_session_set_acl(zkr_session_t *s, int mode) {
  int rc;
  if (!s || (mode != ZKR_ACL_OPEN && mode != ZKR_ACL_CREATOR))
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  if ((rc = config_locked(s)) == 0)
    s->acl_mode = mode;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- listeners ---- */

int zkr_session_add_listener(zkr_session_t *s, zkr_session_listener_fn fn, void *arg,
                             unsigned *id_out) {
  int rc = 0;
  if (!s || !fn)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  if (s->freed) {
    rc = ZKR_ECLOSED;
  } else {
    if (s->nlisteners == s->caplisteners) {
      size_t cap = s->caplisteners ? 2 * s->caplisteners : 4;
      zkr__listener_t *l = realloc(s->listeners, cap * sizeof(*l));
      if (!l) {
        pthread_mutex_unlock(&s->mu);
        return ZKR_ENOMEM;
      }
      s->listeners = l;
      s->caplisteners = cap;
    }
    s->listeners[s->nlisteners].id = s->next_listener_id++;
    s->listeners[s->nlisteners].fn = fn;
    s->listeners[s->nlisteners].arg = arg;
    if (id_out)
      *id_out = s->listeners[s->nlisteners].id;
    s->nlisteners++;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int zkr_session_remove_listener(zkr_session_t *s, unsigned id) {
  int found = 0;
  if (!s)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nlisteners; i++) {
    if (s->listeners[i].id == id) {
      memmove(&s->listeners[i], &s->listeners[i + 1],
              (s->nlisteners - i - 1) * sizeof(s->listeners[0]));
      s->nlisteners--;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (!found)
    return ZKR_EINVAL;
  /* Wait out a dispatch that may be calling it right now. In callback context
   * we hold the dispatch mutex ourselves, so no listener runs elsewhere. */
  if (!zkr__in_callback()) {
    pthread_mutex_lock(&dispatch_mu);
    pthread_mutex_unlock(&dispatch_mu);
  }
  return 0;
}

/* In callback context. Listeners added during the dispatch do not see this
 * event; listeners removed during it are not called after their removal. */
static void dispatch_event(zkr_session_t *s, int event) {
  zkr__listener_t *snap;
  size_t n;

  pthread_mutex_lock(&s->mu);
  n = s->nlisteners;
  snap = n ? malloc(n * sizeof(*snap)) : NULL;
  if (snap)
    memcpy(snap, s->listeners, n * sizeof(*snap));
  pthread_mutex_unlock(&s->mu);
  if (n && !snap) {
    zkr__log(ZKR_LOG_ERROR, "out of memory: session event %s not delivered",
             zkr_session_event_name(event));
    return;
  }
  switch (event) {
  case ZKR_SESSION_CONNECTED: zkr__stat(s, ZKR__ST_SESSIONS); break;
  case ZKR_SESSION_SUSPENDED: zkr__stat(s, ZKR__ST_DISCONNECTS); break;
  case ZKR_SESSION_RECONNECTED: zkr__stat(s, ZKR__ST_RECONNECTS); break;
  case ZKR_SESSION_LOST: zkr__stat(s, ZKR__ST_EXPIRIES); break;
  default: break;
  }
  if (zkr__log_enabled(ZKR_LOG_INFO)) {
    /* The id and the timeout take the session's mutex: only when logged. */
    unsigned long long id = (unsigned long long)zkr_session_id(s);
    if (event == ZKR_SESSION_CONNECTED || event == ZKR_SESSION_RECONNECTED)
      zkr__log(ZKR_LOG_INFO, "session 0x%llx: %s (negotiated timeout %d ms)", id,
               zkr_session_event_name(event), zkr_session_negotiated_timeout(s));
    else
      zkr__log(ZKR_LOG_INFO, "session 0x%llx: %s", id, zkr_session_event_name(event));
  }
  for (size_t i = 0; i < n; i++) {
    int live = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t j = 0; j < s->nlisteners && (!s->freed || event == ZKR_SESSION_CLOSED);
         j++)
      if (s->listeners[j].id == snap[i].id)
        live = 1;
    pthread_mutex_unlock(&s->mu);
    if (live)
      snap[i].fn(s, event, snap[i].arg);
  }
  free(snap);
}

/* ---- handles ---- */

static void set_state_locked(zkr_session_t *s, int state) {
  s->state = state;
  pthread_cond_broadcast(&s->state_cv);
}

static void on_session_event(zhandle_t *zh, int type, int state, const char *path,
                             void *ctx);
static void on_auth(int rc, const void *data);

static int errno_to_rc(int e) {
  switch (e) {
  /* The host list was checked before: the client's EINVAL and ENOENT are about
   * name resolution (its getaddrinfo failed for every host). */
  case EINVAL:
  case ENOENT: return ZKR_ERESOLVE;
  case ENOMEM: return ZKR_ENOMEM;
  default: return ZKR_ESYSTEM;
  }
}

/* mu held. Open a new client handle and make it current. A handle that started
 * but could not be set up is left in *dispose for the caller to close after
 * unlocking. */
static int handle_start_locked(zkr_session_t *s, zkr__handle_t **dispose) {
  zkr__handle_t *h = calloc(1, sizeof(*h));
  zhandle_t *zh;
  int rc;

  *dispose = NULL;
  if (!h)
    return ZKR_ENOMEM;
  h->s = s;
  h->gen = ++s->last_gen;
  h->recs.next = h->recs.prev = &h->recs;
  h->auth_done = s->auth_scheme == NULL;
  /* Current before the client starts, so its first event finds it; the event
   * waits for mu, which we hold until the handle is filled in. */
  s->cur = h;
  errno = 0;
  zh = zookeeper_init2(s->hosts, on_session_event, s->session_timeout_ms, NULL, h, 0,
                       zkr__zoo_log);
  if (!zh) {
    rc = errno_to_rc(errno);
    s->cur = NULL;
    free(h);
    return rc;
  }
  h->zh = zh;
  /* By default the client resolves the host list again every time it polls its
   * socket, that is around every request and reply: four name lookups (netlink
   * socket, /etc/hosts, ...) per lock cycle. Once a second is plenty to notice a
   * DNS change; a lost connection still resolves at once. */
  zoo_set_servers_resolution_delay(zh, RESOLVE_DELAY_MS);
  zkr__session_ref(s);
  if (s->auth_scheme) {
    /* The client sends the credentials right after the handshake, ahead of any
     * request, and again after every reconnect of this session. */
    rc = zoo_add_auth(zh, s->auth_scheme, s->auth_cred, (int)strlen(s->auth_cred),
                      on_auth, h);
    if (rc != ZOK) {
      zkr__log(ZKR_LOG_ERROR, "zoo_add_auth: %s", zkr_strerror(rc));
      h->retired = 1;
      s->cur = NULL;
      *dispose = h;
      return rc;
    }
  }
  return 0;
}

/* No zkrecipes mutex held, not on h's own client threads. */
static void handle_close(zkr__handle_t *h) {
  zkr_session_t *s = h->s;
  int64_t deadline = zkr__now_ms() + CLOSE_DRAIN_MS;

  /* Let requests in flight finish first (they are answered in milliseconds on a
   * live connection, and fail fast on a dead one): the client loses the ZCLOSING
   * completions it makes up for requests still outstanding when it closes, if its
   * completion thread has already stopped by then. */
  pthread_mutex_lock(&s->mu);
  while (h->nops > 0 && zkr__now_ms() < deadline) {
    struct timespec ts = {.tv_sec = deadline / 1000,
                          .tv_nsec = (long)(deadline % 1000) * 1000000};
    pthread_cond_timedwait(&s->state_cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  zookeeper_close(h->zh);
  zkr__handle_drain(h);
  free(h);
  zkr__session_unref(s);
}

static void handle_close_job(void *arg) {
  handle_close(arg);
}

/* mu held: retire h; the caller closes it (after unlocking) with handle_dispose. */
static void handle_retire_locked(zkr_session_t *s, zkr__handle_t *h) {
  h->retired = 1;
  if (s->cur == h)
    s->cur = NULL;
}

static void handle_dispose(zkr__handle_t *h) {
  if (!h)
    return;
  if (zkr__worker_post(handle_close_job, h) != 0) {
    /* Out of memory for a job: close in place. Only reached outside the handle's
     * own threads in practice (connect timeout, free), where this is safe. */
    handle_close(h);
  }
}

/* ---- connect ---- */

/* Callback context: deliver the pending connect outcome, if one is waiting. */
static void connect_finish(zkr_session_t *s, int rc) {
  zkr_session_connect_cb cb;
  void *arg;
  uint64_t timer;

  pthread_mutex_lock(&s->mu);
  if (!s->connect_pending) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->connect_pending = 0;
  cb = s->connect_cb;
  arg = s->connect_arg;
  timer = s->connect_timer;
  pthread_mutex_unlock(&s->mu);
  zkr__timer_cancel(timer);
  cb(s, rc, arg);
}

static void on_connect_timeout(void *ctx, int fired) {
  zkr_session_t *s = ctx;
  zkr__handle_t *h = NULL;

  if (!fired)
    return; /* session freed: zkr_session_free reports ZKR_ECANCELED itself */
  pthread_mutex_lock(&s->mu);
  /* A timer left over from an earlier attempt fires before this attempt's
   * deadline and must not end it. */
  if (!s->connect_pending || zkr__now_ms() < s->connect_deadline) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  if (s->cur) {
    h = s->cur;
    handle_retire_locked(s, h);
  }
  s->session_id = 0;
  s->negotiated_ms = 0;
  set_state_locked(s, ZKR_STATE_IDLE);
  pthread_mutex_unlock(&s->mu);
  handle_dispose(h);
  /* Nothing tries to connect any more: recipes end what waits for a session. */
  dispatch_event(s, ZKR_SESSION_CONNECT_FAILED);
  connect_finish(s, ZKR_ETIMEDOUT);
}

int zkr_session_connect_async(zkr_session_t *s, const char *hosts, int timeout_ms,
                              zkr_session_connect_cb cb, void *arg) {
  zkr__handle_t *dispose = NULL;
  uint64_t timer = 0;
  int64_t deadline;
  char *copy;
  int rc;

  if (!s || !cb || timeout_ms <= 0 || zkr__hosts_check(hosts) != 0)
    return ZKR_EINVAL;
  deadline = zkr__now_ms() + timeout_ms;
  if (!(copy = strdup(hosts)))
    return ZKR_ENOMEM;
  pthread_mutex_lock(&s->mu);
  if (s->freed) {
    rc = ZKR_ECLOSED;
  } else if (s->state != ZKR_STATE_IDLE || s->connect_pending) {
    rc = ZKR_EBUSY;
  } else if (s->acl_mode == ZKR_ACL_CREATOR && !s->auth_scheme) {
    rc = ZKR_EINVAL;
  } else if ((rc = zkr__timer_at(s, deadline, on_connect_timeout, s, &timer)) == 0) {
    /* The timer owns the deadline, so the callback is sure to run once. */
    free(s->hosts);
    s->hosts = copy;
    copy = NULL;
    s->connect_pending = 1;
    s->connect_cb = cb;
    s->connect_arg = arg;
    s->connect_timer = timer;
    s->connect_deadline = deadline;
    rc = handle_start_locked(s, &dispose);
    if (rc == 0) {
      set_state_locked(s, ZKR_STATE_CONNECTING);
    } else {
      s->connect_pending = 0;
      zkr__timer_cancel(timer);
    }
  }
  pthread_mutex_unlock(&s->mu);
  free(copy);
  handle_dispose(dispose);
  return rc;
}

static void connect_waiter_cb(zkr_session_t *s, int rc, void *arg) {
  (void)s;
  zkr__waiter_signal(arg, rc);
}

int zkr_session_connect(zkr_session_t *s, const char *hosts, int timeout_ms) {
  zkr__waiter_t w;
  int rc;

  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if ((rc = zkr__waiter_init(&w)) != 0)
    return rc;
  rc = zkr_session_connect_async(s, hosts, timeout_ms, connect_waiter_cb, &w);
  if (rc == 0)
    rc = zkr__waiter_wait(&w); /* the timer guarantees the callback */
  zkr__waiter_destroy(&w);
  return rc;
}

int zkr_session_open(const char *hosts, int session_timeout_ms, int connect_timeout_ms,
                     zkr_session_t **out) {
  zkr_session_t *s;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (zkr__hosts_check(hosts) != 0 || !timeout_ok(session_timeout_ms) ||
      connect_timeout_ms <= 0)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if ((rc = zkr_session_new(&s)) != 0)
    return rc;
  if ((rc = zkr_session_set_timeout(s, session_timeout_ms)) != 0 ||
      (rc = zkr_session_connect(s, hosts, connect_timeout_ms)) != 0) {
    zkr_session_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int zkr_session_wait_connected(zkr_session_t *s, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  int rc = 0;

  if (!s || timeout_ms < -1)
    return ZKR_EINVAL;
  if (timeout_ms != 0 && zkr__in_callback())
    return ZKR_EDEADLK;
  pthread_mutex_lock(&s->mu);
  while (s->state != ZKR_STATE_CONNECTED) {
    if (s->freed || s->state == ZKR_STATE_CLOSED) {
      rc = ZKR_ECLOSED;
      break;
    }
    if (s->state == ZKR_STATE_AUTH_FAILED) {
      rc = ZAUTHFAILED;
      break;
    }
    if (s->state == ZKR_STATE_IDLE) {
      rc = ZINVALIDSTATE; /* nobody is trying to connect */
      break;
    }
    if (deadline >= 0) {
      struct timespec ts = {.tv_sec = deadline / 1000,
                            .tv_nsec = (long)(deadline % 1000) * 1000000};
      if (zkr__now_ms() >= deadline ||
          (pthread_cond_timedwait(&s->state_cv, &s->mu, &ts) == ETIMEDOUT &&
           s->state != ZKR_STATE_CONNECTED)) {
        rc = ZKR_ETIMEDOUT;
        break;
      }
    } else {
      pthread_cond_wait(&s->state_cv, &s->mu);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- events from the client ---- */

static void reopen_timer(void *ctx, int fired);

/* mu held: after LOST, open the next session unless the user is done with us. */
static void reopen_locked(zkr_session_t *s, zkr__handle_t **dispose) {
  int rc;
  *dispose = NULL;
  if (s->freed || s->cur || s->state != ZKR_STATE_CONNECTING)
    return;
  rc = handle_start_locked(s, dispose);
  if (rc != 0) {
    zkr__log(ZKR_LOG_WARN, "reopening the session failed (%s); retrying in %d ms",
             zkr_strerror(rc), REOPEN_RETRY_MS);
    if (zkr__timer_at(s, zkr__now_ms() + REOPEN_RETRY_MS, reopen_timer, s, NULL) != 0)
      zkr__log(ZKR_LOG_ERROR, "cannot arm the reopen timer; session stays down");
  }
}

static void reopen_timer(void *ctx, int fired) {
  zkr_session_t *s = ctx;
  zkr__handle_t *dispose;
  if (!fired)
    return;
  pthread_mutex_lock(&s->mu);
  reopen_locked(s, &dispose);
  pthread_mutex_unlock(&s->mu);
  handle_dispose(dispose);
}

static void on_session_event(zhandle_t *zh, int type, int state, const char *path,
                             void *ctx) {
  zkr__handle_t *h = ctx, *old = NULL;
  zkr_session_t *s = h->s;
  int event = 0, finish = 0, finish_rc = 0;

  (void)path;
  if (type != ZOO_SESSION_EVENT)
    return; /* node events come with their own watcher */
  zkr__dispatch_enter(s);
  pthread_mutex_lock(&s->mu);
  if (h->retired || s->cur != h || s->freed) {
    pthread_mutex_unlock(&s->mu);
    zkr__dispatch_leave(s);
    return;
  }
  if (state == ZOO_CONNECTED_STATE) {
    const clientid_t *cid = zoo_client_id(zh);
    s->negotiated_ms = zoo_recv_timeout(zh);
    if (!h->connected) {
      h->connected = 1;
      s->session_id = cid ? cid->client_id : 0;
      s->past_ids[s->npast++ % ZKR__PAST_IDS] = s->session_id;
      set_state_locked(s, ZKR_STATE_CONNECTED);
      event = ZKR_SESSION_CONNECTED;
      finish = h->auth_done;
    } else if (s->state == ZKR_STATE_SUSPENDED) {
      set_state_locked(s, ZKR_STATE_CONNECTED);
      event = ZKR_SESSION_RECONNECTED;
    }
  } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
    if (s->state == ZKR_STATE_CONNECTED) {
      set_state_locked(s, ZKR_STATE_SUSPENDED);
      event = ZKR_SESSION_SUSPENDED;
    }
  } else if (state == ZOO_EXPIRED_SESSION_STATE) {
    old = h;
    handle_retire_locked(s, h);
    s->session_id = 0;
    s->negotiated_ms = 0;
    set_state_locked(s, ZKR_STATE_CONNECTING);
    event = ZKR_SESSION_LOST;
  } else if (state == ZOO_AUTH_FAILED_STATE) {
    set_state_locked(s, ZKR_STATE_AUTH_FAILED);
    event = ZKR_SESSION_AUTH_FAILED;
    finish = 1;
    finish_rc = ZAUTHFAILED;
  }
  pthread_mutex_unlock(&s->mu);

  if (event)
    dispatch_event(s, event);
  if (finish)
    connect_finish(s, finish_rc);
  if (old) {
    zkr__handle_t *dispose;
    /* Only now, with every listener told of LOST, start the next session. */
    pthread_mutex_lock(&s->mu);
    reopen_locked(s, &dispose);
    pthread_mutex_unlock(&s->mu);
    handle_dispose(dispose);
    handle_dispose(old);
  }
  zkr__dispatch_leave(s);
}

static void on_auth(int rc, const void *data) {
  zkr__handle_t *h = (zkr__handle_t *)data;
  zkr_session_t *s = h->s;
  int finish = 0;

  zkr__dispatch_enter(s);
  pthread_mutex_lock(&s->mu);
  if (!h->retired && s->cur == h && !h->auth_done) {
    h->auth_done = 1;
    /* A refusal also arrives as AUTH_FAILED state, which finishes the connect. */
    finish = rc == ZOK && h->connected;
  }
  pthread_mutex_unlock(&s->mu);
  if (rc != ZOK)
    zkr__log(ZKR_LOG_ERROR, "authentication refused: %s", zkr_strerror(rc));
  if (finish)
    connect_finish(s, 0);
  zkr__dispatch_leave(s);
}

/* ---- close ---- */

void zkr_session_free(zkr_session_t *s) {
  zkr__handle_t *h;
  int was_pending;
  uint64_t timer;
  zkr_session_connect_cb cb;
  void *cb_arg;
  int in_cb = zkr__in_callback();

  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  if (s->freed) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->freed = 1;
  h = s->cur;
  if (h)
    handle_retire_locked(s, h);
  was_pending = s->connect_pending;
  s->connect_pending = 0;
  cb = s->connect_cb;
  cb_arg = s->connect_arg;
  timer = s->connect_timer;
  s->session_id = 0;
  s->negotiated_ms = 0;
  set_state_locked(s, ZKR_STATE_CLOSED);
  pthread_mutex_unlock(&s->mu);

  if (was_pending)
    zkr__timer_cancel(timer);
  /* The last event: recipe objects still on the session stop here (nothing can
   * be sent any more; their ephemerals go with the session). */
  zkr__dispatch_enter(s);
  dispatch_event(s, ZKR_SESSION_CLOSED);
  zkr__dispatch_leave(s);
  pthread_mutex_lock(&s->mu);
  s->nlisteners = 0;
  pthread_mutex_unlock(&s->mu);
  if (h) {
    /* Closing joins the handle's threads: from callback context we may be on one
     * of them, or they may wait for the dispatch mutex we hold. */
    if (in_cb)
      handle_dispose(h);
    else
      handle_close(h);
  }
  zkr__dispatch_enter(s);
  if (was_pending)
    cb(s, ZKR_ECANCELED, cb_arg);
  zkr__worker_cancel_owner(s);
  zkr__dispatch_leave(s);
  zkr__session_unref(s);
  if (zkr__worker_release() == 0 && !in_cb)
    zkr__worker_stop();
}

/* ---- queries ---- */

int zkr_session_state(zkr_session_t *s) {
  int st;
  if (!s)
    return ZKR_STATE_CLOSED;
  pthread_mutex_lock(&s->mu);
  st = s->state;
  pthread_mutex_unlock(&s->mu);
  return st;
}

int64_t zkr_session_id(zkr_session_t *s) {
  int64_t id;
  if (!s)
    return 0;
  pthread_mutex_lock(&s->mu);
  id = s->state == ZKR_STATE_CONNECTED || s->state == ZKR_STATE_SUSPENDED ? s->session_id
                                                                          : 0;
  pthread_mutex_unlock(&s->mu);
  return id;
}

int zkr_session_negotiated_timeout(zkr_session_t *s) {
  int t;
  if (!s)
    return 0;
  pthread_mutex_lock(&s->mu);
  t = s->negotiated_ms;
  pthread_mutex_unlock(&s->mu);
  return t;
}

zhandle_t *zkr_session_zhandle(zkr_session_t *s) {
  zhandle_t *zh;
  if (!s)
    return NULL;
  pthread_mutex_lock(&s->mu);
  zh = s->cur ? s->cur->zh : NULL;
  pthread_mutex_unlock(&s->mu);
  return zh;
}

const struct ACL_vector *zkr_session_acl(zkr_session_t *s) {
  if (s && s->acl_mode == ZKR_ACL_CREATOR)
    return &ZOO_CREATOR_ALL_ACL;
  return &ZOO_OPEN_ACL_UNSAFE;
}

uint64_t zkr__session_gen(zkr_session_t *s) {
  uint64_t g;
  pthread_mutex_lock(&s->mu);
  g = s->cur ? s->cur->gen : 0;
  pthread_mutex_unlock(&s->mu);
  return g;
}

int zkr__session_was_ours(zkr_session_t *s, int64_t sid) {
  int ours = 0;
  if (!s || sid == 0)
    return 0;
  pthread_mutex_lock(&s->mu);
  for (unsigned i = 0; i < ZKR__PAST_IDS && i < s->npast && !ours; i++)
    ours = s->past_ids[i] == sid;
  pthread_mutex_unlock(&s->mu);
  return ours;
}

void zkr__session_note_past(zkr_session_t *s, int64_t sid) {
  pthread_mutex_lock(&s->mu);
  s->past_ids[s->npast++ % ZKR__PAST_IDS] = sid;
  pthread_mutex_unlock(&s->mu);
}
