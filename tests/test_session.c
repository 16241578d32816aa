/* SPDX-License-Identifier: Apache-2.0 */
/* The session wrapper against real servers: the standalone test server and the
 * 3-node ensemble started by tests/zk/with-zk.sh. */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <time.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "suites.h"
#include "testutil.h"

/* A loopback port nobody listens on: bind to port 0, note the port, close. */
static int dead_port(void) {
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  ck_assert_int_ge(fd, 0);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* Connect, check the basics, and do a raw round trip through the escape hatch. */
static void connect_and_use(const char *hosts) {
  zkr_session_t *s = NULL;
  tu_rec_t rec;
  char root[64];
  zhandle_t *zh;

  tu_rec_init(&rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_IDLE);
  ck_assert_ptr_null(zkr_session_zhandle(s));
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  ck_assert_int_eq(zkr_session_set_timeout(s, 6000), 0);
  ck_assert_int_eq(zkr_session_connect(s, hosts, 15000), 0);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_CONNECTED);
  ck_assert_msg(zkr_session_id(s) != 0, "no session id");
  ck_assert_int_gt(zkr_session_negotiated_timeout(s), 0);
  /* Configuration is frozen once connected. */
  ck_assert_int_eq(zkr_session_set_timeout(s, 1000), ZKR_EBUSY);
  ck_assert_int_eq(zkr_session_connect(s, hosts, 1000), ZKR_EBUSY);
  ck_assert_int_ge(tu_rec_wait(&rec, 0, ZKR_SESSION_CONNECTED, 5000), 0);
  ck_assert_int_eq(rec.sid[0], zkr_session_id(s));

  zh = zkr_session_zhandle(s);
  ck_assert_ptr_nonnull(zh);
  tu_root(root, sizeof(root));
  ck_assert_int_eq(zoo_create(zh, root, "x", 1, zkr_session_acl(s), 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_exists(zh, root, 0, NULL), ZOK);
  tu_rmr(zh, root);
  zkr_session_free(s);
  /* Exactly one CONNECTED, then the CLOSED that free announces. */
  ck_assert_int_eq(tu_rec_count(&rec), 2);
  ck_assert_int_eq(rec.ev[1], ZKR_SESSION_CLOSED);
  tu_rec_destroy(&rec);
}

START_TEST(connect_standalone) {
  connect_and_use(tu_hosts());
}
END_TEST

START_TEST(connect_ensemble) {
  const char *e = tu_ensemble();
  if (!e)
    TU_SKIP("no ensemble to test against");
  connect_and_use(e);
}
END_TEST

START_TEST(open_convenience_and_chroot) {
  char root[64], chrooted[512], path[128];
  zkr_session_t *a = tu_open(tu_hosts(), 6000), *b;
  zhandle_t *za = zkr_session_zhandle(a);

  tu_root(root, sizeof(root));
  ck_assert_int_eq(zoo_create(za, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(chrooted, sizeof(chrooted), "%s%s", tu_hosts(), root);
  b = tu_open(chrooted, 6000);
  ck_assert_int_eq(zoo_create(zkr_session_zhandle(b), "/inside", "1", 1,
                              &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                   ZOK);
  snprintf(path, sizeof(path), "%s/inside", root);
  ck_assert_int_eq(zoo_exists(za, path, 0, NULL), ZOK);
  zkr_session_free(b);
  tu_rmr(za, root);
  zkr_session_free(a);
}
END_TEST

START_TEST(connect_timeout_no_server) {
  char hosts[64];
  zkr_session_t *s = NULL;
  int64_t t0, elapsed;
  int rc;

  snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", dead_port());
  t0 = tu_now_ms();
  rc = zkr_session_open(hosts, 5000, 1000, &s);
  elapsed = tu_now_ms() - t0;
  ck_assert_int_eq(rc, ZKR_ETIMEDOUT);
  ck_assert_ptr_null(s);
  ck_assert_msg(elapsed >= 995 && elapsed <= 1000 + 400,
                "timed out after %lld ms, want 1000 ms + a small margin",
                (long long)elapsed);

  /* The explicit form leaves the session IDLE and ready to try again. */
  ck_assert_int_eq(zkr_session_new(&s), 0);
  t0 = tu_now_ms();
  ck_assert_int_eq(zkr_session_connect(s, hosts, 500), ZKR_ETIMEDOUT);
  elapsed = tu_now_ms() - t0;
  ck_assert_msg(elapsed >= 495 && elapsed <= 500 + 400, "took %lld ms",
                (long long)elapsed);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_IDLE);
  ck_assert_ptr_null(zkr_session_zhandle(s));
  ck_assert_int_eq(zkr_session_wait_connected(s, 100), ZINVALIDSTATE);
  ck_assert_int_eq(zkr_session_connect(s, tu_hosts(), 15000), 0);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_CONNECTED);
  zkr_session_free(s);
}
END_TEST

/* Async completions: count calls and remember the code. */
typedef struct {
  pthread_mutex_t mu;
  int calls;
  int rc;
  int in_cb_deadlk; /* what a blocking call returned from inside the callback */
} acb_t;

static void acb_fn(zkr_session_t *s, int rc, void *arg) {
  acb_t *a = arg;
  int dl = zkr_session_wait_connected(s, 1000);
  pthread_mutex_lock(&a->mu);
  a->calls++;
  a->rc = rc;
  a->in_cb_deadlk = dl;
  pthread_mutex_unlock(&a->mu);
}

static int acb_calls(acb_t *a) {
  int n;
  pthread_mutex_lock(&a->mu);
  n = a->calls;
  pthread_mutex_unlock(&a->mu);
  return n;
}

static void acb_wait(acb_t *a, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  while (acb_calls(a) == 0 && tu_now_ms() < deadline)
    usleep(2000);
}

START_TEST(connect_async_once) {
  acb_t ok = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0};
  acb_t late = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0};
  acb_t cancel = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0};
  char dead[64];
  zkr_session_t *s, *t, *u;

  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_connect_async(s, tu_hosts(), 15000, acb_fn, &ok), 0);
  acb_wait(&ok, 15000);
  ck_assert_int_eq(acb_calls(&ok), 1);
  ck_assert_int_eq(ok.rc, 0);
  ck_assert_int_eq(ok.in_cb_deadlk, ZKR_EDEADLK);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_CONNECTED);

  snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port());
  ck_assert_int_eq(zkr_session_new(&t), 0);
  ck_assert_int_eq(zkr_session_connect_async(t, dead, 300, acb_fn, &late), 0);
  acb_wait(&late, 5000);
  ck_assert_int_eq(late.rc, ZKR_ETIMEDOUT);

  /* Freeing with a connect pending runs the callback once, before free returns. */
  ck_assert_int_eq(zkr_session_new(&u), 0);
  ck_assert_int_eq(zkr_session_connect_async(u, dead, 60000, acb_fn, &cancel), 0);
  zkr_session_free(u);
  ck_assert_int_eq(acb_calls(&cancel), 1);
  ck_assert_int_eq(cancel.rc, ZKR_ECANCELED);

  usleep(300 * 1000); /* a second call would come within this time; none may */
  ck_assert_int_eq(acb_calls(&ok), 1);
  ck_assert_int_eq(acb_calls(&late), 1);
  ck_assert_int_eq(acb_calls(&cancel), 1);
  zkr_session_free(t);
  zkr_session_free(s);
}
END_TEST

