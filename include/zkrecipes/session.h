/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/session.h - a ZooKeeper session that survives expiry.
 *
 * A zkr_session_t wraps one ZooKeeper client handle at a time. It reports
 * connection changes to listeners and, when the server expires the session,
 * tells every listener (LOST) before it opens a new session by itself and
 * reports CONNECTED again with the new session id. Recipes (locks, counters,
 * elections) are created on a session and rely on these events.
 */
#ifndef ZKRECIPES_SESSION_H
#define ZKRECIPES_SESSION_H

#include <zkrecipes/common.h>
#include <zookeeper/zookeeper.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_session zkr_session_t;

/* Events delivered to session listeners. */
typedef enum zkr_session_event {
  ZKR_SESSION_CONNECTED = 1,   /* a new session is established (first or after LOST) */
  ZKR_SESSION_SUSPENDED = 2,   /* connection lost; the session may still be alive */
  ZKR_SESSION_RECONNECTED = 3, /* connection back, same session, ephemerals kept */
  ZKR_SESSION_LOST = 4,        /* session expired: its ephemerals and watches are gone */
  ZKR_SESSION_AUTH_FAILED = 5, /* the server rejected the credentials; no retry */
  ZKR_SESSION_CLOSED = 6,      /* zkr_session_free() was called: the last event */
  ZKR_SESSION_CONNECT_FAILED = 7 /* a connect attempt gave up (timed out): IDLE until the
                                    next connect; recipes end what waited for it */
} zkr_session_event_t;

/* States reported by zkr_session_state(). */
typedef enum zkr_session_state {
  ZKR_STATE_IDLE = 0,       /* not connected and not trying (new, or connect timed out) */
  ZKR_STATE_CONNECTING = 1, /* waiting for a (new) session */
  ZKR_STATE_CONNECTED = 2,  /* session established and connected */
  ZKR_STATE_SUSPENDED = 3,  /* disconnected; reconnecting to the same session */
  ZKR_STATE_AUTH_FAILED = 4, /* credentials rejected */
  ZKR_STATE_CLOSED = 5       /* zkr_session_free() was called */
} zkr_session_state_t;

/* ACL given to the nodes recipes create. */
typedef enum zkr_acl_mode {
  ZKR_ACL_OPEN = 0,   /* world:anyone, all permissions (what Curator and kazoo use) */
  ZKR_ACL_CREATOR = 1 /* only the creating identity; needs zkr_session_set_auth() */
} zkr_acl_mode_t;

typedef void (*zkr_session_listener_fn)(zkr_session_t *s, int event, void *arg);
typedef void (*zkr_session_connect_cb)(zkr_session_t *s, int rc, void *arg);

/* Allocate an unconnected session with defaults (session timeout 10000 ms,
 * ZKR_ACL_OPEN, no auth). Configure it, add listeners, then connect. */
ZKR_API int zkr_session_new(zkr_session_t **out);

/* Requested session timeout in ms, 100 to 2^30 - 1 (ZKR_EINVAL outside: the C
 * client needs two thirds of it for the handshake and overflows above); the
 * server clamps it to its [minSessionTimeout, maxSessionTimeout]. Only before
 * connecting (ZKR_EBUSY after). */
ZKR_API int zkr_session_set_timeout(zkr_session_t *s, int session_timeout_ms);

/* Credentials sent on every new session, e.g. ("digest", "user:password").
 * Only before connecting. */
ZKR_API int zkr_session_set_auth(zkr_session_t *s, const char *scheme, const char *cred);

/* ACL for nodes that recipes create on this session (zkr_acl_mode_t). ZKR_ACL_CREATOR
 * needs credentials; connecting without them fails with ZKR_EINVAL. Only before
 * connecting. */
ZKR_API int zkr_session_set_acl(zkr_session_t *s, int mode);

/*
 * The budget of watched path bytes for the caches on this session (default
 * ZKR_DEFAULT_WATCH_BUDGET, 512 KiB). On every reconnect the C client sends
 * all of a handle's watched paths in one request, which the server refuses
 * above its jute.maxbuffer (1 MB by default): a session over it could never
 * reconnect. A cache whose next watch would go over stops with ZKR_ELIMIT
 * instead (ZKR_CACHE_STOPPED). Any time; a lower budget stops nothing already
 * watched. 0 is ZKR_EINVAL.
 */
#define ZKR_DEFAULT_WATCH_BUDGET (512 * 1024)
ZKR_API int zkr_session_set_watch_budget(zkr_session_t *s, size_t bytes);

/* Add a listener for zkr_session_event_t events; *id_out (may be NULL) names it for
 * removal. Listeners run in callback context, in the order they were added. */
ZKR_API int zkr_session_add_listener(zkr_session_t *s, zkr_session_listener_fn fn,
                                     void *arg, unsigned *id_out);

/* Remove a listener. Outside callback context, it is not running and will not run
 * once this returns; inside callback context, it will not be called again. */
ZKR_API int zkr_session_remove_listener(zkr_session_t *s, unsigned id);

