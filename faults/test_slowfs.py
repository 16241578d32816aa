#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Self-test of faults/slowfs.py.  Needs root and FUSE (/dev/fuse, Debian's
python3-fusepy); where slowfs cannot mount, the test fails, it does not skip.

Run from anywhere:

    /usr/bin/python3 faults/test_slowfs.py

Mounts slowfs over temporary directories and checks: pass is fast, delay
holds each fsync for its time, stall holds an fsync until the mode is pass
again while reads and metadata still pass, data and renames/unlinks reach
the backing directory, the stats file counts it all, and SIGTERM (and SIGINT
with an fsync stalled) unmounts and exits 0.  Prints "slowfs self-test: ok"
and exits 0, or prints the failure and exits 1.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the work tree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import selftest  # noqa: E402
from selftest import Failure, wait_for  # noqa: E402

SLOWFS = os.path.join(HERE, "slowfs.py")
PYTHON = "/usr/bin/python3"  # where Debian's python3-fusepy is importable
T0 = time.monotonic()


def log(msg):
    print("[%6.2f] %s" % (time.monotonic() - T0, msg), flush=True)


def check(cond, msg):
    selftest.check(cond, msg)
    log("ok: " + msg)


class Background:
    """Runs fn in a daemon thread: an operation on the mount that may block
    (or hang, if slowfs is broken) never blocks the test itself."""

    def __init__(self, fn):
        self.fn = fn
        self.result = self.error = None
        self.elapsed = None
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        t = time.monotonic()
        try:
            self.result = self.fn()
        except BaseException as e:  # reported by get()
            self.error = e
        self.elapsed = time.monotonic() - t
        self.done.set()

    def get(self, timeout, what):
        if not self.done.wait(timeout):
            raise Failure("%s did not finish in %.1f s" % (what, timeout))
        if self.error is not None:
            raise Failure("%s failed: %r" % (what, self.error))
        return self.result


def timed(fn, timeout, what):
    b = Background(fn)
    b.get(timeout, what)
    return b.elapsed


def mounted(mnt):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == mnt for line in f)


class Mount:
    def __init__(self, tmp, name):
        self.backing = os.path.join(tmp, name + "-backing")
        self.mnt = os.path.join(tmp, name + "-mnt")
        self.ctl = os.path.join(tmp, name + ".ctl")
        self.stats_path = self.ctl + ".stats"
        os.mkdir(self.backing)
        os.mkdir(self.mnt)
        self.set_mode("pass")
        self.errf = open(os.path.join(tmp, name + ".stderr"), "w+")
        self.proc = subprocess.Popen([PYTHON, SLOWFS, self.backing, self.mnt, self.ctl],
                                     stdout=subprocess.PIPE, stderr=self.errf, text=True)
        self.out = ""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + 10
        while "slowfs: mounted\n" not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise Failure("slowfs did not mount %s (exit %s): stdout %r, stderr %r"
                              % (self.mnt, self.proc.poll(), self.out, self.stderr()))
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 4096).decode()
                if not data and self.proc.wait(5) is not None:
                    continue
                self.out += data
        check(mounted(self.mnt), "%s is in /proc/mounts once slowfs says it is mounted" % self.mnt)

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read()

    def set_mode(self, mode):
        tmp = self.ctl + ".new"
        with open(tmp, "w") as f:
            f.write(mode + "\n")
        os.rename(tmp, self.ctl)

    def stats(self):
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    def stop(self, sig):
        os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise Failure("slowfs did not exit within 10 s of signal %d" % sig)
        self.out += self.proc.stdout.read()
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by pid
            self.proc.wait(10)
        if mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], check=False)
        self.proc.stdout.close()
        self.errf.close()


