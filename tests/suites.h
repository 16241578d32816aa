/* SPDX-License-Identifier: Apache-2.0 */
/* One Check suite per area; tests/check_main.c runs them all. */
#ifndef ZKR_SUITES_H
#define ZKR_SUITES_H

#include <check.h>

Suite *core_suite(void);
Suite *session_suite(void);
Suite *lock_suite(void);
Suite *counter_suite(void);
Suite *election_suite(void);

#endif
