/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/counter.h - a shared counter that is exact under contention and
 * honest about connection loss.
 *
 * The counter node holds a big-endian two's-complement integer: 8 bytes
 * (ZKR_COUNTER_INT64, Curator's DistributedAtomicLong) or 4 bytes
 * (ZKR_COUNTER_INT32, Curator's SharedCount / DistributedAtomicInteger and kazoo's
 * Counter with support_curator=True). A missing or empty node reads as 0; a
 * missing node is created by the first write (its parents as containers). Data of
 * any other length is ZKR_EBADDATA and is not overwritten.
 *
 * A write reuses the value and version of the last reply when it can. That
 * cache is tied to the node's incarnation (czxid) and guarded by a data watch,
 * so a node deleted and created again is read before the next write. ZooKeeper
 * has no check on czxid: a delete and re-create that both land within about one
 * round trip before a write (before their notification reaches us) can still
 * let it through, as with a plain read + versioned write; it is then logged.
 *
 * Exactly once (the default): every write is one transaction: the versioned
 * setData (or the create), plus a
 * setData of this object's marker node to the write's number (created by the
 * object's first write on a session), in a sibling node "<path>.zkr-markers"
 * that readers of the counter never see. When the reply to a write is lost
 * (connection loss), the marker tells whether it was applied, so an acknowledged
 * change is never lost and none is applied twice. If that cannot be decided (the
 * session expired first), the operation ends with ZKR_EUNKNOWN: it may or may not
 * have been applied, exactly once at most. The marker is ephemeral: it goes with
 * the session, and with zkr_counter_free().
 *
 * At most once (ZKR_COUNTER_AT_MOST_ONCE): every write is the versioned setData
 * (or the create) alone, what Curator's SharedCount and DistributedAtomicLong
 * write. It is never retried blindly either: after a lost reply the counter is
 * read, and unless it is still as the write found it (not applied: written
 * again), the operation ends with ZKR_EUNKNOWN. So the same connection blip
 * that exactly once resolves is usually reported as unknown in this mode. It
 * costs the server one operation per write instead of two: see README
 * "Performance" for what that buys (about a tenth more increments per second
 * for one uncontended writer, nothing measurable under contention).
 *
 * Operations on one counter object run one at a time, in the order they were
 * started; use one object per thread for parallel work.
 */
#ifndef ZKRECIPES_COUNTER_H
#define ZKRECIPES_COUNTER_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_counter zkr_counter_t;

/* Write modes (zkr_counter_set_mode). */
typedef enum zkr_counter_mode {
  ZKR_COUNTER_EXACTLY_ONCE = 0, /* default: the marker resolves a lost reply */
  ZKR_COUNTER_AT_MOST_ONCE = 1  /* one operation per write; a lost reply that
                                   may have applied is ZKR_EUNKNOWN */
} zkr_counter_mode_t;

/* Encodings (the value is the number of bytes in the node). */
typedef enum zkr_counter_encoding {
  ZKR_COUNTER_INT64 = 8,
  ZKR_COUNTER_INT32 = 4
} zkr_counter_encoding_t;

/* rc, and the value: the new value after add/set/cas, the value read by get, the
 * current value when cas reports ZKR_EMISMATCH. */
typedef void (*zkr_counter_cb)(zkr_counter_t *c, int rc, int64_t value, void *arg);

/* Called with every value seen by the change watch, newer versions only (the
 * version comparison survives wrap-around of the node's int32 version). */
typedef void (*zkr_counter_listener_fn)(zkr_counter_t *c, int64_t value, int32_t version,
                                        void *arg);

/* A counter object for path on session s with an encoding (ZKR_COUNTER_*). */
ZKR_API int zkr_counter_new(zkr_session_t *s, const char *path, int encoding,
                            zkr_counter_t **out);

/* Pending operations end first: a write that may already be applied with
 * ZKR_EUNKNOWN, the others with ZKR_ECANCELED. NULL is a no-op. */
ZKR_API void zkr_counter_free(zkr_counter_t *c);

/* Read the value. Each operation's async form takes the same timeout_ms as its
 * sync form and ends with it in its callback. */
ZKR_API int zkr_counter_get(zkr_counter_t *c, int timeout_ms, int64_t *value);
ZKR_API int zkr_counter_get_async(zkr_counter_t *c, int timeout_ms, zkr_counter_cb cb,
                                  void *arg);

/*
 * Add delta and return the new value (new_value may be NULL). ZKR_EOVERFLOW if the
 * result would not fit the encoding (nothing changed). ZKR_ETIMEDOUT means not
 * applied; ZKR_EUNKNOWN means the outcome could not be decided before the deadline
 * or the session's end (a write still in flight at the deadline ends there with
 * ZKR_EUNKNOWN; it is never retried). timeout_ms 0 tries once: the operation ends
 * with ZKR_ETIMEDOUT where it would wait (not connected, lost to another writer,
 * connection lost), or ZKR_EUNKNOWN if its write's outcome is open then. The
 * same holds for get, set and cas.
 */
ZKR_API int zkr_counter_add(zkr_counter_t *c, int64_t delta, int timeout_ms,
                            int64_t *new_value);
ZKR_API int zkr_counter_add_async(zkr_counter_t *c, int64_t delta, int timeout_ms,
                                  zkr_counter_cb cb, void *arg);

/* Set the value, whatever it was. */
ZKR_API int zkr_counter_set(zkr_counter_t *c, int64_t value, int timeout_ms);
ZKR_API int zkr_counter_set_async(zkr_counter_t *c, int64_t value, int timeout_ms,
                                  zkr_counter_cb cb, void *arg);

/* Set to value only if the counter is expected now; ZKR_EMISMATCH otherwise, with
 * the current value in *current (may be NULL). */
ZKR_API int zkr_counter_cas(zkr_counter_t *c, int64_t expected, int64_t value,
                            int timeout_ms, int64_t *current);
ZKR_API int zkr_counter_cas_async(zkr_counter_t *c, int64_t expected, int64_t value,
                                  int timeout_ms, zkr_counter_cb cb, void *arg);

/* Choose the write mode (zkr_counter_mode_t) of the operations started from now
 * on; those already queued keep theirs. */
ZKR_API int zkr_counter_set_mode(zkr_counter_t *c, int mode);

/* One change listener per counter (NULL removes it). It stays armed across
 * reconnects and session expiry; the first call reports the value when armed. */
ZKR_API int zkr_counter_set_listener(zkr_counter_t *c, zkr_counter_listener_fn fn,
                                     void *arg);

/* Version conflicts this object ran into and retried (for monitoring). */
ZKR_API uint64_t zkr_counter_conflicts(zkr_counter_t *c);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_COUNTER_H */
