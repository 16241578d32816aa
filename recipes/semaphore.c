/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counting semaphore (Curator InterProcessSemaphoreV2's nodes).
 *
 * Znodes under the semaphore path P:
 *   P/locks/_c_<uuid>-lock-<seq>    the mutex: a zkrecipes lock on P/locks
 *   P/leases/_c_<uuid>-lease-<seq>  EPHEMERAL_SEQUENTIAL (a lock object of kind
 *                                   lease), data "zkr-lease <slot>/<max> <host>:<pid>"
 *                                   ("?" for a slot not known yet)
 * Curator writes the same names (its lease data is opaque to it) and counts
 * every child of P/leases; so do we (a child in no known format counts too).
 *
 * Algorithm of an acquire of n leases, a chain of asynchronous steps:
 *   1. the mutex, with what is left of the deadline;
 *   2. the first acquire of an object, and every one with a shared maximum,
 *      reads at once: the children of P (another library's structure:
 *      ZKR_EFOREIGN, nothing created), the leases with their data and the
 *      counter node; later ones list the leases beside step 3's first create.
 *      The listing sweeps orphans of earlier sessions of ours (deleted at
 *      once: a lease may be waiting for them) and finds zkrecipes leases of
 *      another maximum (ZKR_EMISMATCH);
 *   3. lease after lease: create (data slot "?"), granted while at most max
 *      lease nodes exist, else wait for the leases to change (zkr__rule_count,
 *      in the queue engine, which also resolves a create whose reply was lost
 *      and hands every node it gives up to the janitor). Once granted, its
 *      slot: the smallest one free in the listing (still free: under the mutex
 *      holders only leave), or, if none was, free in a new listing; recorded
 *      by a setData not waited for (it precedes the mutex's release in this
 *      session's order, so the next holder of the mutex sees it);
 *   4. the mutex is released (the delete is on its way) and the caller told.
 * Any failure frees the leases of the attempt (their nodes deleted), releases
 * the mutex and reports rc: all or none.
 *
 * Invariant: only the holder of the mutex creates leases, and a lease holds
 * only while the lease nodes number at most max (whatever their order, so a
 * lease re-queued without the mutex after a session expiry over-grants
 * nothing either; see zkr__rule_count).
 *
 * Profiles (zkrecipes/semaphore.h). kazoo's: the same chain with the mutex at
 * P-__lock__ under kazoo's lock names (zkr__lock_new_kazoo), leases P/<hex32>
 * (EPHEMERAL, not sequential: the queue engine's ZKR__NAMES_GUID), the count
 * of every child of P, and the maximum in P's data, read beside the leases'
 * listing in step 2 (written when we make P, or when P has no data).
 * The native one has no mutex and no slot: the chain starts at step 2 (the
 * first acquire of an object lists P and checks it) or 3, and a lease holds
 * while fewer than max leases are ahead of it in sequence order
 * (zkr__rule_rank). Why that never grants more than max: sequence numbers
 * only grow, so the leases ahead of a given one only leave, never come; a
 * lease granted with fewer than max ahead has fewer than max ahead from then
 * on. Take the newest holder at any moment: every other holder is older, so
 * ahead of it, so they are fewer than max, and the holders at most max. (As
 * for any lock, a holder cut off from the ensemble may believe it holds after
 * its node is gone: the fencing token protects the resource then.)
 *
 * Locking: sem->mu guards the pending acquire pointer, closing and the refs;
 * an acquire's fields are touched by one step at a time (the chain), except
 * canceled (atomic). The semaphore is reference counted (the user and each
 * pending acquire), so that a chain ending after zkr_semaphore_free from a
 * callback still finds it.
 */
#include "internal.h"
#include "object.h"
#include "recipes_internal.h"
#include "zkrecipes/contenders.h"
#include "zkrecipes/counter.h"
#include "zkrecipes/semaphore.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MAX 100000
#define LIST_CHUNK_MS 5000 /* a listing waits this long at most, then again */

typedef struct acq acq_t;

struct zkr_semaphore {
  zkr_session_t *s;
  int profile; /* ZKR_SEMAPHORE_* */
  char *path, *leases_path, *locks_path;
  zkr_lock_t *mutex; /* NULL in the native profile */
  zkr_counter_t *count; /* shared maximum, else NULL */
  _Atomic int max;
  _Atomic uint64_t swept;
  _Atomic int top_checked; /* the path's structure was found to be ours once */
  char host[300]; /* "<host>:<pid>" for the lease data */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* (mu) */
  int refs;
  acq_t *acq;         /* the pending acquire */
  zkr_lock_t *waiting; /* the lock object it waits on now (mutex or lease) */
};

enum { STEP_MUTEX = 1, STEP_READ, STEP_LEASE, STEP_SLOT };

struct acq {
  zkr_semaphore_t *sem;
  int n, got;
  zkr_lock_t **leases; /* n */
  int *slots;          /* n: recorded once granted */
  int64_t deadline;    /* ms; -1 none */
  bool once;           /* timeout 0: try once */
  zkr_semaphore_cb cb;
  void *arg;
  _Atomic int canceled;
  int step;

  /* step 2 */
  int reads, rc, lease_rc;
  int p_rounds;      /* kazoo: reads of P's data so far */
  char *p_data;      /* kazoo: P's data (NUL-terminated), NULL if none */
  int32_t p_version; /* ... and its version */
  bool listed; /* ls is a listing of the leases taken under the mutex */
  zkr_contender_t *top, *ls;
  int ntop, nls;
  int64_t count;
  bool have_count;
};

static void sem_unref(zkr_semaphore_t *sem);

/* ---- steps ---- */

/* What is left of the deadline for the next step: -1 none, 0 try once; -2 past. */
static int remaining(const acq_t *a, int cap) {
  int64_t left;
  if (a->once)
    return 0;
  if (a->deadline < 0)
    return cap;
  left = a->deadline - zkr__now_ms();
  if (left <= 0)
    return -2;
  return cap > 0 && left > cap ? cap : (int)left;
}

static void lease_data(const acq_t *a, int slot, char *buf, size_t size, int *len) {
  char s[16] = "?";
  if (slot >= 0)
    snprintf(s, sizeof(s), "%d", slot);
  *len = snprintf(buf, size, "zkr-lease %s/%d %s", s, atomic_load(&a->sem->max),
                  a->sem->host);
  if (*len < 0 || (size_t)*len >= size)
    *len = (int)strlen(buf);
}

/* The chain ends: the mutex goes, the leases of a failed attempt too, the
 * caller is told, and the object may take the next acquire. */
static void finish(acq_t *a, int rc) {
  zkr_semaphore_t *sem = a->sem;
  bool ok = rc == 0;

  if (sem->mutex && zkr_lock_is_held(sem->mutex))
    (void)zkr_lock_release(sem->mutex, 0);
  pthread_mutex_lock(&sem->mu);
  sem->waiting = NULL;
  pthread_mutex_unlock(&sem->mu);
  if (!ok) {
    for (int i = 0; i < a->n; i++)
      zkr_lock_free(a->leases[i]); /* deletes its node, if any */
  }
  zkr__log(ok ? ZKR_LOG_DEBUG : ZKR_LOG_INFO, "semaphore %s: acquire of %d: %s", sem->path,
           a->n, ok ? "granted" : zkr_strerror(rc));
  pthread_mutex_lock(&sem->mu);
  sem->acq = NULL;
  pthread_cond_broadcast(&sem->cv);
  pthread_mutex_unlock(&sem->mu);
  a->cb(sem, rc, ok ? a->leases : NULL, ok ? a->n : 0, a->arg);
  zkr_contenders_free(a->top, a->ntop);
  zkr_contenders_free(a->ls, a->nls);
  free(a->p_data);
  free(a->leases);
  free(a->slots);
  free(a);
  sem_unref(sem);
}

static void set_waiting(acq_t *a, zkr_lock_t *l, int step) {
  pthread_mutex_lock(&a->sem->mu);
  a->sem->waiting = l;
  a->step = step;
  pthread_mutex_unlock(&a->sem->mu);
}

static void on_lease(zkr_lock_t *l, int rc, void *arg);
static void on_lease_fast(zkr_lock_t *l, int rc, void *arg);
static void on_leases_fast(int rc, zkr_contender_t *list, int count, void *arg);
static void start_reads(acq_t *a);

/* Create lease a->got (its slot is recorded once it is granted) and wait for
 * it; its outcome goes to cb. */
static int send_lease(acq_t *a, zkr_lock_cb cb) {
  zkr_semaphore_t *sem = a->sem;
  char data[400];
  int len, rc, rem = remaining(a, -1);

  if (rem == -2)
    return ZKR_ETIMEDOUT;
  lease_data(a, -1, data, sizeof(data), &len);
  if ((rc = zkr__lease_new(sem->s, sem->leases_path, sem->profile, atomic_load(&sem->max),
                           data, len, &a->leases[a->got])) != 0)
    return rc;
  set_waiting(a, a->leases[a->got], STEP_LEASE);
  return zkr__lease_acquire_async(a->leases[a->got], rem, cb, a);
}

static void start_lease(acq_t *a) {
  int rc;
  if (atomic_load(&a->canceled))
    finish(a, ZKR_ECANCELED);
  else if ((rc = send_lease(a, on_lease)) != 0)
    finish(a, rc);
}

static void next_lease(acq_t *a) {
  if (++a->got < a->n)
    start_lease(a);
  else
    finish(a, atomic_load(&a->canceled) ? ZKR_ECANCELED : 0);
}

static void on_slot_set(zkr_lock_t *l, int rc, void *arg) {
  (void)arg;
  if (rc != 0) {
    zkr__lease_note_slot(l, -1);
    zkr__log(ZKR_LOG_WARN, "semaphore lease %s: its slot could not be recorded: %s",
             zkr_lock_path(l), zkr_strerror(rc));
  }
}

/* Smallest slot in [0, max) that no listed zkrecipes lease (nor taken[0..nt))
 * claims; -1 if none. */
static int free_slot(const zkr_contender_t *ls, int nls, const int *taken, int nt, int max) {
  for (int s = 0; s < max; s++) {
    bool used = false;
    for (int i = 0; i < nls && !used; i++) {
      int slot, m;
      used = ls[i].data && sscanf(ls[i].data, "zkr-lease %d/%d", &slot, &m) == 2 &&
             slot == s;
    }
    for (int i = 0; i < nt && !used; i++)
      used = taken[i] == s;
    if (!used)
      return s;
  }
  return -1;
}

/* Record slot in the granted lease a->got's node. The setData is not waited
 * for: it goes ahead of the mutex's release on this session, so the next
 * holder of the mutex reads it; a failure is logged (the slot becomes -1). */
static void record_slot(acq_t *a, int slot) {
  zkr_lock_t *l = a->leases[a->got];
  char data[400];
  int len, rc;

  a->slots[a->got] = slot;
  lease_data(a, slot, data, sizeof(data), &len);
  if ((rc = zkr__lease_set_slot_async(l, slot, data, len, on_slot_set, NULL)) != 0)
    on_slot_set(l, rc, NULL);
}

static void on_relisted(int rc, zkr_contender_t *list, int count, void *arg) {
  acq_t *a = arg;
  int slot = -1;

  if (rc == 0) {
    zkr_contenders_free(a->ls, a->nls);
    a->ls = list; /* our own node says "?": it claims nothing */
    a->nls = count;
    a->listed = true;
    slot = free_slot(a->ls, a->nls, a->slots, a->got, atomic_load(&a->sem->max));
  }
  if (slot >= 0) {
    record_slot(a, slot);
  } else {
    a->slots[a->got] = -1;
    zkr__lease_note_slot(a->leases[a->got], -1);
    zkr__log(ZKR_LOG_WARN, "semaphore %s: no slot for a lease: %s", a->sem->path,
             rc != 0 ? zkr_strerror(rc) : "every slot is claimed");
  }
  next_lease(a);
}

/* Lease a->got is granted (under the mutex: nobody else creates one). A slot
 * free in the listing is free still (holders only leave meanwhile); if none
 * was, one of them left for us to be granted: list again. */
static void lease_granted(acq_t *a) {
  int rc, rem,
      slot = a->listed ? free_slot(a->ls, a->nls, a->slots, a->got, atomic_load(&a->sem->max))
                       : -1;

  set_waiting(a, NULL, STEP_SLOT);
  if (a->sem->profile == ZKR_SEMAPHORE_NATIVE) { /* no mutex: no slot */
    a->slots[a->got] = -1;
    zkr__lease_note_slot(a->leases[a->got], -1);
    next_lease(a);
    return;
  }
  if (slot >= 0) {
    record_slot(a, slot);
    next_lease(a);
    return;
  }
  rem = remaining(a, LIST_CHUNK_MS);
  if (rem == -2 || rem == 0)
    rem = 1000; /* granted already: a short look */
  if ((rc = zkr_contenders_list_async(a->sem->s, a->sem->leases_path, rem, on_relisted, a)) !=
      0)
    on_relisted(rc, NULL, 0, a);
}

static void on_lease(zkr_lock_t *l, int rc, void *arg) {
  (void)l;
  if (rc != 0)
    finish(arg, rc);
  else
    lease_granted(arg);
}

/* Another profile's or library's structure directly under P? */
static const char *foreign(int profile, const zkr_contender_t *c) {
  bool dirs = strcmp(c->name, "locks") == 0 || strcmp(c->name, "leases") == 0,
       kazoo = strlen(c->name) == 32 && strspn(c->name, "0123456789abcdef") == 32;
  if (dirs)
    return profile == ZKR_SEMAPHORE_CURATOR ? NULL
                                            : "Curator InterProcessSemaphoreV2's structure";
  if (kazoo)
    return profile == ZKR_SEMAPHORE_KAZOO ? NULL : "a kazoo Semaphore lease";
  if (c->format == ZKR_FORMAT_CURATOR_LEASE && profile == ZKR_SEMAPHORE_NATIVE)
    return NULL;
  if (c->format == ZKR_FORMAT_CURATOR_LEASE)
    return "a lease of a zkrecipes native semaphore";
  if (c->format != ZKR_FORMAT_UNKNOWN)
    return "a lock or semaphore node directly under the path (Curator's "
           "InterProcessSemaphore v1, a mutex, or kazoo)";
  return NULL;
}

static const char *const profile_names[] = {"curator", "kazoo", "native"};
static const char *const profile_what[] = {"Curator InterProcessSemaphoreV2's structure",
                                           "kazoo Semaphore's structure",
                                           "a zkrecipes native semaphore's structure"};

/* The leases listed: sweep orphans of earlier sessions of ours (they claim no
 * slot then); ZKR_EMISMATCH for a zkrecipes lease of another maximum. */
static int check_leases(acq_t *a) {
  zkr_semaphore_t *sem = a->sem;
  int64_t current = zkr_session_id(sem->s);
  int max = atomic_load(&sem->max);

  for (int i = 0; i < a->nls; i++) {
    zkr_contender_t *c = &a->ls[i];
    char slot[16];
    int m;
    if (c->owner_session && c->owner_session != current &&
        zkr__session_was_ours(sem->s, c->owner_session)) {
      char *p = zkr__path_join(sem->leases_path, c->name);
      zkr__log(ZKR_LOG_INFO, "semaphore %s: deleting %s, an orphan of our session 0x%llx",
               sem->path, c->name, (unsigned long long)c->owner_session);
      if (p && zkr__janitor_delete(sem->s, zkr__session_gen(sem->s), p, NULL, NULL) == 0)
        atomic_fetch_add(&sem->swept, 1);
      free(p);
      free(c->data); /* it claims no slot */
      c->data = NULL;
      c->data_len = -1;
      continue;
    }
    /* "zkr-lease <slot or ?>/<max> ..." */
    if (c->data && sscanf(c->data, "zkr-lease %15[0-9?]/%d", slot, &m) == 2 && m != max) {
      zkr__log(ZKR_LOG_ERROR,
               "semaphore %s: lease %s was taken with maximum %d, ours is %d: "
               "configure every client alike",
               sem->path, c->name, m, max);
      return ZKR_EMISMATCH;
    }
  }
  return 0;
}

/* ---- kazoo: the maximum in P's data ---- */

static void on_p_set(void *ctx, int rc, const zkr__reply_t *r) {
  zkr_semaphore_t *sem = ctx;
  (void)r;
  if (rc != ZOK)
    zkr__log(ZKR_LOG_INFO, "semaphore %s: the maximum was not written into its data: %s",
             sem->path, zkr_strerror(rc));
  sem_unref(sem);
}

/* P's data, read with the leases: kazoo's maximum. None (a P made by someone
 * else): ours is written there, if P did not change meanwhile, for the next
 * kazoo client to check (not waited for). Another number: ZKR_EMISMATCH.
 * Anything else: ZKR_EFOREIGN (kazoo would skip its check). */
static int check_kazoo_max(acq_t *a) {
  zkr_semaphore_t *sem = a->sem;
  int max = atomic_load(&sem->max);
  const char *d = a->p_data;
  char *end, buf[16];
  long v;
  zkr__call_t c;

  while (d && (*d == ' ' || *d == '\t' || *d == '\n' || *d == '\r'))
    d++;
  if (!d || !*d) {
    int len = snprintf(buf, sizeof(buf), "%d", max);
    pthread_mutex_lock(&sem->mu);
    sem->refs++;
    pthread_mutex_unlock(&sem->mu);
    if (zkr__call_begin(sem->s, 0, ZKR__K_SET, on_p_set, sem, &c) != 0 ||
        zkr__call_end(&c, zoo_aset(c.zh, sem->path, buf, len, a->p_version, zkr__cb_stat,
                                   c.op)) != 0)
      sem_unref(sem);
    return 0;
  }
  v = strtol(d, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
    end++;
  if (*end || end == d) {
    zkr__log(ZKR_LOG_ERROR,
             "semaphore %s: its data is not a kazoo maximum (a number): the path is used "
             "for something else",
             sem->path);
    return ZKR_EFOREIGN;
  }
  if (v != max) {
    zkr__log(ZKR_LOG_ERROR,
             "semaphore %s: its maximum is %ld (the path's data), ours is %d: configure "
             "every client alike",
             sem->path, v, max);
    return ZKR_EMISMATCH;
  }
  return 0;
}

static void read_done(acq_t *a, int rc);
static void send_p_read(acq_t *a);

/* A connection-class failure of a P read: the listing beside it waits for the
 * connection, and the reads are made again (see after_reads). */
static int p_rc(int rc) {
  return zkr__rc_class(rc) == ZKR__RC_CONN || rc == ZINVALIDSTATE ? ZKR_ETIMEDOUT : rc;
}

static void on_p_created(void *ctx, int rc, const zkr__reply_t *r) {
  acq_t *a = ctx;
  char buf[16];
  (void)r;
  if (rc == ZOK) {
    snprintf(buf, sizeof(buf), "%d", atomic_load(&a->sem->max));
    if (!(a->p_data = strdup(buf)))
      rc = ZKR_ENOMEM;
    read_done(a, rc);
  } else if (rc == ZNODEEXISTS && a->p_rounds < 3) {
    send_p_read(a); /* made meanwhile: read it */
  } else {
    read_done(a, p_rc(rc));
  }
}

static void on_p_read(void *ctx, int rc, const zkr__reply_t *r) {
  acq_t *a = ctx;
  zkr__call_t c;
  char buf[16];
  int len;

  if (rc == ZOK) {
    a->p_version = r->stat ? r->stat->version : -1;
    if (r->data && r->data_len > 0) {
      if (!(a->p_data = malloc((size_t)r->data_len + 1))) {
        read_done(a, ZKR_ENOMEM);
        return;
      }
      memcpy(a->p_data, r->data, (size_t)r->data_len);
      a->p_data[r->data_len] = '\0';
    }
    read_done(a, 0);
    return;
  }
  if (rc != ZNONODE) {
    read_done(a, p_rc(rc));
    return;
  }
  /* No P yet: make it, with our maximum (its parent is there: the mutex's). */
  len = snprintf(buf, sizeof(buf), "%d", atomic_load(&a->sem->max));
  if ((rc = zkr__call_begin(a->sem->s, 0, ZKR__K_CREATE, on_p_created, a, &c)) != 0 ||
      (rc = zkr__call_end(&c, zoo_acreate(c.zh, a->sem->path, buf, len,
                                          zkr_session_acl(a->sem->s), 0, zkr__cb_string,
                                          c.op))) != 0)
    read_done(a, p_rc(rc));
}

static void send_p_read(acq_t *a) {
  zkr__call_t c;
  int rc;
  a->p_rounds++;
  free(a->p_data);
  a->p_data = NULL;
  if ((rc = zkr__call_begin(a->sem->s, 0, ZKR__K_GET, on_p_read, a, &c)) != 0 ||
      (rc = zkr__call_end(&c, zoo_aget(c.zh, a->sem->path, 0, zkr__cb_data, c.op))) != 0)
    read_done(a, p_rc(rc));
}

static void after_reads(acq_t *a) {
  zkr_semaphore_t *sem = a->sem;
  const zkr_contender_t *top;
  int max, rc, ntop;

  if (a->rc == ZKR_ETIMEDOUT && remaining(a, -1) != -2 && !a->once) {
    start_reads(a); /* a listing waited its chunk (no connection): again */
    return;
  }
  if (a->rc != 0) {
    finish(a, a->rc);
    return;
  }
  if (atomic_load(&a->canceled)) {
    finish(a, ZKR_ECANCELED);
    return;
  }
  if (a->have_count) {
    int m = a->count < 0 ? 0 : a->count > MAX_MAX ? MAX_MAX : (int)a->count;
    atomic_store(&sem->max, m);
  }
  max = atomic_load(&sem->max);
  /* (kazoo's and native leases are P's children: one listing) */
  top = sem->profile == ZKR_SEMAPHORE_CURATOR ? a->top : a->ls;
  ntop = sem->profile == ZKR_SEMAPHORE_CURATOR ? a->ntop : a->nls;
  for (int i = 0; i < ntop; i++) {
    const char *what = foreign(sem->profile, &top[i]);
    if (what) {
      zkr__log(ZKR_LOG_ERROR, "semaphore %s: %s is there (%s): not %s; both would over-grant",
               sem->path, top[i].name, what, profile_what[sem->profile]);
      finish(a, ZKR_EFOREIGN);
      return;
    }
  }
  if (sem->profile == ZKR_SEMAPHORE_KAZOO && (rc = check_kazoo_max(a)) != 0) {
    finish(a, rc);
    return;
  }
  atomic_store(&sem->top_checked, 1);
  a->listed = true;
  if ((rc = check_leases(a)) != 0) {
    finish(a, rc);
    return;
  }
  if (a->n > max) {
    finish(a, max > 0 ? ZKR_EOVERFLOW : ZKR_ETIMEDOUT);
    return;
  }
  start_lease(a);
}

static void read_done(acq_t *a, int rc) {
  bool last;
  pthread_mutex_lock(&a->sem->mu);
  if (rc != 0 && a->rc == 0)
    a->rc = rc;
  last = --a->reads == 0;
  pthread_mutex_unlock(&a->sem->mu);
  if (last)
    after_reads(a);
}

static void on_top(int rc, zkr_contender_t *list, int count, void *arg) {
  acq_t *a = arg;
  a->top = list;
  a->ntop = count;
  read_done(a, rc);
}

static void on_leases(int rc, zkr_contender_t *list, int count, void *arg) {
  acq_t *a = arg;
  a->ls = list;
  a->nls = count;
  read_done(a, rc);
}

static void on_count(zkr_counter_t *c, int rc, int64_t value, void *arg) {
  acq_t *a = arg;
  (void)c;
  if (rc == 0) {
    a->count = value;
    a->have_count = true;
  }
  read_done(a, rc);
}

/* The first acquire of the object, and every one with a shared maximum: the
 * reads first (the path's structure, the leases, the maximum), then the
 * leases. */
static void start_reads(acq_t *a) {
  zkr_semaphore_t *sem = a->sem;
  int rem = remaining(a, LIST_CHUNK_MS), rc;

  if (rem == -2) {
    finish(a, ZKR_ETIMEDOUT);
    return;
  }
  zkr_contenders_free(a->top, a->ntop);
  zkr_contenders_free(a->ls, a->nls);
  a->top = a->ls = NULL;
  a->ntop = a->nls = 0;
  a->rc = 0;
  a->p_rounds = 0;
  /* one for this function, until all are sent; P's children (Curator); the
   * leases; the shared maximum (Curator) or P's data (kazoo) */
  a->reads = 2 + (sem->profile == ZKR_SEMAPHORE_CURATOR) + (sem->count != NULL) +
             (sem->profile == ZKR_SEMAPHORE_KAZOO);
  if (sem->profile == ZKR_SEMAPHORE_CURATOR &&
      (rc = zkr_contenders_list_async(sem->s, sem->path, rem, on_top, a)) != 0)
    read_done(a, rc);
  if ((rc = zkr_contenders_list_async(sem->s, sem->leases_path, rem, on_leases, a)) != 0)
    read_done(a, rc);
  if (sem->count && (rc = zkr_counter_get_async(sem->count, rem, on_count, a)) != 0)
    read_done(a, rc);
  if (sem->profile == ZKR_SEMAPHORE_KAZOO)
    send_p_read(a);
  read_done(a, 0);
}

/* The fast way, once the path's structure was checked and the maximum is a
 * constant: the first lease is created at once, beside the listing of the
 * leases (which sweeps and checks the maxima as soon as it comes). */
static void fast_done(acq_t *a) {
  bool last;
  int rc;
  pthread_mutex_lock(&a->sem->mu);
  last = --a->reads == 0;
  pthread_mutex_unlock(&a->sem->mu);
  if (!last)
    return;
  if (a->rc == ZKR_EMISMATCH)
    finish(a, a->rc); /* the listing's verdict wins */
  else if ((rc = a->lease_rc) != 0)
    finish(a, rc);
  else
    lease_granted(a); /* without a listing (it failed), the slot is looked up again */
}

static void on_lease_fast(zkr_lock_t *l, int rc, void *arg) {
  acq_t *a = arg;
  (void)l;
  a->lease_rc = rc;
  fast_done(a);
}

static void on_leases_fast(int rc, zkr_contender_t *list, int count, void *arg) {
  acq_t *a = arg;
  zkr_lock_t *w = NULL;

  a->ls = list;
  a->nls = count;
  a->listed = rc == 0;
  if (rc == 0)
    rc = check_leases(a); /* orphans go now: our lease may be waiting for them */
  if (rc == ZKR_EMISMATCH) {
    pthread_mutex_lock(&a->sem->mu);
    if ((w = a->sem->waiting) != NULL)
      zkr__lock_ref(w, 1);
    pthread_mutex_unlock(&a->sem->mu);
  }
  pthread_mutex_lock(&a->sem->mu);
  a->rc = rc;
  pthread_mutex_unlock(&a->sem->mu);
  if (w) {
    (void)zkr_lock_cancel(w); /* its own callback counts it done */
    zkr__lock_ref(w, -1);
  }
  fast_done(a);
}

static void on_mutex(zkr_lock_t *l, int rc, void *arg) {
  acq_t *a = arg;
  zkr_semaphore_t *sem = a->sem;
  int rem;
  (void)l;
  set_waiting(a, NULL, STEP_READ);
  if (rc != 0) {
    finish(a, rc);
  } else if (atomic_load(&a->canceled)) {
    finish(a, ZKR_ECANCELED);
  } else if (sem->count || !atomic_load(&sem->top_checked) || a->n > atomic_load(&sem->max)) {
    start_reads(a);
  } else if ((rem = remaining(a, LIST_CHUNK_MS)) == -2) {
    finish(a, ZKR_ETIMEDOUT);
  } else if (sem->profile == ZKR_SEMAPHORE_NATIVE) {
    start_lease(a); /* no mutex, no slot: nothing to list */
  } else {
    a->rc = a->lease_rc = 0;
    a->reads = 3; /* the listing, the first lease, and this function */
    if ((rc = zkr_contenders_list_async(sem->s, sem->leases_path, rem == 0 ? 1000 : rem,
                                        on_leases_fast, a)) != 0)
      on_leases_fast(rc, NULL, 0, a);
    if ((rc = send_lease(a, on_lease_fast)) != 0) {
      if (a->leases[a->got]) /* made but not started: nothing to wait for */
        set_waiting(a, NULL, STEP_READ);
      on_lease_fast(NULL, rc, a);
    }
    fast_done(a);
  }
}

/* The native profile has no mutex: the chain starts on the worker thread, as
 * a callback would. */
static void start_native(void *arg) {
  acq_t *a = arg;
  zkr_session_t *s = a->sem->s;
  zkr__dispatch_enter(s);
  on_mutex(NULL, 0, a);
  zkr__dispatch_leave(s);
}

/* ---- public ---- */

static void sem_unref(zkr_semaphore_t *sem) {
  bool last;
  pthread_mutex_lock(&sem->mu);
  last = --sem->refs == 0;
  pthread_mutex_unlock(&sem->mu);
  if (!last)
    return;
  zkr_lock_free(sem->mutex);
  zkr_counter_free(sem->count);
  pthread_cond_destroy(&sem->cv);
  pthread_mutex_destroy(&sem->mu);
  free(sem->path);
  free(sem->leases_path);
  free(sem->locks_path);
  free(sem);
}

static void on_count_change(zkr_counter_t *c, int64_t value, int32_t version, void *arg) {
  zkr_semaphore_t *sem = arg;
  int m = value < 0 ? 0 : value > MAX_MAX ? MAX_MAX : (int)value;
  (void)c, (void)version;
  atomic_store(&sem->max, m);
  pthread_mutex_lock(&sem->mu);
  if (sem->acq && sem->waiting && sem->acq->step == STEP_LEASE)
    zkr__lease_set_max(sem->waiting, m); /* a rise: it looks at the leases again */
  pthread_mutex_unlock(&sem->mu);
}

static int sem_new(zkr_session_t *s, const char *path, int max, const char *count_path,
                   int profile, zkr_semaphore_t **out) {
  zkr_semaphore_t *sem;
  char host[256];
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(path) != 0 ||
      (count_path && zkr__recipe_path_check(count_path) != 0) ||
      (!count_path && (max < 1 || max > MAX_MAX)) || strlen(path) > 1000 ||
      !zkr_semaphore_profile_name(profile))
    return ZKR_EINVAL;
  if (!(sem = calloc(1, sizeof(*sem))))
    return ZKR_ENOMEM;
  sem->s = s;
  sem->profile = profile;
  sem->refs = 1;
  atomic_init(&sem->max, count_path ? 0 : max);
  atomic_init(&sem->swept, 0);
  atomic_init(&sem->top_checked, 0);
  pthread_mutex_init(&sem->mu, NULL);
  pthread_cond_init(&sem->cv, NULL);
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "unknown");
  host[sizeof(host) - 1] = '\0';
  snprintf(sem->host, sizeof(sem->host), "%s:%ld", host, (long)getpid());
  if (!(sem->path = strdup(path))) {
    rc = ZKR_ENOMEM;
  } else if (profile == ZKR_SEMAPHORE_CURATOR) {
    if (!(sem->leases_path = zkr__path_join(path, "leases")) ||
        !(sem->locks_path = zkr__path_join(path, "locks")))
      rc = ZKR_ENOMEM;
    else if ((rc = zkr_lock_new(s, sem->locks_path, &sem->mutex)) == 0 && count_path &&
             (rc = zkr_counter_new(s, count_path, ZKR_COUNTER_INT32, &sem->count)) == 0)
      rc = zkr_counter_set_listener(sem->count, on_count_change, sem);
  } else if (!(sem->leases_path = strdup(path)) ||
             !(sem->locks_path = malloc(strlen(path) + sizeof("-__lock__")))) {
    rc = ZKR_ENOMEM;
  } else {
    sprintf(sem->locks_path, "%s-__lock__", path); /* kazoo's, beside P */
    rc = profile == ZKR_SEMAPHORE_KAZOO ? zkr__lock_new_kazoo(s, sem->locks_path, &sem->mutex)
                                        : 0;
  }
  if (rc != 0) {
    sem_unref(sem);
    return rc;
  }
  *out = sem;
  return 0;
}

int zkr_semaphore_new(zkr_session_t *s, const char *path, int max, zkr_semaphore_t **out) {
  return sem_new(s, path, max, NULL, ZKR_SEMAPHORE_CURATOR, out);
}

int zkr_semaphore_new_profile(zkr_session_t *s, const char *path, int max, int profile,
                              zkr_semaphore_t **out) {
  return sem_new(s, path, max, NULL, profile, out);
}

int zkr_semaphore_new_shared(zkr_session_t *s, const char *path, const char *count_path,
                             zkr_semaphore_t **out) {
  if (!count_path)
    return out ? (*out = NULL, ZKR_EINVAL) : ZKR_EINVAL;
  return sem_new(s, path, 0, count_path, ZKR_SEMAPHORE_CURATOR, out);
}

const char *zkr_semaphore_profile_name(int profile) {
  return profile >= ZKR_SEMAPHORE_CURATOR && profile <= ZKR_SEMAPHORE_NATIVE
             ? profile_names[profile]
             : NULL;
}

int zkr_semaphore_max(zkr_semaphore_t *sem) {
  return sem ? atomic_load(&sem->max) : ZKR_EINVAL;
}

uint64_t zkr_semaphore_swept(zkr_semaphore_t *sem) {
  return sem ? atomic_load(&sem->swept) : 0;
}

int zkr_semaphore_acquire_async(zkr_semaphore_t *sem, int n, int timeout_ms,
                                zkr_semaphore_cb cb, void *arg) {
  acq_t *a;
  int rc;

  if (!sem || !cb || timeout_ms < -1 || n < 1 || n > MAX_MAX ||
      (n > 1 && sem->profile == ZKR_SEMAPHORE_NATIVE))
    return ZKR_EINVAL;
  if (!sem->count && n > atomic_load(&sem->max))
    return ZKR_EOVERFLOW; /* could never be granted */
  if (!(a = calloc(1, sizeof(*a))) || !(a->leases = calloc((size_t)n, sizeof(*a->leases))) ||
      !(a->slots = calloc((size_t)n, sizeof(*a->slots)))) {
    if (a)
      free(a->leases);
    free(a);
    return ZKR_ENOMEM;
  }
  a->sem = sem;
  a->n = n;
  a->cb = cb;
  a->arg = arg;
  a->once = timeout_ms == 0;
  a->deadline = timeout_ms > 0 ? zkr__now_ms() + timeout_ms : -1;
  atomic_init(&a->canceled, 0);
  pthread_mutex_lock(&sem->mu);
  if (sem->acq) {
    pthread_mutex_unlock(&sem->mu);
    free(a->leases);
    free(a->slots);
    free(a);
    return ZKR_EBUSY;
  }
  sem->acq = a;
  sem->refs++;
  sem->waiting = sem->mutex;
  a->step = STEP_MUTEX;
  pthread_mutex_unlock(&sem->mu);
  rc = sem->mutex ? zkr_lock_acquire_async(sem->mutex, timeout_ms, on_mutex, a)
                  : zkr__worker_post(start_native, a); /* the callback never runs in here */
  if (rc != 0) {
    pthread_mutex_lock(&sem->mu);
    sem->acq = NULL;
    sem->waiting = NULL;
    sem->refs--;
    pthread_cond_broadcast(&sem->cv);
    pthread_mutex_unlock(&sem->mu);
    free(a->leases);
    free(a->slots);
    free(a);
  }
  return rc;
}

typedef struct {
  zkr__sync_t y;
  zkr_lock_t **out;
} sync_acq_t;

static void sync_cb(zkr_semaphore_t *sem, int rc, zkr_lock_t **leases, int n, void *arg) {
  sync_acq_t *w = arg;
  (void)sem;
  for (int i = 0; i < n; i++)
    w->out[i] = leases[i];
  zkr__sync_signal(&w->y, rc);
}

int zkr_semaphore_acquire(zkr_semaphore_t *sem, int n, int timeout_ms, zkr_lock_t **leases) {
  sync_acq_t w = {.out = leases};
  int rc;

  if (!sem || !leases || timeout_ms < -1)
    return ZKR_EINVAL;
  if ((rc = zkr__sync_init(&w.y)) != 0)
    return rc;
  return zkr__sync_wait(&w.y, zkr_semaphore_acquire_async(sem, n, timeout_ms, sync_cb, &w));
}

int zkr_semaphore_cancel(zkr_semaphore_t *sem) {
  acq_t *a;
  zkr_lock_t *w;

  if (!sem)
    return ZKR_EINVAL;
  pthread_mutex_lock(&sem->mu);
  if (!(a = sem->acq)) {
    pthread_mutex_unlock(&sem->mu);
    return ZKR_ENOTHELD;
  }
  atomic_store(&a->canceled, 1);
  if ((w = sem->waiting) != NULL)
    zkr__lock_ref(w, 1); /* the chain may free it meanwhile: kept in memory */
  pthread_mutex_unlock(&sem->mu);
  if (w) {
    (void)zkr_lock_cancel(w); /* ENOTHELD: it was granted meanwhile; the chain sees canceled */
    zkr__lock_ref(w, -1);
  }
  if (!zkr__in_callback()) {
    pthread_mutex_lock(&sem->mu);
    while (sem->acq == a)
      pthread_cond_wait(&sem->cv, &sem->mu);
    pthread_mutex_unlock(&sem->mu);
  }
  return 0;
}

void zkr_semaphore_free(zkr_semaphore_t *sem) {
  if (!sem)
    return;
  (void)zkr_semaphore_cancel(sem);
  sem_unref(sem);
}
