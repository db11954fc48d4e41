#!/usr/bin/env python3
"""What the audit log's metadata syncs cost on this disk, beside the data syncs of its records.

    python3 load-tests/metadata_sync.py DIR [COUNT]

At each rotation the log links the spare into place and syncs the directory, and the syncer
appends a signed checkpoint to the growing `audit.checkpoints` file and syncs it (also every
60 s); both need a journal commit, while a record's `fdatasync` into preallocated zeros does not.
Times COUNT of each, interleaved, in DIR: `data` (512 bytes in place into a zero-filled file +
fdatasync, the records), `grow` (a 300-byte line appended to a growing file + fdatasync, a
checkpoint), `dir` (a link, an unlink and an fsync of the directory, a rotation). Prints p50,
p99 and max of each."""
import os
import sys
import time


def main():
    directory = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    os.makedirs(directory, exist_ok=True)
    data = os.open(os.path.join(directory, "data"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.pwrite(data, b"\0" * (1 << 20), 0)
    os.fsync(data)
    grow = os.open(os.path.join(directory, "grow"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    dir_fd = os.open(directory, os.O_RDONLY)
    spare = os.path.join(directory, "spare")
    open(spare, "wb").close()
    times = {"data": [], "grow": [], "dir": []}
    for i in range(count):
        started = time.monotonic()
        os.pwrite(data, b"x" * 511 + b"\n", (i * 512) % (1 << 20))
        os.fdatasync(data)
        times["data"].append(time.monotonic() - started)
        started = time.monotonic()
        os.write(grow, b"c" * 299 + b"\n")
        os.fdatasync(grow)
        times["grow"].append(time.monotonic() - started)
        started = time.monotonic()
        target = os.path.join(directory, f"segment-{i}")
        os.link(spare, target)
        os.unlink(target)
        os.fsync(dir_fd)
        times["dir"].append(time.monotonic() - started)
    for name, values in times.items():
        values.sort()
        q = lambda p: values[min(len(values) - 1, int(p * len(values)))] * 1e3
        print(f"{name:5} p50 {q(0.5):6.2f}  p99 {q(0.99):6.2f}  max {values[-1] * 1e3:6.1f} ms  ({len(values)})")
    for name in ("data", "grow", "spare"):
        os.remove(os.path.join(directory, name))
    os.rmdir(directory)


if __name__ == "__main__":
    main()
