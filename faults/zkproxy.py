"""zkproxy - per-client fault-injecting TCP proxies for ZooKeeper clients.

A ProxyHub runs one background thread with a selectors loop.  Every client
added with ProxyHub.add_client() gets one listening port on 127.0.0.1 per
upstream ZooKeeper server; the client is pointed at ClientProxy.hosts and
its traffic then goes through the proxy, whose mode can be changed at any
time from any thread:

  set_pass()            forward everything (the default)
  blackhole()           partition: read and discard in both directions
  cut(indices)          the same, only on the connections to the upstreams
                        of those indices (a client cut off from some servers
                        and not others); set_pass() ends it too
  reset()               RST every current connection of the client
  delay(ms)             forward every frame ms later, order kept
  drop_replies(p, ops)  swallow the reply to a request whose op is in ops,
                        with probability p, and RST that connection

The modes pass, blackhole, delay and drop_replies exclude one another:
setting one ends the previous one.  reset() is an action, not a mode.

The proxy understands just enough of the ZooKeeper wire protocol to do
this: every message is a frame (int32 big-endian length, then that many
bytes); the first frame each way is the ConnectRequest / ConnectResponse;
later client->server frames start with (int32 xid, int32 type) and later
server->client frames with (int32 xid, int64 zxid, int32 err).  Frames are
buffered until complete and then forwarded whole, in both directions; the
type of every request is remembered by xid so that the reply can be matched.
Four-letter-word commands ("ruok", ...) are not ZooKeeper frames and are
reset as protocol errors.

Details of the modes:

* blackhole: bytes read from either side are counted and thrown away; data
  the proxy already held is kept back.  New connections are accepted but
  never connected upstream.  A server closing its end during the blackhole
  is not passed on (a partition would not carry it); a client closing its
  end closes both.  Leaving the blackhole resets (RST) every connection
  that lost bytes or has no upstream; connections that stayed silent
  carry on.
* delay: due times never go backwards within one direction, so shortening
  the delay keeps the order.  Leaving delay mode sends what is queued at
  once, in order.
* drop_replies: the decision uses random.Random(f"{seed}/{name}"), drawn
  once per reply whose request type is in ops (and only then), so a run
  with the same seed and the same traffic drops the same replies.  The
  Connect frames and the special xids (< 0: watches, pings, auth,
  setWatches) are never dropped.

When one side closes normally, what the proxy still holds for the other
side is delivered (at most DRAIN_TIMEOUT seconds) and then both are closed.
A reset by either side, a refused or timed-out upstream connect, a bad
frame length, or an unexpected error resets both sides.

stats() counters (per client): accepted, resets (connections the proxy
closed with RST for any reason), dropped_replies, frames_c2s and frames_s2c
(whole frames seen each way), blackholed_bytes, connect_failures,
protocol_errors, errors (unexpected exceptions; the connection concerned is
reset and the hub thread goes on), plus the current number of connections
and the mode.  Counters are updated before the client can see the effect
(a reset is counted before the RST is sent).

Python 3.11 standard library only.
"""

from __future__ import annotations

import collections
import errno
import random
import selectors
import socket
import struct
import threading
import time

__all__ = ["ProxyHub", "ClientProxy", "WRITE_OPS"]

# create, delete, setData, multi, create2, createContainer
WRITE_OPS = frozenset({1, 2, 5, 14, 15, 19})

MAX_FRAME = 16 * 1024 * 1024  # larger (or negative) lengths: protocol error
RECV_SIZE = 64 * 1024
# Stop reading from a side while this much is waiting to go the other way
# (back-pressure; the load here is tiny, this only bounds memory).
MAX_PENDING = 4 * 1024 * 1024
CONNECT_TIMEOUT = 5.0  # upstream connect attempt
DRAIN_TIMEOUT = 2.0  # after one side closed: time left to flush the other
COMMAND_TIMEOUT = 10.0  # a public method waiting for the hub thread

