/* SPDX-License-Identifier: Apache-2.0 */
/* Things that need no server: error table, version, input checks, logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "queue.h"
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
  /* UTF-8 as the server decodes it: what it refuses, we refuse before sending. */
  {
    const char *ok8[] = {"/caf\xc3\xa9",       /* U+00E9 */
                         "/\xc2\xa0",          /* U+00A0, first after the C1 block */
                         "/\xe4\xb8\xad",      /* U+4E2D */
                         "/\xed\x9f\xbf",      /* U+D7FF */
                         "/\xef\xa4\x80",      /* U+F900 */
                         "/\xef\xbf\xaf"};     /* U+FFEF */
    const char *bad8[] = {"/\xc2\x80",         /* U+0080, C1 control */
                          "/\xc2\x9f",         /* U+009F */
                          "/\xee\x80\x80",     /* U+E000, private use */
                          "/\xef\xa3\xbf",     /* U+F8FF */
                          "/\xef\xbf\xb0",     /* U+FFF0 */
                          "/\xef\xbf\xbd",     /* U+FFFD */
                          "/\xf0\x9f\x98\x80", /* U+1F600: a surrogate pair in Java */
                          "/\xed\xa0\x80",     /* an encoded surrogate */
                          "/\xc0\xaf",         /* overlong '/' */
                          "/\xe0\x80\xaf",     /* overlong '/' */
                          "/\xc3",             /* truncated */
                          "/a\xe4\xb8",        /* truncated at the end */
                          "/\xff",             /* never valid */
                          "/\x80"
                          "abc", /* stray continuation byte */
                          "/a\x1f"
                          "b"};
    for (size_t i = 0; i < sizeof(ok8) / sizeof(ok8[0]); i++)
      ck_assert_msg(zkr_path_check(ok8[i]) == 0, "ok8[%zu] should pass", i);
    for (size_t i = 0; i < sizeof(bad8) / sizeof(bad8[0]); i++)
      ck_assert_msg(zkr_path_check(bad8[i]) == ZKR_EINVAL, "bad8[%zu] should fail", i);
  }
  /* Recipes also keep out of "/" and the server's own tree. */
  ck_assert_int_eq(zkr__recipe_path_check("/"), ZKR_EINVAL);
  ck_assert_int_eq(zkr__recipe_path_check("/zookeeper"), ZKR_EINVAL);
  ck_assert_int_eq(zkr__recipe_path_check("/zookeeper/quota/x"), ZKR_EINVAL);
  ck_assert_int_eq(zkr__recipe_path_check("/zookeeperx"), 0);
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

START_TEST(sequences_and_formats) {
  int32_t v;
  zkr__child_t c;
  ck_assert_int_eq(zkr__seq_parse("0000000000", &v), 0);
  ck_assert_int_eq(v, 0);
  ck_assert_int_eq(zkr__seq_parse("2147483647", &v), 0);
  ck_assert_int_eq(v, INT32_MAX);
  ck_assert_int_eq(zkr__seq_parse("-000000001", &v), 0);
  ck_assert_int_eq(v, -1);
  ck_assert_int_eq(zkr__seq_parse("-2147483648", &v), 0);
  ck_assert_int_eq(v, INT32_MIN);
  ck_assert_int_eq(zkr__seq_parse("2147483648", &v), -1);
  ck_assert_int_eq(zkr__seq_parse("-0999999999", &v), -1); /* not what %010d prints */
  ck_assert_int_eq(zkr__seq_parse("000000001", &v), -1);
  ck_assert_int_eq(zkr__seq_parse("00000000x1", &v), -1);

  zkr__child_parse("_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-lock-0000000007", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR);
  ck_assert_int_eq(c.seq, 7);
  zkr__child_parse("_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-lock--2147483648", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR);
  ck_assert_int_eq(c.seq, INT32_MIN);
  zkr__child_parse("_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-latch-0000000001", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR_LATCH);
  zkr__child_parse("_c_0123456789abcdef0123456789abcdef-lock-0000000002", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_GO);
  zkr__child_parse("0123456789abcdef0123456789abcdef__lock__0000000003", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_KAZOO);
  ck_assert_int_eq(c.reader, 0);
  zkr__child_parse("0123456789abcdef0123456789abcdef__rlock__0000000004", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_KAZOO);
  ck_assert_int_eq(c.reader, 1);
  zkr__child_parse("_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-__READ__0000000005", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR_RW);
  ck_assert_int_eq(c.reader, 1);
  zkr__child_parse("x-0123456789abcdef-0000000006", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_ZK_C);
  ck_assert_int_eq(c.seq, 6);
  zkr__child_parse("x-72057594037927936--000000002", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_ZK_JAVA);
  ck_assert_int_eq(c.seq, -2);
  zkr__child_parse("lock-0000000008", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_PLAIN);
  zkr__child_parse("config", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_UNKNOWN);
  zkr__child_parse("x-nothex-0000000001", &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_UNKNOWN);

  /* Across the int32 wrap the queue order stays the order of creation. */
  {
    struct String_vector sv;
    char *names[] = {"_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-lock--2147483647", "junk",
                     "0123456789abcdef0123456789abcdef__lock__2147483646",
                     "_c_0123456789abcdef0123456789abcdef-lock--2147483648"};
    zkr__child_t *o;
    int k;
    sv.count = 4;
    sv.data = names;
    ck_assert_int_eq(zkr__children_order(&sv, 0, &o, &k), 0);
    ck_assert_int_eq(k, 3);
    ck_assert_int_eq(o[0].seq, 2147483646);
    ck_assert_int_eq(o[1].seq, INT32_MIN);
    ck_assert_int_eq(o[2].seq, -2147483647);
    ck_assert_str_eq(o[3].name, "junk");
    free(o);
  }
  /* A read/write lock across the wrap: the writer made before it (2147483646)
   * is ahead of the reader made after it (INT32_MIN), whatever a string or a
   * plain integer comparison says; a lease name is a contender too. */
  {
    struct String_vector sv;
    char *names[] = {"_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-__READ__-2147483648",
                     "_c_0123abcd-9dad-41d1-80b4-00c04fd430c8-__WRIT__2147483646",
                     "_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-lease-0000000007"};
    zkr__child_t *o;
    zkr__queue_rule_t rule = {.tag = "__READ__"};
    int k, watch;
    bool last;
    sv.count = 2;
    sv.data = names;
    ck_assert_int_eq(zkr__children_order(&sv, 0, &o, &k), 0);
    ck_assert_int_eq(k, 2);
    ck_assert_int_eq(o[0].seq, 2147483646);
    ck_assert_int_eq(o[0].reader, 0);
    ck_assert_int_eq(o[1].reader, 1);
    ck_assert(!zkr__rule_read(&rule, o, k, 1, &watch, &last)); /* the reader waits */
    ck_assert_int_eq(watch, 0);
    ck_assert(last);
    free(o);
    zkr__child_parse(names[2], &c);
    ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR_LEASE);
    ck_assert_int_eq(c.seq, 7);
  }
}
END_TEST

