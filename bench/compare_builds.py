#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two builds of zkr_bench side by side, in alternating rounds, on one server.

    compare_builds.py --before BIN --after BIN --hosts HOSTS [--rounds N]
                      [--workloads w1,w2,w3a,w3b,w4]

Each round runs every workload once with each build, one workload at a time
(both builds' runs of a workload back to back, so that the two figures of a
pair are taken seconds apart, not a whole round apart: the disk's fsync latency
drifts over tens of seconds here), the order of the two builds swapped from
one workload and one round to the next so that neither always runs on the
warmer (or noisier) side. For each figure the ratio after/before is taken
within a round (for latencies before/after, so that above 1 is always better);
the table shows the median of those per-round ratios with their range, next to
the median figures of each build. The exit status is 0; judging is for the
reader (the issue or the README says which ratio must hold).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

# (label, work, lib, key, higher_is_better)
FIGURES = [
    ("W1 lock, 1 session", "W1", "zkrecipes", "cycles_per_s", True),
    ("W1p release(0)", "W1p", "zkrecipes", "cycles_per_s", True),
    ("W2 lock, 8 sessions", "W2", "zkrecipes", "cycles_per_s", True),
    ("W2p release(0)", "W2p", "zkrecipes", "cycles_per_s", True),
    ("W3a counter, 1 session", "W3a", "zkrecipes", "increments_per_s", True),
    ("W3b counter, 8 sessions", "W3b", "zkrecipes", "increments_per_s", True),
    ("W4 failover p50", "W4", "zkrecipes", "failover_p50_us", False),
]

LINE = re.compile(r"^RESULT round=\d+ lib=(\S+) work=(\S+) (\S+)=(\S+)$")


def run(binary, hosts, workloads, warm):
    cmd = [binary, "-r", "1", "-q", "-w", workloads] + ([] if warm else ["-n"]) + [hosts]
    # The server's counters are not asked for: asking perturbs the server, and a
    # build that does not ask would be flattered next to one that does.
    env = dict(os.environ, ZKR_BENCH_NO_MNTR="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    res = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            lib, work, key, val = m.groups()
            res[(work, lib, key)] = float(val)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="w1,w2,w3a,w3b,w4")
    a = ap.parse_args()

    per = {"before": [], "after": []}
    works = [w for w in a.workloads.split(",") if w]
    for r in range(a.rounds):
        got = {"before": {}, "after": {}}
        for i, w in enumerate(works):
            order = ["before", "after"] if (r + i) % 2 == 0 else ["after", "before"]
            for side in order:
                binary = a.before if side == "before" else a.after
                got[side].update(run(binary, a.hosts, w, warm=(r == 0 and i == 0)))
        for side in got:
            per[side].append(got[side])
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)

    print(f"{'figure':26} {'before':>12} {'after':>12} {'after/before':>13}  range")
    for label, work, lib, key, higher in FIGURES:
        k = (work, lib, key)
        pairs = [(b[k], f[k]) for b, f in zip(per["before"], per["after"]) if k in b and k in f]
        if not pairs:
            continue
        ratios = [(f / b if higher else b / f) for b, f in pairs if b > 0 and f > 0]
        med_b = statistics.median(p[0] for p in pairs)
        med_f = statistics.median(p[1] for p in pairs)
        print(f"{label:26} {med_b:12.1f} {med_f:12.1f} {statistics.median(ratios):12.3f}x"
              f"  [{min(ratios):.3f}..{max(ratios):.3f}]")
        print(f"RATIO work={work} key={key} median={statistics.median(ratios):.4f} "
              f"min={min(ratios):.4f} max={max(ratios):.4f} rounds={len(ratios)}")


if __name__ == "__main__":
    main()
