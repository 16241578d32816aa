/* SPDX-License-Identifier: Apache-2.0 */
/* One Check suite per area; tests/check_main.c runs them all. */
#ifndef ZKR_SUITES_H
#define ZKR_SUITES_H

#include <check.h>

/* ZKR_TEST_ONLY=name[,name...] runs only the named tests (for working on one). */
void tu_add_test(TCase *tc, const TTest *t);
void tu_add_loop_test(TCase *tc, const TTest *t, int start, int end);
#undef tcase_add_test
#define tcase_add_test(tc, tf) tu_add_test((tc), (tf))
#undef tcase_add_loop_test
#define tcase_add_loop_test(tc, tf, s, e) tu_add_loop_test((tc), (tf), (s), (e))

Suite *core_suite(void);
Suite *session_suite(void);
Suite *lock_suite(void);
Suite *counter_suite(void);
Suite *election_suite(void);
Suite *async_suite(void);
Suite *cache_suite(void);
Suite *journal_suite(void);
Suite *group_suite(void);
Suite *discovery_suite(void);
Suite *rwlock_suite(void);
Suite *semaphore_suite(void);
Suite *barrier_suite(void);
Suite *queue_suite(void);

#endif