/* The queue engine's grant rules over an ordered listing. */
static int decide(zkr__decide_fn fn, int limit, const char *kinds, int me, int *watch,
                  bool *last) {
  zkr__child_t c[16];
  zkr__queue_rule_t rule = {.limit = limit, .decide = fn};
  int n = (int)strlen(kinds);
  for (int i = 0; i < n; i++) { /* 'r' a reader, 'w' a writer */
    memset(&c[i], 0, sizeof(c[i]));
    c[i].seq = i;
    c[i].reader = kinds[i] == 'r';
    c[i].contender = 1;
  }
  *watch = -2;
  *last = false;
  return fn(&rule, c, n, me, watch, last);
}

START_TEST(queue_rules) {
  int w;
  bool last;

  /* Exclusive: the lowest holds; the rest watch the one right ahead. */
  ck_assert(decide(zkr__rule_exclusive, 0, "www", 0, &w, &last));
  ck_assert(!decide(zkr__rule_exclusive, 0, "www", 1, &w, &last));
  ck_assert_int_eq(w, 0);
  ck_assert(last);
  ck_assert(!decide(zkr__rule_exclusive, 0, "www", 2, &w, &last));
  ck_assert_int_eq(w, 1);
  ck_assert(!last);
  /* Read: readers ahead do not block; the nearest writer ahead is watched, and
   * its departure alone grants when it is the only writer ahead. */
  ck_assert(decide(zkr__rule_read, 0, "rrr", 2, &w, &last));
  ck_assert(!decide(zkr__rule_read, 0, "rwrr", 3, &w, &last));
  ck_assert_int_eq(w, 1);
  ck_assert(last);
  ck_assert(!decide(zkr__rule_read, 0, "wrwr", 3, &w, &last));
  ck_assert_int_eq(w, 2);
  ck_assert(!last);
  ck_assert(decide(zkr__rule_read, 0, "rrrw", 2, &w, &last)); /* a writer behind */
  /* First N: the first limit hold; behind them the children are watched. */
  ck_assert(decide(zkr__rule_first_n, 2, "wwww", 1, &w, &last));
  ck_assert(!decide(zkr__rule_first_n, 2, "wwww", 2, &w, &last));
  ck_assert_int_eq(w, -1);
  ck_assert(!last);
}
END_TEST

START_TEST(guids_are_uuid4) {
  char a[37], b[37];
  zkr__child_t c;
  char name[80];
  ck_assert_int_eq(zkr__guid(a), 0);
  ck_assert_int_eq(zkr__guid(b), 0);
  ck_assert_int_eq(strlen(a), 36);
  ck_assert_str_ne(a, b);
  ck_assert_int_eq(a[14], '4');
  snprintf(name, sizeof(name), "_c_%s-lock-0000000001", a);
  zkr__child_parse(name, &c);
  ck_assert_int_eq(c.format, ZKR_FORMAT_CURATOR);
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
  tcase_add_test(tc, sequences_and_formats);
  tcase_add_test(tc, guids_are_uuid4);
  tcase_add_test(tc, queue_rules);
  suite_add_tcase(s, tc);
  return s;
}
