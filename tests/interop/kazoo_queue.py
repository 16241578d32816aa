#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kazoo's own LockingQueue and `zkr queue --profile kazoo-locking` on one path.

usage: kazoo_queue.py ZKR HOSTS PATH

kazoo and zkr each put 20 items; two kazoo LockingQueue consumers (threads)
and two zkr consumer loops (`zkr queue PATH take -n`) take them at once until
the queue is empty. Every item must be consumed exactly once, whoever put or
took it, and nothing may be left in PATH/entries or PATH/taken. Prints one
line; exit status 0 when every check holds.
"""
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient

N = 20


def main():
    zkr, hosts, path = sys.argv[1:4]
    errors, got = [], []
    lock = threading.Lock()
    zk = KazooClient(hosts=hosts)
    zk.start(timeout=15)
    q = zk.LockingQueue(path)
    for i in range(N):
        q.put(f"kazoo-{i}".encode(), priority=100)
    for i in range(N):
        r = subprocess.run([zkr, "-H", hosts, "queue", path, "put", f"zkr-{i}",
                            "--profile", "kazoo-locking", "--priority", "100"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            errors.append(f"zkr put: {r.returncode} {r.stderr.strip()}")

    def kazoo_consumer():
        c = KazooClient(hosts=hosts)
        c.start(timeout=15)
        cq = c.LockingQueue(path)
        try:
            while True:
                v = cq.get(timeout=1)
                if v is None:
                    if len(zk.get_children(path + "/entries")) == 0:
                        return
                    continue
                with lock:
                    got.append(("kazoo", v.decode()))
                if not cq.consume():
                    errors.append("kazoo consume refused")
        except Exception as e:
            errors.append(f"kazoo consumer: {e!r}")
        finally:
            c.stop()
            c.close()

    def zkr_consumer():
        while True:
            r = subprocess.run([zkr, "-H", hosts, "queue", path, "take", "-w", "1",
                                "--profile", "kazoo-locking"], capture_output=True, text=True)
            if r.returncode == 75:
                if len(zk.get_children(path + "/entries")) == 0:
                    return
                continue
            if r.returncode != 0:
                errors.append(f"zkr take: {r.returncode} {r.stderr.strip()}")
                return
            with lock:
                got.append(("zkr", r.stdout))

    threads = [threading.Thread(target=f) for f in (kazoo_consumer, kazoo_consumer,
                                                     zkr_consumer, zkr_consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    values = sorted(v for _, v in got)
    want = sorted([f"kazoo-{i}" for i in range(N)] + [f"zkr-{i}" for i in range(N)])
    by = {k: sum(1 for w, _ in got if w == k) for k in ("kazoo", "zkr")}
    left = (zk.get_children(path + "/entries"), zk.get_children(path + "/taken"))
    zk.stop()
    zk.close()
    dup = len(values) - len(set(values))
    ok = not errors and values == want and not left[0] and not left[1] and all(by.values())
    print(f"kazoo LockingQueue + zkr queue --profile kazoo-locking: {len(values)} of "
          f"{len(want)} items consumed, twice {dup}, missing {len(set(want) - set(values))}, "
          f"taken by kazoo {by['kazoo']} and zkr {by['zkr']}, left {left}, errors {errors}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
