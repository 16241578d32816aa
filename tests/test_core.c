/* SPDX-License-Identifier: Apache-2.0 */
/* Things that need no server: error table, version, input checks, logging. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "suites.h"
#include "testutil.h"

START_TEST(errors_named_and_described) {
  ck_assert_str_eq(zkr_errname(ZKR_OK), "ZOK");
  ck_assert_str_eq(zkr_errname(ZKR_EINVAL), "ZKR_EINVAL");
  ck_assert_str_eq(zkr_errname(ZKR_ETIMEDOUT), "ZKR_ETIMEDOUT");
  ck_assert_str_eq(zkr_errname(ZNONODE), "ZNONODE");
  ck_assert_str_eq(zkr_errname(ZCONNECTIONLOSS), "ZCONNECTIONLOSS");
  ck_assert_str_eq(zkr_errname(12345), "unknown");
  ck_assert_str_eq(zkr_strerror(ZKR_EINVAL), "invalid argument");
  ck_assert_str_eq(zkr_strerror(ZNONODE), "node does not exist");
  ck_assert_str_eq(zkr_strerror(-999999), "unknown error code");
  /* Ours must never collide with ZooKeeper's, which stop at -127. */
#define CHECK_OURS(name, value, text) ck_assert_int_le(ZKR_##name, -1000);
  ZKR_ERRNO_MAP(CHECK_OURS)
#undef CHECK_OURS
  ck_assert_int_eq(ZKR_OK, ZOK);
}
END_TEST

START_TEST(version_matches_header) {
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", ZKR_VERSION_MAJOR, ZKR_VERSION_MINOR,
           ZKR_VERSION_PATCH);
  ck_assert_str_eq(zkr_version_string(), want);
  ck_assert_uint_eq(zkr_version(), ZKR_VERSION_NUM);
}
END_TEST

START_TEST(path_check) {
  char longp[ZKR__PATH_MAX + 2];
  const char *good[] = {"/", "/a", "/a/b", "/a-b_c.d", "/.x", "/a/..b"};
  const char *bad[] = {NULL, "",       "a",   "a/b",     "/a/",   "//",    "/a//b",
                       "/.", "/a/./b", "/..", "/a/../b", "/a\nb", "/a\x7f"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    ck_assert_msg(zkr__path_check(good[i]) == 0, "%s should pass", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(zkr__path_check(bad[i]) == ZKR_EINVAL, "bad[%zu] should fail", i);
  memset(longp, 'a', sizeof(longp));
  longp[0] = '/';
  longp[ZKR__PATH_MAX] = '\0';
  ck_assert_int_eq(zkr__path_check(longp), 0);
  longp[ZKR__PATH_MAX] = 'a';
  longp[ZKR__PATH_MAX + 1] = '\0';
  ck_assert_int_eq(zkr__path_check(longp), ZKR_EINVAL);
}
END_TEST

START_TEST(hosts_check) {
  const char *good[] = {"127.0.0.1:2181", "a:1,b:2,c:65535", "h:2181/app",
                        "h:2181/app/sub", "[::1]:2181",      "[::1]:2181,h:1/x"};
  const char *bad[] = {NULL,         "",         "localhost", "h:",        ":2181",
                       "h:0",        "h:65536",  "h:21x",     "h:123456",  "h:1,",
                       ",h:1",       "h:1,,h:2", "h:1/",      "h:1//a",    "h:1/a/",
                       "h:1/a/../b", "/chroot",  "h 1:2",     "[::1:2181", "[]:1"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    ck_assert_msg(zkr__hosts_check(good[i]) == 0, "%s should pass", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(zkr__hosts_check(bad[i]) == ZKR_EINVAL, "bad[%zu] %s should fail", i,
                  bad[i] ? bad[i] : "(null)");
}
END_TEST

static char logged[4096];
static int nlogged;
static void capture(void *arg, int level, const char *msg) {
  (void)arg;
  ck_assert_int_ge(level, ZKR_LOG_ERROR);
  ck_assert_int_le(level, ZKR_LOG_DEBUG);
  ck_assert_msg(strchr(msg, '\n') == NULL, "log line carries a newline");
  nlogged++;
  snprintf(logged, sizeof(logged), "%s", msg);
}

START_TEST(log_levels_and_zookeeper_format) {
  zkr_log_set_callback(capture, NULL, ZKR_LOG_WARN);
  zkr__log(ZKR_LOG_INFO, "not wanted %d", 1);
  ck_assert_int_eq(nlogged, 0);
  zkr__log(ZKR_LOG_WARN, "wanted %d", 2);
  ck_assert_int_eq(nlogged, 1);
  ck_assert_str_eq(logged, "wanted 2");
  zkr__zoo_log("2026-01-01 00:00:00,000:1(0x1):ZOO_ERROR@handle_error@1234: boom\n");
  ck_assert_int_eq(nlogged, 2);
  ck_assert_str_eq(logged, "zookeeper: handle_error@1234: boom");
  zkr__zoo_log("2026-01-01 00:00:00,000:1(0x1):ZOO_INFO@log_env@1: chatter\n");
  ck_assert_int_eq(nlogged, 2);
  zkr_log_set_callback(NULL, NULL, 0);
}
END_TEST

Suite *core_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, errors_named_and_described);
  tcase_add_test(tc, version_matches_header);
  tcase_add_test(tc, path_check);
  tcase_add_test(tc, hosts_check);
  tcase_add_test(tc, log_levels_and_zookeeper_format);
  suite_add_tcase(s, tc);
  return s;
}