_LEN = struct.Struct(">i")
_REQ_HDR = struct.Struct(">ii")  # xid, type (after the length)
_RST_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST

_PASS = "pass"
_BLACKHOLE = "blackhole"
_DELAY = "delay"


def _rst_close(sock: socket.socket | None) -> None:
    """Close sock so that the peer sees a reset (RST), not an orderly FIN."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _plain_close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


class _Side:
    """One socket of a proxied connection (the client's or the server's)."""

    __slots__ = ("sock", "outbuf", "events", "open", "name")

    def __init__(self, sock: socket.socket | None, name: str):
        self.sock = sock
        self.outbuf = bytearray()  # bytes waiting to be sent to this socket
        self.events = 0  # what the selector currently watches for
        self.open = sock is not None
        self.name = name  # "client" or "server", for messages


class _Flow:
    """One direction of a connection: frame reassembly and delay queue."""

    __slots__ = ("conn", "src", "dst", "inbuf", "first", "delayq", "last_due", "c2s")

    def __init__(self, conn: "_Conn", src: _Side, dst: _Side, c2s: bool):
        self.conn = conn
        self.src = src
        self.dst = dst
        self.c2s = c2s
        self.inbuf = bytearray()  # received bytes not yet a whole frame
        self.first = True  # next frame is the Connect request/response
        self.delayq: collections.deque = collections.deque()  # (due, frame)
        self.last_due = 0.0  # keeps due times monotonic within the flow


class _Conn:
    """One accepted client connection and its upstream connection."""

    __slots__ = (
        "proxy", "upstream", "client", "server", "c2s", "s2c", "xids",
        "connecting", "discarded", "draining", "deadline", "dead", "idx",
    )

    def __init__(self, proxy: "ClientProxy", upstream, csock: socket.socket, idx: int = 0):
        self.proxy = proxy
        self.upstream = upstream  # (family, sockaddr) of the server
        self.idx = idx  # its index in the proxy's upstreams
        self.client = _Side(csock, "client")
        self.server = _Side(None, "server")
        self.c2s = _Flow(self, self.client, self.server, True)
        self.s2c = _Flow(self, self.server, self.client, False)
        self.xids: dict[int, int] = {}  # request xid -> op type, until replied
        self.connecting = False  # upstream non-blocking connect in progress
        # True once any byte of this connection was discarded (blackhole):
        # its streams are out of sync, so it is reset when the blackhole ends.
        self.discarded = False
        self.draining = False  # one side closed: flushing, then close both
        self.deadline = None  # monotonic time of connect / drain time-out
        self.dead = False

    def flows(self):
        return (self.c2s, self.s2c)

    def blackholed(self) -> bool:
        p = self.proxy
        return p._mode == _BLACKHOLE or self.idx in p._cut


class ClientProxy:
    """The proxies of one client: one listening port per upstream server.

    Created by ProxyHub.add_client(); every method may be called from any
    thread.  Mode changes are applied by the hub thread; the method returns
    once they are in effect.  After the hub is closed they do nothing.
    """

    def __init__(self, hub: "ProxyHub", name: str, upstreams, seed: int):
        self._hub = hub
        self.name = name
        self.upstreams = list(upstreams)  # as given: [(host, port), ...]
        self.ports: list[int] = []  # listening ports, same order
        self.hosts = ""  # "127.0.0.1:p1,127.0.0.1:p2,..."
        self._listeners: list[socket.socket] = []
        self._targets: list[tuple] = []  # (family, sockaddr), same order
        self._conns: set[_Conn] = set()
        # Mode state: only the hub thread reads or writes these.
        self._mode = _PASS
        self._cut: frozenset = frozenset()  # upstream indices blackholed
        self._delay_s = 0.0
        self._drop_prob = 0.0
        self._drop_ops: frozenset = WRITE_OPS
        self._rng = random.Random(f"{seed}/{name}")
        # Counters: written by the hub thread only; stats() copies them.
        self._stats = {
            "accepted": 0,  # client connections accepted
            "resets": 0,  # connections the proxy closed with RST, any reason
            "dropped_replies": 0,  # replies swallowed by drop_replies
            "frames_c2s": 0,  # whole frames seen client -> server
            "frames_s2c": 0,  # whole frames seen server -> client
            "blackholed_bytes": 0,  # bytes discarded by blackhole
            "connect_failures": 0,  # upstream connects refused / timed out
            "protocol_errors": 0,  # bad frame lengths
            "errors": 0,  # unexpected exceptions while handling a connection
        }

    def __repr__(self):
        return f"<ClientProxy {self.name} {self.hosts} mode={self._mode}>"

    # -- public API ------------------------------------------------------

    def set_pass(self) -> None:
        """Forward normally; ends blackhole, cut, delay and drop_replies."""
        self._hub._call(self._set_mode, _PASS, 0.0, 0.0, None, frozenset())

    def cut(self, indices) -> None:
        """Blackhole the connections to the upstreams of these indices only
        (others keep their mode); cut(()) ends it."""
        idx = frozenset(int(i) for i in indices)
        if any(not 0 <= i < len(self.upstreams) for i in idx):
            raise ValueError("no such upstream")
        self._hub._call(self._set_cut, idx)

    def blackhole(self) -> None:
        """Partition: discard every byte both ways, connect nothing new."""
        self._hub._call(self._set_mode, _BLACKHOLE, 0.0, 0.0, None)

    def delay(self, ms: int) -> None:
        """Forward every frame, both directions, ms milliseconds later."""
        ms = float(ms)
        if ms < 0:
            raise ValueError("delay must be >= 0 ms")
        self._hub._call(self._set_mode, _DELAY if ms > 0 else _PASS, ms / 1000.0, 0.0, None)

    def drop_replies(self, prob: float, ops=WRITE_OPS) -> None:
        """Swallow replies to requests of type in ops with probability prob,
        resetting the connection each time (applied, but ack lost)."""
        prob = float(prob)
        if not 0.0 <= prob <= 1.0:
            raise ValueError("prob must be within [0, 1]")
        self._hub._call(self._set_mode, _PASS, 0.0, prob, frozenset(ops))

    def reset(self) -> None:
        """RST every current connection of this client; the mode is kept."""
        self._hub._call(self._reset_all)

    def stats(self) -> dict:
        """A snapshot of this client's counters (see _stats above)."""
        # Only the hub thread changes the counters; copying a dict of ints is
        # atomic under the GIL, so no lock is needed for a consistent copy.
        snap = dict(self._stats)
        snap["connections"] = len(self._conns)
        snap["mode"] = self._mode
        return snap

    # -- run by the hub thread -------------------------------------------

    def _set_cut(self, idx):
        self._set_mode(self._mode, self._delay_s, self._drop_prob, None, idx)

    def _set_mode(self, mode, delay_s, drop_prob, drop_ops, cut=None):
        hub = self._hub
        was = {conn: conn.blackholed() for conn in self._conns}
        self._mode = mode
        if cut is not None:
            self._cut = cut
        self._delay_s = delay_s
        self._drop_prob = drop_prob
        if drop_ops is not None:
            self._drop_ops = drop_ops
        for conn in list(self._conns):
            try:
                if was.get(conn) and not conn.blackholed() and (
                    conn.discarded or not conn.server.open
                ):
                    # Connections that lost bytes have corrupt streams, and
                    # those accepted during the blackhole were never
                    # connected upstream: reset them.  Untouched
                    # connections just carry on.
                    hub._reset(conn)
                    continue
                if mode != _DELAY:
                    # Frames still waiting in delay queues go out now, in
                    # order (held back if this is a blackhole).
                    for flow in conn.flows():
                        hub._flush_delayq(flow, None)
                hub._update(conn)
                hub._send(conn, conn.client)
                hub._send(conn, conn.server)
                hub._update(conn)
            except Exception:
                self._stats["errors"] += 1
                hub._reset(conn)

    def _reset_all(self):
        for conn in list(self._conns):
            self._hub._reset(conn)


