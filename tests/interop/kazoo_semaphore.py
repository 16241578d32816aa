#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kazoo's own Semaphore and `zkr semaphore --profile kazoo` on one path.

usage: kazoo_semaphore.py ZKR HOSTS PATH

Three kazoo threads and three zkr processes take leases of one semaphore
(max 2) in turns, each holding a few milliseconds. Every holder writes
"enter T" and "exit T" (CLOCK_REALTIME, ns) to one log while it holds; the
lines of one holder lie inside its real holding, so more than 2 holders at
any instant of the log means both sides granted more than the maximum.
Also checked: both sides were granted, a kazoo and a zkr holder held at the
same time (they share the path, not take turns by luck), kazoo's
lease_holders() lists a zkr holder, and nothing is left behind.
Prints one line; exit status 0 when every check holds.
"""
import os
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient

MAX, ROUNDS, HOLD = 2, 8, 0.02


def main():
    zkr, hosts, path = sys.argv[1:4]
    log = f"/tmp/kazoo-sem-{os.getpid()}.log"
    open(log, "w").close()

    def note(who, what):
        with open(log, "a") as f:
            f.write(f"{who} {what} {time.time_ns()}\n")

    errors = []
    zk = KazooClient(hosts=hosts)
    zk.start(timeout=15)

    def kazoo_worker(i):
        c = KazooClient(hosts=hosts)
        try:
            c.start(timeout=15)
            sem = c.Semaphore(path, identifier=f"kazoo-{i}", max_leases=MAX)
            for _ in range(ROUNDS):
                if not sem.acquire(timeout=30):
                    errors.append(f"kazoo-{i}: not acquired")
                    return
                note(f"kazoo-{i}", "enter")
                time.sleep(HOLD)
                note(f"kazoo-{i}", "exit")
                sem.release()
        except Exception as e:  # reported, not raised: the thread must end
            errors.append(f"kazoo-{i}: {e!r}")
        finally:
            c.stop()
            c.close()

    hold = (f'echo "zkr-$1 enter $(date +%s%N)" >>{log}; sleep {HOLD}; '
            f'echo "zkr-$1 exit $(date +%s%N)" >>{log}')
    script = (f'for r in $(seq {ROUNDS}); do "{zkr}" -H "{hosts}" semaphore "{path}" '
              f'--max {MAX} --profile kazoo -w 30 -- bash -c \'{hold}\' hold "$0" || exit $?; done')
    procs = [subprocess.Popen(["bash", "-c", script, str(i)]) for i in range(3)]
    threads = [threading.Thread(target=kazoo_worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()

    # While they run: kazoo's view of the holders lists a zkr one at some point.
    seen_zkr = False
    deadline = time.time() + 60
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        try:
            holders = zk.Semaphore(path, max_leases=MAX).lease_holders()
        except Exception:
            holders = []
        seen_zkr = seen_zkr or any(h.startswith("zkr-lease ") for h in holders)
        time.sleep(0.005)
    for p in procs:
        if p.wait(timeout=120) != 0:
            errors.append(f"zkr exited {p.returncode}")
    for t in threads:
        t.join(timeout=120)

    events = []
    with open(log) as f:
        for line in f:
            who, what, t = line.split()
            events.append((int(t), 0 if what == "exit" else 1, who))
    os.unlink(log)
    events.sort()  # an exit and an enter at one instant: the exit first
    now, most, mixed = set(), 0, False
    for _, enter, who in events:
        if enter:
            now.add(who)
        else:
            now.discard(who)
        most = max(most, len(now))
        kinds = {w.split("-")[0] for w in now}
        mixed = mixed or kinds == {"kazoo", "zkr"}
    grants = {k: sum(1 for _, e, w in events if e and w.startswith(k)) for k in ("kazoo", "zkr")}
    left = zk.get_children(path) if zk.exists(path) else []
    data = zk.get(path)[0].decode() if zk.exists(path) else ""
    zk.stop()
    zk.close()
    ok = (not errors and most <= MAX and grants == {"kazoo": 3 * ROUNDS, "zkr": 3 * ROUNDS}
          and mixed and seen_zkr and not left and data == str(MAX))
    print(f"kazoo+zkr semaphore (max {MAX}): most holders at once {most}, grants {grants}, "
          f"kazoo and zkr together {mixed}, kazoo saw a zkr lease {seen_zkr}, "
          f"left {left}, data {data!r}, errors {errors}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
