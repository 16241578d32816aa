/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/journal.h - journaled configuration: every change is logged, and
 * readers replay the log, so none is missed.
 *
 * What each way of following a configuration node guarantees:
 *
 * - A node cache (zkrecipes/cache.h) on P: the latest value, soon after it is
 *   written. Changes may be coalesced (two quick writes are seen as one, to the
 *   second value); after a session expiry the history in between is unknown
 *   (RESYNC with gap). Any writer will do: plain setData, zkr set, Curator.
 *
 * - A journal on P: every change, in the order written, exactly once per
 *   follower, across disconnections and session expiry, as long as the entries
 *   have not been trimmed; a change trimmed before a follower read it is never
 *   skipped silently (TRIMMED says from where to where). It needs every writer
 *   to write through zkr_journal_write (a plain setData of P is not in the
 *   log). P itself always holds the latest value, so node caches and other
 *   clients read P as usual.
 *
 * Znodes:
 *   P                         the value (what zkr_journal_write wrote last);
 *                             parents are CONTAINER nodes, as for the counter
 *   P.zkr-journal             PERSISTENT; data = the low-water mark in decimal
 *                             (empty: nothing trimmed yet): every entry with a
 *                             sequence up to it is gone, every entry above it
 *                             is there
 *   P.zkr-journal/e-<id>-<seq> PERSISTENT_SEQUENTIAL; data = the value written.
 *                             <id> names the writing object and its write;
 *                             <seq> (10 digits) orders the log.
 *
 * A write is one multi: setData(P) (create(P) when it is missing) and the
 * create of its entry, so P and the log never disagree. A write whose reply is
 * lost is resolved by looking for its entry (by <id>) once the connection or a
 * new session is back: found = applied, exactly once; not found and not
 * trimmed = not applied, made again; not found but possibly trimmed already
 * (the low-water mark passed every sequence it could have had) = ZKR_EUNKNOWN.
 *
 * Sequences are the server's (the journal node's child version), so they grow
 * but are not contiguous; a journal holds at most 2^31 - 1 writes in its life.
 * Deleting entries other than by zkr_journal_trim, or the journal node itself,
 * breaks the guarantees (followers report a deleted and re-created journal
 * node as RESTARTED).
 */
#ifndef ZKRECIPES_JOURNAL_H
#define ZKRECIPES_JOURNAL_H

#include <stdint.h>

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_journal zkr_journal_t;

/* The largest value a write takes, in bytes: the value goes into the request
 * twice (P and the entry), and the server refuses a request over its
 * jute.maxbuffer (1 MiB by default) by dropping the connection. */
#define ZKR_JOURNAL_MAX_DATA (480 * 1024)

/* A journal on path (the configuration node) on session s. Nothing is read or
 * written until a write, follow or trim. */
ZKR_API int zkr_journal_new(zkr_session_t *s, const char *path, zkr_journal_t **out);

/* ---- writing ---- */

/* rc 0 with the entry's sequence; or the error (ZKR_EINVAL: over
 * ZKR_JOURNAL_MAX_DATA; ZBADVERSION: version did not
 * match; ZNONODE: version given and P missing; ZKR_EUNKNOWN: the outcome could
 * not be told; ZKR_ETIMEDOUT: not written; ZKR_ECANCELED: the journal was
 * freed first). */
typedef void (*zkr_journal_write_cb)(zkr_journal_t *j, int rc, int64_t seq, void *arg);

/*
 * Write data (len bytes; NULL with len -1: no data) to P and log it, as one
 * transaction. version -1 writes whatever P holds (creating P and its parents
 * when missing); version >= 0 writes only if P is at that version. Writes of
 * one journal object are made one at a time, in the order called. timeout_ms:
 * -1 waits as long as it takes (across reconnects and expiry), 0 tries once
 * without waiting for a connection. cb runs exactly once in callback context,
 * unless this returns an error. Data is copied.
 */
ZKR_API int zkr_journal_write_async(zkr_journal_t *j, const char *data, int len,
                                    int version, int timeout_ms, zkr_journal_write_cb cb,
                                    void *arg);