START_TEST(expiry_lost_then_connected_new_id) {
  const char *hosts = tu_hosts();
  zkr_session_t *s;
  tu_rec_t rec;
  char root[64], eph[128];
  int64_t old_id, new_id;
  int lost, conn, i;

  tu_rec_init(&rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  ck_assert_int_eq(zkr_session_set_timeout(s, 4000), 0);
  ck_assert_int_eq(zkr_session_connect(s, hosts, 15000), 0);
  old_id = zkr_session_id(s);
  tu_root(root, sizeof(root));
  snprintf(eph, sizeof(eph), "%s-eph", root);
  ck_assert_int_eq(zoo_create(zkr_session_zhandle(s), eph, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL, NULL, 0),
                   ZOK);

  tu_expire(s, hosts);
  lost = tu_rec_wait(&rec, 1, ZKR_SESSION_LOST, 20000);
  ck_assert_msg(lost > 0, "no LOST after server-side expiry");
  conn = tu_rec_wait(&rec, lost + 1, ZKR_SESSION_CONNECTED, 20000);
  ck_assert_msg(conn > lost, "no CONNECTED after LOST");
  /* Before LOST only connection changes of the same session may show (the clone
   * takes the connection over for a moment). */
  for (i = 1; i < lost; i++)
    ck_assert_msg(rec.ev[i] == ZKR_SESSION_SUSPENDED ||
                      rec.ev[i] == ZKR_SESSION_RECONNECTED,
                  "event %d before LOST: %s", i, zkr_session_event_name(rec.ev[i]));
  new_id = rec.sid[conn];
  ck_assert_msg(new_id != 0 && new_id != old_id, "session id did not change");
  ck_assert_int_eq(zkr_session_wait_connected(s, 10000), 0);
  ck_assert_int_eq(zkr_session_id(s), new_id);
  /* The old session's ephemeral is gone; the new session works. */
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s), eph, 0, NULL), ZNONODE);
  ck_assert_int_eq(zoo_create(zkr_session_zhandle(s), eph, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  zkr_session_free(s);
  tu_rec_destroy(&rec);
}
END_TEST

START_TEST(standalone_restart_suspended_then_reconnected) {
  const char *dir = tu_zkdir("standalone");
  zkr_session_t *s;
  tu_rec_t rec;
  int64_t id;
  int susp, rec_i;

  if (!dir)
    TU_SKIP("the test server is not ours to restart");
  tu_rec_init(&rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  /* Long enough to outlive a server restart (JVM start included). */
  ck_assert_int_eq(zkr_session_set_timeout(s, 30000), 0);
  ck_assert_int_eq(zkr_session_connect(s, tu_hosts(), 15000), 0);
  id = zkr_session_id(s);

  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s 1", dir), 0);
  susp = tu_rec_wait(&rec, 1, ZKR_SESSION_SUSPENDED, 15000);
  ck_assert_msg(susp > 0, "no SUSPENDED after the server was killed");
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_SUSPENDED);
  ck_assert_int_eq(zkr_session_id(s), id);
  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s 1", dir), 0);
  rec_i = tu_rec_wait(&rec, susp + 1, ZKR_SESSION_RECONNECTED, 30000);
  ck_assert_msg(rec_i > susp, "no RECONNECTED after the server came back");
  ck_assert_int_eq(rec.sid[rec_i], id);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_CONNECTED);
  ck_assert_int_lt(tu_rec_wait(&rec, 0, ZKR_SESSION_LOST, 0), 0);
  zkr_session_free(s);
  tu_rec_destroy(&rec);
}
END_TEST

