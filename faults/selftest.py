# SPDX-License-Identifier: Apache-2.0
"""What the fault tools' self-tests (test_*.py) share: a failure, a check
and a deadline-bounded wait on a condition."""

import time


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_for(cond, timeout, what):
    """Poll cond() until it returns something true (returned); Failure after
    timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)
