#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""slowfs - a pass-through FUSE filesystem whose writes and fsyncs can be
slowed down or frozen, to give one ZooKeeper server a slow or stalled
transaction-log disk.

    slowfs.py BACKING_DIR MOUNTPOINT CONTROL_FILE

Mounts MOUNTPOINT and serves it in the foreground (multithreaded), passing
every operation through to BACKING_DIR.  Prints "slowfs: mounted" (flushed)
once the mount serves; on SIGTERM or SIGINT it unmounts and exits 0.

Why: a ZooKeeper server appends each transaction to its log and fsyncs the
log before it acknowledges the proposal (follower) or commits (leader), so a
member whose log disk is slow holds back every write it takes part in, and a
member whose log fsync never returns stops acknowledging while it still
answers pings, reads and four-letter words (in an ensemble; a standalone
server also queues reads behind the stuck log).  That is the fault: the server
on this mount (its dataLogDir here, its dataDir on a normal disk) is slow or
stuck only where it syncs.  The usual ways to do this are not available
here: dm-delay / dm-flakey need device-mapper, which this machine lacks, and
SIGSTOP freezes the whole JVM (pings, reads, elections too), not only the
thread that syncs the log.

CONTROL_FILE holds one line, the mode:

    pass        every operation goes straight through (also when the file
                is missing)
    delay MS    each write and each fsync/fdatasync waits MS milliseconds,
                then does the real call
    stall       writes and fsyncs block (they do not fail) until the mode is
                no longer stall; reads and metadata operations still pass

Change it atomically: write a temporary file and rename() it over
CONTROL_FILE.  slowfs re-reads the file when its inode, size or times change,
checked at every write and fsync and at least every 20 ms while an operation
waits.  A line it cannot parse is reported on stderr and leaves the mode as
it was.  A waiting operation follows the new mode: pass releases it, a
delay counts from when it began.

Counters go, as JSON, to CONTROL_FILE + ".stats" (replaced atomically),
every second, when an operation starts or stops stalling, and on exit:
writes, write_bytes, fsyncs, delayed (operations that waited in delay mode),
delayed_ms, stalled_writes, stalled_fsyncs, stalled_ms (time operations
spent stalled, those still stalled included), max_stall_ms, blocked_now
(operations stalled right now), mode, pid.  So a caller can say "N fsyncs
stalled for T ms" and wait for blocked_now >= 1 to know the server is stuck.
ZooKeeper's log thread writes its buffered transactions and then fsyncs, so
in stall mode it is usually a write that blocks first (stalled_writes 1,
stalled_fsyncs 0), and in delay mode each group commit waits twice (write,
then fsync): count both.