START_TEST(ensemble_member_killed_session_moves) {
  const char *hosts = tu_ensemble(), *dir = tu_zkdir("ensemble");
  zkr_session_t *s;
  tu_rec_t rec;
  char member[16], before[64], after[64];
  int64_t id;
  int susp, rec_i;

  if (!hosts || !dir)
    TU_SKIP("no ensemble of ours to control");
  tu_rec_init(&rec);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  ck_assert_int_eq(zkr_session_set_timeout(s, 10000), 0);
  ck_assert_int_eq(zkr_session_connect(s, hosts, 15000), 0);
  id = zkr_session_id(s);
  snprintf(before, sizeof(before), "%s", zoo_get_current_server(zkr_session_zhandle(s)));
  ck_assert_int_eq(tu_zkctl(member, sizeof(member), "member-of %s %s", dir, before), 0);

  ck_assert_int_eq(tu_zkctl(NULL, 0, "kill-member %s %s", dir, member), 0);
  susp = tu_rec_wait(&rec, 1, ZKR_SESSION_SUSPENDED, 15000);
  ck_assert_msg(susp > 0, "no SUSPENDED after member %s was killed", member);
  rec_i = tu_rec_wait(&rec, susp + 1, ZKR_SESSION_RECONNECTED, 30000);
  ck_assert_msg(rec_i > susp, "no RECONNECTED on another member");
  ck_assert_int_eq(rec.sid[rec_i], id);
  snprintf(after, sizeof(after), "%s", zoo_get_current_server(zkr_session_zhandle(s)));
  ck_assert_msg(strcmp(before, after) != 0, "still on %s", before);
  ck_assert_int_lt(tu_rec_wait(&rec, 0, ZKR_SESSION_LOST, 0), 0);
  ck_assert_int_eq(zoo_exists(zkr_session_zhandle(s), "/", 0, NULL), ZOK);
  zkr_session_free(s);
  /* Leave the ensemble whole for the tests that follow. */
  ck_assert_int_eq(tu_zkctl(NULL, 0, "start-member %s %s", dir, member), 0);
  tu_rec_destroy(&rec);
}
END_TEST

