/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recipes/recipes_internal.h - what the recipes give the tests, benchmarks and
 * the fault suite (statistics and test hooks). Not installed; not for the core.
 */
#ifndef ZKR_RECIPES_INTERNAL_H
#define ZKR_RECIPES_INTERNAL_H

#include "queue.h"

/* The queue statistics of a lock or of a candidate. */
ZKR__HIDDEN int zkr__lock_stats(zkr_lock_t *l, zkr__queue_stats_t *out);
ZKR__HIDDEN int zkr__election_stats(zkr_election_t *e, zkr__queue_stats_t *out);
/* Awaits of a candidate still pending (tests). */
ZKR__HIDDEN int zkr__election_awaiting(zkr_election_t *e);

typedef struct zkr__counter_stats {
  uint64_t reads, writes;
  uint64_t conflicts;            /* writes that lost to another writer */
  uint64_t ambiguous;            /* writes whose reply was lost */
  uint64_t resolved_applied;     /* ... found applied by their marker */
  uint64_t resolved_not_applied; /* ... found not applied, written again */
  uint64_t unknown;              /* operations ended with ZKR_EUNKNOWN */
  uint64_t cache_dropped;        /* the cache was emptied: P changed behind us */
  uint64_t incarnation_races;    /* a write landed on a node re-created just before */
  int64_t write_rtt_us;          /* the running write round-trip estimate (backoff) */
} zkr__counter_stats_t;
ZKR__HIDDEN int zkr__counter_stats(zkr_counter_t *c, zkr__counter_stats_t *out);

typedef struct zkr__journal_stats {
  uint64_t writes;       /* writes that ended applied */
  uint64_t ambiguous;    /* writes whose reply was lost */
  uint64_t found;        /* ... found applied by their entry */
  uint64_t rewritten;    /* ... found not applied, written again */
  uint64_t unknown;      /* writes ended with ZKR_EUNKNOWN */
} zkr__journal_stats_t;
ZKR__HIDDEN int zkr__journal_stats(zkr_journal_t *j, zkr__journal_stats_t *out);

/* The member engine (recipes/member.c) for other recipes: a node parent/name
 * kept there while wanted, with the member's ownership rules. PERSISTENT: a
 * persistent node (an existing persistent node is ours, updated in place);
 * KEEP_ON_FREE: freeing the object leaves the node (leave deletes it). */
enum { ZKR__MEMBER_PERSISTENT = 1, ZKR__MEMBER_KEEP_ON_FREE = 2 };
ZKR__HIDDEN int zkr__member_new(zkr_session_t *s, const char *parent, const char *name,
                                int flags, zkr_member_t **out);

/* A semaphore's lease (recipes/semaphore.c): a lock object of kind
 * ZKR_LOCK_LEASE on leases_path in the semaphore's profile (ZKR_SEMAPHORE_*),
 * granted while at most max leases exist (native: fewer than max ahead)
 * (zkr__lease_set_max changes it; a waiting lease lists again on a rise); acquired once, by
 * the semaphore only. set_slot rewrites the held node's data and tells cb the
 * setData's outcome. */
ZKR__HIDDEN int zkr__lease_new(zkr_session_t *s, const char *leases_path, int profile,
                               int max, const void *data, int len, zkr_lock_t **out);
/* An exclusive lock with kazoo's names (<hex32>__lock__<seq>), which kazoo's
 * Lock sees as contenders: a kazoo semaphore's mutex. */
ZKR__HIDDEN int zkr__lock_new_kazoo(zkr_session_t *s, const char *path, zkr_lock_t **out);
ZKR__HIDDEN int zkr__lease_acquire_async(zkr_lock_t *l, int timeout_ms, zkr_lock_cb cb,
                                         void *arg);
ZKR__HIDDEN void zkr__lease_set_max(zkr_lock_t *l, int max);
ZKR__HIDDEN int zkr__lease_set_slot_async(zkr_lock_t *l, int slot, const void *data,
                                          int len, zkr_lock_cb cb, void *arg);
ZKR__HIDDEN void zkr__lease_note_slot(zkr_lock_t *l, int slot);
/* Keep a lock object in memory (+1) past a zkr_lock_free, or let it go (-1):
 * calls on a freed one find it idle. */
ZKR__HIDDEN void zkr__lock_ref(zkr_lock_t *l, int delta);

/* Claims a queue object lost to another consumer so far (recipes/workqueue.c). */
typedef struct zkr_queue zkr_queue_t;
ZKR__HIDDEN uint64_t zkr__workqueue_races(zkr_queue_t *q);

#endif /* ZKR_RECIPES_INTERNAL_H */
