/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/election.h - leader election.
 *
 * Candidates queue EPHEMERAL_SEQUENTIAL children "_c_<uuid>-latch-N" (data = the
 * participant id) under the election path, the format of Curator's LeaderLatch,
 * so C and Java candidates can stand in one election. The lowest child leads; each
 * candidate watches only its predecessor.
 *
 * Epochs: the leader's epoch is the czxid of its node, which grows with every new
 * leadership across the ensemble: at most one leader per epoch. Hand the epoch to
 * what the leader writes to, or put zkr_election_guard() in your zoo_multi.
 *
 * Honesty: SUSPECT when the connection drops while leading (leadership uncertain:
 * stop acting as leader), RECOVERED only after the leader's node has been checked to
 * still exist and belong to this session, LOST when the session expired or the
 * node was gone.
 */
#ifndef ZKRECIPES_ELECTION_H
#define ZKRECIPES_ELECTION_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_election zkr_election_t;

typedef enum zkr_election_event {
  ZKR_ELECTION_LEADER = 1,     /* became leader; epoch is its token */
  ZKR_ELECTION_NOT_LEADER = 2, /* stopped leading by resigning */
  ZKR_ELECTION_SUSPECT = 3,    /* connection lost while leading or waiting */
  ZKR_ELECTION_RECOVERED = 4,  /* same session back, node checked: state unchanged */
  ZKR_ELECTION_LOST = 5        /* session expired (or node gone): not leading, not
                                  queued; rejoins by itself if asked to */
} zkr_election_event_t;

/* epoch: the leadership's token for LEADER (and RECOVERED while leading), else 0. */
typedef void (*zkr_election_listener_fn)(zkr_election_t *e, int event, int64_t epoch,
                                         void *arg);
typedef void (*zkr_election_cb)(zkr_election_t *e, int rc, int64_t epoch, void *arg);

/* A candidate for the election at path; id (id_len bytes, 1..1000000) is stored
 * as its node's data. Nothing is created before zkr_election_start(). */
ZKR_API int zkr_election_new(zkr_session_t *s, const char *path, const void *id,
                             int id_len, zkr_election_t **out);

/* Leave the election (the node is deleted) and free. Pending awaits complete with
 * ZKR_ECANCELED first. NULL is a no-op. */
ZKR_API void zkr_election_free(zkr_election_t *e);

/* One listener per candidate (NULL removes it). */
ZKR_API int zkr_election_set_listener(zkr_election_t *e, zkr_election_listener_fn fn,
                                      void *arg);

/* After LOST, join again on the new session by itself (default: no). */
ZKR_API int zkr_election_set_rejoin(zkr_election_t *e, int on);

/* Join: queue for leadership; returns once the request is on its way.
 * ZKR_EBUSY if already joined. */
ZKR_API int zkr_election_start(zkr_election_t *e);

/* Leave, as leader or while waiting (NOT_LEADER if it led): pending awaits end
 * with ZKR_ECANCELED; with rejoin, join again at the back of the queue.
 * ZKR_ENOTHELD if not joined. */
ZKR_API int zkr_election_resign(zkr_election_t *e, int rejoin);

/* 1 while this candidate leads (not SUSPECT), else 0. */
ZKR_API int zkr_election_is_leader(zkr_election_t *e);

/* Wait until this candidate leads: 0 with *epoch (may be NULL), ZKR_ETIMEDOUT,
 * ZKR_ENOTHELD if not joined, ZKR_ECANCELED if it resigned (with or without
 * rejoin), lost its place without rejoin, or was freed meanwhile.
 * timeout_ms 0 tries once: it waits only until this candidate's place in the
 * queue is known (a just-started candidate alone in the election leads), and
 * ends with ZKR_ETIMEDOUT when another candidate is ahead or the session is not
 * connected. */
ZKR_API int zkr_election_await(zkr_election_t *e, int timeout_ms, int64_t *epoch);
ZKR_API int zkr_election_await_async(zkr_election_t *e, int timeout_ms,
                                     zkr_election_cb cb, void *arg);

/* The current leadership's epoch; ZKR_ENOTHELD when not leading. */
ZKR_API int zkr_election_epoch(zkr_election_t *e, int64_t *epoch);

/* A check op on our node for a zoo_multi: the transaction commits only while we
 * lead. It names the node of this leadership (a later one, after a rejoin, does
 * not change it) and stays valid until zkr_election_free, or until 60 seconds
 * after a later leadership took a guard, whichever comes first (take a new op
 * for each transaction). ZKR_ENOTHELD when not leading. Prefer zoo_amulti: libzookeeper-mt's synchronous zoo_multi leaks
 * the per-op records of a transaction whose connection is lost. */
ZKR_API int zkr_election_guard(zkr_election_t *e, zoo_op_t *op);

/* For anyone, joined or not: the id of the current leader of the election at path
 * (*id is malloc'd, NUL-terminated, free with free(3)); ZNONODE when nobody leads.
 * zkr_contenders_list() gives the whole queue in order. */
ZKR_API int zkr_election_leader(zkr_session_t *s, const char *path, int timeout_ms,
                                char **id, int *id_len);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_ELECTION_H */