START_TEST(bad_input_is_einval_without_side_effects) {
  zkr_session_t *s = (zkr_session_t *)0x1, *n = NULL;
  const char *bad_hosts[] = {NULL,
                             "",
                             "nohostport",
                             "h:0",
                             "127.0.0.1:2181/",
                             "127.0.0.1:2181//a",
                             "127.0.0.1:2181/a/",
                             "127.0.0.1:2181/a/../b"};
  acb_t never = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0};

  for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
    s = (zkr_session_t *)0x1;
    ck_assert_int_eq(zkr_session_open(bad_hosts[i], 5000, 1000, &s), ZKR_EINVAL);
    ck_assert_ptr_null(s);
  }
  ck_assert_int_eq(zkr_session_open(tu_hosts(), 0, 1000, &s), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_open(tu_hosts(), -1, 1000, &s), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_open(tu_hosts(), 5000, 0, &s), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_open(tu_hosts(), 5000, -1, &s), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_open(tu_hosts(), 5000, 1000, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_new(NULL), ZKR_EINVAL);

  ck_assert_int_eq(zkr_session_new(&n), 0);
  ck_assert_int_eq(zkr_session_set_timeout(n, 0), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_timeout(n, -10), ZKR_EINVAL);
  /* W5: values the C client cannot connect with (0.1.0 accepted them and then
   * never connected). */
  ck_assert_int_eq(zkr_session_set_timeout(n, 1), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_timeout(n, 99), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_timeout(n, 1 << 30), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_timeout(n, INT32_MAX), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_wait_connected(n, -5), ZKR_EINVAL);
  /* A host list none of whose names resolves is said so (0.1.0: "system call
   * failed"). */
  {
    zkr_session_t *x = (zkr_session_t *)0x1;
    ck_assert_int_eq(zkr_session_open("no-such-host.invalid:2181", 5000, 1000, &x),
                     ZKR_ERESOLVE);
    ck_assert_ptr_null(x);
    ck_assert_str_eq(zkr_errname(ZKR_ERESOLVE), "ZKR_ERESOLVE");
  }
  {
    const int edges[] = {100, (1 << 30) - 1};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
      zkr_session_t *x = NULL;
      ck_assert_int_eq(zkr_session_open(tu_hosts(), edges[i], 10000, &x), 0);
      zkr_session_free(x);
    }
  }
  ck_assert_int_eq(zkr_session_set_timeout(NULL, 1000), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_auth(n, "digest", "nocolon"), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_auth(n, NULL, "a:b"), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_auth(n, "digest", ""), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_acl(n, 7), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_add_listener(n, NULL, NULL, NULL), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_remove_listener(n, 12345), ZKR_EINVAL);
  for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
    ck_assert_int_eq(zkr_session_connect(n, bad_hosts[i], 1000), ZKR_EINVAL);
    ck_assert_int_eq(zkr_session_connect_async(n, bad_hosts[i], 1000, acb_fn, &never),
                     ZKR_EINVAL);
  }
  ck_assert_int_eq(zkr_session_connect(n, tu_hosts(), 0), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_connect(n, tu_hosts(), -1), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_connect_async(n, tu_hosts(), 1000, NULL, NULL),
                   ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_connect(NULL, tu_hosts(), 1000), ZKR_EINVAL);
  /* Creator-only ACL needs an identity. */
  ck_assert_int_eq(zkr_session_set_acl(n, ZKR_ACL_CREATOR), 0);
  ck_assert_int_eq(zkr_session_connect(n, tu_hosts(), 1000), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_set_acl(n, ZKR_ACL_OPEN), 0);
  /* Nothing happened: still idle, no handle, no callback, and it still works. */
  ck_assert_int_eq(zkr_session_state(n), ZKR_STATE_IDLE);
  ck_assert_ptr_null(zkr_session_zhandle(n));
  ck_assert_int_eq(acb_calls(&never), 0);
  ck_assert_int_eq(zkr_session_connect(n, tu_hosts(), 15000), 0);
  zkr_session_free(n);
  zkr_session_free(NULL);
  ck_assert_int_eq(zkr_session_state(NULL), ZKR_STATE_CLOSED);
  ck_assert_int_eq(zkr_session_id(NULL), 0);
}
END_TEST

START_TEST(digest_auth_creator_only) {
  zkr_session_t *alice, *bob, *anon;
  char root[64];
  char buf[16];
  int len = sizeof(buf);

  ck_assert_int_eq(zkr_session_new(&alice), 0);
  ck_assert_int_eq(zkr_session_set_auth(alice, "digest", "alice:secret"), 0);
  ck_assert_int_eq(zkr_session_set_acl(alice, ZKR_ACL_CREATOR), 0);
  ck_assert_int_eq(zkr_session_connect(alice, tu_hosts(), 15000), 0);
  ck_assert_ptr_eq(zkr_session_acl(alice), &ZOO_CREATOR_ALL_ACL);

  ck_assert_int_eq(zkr_session_new(&bob), 0);
  ck_assert_int_eq(zkr_session_set_auth(bob, "digest", "bob:other"), 0);
  ck_assert_int_eq(zkr_session_connect(bob, tu_hosts(), 15000), 0);
  anon = tu_open(tu_hosts(), 6000);

  tu_root(root, sizeof(root));
  ck_assert_int_eq(zoo_create(zkr_session_zhandle(alice), root, "s", 1,
                              zkr_session_acl(alice), 0, NULL, 0),
                   ZOK);
  ck_assert_int_eq(zoo_get(zkr_session_zhandle(alice), root, 0, buf, &len, NULL), ZOK);
  len = sizeof(buf);
  ck_assert_int_eq(zoo_get(zkr_session_zhandle(bob), root, 0, buf, &len, NULL), ZNOAUTH);
  len = sizeof(buf);
  ck_assert_int_eq(zoo_get(zkr_session_zhandle(anon), root, 0, buf, &len, NULL), ZNOAUTH);
  ck_assert_int_eq(zoo_delete(zkr_session_zhandle(alice), root, -1), ZOK);
  zkr_session_free(anon);
  zkr_session_free(bob);
  zkr_session_free(alice);
}
END_TEST