Limits: fstat() of a file that was unlinked while open fails with ENOENT
(libfuse2's path-based API; reads, writes and fsyncs on it work); no xattrs
or locks beyond the kernel's local ones.  Killed with SIGKILL, slowfs leaves
a dead mount behind: umount -l MOUNTPOINT.

Needs root, /dev/fuse and the Debian package python3-fusepy (whose module
Debian names "fusepy", not "fuse"), which pulls in libfuse2.  As root,
libfuse2 mounts and unmounts by itself: the package fuse (fusermount) is not
needed.  Run it with /usr/bin/python3, where python3-fusepy is importable.
"""

import ctypes
import errno
import json
import os
import signal
import sys
import threading
import time

try:
    from fuse import FUSE, FuseOSError, Operations  # fusepy from PyPI
    import fuse as _fusemod
except ImportError:
    try:
        from fusepy import FUSE, FuseOSError, Operations  # Debian's python3-fusepy
        import fusepy as _fusemod
    except ImportError as e:
        sys.exit("slowfs: cannot import fusepy (%s): install the Debian package "
                 "python3-fusepy and run with /usr/bin/python3" % e)

POLL_S = 0.02  # a waiting operation re-reads the control file this often
STATS_PERIOD_S = 1.0


class Control:
    """The mode from CONTROL_FILE, re-read when the file changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.key = None
        self.mode = ("pass", 0)
        self.current()

    def _parse(self, text):
        words = text.split()
        if words == ["pass"] or not words:
            return ("pass", 0)
        if words == ["stall"]:
            return ("stall", 0)
        if len(words) == 2 and words[0] == "delay":
            try:
                ms = float(words[1])
            except ValueError:
                ms = -1
            if ms >= 0:
                return ("delay", ms)
        return None

    def current(self):
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except FileNotFoundError:
            key = None
        with self.lock:
            if key == self.key:
                return self.mode
            if key is None:
                mode = ("pass", 0)
            else:
                try:
                    with open(self.path) as f:
                        text = f.read(256)
                except FileNotFoundError:
                    text = "pass"
                mode = self._parse(text)
                if mode is None:
                    print("slowfs: %s: cannot parse %r, mode stays %s"
                          % (self.path, text.strip(), self.mode[0]),
                          file=sys.stderr, flush=True)
                    mode = self.mode
            self.key = key
            self.mode = mode
            return mode


class Stats:
    def __init__(self, path, control):
        self.path = path
        self.control = control
        self.lock = threading.Lock()
        self.c = dict(writes=0, write_bytes=0, fsyncs=0, delayed=0,
                      delayed_ms=0.0, stalled_writes=0, stalled_fsyncs=0,
                      stalled_ms=0.0, max_stall_ms=0.0)
        self.stalling = {}  # token -> monotonic start of an ongoing stall
        self.changed = threading.Event()

    def add(self, **kv):
        with self.lock:
            for k, v in kv.items():
                self.c[k] += v

    def stall_begin(self, token, kind):
        with self.lock:
            self.c["stalled_" + kind + "s"] += 1
            self.stalling[token] = time.monotonic()
        self.changed.set()

    def stall_end(self, token):
        with self.lock:
            ms = (time.monotonic() - self.stalling.pop(token)) * 1000
            self.c["stalled_ms"] += ms
            self.c["max_stall_ms"] = max(self.c["max_stall_ms"], ms)
        self.changed.set()

    def snapshot(self):
        now = time.monotonic()
        with self.lock:
            d = dict(self.c)
            ongoing = [(now - t) * 1000 for t in self.stalling.values()]
        d["stalled_ms"] += sum(ongoing)
        d["max_stall_ms"] = max([d["max_stall_ms"]] + ongoing)
        d["blocked_now"] = len(ongoing)
        for k in ("delayed_ms", "stalled_ms", "max_stall_ms"):
            d[k] = round(d[k], 1)
        mode, ms = self.control.mode
        d["mode"] = "delay %g" % ms if mode == "delay" else mode
        d["pid"] = os.getpid()
        return d

    def write(self):
        tmp = "%s.tmp.%d" % (self.path, os.getpid())
        try:
            with open(tmp, "w") as f:
                json.dump(self.snapshot(), f, sort_keys=True)
                f.write("\n")
            os.replace(tmp, self.path)
        except OSError as e:
            print("slowfs: cannot write %s: %s" % (self.path, e),
                  file=sys.stderr, flush=True)

    def run(self, stop):
        while not stop.is_set():
            self.changed.wait(STATS_PERIOD_S)
            self.changed.clear()
            self.write()


class SlowFS(Operations):
    use_ns = True  # times in nanoseconds
    # With hard_remove an open file that was unlinked has no path: read,
    # write, fsync, release... then get path None and work on the descriptor.
    flag_nullpath_ok = 1

    def __init__(self, backing, mountpoint, control, stats):
        self.root = os.path.realpath(backing)
        self.mountpoint = mountpoint
        self.control = control
        self.stats = stats
        self.fuse_ptr = None  # struct fuse *, taken in init()

    def _p(self, path):
        return self.root + path

    # -- the fault ---------------------------------------------------------

    def _exiting(self):
        # The multithreaded loop joins its workers on exit; an operation
        # held here would keep the process from ever exiting on SIGTERM.
        if self.fuse_ptr is None:
            return False
        return bool(_libfuse.fuse_exited(self.fuse_ptr))

    def _gate(self, kind):
        mode, ms = self.control.current()
        if mode == "pass":
            return
        start = time.monotonic()
        token = object()
        delayed = stalled = False
        while mode != "pass" and not self._exiting():
            now = time.monotonic()
            if mode == "delay":
                if stalled:
                    self.stats.stall_end(token)
                    stalled = False
                delayed = True
                left = start + ms / 1000.0 - now
                if left <= 0:
                    break
                time.sleep(min(POLL_S, left))
            else:  # stall
                if not stalled:
                    self.stats.stall_begin(token, kind)
                    stalled = True
                time.sleep(POLL_S)
            mode, ms = self.control.current()
        if stalled:
            self.stats.stall_end(token)
        if delayed:
            self.stats.add(delayed=1,
                           delayed_ms=(time.monotonic() - start) * 1000)

    # -- lifecycle ---------------------------------------------------------

    def init(self, path):
        ctx = _libfuse.fuse_get_context()
        self.fuse_ptr = ctypes.c_void_p(ctx.contents.fuse)
        # The kernel holds every request until init() returns: announce
        # from another thread once the mount answers a stat.
        threading.Thread(target=self._announce, daemon=True).start()

    def _announce(self):
        parent = os.stat(os.path.dirname(os.path.abspath(self.mountpoint)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._exiting():
            try:
                st = os.stat(self.mountpoint)
                if st.st_dev != parent.st_dev:
                    print("slowfs: mounted", flush=True)
                    return
            except OSError:
                pass
            time.sleep(0.01)
        print("slowfs: the mount did not come up", file=sys.stderr, flush=True)

    # -- metadata ----------------------------------------------------------

    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        if isinstance(fh, int):
            st = os.fstat(fh)
        else:
            st = os.lstat(self._p(path))
        d = {k: getattr(st, k) for k in (
            "st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size",
            "st_blocks", "st_blksize", "st_rdev")}
        d.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns,
                 st_ctime=st.st_ctime_ns)
        return d

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._p(path))

    def readlink(self, path):
        return os.readlink(self._p(path))

    def mknod(self, path, mode, dev):
        os.mknod(self._p(path), mode, dev)

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def unlink(self, path):
        os.unlink(self._p(path))

    def symlink(self, target, source):
        os.symlink(source, self._p(target))

    def link(self, target, source):
        os.link(self._p(source), self._p(target))

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid, follow_symlinks=False)

    def utimens(self, path, times=None):
        os.utime(self._p(path), ns=times, follow_symlinks=False)

    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
            "f_files", "f_ffree", "f_favail", "f_flag", "f_namemax")}

    # -- files -------------------------------------------------------------

    # The kernel computes every write's offset itself (O_APPEND included) and
    # checks the access mode; pwrite() on an O_APPEND descriptor would
    # ignore the offset, so that flag stays off here.
    def open(self, path, flags):
        return os.open(self._p(path), flags & ~os.O_APPEND)

    def create(self, path, mode, fi=None):
        # fusepy does not pass create()'s open flags: read-write covers all.
        return os.open(self._p(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        self._gate("write")
        n = os.pwrite(fh, data, offset)
        self.stats.add(writes=1, write_bytes=n)
        return n

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._p(path), length)

    def flush(self, path, fh):
        # Called at every close() of a descriptor; nothing is buffered here.
        return 0

    def release(self, path, fh):
        os.close(fh)

    def fsync(self, path, datasync, fh):
        self._gate("fsync")
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        self.stats.add(fsyncs=1)

    def fsyncdir(self, path, datasync, fh):
        fd = os.open(self._p(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_libfuse = _fusemod._libfuse
_libfuse.fuse_exited.argtypes = [ctypes.c_void_p]
_libfuse.fuse_exited.restype = ctypes.c_int


def main(argv):
    if len(argv) != 4:
        print("usage: slowfs.py BACKING_DIR MOUNTPOINT CONTROL_FILE",
              file=sys.stderr)
        return 2
    backing, mountpoint, control_path = argv[1:]
    for d in (backing, mountpoint):
        if not os.path.isdir(d):
            print("slowfs: %s is not a directory" % d, file=sys.stderr)
            return 2
    control = Control(os.path.abspath(control_path))
    stats = Stats(control.path + ".stats", control)
    fs = SlowFS(backing, mountpoint, control, stats)

    # libfuse's own handlers for SIGTERM/SIGINT/SIGHUP end its loop, then it
    # unmounts.  They must run on the main thread, the one waiting in
    # fuse_main (the FUSE workers block all signals): block them in the
    # stats thread, which inherits this thread's mask.
    sigs = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    stop = threading.Event()
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    writer = threading.Thread(target=stats.run, args=(stop,), daemon=True)
    writer.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)

    rc = 0
    try:
        # big_writes: writes up to 128 KiB per request, not 4 KiB pieces.
        # hard_remove: unlink really unlinks (no .fuse_hidden files left in
        # the log directory); open files are served from their descriptors.
        FUSE(fs, mountpoint, foreground=True, nothreads=False,
             fsname="slowfs", subtype="slowfs", big_writes=True,
             hard_remove=True, use_ino=True)
    except RuntimeError as e:
        print("slowfs: FUSE failed (%s): cannot mount %s" % (e, mountpoint),
              file=sys.stderr, flush=True)
        rc = 1
    stop.set()
    stats.changed.set()
    writer.join(2)
    stats.write()
    if rc == 0:
        s = stats.snapshot()
        print("slowfs: unmounted: %d writes, %d fsyncs, %d delayed, "
              "%d writes and %d fsyncs stalled for %.0f ms"
              % (s["writes"], s["fsyncs"], s["delayed"], s["stalled_writes"],
                 s["stalled_fsyncs"], s["stalled_ms"]), flush=True)
    return rc


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(main(sys.argv))
