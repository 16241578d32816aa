#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""soak - every recipe for a long run under a random mix of faults.

The fault suite's workloads (faults/faultcheck.py: lock, counter, election,
caches, journal, group, read/write lock, semaphore, queue) run for DURATION
against the throwaway 3-node ensemble, each client through its own proxy and
the members through the link proxies, while:

  - a nemesis picks a fault every 5 to 12 s from every kind the fault suite
    has (server crash and pause, client pause and cut-off, session expiry,
    dropped replies, resets, delays, the leader cut off from its followers,
    a minority partition with clients on both sides, a flapping link, one-way
    loss, a slow and stalled log disk), then heals it;
  - beside the long-lived clients, one client of each kind that takes and
    gives up resources (lock, counter, election, read/write lock, semaphore,
    queue, member) lives 15 to 40 s and is replaced by a new process, again
    and again;
  - every SAMPLE_S seconds: each long-lived client's RSS, open fds and
    threads (from /proc; RSS also split into anonymous and file-backed), its
    heap in use (written by the client every second: fault_client -m,
    mallinfo2, with glibc's per-thread caches off so that the figure counts
    live blocks only), the watches its session holds (the servers' "wchc"),
    the znodes under the run's root (fault_client count) and the servers'
    own watch and znode counts ("mntr").

At the end every checker of the fault suite runs over all the histories
(churned clients included), and each sampled series gets a least-squares
line over the run after its first quarter (warm-up): its growth per hour,
and whether the growth over the run is within noise of zero (no more than
twice the residual standard deviation plus one unit of the series: 1 MiB of
RSS or heap, one fd, thread, watch or znode; RSS is judged only in runs of 10
minutes or more, where allocator warm-up no longer looks like growth). Then
each member is asked for a fingerprint of its tree (they must agree). The
samples, the table and a chart (gnuplot) go to --out. Exit 1 on any
violation or growth.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import faultcheck as fc  # noqa: E402

SAMPLE_S = 5
RSS_JUDGED_FROM_S = 600  # shorter runs report RSS growth without judging it
CHURN_KINDS = ("lock", "counter", "elect", "rwlock", "semaphore", "queue", "member")
# the unit a series may move by without counting as growth
UNIT = {"rss_kb": 1024, "heap_kb": 1024, "fds": 1, "threads": 1, "watches": 1, "znodes": 1}


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise SystemExit(f"soak: bad duration '{text}' (e.g. 30m, 180s, 1h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def four_letters(host, port, word, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        return out.decode(errors="replace")
    except OSError:
        return None


def proc_sample(pid):
    """(RSS kB, open fds, threads, anonymous RSS kB, file-backed RSS kB) of a
    running process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
        rss = int(re.search(r"^VmRSS:\s+(\d+)", st, re.M).group(1))
        thr = int(re.search(r"^Threads:\s+(\d+)", st, re.M).group(1))
        anon = int(re.search(r"^RssAnon:\s+(\d+)", st, re.M).group(1))
        file = int(re.search(r"^RssFile:\s+(\d+)", st, re.M).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds, thr, anon, file
    except (OSError, AttributeError, ValueError):
        return None


def heap_sample(path):
    """kB of heap in use that a client last wrote (fault_client -m), or None."""
    try:
        with open(path) as f:
            return int(f.read().split()[0]) / 1024
    except (OSError, TypeError, ValueError, IndexError):
        return None


def add_totals(row):
    """Totals over the kinds (the README's table and the chart); watches only
    when every server answered (then every long-lived kind has its key)."""
    for key in ("rss_kb", "heap_kb", "fds", "threads", "watches", "znodes"):
        parts = [v for k, v in row.items() if k.split(":")[0] == key
                 and k != "znodes:leader-log"]
        if parts:
            row[f"total:{key}"] = sum(parts)


def fit(points):
    """Least-squares slope (per second) and residual standard deviation."""
    n = len(points)
    if n < 3:
        return 0.0, 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    stt = sum((t - mt) ** 2 for t, _ in points)
    if stt == 0:
        return 0.0, 0.0
    slope = sum((t - mt) * (v - mv) for t, v in points) / stt
    res = [v - (mv + slope * (t - mt)) for t, v in points]
    return slope, math.sqrt(sum(r * r for r in res) / (n - 2))


class Soak(fc.Scenario):
    def __init__(self, f, duration_s, out):
        super().__init__(f, 1, "soak", None, True)
        self.run_s = duration_s
        self.out = out
        self.running = False
        self.long = []  # the long-lived clients (sampled)
        self.nlong = 0
        self.churned = 0
        self.samples = []  # (t, {series: value})
        self.sample_errors = 0
        self.heap_files = True  # clients write their heap in use (fault_client -m)

    def by_kind(self, kind):
        # while running, nemeses pick among live clients only
        cs = [c for c in self.clients if c.kind == kind]
        if self.running:
            cs = [c for c in cs if c.proc.poll() is None] or cs
        return cs

    # -- the run --
    def run(self):
        f = self.fc
        self.running = True
        stop = threading.Event()
        sampler = threading.Thread(target=self.sample_loop, args=(stop,), daemon=True)
        churn, churn_proxy = {}, {}
        try:
            self.start_clients()
            self.long = list(self.clients)
            self.nlong = len(self.long)
            sampler.start()
            end = self.t0 + self.run_s
            next_fault = now() + self.rng.uniform(5, 10)
            while now() < end - 12:
                for k in CHURN_KINDS:
                    c = churn.get(k)
                    if c is not None and c.proc.poll() is None:
                        continue
                    if c is not None:
                        c.release()
                    left = end - 8 - now()
                    if left < 12:
                        continue
                    if k not in churn_proxy:
                        churn_proxy[k] = f.hub.add_client(f"soak/{k}-churn", self.ups)
                    self.churned += 1
                    c = fc.Client(self, k, 100 + self.churned, churn_proxy[k],
                                  min(self.rng.uniform(15, 40), left))
                    self.clients.append(c)
                    churn[k] = c
                if now() >= next_fault and now() < end - 25:
                    self.one_fault()
                    next_fault = now() + self.rng.uniform(5, 12)
                time.sleep(0.25)
        finally:
            self.running = False
            self.undo()
        self.finish()
        stop.set()
        sampler.join(timeout=30)

    def one_fault(self):
        sc = self
        menu = [
            ("crash", lambda: fc.crash(sc, sc.rng.random() < 0.5, 2)),
            ("pause", lambda: fc.pause_server(sc, 2.5)),
            ("client-pause", lambda: fc.isolate_holders(sc, fc.SESSION_MS / 1000 + 1.5, cut=False)),
            ("client-cut", lambda: fc.isolate_holders(sc, fc.SESSION_MS / 1000 + 1.5, cut=True)),
            ("expire", lambda: fc.expire_some(sc)),
            ("drop", lambda: fc.drop_replies(sc, 2, 0.1)),
            ("reset", lambda: fc.reset_all(sc)),
            ("delay", lambda: fc.delay_some(sc, 2)),
            ("leader-isolated", lambda: fc.nem_leader_isolated(sc)),
            ("minority", lambda: fc.nem_minority_partition(sc)),
            ("flap", lambda: fc.nem_link_flap(sc, 6)),
            ("one-way", lambda: fc.nem_one_way(sc)),
            ("slow-disk", lambda: fc.nem_slow_disk(sc)),
        ]
        name, fn = self.rng.choice(menu)
        try:
            fn()
        finally:
            self.undo()

    # -- sampling --
    def sample_loop(self, stop):
        path = os.path.join(self.out, "soak-samples.jsonl")
        with open(path, "w") as out:
            while not stop.is_set():
                t = now()
                if self.running:
                    row = self.sample()
                    self.samples.append((t - self.t0, row))
                    out.write(json.dumps({"t": round(t - self.t0, 2), **row}) + "\n")
                    out.flush()
                stop.wait(max(0.1, SAMPLE_S - (now() - t)))

    def session_ids(self, c):
        try:
            with open(c.session_file) as f:
                return int(f.read().split()[0], 16)
        except (OSError, ValueError, IndexError):
            return None

    def sample(self):
        row = {}
        ens = self.fc.ens
        # per kind: RSS, fds, threads of the long-lived clients that still run
        for c in self.long:
            p = proc_sample(c.proc.pid) if c.proc.poll() is None else None
            if p is None:
                continue
            for key, v in zip(("rss_kb", "fds", "threads"), p):
                row[f"{key}:{c.kind}"] = row.get(f"{key}:{c.kind}", 0) + v
            # RSS in two parts, totals only: anonymous (heap, stacks) and
            # file-backed (code and data of the binaries, paged in on first use)
            for key, v in zip(("total:rss_anon_kb", "total:rss_file_kb"), p[3:]):
                row[key] = row.get(key, 0) + v
            heap = heap_sample(c.heap_file)
            if heap is not None:
                row[f"heap_kb:{c.kind}"] = row.get(f"heap_kb:{c.kind}", 0) + heap
        # watches per session, from every member (a session is on one)
        per_sid, servers_ok = {}, 0
        for i, (h, port) in ens.members.items():
            text = four_letters(h, port, "wchc")
            if text is None or "not executed" in text:
                continue
            servers_ok += 1
            sid = None
            for line in text.splitlines():
                if line.startswith("0x"):
                    sid = int(line, 16)
                elif line.startswith("\t") and sid is not None:
                    per_sid[sid] = per_sid.get(sid, 0) + 1
        if servers_ok == len(ens.members):  # (a member down or paused: not comparable)
            for c in self.long:
                sid = self.session_ids(c)
                if sid is not None and c.proc.poll() is None:
                    key = f"watches:{c.kind}"
                    row[key] = row.get(key, 0) + per_sid.get(sid, 0)
        # znodes under the run's root, per subtree
        try:
            p = subprocess.run([self.fc.client, "count", "-h", ens.hosts, "-p", self.root],
                               capture_output=True, text=True, timeout=20)
            if p.returncode == 0:
                for sub, n in json.loads(p.stdout).items():
                    row[f"znodes:{sub}"] = n
        except (subprocess.TimeoutExpired, ValueError):
            self.sample_errors += 1
        add_totals(row)
        # the servers' own counts
        for i, (h, port) in ens.members.items():
            text = four_letters(h, port, "mntr")
            if not text or "zk_server_state\tleader" not in text:
                continue
            for key in ("zk_znode_count", "zk_watch_count", "zk_num_alive_connections"):
                m = re.search(rf"^{key}\s+(\d+)", text, re.M)
                if m:
                    row[f"server:{key[3:]}"] = int(m.group(1))
        return row

    # -- analysis --
    def growth(self):
        """[(series, mean, growth per hour, growth over the window, sigma, ok)]"""
        keys = sorted({k for _, row in self.samples for k in row})
        start = self.run_s / 4
        out = []
        for k in keys:
            pts = [(t, row[k]) for t, row in self.samples if k in row and t >= start]
            if len(pts) < 3:
                continue
            slope, sigma = fit(pts)
            span = pts[-1][0] - pts[0][0]
            mean = sum(v for _, v in pts) / len(pts)
            over = slope * span
            unit = UNIT.get(k.split(":")[-1] if k.startswith("total:") else k.split(":")[0], 1)
            ok = abs(over) <= 2 * sigma + unit
            # workload data that grows by design is reported, not judged; so is
            # RSS in a run under 10 minutes (allocator warm-up is not a leak)
            if k in ("znodes:leader-log", "server:znode_count", "server:watch_count",
                     "server:num_alive_connections", "total:rss_anon_kb",
                     "total:rss_file_kb") or (
                         "rss_kb" in k and self.run_s < RSS_JUDGED_FROM_S):
                ok = None
            out.append((k, mean, slope * 3600, over, sigma, ok))
        return out

    def chart(self):
        dat = os.path.join(self.out, "soak-chart.dat")
        keys = ["rss_kb", "heap_kb", "fds", "threads", "watches", "znodes"]
        with open(dat, "w") as f:
            f.write("# t_s " + " ".join(keys) + " (totals over the long-lived clients)\n")
            for t, row in self.samples:
                f.write(f"{t:.1f} " + " ".join(
                    "?" if f"total:{k}" not in row else
                    f"{row[f'total:{k}'] / (1024 if k.endswith('_kb') else 1):.2f}"
                    for k in keys) + "\n")
        png = os.path.join(self.out, "soak.png")
        if not shutil.which("gnuplot"):
            return None
        script = f"""
set terminal pngcairo size 1100,800 noenhanced font ",10"
set output '{png}'
set datafile missing '?'
set multiplot layout 3,1 title 'zkrecipes soak: {self.run_s / 60:g} min, {self.nlong} long-lived clients + {self.churned} churned, a fault every 5-12 s'
set key top left
set grid
set xlabel 'seconds'
set ylabel 'MiB'
plot '{dat}' using 1:2 with lines lw 2 title 'RSS, all long-lived clients', '' using 1:3 with lines lw 2 title 'heap in use (malloc)'
set ylabel 'count'
plot '{dat}' using 1:4 with lines lw 2 title 'open fds', '' using 1:5 with lines lw 2 title 'threads'
set key bottom right
plot '{dat}' using 1:6 with lines lw 2 title 'watches of their sessions', '' using 1:7 with lines lw 2 title 'znodes under the root (not the leader log)'
unset multiplot
"""
        p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
        if p.returncode != 0:
            fc.say(f"soak: gnuplot failed: {p.stderr.strip()[:300]}")
            return None
        return png

    def load(self, path):
        """Samples of an earlier run (--from)."""
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                t = row.pop("t")
                if not any(k.startswith("total:") for k in row):
                    add_totals(row)
                self.samples.append((t, row))


def print_table(table):
    fc.say(f"  {'series':32s} {'mean':>10s} {'growth/h':>10s} {'over run':>10s} "
           f"{'noise sd':>9s}  verdict")
    grew = 0
    for k, mean, per_h, over, sigma, ok in table:
        verdict = "reported" if ok is None else ("flat" if ok else "GROWS")
        grew += ok is False
        fc.say(f"  {k:32s} {mean:10.1f} {per_h:10.1f} {over:10.1f} {sigma:9.2f}  {verdict}")
    return grew


def now():
    return fc.now()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="30m")
    ap.add_argument("--out", default="build/soak")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--client", default="build/faults/fault_client")
    ap.add_argument("--zkctl", default="tests/zk/zkctl.sh")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--from", dest="src", default=None,
                    help="redraw the table and chart from a run's soak-samples.jsonl "
                         "(with its --duration and the client counts given as "
                         "--clients LONG,CHURNED) instead of running")
    ap.add_argument("--clients", default="0,0")
    a = ap.parse_args()
    dur = parse_duration(a.duration)
    if a.src:
        sc = Soak.__new__(Soak)
        sc.run_s, sc.out, sc.samples = dur, a.out, []
        sc.nlong, sc.churned = (int(x) for x in a.clients.split(","))
        os.makedirs(a.out, exist_ok=True)
        sc.load(a.src)
        grew = print_table(sc.growth())
        fc.say(f"  chart: {sc.chart()}")
        return 1 if grew else 0
    if dur < 60:
        raise SystemExit("soak: the duration must be at least 60 s")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "big") % 1000000
    os.makedirs(a.out, exist_ok=True)
    fc.leftover_self_test()
    f = fc.FaultCheck(a)

    def on_signal(sig, frame):
        raise SystemExit(f"soak: signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fc.say(f"soak: seed {a.seed}, {dur:g} s; work dir {f.workdir}; samples in {a.out}")
    t_all = now()
    v, table = [], []
    try:
        f.ens.start()
        sc = Soak(f, dur, a.out)
        sc.run()
        v = fc.check_and_report(sc, t_all)
        table = sc.growth()
        png = sc.chart()
    except BaseException:
        fc.say(f"soak: interrupted; histories so far in {f.workdir}")
        raise
    finally:
        left = f.cleanup()
    if left:
        v.append(f"{len(left)} process(es) still running after the run (ended by pid)")
    fc.say(f"\nsoak: {len(sc.long)} long-lived clients, {sc.churned} churned clients, "
           f"{len(sc.faults)} faults, {len(sc.samples)} samples every {SAMPLE_S} s "
           f"(growth fitted after the first {dur / 4:g} s)")
    grew = print_table(table)
    with open(os.path.join(a.out, "soak-table.txt"), "w") as out:
        for k, mean, per_h, over, sigma, ok in table:
            out.write(f"{k}\t{mean:.1f}\t{per_h:.1f}\t{over:.1f}\t{sigma:.2f}\t"
                      f"{'reported' if ok is None else ('flat' if ok else 'GROWS')}\n")
    if png:
        fc.say(f"  chart: {png}")
    failed = bool(v) or grew > 0
    fc.say(f"\nsoak: seed {a.seed}: {len(v)} violations, {grew} growing series "
           f"({now() - t_all:.0f} s): {'FAIL' if failed else 'PASS'}")
    if failed or a.keep:
        fc.say(f"soak: histories kept in {f.workdir}")
    else:
        shutil.rmtree(f.workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