/* Internal call layer: pending completions and watches end exactly once. */
typedef struct {
  pthread_mutex_t mu;
  int op_calls, op_rc, watch_calls, watch_rc;
} calls_t;

static void on_op(void *ctx, int rc, const zkr__reply_t *r) {
  calls_t *c = ctx;
  (void)r;
  pthread_mutex_lock(&c->mu);
  c->op_calls++;
  c->op_rc = rc;
  pthread_mutex_unlock(&c->mu);
}

static void on_watch(void *ctx, int rc, const zkr__reply_t *r) {
  calls_t *c = ctx;
  (void)r;
  pthread_mutex_lock(&c->mu);
  c->watch_calls++;
  c->watch_rc = rc;
  pthread_mutex_unlock(&c->mu);
}

START_TEST(free_ends_pending_calls_and_watches_once) {
  zkr_session_t *s = tu_open(tu_hosts(), 6000);
  calls_t c = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0, 99};
  zkr__call_t call;
  char root[64];
  int64_t deadline = tu_now_ms() + 10000;

  tu_root(root, sizeof(root));
  ck_assert_int_eq(zkr__call_begin(s, 0, ZKR__K_EXISTS, on_op, &c, &call), 0);
  ck_assert_int_eq(zkr__call_watch(&call, on_watch, &c), 0);
  ck_assert_int_eq(zkr__call_end(&call, zoo_awexists(call.zh, root, zkr__watcher,
                                                     call.watch, zkr__cb_stat, call.op)),
                   0);
  while (tu_now_ms() < deadline) {
    pthread_mutex_lock(&c.mu);
    int done = c.op_calls;
    pthread_mutex_unlock(&c.mu);
    if (done)
      break;
    usleep(1000);
  }
  ck_assert_int_eq(c.op_calls, 1);
  ck_assert_int_eq(c.op_rc, ZNONODE);
  ck_assert_int_eq(c.watch_calls, 0); /* set on a missing node, not fired */
  zkr_session_free(s);
  ck_assert_int_eq(c.watch_calls, 1);
  ck_assert_int_eq(c.watch_rc, ZCLOSING);
  ck_assert_int_eq(c.op_calls, 1);
}
END_TEST

START_TEST(calls_refused_on_closed_or_idle_session) {
  zkr_session_t *s;
  zkr__call_t call;
  calls_t c = {PTHREAD_MUTEX_INITIALIZER, 0, 99, 0, 99};

  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr__call_begin(s, 0, ZKR__K_GET, on_op, &c, &call), ZINVALIDSTATE);
  ck_assert_int_eq(zkr__call_begin(s, 7, ZKR__K_GET, on_op, &c, &call), ZSESSIONEXPIRED);
  zkr__session_ref(s); /* as a recipe object would */
  zkr_session_free(s);
  ck_assert_int_eq(zkr__call_begin(s, 0, ZKR__K_GET, on_op, &c, &call), ZKR_ECLOSED);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, NULL, NULL), ZKR_ECLOSED);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_CLOSED);
  zkr__session_unref(s);
  ck_assert_int_eq(c.op_calls, 0);
}
END_TEST

/* A listener that blocks, and one that is removed: neither misbehaves. */
static void deadlk_listener(zkr_session_t *s, int event, void *arg) {
  int *out = arg;
  if (event == ZKR_SESSION_CONNECTED) {
    out[0] = zkr_session_wait_connected(s, 1000);
    out[1] = zkr_session_connect(s, "127.0.0.1:1", 1000);
    out[2] = zkr_session_wait_connected(s, 0); /* a non-blocking check is fine */
  }
}

START_TEST(listeners_blocking_calls_and_removal) {
  zkr_session_t *s;
  tu_rec_t removed;
  int out[3] = {1, 1, 1};
  unsigned id;

  tu_rec_init(&removed);
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, deadlk_listener, out, NULL), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &removed, &id), 0);
  ck_assert_int_eq(zkr_session_remove_listener(s, id), 0);
  ck_assert_int_eq(zkr_session_remove_listener(s, id), ZKR_EINVAL);
  ck_assert_int_eq(zkr_session_connect(s, tu_hosts(), 15000), 0);
  ck_assert_int_eq(zkr_session_wait_connected(s, 5000), 0);
  zkr_session_free(s); /* joins the thread that ran the listener */
  ck_assert_int_eq(out[0], ZKR_EDEADLK);
  ck_assert_int_eq(out[1], ZKR_EDEADLK);
  ck_assert_int_eq(out[2], 0);
  ck_assert_int_eq(tu_rec_count(&removed), 0);
  tu_rec_destroy(&removed);
}
END_TEST

