#!/usr/bin/env python3
"""Whether the disk's audit stalls are the whole device's or one file's.

    python3 load-tests/stall_overlap.py DIR [SECONDS]

Two threads each append 512-byte records (about an audit line) in place into their own
zero-filled, synced 8 MiB file in DIR and make each durable (pwrite + fdatasync) before the
next, as the audit log's writer does. Every append's start and end are kept. Then, for every
append of one file that took over 5 ms, it looks at the other file: did an append of the other
file that started after the slow one began become durable before it?

If the stalls were one file's (one slow write, one queue), a second path would have answered
earlier: a log that wrote each record to two files and answered at the first durable copy
would cut the tail. If they are the device's (a cache flush of the whole virtual disk, the
host's own sync), the other file stalls over the same interval and no layout of files helps.

Prints per file the appends, p99 and max, the appends over 5 ms and the time they took, and the
share of that time in which the other file made an append durable that it had begun during the
stall ("covered"), with the latency the slow appends would have had at the first durable copy.
Run it on a quiet machine.
"""
import bisect
import os
import sys
import threading
import time

FILE_BYTES = 8 << 20
RECORD = b"x" * 511 + b"\n"
SLOW = 0.005


def appender(path, seconds, out, start):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    zeros = b"\0" * (1 << 20)
    for i in range(FILE_BYTES >> 20):
        os.pwrite(fd, zeros, i << 20)
    os.fsync(fd)
    start.wait()  # both files prepared: the appends begin together
    until = time.monotonic() + seconds
    offset = 0
    while True:
        began = time.monotonic()
        if began >= until:
            break
        os.pwrite(fd, RECORD, offset)
        os.fdatasync(fd)
        out.append((began, time.monotonic()))
        offset = (offset + len(RECORD)) % FILE_BYTES
    os.close(fd)
    os.unlink(path)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def report(name, own, other):
    latencies = sorted(end - began for began, end in own)
    other_starts = [began for began, _ in other]
    slow = [(began, end) for began, end in own if end - began > SLOW]
    slow_time = sum(end - began - SLOW for began, end in slow)
    covered_time = 0.0
    hedged = []
    for began, end in slow:
        # The other file's appends begun during this one, and the first of them to be durable.
        first = bisect.bisect_left(other_starts, began)
        last = bisect.bisect_right(other_starts, end)
        durable = [o_end for _, o_end in other[first:last] if o_end < end]
        at = min(durable) if durable else end
        hedged.append(at - began)
        covered_time += max(0.0, end - max(at, began + SLOW))
    share = covered_time / slow_time if slow_time else 0.0
    hedged.sort()
    print(
        f"{name}: {len(own):,} appends, p99 {percentile(latencies, 0.99) * 1e3:.2f} ms, "
        f"max {latencies[-1] * 1e3:.1f} ms; over 5 ms: {len(slow)} appends, "
        f"{slow_time * 1e3:.0f} ms beyond 5 ms; covered by the other file: {share:.0%}"
        + (
            f"; the slow ones at the first durable copy: max {hedged[-1] * 1e3:.1f} ms, "
            f"{sum(1 for h in hedged if h > SLOW)} still over 5 ms"
            if hedged
            else ""
        )
    )


def main():
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    os.makedirs(directory, exist_ok=True)
    start = threading.Barrier(2)
    results = {"a": [], "b": []}
    threads = [
        threading.Thread(target=appender, args=(os.path.join(directory, f"segment-{n}"), seconds, results[n], start))
        for n in results
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report("file a", results["a"], results["b"])
    report("file b", results["b"], results["a"])


if __name__ == "__main__":
    main()
