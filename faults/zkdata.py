#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""zkdata - what a stopped ZooKeeper member will load from its disk.

The fault suite restarts a killed member from its own disk.  ZooKeeper
3.8.0 can leave that disk with a hole (ZOOKEEPER-4712): a follower that
loses its leader while transactions wait in its sync queue drops them from
its log but keeps them applied in memory, rejoins from the in-memory state,
and logs what follows; restarted, it loads a tree without the dropped
transactions and serves it.  This module reads the member's files to find
such a hole before the member starts:

  - the newest complete snapshot (snapshot.<zxid> in dataDir/version-2; a
    complete one ends with the checksum and the "/" marker), whose zxid S
    is where the member's replay starts;
  - the zxids of the transactions in its logs (log.<zxid> in
    dataLogDir/version-2: a 16-byte header, then records of crc (8 bytes),
    length (4), the transaction (its header: client id 8, cxid 4, zxid 8,
    ...), and an end-of-record byte; a length of 0 ends the written part of
    the preallocated file).

A member has a hole when it lacks a transaction, between S and its own last
logged zxid, that it would replay around (see hole()).  A transaction
logged only by others beyond its last zxid is not a hole: the leader sends
it on sync.
"""

import os
import struct

LOG_MAGIC = b"ZKLG"
SNAP_TAIL = b"\x00\x00\x00\x01/"  # the string "/" that seals a snapshot


def _named(d, prefix):
    """(zxid, path) of d's files named prefix.<hex zxid>, by zxid."""
    out = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return out
    for n in names:
        if n.startswith(prefix + "."):
            try:
                out.append((int(n[len(prefix) + 1:], 16), os.path.join(d, n)))
            except ValueError:
                pass
    return sorted(out)


def snapshot_zxid(snap_dir):
    """The zxid of the newest complete snapshot in snap_dir (0 if none)."""
    for z, path in reversed(_named(snap_dir, "snapshot")):
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < len(SNAP_TAIL):
                    continue
                f.seek(-len(SNAP_TAIL), os.SEEK_END)
                if f.read() == SNAP_TAIL:
                    return z
        except OSError:
            continue
    return 0


def log_zxids(log_dir, after=0, upto=None):
    """The zxids logged in log_dir's files, in file order, keeping those in
    (after, upto]; files that end before `after` are not read."""
    files = _named(log_dir, "log")
    out = []
    for k, (first, path) in enumerate(files):
        nxt = files[k + 1][0] if k + 1 < len(files) else None
        if nxt is not None and nxt <= after + 1:
            continue  # every zxid in it precedes the next file's first
        if upto is not None and first > upto:
            break
        with open(path, "rb") as f:
            data = f.read()
        if data[:4] != LOG_MAGIC:
            continue
        pos = 16
        while pos + 12 <= len(data):
            n = struct.unpack_from(">i", data, pos + 8)[0]
            if n <= 0 or pos + 12 + n + 1 > len(data) or n < 20:
                break  # the unwritten (zeroed) or torn tail
            z = struct.unpack_from(">q", data, pos + 12 + 12)[0]
            if z > after and (upto is None or z <= upto):
                out.append(z)
            pos += 12 + n + 1
    return out


def hole(member, others):
    """member: (snap_dir, log_dir) of the stopped member; others: the same
    for the running members whose logs are the reference.  Returns None, or
    (missing count, first missing zxid, last missing zxid, S, member's last
    logged zxid).

    Missing: a zxid between two the member logged in the same epoch (a
    leader numbers an epoch's proposals one by one and a follower logs them
    all, in order), or one that another member logged, after that member's
    own newest snapshot, between S and the member's last logged zxid (the
    end of an epoch the member left with transactions in its sync queue).
    Another member's log may keep a tail of proposals that never committed
    (a cut-off leader's) when it was brought up to date by a snapshot
    rather than a truncation; its own snapshot supersedes that tail, so
    only what it would replay itself counts."""
    s = snapshot_zxid(member[0])
    mine = log_zxids(member[1], after=s)
    if not mine:
        return None
    last = max(mine)
    have = set(mine)
    missing = set()
    prev = None
    for z in sorted(have):
        if prev is not None and z >> 32 == prev >> 32 and z > prev + 1:
            missing.update(range(prev + 1, z))
        prev = z
    for snap_dir, log_dir in others:
        after = max(s, snapshot_zxid(snap_dir))
        missing.update(z for z in log_zxids(log_dir, after=after, upto=last) if z not in have)
    if not missing:
        return None
    return len(missing), min(missing), max(missing), s, last


def main():
    import sys
    if len(sys.argv) < 3 or len(sys.argv) % 2 == 0:
        sys.exit("usage: zkdata.py SNAP_DIR LOG_DIR [OTHER_SNAP_DIR OTHER_LOG_DIR ...]")
    a = sys.argv[1:]
    h = hole((a[0], a[1]), [(a[k], a[k + 1]) for k in range(2, len(a), 2)])
    print("no hole" if h is None else
          "hole: %d transactions missing between 0x%x and 0x%x (snapshot 0x%x, last 0x%x)" % h)
    return 0 if h is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