/* H4: work started while the session connects, with no timeout of its own,
 * ends when that connect attempt gives up (0.1.0 retired the handle without an
 * event, and the waiting acquire or add never ended). */
typedef struct ended {
  _Atomic int lock_calls, lock_rc, counter_calls, counter_rc, await_calls, await_rc;
  _Atomic int connect_calls, connect_rc;
} ended_t;

static void ended_lock(zkr_lock_t *l, int rc, void *arg) {
  ended_t *e = arg;
  (void)l;
  atomic_store(&e->lock_rc, rc);
  atomic_fetch_add(&e->lock_calls, 1);
}
static void ended_counter(zkr_counter_t *c, int rc, int64_t v, void *arg) {
  ended_t *e = arg;
  (void)c, (void)v;
  atomic_store(&e->counter_rc, rc);
  atomic_fetch_add(&e->counter_calls, 1);
}
static void ended_await(zkr_election_t *x, int rc, int64_t epoch, void *arg) {
  ended_t *e = arg;
  (void)x, (void)epoch;
  atomic_store(&e->await_rc, rc);
  atomic_fetch_add(&e->await_calls, 1);
}
static void ended_connect(zkr_session_t *s, int rc, void *arg) {
  ended_t *e = arg;
  (void)s;
  atomic_store(&e->connect_rc, rc);
  atomic_fetch_add(&e->connect_calls, 1);
}

START_TEST(waiting_work_ends_when_the_connect_gives_up) {
  char dead[64];
  zkr_session_t *s;
  zkr_lock_t *l;
  zkr_counter_t *c;
  zkr_election_t *e;
  ended_t x = {0};
  tu_rec_t rec;
  int64_t deadline;

  tu_rec_init(&rec);
  snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port());
  ck_assert_int_eq(zkr_session_new(&s), 0);
  ck_assert_int_eq(zkr_session_add_listener(s, tu_rec_listener, &rec, NULL), 0);
  ck_assert_int_eq(zkr_lock_new(s, "/h4/lock", &l), 0);
  ck_assert_int_eq(zkr_counter_new(s, "/h4/counter", ZKR_COUNTER_INT64, &c), 0);
  ck_assert_int_eq(zkr_election_new(s, "/h4/election", "me", 2, &e), 0);
  ck_assert_int_eq(zkr_session_connect_async(s, dead, 1000, ended_connect, &x), 0);
  ck_assert_int_eq(zkr_lock_acquire_async(l, -1, ended_lock, &x), 0);
  ck_assert_int_eq(zkr_counter_add_async(c, 1, -1, ended_counter, &x), 0);
  ck_assert_int_eq(zkr_election_start(e), 0);
  ck_assert_int_eq(zkr_election_await_async(e, -1, ended_await, &x), 0);
  deadline = tu_now_ms() + 10000;
  /* (The connect's own callback may come after the others: wait for all.) */
  while ((!atomic_load(&x.lock_calls) || !atomic_load(&x.counter_calls) ||
          !atomic_load(&x.await_calls) || !atomic_load(&x.connect_calls)) &&
         tu_now_ms() < deadline)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&x.connect_calls), 1);
  ck_assert_int_eq(atomic_load(&x.connect_rc), ZKR_ETIMEDOUT);
  ck_assert_int_eq(atomic_load(&x.lock_calls), 1);
  ck_assert_int_eq(atomic_load(&x.lock_rc), ZINVALIDSTATE);
  ck_assert_int_eq(atomic_load(&x.counter_calls), 1);
  ck_assert_int_eq(atomic_load(&x.counter_rc), ZINVALIDSTATE);
  ck_assert_int_eq(atomic_load(&x.await_calls), 1);
  ck_assert_int_eq(atomic_load(&x.await_rc), ZINVALIDSTATE);
  ck_assert_int_ge(tu_rec_wait(&rec, 0, ZKR_SESSION_CONNECT_FAILED, 1000), 0);
  ck_assert_int_eq(zkr_session_state(s), ZKR_STATE_IDLE);
  /* Nothing is left that could run later. */
  zkr_election_free(e);
  zkr_counter_free(c);
  zkr_lock_free(l);
  zkr_session_free(s);
  ck_assert_int_eq(atomic_load(&x.lock_calls), 1);
  ck_assert_int_eq(atomic_load(&x.counter_calls), 1);
  ck_assert_int_eq(atomic_load(&x.await_calls), 1);
  tu_rec_destroy(&rec);
}
END_TEST

/* ---- callbacks of one session acting on another (H1) ---- */

/* Two sessions' callbacks that each free the other's lock. With a dispatch mutex
 * per session they deadlocked when they ran at once (each waited for the other's
 * mutex inside zkr_lock_free). */
