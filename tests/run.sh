#!/usr/bin/env bash
# Everything `make check` runs, inside tests/zk/with-zk.sh (which provides the
# servers): the Check suites, the zkr command-line tests, the install smoke test
# and the symbol check.
# Env: BUILD (build dir of the suites), VALGRIND=1 (suites under valgrind),
#      TSAN=1 (the build is ThreadSanitizer's: any report fails the run).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
failed=()
# The suites' output is kept so that their failure lines can be repeated at the
# end, where a log's tail (all that a CI summary may show) will have them.
suite_log=$(mktemp)
trap 'rm -f "$suite_log"' EXIT
if [ "${TSAN:-}" = 1 ]; then
  # For every program of the run (the suites, zkr): a report fails it (exit 66);
  # the one known race inside libzookeeper_mt is suppressed (tests/tsan.supp).
  export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:exitcode=66:second_deadlock_stack=1}
fi

echo "== Check suites ($build/tests/check_zkrecipes)"
if [ "${VALGRIND:-}" = 1 ]; then
  # One process (CK_FORK=no) so valgrind sees every test; any error or leak fails.
  CK_FORK=no timeout 900 valgrind --quiet --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --suppressions=tests/valgrind.supp --gen-suppressions=all \
    "$build/tests/check_zkrecipes" 2>&1 | tee "$suite_log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("Check suites under valgrind")
elif [ "${TSAN:-}" = 1 ]; then
  # One process, so that a report anywhere fails the run through its exit status.
  CK_FORK=no timeout 1800 "$build/tests/check_zkrecipes" 2>&1 | tee "$suite_log"
  rc=${PIPESTATUS[0]}
  if [ $rc -ne 0 ]; then
    echo "check_zkrecipes under ThreadSanitizer exited with status $rc" >&2
    failed+=("Check suites under ThreadSanitizer")
  fi
else
  # Under SANITIZE=1, LeakSanitizer gets the same ZooKeeper-client exception as
  # valgrind. The ZooKeeper client is built without frame pointers: only the slow
  # unwinder gets from its allocations up to zookeeper_process, where the
  # suppression looks.
  ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0} \
    timeout 1800 "$build/tests/check_zkrecipes" 2>&1 | tee "$suite_log"
  rc=${PIPESTATUS[0]}
  if [ $rc -ne 0 ]; then
    # Say how it ended: a runner that printed no failures and still exited
    # non-zero died after the tests (128+N: signal N).
    echo "check_zkrecipes exited with status $rc" >&2
    failed+=("Check suites")
  fi
fi

echo "== zkr command-line tests"
# Leak checking is off for the tool's own exits (it may exit with objects still
# allocated, as command-line tools do); memory errors are still caught.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} timeout 600 tests/cli/test_zkr.sh "$build" ||
  failed+=("zkr command-line tests")

echo "== install smoke test"
tests/install-smoke.sh || failed+=("install smoke test")

echo "== SONAME and exported symbols"
tests/check-symbols.sh build || failed+=("exported symbols")

if [ ${#failed[@]} -ne 0 ]; then
  # Check's lines for failed tests ("file:line:F:suite:test:...") and the
  # sanitizers' summaries, once more.
  grep -E '^[^ ]+:[0-9]+:[FE]:|SUMMARY: |ThreadSanitizer: |ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$suite_log" | head -40 >&2
  printf 'make check: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "make check: all passed"
