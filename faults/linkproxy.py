# SPDX-License-Identifier: Apache-2.0
"""linkproxy - plain TCP proxies on the links between ensemble members.

Each member of the fault suite's ensemble reaches every other member (its
quorum port and its election port) through a proxy of its own: the member
i's configuration names, for server.j, the ports of the proxies (i -> j),
which forward to j's real ports. Every byte between two servers therefore
crosses a proxy that knows which member sent it and which one receives it,
and the suite can cut the flow of bytes from one member to another:

  block(a, b)     bytes from a to b are held (on every link carrying them:
                  a's connections to b and b's connections to a); b's bytes
                  to a still flow: one-way loss. block both ways: a partition
  unblock(a, b)   the held bytes go out, in order, and the flow goes on
  heal()          every flow unblocked

Held, not dropped: a partition delays segments, it does not corrupt a TCP
stream; when it heals, what the peer had sent arrives (the members' own
timeouts decide whether they waited for it). A connection closed by one side
during a block is passed on when the block ends, as its bytes are. A new
connection through a blocked link is accepted but connected to its target
only once bytes may flow both ways (the connecting member sees a connection
that stays silent, as with a partition after the handshake).

The proxies listen on ports bound before the members start (their numbers
go into the members' configurations); the targets are read, per accepted
connection, from a file of lines "SRC DST KIND LISTEN_PORT TARGET_PORT"
(tests/zk/zkctl.sh writes DIR/links), so a member restarted on the same
ports is found again. One thread per listener and two per connection.

Python 3.11 standard library only.
"""

from __future__ import annotations

import socket
import struct
import threading

__all__ = ["LinkHub"]

RECV = 64 * 1024
LINGER0 = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class _Pump(threading.Thread):
    """Moves one direction of one connection: src socket -> dst socket,
    holding bytes (and the end of the stream) while the flow is blocked."""

    def __init__(self, conn: "_Conn", src, dst, frm: int, to: int):
        super().__init__(daemon=True)
        self.conn, self.src, self.dst, self.frm, self.to = conn, src, dst, frm, to

    def run(self):
        hub = self.conn.hub
        try:
            while True:
                try:
                    data = self.src.recv(RECV)
                except OSError:
                    data = None  # reset by that side
                hub._wait_open(self.frm, self.to, self.conn)
                if self.conn.closed:
                    return
                if not data:
                    if data is None:
                        self.conn.close(rst=True)
                    else:
                        try:
                            self.dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            self.conn.close(rst=True)
                        self.conn.half_closed()
                    return
                hub._count(len(data))
                self.dst.sendall(data)
        except OSError:
            self.conn.close(rst=True)


class _Conn:
    def __init__(self, hub: "LinkHub", a: socket.socket, b: socket.socket, src: int, dst: int):
        self.hub, self.a, self.b = hub, a, b
        self.closed = False
        self.halves = 0
        self.lock = threading.Lock()
        # a: the connecting member (src); b: the member connected to (dst)
        self.pumps = (_Pump(self, a, b, src, dst), _Pump(self, b, a, dst, src))

    def start(self):
        for p in self.pumps:
            p.start()

    def half_closed(self):
        with self.lock:
            self.halves += 1
            done = self.halves == 2
        if done:
            self.close(rst=False)

    def close(self, rst: bool):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.a, self.b):
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                s.close()
            except OSError:
                pass
        self.hub._forget(self)


class LinkHub:
    """The link proxies of one ensemble. Every method may be called from any
    thread."""

    def __init__(self, links_file: str | None = None):
        self.links_file = links_file
        self._cv = threading.Condition()
        self._blocked: set[tuple[int, int]] = set()
        self._listeners: dict[int, tuple[socket.socket, int, int, str]] = {}
        self._conns: set[_Conn] = set()
        self._closed = False
        self.stats = {"accepted": 0, "bytes": 0, "connect_failures": 0, "held_flows": 0}

    # -- set-up --
    def listen(self, src: int, dst: int, kind: str) -> int:
        """A listener for member src's connections to member dst's kind
        (quorum or election) port; returns its port."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        port = ls.getsockname()[1]
        self._listeners[port] = (ls, src, dst, kind)
        threading.Thread(target=self._accept_loop, args=(port,), daemon=True).start()
        return port

    def listen_all(self, n: int) -> list[int]:
        """Listeners for every ordered pair of n members, in the order
        tests/zk/zkctl.sh reads ZKCTL_LINK_PORTS: for i, for j != i: the
        quorum port, then the election port."""
        ports = []
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                if i != j:
                    ports += [self.listen(i, j, "quorum"), self.listen(i, j, "election")]
        return ports

    # -- faults --
    def block(self, a: int, b: int) -> None:
        with self._cv:
            self._blocked.add((a, b))

    def unblock(self, a: int, b: int) -> None:
        with self._cv:
            self._blocked.discard((a, b))
            self._cv.notify_all()

    def isolate(self, m: int, others) -> None:
        """Partition member m from each of others, both ways."""
        with self._cv:
            for o in others:
                self._blocked |= {(m, o), (o, m)}

    def heal(self) -> None:
        with self._cv:
            self._blocked.clear()
            self._cv.notify_all()

    def blocked(self) -> set[tuple[int, int]]:
        with self._cv:
            return set(self._blocked)

    def connections(self) -> int:
        with self._cv:
            return len(self._conns)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._blocked.clear()
            self._cv.notify_all()
            conns = list(self._conns)
        for ls, *_ in self._listeners.values():
            try:
                ls.close()
            except OSError:
                pass
        for c in conns:
            c.close(rst=True)

    # -- internals --
    def _target(self, port: int):
        if not self.links_file:
            return None
        try:
            with open(self.links_file) as f:
                for line in f:
                    p = line.split()
                    if len(p) == 5 and int(p[3]) == port:
                        return int(p[4])
        except (OSError, ValueError):
            return None
        return None

    def _wait_open(self, frm: int, to: int, conn: _Conn | None = None) -> None:
        with self._cv:
            if (frm, to) in self._blocked and not self._closed:
                self.stats["held_flows"] += 1
            while (frm, to) in self._blocked and not self._closed and not (conn and conn.closed):
                self._cv.wait(0.2)

    def _count(self, n: int) -> None:
        with self._cv:
            self.stats["bytes"] += n

    def _forget(self, conn: _Conn) -> None:
        with self._cv:
            self._conns.discard(conn)

    def _accept_loop(self, port: int) -> None:
        ls, src, dst, _ = self._listeners[port]
        while True:
            try:
                a, _ = ls.accept()
            except OSError:
                return  # closed
            with self._cv:
                if self._closed:
                    a.close()
                    return
                self.stats["accepted"] += 1
            threading.Thread(target=self._connect, args=(a, port, src, dst), daemon=True).start()

    def _connect(self, a: socket.socket, port: int, src: int, dst: int) -> None:
        # bytes may flow both ways before the target sees a connection
        self._wait_open(src, dst)
        self._wait_open(dst, src)
        target = self._target(port)
        b = None
        if target is not None:
            try:
                b = socket.create_connection(("127.0.0.1", target), timeout=5)
                b.settimeout(None)
            except OSError:
                b = None
        if b is None:
            with self._cv:
                self.stats["connect_failures"] += 1
            try:
                a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                a.close()
            except OSError:
                pass
            return
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(self, a, b, src, dst)
        with self._cv:
            if self._closed:
                conn.closed = True
                a.close()
                b.close()
                return
            self._conns.add(conn)
        conn.start()