/* The same, waiting for the outcome; *seq (may be NULL) gets the sequence.
 * ZKR_EDEADLK in callback context. */
ZKR_API int zkr_journal_write(zkr_journal_t *j, const char *data, int len, int version,
                              int timeout_ms, int64_t *seq);

/* ---- following ---- */

typedef enum zkr_journal_event_type {
  ZKR_JOURNAL_ENTRY = 1,     /* a logged change: seq, data, zxid, mtime */
  ZKR_JOURNAL_TRIMMED = 2,   /* entries after `from` up to and including seq were
                                trimmed before this follower read them: lost to it;
                                it goes on after seq */
  ZKR_JOURNAL_CAUGHT_UP = 3, /* once: every entry logged when following began
                                has been delivered (seq: the position now, -1: none) */
  ZKR_JOURNAL_RESTARTED = 4  /* the journal node was deleted and created again: its
                                sequences started over; the follower goes on from
                                the start of the new one (from: the old position) */
} zkr_journal_event_type_t;

/* One event; everything in it is borrowed for the duration of the callback. */
typedef struct zkr_journal_event {
  int type;         /* zkr_journal_event_type_t */
  int64_t seq;      /* ENTRY: its sequence; TRIMMED: the low-water mark */
  int64_t from;     /* the follower's position before the event (for an ENTRY,
                       the sequence delivered before it, or the start) */
  const char *data; /* ENTRY: the value written, not NUL-terminated (NULL: none) */
  int len;          /* its length, -1 when none */
  int64_t zxid;     /* ENTRY: the transaction that wrote it (P's mzxid then) */
  int64_t mtime;    /* ENTRY: when, in ms since the epoch (the server's clock) */
  int reserved[4];
} zkr_journal_event_t;

typedef void (*zkr_journal_listener_fn)(zkr_journal_t *j, const zkr_journal_event_t *ev,
                                        void *arg);

/*
 * Follow the log from after sequence `after` (-1: from the first entry there
 * is): fn gets every entry with a higher sequence, in order, exactly once,
 * then each new one as it is written, until the journal is freed. A position
 * kept by the caller (the seq of the last entry handled, saved with its
 * effects) resumes where it left off. The journal node may be absent: the
 * follower waits for it. Events run in callback context, one at a time.
 * ZKR_EBUSY if following already.
 */
ZKR_API int zkr_journal_follow(zkr_journal_t *j, int64_t after,
                               zkr_journal_listener_fn fn, void *arg);

/* The follower's position: the seq of the last entry delivered or trimmed past
 * (-1: none yet, or not following). */
ZKR_API int64_t zkr_journal_position(zkr_journal_t *j);

/* ---- trimming ---- */

/* rc 0 with the number of entries this trim deleted (a lower bound if a reply
 * was lost on the way), or the error. */
typedef void (*zkr_journal_trim_cb)(zkr_journal_t *j, int rc, int64_t deleted, void *arg);

/*
 * Delete the entries with a sequence up to up_to (INT64_MAX: all), keeping at
 * least the newest `keep` entries, and raise the low-water mark to the highest
 * sequence deleted. Followers behind it get TRIMMED. The caller picks up_to
 * below the positions of the followers it cares about. Deleted oldest first, in
 * transactions of at most 100 that each raise the mark with their deletes, so
 * the mark is right at every moment; two trims at once are safe. Queued with
 * the writes of this object; timeout_ms as for a write.
 */
ZKR_API int zkr_journal_trim_async(zkr_journal_t *j, int64_t up_to, int keep,
                                   int timeout_ms, zkr_journal_trim_cb cb, void *arg);
ZKR_API int zkr_journal_trim(zkr_journal_t *j, int64_t up_to, int keep, int timeout_ms,
                             int64_t *deleted);

/* Stop following, end queued writes and trims (ZKR_ECANCELED; ZKR_EUNKNOWN for
 * a write in flight) and free; no callback or event runs after this returns.
 * NULL is a no-op. */
ZKR_API void zkr_journal_free(zkr_journal_t *j);

/* A static name for an event type ("ENTRY", ...). */
ZKR_API const char *zkr_journal_event_name(int type);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_JOURNAL_H */