/*
 * Connect to hosts "host:port[,host:port...][/chroot]" and wait until the session
 * is established (and its credentials accepted), at most timeout_ms (> 0).
 * On ZKR_ETIMEDOUT the attempt is abandoned and the session is IDLE again.
 */
ZKR_API int zkr_session_connect(zkr_session_t *s, const char *hosts, int timeout_ms);

/* Asynchronous connect: cb runs once with 0, ZKR_ETIMEDOUT, ZAUTHFAILED or
 * ZKR_ECANCELED (session freed). A non-zero return means cb will never run. */
ZKR_API int zkr_session_connect_async(zkr_session_t *s, const char *hosts, int timeout_ms,
                                      zkr_session_connect_cb cb, void *arg);

/* new + set_timeout + connect in one call. On error *out is NULL and nothing is left. */
ZKR_API int zkr_session_open(const char *hosts, int session_timeout_ms,
                             int connect_timeout_ms, zkr_session_t **out);

/* Wait until the session is CONNECTED, at most timeout_ms (-1: forever, 0: check). */
ZKR_API int zkr_session_wait_connected(zkr_session_t *s, int timeout_ms);

/*
 * Close the session and free it. Pending connect callbacks run once with
 * ZKR_ECANCELED before this returns; the ZooKeeper session is closed, so its
 * ephemeral nodes go at once. Free the recipe objects made on a session first:
 * those still alive only get ZKR_ECLOSED from then on. NULL is a no-op.
 */
ZKR_API void zkr_session_free(zkr_session_t *s);

/* Current zkr_session_state_t. */
ZKR_API int zkr_session_state(zkr_session_t *s);

/* Current ZooKeeper session id, 0 when no session is established. */
ZKR_API int64_t zkr_session_id(zkr_session_t *s);

/* Session timeout negotiated with the server in ms, 0 when not connected. */
ZKR_API int zkr_session_negotiated_timeout(zkr_session_t *s);

/* Escape hatch: the current raw client handle, borrowed. It changes after LOST
 * and is invalid after zkr_session_free(); NULL when there is none. */
ZKR_API zhandle_t *zkr_session_zhandle(zkr_session_t *s);

/* The ACL this session gives the nodes it creates (borrowed, static). */
ZKR_API const struct ACL_vector *zkr_session_acl(zkr_session_t *s);

/*
 * Statistics of a session and of the recipes made on it, counted since
 * zkr_session_new() (across expiries: one zkr_session_t, many ZooKeeper
 * sessions). Counters only grow; diff two snapshots for a rate. Counting costs
 * an atomic add per event, logging or not.
 *
 * "Attempts" are the queue-shaped recipes' turns in line: a lock acquire, an
 * election candidacy. Each attempt ends exactly once: granted, timed out,
 * conflict, cancelled or failed. Fields may be added at the end (taken from
 * reserved) in later versions; never reordered.
 */
typedef struct zkr_session_stats {
  /* the session */
  uint64_t sessions;    /* ZooKeeper sessions established (CONNECTED events) */
  uint64_t disconnects; /* connections lost (SUSPENDED) */
  uint64_t reconnects;  /* connections back to the same session (RECONNECTED) */
  uint64_t expiries;    /* sessions expired (LOST) */
  uint64_t requests;    /* ZooKeeper requests sent by the library (a multi is one) */
  uint64_t watches;     /* watches set by those requests */
  int64_t in_flight;    /* requests awaiting their reply now */
  int64_t watching;     /* watches set and not yet fired now */
  /* attempts: lock acquires, election candidacies */
  uint64_t acquires;   /* attempts started */
  uint64_t waits;      /* ... that waited behind another node at least once */
  uint64_t grants;     /* ... granted: the lock held, leadership taken */
  uint64_t timeouts;   /* ... ended at their deadline while waiting */
  uint64_t conflicts;  /* ... with no wait allowed (timeout 0), refused: held elsewhere */
  uint64_t cancels;    /* ... ended by the caller (cancel, free, resign) */
  uint64_t failures;   /* ... ended by an error (see the debug trace for which) */
  uint64_t losses;     /* grants lost afterwards: session expired or node removed */
  /* time from the start of an attempt to its grant, over every grant so far,
   * in microseconds (percentiles within 1/8 of their value; 0 with no grant) */
  uint64_t wait_p50_us;
  uint64_t wait_p99_us;
  uint64_t wait_max_us;
  /* counters */
  uint64_t counter_ops;       /* counter operations ended (any outcome) */
  uint64_t counter_conflicts; /* writes refused because another client wrote first */
  uint64_t counter_unknown;   /* operations ended with ZKR_EUNKNOWN */
  uint64_t watch_bytes;       /* path bytes of the caches' watches set now (see
                                 zkr_session_set_watch_budget) */
  uint64_t reserved[9];
} zkr_session_stats_t;

/* Fill *out with the statistics as of now. Any thread, any context. */
ZKR_API int zkr_session_stats(zkr_session_t *s, zkr_session_stats_t *out);

/* Static names for events and states ("CONNECTED", "SUSPENDED", ...). */
ZKR_API const char *zkr_session_event_name(int event);
ZKR_API const char *zkr_session_state_name(int state);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_SESSION_H */