class ProxyHub:
    """Owns the listening sockets and connections of every ClientProxy and
    the one daemon thread that moves their bytes."""

    def __init__(self, seed: int):
        self.seed = seed
        self._clients: dict[str, ClientProxy] = {}
        self._sel = selectors.DefaultSelector()
        # Commands from other threads:
        # (fn, args, done_event, result_box, must_run).
        self._cmds: collections.deque = collections.deque()
        self._cmd_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._delayed: set[_Flow] = set()  # flows with a non-empty delay queue
        self._timed: set[_Conn] = set()  # connections with a deadline
        self.loop_errors = 0  # exceptions outside any one connection
        self._thread = threading.Thread(target=self._run, name="zkproxy-hub", daemon=True)
        self._thread.start()

    # -- public API ------------------------------------------------------

    def add_client(self, name: str, upstreams) -> ClientProxy:
        """Open one proxy port per upstream (host, port) for client name."""
        upstreams = [(str(h), int(p)) for h, p in upstreams]
        if not upstreams:
            raise ValueError("add_client: no upstream servers")
        proxy = ClientProxy(self, name, upstreams, self.seed)
        # Resolve names now, in the caller's thread, so that the hub thread
        # never blocks on a DNS look-up.
        for host, port in upstreams:
            ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            proxy._targets.append((ai[0][0], ai[0][4]))
        try:
            for _ in upstreams:
                ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                proxy._listeners.append(ls)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind(("127.0.0.1", 0))
                ls.listen(64)
                ls.setblocking(False)
                proxy.ports.append(ls.getsockname()[1])
            proxy.hosts = ",".join(f"127.0.0.1:{p}" for p in proxy.ports)
            self._call(self._register_client, proxy, must_run=True)
        except BaseException:
            for ls in proxy._listeners:
                _plain_close(ls)
            raise
        return proxy

    def close(self) -> None:
        """Close every listener and connection and stop the thread."""
        with self._cmd_lock:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
        if not already:
            self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(COMMAND_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- cross-thread commands -------------------------------------------

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # buffer full (a wake-up is pending anyway) or closed

    def _call(self, fn, *args, must_run=False):
        """Run fn(*args) in the hub thread and wait for it; re-raise its
        exception.  After close(): raise if must_run, else do nothing."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        done = threading.Event()
        box: list = []
        with self._cmd_lock:
            if self._closing:
                if must_run:
                    raise RuntimeError("zkproxy: hub is closed")
                return None
            self._cmds.append((fn, args, done, box, must_run))
        self._wake()
        if not done.wait(COMMAND_TIMEOUT):
            raise RuntimeError("zkproxy: hub thread did not answer in time")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def _run_commands(self):
        while True:
            with self._cmd_lock:
                if not self._cmds:
                    return
                fn, args, done, box, _ = self._cmds.popleft()
            try:
                box.append(fn(*args))
            except BaseException as exc:  # handed to the caller
                box.append(exc)
            done.set()

    def _register_client(self, proxy: ClientProxy):
        if proxy.name in self._clients:
            raise ValueError(f"zkproxy: client {proxy.name!r} already added")
        self._clients[proxy.name] = proxy
        for idx, ls in enumerate(proxy._listeners):
            self._sel.register(ls, selectors.EVENT_READ, ("listen", proxy, idx))

    # -- the loop ----------------------------------------------------------

    def _run(self):
        try:
            while not self._closing:
                try:
                    self._run_commands()
                    timeout = self._fire_timers()
                    for key, mask in self._sel.select(timeout):
                        self._dispatch(key, mask)
                except Exception:
                    # Never let the thread die; avoid spinning on a
                    # persistent failure.
                    self.loop_errors += 1
                    time.sleep(0.01)
        finally:
            self._shutdown()

    def _dispatch(self, key, mask):
        data = key.data
        if data is None:  # the wake-up socket
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            return
        if data[0] == "listen":
            self._accept(data[1], data[2], key.fileobj)
            return
        conn, side = data
        if conn.dead:
            return
        try:
            if mask & selectors.EVENT_WRITE:
                if side is conn.server and conn.connecting:
                    self._finish_connect(conn)
                else:
                    self._send(conn, side)
            if mask & selectors.EVENT_READ and not conn.dead:
                self._recv(conn, side)
            if not conn.dead:
                self._update(conn)
        except Exception:
            conn.proxy._stats["errors"] += 1
            self._reset(conn)

    def _fire_timers(self):
        """Move due delayed frames out, act on deadlines; return the select
        time-out (None: nothing is timed)."""
        now = time.monotonic()
        nearest = None
        for flow in list(self._delayed):
            try:
                self._flush_delayq(flow, now)
            except Exception:
                flow.conn.proxy._stats["errors"] += 1
                self._reset(flow.conn)
                continue
            if flow.delayq:
                due = flow.delayq[0][0]
                nearest = due if nearest is None else min(nearest, due)
        for conn in list(self._timed):
            if conn.dead or conn.deadline is None:
                self._timed.discard(conn)
                continue
            if conn.deadline <= now:
                if conn.connecting:
                    conn.proxy._stats["connect_failures"] += 1
                self._reset(conn)  # connect or drain took too long
            else:
                nearest = conn.deadline if nearest is None else min(nearest, conn.deadline)
        if nearest is None:
            return None
        return max(0.0, nearest - now)

    # -- connection set-up -------------------------------------------------

    def _accept(self, proxy: ClientProxy, idx: int, ls: socket.socket):
        while True:
            try:
                csock, _ = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                proxy._stats["errors"] += 1
                return
            proxy._stats["accepted"] += 1
            conn = _Conn(proxy, proxy._targets[idx], csock, idx)
            proxy._conns.add(conn)
            try:
                csock.setblocking(False)
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not conn.blackholed():
                    # In a blackhole the connection is never made upstream.
                    self._start_connect(conn)
                if not conn.dead:
                    self._update(conn)
            except Exception:
                proxy._stats["errors"] += 1
                self._reset(conn)

    def _start_connect(self, conn: _Conn):
        family, addr = conn.upstream
        ssock = socket.socket(family, socket.SOCK_STREAM)
        conn.server.sock = ssock
        conn.server.open = True
        ssock.setblocking(False)
        ssock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = ssock.connect_ex(addr)
        if rc == 0:
            conn.connecting = False
        elif rc in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
            conn.connecting = True
            self._set_deadline(conn, time.monotonic() + CONNECT_TIMEOUT)
        else:  # refused at once (server down): let the client move on
            conn.proxy._stats["connect_failures"] += 1
            self._reset(conn)

    def _finish_connect(self, conn: _Conn):
        err = conn.server.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err not in (0, errno.EINPROGRESS, errno.EALREADY):
            conn.proxy._stats["connect_failures"] += 1
            self._reset(conn)  # refused: the client tries its next host
            return
        if err:
            return  # spurious wake-up: still connecting
        conn.connecting = False
        if not conn.draining:  # a drain keeps its own deadline
            self._set_deadline(conn, None)
        self._send(conn, conn.server)  # whatever the client sent meanwhile

    def _set_deadline(self, conn: _Conn, when):
        conn.deadline = when
        if when is None:
            self._timed.discard(conn)
        else:
            self._timed.add(conn)

    # -- data ----------------------------------------------------------------

    def _recv(self, conn: _Conn, side: _Side):
        try:
            data = side.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = None  # reset by the peer or another error
        proxy = conn.proxy
        blackholed = conn.blackholed()
        if not data:
            if blackholed and side is conn.server:
                # A partition does not carry the server's close to the
                # client: close the server side only; the client side stays
                # (discarding) until the blackhole ends, then is reset.
                self._close_side(conn, conn.server, rst=data is None)
                conn.discarded = True
            elif data is None or blackholed or conn.draining:
                self._reset(conn)
            else:
                self._begin_drain(conn)
            return
        if blackholed:
            proxy._stats["blackholed_bytes"] += len(data)
            conn.discarded = True
            return
        flow = conn.c2s if side is conn.client else conn.s2c
        flow.inbuf += data
        self._parse(conn, flow)
        if not conn.dead:
            self._send(conn, flow.dst)

    def _parse(self, conn: _Conn, flow: _Flow):
        """Take every whole frame out of flow.inbuf and handle it."""
        proxy = conn.proxy
        buf = flow.inbuf
        pos = 0
        frames = []
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n < 0 or n > MAX_FRAME:
                proxy._stats["protocol_errors"] += 1
                self._reset(conn)
                return
            end = pos + 4 + n
            if end > len(buf):
                break
            frames.append(bytes(buf[pos:end]))
            pos = end
        if pos:
            del buf[:pos]
        for frame in frames:
            if flow.c2s:
                proxy._stats["frames_c2s"] += 1
                if flow.first:
                    flow.first = False  # ConnectRequest: no request header
                elif len(frame) >= 12:
                    xid, op = _REQ_HDR.unpack_from(frame, 4)
                    if xid >= 0:  # special xids (ping, auth, ...) never drop
                        conn.xids[xid] = op
            else:
                proxy._stats["frames_s2c"] += 1
                if flow.first:
                    flow.first = False  # ConnectResponse: always forwarded
                elif len(frame) >= 8:
                    (xid,) = _LEN.unpack_from(frame, 4)
                    op = conn.xids.pop(xid, None) if xid >= 0 else None
                    if (
                        op is not None
                        and proxy._drop_prob > 0.0
                        and op in proxy._drop_ops
                        and proxy._rng.random() < proxy._drop_prob
                    ):
                        # Applied on the server, acknowledgement lost.  The
                        # frames before it are passed on first (best effort).
                        proxy._stats["dropped_replies"] += 1
                        self._send(conn, flow.dst)
                        self._reset(conn)
                        return
            self._emit(flow, frame)

    def _emit(self, flow: _Flow, frame: bytes):
        """Pass one frame on: now, or into the delay queue."""
        proxy = flow.conn.proxy
        if proxy._mode == _DELAY and proxy._delay_s > 0:
            # Never earlier than the frame before: order is kept even when
            # the delay is shortened.
            due = max(time.monotonic() + proxy._delay_s, flow.last_due)
            flow.last_due = due
            flow.delayq.append((due, frame))
            self._delayed.add(flow)
        elif flow.delayq:
            flow.delayq.append((0.0, frame))  # keep order behind queued frames
            self._delayed.add(flow)
        else:
            flow.dst.outbuf += frame

    def _flush_delayq(self, flow: _Flow, now):
        """Move due frames (all of them if now is None) to the output."""
        q = flow.delayq
        moved = False
        while q and (now is None or q[0][0] <= now):
            flow.dst.outbuf += q.popleft()[1]
            moved = True
        if not q:
            self._delayed.discard(flow)
        if moved:
            conn = flow.conn
            if not conn.dead:
                self._send(conn, flow.dst)
                if not conn.dead:
                    self._update(conn)

    def _can_write(self, conn: _Conn, side: _Side) -> bool:
        if not side.open or side.sock is None:
            return False
        if conn.blackholed():
            return False  # held back; sent if the connection survives
        if side is conn.server and conn.connecting:
            return False
        return True

    def _send(self, conn: _Conn, side: _Side):
        if not side.outbuf or not self._can_write(conn, side):
            self._maybe_finish_drain(conn)
            return
        try:
            n = side.sock.send(side.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._reset(conn)
            return
        del side.outbuf[:n]
        self._maybe_finish_drain(conn)

    def _update(self, conn: _Conn):
        """Make the selector watch what each socket of conn needs now."""
        if conn.dead:
            return
        blackholed = conn.blackholed()
        for side, other in ((conn.client, conn.server), (conn.server, conn.client)):
            if not side.open or side.sock is None:
                continue
            ev = 0
            if side is conn.server and conn.connecting:
                ev = selectors.EVENT_WRITE
            else:
                if not conn.draining and (
                    blackholed or len(other.outbuf) < MAX_PENDING
                ):
                    ev |= selectors.EVENT_READ
                if side.outbuf and self._can_write(conn, side):
                    ev |= selectors.EVENT_WRITE
            if ev == side.events:
                continue
            if side.events == 0:
                self._sel.register(side.sock, ev, (conn, side))
            elif ev == 0:
                self._sel.unregister(side.sock)
            else:
                self._sel.modify(side.sock, ev, (conn, side))
            side.events = ev

    # -- closing -------------------------------------------------------------

    def _begin_drain(self, conn: _Conn):
        """One side closed in an orderly way: deliver what is already
        queued, then close both sides (bounded by DRAIN_TIMEOUT)."""
        conn.draining = True
        for flow in conn.flows():
            flow.inbuf.clear()  # an incomplete frame can never complete
            self._flush_delayq_nosend(flow)
        self._set_deadline(conn, time.monotonic() + DRAIN_TIMEOUT)
        for side in (conn.client, conn.server):
            if not conn.dead:
                self._send(conn, side)
        if not conn.dead:
            self._update(conn)

    def _flush_delayq_nosend(self, flow: _Flow):
        while flow.delayq:
            flow.dst.outbuf += flow.delayq.popleft()[1]
        self._delayed.discard(flow)

    def _maybe_finish_drain(self, conn: _Conn):
        if not conn.draining or conn.dead:
            return
        if not conn.blackholed():  # a blackhole delivers nothing
            for side in (conn.client, conn.server):
                if side.open and side.outbuf:
                    return  # still deliverable (deadline permitting)
        self._close(conn, rst=False)

    def _close_side(self, conn: _Conn, side: _Side, rst: bool):
        if side.sock is None:
            side.open = False
            return
        if side.events:
            try:
                self._sel.unregister(side.sock)
            except (KeyError, ValueError, OSError):
                pass
            side.events = 0
        (_rst_close if rst else _plain_close)(side.sock)
        side.sock = None
        side.open = False
        side.outbuf.clear()
        if side is conn.server:
            conn.connecting = False

    def _close(self, conn: _Conn, rst: bool):
        if conn.dead:
            return
        # Book-keeping first: whoever sees the close (the client, and so the
        # harness) must find it already counted in stats().
        conn.dead = True
        if rst:
            conn.proxy._stats["resets"] += 1
        conn.proxy._conns.discard(conn)
        for flow in conn.flows():
            flow.delayq.clear()
            self._delayed.discard(flow)
        self._timed.discard(conn)
        self._close_side(conn, conn.client, rst)
        self._close_side(conn, conn.server, rst)

    def _reset(self, conn: _Conn):
        """Close both sides of conn with RST."""
        self._close(conn, rst=True)

    def _shutdown(self):
        for proxy in list(self._clients.values()):
            for conn in list(proxy._conns):
                try:
                    self._close(conn, rst=True)
                except Exception:
                    pass
            for ls in proxy._listeners:
                try:
                    self._sel.unregister(ls)
                except (KeyError, ValueError, OSError):
                    pass
                _plain_close(ls)
        try:
            self._sel.close()
        except OSError:
            pass
        _plain_close(self._wake_r)
        _plain_close(self._wake_w)
        # Anyone still waiting on a command is let go.
        with self._cmd_lock:
            pending = list(self._cmds)
            self._cmds.clear()
        for _, _, done, box, must_run in pending:
            box.append(RuntimeError("zkproxy: hub is closed") if must_run else None)
            done.set()
        self._closed = True
