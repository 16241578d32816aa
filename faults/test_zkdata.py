#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Self-test of faults/zkdata.py (no ZooKeeper needed), on member disks
written in ZooKeeper's file formats: a log that skips transactions the
others logged is a hole, and so is a gap inside an epoch of its own log; a
skip a complete snapshot covers is not, one only an unfinished snapshot
covers is; transactions the others logged after the member's last are not,
nor those another member's own snapshot superseded; the preallocated zero tail and a torn record end the
log; several log files are read in order.  Exit 0 on success."""

import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zkdata  # noqa: E402
from selftest import Failure, check  # noqa: E402

EPOCH = 1 << 32


def record(zxid):
    # a create's transaction header (client id, cxid, zxid, time, type)
    # and a body the reader skips
    txn = struct.pack(">qiqqi", 0x1234, 7, zxid, 1700000000000, 1) + b"body"
    return struct.pack(">qi", 0, len(txn)) + txn + b"B"


def write_log(d, zxids, torn=False):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "log.%x" % zxids[0]), "wb") as f:
        f.write(zkdata.LOG_MAGIC + struct.pack(">iq", 2, 0))
        for z in zxids:
            f.write(record(z))
        if torn:
            f.write(record(zxids[-1] + 1)[:20])
        f.write(b"\0" * 4096)  # preallocated


def write_snap(d, zxid, complete=True):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "snapshot.%x" % zxid), "wb") as f:
        f.write(b"ZKSN" + b"\1" * 100)
        if complete:
            f.write(struct.pack(">q", 99) + zkdata.SNAP_TAIL)


def member(root, name, logs, snaps=()):
    snap_dir = os.path.join(root, name, "snap")
    log_dir = os.path.join(root, name, "log")
    os.makedirs(snap_dir, exist_ok=True)
    for zxids in logs:
        write_log(log_dir, zxids)
    for z, complete in snaps:
        write_snap(snap_dir, z, complete)
    return snap_dir, log_dir


def run(root):
    full = [EPOCH + k for k in range(1, 301)]
    a = member(root, "a", [full[:150], full[150:]])
    b = member(root, "b", [full])
    check(zkdata.log_zxids(a[1]) == full, "two log files read in order")
    check(zkdata.hole(a, [b]) is None, "a complete log is no hole")

    holed = full[:100] + full[180:250]
    c = member(root, "c", [holed])
    h = zkdata.hole(c, [a, b])
    check(h == (80, EPOCH + 101, EPOCH + 180, 0, EPOCH + 250),
          f"the skipped transactions are found: {h}")

    # a complete snapshot past the skip covers it; an unfinished one does not
    d = member(root, "d", [holed], [(EPOCH + 190, True)])
    check(zkdata.snapshot_zxid(d[0]) == EPOCH + 190, "the snapshot's zxid is read")
    check(zkdata.hole(d, [a, b]) is None, "a snapshot past the skip covers it")
    e = member(root, "e", [holed], [(EPOCH + 50, True), (EPOCH + 190, False)])
    check(zkdata.snapshot_zxid(e[0]) == EPOCH + 50, "an unfinished snapshot is not loaded")
    check(zkdata.hole(e, [a, b])[0] == 80, "an unfinished snapshot covers nothing")

    # what the others logged after the member's last is sent on sync
    f = member(root, "f", [full[:120]])
    check(zkdata.hole(f, [a, b]) is None, "a short log is no hole")

    # a skip across an epoch change: the old epoch's end is missing
    nxt = [2 * EPOCH + k for k in range(1, 51)]
    g = member(root, "g", [full[:200] + nxt])
    h2 = member(root, "h", [full + nxt])
    check(zkdata.hole(g, [h2])[:3] == (100, EPOCH + 201, EPOCH + 300),
          "a skip that ends in the next epoch")

    # a gap inside one epoch of the member's own log needs no witness
    check(zkdata.hole(c, [])[:3] == (80, EPOCH + 101, EPOCH + 180),
          "a gap inside an epoch of its own log")

    # a cut-off leader's proposals that never committed (epoch 1 after 200),
    # kept in its log when a snapshot brought it up to date: that snapshot
    # supersedes them, so they show no hole in a member that went from 200 to
    # epoch 2; without that snapshot they would
    stale = member(root, "stale", [full + nxt], [(2 * EPOCH + 20, True)])
    moved = member(root, "moved", [full[:200] + nxt])
    check(zkdata.hole(moved, [stale]) is None, "a superseded tail is no witness")
    stale2 = member(root, "stale2", [full + nxt], [(EPOCH + 100, True)])
    check(zkdata.hole(moved, [stale2])[0] == 100, "a tail its snapshot does not cover is")

    # a torn last record ends the log without an error
    t_dir = os.path.join(root, "t", "log")
    write_log(t_dir, full[:10], torn=True)
    check(zkdata.log_zxids(t_dir) == full[:10], "a torn record ends the log")
    check(zkdata.log_zxids(os.path.join(root, "none")) == [], "no log directory, no zxids")


def main():
    root = tempfile.mkdtemp(prefix="test_zkdata.")
    try:
        run(root)
    except Failure as e:
        print(f"test_zkdata: FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("test_zkdata: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