def write_fsync(path, data, flags=os.O_WRONLY | os.O_CREAT):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_main(tmp):
    m = Mount(tmp, "a")
    try:
        f = os.path.join(m.mnt, "log.1")
        # pass: a write + fsync through FUSE is quick.
        t = timed(lambda: write_fsync(f, b"x" * 4096), 5, "write+fsync in pass mode")
        check(t < 0.1, "pass: write+fsync took %.1f ms (< 100 ms)" % (t * 1000))

        # delay 300: an fsync waits its 300 ms.
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        try:
            m.set_mode("delay 300")
            t = timed(lambda: os.write(fd, b"y" * 100), 5, "write in delay mode")
            check(t >= 0.3, "delay 300: a write took %.0f ms (>= 300 ms)" % (t * 1000))
            t = timed(lambda: os.fsync(fd), 5, "fsync in delay mode")
            check(0.3 <= t < 2, "delay 300: an fsync took %.0f ms (>= 300 ms)" % (t * 1000))
            t = timed(lambda: os.fdatasync(fd), 5, "fdatasync in delay mode")
            check(0.3 <= t < 2, "delay 300: an fdatasync took %.0f ms (>= 300 ms)" % (t * 1000))

            # stall: an fsync blocks until the mode is pass again.
            m.set_mode("stall")
            b = Background(lambda: os.fsync(fd))
            wait_for(lambda: m.stats().get("blocked_now", 0) >= 1, 5,
                     "the stats file to show the fsync stalled")
            check(not b.done.wait(1.0), "stall: the fsync has not returned after 1 s")
            # Reads and metadata pass meanwhile (another file; the stalled
            # fsync holds the kernel's lock on its own inode).
            g = os.path.join(m.mnt, "other")
            with open(os.path.join(m.backing, "other"), "wb") as h:
                h.write(b"read me")
            got = Background(lambda: open(g, "rb").read()).get(2, "a read during stall")
            check(got == b"read me", "stall: a read of another file passes")
            names = Background(lambda: sorted(os.listdir(m.mnt))).get(2, "readdir during stall")
            check(names == ["log.1", "other"], "stall: readdir passes (%s)" % names)
            Background(lambda: os.stat(f)).get(2, "stat of the stalled file")
            Background(lambda: os.mkdir(os.path.join(m.mnt, "d"))).get(2, "mkdir during stall")
            Background(lambda: os.rmdir(os.path.join(m.mnt, "d"))).get(2, "rmdir during stall")
            log("ok: stall: stat, mkdir and rmdir pass")
            check(not b.done.is_set(), "stall: the fsync is still blocked")
            t_pass = time.monotonic()
            m.set_mode("pass")
            b.get(1.0, "the stalled fsync after pass")
            check(True, "unstall: the fsync returned %.0f ms after pass"
                  % ((time.monotonic() - t_pass) * 1000))
            s = wait_for(lambda: (lambda s: s if s.get("blocked_now") == 0 else None)(m.stats()),
                         3, "the stats file to show nothing blocked")
            check(s["stalled_fsyncs"] == 1 and s["stalled_ms"] >= 1000,
                  "stats: %d fsync stalled for %.0f ms" % (s["stalled_fsyncs"], s["stalled_ms"]))
        finally:
            os.close(fd)

        # Data written through the mount is in the backing directory.
        with open(os.path.join(m.backing, "log.1"), "rb") as h:
            data = h.read()
        check(data == b"x" * 4096 + b"y" * 100, "the backing file holds what was written (%d bytes)"
              % len(data))
        # Positional writes, ftruncate, rename, unlink.
        def misc():
            fd = os.open(os.path.join(m.mnt, "p"), os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, b"abc", 10)
            os.ftruncate(fd, 12)
            got = os.pread(fd, 20, 0)
            os.close(fd)
            os.rename(os.path.join(m.mnt, "p"), os.path.join(m.mnt, "q"))
            os.unlink(os.path.join(m.mnt, "other"))
            return got
        got = Background(misc).get(5, "pwrite/ftruncate/rename/unlink")
        check(got == b"\0" * 10 + b"ab", "pwrite + ftruncate read back %r" % got)
        check(sorted(os.listdir(m.backing)) == ["log.1", "q"],
              "rename and unlink reach the backing directory (%s)" % sorted(os.listdir(m.backing)))
        # An unlinked file that is still open takes writes, fsyncs and reads
        # (hard_remove; fstat() of it fails with ENOENT: libfuse2's
        # high-level API has no path for it and the kernel sends no handle).
        def unlinked():
            p = os.path.join(m.mnt, "gone")
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            os.unlink(p)
            os.write(fd, b"zz")
            os.fsync(fd)
            got = os.pread(fd, 10, 0)
            os.close(fd)
            return got
        got = Background(unlinked).get(5, "write to an unlinked open file")
        check(got == b"zz" and sorted(os.listdir(m.backing)) == ["log.1", "q"],
              "an unlinked open file takes writes and leaves no .fuse_hidden file")

        rc = m.stop(signal.SIGTERM)
        check(rc == 0, "SIGTERM: slowfs exited %d" % rc)
        check(not mounted(m.mnt), "SIGTERM: %s is no longer in /proc/mounts" % m.mnt)
        s = m.stats()
        check(s.get("fsyncs", 0) >= 5 and s.get("delayed", 0) >= 3,
              "stats on exit: %s" % json.dumps(s, sort_keys=True))
        log("slowfs said: " + " | ".join(m.out.splitlines()))
    finally:
        m.cleanup()


def test_signal_while_stalled(tmp):
    m = Mount(tmp, "b")
    try:
        fd = os.open(os.path.join(m.mnt, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        m.set_mode("stall")
        b = Background(lambda: os.write(fd, b"w"))
        wait_for(lambda: m.stats().get("stalled_writes", 0) >= 1, 5, "a stalled write")
        rc = m.stop(signal.SIGINT)
        check(rc == 0, "SIGINT with a write stalled: slowfs exited %d" % rc)
        check(not mounted(m.mnt), "SIGINT: %s is no longer in /proc/mounts" % m.mnt)
        b.done.wait(5)
        check(b.done.is_set(), "the stalled write returned once slowfs went (%s)"
              % (b.error or "ok"))
        try:
            os.close(fd)
        except OSError:
            pass
    finally:
        m.cleanup()


def main():
    if os.geteuid() != 0:
        print("slowfs self-test: FAIL: needs root (FUSE mounts)", flush=True)
        return 1
    tmp = tempfile.mkdtemp(prefix="slowfs-test.")
    try:
        test_main(tmp)
        test_signal_while_stalled(tmp)
    except Failure as e:
        print("slowfs self-test: FAIL: %s" % e, flush=True)
        for name in ("a", "b"):
            p = os.path.join(tmp, name + ".stderr")
            if os.path.exists(p) and os.path.getsize(p):
                print("slowfs %s stderr:\n%s" % (name, open(p).read()), flush=True)
        return 1
    finally:
        # Never remove through a mount that is still there.
        with open("/proc/mounts") as f:
            busy = [line.split()[1] for line in f if line.split()[1].startswith(tmp + "/")]
        if busy:
            print("slowfs self-test: still mounted, left %s: %s" % (tmp, busy), flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("slowfs self-test: ok (%.1f s)" % (time.monotonic() - T0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
