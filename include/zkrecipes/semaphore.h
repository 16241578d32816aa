/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/semaphore.h - a counting semaphore: at most max leases at once.
 *
 * The nodes are those of Apache Curator's InterProcessSemaphoreV2, so Java
 * services using it (with the same maximum) share the path safely:
 *   P/locks/_c_<uuid>-lock-<seq>    the semaphore's mutex (a zkrecipes lock)
 *   P/leases/_c_<uuid>-lease-<seq>  one per lease, EPHEMERAL_SEQUENTIAL,
 *                                   data "zkr-lease <slot>/<max> <host>:<pid>"
 * An acquire takes the mutex, lists the leases, creates its lease nodes one
 * after another, each granted once at most max lease nodes exist (it waits
 * there, holding the mutex, while there are more), then releases the mutex.
 * Only the mutex holder ever creates a lease, so no more than max are held.
 * The maximum is a constant (zkr_semaphore_new) or the 4-byte big-endian value
 * of a counter node (zkr_semaphore_new_shared: Curator's SharedCount); with a
 * shared maximum every acquire reads it first, and a rise seen (watched)
 * while a lease waits makes it look at the leases again at once, so it is
 * granted if there is room now. A lowered maximum revokes
 * nothing: holders beyond it keep their leases until they release them.
 *
 * What other semaphores cannot tell you:
 *  - a fencing token per lease (its node's czxid, zkr_lock_token) and a guard
 *    op for a zoo_multi (zkr_lock_guard), as for the lock;
 *  - a slot number per lease (zkr_lease_slot), in [0, max) and unique among
 *    the zkrecipes leases held at once: usable as a worker id;
 *  - a maximum that differs between clients: another zkrecipes lease on the
 *    path written with another maximum makes the acquire fail with
 *    ZKR_EMISMATCH (Curator's lease data says nothing about its maximum: keep
 *    Java services configured alike);
 *  - another library's structure on the path (kazoo's leases P/<hex32>, or
 *    lock nodes of Curator's older InterProcessSemaphore directly under P),
 *    which would make both sides over-grant: ZKR_EFOREIGN, nothing created;
 *  - orphans: lease nodes left by an earlier session of this session object
 *    are deleted (swept) by the next acquire instead of starving capacity.
 *
 * A lease is a lock object (zkrecipes/lock.h) of kind ZKR_LOCK_LEASE: the
 * caller owns it and uses zkr_lock_token, zkr_lock_guard, zkr_lock_is_held and
 * zkr_lock_set_listener (SUSPECT / RECOVERED / LOST) on it; zkr_lock_release or
 * zkr_lock_free gives the lease back. It cannot be acquired again
 * (zkr_lock_acquire on it is ZKR_EINVAL); leases outlive their semaphore.
 */
#ifndef ZKRECIPES_SEMAPHORE_H
#define ZKRECIPES_SEMAPHORE_H

#include <zkrecipes/common.h>
#include <zkrecipes/lock.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_semaphore zkr_semaphore_t;

/* Which nodes a semaphore writes (see above for the default). */
typedef enum zkr_semaphore_profile {
  /* Curator InterProcessSemaphoreV2 (the default) */
  ZKR_SEMAPHORE_CURATOR = 0,
  /* kazoo's Semaphore:
   *   P-__lock__/<hex32>__lock__<seq>  the mutex, a lock with kazoo's names
   *   P/<hex32>                        one per lease, EPHEMERAL (not sequential)
   *   P's data                         the maximum in ASCII decimal ("3"): set
   *                                    when we create P, else compared (another
   *                                    value: ZKR_EMISMATCH; data that is not a
   *                                    number: ZKR_EFOREIGN, where kazoo would
   *                                    silently skip its check) */
  ZKR_SEMAPHORE_KAZOO = 1,
  /* zkrecipes only, no mutex: leases P/_c_<uuid>-lease-<seq>, a lease held
   * while fewer than max leases are ahead of it (first come, first served).
   * The first waiter watches the leases, every other waiter only the one right
   * ahead of it, whose grant (a rewrite of its data) or departure wakes it: one
   * wake-up per waiter per grant, and an acquire costs its create and a
   * listing instead of a mutex's cycle besides. One lease per acquire (n 1:
   * waiters taking several one by one could each hold some and wait for the
   * others' forever), and no slot (zkr_lease_slot is -1: the slot needs the
   * mutex). */
  ZKR_SEMAPHORE_NATIVE = 2
} zkr_semaphore_profile_t;

/* A semaphore on path with a constant maximum (1 .. 100000). */
ZKR_API int zkr_semaphore_new(zkr_session_t *s, const char *path, int max,
                              zkr_semaphore_t **out);
/* The same in another profile (zkr_semaphore_profile_t). */
ZKR_API int zkr_semaphore_new_profile(zkr_session_t *s, const char *path, int max,
                                      int profile, zkr_semaphore_t **out);
/* A static name of a profile ("curator", "kazoo", "native"), NULL if none. */
ZKR_API const char *zkr_semaphore_profile_name(int profile);
/* A semaphore on path whose maximum is the value of count_path (a 4-byte
 * big-endian integer, Curator's SharedCount; zkr_counter with ZKR_COUNTER_INT32
 * writes it). A missing node reads as 0: nothing is granted until it is set.
 * Profile ZKR_SEMAPHORE_CURATOR. */
ZKR_API int zkr_semaphore_new_shared(zkr_session_t *s, const char *path,
                                     const char *count_path, zkr_semaphore_t **out);

/* The maximum as last known (a shared one: as last read or watched). */
ZKR_API int zkr_semaphore_max(zkr_semaphore_t *sem);

/*
 * Acquire n leases (1 .. max; 1 in the native profile) at once: all or none. timeout_ms as for
 * zkr_lock_acquire (-1 waits as long as it takes, 0 tries once, > 0 at most
 * that long): ZKR_ETIMEDOUT, and every lease node of the attempt removed. On
 * success leases[0 .. n-1] are the caller's lock objects. ZKR_EBUSY while an
 * acquire is pending on this object (use one object per thread).
 */
ZKR_API int zkr_semaphore_acquire(zkr_semaphore_t *sem, int n, int timeout_ms,
                                  zkr_lock_t **leases);
/* cb runs once; leases (n of them on success, else NULL) is valid during the
 * call only: keep the pointers, which are the caller's. */
typedef void (*zkr_semaphore_cb)(zkr_semaphore_t *sem, int rc, zkr_lock_t **leases, int n,
                                 void *arg);
ZKR_API int zkr_semaphore_acquire_async(zkr_semaphore_t *sem, int n, int timeout_ms,
                                        zkr_semaphore_cb cb, void *arg);
/* End the pending acquire: its callback runs with ZKR_ECANCELED (before this
 * returns, outside callbacks) and no lease of it is left. ZKR_ENOTHELD if none. */
ZKR_API int zkr_semaphore_cancel(zkr_semaphore_t *sem);

/* A lease's slot: in [0, max), unique among zkrecipes leases held at once on
 * the path; -1 for another lock object, or when it could not be recorded. */
ZKR_API int zkr_lease_slot(zkr_lock_t *lease);

/* Orphaned lease nodes this object deleted so far (see above). */
ZKR_API uint64_t zkr_semaphore_swept(zkr_semaphore_t *sem);

/* End a pending acquire (ZKR_ECANCELED) and free the object; leases already
 * handed out stay the caller's. NULL: no-op. */
ZKR_API void zkr_semaphore_free(zkr_semaphore_t *sem);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_SEMAPHORE_H */
