#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kazoo_rw_mixed - why the kazoo side of R2 does not finish.

    /usr/bin/python3 kazoo_rw_mixed.py HOSTS [PATH]

Two kazoo WriteLocks and eight ReadLocks on one path (default /kazoo-rw-mixed),
one session each, all asking at the same moment, once, with a 10-second
timeout; each holds 1 ms. Prints, per contender, whether it acquired; exits 1
if any did not (with python3-kazoo 2.8 on Debian 12: one writer acquires and
every other contender times out).
"""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    hosts, path = argv[1], argv[2] if len(argv) == 3 else "/kazoo-rw-mixed"
    clients = [KazooClient(hosts=hosts) for _ in range(10)]
    for c in clients:
        c.start()
    clients[0].ensure_path(path)
    got = [False] * len(clients)
    barrier = threading.Barrier(len(clients))

    def run(i):
        kind = "WriteLock" if i < 2 else "ReadLock"
        lock = getattr(clients[i], kind)(path, "mixed-%d" % i)
        barrier.wait()
        try:
            got[i] = lock.acquire(timeout=10)
        except LockTimeout:
            return
        time.sleep(0.001)
        lock.release()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ok in enumerate(got):
        print("%-9s %d: %s" % ("WriteLock" if i < 2 else "ReadLock", i,
                               "acquired" if ok else "timed out"))
    clients[0].delete(path, recursive=True)
    for c in clients:
        c.stop()
        c.close()
    return 0 if all(got) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
