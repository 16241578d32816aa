"""Self-test of faults/zkproxy.py against a real ZooKeeper server.

Run from the repository root:

    tests/zk/with-zk.sh --standalone -- /usr/bin/python3 faults/test_zkproxy.py

The server comes from ZKR_TEST_STANDALONE ("host:port[,host:port...]").
kazoo is the ZooKeeper client; one more kazoo client, connected directly to
the server, checks what really happened there.  Prints
"zkproxy self-test: ok" and exits 0, or prints the failure and exits 1.
Set ZKPROXY_TEST_VERBOSE=1 to see kazoo's log and the steps' timings.
"""

import logging
import os
import random
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from selftest import Failure, check, wait_for  # noqa: E402
from zkproxy import WRITE_OPS, ProxyHub  # noqa: E402

from kazoo.client import KazooClient, KazooState  # noqa: E402
from kazoo.exceptions import ConnectionLoss  # noqa: E402

VERBOSE = os.environ.get("ZKPROXY_TEST_VERBOSE") == "1"
# Session time-out of the proxied client.  kazoo drops a silent connection
# after 2/3 of it and the server expires the session after all of it, so a
# blackhole noticed by kazoo itself still leaves about 3 s to reconnect.
SESSION_TIMEOUT = 9.0
T0 = time.monotonic()


def log(msg):
    if VERBOSE:
        print(f"[{time.monotonic() - T0:6.2f}] {msg}", flush=True)


class StateLog:
    """Records kazoo connection state changes (called from kazoo's thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.states = []

    def __call__(self, state):
        with self.lock:
            self.states.append(state)
        log(f"kazoo state {state}")

    def mark(self):
        with self.lock:
            return len(self.states)

    def since(self, mark):
        with self.lock:
            return list(self.states[mark:])


def wait_reconnected(kz, states, mark, timeout, what):
    """Wait until kazoo went SUSPENDED and then CONNECTED after mark."""

    def ok():
        seen = states.since(mark)
        check(KazooState.LOST not in seen, f"{what}: session lost ({seen})")
        if KazooState.SUSPENDED not in seen:
            return False
        after = seen[seen.index(KazooState.SUSPENDED):]
        return KazooState.CONNECTED in after and kz.connected

    wait_for(ok, timeout, f"{what}: SUSPENDED then CONNECTED")


# -- raw wire helpers (for the framing tests) ---------------------------------


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def connect_request(timeout_ms=4000) -> bytes:
    # protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (len + 16
    # bytes), readOnly
    return frame(struct.pack(">iqiqi", 0, 0, timeout_ms, 0, 16) + bytes(16) + b"\0")


def request(xid, op, body=b"") -> bytes:
    return frame(struct.pack(">ii", xid, op) + body)


def zk_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            raise Failure("raw: timed out reading from the proxy") from None
        if not chunk:
            raise Failure(f"raw: connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return buf


def recv_frame(sock, timeout=5.0):
    deadline = time.monotonic() + timeout
    (n,) = struct.unpack(">i", recv_exact(sock, 4, deadline))
    return recv_exact(sock, n, deadline)


def wait_closed(sock, timeout, what):
    """The proxy must close sock (EOF or reset) within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(4096) == b"":
                return
        except (ConnectionResetError, BrokenPipeError):
            return
        except socket.timeout:
            raise Failure(f"{what}: proxy did not close the connection in {timeout} s") from None


