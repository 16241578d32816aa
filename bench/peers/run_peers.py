#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run zkrecipes, its raw-client floors, Apache Curator and kazoo on one server,
round after round, and print tables of median [min..max] with ratios taken pair by
pair within each round, the RESULT lines, and a PNG chart.

Run by `make bench-peers` inside tests/zk/with-zk.sh (which provides the server).
Standard library only: this runs with Debian's /usr/bin/python3.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Elsewhere (the lent many-core machine: no compiler, no Debian paths) these say
# where Java, the classpath, the compiled CuratorBench class and Python are.
JAVA = os.environ.get("ZKR_PEERS_JAVA", "java")
CURATOR_CP = os.environ.get("ZKR_PEERS_CP", "/usr/share/java/curator-recipes.jar:"
                            "/usr/share/java/curator-x-discovery.jar")
CURATOR_CLASSES = os.environ.get("ZKR_PEERS_CLASSES")  # a directory with CuratorBench.class
PYTHON = os.environ.get("ZKR_PEERS_PYTHON", "/usr/bin/python3")
COST_KEYS = ["cpu_us_per_op", "server_requests_per_op", "server_txns_per_op"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse(text, rnd, into):
    for line in text.splitlines():
        if not line.startswith("RESULT "):
            continue
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        lib, work = fields.pop("lib"), fields.pop("work")
        fields.pop("round", None)
        for key, value in fields.items():
            into.append((rnd, lib, work, key, float(value)))


def run(cmd, what, timeout):
    log(f"   {what} ...")
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        # A server that stops answering for longer than the client's operation
        # timeout (seen on a 3-node ensemble sharing 2 cores with the clients) fails
        # a step; say so, drop that attempt's figures and run the step once more.
        log(p.stderr.strip()[-2000:])
        log(f"   {what} failed (exit {p.returncode}); its figures are dropped, running it again")
        # A fresh root for the peers, so nothing the failed attempt left is counted.
        cmd = [c + "-again" if c.startswith("/zkr-peers-") else c for c in cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        log(p.stderr.strip()[-2000:])
        raise SystemExit(f"run_peers: {what} failed twice (exit {p.returncode})")
    for line in p.stderr.splitlines():
        if line.startswith("zkr_bench:"):  # stalls and other warnings worth seeing
            log("   " + line)
    log(f"   {what}: {time.monotonic() - t0:.1f} s")
    return p.stdout


def value(rows, rnd, lib, work, key):
    """lib may be "lib:work", naming a variant measured under a work name of its own."""
    if ":" in lib:
        lib, work = lib.split(":", 1)
    for r, l, w, k, v in rows:
        if r == rnd and l == lib and w == work and k == key:
            return v
    return None


def fmt(vals, digits=1):
    vals = sorted(vals)
    if not vals:
        return "-"
    return f"{statistics.median(vals):.{digits}f} [{vals[0]:.{digits}f}..{vals[-1]:.{digits}f}]"


# What each table shows: (work, heading, [(lib, label)], [keys], ratio key, higher-is-better)
TABLES = [
    ("W1", "W1 uncontended lock: 1 session, 2000 acquire+release",
     [("zkrecipes", "zkrecipes"), ("curator", "Curator InterProcessMutex"), ("kazoo", "kazoo Lock"),
      ("zkrecipes:W1p", "zkrecipes, release(lock, 0)")],
     ["cycles_per_s", "acquire_p50_us", "acquire_p99_us", "release_p50_us", "release_p99_us"]
     + COST_KEYS,
     "cycles_per_s", True, ("create+delete", "raw-c", "cycles_per_s")),
    ("W2", "W2 contended lock: 8 sessions x 250 cycles, one path",
     [("zkrecipes", "zkrecipes"), ("curator", "Curator InterProcessMutex"), ("kazoo", "kazoo Lock"),
      ("zkrecipes:W2p", "zkrecipes, release(lock, 0)")],
     ["cycles_per_s", "acquire_p50_us", "acquire_p99_us", "exclusion_violations"] + COST_KEYS,
     "cycles_per_s", True, ("create+delete", "raw-c", "cycles_per_s")),
    ("R1", "R1 read lock: 8 sessions x 100 cycles, 1 ms hold, one path",
     [("zkrecipes", "zkrecipes read lock"), ("curator", "Curator read lock"),
      ("kazoo", "kazoo ReadLock")],
     ["cycles_per_s", "acquire_p50_us", "acquire_p99_us", "violations"] + COST_KEYS,
     "cycles_per_s", True, None),
    ("R2", "R2 read/write lock: 8 readers + 2 writers x 50 cycles, 1 ms hold",
     [("zkrecipes", "zkrecipes"), ("curator", "Curator InterProcessReadWriteLock"),
      ("kazoo", "kazoo ReadLock + WriteLock")],
     ["cycles_per_s", "acquire_p50_us", "writer_wait_p99_us", "violations", "hung"] + COST_KEYS,
     "cycles_per_s", True, None),
    ("S1", "S1 semaphore, max 3: 8 sessions x 60 cycles, 1 ms hold",
     [("zkrecipes", "zkrecipes semaphore"), ("zkrecipes:S1-native", "zkrecipes, native profile"),
      ("zkrecipes:S1-kazoo", "zkrecipes, kazoo profile"),
      ("curator", "Curator InterProcessSemaphoreV2"), ("kazoo", "kazoo Semaphore")],
     ["cycles_per_s", "acquire_p50_us", "acquire_p99_us", "violations"] + COST_KEYS,
     "cycles_per_s", True, None),
    ("Q1-put", "Q1 queue put: 1 producer x 400 items",
     [("zkrecipes", "zkrecipes (exactly once: receipt)"),
      ("curator-dq", "Curator DistributedQueue"), ("curator-simple", "Curator SimpleDistributedQueue"),
      ("kazoo-locking", "kazoo LockingQueue"), ("kazoo", "kazoo Queue")],
     ["puts_per_s"], "puts_per_s", True, None),
    ("Q1-take-1", "Q1 queue take: 1 consumer x 400 items (at-least/exactly once: claim + commit)",
     [("zkrecipes", "zkrecipes (claim + commit)"),
      ("curator-dq", "Curator DistributedQueue + lock path"),
      ("kazoo-locking", "kazoo LockingQueue (get + consume)"),
      ("curator-simple", "Curator SimpleDistributedQueue (at most once)"),
      ("kazoo", "kazoo Queue (at most once)")],
     ["takes_per_s"], "takes_per_s", True, None),
    ("Q1-take-8", "Q1 queue take: 8 consumers x 400 items",
     [("zkrecipes", "zkrecipes (claim + commit)"),
      ("curator-dq", "Curator DistributedQueue + lock path"),
      ("kazoo-locking", "kazoo LockingQueue (get + consume)"),
      ("curator-simple", "Curator SimpleDistributedQueue (at most once)"),
      ("kazoo", "kazoo Queue (at most once)")],
     ["takes_per_s"], "takes_per_s", True, None),
    ("Q1-flow-8", "Q1 put -> take latency: 200 items put at 50/s, 8 consumers taking",
     [("zkrecipes", "zkrecipes (claim + commit)"),
      ("curator-dq", "Curator DistributedQueue + lock path"),
      ("kazoo-locking", "kazoo LockingQueue (get + consume)"),
      ("curator-simple", "Curator SimpleDistributedQueue (at most once)"),
      ("kazoo", "kazoo Queue (at most once)")],
     ["put_to_take_p50_us", "put_to_take_p99_us"], "put_to_take_p50_us", False, None),
    ("W3a", "W3a counter: 1 session x 2000 increments",
     [("zkrecipes", "zkrecipes"), ("curator-dal", "Curator DistributedAtomicLong"),
      ("curator-sharedcount", "Curator SharedCount"), ("kazoo", "kazoo Counter"),
      ("zkrecipes:W3a-amo", "zkrecipes, at most once")],
     ["increments_per_s", "p50_us", "p99_us", "conflicts", "final_minus_expected"] + COST_KEYS,
     "increments_per_s", True, ("blind-set", "raw-c", "increments_per_s")),
    ("W3b", "W3b counter: 8 sessions x 250 increments, one counter",
     [("zkrecipes", "zkrecipes"), ("curator-dal", "Curator DistributedAtomicLong"),
      ("curator-sharedcount", "Curator SharedCount"), ("kazoo", "kazoo Counter"),
      ("zkrecipes:W3b-amo", "zkrecipes, at most once")],
     ["increments_per_s", "p50_us", "p99_us", "conflicts", "final_minus_expected"] + COST_KEYS,
     "increments_per_s", True, ("get+set-loop", "raw-c", "increments_per_s")),
    ("W4", "W4 election failover: 5 candidates, leader's session closed, 10 times",
     [("zkrecipes", "zkrecipes"), ("curator", "Curator LeaderLatch"), ("kazoo", "kazoo Election")],
     ["failover_p50_us", "failover_min_us", "failover_max_us"],
     "failover_p50_us", False, ("close->watch", "raw-c", "p50_us")),
] + [
    ("C1-node-cache", "C1 change to callback: one session sets a node, another follows it",
     [("zkrecipes", "zkrecipes node cache"), ("curator-cache", "Curator CuratorCache"),
      ("kazoo", "kazoo DataWatch")],
     ["p50_us", "p99_us"], "p50_us", False, ("set->watch+get", "raw-c", "p50_us")),
] + [
    (f"C2-children-{n}", f"C2 children cache with data, initial load, {n} children",
     [("zkrecipes", "zkrecipes"), ("curator-cache", "Curator CuratorCache"),
      ("curator-pcc", "Curator PathChildrenCache"), ("kazoo", "kazoo TreeCache")],
     ["load_ms", "heap_bytes_per_child"],
     "load_ms", False, (f"list+get-{n}", "raw-c", "load_ms")) for n in (1000, 10000)
] + [
    ("D1-register-seen", "D1 a registration on one session, seen by a watching reader on another",
     [("zkrecipes", "zkrecipes service cache"),
      ("curator", "Curator ServiceDiscovery + ServiceCache"), ("kazoo", "kazoo Party + ChildrenWatch")],
     ["p50_us", "p99_us"], "p50_us", False, ("create->watch+list+get", "raw-c", "p50_us")),
    ("D1-lookup", "D1 lookups from a cached provider (3 instances, round robin)",
     [("zkrecipes", "zkrecipes provider"), ("curator", "Curator ServiceProvider")],
     ["lookups_per_s"], "lookups_per_s", True, None),
    ("D1-reregister-after-expiry", "D1 re-registration after an expiry, until a reader sees it",
     [("zkrecipes", "zkrecipes"), ("curator", "Curator ServiceDiscovery"), ("kazoo", "kazoo Party")],
     ["p50_ms", "rejoined_within_10s"], "p50_ms", False, None),
]

# Our W3 rows are reported under work names of their own by zkr_bench.
OUR_KEYS = {("W3a", "p50_us"): "add_p50_us", ("W3a", "p99_us"): "add_p99_us",
            ("W3a-amo", "p50_us"): "add_p50_us", ("W3a-amo", "p99_us"): "add_p99_us"}


def ratio_rows(rows, rounds, work, lib, key, peer_lib, peer_work, peer_key):
    out = []
    for r in rounds:
        a, b = value(rows, r, lib, work, key), value(rows, r, peer_lib, peer_work, peer_key)
        if a is not None and b:
            out.append(a / b)
    return out


def curator_cmd():
    if CURATOR_CLASSES:
        return [JAVA, "-cp", CURATOR_CLASSES + ":" + CURATOR_CP, "CuratorBench"]
    return [JAVA, "-cp", CURATOR_CP, os.path.join(HERE, "CuratorBench.java")]


def measure(a):
    rows = []
    pid = os.getpid()
    for rnd in range(1, a.rounds + 1):
        log(f"-- round {rnd} of {a.rounds}")
        # Round 1 warms the server up first (zkr_bench's warm-up). The order of the
        # libraries turns by one each round, so that none always runs first after a
        # quiet server or last behind a busy log.
        ours = "w1,ls,ceiling,w2,herd,r1,r2,s1,q1,w3a,w3b,w4,c1,c2,c3,d1"
        theirs = "w1,w2,r1,r2,s1,q1,w3a,w3b,w4,c1,c2,d1"
        if a.only:
            keep = a.only.split(",")
            ours = ",".join(w for w in ours.split(",") if w in keep)
            theirs = ",".join(w for w in theirs.split(",") if w in keep)
        bench = [a.bench, "-r", "1", "-q", "-w", ours, a.hosts]
        if rnd > 1:
            bench.insert(1, "-n")
        steps = [
            (bench, "zkrecipes + raw floors"),
            (curator_cmd() + [a.hosts, f"/zkr-peers-{pid}-r{rnd}-curator",
                               theirs], "Curator"),
            ([PYTHON, os.path.join(HERE, "kazoo_bench.py"), a.hosts,
              f"/zkr-peers-{pid}-r{rnd}-kazoo", theirs], "kazoo"),
        ]
        if rnd > 1:
            k = (rnd - 1) % len(steps)
            steps = steps[k:] + steps[:k]
        for cmd, what in steps:
            parse(run(cmd, what, 1800), rnd, rows)
    if not a.only or "rss" in a.only.split(","):
        parse(run([a.bench, "-r", "1", "-q", "-n", "-w", "rss", a.hosts], "memory", 600), a.rounds,
              rows)
    return rows


def load(path):
    """RESULT lines with round= as written to peers-results.txt."""
    rows = []
    with open(path) as f:
        for line in f:
            fields = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            if not line.startswith("RESULT ") or "round" not in fields:
                continue
            rnd, lib, work = int(fields.pop("round")), fields.pop("lib"), fields.pop("work")
            for key, value in fields.items():
                rows.append((rnd, lib, work, key, float(value)))
    if not rows:
        raise SystemExit(f"run_peers: no RESULT lines with a round in {path}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", help="ZooKeeper connect string of the server to measure")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bench", help="path of zkr_bench")
    ap.add_argument("--out", required=True, help="directory for results and the chart")
    ap.add_argument("--label", default="standalone server")
    ap.add_argument("--only", default="", help="comma list of workloads (default: all)")
    ap.add_argument("--from", dest="src", metavar="RESULTS",
                    help="print the tables and draw the chart again from a saved "
                         "peers-results.txt instead of measuring")
    a = ap.parse_args()
    if not a.src and not (a.hosts and a.bench):
        ap.error("--hosts and --bench are needed unless --from is given")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    os.makedirs(a.out, exist_ok=True)
    started = time.monotonic()
    if a.src:
        rows = load(a.src)
        a.rounds = max(r for r, *_ in rows)
    else:
        rows = measure(a)
    rounds = list(range(1, a.rounds + 1))

    # Machine-readable lines, with the round.
    res_path = os.path.join(a.out, "peers-results.txt")
    with open(res_path, "w") as f:
        for r, lib, work, key, v in rows:
            line = f"RESULT round={r} lib={lib} work={work} {key}={v:.3f}"
            print(line)
            f.write(line + "\n")

    print(f"\nzkrecipes vs Curator 5.4 vs kazoo 2.8 vs the raw C client, on a {a.label}, "
          f"{a.rounds} rounds ({time.monotonic() - started:.0f} s); median [min..max] over "
          f"rounds, ratios pair by pair within a round\n")
    claims = []
    for work, heading, libs, keys, rkey, higher, floor in TABLES:
        print(heading)
        print(f"  {'library':32} " + " ".join(f"{k:>26}" for k in keys))
        for lib, label in libs:
            cells = []
            for k in keys:
                ours, ow = lib.split(":")[0] == "zkrecipes", lib.split(":")[-1]
                kk = OUR_KEYS.get((ow if ":" in lib else work, k), k) if ours else k
                vals = [v for r in rounds for v in [value(rows, r, lib, work, kk)] if v is not None]
                cells.append(fmt(vals, 0 if "us" in k or "per_s" in k else 1))
            print(f"  {label:32} " + " ".join(f"{c:>26}" for c in cells))
        fw, fl, fk = floor if floor else (None, None, None)
        if floor:
            fvals = [v for r in rounds for v in [value(rows, r, fl, fw, fk)] if v is not None]
            print(f"  {'floor: raw C ' + fw:32} {fmt(fvals, 0):>26}  ({fk})")
        fcost = []
        for k in COST_KEYS if floor else []:
            kv = [v for r in rounds for v in [value(rows, r, fl, fw, k)] if v is not None]
            if kv:
                fcost.append(f"{k} {fmt(kv, 0 if 'us' in k else 1)}")
        if fcost:
            print(f"  {'floor cost':32} " + ", ".join(fcost))
        ours = [(l, lab) for l, lab in libs if l.startswith("zkrecipes")]
        peers = [(l, lab) for l, lab in libs if not l.startswith("zkrecipes")]
        for olib, olabel in ours:
            for lib, label in peers + ([(f"{fl}:{fw}", "floor")] if floor else []):
                pk = fk if label == "floor" else rkey
                rs = ratio_rows(rows, rounds, work, olib, rkey, lib, work, pk)
                print(f"  ratio {olabel + ' / ' + label:56} {fmt(rs, 2):>14}")
                claims.append((work, olabel, label, rs, higher))
        print()

    for work, key, label in [("write-ceiling", "writes_per_s", "raw C: 8 sessions, 32 writes in flight"),
                             ("getChildren", "rtt_p50_us", "raw C: getChildren round trip p50 us")]:
        vals = [v for r in rounds for v in [value(rows, r, "raw-c", work, key)] if v is not None]
        print(f"floor {label}: {fmt(vals, 0)}")
    for key, label in [("notifications_per_release", "notifications per release"),
                       ("handoffs_per_s", "hand-offs/s")]:
        vals = [v for r in rounds for v in [value(rows, r, "zkrecipes", "herd-200", key)] if v is not None]
        print(f"scale, 200 waiters on one lock: {label}: {fmt(vals, 2)}")
    for lib, key, label in [("raw-c", "writes_per_s", "writes/s by 8 writers"),
                            ("zkrecipes", "updates_per_s", "UPDATED events/s seen by the cache"),
                            ("zkrecipes", "versions_coalesced_pct", "% of versions coalesced"),
                            ("zkrecipes", "caught_up_ms", "ms to hold every last version")]:
        vals = [v for r in rounds for v in [value(rows, r, lib, "C3-children-8-writers", key)]
                if v is not None]
        if vals:
            print(f"C3, a children cache under 8 writers: {label}: {fmt(vals, 0)}")
    z = value(rows, a.rounds, "zkrecipes", "rss-100", "kb_per_session")
    raw = value(rows, a.rounds, "raw-c", "rss-100", "kb_per_session")
    if z is not None and raw is not None:
        print(f"memory, 100 sessions each holding or waiting on a lock: zkrecipes {z:.1f} kB "
              f"per session, raw C client {raw:.1f} kB per session ({z / raw:.2f}x)")

    # The README's claims, checked against this run.
    targets = {("W1", "Curator InterProcessMutex"): 1.5, ("W1", "kazoo Lock"): 1.5,
               ("W1", "floor"): 0.95, ("W2", "Curator InterProcessMutex"): 2.0,
               ("W2", "kazoo Lock"): 2.0, ("W3b", "Curator DistributedAtomicLong"): 2.0,
               ("W3a", "Curator SharedCount"): 1.0, ("W3a", "floor"): 0.9,
               ("W3b", "Curator SharedCount"): 1.2, ("W3b", "floor"): 1.2,
               ("W4", "Curator LeaderLatch"): 0.8, ("W4", "kazoo Election"): 0.8,
               ("W4", "floor"): 1.2,
               # readers share (one write round trip each); the semaphore's peers
               # serialise through a global mutex
               ("R1", "Curator read lock"): 2.0, ("R1", "kazoo ReadLock"): 2.0,
               ("S1", "Curator InterProcessSemaphoreV2"): 2.0, ("S1", "kazoo Semaphore"): 2.0}
    # the queue: >= 2x the best exactly-once peer (Curator's lock-safe mode, kazoo's
    # LockingQueue); the at-most-once ones are reported beside it
    for w in ("Q1-take-1", "Q1-take-8"):
        targets[(w, "Curator DistributedQueue + lock path")] = 2.0
        targets[(w, "kazoo LockingQueue (get + consume)")] = 2.0
    # A registration seen in at most 0.8x the time of the best peer.
    for peer in ("Curator ServiceDiscovery + ServiceCache", "kazoo Party + ChildrenWatch"):
        targets[("D1-register-seen", peer)] = 0.8
    for n in (1000, 10000):  # at least twice as fast as each peer: half the time or less
        for peer in ("Curator CuratorCache", "Curator PathChildrenCache", "kazoo TreeCache"):
            targets[(f"C2-children-{n}", peer)] = 0.5
    print("\ntargets (median of the per-round ratios):")
    for work, olabel, label, rs, higher in claims:
        t = targets.get((work, label))
        if t is None or not rs:
            continue
        m = statistics.median(rs)
        ok = m >= t if higher else m <= t
        print(f"  {work} {olabel} vs {label}: {m:.2f}x, target {'>=' if higher else '<='} {t}x: "
              f"{'met' if ok else 'MISSED'}")
    lost = [v for r, l, w, k, v in rows if k in ("final_minus_expected", "exclusion_violations",
                                                    "violations")
            and v != 0 and l == "zkrecipes"]
    print(f"  zkrecipes: lost or doubled increments / exclusion violations: {len(lost)}")

    chart(rows, rounds, a.out, a.label)


def chart(rows, rounds, out, label):
    """Throughput per library and workload (bars) as a PNG."""
    libs = [("zkrecipes", "zkrecipes"), ("curator", "Curator"), ("kazoo", "kazoo"),
            ("raw-c", "raw C floor")]
    series = [("W1", "cycles_per_s", "create+delete"), ("W2", "cycles_per_s", "create+delete"),
              ("W3a", "increments_per_s", "blind-set"), ("W3b", "increments_per_s", "get+set-loop")]
    data = os.path.join(out, "peers-chart.dat")
    png = os.path.join(out, "peers-chart.png")
    if not any(value(rows, r, lib, work, key) is not None
               for work, key, _ in series for lib, _ in libs for r in rounds):
        print("\nchart: not drawn (it shows W1, W2, W3a and W3b: none of them ran)")
        return
    with open(data, "w") as f:
        f.write("# work " + " ".join(l[1].replace(" ", "_") for l in libs) + "\n")
        for work, key, floor in series:
            cells = []
            for lib, _ in libs:
                lw = work
                if lib == "raw-c":
                    lw = floor
                vals = []
                for r in rounds:
                    v = value(rows, r, lib, lw, key)
                    if v is None and lib == "curator" and work.startswith("W3"):
                        v = value(rows, r, "curator-dal", lw, key)
                    if v is not None:
                        vals.append(v)
                cells.append(f"{statistics.median(vals):.1f}" if vals else "NaN")
            f.write(work + " " + " ".join(cells) + "\n")
    script = f"""
set terminal png size 1000,560 font ",11"
set output '{png}'
set title "Operations per second, median of {len(rounds)} rounds ({label}); W3 Curator = DistributedAtomicLong"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set xrange [-0.5:{len(series) - 0.5}]
set xlabel "floors (raw C client): W1, W2 sync create+delete; W3a blind setData; W3b get + versioned set loop"
set ylabel "operations/s (higher is better)"
set grid ytics
set key top right
plot '{data}' using 2:xtic(1) title 'zkrecipes', '' using 3 title 'Curator', \\
     '' using 4 title 'kazoo', '' using 5 title 'raw C floor'
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        print(f"\nchart: {png}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"\nchart: not drawn ({e})")


if __name__ == "__main__":
    main()
