#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kazoo_bench - the kazoo Python client as a peer for zkr_bench.

    /usr/bin/python3 kazoo_bench.py HOSTS ROOT WORKLOADS

HOSTS is a ZooKeeper connect string, ROOT a znode path prefix (created when
missing), WORKLOADS a comma list of w1,w2,r1,r2,s1,q1,w3a,w3b,w4,c1,c2,d1 (run in
that order).

stdout carries only machine-readable lines
    RESULT lib=kazoo work=<W> <key>=<value>
stderr short progress lines. Exit status 0 on success, 1 (with a one-line
message on stderr) on any unexpected error, 2 on a usage error.

Must run under Debian's /usr/bin/python3 (python3-kazoo 2.8); needs only the
standard library and kazoo.
"""
import logging
import math
import os
import socket
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, ConnectionClosedError,
                              ConnectionLoss, SessionExpiredError)
from kazoo.retry import ForceRetryError, KazooRetry

LIB = "kazoo"
SESSION_TIMEOUT = 10.0  # seconds
START_TIMEOUT = 15  # seconds
BARRIER_TIMEOUT = 60.0  # seconds for all threads of a workload to line up
JOIN_TIMEOUT = 600.0  # seconds for the threads of a workload to finish
ALL_WORKLOADS = ("w1", "w2", "r1", "r2", "s1", "q1", "w3a", "w3b", "w4", "c1", "c2", "d1")
Q1_ITEMS = 400
Q1_FLOW_ITEMS = 200  # Q1-flow-8: put at 50 items/s, under every library's take rate
Q1_FLOW_GAP_NS = 20_000_000

W1_CYCLES = 2000
SHARED_TIMEOUT = 120.0  # seconds for R1, R2, S1 (each takes a few seconds)
W2_SESSIONS, W2_CYCLES = 8, 250
W3A_INCREMENTS = 2000
W3B_SESSIONS, W3B_INCREMENTS = 8, 250
W4_CANDIDATES, W4_REPEATS = 5, 10
W4_SETTLE_S = 0.05
W4_DEADLINE_S = 30.0

HOSTS = None
ROOT = None

# Every client ever started, so that an error path can still close them.
_clients = []
_clients_lock = threading.Lock()


class BenchError(Exception):
    """A check of the benchmark itself failed."""


def progress(msg):
    print("kazoo_bench: " + msg, file=sys.stderr, flush=True)


def result(work, key, value, lib=LIB):
    print("RESULT lib=%s work=%s %s=%.3f" % (lib, work, key, float(value)),
          flush=True)


def pct(values, p):
    """Value at index round((n-1)*p) of the sorted values (halves round up,
    as C's round() does for these non-negative indexes)."""
    v = sorted(values)
    if not v:
        return 0.0
    return v[int(math.floor((len(v) - 1) * p + 0.5))]


def us(ns):
    return ns / 1000.0


def new_client(command_retry=None):
    kwargs = {}
    if command_retry is not None:
        kwargs["command_retry"] = command_retry
    client = KazooClient(hosts=HOSTS, timeout=SESSION_TIMEOUT, **kwargs)
    with _clients_lock:
        _clients.append(client)
    client.start(timeout=START_TIMEOUT)
    return client


def close_client(client):
    try:
        client.stop()
    finally:
        client.close()
        with _clients_lock:
            if client in _clients:
                _clients.remove(client)


def close_clients(clients):
    err = None
    for c in clients:
        try:
            close_client(c)
        except Exception as e:  # keep closing the others
            err = err or e
    if err is not None:
        raise err


class Hung(BenchError):
    """The threads of a workload did not finish in time."""


def run_threads(targets, name, timeout=JOIN_TIMEOUT):
    """Run each target in its own thread; re-raise the first failure."""
    errors = []

    def wrap(fn):
        def body():
            try:
                fn()
            except BaseException as e:  # reported by the main thread
                errors.append(e)
        return body

    threads = [threading.Thread(target=wrap(fn), name="%s-%d" % (name, i),
                                daemon=True)
               for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise Hung("%s: threads still running after %.0f s" % (name, timeout))


def start_barrier(parties):
    """A barrier whose release time is recorded in stamp[0]."""
    stamp = [None]

    def released():
        stamp[0] = time.perf_counter_ns()

    return threading.Barrier(parties, action=released,
                             timeout=BARRIER_TIMEOUT), stamp


# ------------------------------------------------------- what it costs ----
# Client CPU of this process (every thread: kazoo's and the interpreter's) and,
# from each server of HOSTS, requests and bytes received ("mntr", summed) and
# transactions (the zxid of "srvr", the most of any), as zkr_bench measures.

def four_letters(host, port, cmd):
    with socket.create_connection((host, port), timeout=2) as so:
        so.sendall(cmd.encode())
        out = b""
        while True:
            chunk = so.recv(65536)
            if not chunk:
                return out.decode("utf-8", "replace")
            out += chunk


def cost_now():
    c = {"cpu_us": time.process_time() * 1e6, "req": 0.0, "txn": 0.0,
         "bytes": 0.0, "ok": True}
    for h in HOSTS.split("/", 1)[0].split(","):
        host, _, port = h.rpartition(":")
        try:
            m = four_letters(host, int(port), "mntr")
            s = four_letters(host, int(port), "srvr")
            vals = dict(line.split("\t", 1) for line in m.splitlines() if "\t" in line)
            c["req"] += float(vals["zk_packets_received"])
            c["bytes"] += float(vals["zk_bytes_received_count"])
            z = s.split("Zxid: ", 1)[1].split()[0]
            c["txn"] = max(c["txn"], float(int(z, 16) & 0xffffffff))
        except (OSError, KeyError, IndexError, ValueError):
            c["ok"] = False
    return c


def cost_record(work, a, b, ops):
    result(work, "cpu_us_per_op", (b["cpu_us"] - a["cpu_us"]) / ops)
    if a["ok"] and b["ok"]:
        result(work, "server_requests_per_op", (b["req"] - a["req"]) / ops)
        result(work, "server_txns_per_op", (b["txn"] - a["txn"]) / ops)
        result(work, "server_bytes_in_per_op", (b["bytes"] - a["bytes"]) / ops)


# ---------------------------------------------------------------- W1 ----

def w1():
    client = new_client()
    try:
        lock = client.Lock(ROOT + "/w1", "bench")
        lock.acquire()  # unmeasured: creates the path, warms the session
        lock.release()
        acq, rel = [], []
        clock = time.perf_counter_ns
        c0 = cost_now()
        start = clock()
        for _ in range(W1_CYCLES):
            t0 = clock()
            if not lock.acquire():
                raise BenchError("W1: acquire returned False")
            t1 = clock()
            lock.release()
            t2 = clock()
            acq.append(t1 - t0)
            rel.append(t2 - t1)
        total = clock() - start
        c1 = cost_now()
    finally:
        close_client(client)
    cost_record("W1", c0, c1, W1_CYCLES)
    result("W1", "cycles_per_s", W1_CYCLES / (total / 1e9))
    result("W1", "acquire_p50_us", us(pct(acq, 0.5)))
    result("W1", "acquire_p99_us", us(pct(acq, 0.99)))
    result("W1", "release_p50_us", us(pct(rel, 0.5)))
    result("W1", "release_p99_us", us(pct(rel, 0.99)))


# ---------------------------------------------------------------- W2 ----

def w2():
    path = ROOT + "/w2"
    clients = []
    try:
        for _ in range(W2_SESSIONS):
            clients.append(new_client())
        barrier, started = start_barrier(W2_SESSIONS)
        guard = threading.Lock()
        state = {"inside": 0, "violations": 0}
        latencies = [[] for _ in clients]
        finished = [0] * len(clients)

        def worker(i):
            lock = clients[i].Lock(path, "bench")
            lat = latencies[i]
            clock = time.perf_counter_ns
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                raise BenchError("W2: start barrier broken")
            for _ in range(W2_CYCLES):
                t0 = clock()
                if not lock.acquire():
                    raise BenchError("W2: acquire returned False")
                lat.append(clock() - t0)
                with guard:
                    if state["inside"]:
                        state["violations"] += 1
                    state["inside"] += 1
                with guard:
                    state["inside"] -= 1
                lock.release()
            finished[i] = clock()

        def target(i):
            def fn():
                try:
                    worker(i)
                except BaseException:
                    barrier.abort()
                    raise
            return fn

        c0 = cost_now()
        run_threads([target(i) for i in range(len(clients))], "w2")
        c1 = cost_now()
        elapsed = max(finished) - started[0]
    finally:
        close_clients(clients)
    total = W2_SESSIONS * W2_CYCLES
    cost_record("W2", c0, c1, total)
    acq = [x for lat in latencies for x in lat]
    if len(acq) != total:
        raise BenchError("W2: %d acquires measured, expected %d"
                         % (len(acq), total))
    result("W2", "cycles_per_s", total / (elapsed / 1e9))
    result("W2", "acquire_p50_us", us(pct(acq, 0.5)))
    result("W2", "acquire_p99_us", us(pct(acq, 0.99)))
    result("W2", "exclusion_violations", state["violations"])


# ---------------------------------------------------------- R1, R2, S1 ----

def shared(work, n, writers, per, max_leases):
    """n sessions, the first `writers` of them writers (the rest readers) of a
    ReadLock/WriteLock pair, or with max_leases all taking a Semaphore of that
    size; each holds 1 ms."""
    path = ROOT + "/" + work.lower()
    clients = []
    try:
        for _ in range(n):
            clients.append(new_client())
        barrier, started = start_barrier(n)
        guard = threading.Lock()
        state = {"readers": 0, "writers": 0, "leases": 0, "violations": 0}
        latencies = [[] for _ in clients]
        writer_lat = []
        finished = [0] * len(clients)

        def worker(i):
            writer = not max_leases and i < writers
            if max_leases:
                lock = clients[i].Semaphore(path, "bench-%d" % i, max_leases)
                side = "leases"
            elif writer:
                lock, side = clients[i].WriteLock(path, "bench"), "writers"
            else:
                lock, side = clients[i].ReadLock(path, "bench"), "readers"
            lat = latencies[i]
            clock = time.perf_counter_ns
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                raise BenchError(work + ": start barrier broken")
            for _ in range(per):
                t0 = clock()
                if not lock.acquire():
                    raise BenchError(work + ": acquire returned False")
                waited = clock() - t0
                lat.append(waited)
                with guard:
                    if writer:
                        writer_lat.append(waited)
                        if state["writers"] or state["readers"]:
                            state["violations"] += 1
                    elif max_leases:
                        if state["leases"] >= max_leases:
                            state["violations"] += 1
                    elif state["writers"]:
                        state["violations"] += 1
                    state[side] += 1
                time.sleep(0.001)
                with guard:
                    state[side] -= 1
                lock.release()
            finished[i] = clock()

        def target(i):
            def fn():
                try:
                    worker(i)
                except BaseException:
                    barrier.abort()
                    raise
            return fn

        c0 = cost_now()
        try:
            run_threads([target(i) for i in range(len(clients))], work.lower(),
                        SHARED_TIMEOUT)
        except Hung:
            # kazoo's ReadLock/WriteLock can wait for ever when readers and
            # writers mix: say so, with how far it got, and go on.
            done = sum(len(lat) for lat in latencies)
            progress("%s: hung after %d of %d acquires (%.0f s)"
                     % (work, done, n * per, SHARED_TIMEOUT))
            result(work, "hung", 1)
            result(work, "acquires_before_hang", done)
            return
        c1 = cost_now()
        elapsed = max(finished) - started[0]
    finally:
        close_clients(clients)
    total = n * per
    cost_record(work, c0, c1, total)
    acq = [x for lat in latencies for x in lat]
    if len(acq) != total:
        raise BenchError("%s: %d acquires measured, expected %d" % (work, len(acq), total))
    result(work, "cycles_per_s", total / (elapsed / 1e9))
    result(work, "acquire_p50_us", us(pct(acq, 0.5)))
    result(work, "acquire_p99_us", us(pct(acq, 0.99)))
    if writers:
        result(work, "writer_wait_p99_us", us(pct(writer_lat, 0.99)))
    result(work, "violations", state["violations"])


def r1():
    shared("R1", 8, 0, 100, 0)


def r2():
    shared("R2", 10, 2, 50, 0)


def s1():
    shared("S1", 8, 0, 60, 3)


# ---------------------------------------------------------------- Q1 ----

def q1_one(lib, make):
    """Q1-put: one client puts Q1_ITEMS; Q1-take-1 / Q1-take-8: 1 or 8 clients
    take them (LockingQueue: get + consume, at least once; Queue: get, at most
    once); Q1-flow-8: a producer paced at 50 items/s and 8 consumers at once,
    with each item's put -> take latency."""
    locking = lib == "kazoo-locking"
    for phase, consumers in (("Q1-take-1", 1), ("Q1-take-8", 8), ("Q1-flow-8", 8)):
        flow = phase == "Q1-flow-8"
        items = Q1_FLOW_ITEMS if flow else Q1_ITEMS
        path = "%s/q1-%s-%s" % (ROOT, lib, phase)
        put_ns, lat = [0] * items, [0] * items
        producer = new_client()
        pq = make(producer, path)
        if not flow:
            try:
                t0 = time.monotonic_ns()
                for k in range(Q1_ITEMS):
                    pq.put(str(k).encode())
                if consumers == 1:
                    result("Q1-put", "puts_per_s",
                           Q1_ITEMS / ((time.monotonic_ns() - t0) / 1e9), lib)
            finally:
                close_client(producer)
        clients = [new_client() for _ in range(consumers)]
        taken, lock, errors = [0], threading.Lock(), []
        start = threading.Barrier(consumers + 1, timeout=BARRIER_TIMEOUT)

        def consume(c):
            cq = make(c, path)
            start.wait()
            try:
                while True:
                    with lock:
                        if taken[0] >= items:
                            return
                    v = cq.get(0.2) if locking else cq.get()
                    if v is None:
                        if not locking:
                            time.sleep(0.01)
                        continue
                    k = int(v)  # latency: put until handed over (before consume)
                    if flow and 0 <= k < items:
                        lat[k] = time.monotonic_ns() - put_ns[k]
                    if locking and not cq.consume():
                        raise BenchError("LockingQueue: consume refused")
                    with lock:
                        taken[0] += 1
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=consume, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.monotonic_ns()
        if flow:
            try:
                for k in range(items):
                    wait = t0 + k * Q1_FLOW_GAP_NS - time.monotonic_ns()
                    if wait > 0:
                        time.sleep(wait / 1e9)
                    put_ns[k] = time.monotonic_ns()
                    pq.put(str(k).encode())
            finally:
                close_client(producer)
        for t in threads:
            t.join(JOIN_TIMEOUT)
        elapsed = time.monotonic_ns() - t0
        close_clients(clients)
        if errors:
            raise errors[0]
        if not flow:
            result(phase, "takes_per_s", items / (elapsed / 1e9), lib)
        else:
            result(phase, "put_to_take_p50_us", us(pct(lat, 0.5)), lib)
            result(phase, "put_to_take_p99_us", us(pct(lat, 0.99)), lib)


def q1():
    q1_one("kazoo", lambda c, p: c.Queue(p))
    q1_one("kazoo-locking", lambda c, p: c.LockingQueue(p))


# ---------------------------------------------------------------- W3 ----

def immediate_retry():
    """Retry forever with no wait: delay 0 stays 0 (backoff 1, no jitter)."""
    return KazooRetry(max_tries=-1, delay=0, backoff=1, max_jitter=0,
                      max_delay=0)


def counting_counter(client, path, tally):
    """client.Counter(path) in its default mode, counting version conflicts.

    Counter._inner_change turns a BadVersionError from its versioned set into
    a ForceRetryError, which the client's command retry retries. Wrapping the
    bound method on this instance lets us see each of those without touching
    kazoo."""
    counter = client.Counter(path)
    inner = counter._inner_change

    def inner_change(value):
        try:
            return inner(value)
        except ForceRetryError as e:
            if isinstance(e.__context__, BadVersionError):
                tally[0] += 1
            raise

    counter._inner_change = inner_change
    return counter


def w3(work, sessions, increments):
    path = ROOT + "/" + work.lower()
    expected = sessions * increments
    clients = []
    try:
        checker = new_client()
        clients.append(checker)
        base = checker.Counter(path).value  # creates the node when missing
        if base != 0:
            progress("%s: counter starts at %r, not 0" % (work, base))
        workers = []
        for _ in range(sessions):
            c = new_client(command_retry=immediate_retry())
            clients.append(c)
            workers.append(c)
        barrier, started = start_barrier(sessions)
        tallies = [[0] for _ in workers]
        latencies = [[] for _ in workers]
        finished = [0] * sessions

        def worker(i):
            counter = counting_counter(workers[i], path, tallies[i])
            counter.value  # unmeasured: lets the object check the path once
            lat = latencies[i]
            clock = time.perf_counter_ns
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                raise BenchError("%s: start barrier broken" % work)
            for _ in range(increments):
                t0 = clock()
                counter += 1
                lat.append(clock() - t0)
            finished[i] = clock()

        def target(i):
            def fn():
                try:
                    worker(i)
                except BaseException:
                    barrier.abort()
                    raise
            return fn

        c0 = cost_now()
        run_threads([target(i) for i in range(sessions)], work.lower())
        c1 = cost_now()
        elapsed = max(finished) - started[0]
        final = checker.Counter(path).value  # a fresh Counter object
    finally:
        close_clients(clients)
    lat = [x for ls in latencies for x in ls]
    cost_record(work, c0, c1, expected)
    result(work, "increments_per_s", expected / (elapsed / 1e9))
    result(work, "p50_us", us(pct(lat, 0.5)))
    result(work, "p99_us", us(pct(lat, 0.99)))
    result(work, "conflicts", sum(t[0] for t in tallies))
    result(work, "final_minus_expected", final - base - expected)


def w3a():
    w3("W3a", 1, W3A_INCREMENTS)


def w3b():
    w3("W3b", W3B_SESSIONS, W3B_INCREMENTS)


# ---------------------------------------------------------------- W4 ----

class Candidate(object):
    """One election contender: its own session, Election and thread."""

    def __init__(self, path, ident, cond):
        self.ident = ident
        self.cond = cond
        self.client = new_client()
        self.election = self.client.Election(path, ident)
        self.stop = threading.Event()  # ends the leadership function
        self.led_at = None  # perf_counter_ns when it became leader
        self.closed = False  # its session was closed on purpose
        self.error = None
        self.thread = threading.Thread(target=self._run, name=ident,
                                       daemon=True)

    def start(self):
        self.thread.start()
        # Queued once its sequential node exists: wait for that so that each
        # new candidate lands at the back of the queue in creation order.
        deadline = time.monotonic() + W4_DEADLINE_S
        while self.election.lock.node is None:
            if self.error is not None:
                raise self.error
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise BenchError("W4: %s did not join the election"
                                 % self.ident)
            time.sleep(0.001)

    def _lead(self):
        now = time.perf_counter_ns()
        with self.cond:
            self.led_at = now
            self.cond.notify_all()
        self.stop.wait()

    def _run(self):
        try:
            self.election.run(self._lead)
        except (ConnectionClosedError, ConnectionLoss,
                SessionExpiredError) as e:
            # Leaving the leadership function of a closed session: releasing
            # the lock cannot reach the server any more.
            if not self.closed:
                self.error = e
        except BaseException as e:
            self.error = e

    def finish(self, timeout=10.0):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise BenchError("W4: %s's thread did not exit" % self.ident)
        if self.error is not None:
            raise self.error


def w4():
    path = ROOT + "/w4"
    cond = threading.Condition()
    live = []
    spent = []  # candidates whose clients were closed
    seq = [0]

    def add_candidate():
        c = Candidate(path, "cand-%d" % seq[0], cond)
        seq[0] += 1
        live.append(c)
        c.start()
        return c

    def leaders():
        return [c for c in live if c.led_at is not None]

    failovers = []
    try:
        for _ in range(W4_CANDIDATES):
            add_candidate()
        with cond:
            if not cond.wait_for(lambda: leaders(), W4_DEADLINE_S):
                raise BenchError("W4: nobody became leader")
        for rep in range(W4_REPEATS):
            with cond:
                lead = leaders()
            if len(lead) != 1:
                raise BenchError("W4: %d leaders before failover %d"
                                 % (len(lead), rep + 1))
            old = lead[0]
            time.sleep(W4_SETTLE_S)
            t0 = time.perf_counter_ns()
            old.closed = True
            close_client(old.client)  # no cancel first: the session just ends

            def successor():
                for c in live:
                    if c is not old and c.led_at is not None and c.led_at > t0:
                        return c
                return None

            with cond:
                if not cond.wait_for(lambda: successor() is not None,
                                     W4_DEADLINE_S):
                    raise BenchError("W4: no new leader %.0f s after closing "
                                     "%s" % (W4_DEADLINE_S, old.ident))
                new = successor()
            failovers.append(new.led_at - t0)
            old.stop.set()
            old.finish()
            live.remove(old)
            spent.append(old)
            add_candidate()
        # Wind down: withdraw the waiting candidates, then let the leader go.
        with cond:
            lead = leaders()
        for c in live:
            if c not in lead:
                c.election.cancel()
        for c in lead:
            c.stop.set()
        for c in live:
            c.finish()
    finally:
        for c in live:
            c.stop.set()
        close_clients([c.client for c in live])
    if len(failovers) != W4_REPEATS:
        raise BenchError("W4: %d failovers measured" % len(failovers))
    progress("w4 failovers (us): %s"
             % " ".join("%.0f" % us(x) for x in failovers))
    result("W4", "failover_p50_us", us(pct(failovers, 0.5)))
    result("W4", "failover_min_us", us(min(failovers)))
    result("W4", "failover_max_us", us(max(failovers)))


def c1_run(path, changes, emit):
    """Change to callback: one client sets the node, another follows it with a
    DataWatch; the time from the set to the callback with the new data."""
    w, r = new_client(), new_client()
    try:
        w.ensure_path(path)
        got = threading.Semaphore(0)
        at = [0]
        first = [True]

        def watcher(data, stat):
            if first[0]:  # the initial call with the current value
                first[0] = False
                return
            at[0] = time.monotonic_ns()
            got.release()
        r.DataWatch(path, watcher)
        d = []
        for _ in range(changes):
            t0 = time.monotonic_ns()
            w.set(path, b"12345678")
            if not got.acquire(timeout=30):
                raise RuntimeError("DataWatch missed a change")
            d.append((at[0] - t0) / 1000.0)
        if emit:
            result("C1-node-cache", "p50_us", pct(d, 0.5))
            result("C1-node-cache", "p99_us", pct(d, 0.99))
    finally:
        close_client(r)
        close_client(w)


def c1():
    c1_run(ROOT + "/warm-c1", 50, False)
    c1_run(ROOT + "/c1", 200, True)


def c2_load(path, n, emit):
    """The initial load of a cache of n children with data: kazoo's TreeCache
    (every node read, with watches) from start() to its INITIALIZED event."""
    from kazoo.recipe.cache import TreeCache, TreeEvent
    w = new_client()
    try:
        w.ensure_path(path)
        for b in range(0, n, 100):
            t = w.transaction()
            for i in range(b, min(n, b + 100)):
                t.create("%s/member-%06d" % (path, i), b"host-1.example:8080")
            res = t.commit()
            bad = [r for r in res if isinstance(r, Exception)]
            if bad:
                raise RuntimeError("c2 populate: %r" % bad[0])
    finally:
        close_client(w)
    r = new_client()
    try:
        done = threading.Event()

        def on_event(ev):
            if ev.event_type == TreeEvent.INITIALIZED:
                done.set()
        t0 = time.monotonic()
        cache = TreeCache(r, path)
        cache.listen(on_event)
        cache.start()
        if not done.wait(300):
            raise RuntimeError("TreeCache of %d children never initialized" % n)
        ms = (time.monotonic() - t0) * 1000
        if emit:
            result("C2-children-%d" % n, "load_ms", ms)
        cache.close()
    finally:
        close_client(r)


def c2():
    c2_load(ROOT + "/warm-c2", 200, False)
    for n in (1000, 10000):
        c2_load("%s/c2-%d" % (ROOT, n), n, True)


def expire(client):
    """Expire client's session on the server: a second client with its session
    id and password, stopped; again until one is told the session expired.
    Returns when (monotonic ns) the stop that ended it was made."""
    from kazoo.protocol.states import KazooState
    sid, pw = client.client_id
    closed = time.monotonic_ns()
    for _ in range(20):
        clone = KazooClient(hosts=HOSTS, timeout=SESSION_TIMEOUT)
        clone._session_id, clone._session_passwd = sid, pw
        try:
            clone.start(timeout=5)
            connected = clone.client_id[0] == sid
        except Exception:
            connected = False  # refused: the session is gone
        if connected:
            closed = time.monotonic_ns()
        try:
            clone.stop()
            clone.close()
        except Exception:
            pass
        if not connected:
            return closed
    raise BenchError("could not expire session 0x%x" % sid)


def d1_run(path, changes, expiries, emit):
    """Party membership seen by a watching reader: a Party joined on one client
    (a new member each time), a ChildrenWatch on another that reads each new
    member's identifier. Then whether the Party joins again after its session
    is expired on the server (kazoo's Party does not: reported, not waited for
    beyond a bound)."""
    w, r = new_client(), new_client()
    try:
        w.ensure_path(path)
        want = [None]
        seen = threading.Semaphore(0)
        at = [0]
        known = set()

        def on_children(children):
            for c in children:
                if c in known:
                    continue
                known.add(c)
                try:
                    data, _ = r.get(path + "/" + c)
                except Exception:
                    continue
                if want[0] is not None and data.decode() == want[0]:
                    want[0] = None
                    at[0] = time.monotonic_ns()
                    seen.release()
            known.intersection_update(children)
        r.ChildrenWatch(path, on_children)
        d = []
        for i in range(changes):
            party = w.Party(path, "k%d" % i)
            want[0] = "k%d" % i
            t0 = time.monotonic_ns()
            party.join()
            if not seen.acquire(timeout=30):
                raise BenchError("ChildrenWatch never saw member k%d" % i)
            d.append(us(at[0] - t0))
            party.leave()
        if emit:
            result("D1-register-seen", "p50_us", pct(d, 0.5))
            result("D1-register-seen", "p99_us", pct(d, 0.99))
        if expiries:
            party = w.Party(path, "again")
            want[0] = "again"
            party.join()
            if not seen.acquire(timeout=30):
                raise BenchError("ChildrenWatch never saw member again")
            want[0] = "again"
            closed = expire(w)
            back = seen.acquire(timeout=10)
            if emit:
                if back:
                    result("D1-reregister-after-expiry", "p50_ms",
                           (at[0] - closed) / 1e6)
                else:
                    result("D1-reregister-after-expiry", "rejoined_within_10s", 0)
    finally:
        close_client(r)
        close_client(w)


def d1():
    d1_run(ROOT + "/warm-d1", 50, 0, False)
    d1_run(ROOT + "/d1", 200, 1, True)


WORKLOADS = {"w1": w1, "w2": w2, "r1": r1, "r2": r2, "s1": s1, "q1": q1, "w3a": w3a, "w3b": w3b, "w4": w4, "c1": c1, "c2": c2,
             "d1": d1}


def main(argv):
    global HOSTS, ROOT
    if len(argv) != 4:
        print("usage: kazoo_bench.py HOSTS ROOT WORKLOADS (comma list of %s)"
              % ",".join(ALL_WORKLOADS), file=sys.stderr)
        return 2
    HOSTS, ROOT = argv[1], argv[2].rstrip("/")
    wanted = [w.strip().lower() for w in argv[3].split(",") if w.strip()]
    bad = [w for w in wanted if w not in WORKLOADS]
    if not ROOT.startswith("/") or bad or not wanted:
        print("kazoo_bench: bad arguments: ROOT must start with '/', "
              "WORKLOADS must be a comma list of %s"
              % ",".join(ALL_WORKLOADS), file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="kazoo_bench: %(name)s: %(message)s")

    client = new_client()
    try:
        client.ensure_path(ROOT)
    finally:
        close_client(client)
    for w in ALL_WORKLOADS:  # the fixed order, whatever order was given
        if w in wanted:
            t = time.monotonic()
            progress("%s ..." % w)
            WORKLOADS[w]()
            progress("%s done in %.1f s" % (w, time.monotonic() - t))
    return 0


def _emergency_close():
    """Best effort on the error path: end the sessions we still hold."""
    with _clients_lock:
        left = list(_clients)

    def closer():
        for c in left:
            try:
                c.stop()
                c.close()
            except Exception:
                pass

    t = threading.Thread(target=closer, daemon=True)
    t.start()
    t.join(5.0)


if __name__ == "__main__":
    try:
        rc = main(sys.argv)
    except KeyboardInterrupt:
        print("kazoo_bench: interrupted", file=sys.stderr, flush=True)
        _emergency_close()
        os._exit(130)
    except BaseException as e:
        msg = str(e).replace("\n", " ") or repr(e)
        print("kazoo_bench: error: %s: %s" % (type(e).__name__, msg),
              file=sys.stderr, flush=True)
        _emergency_close()
        os._exit(1)
    sys.stdout.flush()
    sys.exit(rc)
