/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one Check runner. Usage: check_zkrecipes [SUITE...] (default: all).
 * CK_FORK=no (used under valgrind) runs every test in this process;
 * ZKR_TEST_ONLY=name[,name...] runs only those tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

typedef Suite *(*suite_fn)(void);

static int wanted(const TTest *t) {
  const char *only = getenv("ZKR_TEST_ONLY");
  if (only && *only) {
    size_t n = strlen(t->name);
    const char *p = only;
    int found = 0;
    while (!found && (p = strstr(p, t->name)) != NULL) {
      found = (p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0');
      p += n;
    }
    return found;
  }
  return 1;
}

void tu_add_test(TCase *tc, const TTest *t) {
  if (wanted(t))
    _tcase_add_test(tc, t, 0, 0, 0, 1);
}

void tu_add_loop_test(TCase *tc, const TTest *t, int start, int end) {
  if (wanted(t))
    _tcase_add_test(tc, t, 0, 0, start, end);
}

static const struct {
  const char *name;
  suite_fn make;
} all[] = {
    {"core", core_suite},       {"session", session_suite},   {"lock", lock_suite},
    {"counter", counter_suite}, {"election", election_suite}, {"async", async_suite},
    {"cache", cache_suite},
    {"journal", journal_suite},
    {"group", group_suite},
    {"discovery", discovery_suite},
    {"rwlock", rwlock_suite},
    {"semaphore", semaphore_suite},
    {"barrier", barrier_suite},
    {"queue", queue_suite},
};

int main(int argc, char **argv) {
  SRunner *sr = NULL;
  int failed;

  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    int wanted = argc < 2;
    for (int a = 1; a < argc; a++)
      if (strcmp(argv[a], all[i].name) == 0)
        wanted = 1;
    if (!wanted)
      continue;
    if (!sr)
      sr = srunner_create(all[i].make());
    else
      srunner_add_suite(sr, all[i].make());
  }
  if (!sr) {
    fprintf(stderr, "usage: %s [suite...]; suites:", argv[0]);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
      fprintf(stderr, " %s", all[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists every test */
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