typedef struct xfree {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started[2], finished[2];
  zkr_lock_t *_Atomic locks[2];
} xfree_t;

typedef struct xarg {
  xfree_t *x;
  int me;
} xarg_t;

static void xfree_cb(zkr_lock_t *l, int rc, void *arg) {
  xarg_t *a = arg;
  xfree_t *x = a->x;
  int64_t deadline = tu_now_ms() + 1000;
  zkr_lock_t *other;

  (void)l, (void)rc;
  pthread_mutex_lock(&x->mu);
  x->started[a->me] = 1;
  pthread_cond_broadcast(&x->cv);
  /* Give the other callback a moment to be running too (it cannot be, when
   * callbacks are serialised: then this wait simply times out). */
  while (!x->started[!a->me] && tu_now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&x->cv, &x->mu, &ts);
  }
  pthread_mutex_unlock(&x->mu);
  other = atomic_exchange(&x->locks[!a->me], NULL);
  zkr_lock_free(other); /* may run the other's callback (ZKR_ECANCELED) right here */
  pthread_mutex_lock(&x->mu);
  x->finished[a->me] = 1;
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

START_TEST(callbacks_free_objects_of_other_sessions) {
  char root[64], p0[96], p1[96];
  zkr_session_t *s[2];
  xfree_t x = {
      PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0, 0}, {0, 0}, {NULL, NULL}};
  xarg_t a[2] = {{&x, 0}, {&x, 1}};
  int64_t deadline;
  int done;

  tu_root(root, sizeof(root));
  snprintf(p0, sizeof(p0), "%s/l0", root);
  snprintf(p1, sizeof(p1), "%s/l1", root);
  for (int i = 0; i < 2; i++) {
    zkr_lock_t *l;
    s[i] = tu_open(tu_hosts(), 10000);
    ck_assert_int_eq(zkr_lock_new(s[i], i ? p1 : p0, &l), 0);
    atomic_store(&x.locks[i], l);
  }
  /* Both grants arrive at about the same time, each on its session's thread. */
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(
        zkr_lock_acquire_async(atomic_load(&x.locks[i]), 10000, xfree_cb, &a[i]), 0);
  deadline = tu_now_ms() + 15000;
  pthread_mutex_lock(&x.mu);
  while (!(done = x.finished[0] && x.finished[1]) && tu_now_ms() < deadline) {
    pthread_mutex_unlock(&x.mu);
    usleep(2000);
    pthread_mutex_lock(&x.mu);
  }
  pthread_mutex_unlock(&x.mu);
  ck_assert_msg(done, "callbacks freeing each other's locks did not finish (deadlock)");
  ck_assert_ptr_null(atomic_load(&x.locks[0]));
  ck_assert_ptr_null(atomic_load(&x.locks[1]));
  tu_wait_children(zkr_session_zhandle(s[0]), p0, 0, 5000);
  tu_wait_children(zkr_session_zhandle(s[0]), p1, 0, 5000);
  tu_rmr(zkr_session_zhandle(s[0]), root);
  zkr_session_free(s[0]);
  zkr_session_free(s[1]);
}
END_TEST

/* A listener of session B still running while a callback of session A removes
 * it: the removal must not return before the listener is done (0.1.0 skipped
 * the wait whenever the caller was in any callback). */
typedef struct xlisten {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inside, removed, removed_while_inside, calls;
  zkr_session_t *b;
  unsigned id;
} xlisten_t;

static void slow_listener(zkr_session_t *s, int event, void *arg) {
  xlisten_t *x = arg;
  int64_t deadline = tu_now_ms() + 2000;
  (void)s;
  if (event != ZKR_SESSION_CONNECTED)
    return;
  pthread_mutex_lock(&x->mu);
  x->calls++;
  x->inside = 1;
  pthread_cond_broadcast(&x->cv);
  while (!x->removed && tu_now_ms() < deadline) {
    pthread_mutex_unlock(&x->mu);
    usleep(1000);
    pthread_mutex_lock(&x->mu);
  }
  if (x->removed)
    x->removed_while_inside = 1; /* the remover went on while we still ran */
  x->inside = 0;
  pthread_mutex_unlock(&x->mu);
}

static void ignore_connect(zkr_session_t *s, int rc, void *arg) {
  (void)s, (void)rc, (void)arg;
}

static void remove_b_listener(zkr_lock_t *l, int rc, void *arg) {
  xlisten_t *x = arg;
  (void)l, (void)rc;
  ck_assert_int_eq(zkr_session_remove_listener(x->b, x->id), 0);
  pthread_mutex_lock(&x->mu);
  x->removed = 1;
  pthread_mutex_unlock(&x->mu);
}

