/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/queue.h - a distributed work queue: every item taken exactly once.
 *
 * ZooKeeper is no broker: a queue of a few hundred items a second at most,
 * each well under 1 MiB, for low-volume coordination work (jobs handed to a
 * fleet, one-off tasks). Items are sequential children of the queue path P in
 * one of the formats other libraries write (a profile, chosen per queue
 * object; only items of that format are ever read or taken, others are left
 * alone):
 *   ZKR_QUEUE_CURATOR        P/queue-<seq> (or, with a priority,
 *                            P/queue-<sign><8 hex digits><seq>), data framed as
 *                            Apache Curator's ItemSerializer frames it
 *   ZKR_QUEUE_SIMPLE         P/qn-<seq>, raw: Curator SimpleDistributedQueue,
 *                            ZooKeeper's C and Java queue recipes
 *   ZKR_QUEUE_KAZOO          P/entry-<priority %03d>-<seq>, raw: kazoo Queue
 *   ZKR_QUEUE_KAZOO_LOCKING  P/entries/entry-<priority>-<seq>, raw, claims in
 *                            P/taken: kazoo LockingQueue
 * Items are taken in name order (as every library orders them): FIFO, and a
 * lower priority number first.
 *
 * Taking is by claim: an EPHEMERAL node C/<item> (C is P-claims, or P/taken
 * for kazoo's LockingQueue, which checks these claims too) owned by the
 * consumer's session. The item is handed over with the claim's czxid, a
 * fencing and deduplication key; commit is one transaction: the claim is
 * still ours, the item goes, the claim goes, and the caller's own ZooKeeper
 * ops apply, all or none, so writes made through ZooKeeper happen exactly
 * once with the consumption. A consumer that dies releases its claims with its
 * session and the item is delivered again; its late commit then fails. A
 * commit whose reply was lost is settled by looking at the claim: gone while
 * our session lives means committed. Libraries that take items without
 * claims (Curator without a lock path, kazoo's Queue, the ZooKeeper recipes)
 * do not see ours: sharing a path with them is at most once on their side.
 *
 * Putting is exactly once too: the item's create and a receipt P-receipts/
 * <putid> go in one transaction, so a put whose reply was lost is settled by
 * the receipt, never by a blind retry (the next put's transaction removes the
 * receipt, and freeing the object the last one). The receipt is ephemeral:
 * a producer that dies leaves none behind, and a put whose reply was lost
 * and whose session then expired is ZKR_EUNKNOWN (it may or may not be in).
 *
 * Consumers spread their claims over the head of the queue (a consumer picks
 * at random among the first available items, as many as there are claims
 * plus one: one consumer alone takes them strictly in order), and only a
 * consumer with nothing to take watches the queue. A consumer that met no
 * other one goes on from its last listing for up to 0.5 s: an item of a
 * higher priority put meanwhile is taken after that listing's.
 */
#ifndef ZKRECIPES_QUEUE_H
#define ZKRECIPES_QUEUE_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_queue zkr_queue_t;
typedef struct zkr_item zkr_item_t;

typedef enum zkr_queue_profile {
  ZKR_QUEUE_CURATOR = 0,
  ZKR_QUEUE_SIMPLE = 1,
  ZKR_QUEUE_KAZOO = 2,
  ZKR_QUEUE_KAZOO_LOCKING = 3
} zkr_queue_profile_t;

/* The largest item's data (the server's request limit is 1 MiB). */
#define ZKR_QUEUE_MAX_ITEM (1000 * 1000)

ZKR_API int zkr_queue_new(zkr_session_t *s, const char *path, int profile, zkr_queue_t **out);
/* A static name of a profile ("curator", "simple", "kazoo", "kazoo-locking"). */
ZKR_API const char *zkr_queue_profile_name(int profile);

/*
 * Put an item (len 0 .. ZKR_QUEUE_MAX_ITEM, else ZKR_EOVERFLOW). priority: kazoo
 * 0 .. 999 (kazoo's default is 100), Curator any int32 (0 writes a plain
 * queue- name), ZKR_QUEUE_SIMPLE 0 only. name (may be NULL) receives the
 * item's node name (empty when the put was settled by its receipt). Exactly
 * once: a lost reply is settled by the receipt; ZKR_EUNKNOWN when the session
 * expired before it could be.
 */
ZKR_API int zkr_queue_put(zkr_queue_t *q, const void *data, int len, int priority,
                          int timeout_ms, char *name, size_t name_size);

/* Take (claim) the first item available: ZKR_ETIMEDOUT if none in time. The
 * item is the caller's: commit, requeue or free it. */
ZKR_API int zkr_queue_take(zkr_queue_t *q, int timeout_ms, zkr_item_t **out);
typedef void (*zkr_queue_take_cb)(zkr_queue_t *q, int rc, zkr_item_t *item, void *arg);
ZKR_API int zkr_queue_take_async(zkr_queue_t *q, int timeout_ms, zkr_queue_take_cb cb,
                                 void *arg);

/* Items of this profile waiting or claimed, from the parent's child count
 * (no listing: other children on the path count too). */
ZKR_API int zkr_queue_length(zkr_queue_t *q, int timeout_ms, int *out);

/* A pending call ends with ZKR_ECANCELED. Items handed out stay valid. NULL: no-op. */
ZKR_API void zkr_queue_free(zkr_queue_t *q);

/* The item: its data (NUL-terminated for convenience), node name, priority,
 * and the claim's czxid (a fencing / deduplication token). */
ZKR_API const char *zkr_item_data(const zkr_item_t *it, int *len);
ZKR_API const char *zkr_item_name(const zkr_item_t *it);
ZKR_API int zkr_item_priority(const zkr_item_t *it);
ZKR_API int64_t zkr_item_token(const zkr_item_t *it);

/*
 * Commit: in one transaction, the claim is checked, the item and the claim are
 * deleted, and ops[0 .. nops-1] (the caller's, may be none) apply. 0:
 * consumed. ZKR_ELOST: our claim was gone (our session expired: the item is or
 * will be delivered to another consumer) or the item was taken by a consumer
 * that ignores claims; nothing of the transaction applied. ZKR_EUNKNOWN: the
 * reply was lost and the session expired before it could be settled. A
 * ZooKeeper error of one of the caller's ops (nothing applied, the claim is
 * still ours): results[] (nops + 3 entries, may be NULL) says which.
 */
ZKR_API int zkr_item_commit(zkr_item_t *it, const zoo_op_t *ops, int nops,
                            zoo_op_result_t *results, int timeout_ms);
/* Put it back at the end of the queue, keeping its priority, in one
 * transaction with the claim's check (ZKR_ELOST as for commit). */
ZKR_API int zkr_item_requeue(zkr_item_t *it, int timeout_ms);
/* Free the item; an item neither committed nor requeued is released (its
 * claim deleted): it is delivered again, to us or another consumer. */
ZKR_API void zkr_item_free(zkr_item_t *it);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_QUEUE_H */
