/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/queue.h - the sequential-node queue engine. Not installed.
 *
 * A queue entry is one place in the queue of EPHEMERAL_SEQUENTIAL children of a
 * path: "_c_<guid>-<tag>-<seq>" (Curator's protected names). The engine owns
 * the protocol: create2 with the listing pipelined behind it, GUID recovery of
 * an ambiguous create with the owner check, ordering of every known format
 * (names.c), the watch on one node only, the listing again when that node
 * vanished or changed, the check of a held node after a reconnect, the grant
 * mark for fast failover, and handing every node it no longer wants to the
 * janitor. The recipe gives the grant rule and hears the outcome through hooks.
 *
 * The entry lives inside the recipe object and under its mutex: every function
 * and hook here runs with o->mu held. The recipe's object ops hand its session
 * events and its resume to the engine (zkr__queue_obj_*).
 */
#ifndef ZKR_QUEUE_H
#define ZKR_QUEUE_H

#include "object.h"

typedef struct zkr__queue zkr__queue_t;

typedef struct zkr__queue_stats {
  uint64_t lists;         /* getChildren sent */
  uint64_t watches;       /* watches set */
  uint64_t notifications; /* watch events received */
  uint64_t grants;
  uint64_t grants_without_list; /* the watched node was the last obstacle: held at once */
  uint64_t pred_vanished;       /* the node to watch was gone before the watch */
  uint64_t pred_changed_unseen; /* ... its data changed there (listed again) */
  uint64_t recoveries;          /* ambiguous creates resolved by GUID */
  uint64_t verify_failed;       /* held, but the node was gone after a reconnect */
  int next_in_line;             /* now: watching the last obstacle (its departure
                                   grants without a listing) */
  int guard_paths;              /* now: copies of node paths kept for guard ops */
} zkr__queue_stats_t;

/* How long a guard op (zkr_lock_guard, zkr_election_guard) stays good after a
 * later grant took one: its copy of the node path is freed then. A variable
 * for the tests. */
#define ZKR__GUARD_GRACE_MS 60000
ZKR__HIDDEN extern int zkr__guard_grace_ms;

/*
 * The grant rule. decide() sees the contenders in queue order (n of them) and
 * our index me: it returns true if we hold; otherwise it names in *watch the one
 * node whose departure or change can matter to us (an index < me), and sets
 * *last if its departure alone grants us (no listing needed then); *watch -1
 * waits on any change among the children instead (a child watch on the path:
 * for rules where no single node tells).
 */
typedef struct zkr__queue_rule zkr__queue_rule_t;
typedef bool (*zkr__decide_fn)(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                               int n, int me, int *watch, bool *last);
struct zkr__queue_rule {
  const char *tag;    /* the name's marker, before the sequence: "lock-",
                         "latch-", "__READ__", "__WRIT__" */
  int order_mode;     /* zkr__children_order's latch_mode: which formats count */
  bool mark_on_grant; /* rewrite our node once granted (see zkr__queue_mark) */
  int limit;          /* zkr__rule_first_n: how many hold at once */
  const _Atomic int *max; /* zkr__rule_count: the maximum, read at each decision */
  bool count_all;         /* decide's n counts every child, known format or not */
  int naming;             /* ZKR__NAMES_*: how our node is named */
  zkr__decide_fn decide;
};

/* How an entry names its node (the GUID lets an ambiguous create be found). */
enum {
  ZKR__NAMES_PROTECTED = 0, /* _c_<uuid36>-<tag><seq>: Curator's protected names */
  ZKR__NAMES_KAZOO,         /* <hex32><tag><seq>: kazoo's Lock ("__lock__") */
  ZKR__NAMES_GUID           /* <hex32>, EPHEMERAL, not sequential (kazoo's
                               Semaphore lease; with count_all rules only) */
};

/* The lowest holds; watch the one right ahead (lock, election). */
ZKR__HIDDEN bool zkr__rule_exclusive(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                                     int n, int me, int *watch, bool *last);
/* A reader holds while no writer is ahead; it watches the nearest writer ahead,
 * whose departure grants it when it is the only one (read/write lock). */
ZKR__HIDDEN bool zkr__rule_read(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                                int n, int me, int *watch, bool *last);
/* The first rule->limit hold (semaphore); behind them, any departure ahead
 * matters, so the children are watched. */
ZKR__HIDDEN bool zkr__rule_first_n(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                                   int n, int me, int *watch, bool *last);

/* Every contender holds while there are at most *rule->max children (with
 * count_all: every child, as Curator counts them; Curator's
 * InterProcessSemaphoreV2 lease rule: safe whatever the order; live when one
 * contender at a time waits, which its mutex ensures); the children are watched. */
ZKR__HIDDEN bool zkr__rule_count(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                                 int n, int me, int *watch, bool *last);

/* Every contender holds while fewer than *rule->max contenders are ahead of it
 * (a herd-free semaphore without a mutex): the first one waiting watches the
 * children (a departure of any holder grants it), each one behind it watches
 * the one right ahead (its grant mark or departure makes it list again). */
ZKR__HIDDEN bool zkr__rule_rank(const zkr__queue_rule_t *rule, const zkr__child_t *c,
                                int n, int me, int *watch, bool *last);

/* Outcomes, with o->mu held (add effects; do not call into the queue's sends). */
enum { ZKR__Q_SUSPECT = 1, ZKR__Q_RECOVERED, ZKR__Q_LOST };
typedef struct zkr__queue_hooks {
  /* Granted: state HELD, the token fields are set. */
  void (*granted)(zkr__queue_t *q, zkr__fx_t *fx);
  /* The attempt ended with rc (its node handed to the janitor): state IDLE. */
  void (*failed)(zkr__queue_t *q, int rc, zkr__fx_t *fx);
  /* The attempt waits: behind another node, or for the connection (may be NULL). */
  void (*waiting)(zkr__queue_t *q, zkr__fx_t *fx);
  /* Ownership news: SUSPECT (connection lost while acquiring or held),
   * RECOVERED (back; a held node was checked), LOST (session expired or the
   * held node gone: if it was held, state is IDLE now). */
  void (*event)(zkr__queue_t *q, int ev, zkr__fx_t *fx);
} zkr__queue_hooks_t;

enum { ZKR__Q_IDLE = 0, ZKR__Q_ACQUIRING, ZKR__Q_HELD };

struct zkr__queue {
  zkr__obj_t *o;
  const zkr__queue_rule_t *rule;
  const zkr__queue_hooks_t *hooks;
  char *path;

  /* (o->mu) */
  int state;    /* ZKR__Q_* */
  bool suspect; /* SUSPECT told, RECOVERED/LOST not yet */
  char *data;   /* node data */
  int data_len;
  struct ACL_vector acl; /* deep copy; count 0 = the session's */

  /* the attempt */
  bool try_once; /* end (ZKR_ETIMEDOUT or the error) wherever it would wait */
  char guid[37];
  uint64_t gen; /* session generation of this attempt */
  uint32_t create_tok, list_tok, watch_tok, owner_tok, verify_tok;
  int parent_rounds;
  int parent_err;       /* a parent create failed with this */
  bool have_node;       /* node_path is ours and exists (as far as we know) */
  bool ambiguous;       /* our create may have happened: recover by GUID */
  bool recovering;      /* the current listing is a GUID search */
  char *pred;           /* the node we watch (server-given: no length limit of ours) */
  bool pred_last;       /* ... its departure grants us */
  bool pred_unreadable; /* ... refused our read (ZNOAUTH): child watches instead */
  int32_t pred_ver;     /* its data version our last listing is known to follow */
  bool pred_ver_next;   /* a listing after its data changed: adopt the next version */
  bool keep_watch;      /* listing again with the watch on it still set */
  int unknown_seen;     /* unknown children in the last listing (for the log) */

  /* our node; a guard op points into node_path: rewritten only by a new attempt */
  char node_path[ZKR__PATH_MAX + 64];
  const char *node_name;
  int32_t seq;
  int64_t czxid;
  int64_t sid;

  /* Guard ops name the node of the grant they were taken for: a copy of its
   * path per grant, newest first, kept for a grace after a later grant's
   * guard (node_path is rewritten by the next attempt, e.g. a rejoin, and a
   * stale guard must not pass by it; see zkr__queue_guard). */
  struct zkr__guard_path *guard_paths;
  bool guard_current; /* guard_paths' head is this grant's */

  int64_t started_ns; /* when the acquire began, for the debug trace */
  bool waited;        /* the attempt waited (counted once in the statistics) */
  int64_t granted_ns; /* when it was granted */

  zkr__queue_stats_t stats;
};

/* Set up q inside object o for path (checked by the caller); node data defaults
 * to "host:pid". */
ZKR__HIDDEN int zkr__queue_init(zkr__queue_t *q, zkr__obj_t *o, const char *path,
                                const zkr__queue_rule_t *rule,
                                const zkr__queue_hooks_t *hooks);
ZKR__HIDDEN void zkr__queue_fini(zkr__queue_t *q);
/* Node data and ACL for the next attempts (copied; ZKR_EBUSY unless IDLE). */
ZKR__HIDDEN int zkr__queue_set_data(zkr__queue_t *q, const void *data, int len);
ZKR__HIDDEN int zkr__queue_set_acl(zkr__queue_t *q, const struct ACL_vector *acl);

/* Queue: state ACQUIRING, the hooks tell the outcome. Non-zero: nothing was left
 * behind, state is IDLE again and no hook runs. */
ZKR__HIDDEN int zkr__queue_start(zkr__queue_t *q, bool try_once);
/* End the pending attempt quietly (no hook) for the reason why (ZKR_ETIMEDOUT:
 * its deadline, ZKR_ECANCELED: the caller's doing, else the error; for the
 * trace and the statistics): its node, known or suspected, goes to the
 * janitor. State IDLE. No-op unless ACQUIRING. */
ZKR__HIDDEN void zkr__queue_leave(zkr__queue_t *q, int why);
/* Give up the held node: the janitor deletes it and calls done (may be NULL).
 * State IDLE at once. ZKR_ENOTHELD unless HELD. */
ZKR__HIDDEN int zkr__queue_release(zkr__queue_t *q, zkr__done_fn done, void *arg);
/* A check op on the held node for the caller's multi (ZKR_ENOTHELD unless
 * HELD): its path stays valid, and names this grant's node, until the entry
 * goes. */
ZKR__HIDDEN int zkr__queue_guard(zkr__queue_t *q, zoo_op_t *op);
/* Rewrite the held node's data unchanged, so that the one watching it hears a
 * change and lists again, off the critical path of the next hand-over. */
ZKR__HIDDEN int zkr__queue_mark(zkr__queue_t *q);

/* Rewrite the held node's data with data (copied: the data of the next attempts
 * too); step sees the reply (ZNONODE: the node is gone). */
ZKR__HIDDEN int zkr__queue_rewrite(zkr__queue_t *q, const void *data, int len,
                                   zkr__step_fn step);

/* The rule's input changed (a semaphore's maximum): a waiting attempt lists
 * again to decide anew. No-op when nothing waits or a listing is on its way. */
ZKR__HIDDEN int zkr__queue_relist(zkr__queue_t *q);

/* A node made for this entry by someone else's transaction (a downgrade:
 * created in the same multi that deleted the node of another entry): IDLE ->
 * HELD on it, with its token; no hook runs. ZKR_EBUSY unless IDLE. */
ZKR__HIDDEN int zkr__queue_adopt(zkr__queue_t *q, const char *node_path, int64_t czxid,
                                 int64_t sid, uint64_t gen, const char *guid);
/* HELD -> IDLE without a delete: the node is gone by the caller's doing. */
ZKR__HIDDEN void zkr__queue_disown(zkr__queue_t *q);

/* A copy of the statistics, with next_in_line as of now (takes o->mu). */
ZKR__HIDDEN int zkr__queue_stats(zkr__queue_t *q, zkr__queue_stats_t *out);

/* The object ops of a recipe that is one queue entry and nothing else to free:
 * session events and resume go to the entry; destroy frees the entry, the base
 * and the struct (which starts with its zkr__obj_t). */
ZKR__HIDDEN void zkr__queue_obj_on_session(zkr__obj_t *o, int event, zkr__fx_t *fx);
ZKR__HIDDEN void zkr__queue_obj_resume(zkr__obj_t *o, zkr__fx_t *fx);
ZKR__HIDDEN void zkr__queue_obj_destroy(zkr__obj_t *o);

#endif /* ZKR_QUEUE_H */