def dead_port():
    """A loopback port with nothing listening on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- the tests ------------------------------------------------------------------


def test_raw(hub, upstreams):
    """Frames split byte by byte and several per read; bad length; refused
    upstream; orderly close propagated."""
    p = hub.add_client("raw", upstreams)
    host, port = p.hosts.split(",")[0].split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    try:
        for b in connect_request():  # one byte per send
            s.sendall(bytes([b]))
            time.sleep(0.001)
        resp = recv_frame(s)
        _, _, sid = struct.unpack_from(">iiq", resp)
        check(sid != 0, "raw: no session id in ConnectResponse")
        # exists("/") and a ping in one send.
        s.sendall(request(1, 3, zk_string("/") + b"\0") + request(-2, 11))
        xid, _, err = struct.unpack_from(">iqi", recv_frame(s))
        check((xid, err) == (1, 0), f"raw: exists reply xid={xid} err={err}")
        xid, _, err = struct.unpack_from(">iqi", recv_frame(s))
        check(xid == -2, f"raw: ping reply xid={xid}")
        # closeSession: the server replies and closes; the proxy must
        # deliver the reply and then close the client side.
        s.sendall(request(2, -11))
        xid, _, err = struct.unpack_from(">iqi", recv_frame(s))
        check(xid == 2, f"raw: closeSession reply xid={xid}")
        wait_closed(s, 5, "raw: close after closeSession")
    finally:
        s.close()
    wait_for(lambda: p.stats()["connections"] == 0, 5, "raw: connection gone")
    st = p.stats()
    check(st["frames_c2s"] == 4 and st["frames_s2c"] == 4, f"raw: frame counts {st}")

    # A negative frame length is a protocol error: the proxy resets.
    s = socket.create_connection((host, int(port)), timeout=5)
    try:
        s.sendall(b"\xff\xff\xff\xfe" + b"junk")
        wait_closed(s, 5, "raw: bad frame length")
    finally:
        s.close()
    wait_for(lambda: p.stats()["protocol_errors"] == 1, 5, "raw: protocol error counted")

    # Upstream down: the client side is closed promptly.
    d = hub.add_client("dead", [("127.0.0.1", dead_port())])
    host, port = d.hosts.split(":")
    # The proxy may reset the connection before connect() even returns.
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
    except ConnectionResetError:
        s = None
    if s is not None:
        try:
            s.sendall(connect_request())
        except (ConnectionResetError, BrokenPipeError):
            pass
        try:
            wait_closed(s, 3, "raw: refused upstream")
        finally:
            s.close()
    wait_for(lambda: d.stats()["connect_failures"] == 1, 5, "dead: connect failure counted")
    check(d.stats()["connections"] == 0, f"dead: connection left behind {d.stats()}")
    log(f"raw ok: raw={p.stats()} dead={d.stats()}")


def test_cut(hub, upstreams):
    """cut([1]): connections to upstream 1 are blackholed, those to upstream 0
    pass; set_pass() resets the cut connection that lost bytes, and a new one
    through upstream 1 passes again."""
    p = hub.add_client("cut", [upstreams[0], upstreams[0]])
    (h0, p0), (h1, p1) = (x.split(":") for x in p.hosts.split(","))

    def session(host, port):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(connect_request())
        return s

    def exists_ok(s, xid):
        s.sendall(request(xid, 3, zk_string("/") + b"\0"))
        rx, _, err = struct.unpack_from(">iqi", recv_frame(s))
        return (rx, err) == (xid, 0)

    p.cut([1])
    a = session(h0, p0)
    try:
        recv_frame(a)
        check(exists_ok(a, 1), "cut: upstream 0 does not pass")
        b = session(h1, p1)
        b.settimeout(1.0)
        try:
            b.recv(1)
            raise Failure("cut: upstream 1 answered through the cut")
        except socket.timeout:
            pass
        check(p.stats()["blackholed_bytes"] > 0, f"cut: nothing blackholed {p.stats()}")
        p.set_pass()
        wait_closed(b, 5, "cut: the cut connection reset when the cut ends")
        b.close()
        b = session(h1, p1)
        b.settimeout(5)
        recv_frame(b)
        check(exists_ok(b, 2), "cut: upstream 1 does not pass after set_pass")
        check(exists_ok(a, 3), "cut: upstream 0 stopped passing")
        b.close()
    finally:
        a.close()
    log(f"cut ok: {p.stats()}")


def test_kazoo(hub, upstreams, server_hosts):
    base = f"/zkproxy-test-{os.getpid()}"
    p = hub.add_client("kz", upstreams)
    check(
        p.hosts == ",".join(f"127.0.0.1:{port}" for port in p.ports) and len(p.ports) == len(upstreams),
        f"hosts string {p.hosts!r}",
    )
    direct = KazooClient(hosts=server_hosts, timeout=10.0)
    kz = KazooClient(hosts=p.hosts, timeout=SESSION_TIMEOUT)
    states = StateLog()
    kz.add_listener(states)
    clients = [direct, kz]
    try:
        direct.start(timeout=15)
        kz.start(timeout=15)
        sid = kz.client_id[0]

        # -- pass -------------------------------------------------------
        kz.create(base, b"x")
        kz.create(base + "/a", b"hello")
        data, _ = kz.get(base + "/a")
        check(data == b"hello", f"pass: get returned {data!r}")
        kz.set(base + "/a", b"again")
        check(direct.get(base + "/a")[0] == b"again", "pass: set not seen on the server")
        kz.delete(base + "/a")
        check(direct.exists(base + "/a") is None, "pass: delete not seen on the server")
        st = p.stats()
        check(st["accepted"] == 1, f"pass: accepted {st}")
        check(st["frames_c2s"] >= 6 and st["frames_s2c"] >= 6, f"pass: frames {st}")
        log(f"pass ok {st}")

        # -- reset ------------------------------------------------------
        mark = states.mark()
        resets0 = p.stats()["resets"]
        p.reset()
        wait_reconnected(kz, states, mark, 10, "reset")
        check(kz.client_id[0] == sid, "reset: session id changed")
        check(kz.exists(base) is not None, "reset: exists after reconnect")
        st = p.stats()
        check(st["resets"] == resets0 + 1, f"reset: resets {st}")
        check(st["accepted"] >= 2, f"reset: accepted {st}")
        log(f"reset ok {st}")

        # -- blackhole 1 s, with a request lost in it --------------------
        mark = states.mark()
        p.blackhole()
        t = time.monotonic()
        pending = kz.exists_async(base)
        wait_for(lambda: p.stats()["blackholed_bytes"] > 0, 2, "blackhole: bytes discarded")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))  # the partition lasts 1 s
        check(not pending.ready(), "blackhole: a request got an answer through the blackhole")
        check(KazooState.SUSPENDED not in states.since(mark), "blackhole: suspended within 1 s")
        p.set_pass()  # the connection that lost bytes is reset
        wait_reconnected(kz, states, mark, 10, "blackhole 1 s")
        check(kz.client_id[0] == sid, "blackhole 1 s: session id changed")
        wait_for(pending.ready, 5, "blackhole: the lost request to fail")
        check(isinstance(pending.exception, ConnectionLoss), f"blackhole: lost request ended with {pending.exception!r}")
        check(kz.exists(base) is not None, "blackhole: exists after reconnect")
        log(f"blackhole 1 s ok {p.stats()}")

        # -- blackhole until kazoo notices by itself (ping time-out) -----
        mark = states.mark()
        p.blackhole()
        t = time.monotonic()
        wait_for(
            lambda: KazooState.SUSPENDED in states.since(mark),
            SESSION_TIMEOUT,
            "silent blackhole: kazoo to suspend",
        )
        log(f"kazoo noticed the silent blackhole after {time.monotonic() - t:.2f} s")
        p.set_pass()
        wait_reconnected(kz, states, mark, SESSION_TIMEOUT, "silent blackhole")
        check(kz.client_id[0] == sid, "silent blackhole: session id changed (expired?)")
        check(kz.exists(base) is not None, "silent blackhole: exists after reconnect")
        log(f"silent blackhole ok {p.stats()}")

        # -- delay ------------------------------------------------------
        p.delay(50)
        t = time.monotonic()
        kz.exists(base)
        took = time.monotonic() - t
        check(took >= 0.1, f"delay: a round trip took {took * 1000:.1f} ms (< 2 x 50 ms)")
        # Several requests in flight: order must be kept both ways (kazoo
        # would fail on a reply out of order).
        asyncs = [kz.create_async(base + "/seq-", b"", sequence=True) for _ in range(20)]
        names = [a.get(timeout=10) for a in asyncs]
        check(names == sorted(names), "delay: sequential nodes out of order")
        p.set_pass()
        t = time.monotonic()
        kz.exists(base)
        fast = time.monotonic() - t
        check(fast < 0.1, f"delay: still slow after set_pass ({fast * 1000:.1f} ms)")
        log(f"delay ok: {took * 1000:.1f} ms delayed, {fast * 1000:.1f} ms after pass")

        # -- drop_replies -------------------------------------------------
        mark = states.mark()
        p.drop_replies(1.0)
        check(kz.exists(base) is not None, "drop: a read failed")  # not in WRITE_OPS
        lost = None
        try:
            kz.create(base + "/dropped", b"d")
        except ConnectionLoss as exc:
            lost = exc
        check(lost is not None, "drop: the create's reply was not dropped")
        check(direct.exists(base + "/dropped") is not None, "drop: node not created on the server")
        wait_reconnected(kz, states, mark, 10, "drop")
        check(kz.client_id[0] == sid, "drop: session id changed")
        check(p.stats()["dropped_replies"] == 1, f"drop: {p.stats()}")
        p.drop_replies(0.0)
        kz.set(base, b"y")  # prob 0: nothing dropped
        p.set_pass()
        check(p.stats()["dropped_replies"] == 1, f"drop off: {p.stats()}")
        log(f"drop ok {p.stats()}")

        # -- final stats ----------------------------------------------------
        st = p.stats()
        check(st["errors"] == 0, f"stats: errors {st}")
        check(st["resets"] >= 4, f"stats: resets {st}")  # reset, 2 blackholes, drop
        check(st["accepted"] >= 5, f"stats: accepted {st}")
        check(st["blackholed_bytes"] > 0, f"stats: blackholed_bytes {st}")
        check(st["frames_c2s"] > 30 and st["frames_s2c"] > 30, f"stats: frames {st}")
        check(set(st) >= {"accepted", "resets", "dropped_replies", "frames_c2s", "frames_s2c", "blackholed_bytes", "errors"},
              f"stats: keys {sorted(st)}")
        log(f"final stats {st}")

        kz.delete(base, recursive=True)
    finally:
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass


def test_rng(hub, upstreams, seed):
    """The drop decisions follow random.Random(f"{seed}/{name}"): check the
    first draws with a raw client doing creates under prob 0.5."""
    name = "rng"
    p = hub.add_client(name, upstreams)
    rng = random.Random(f"{seed}/{name}")
    host, port = p.hosts.split(",")[0].split(":")
    p.drop_replies(0.5, ops={1})
    expected = [rng.random() < 0.5 for _ in range(8)]
    got = []
    while len(got) < len(expected):
        s = socket.create_connection((host, int(port)), timeout=5)
        try:
            s.sendall(connect_request())
            recv_frame(s)
            while len(got) < len(expected):
                path = f"/zkproxy-rng-{os.getpid()}-{len(got)}"
                # create: path, data, acl (world:anyone ALL), flags
                # ephemeral (1) so nothing is left behind
                acl = struct.pack(">ii", 1, 31) + zk_string("world") + zk_string("anyone")
                body = zk_string(path) + struct.pack(">i", 0) + acl + struct.pack(">i", 1)
                s.sendall(request(len(got) + 1, 1, body))
                try:
                    reply = recv_frame(s)
                except ConnectionResetError:
                    got.append(True)  # reply swallowed, connection reset
                    break
                xid, _, err = struct.unpack_from(">iqi", reply)
                check(err == 0, f"rng: create failed err={err}")
                got.append(False)
        finally:
            s.close()
    check(got == expected, f"rng: drops {got} != expected {expected}")
    check(p.stats()["dropped_replies"] == sum(expected), f"rng: {p.stats()}")
    log(f"rng ok: {got}")


def main():
    if not VERBOSE:
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    else:
        logging.basicConfig(level=logging.INFO)
    server_hosts = os.environ.get("ZKR_TEST_STANDALONE")
    if not server_hosts:
        print("zkproxy self-test: ZKR_TEST_STANDALONE is not set (run under tests/zk/with-zk.sh --standalone)", file=sys.stderr)
        return 2
    upstreams = []
    for hp in server_hosts.split(","):
        h, _, port = hp.rpartition(":")
        upstreams.append((h, int(port)))
    check(WRITE_OPS == frozenset({1, 2, 5, 14, 15, 19}), "WRITE_OPS")
    seed = 4242
    hub = ProxyHub(seed)
    try:
        test_raw(hub, upstreams)
        test_cut(hub, upstreams)
        test_kazoo(hub, upstreams, server_hosts)
        test_rng(hub, upstreams, seed)
        ports = [port for c in ("raw", "kz") for port in hub._clients[c].ports]
    finally:
        hub.close()
    hub.close()  # idempotent
    check(not hub._thread.is_alive(), "close: hub thread still running")
    for port in ports:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            raise Failure(f"close: port {port} still accepts connections")
        except ConnectionRefusedError:
            pass
    print(f"zkproxy self-test: ok ({time.monotonic() - T0:.1f} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as exc:
        print(f"zkproxy self-test: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        import traceback

        traceback.print_exc()
        print("zkproxy self-test: FAILED: unexpected exception", file=sys.stderr)
        sys.exit(1)
