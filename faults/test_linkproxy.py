#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Self-test of faults/linkproxy.py (no ZooKeeper needed): bytes pass; a
one-way block holds one direction only and delivers the held bytes, in
order, when it ends; a connection made through a blocked link reaches its
target only once the link heals; a close during a block is passed on after
it. Exit 0 on success."""

import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linkproxy import LinkHub  # noqa: E402


def fail(msg):
    raise SystemExit(f"test_linkproxy: FAIL: {msg}")


def recv_exact(s, n, timeout):
    s.settimeout(timeout)
    out = b""
    try:
        while len(out) < n:
            d = s.recv(n - len(out))
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    return out


def main():
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(4)
    d = tempfile.mkdtemp(prefix="zkr-linktest.")
    links = os.path.join(d, "links")
    hub = LinkHub(links)
    port = hub.listen(1, 2, "quorum")
    with open(links, "w") as f:
        f.write(f"1 2 quorum {port} {target.getsockname()[1]}\n")
    try:
        # pass
        a = socket.create_connection(("127.0.0.1", port))
        b, _ = target.accept()
        a.sendall(b"ping")
        if recv_exact(b, 4, 5) != b"ping":
            fail("bytes 1 -> 2 did not pass")
        b.sendall(b"pong")
        if recv_exact(a, 4, 5) != b"pong":
            fail("bytes 2 -> 1 did not pass")
        # one way: 1 -> 2 held, 2 -> 1 flows
        hub.block(1, 2)
        a.sendall(b"held-1")
        b.sendall(b"back")
        if recv_exact(a, 4, 5) != b"back":
            fail("bytes 2 -> 1 did not flow during a 1 -> 2 block")
        if recv_exact(b, 6, 0.5) != b"":
            fail("bytes 1 -> 2 passed a block")
        a.sendall(b"held-2")
        hub.unblock(1, 2)
        if recv_exact(b, 12, 5) != b"held-1held-2":
            fail("held bytes not delivered in order after the block")
        # a close during a block is passed on after it
        hub.isolate(1, [2])
        a.close()
        b.settimeout(0.5)
        try:
            early = b.recv(10)
        except socket.timeout:
            early = None
        if early is not None:
            fail(f"a close passed the block ({early!r})")
        hub.heal()
        if recv_exact(b, 1, 5) != b"":
            fail("the close did not arrive after the block")
        b.close()
        # a new connection through a blocked link waits for the heal
        hub.isolate(2, [1])
        a = socket.create_connection(("127.0.0.1", port))
        target.settimeout(0.5)
        try:
            target.accept()
            fail("connected to the target through a blocked link")
        except socket.timeout:
            pass
        hub.heal()
        target.settimeout(5)
        b, _ = target.accept()
        a.sendall(b"late")
        if recv_exact(b, 4, 5) != b"late":
            fail("bytes did not pass after the heal")
        a.close()
        b.close()
        t = time.monotonic()
        while hub.connections() and time.monotonic() - t < 5:
            time.sleep(0.01)
        if hub.connections():
            fail(f"{hub.connections()} connection(s) left after both sides closed")
    finally:
        hub.close()
        target.close()
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    print("test_linkproxy: ok (pass, one-way hold, delivery in order, close held, "
          "connect held)")


if __name__ == "__main__":
    threading.excepthook = lambda a: fail(f"thread: {a.exc_value!r}")
    main()
