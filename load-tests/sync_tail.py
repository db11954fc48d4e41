#!/usr/bin/env python3
"""What a durable append waits for: the audit log's write pattern alone, without the service.

    python3 load-tests/sync_tail.py DIR [SECONDS_PER_MODE] [ROUNDS]

Appends 512-byte records (about an audit line) in place into a preallocated, zero-filled, synced
file in DIR — as the audit writer does — and makes each durable before the next, in four ways,
interleaved (ROUNDS rounds of SECONDS_PER_MODE each):

  fdatasync     pwrite into the page cache, then fdatasync (what the audit log does)
  dsync         pwrite on a descriptor opened O_DSYNC (durable when the write returns)
  direct-dsync  O_DIRECT | O_DSYNC, 4 KiB-aligned writes of the page the record ends in
  sfr           pwrite, sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER) on the range, fdatasync

For each append it records the time to durable, and /proc/vmstat's nr_writeback and nr_dirty
(pages of the whole machine under writeback and dirty) just before it. Prints per mode p50, p99,
p99.9, max, and for the appends slower than 5 ms how many started while other writeback was in
flight (nr_writeback > 0) against the share of all appends that did: if slow appends are the ones
that met writeback, the tail waits for the kernel's writeback of other pages, not for our own.
It also reads the thread's run-queue delay (/proc/thread-self/schedstat) around each append: the
share of the slow appends' time spent runnable but waiting for a CPU, i.e. not waiting for the
disk at all but for the machine's other work.
"""

import ctypes
import mmap
import os
import sys
import time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
SIZE = 64 << 20
RECORD = 512


def vmstat():
    values = {}
    with open("/proc/vmstat") as f:
        for line in f:
            key, value = line.split()
            if key in ("nr_writeback", "nr_dirty"):
                values[key] = int(value)
    return values["nr_writeback"], values["nr_dirty"]


def run_delay():
    """Nanoseconds this thread has waited for a CPU while runnable (schedstat's second field)."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1])


def prepare(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.posix_fallocate(fd, 0, SIZE)
    zeros = b"\0" * (1 << 20)
    for offset in range(0, SIZE, len(zeros)):
        os.pwrite(fd, zeros, offset)
    os.fsync(fd)
    os.close(fd)


def run(mode, path, seconds):
    flags = os.O_RDWR
    if mode in ("dsync", "direct-dsync"):
        flags |= os.O_DSYNC
    if mode == "direct-dsync":
        flags |= os.O_DIRECT
    fd = os.open(path, flags)
    page = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    line = (b"x" * (RECORD - 1)) + b"\n"
    offset, samples = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end and offset + RECORD < SIZE:
        before = vmstat()
        waited = run_delay()
        started = time.perf_counter()
        if mode == "direct-dsync":
            start = offset - offset % 4096
            if offset % 4096 == 0:
                page.seek(0)
                page.write(b"\0" * 4096)
            page.seek(offset - start)
            page.write(line)
            os.pwritev(fd, [page], start)
        else:
            os.pwrite(fd, line, offset)
            if mode == "sfr":
                if libc.sync_file_range(fd, ctypes.c_longlong(offset), ctypes.c_longlong(RECORD),
                                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                                        | SYNC_FILE_RANGE_WAIT_AFTER) != 0:
                    raise OSError(ctypes.get_errno(), "sync_file_range")
            if mode in ("fdatasync", "sfr"):
                os.fdatasync(fd)
        took = time.perf_counter() - started
        samples.append((took, before[0], before[1], (run_delay() - waited) / 1e9))
        offset += RECORD
    os.close(fd)
    return samples


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def main():
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    path = os.path.join(directory, "sync-tail.tmp")
    modes = ["fdatasync", "dsync", "direct-dsync", "sfr"]
    results = {mode: [] for mode in modes}
    try:
        for _ in range(rounds):
            for mode in modes:
                prepare(path)
                results[mode].extend(run(mode, path, seconds))
    finally:
        if os.path.exists(path):
            os.unlink(path)
    print(f"{'mode':<13} {'appends':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}"
          f"  slow (>5 ms): n, met writeback, share of their time waiting for a CPU | all: met writeback")
    for mode in modes:
        samples = results[mode]
        times = sorted(s[0] * 1000 for s in samples)
        slow = [s for s in samples if s[0] > 0.005]
        met = sum(1 for s in slow if s[1] > 0)
        met_all = sum(1 for s in samples if s[1] > 0)
        cpu_wait = sum(s[3] for s in slow) / max(sum(s[0] for s in slow), 1e-9)
        print(f"{mode:<13} {len(samples):>8} {pct(times, .5):>8.2f} {pct(times, .99):>8.2f} "
              f"{pct(times, .999):>9.2f} {times[-1]:>8.2f}  {len(slow):>6}, {met / max(len(slow), 1):>6.0%}, {cpu_wait:>6.0%}"
              f" | {met_all / len(samples):.0%}")


if __name__ == "__main__":
    main()