START_TEST(listener_removed_from_another_sessions_callback) {
  char root[64], path[96];
  xlisten_t x = {
      PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, 0};
  zkr_session_t *a = tu_open(tu_hosts(), 10000);
  zkr_lock_t *l;
  int64_t deadline;
  int inside;

  tu_root(root, sizeof(root));
  snprintf(path, sizeof(path), "%s/l", root);
  ck_assert_int_eq(zkr_lock_new(a, path, &l), 0);
  ck_assert_int_eq(zkr_session_new(&x.b), 0);
  ck_assert_int_eq(zkr_session_add_listener(x.b, slow_listener, &x, &x.id), 0);
  /* Async: the sync connect would return only after the listener. */
  ck_assert_int_eq(
      zkr_session_connect_async(x.b, tu_hosts(), 15000, ignore_connect, NULL), 0);
  /* Wait until B's listener is inside its CONNECTED call. */
  deadline = tu_now_ms() + 15000;
  do {
    pthread_mutex_lock(&x.mu);
    inside = x.inside;
    pthread_mutex_unlock(&x.mu);
  } while (!inside && tu_now_ms() < deadline && usleep(1000) == 0);
  ck_assert(inside);
  /* A's completion removes B's listener. */
  ck_assert_int_eq(zkr_lock_acquire_async(l, 10000, remove_b_listener, &x), 0);
  deadline = tu_now_ms() + 10000;
  do {
    pthread_mutex_lock(&x.mu);
    inside = x.removed && !x.inside;
    pthread_mutex_unlock(&x.mu);
  } while (!inside && tu_now_ms() < deadline && usleep(1000) == 0);
  ck_assert(inside);
  ck_assert_msg(!x.removed_while_inside,
                "remove_listener returned while the listener was still running");
  ck_assert_int_eq(zkr_lock_release(l, 5000), 0);
  zkr_lock_free(l);
  tu_rmr(zkr_session_zhandle(a), root);
  zkr_session_free(x.b);
  zkr_session_free(a);
}
END_TEST

static void count_log(void *arg, int level, const char *msg) {
  (void)level, (void)msg;
  __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

START_TEST(silent_by_default_logs_to_callback) {
  char path[] = "/tmp/zkr-stderr-XXXXXX";
  int fd = mkstemp(path), saved = dup(2), n = 0;
  zkr_session_t *s;
  char dead[64];
  off_t size;

  ck_assert_int_ge(fd, 0);
  unsetenv("ZKR_LOG");
  zkr_log_set_callback(NULL, NULL, 0);
  fflush(stderr);
  dup2(fd, 2);
  /* A successful session and a failing one (connection refused, logged at
   * ERROR by the client): neither may print anything. */
  s = tu_open(tu_hosts(), 6000);
  zkr_session_free(s);
  snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port());
  ck_assert_int_eq(zkr_session_open(dead, 5000, 300, &s), ZKR_ETIMEDOUT);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  size = lseek(fd, 0, SEEK_END);
  close(fd);
  unlink(path);
  ck_assert_msg(size == 0, "the library wrote %lld bytes to stderr", (long long)size);

  zkr_log_set_callback(count_log, &n, ZKR_LOG_DEBUG);
  s = tu_open(tu_hosts(), 6000);
  zkr_session_free(s);
  zkr_log_set_callback(NULL, NULL, 0);
  ck_assert_int_gt(__atomic_load_n(&n, __ATOMIC_SEQ_CST), 0);
}
END_TEST

Suite *session_suite(void) {
  Suite *s = suite_create("session");
  TCase *tc = tcase_create("session");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bad_input_is_einval_without_side_effects);
  tcase_add_test(tc, connect_standalone);
  tcase_add_test(tc, connect_ensemble);
  tcase_add_test(tc, callbacks_free_objects_of_other_sessions);
  tcase_add_test(tc, waiting_work_ends_when_the_connect_gives_up);
  tcase_add_test(tc, listener_removed_from_another_sessions_callback);
  tcase_add_test(tc, open_convenience_and_chroot);
  tcase_add_test(tc, connect_timeout_no_server);
  tcase_add_test(tc, connect_async_once);
  tcase_add_test(tc, digest_auth_creator_only);
  tcase_add_test(tc, free_ends_pending_calls_and_watches_once);
  tcase_add_test(tc, calls_refused_on_closed_or_idle_session);
  tcase_add_test(tc, listeners_blocking_calls_and_removal);
  tcase_add_test(tc, silent_by_default_logs_to_callback);
  tcase_add_test(tc, expiry_lost_then_connected_new_id);
  tcase_add_test(tc, standalone_restart_suspended_then_reconnected);
  tcase_add_test(tc, ensemble_member_killed_session_moves);
  suite_add_tcase(s, tc);
  return s;
}
