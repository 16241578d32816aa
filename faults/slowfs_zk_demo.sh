#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# slowfs_zk_demo.sh - a standalone ZooKeeper server with its transaction log
# (dataLogDir) on faults/slowfs.py: creates are quick in pass mode, a create
# does not complete while the log is stalled (the server still answers
# ruok/srvr), and it completes once the mode is pass again.  Needs root, FUSE,
# python3-fusepy, python3-kazoo, zookeeper.  Prints each step; exits 0 when
# all three hold, 1 otherwise.  Run from anywhere: faults/slowfs_zk_demo.sh

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/slowfs-zk.XXXXXX)
mkdir "$tmp/backing" "$tmp/log" "$tmp/data"
echo pass >"$tmp/ctl"
fs_pid="" zk_pid=""

cleanup() {
    local rc=$?
    if [[ -n $zk_pid ]] && kill "$zk_pid" 2>/dev/null; then
        # 10 s, then SIGKILL: a JVM stuck in a stalled fsync may not exit.
        for _ in $(seq 100); do kill -0 "$zk_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$zk_pid" 2>/dev/null || true
    fi
    if [[ -n $fs_pid ]] && kill "$fs_pid" 2>/dev/null; then
        wait "$fs_pid" && echo "slowfs exited 0" || echo "slowfs exited $?"
        cat "$tmp/slowfs.out"
    fi
    if grep -q " $tmp/log " /proc/mounts; then
        echo "FAIL: $tmp/log is still mounted; left $tmp"
        exit 1
    fi
    echo "unmounted: $tmp/log is not in /proc/mounts"
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

/usr/bin/python3 "$here/slowfs.py" "$tmp/backing" "$tmp/log" "$tmp/ctl" >"$tmp/slowfs.out" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do grep -q "slowfs: mounted" "$tmp/slowfs.out" && break; sleep 0.1; done
grep -q "slowfs: mounted" "$tmp/slowfs.out" || { echo "FAIL: slowfs did not mount"; cat "$tmp/slowfs.out"; exit 1; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/zoo.cfg" <<EOF
tickTime=200
maxSessionTimeout=60000
dataDir=$tmp/data
dataLogDir=$tmp/log
clientPortAddress=127.0.0.1
clientPort=$port
4lw.commands.whitelist=*
admin.enableServer=false
EOF
java -Xmx256m -XX:+UseSerialGC \
    -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$tmp/zoo.cfg" </dev/null >"$tmp/zk.log" 2>&1 &
zk_pid=$!

/usr/bin/python3 - "$port" "$tmp/ctl" <<'EOF'
import json, os, socket, sys, time
from kazoo.client import KazooClient

port, ctl = int(sys.argv[1]), sys.argv[2]
T0 = time.monotonic()
def log(m): print("[%6.2f] %s" % (time.monotonic() - T0, m), flush=True)
def fourlw(cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(cmd.encode()); s.shutdown(socket.SHUT_WR)
        out = b""
        while (b := s.recv(4096)):
            out += b
        return out.decode()
def mode(m):
    with open(ctl + ".new", "w") as f: f.write(m + "\n")
    os.rename(ctl + ".new", ctl)
def stats():
    try: return json.load(open(ctl + ".stats"))
    except (OSError, ValueError): return {}
def until(cond, s, what):
    end = time.monotonic() + s
    while not cond():
        if time.monotonic() > end: sys.exit("FAIL: timed out waiting for " + what)
        time.sleep(0.05)

def serving():  # ruok answers before the server takes sessions; srvr tells
    try: return "Mode: " in fourlw("srvr")
    except OSError: return False
until(serving, 30, "the server to serve")
zk = KazooClient(hosts="127.0.0.1:%d" % port, timeout=30)
zk.start(timeout=15)
log("connected, session timeout %d ms" % zk._session_timeout)

n, t = 200, time.monotonic()
for i in range(n):
    zk.create("/pass-%d" % i, b"x")
dt = time.monotonic() - t
log("(a) pass: %d sequential creates in %.2f s (%.0f/s)" % (n, dt, n / dt))

zk2 = KazooClient(hosts="127.0.0.1:%d" % port, timeout=30)  # another session
zk2.start(timeout=15)
mode("stall")
res = zk.create_async("/stalled", b"x")
until(lambda: stats().get("blocked_now", 0) >= 1, 5, "the log write or fsync to stall")
rd = zk2.get_async("/pass-0")
t = time.monotonic()
res.wait(3)
done = res.ready()
# Not checked, shown: a standalone server passes reads through the same
# SyncRequestProcessor thread, so another session's read waits too.
log("(b) stall: another session's read %s" % ("completed" if rd.ready() else "waits as well"))
log("(b) stall: create /stalled %s after %.1f s; slowfs stats %s"
    % ("COMPLETED (wrong)" if done else "not completed", time.monotonic() - t,
       {k: stats()[k] for k in ("blocked_now", "stalled_fsyncs", "stalled_writes")}))
r = fourlw("ruok")
srvr = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in fourlw("srvr").splitlines() if ":" in l}
log("(b) stall: ruok -> %r, srvr -> Mode %s, Outstanding %s" % (r, srvr.get("Mode"), srvr.get("Outstanding")))
ok = not done and r == "imok" and "Mode" in srvr

t = time.monotonic()
mode("pass")
try:
    p = res.get(timeout=10)
    log("(c) pass: create %s completed %.0f ms after pass" % (p, (time.monotonic() - t) * 1000))
except Exception as e:
    log("(c) pass: create failed: %r" % e); ok = False
ok = ok and zk.exists("/stalled") is not None
s = stats()
log("slowfs: %d fsyncs and %d writes stalled for %.0f ms in all"
    % (s["stalled_fsyncs"], s["stalled_writes"], s["stalled_ms"]))
for c in (zk, zk2): c.stop(); c.close()
print("slowfs_zk_demo: " + ("ok" if ok else "FAIL"), flush=True)
sys.exit(0 if ok else 1)
EOF
