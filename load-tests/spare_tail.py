#!/usr/bin/env python3
"""What an audit append waits for while the next segment is being prepared.

    python3 load-tests/spare_tail.py DIR [SECONDS] [ROUNDS]

Appends 512-byte records (about an audit line) in place into a zero-filled, synced 64 MiB file
in DIR and makes each durable (pwrite + fdatasync) before the next, as the audit log's syncer
does, while a second thread prepares 64 MiB spare segments every 2 s in one of three ways
(interleaved, ROUNDS rounds of SECONDS each):

  none     no spare is prepared: the disk's own tail
  bulk     1 MiB zero writes through the page cache, then one fsync (the audit log before
           2026-12-03 afternoon: 64 MiB reach the disk's queue at once)
  paced    64 KiB zero writes through the page cache, each pushed to the device with
           sync_file_range and waited for before the next, 1 ms rest after each, then fsync
           (the audit log now, while its current segment is less than half full)
  direct   the same chunks and rests with O_DIRECT (the alternative not taken: the writer would
           then read each zero page back before its first record in it)

Prints per way the append latency (p50, p99, p99.9, max), the number of appends over 5 ms and
the time they took (the share of the run in which an answer waiting for its sync would have
waited over 5 ms: above 1 %, a p99 of 5 ms is out of reach), and the mean time to prepare one
spare. If the tail of `bulk` is the tail of the service, `paced`
and `none` must look alike and `bulk` must not. Run it on a quiet machine: another process's
writes are the same kind of queue.
"""
import ctypes
import mmap
import os
import sys
import threading
import time

SEGMENT = 64 << 20
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
LIBC.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]


def sync_file_range(fd, offset, length):
    # SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER: on the device before the next chunk
    if LIBC.sync_file_range(fd, offset, length, 1 | 2 | 4) != 0:
        raise OSError(ctypes.get_errno(), "sync_file_range")


def run(directory, mode, seconds):
    os.makedirs(directory, exist_ok=True)
    segment = os.path.join(directory, "segment")
    fd = os.open(segment, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    zeros = b"\0" * (1 << 20)
    for i in range(SEGMENT >> 20):
        os.pwrite(fd, zeros, i << 20)
    os.fsync(fd)
    stop = threading.Event()
    prepared = []
    aligned = mmap.mmap(-1, 64 << 10)  # page-aligned zeros, as O_DIRECT wants

    def prepare():
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            path = os.path.join(directory, f"spare{n % 2}")
            flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if mode == "direct" else 0)
            spare = os.open(path, flags, 0o600)
            os.posix_fallocate(spare, 0, SEGMENT)
            if mode == "bulk":
                for i in range(0, SEGMENT, 1 << 20):
                    os.pwrite(spare, zeros, i)
            elif mode == "paced":
                for i in range(0, SEGMENT, 64 << 10):
                    os.pwrite(spare, zeros[: 64 << 10], i)
                    sync_file_range(spare, i, 64 << 10)
                    time.sleep(0.001)
            else:
                for i in range(0, SEGMENT, 64 << 10):
                    os.pwritev(spare, [aligned], i)
                    time.sleep(0.001)
            os.fsync(spare)
            os.close(spare)
            prepared.append(time.monotonic() - started)
            n += 1
            stop.wait(2.0)

    helper = None
    if mode != "none":
        helper = threading.Thread(target=prepare, daemon=True)
        helper.start()
    record = b"x" * 511 + b"\n"
    offset, latencies = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        os.pwrite(fd, record, offset)
        os.fdatasync(fd)
        latencies.append(time.monotonic() - started)
        offset = (offset + len(record)) % SEGMENT
    stop.set()
    if helper:
        helper.join()
    os.close(fd)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    latencies.sort()

    def q(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3

    slow = sum(1 for x in latencies if x > 0.005)
    # What the service feels: while one append stalls, every answer of that moment waits.
    stalled = sum(x for x in latencies if x > 0.005)
    spare = f"{sum(prepared) / len(prepared) * 1e3:.0f} ms" if prepared else "–"
    print(
        f"{mode:6} appends {len(latencies):7}  p50 {q(0.5):6.2f}  p99 {q(0.99):6.2f}  "
        f"p99.9 {q(0.999):6.2f}  max {latencies[-1] * 1e3:6.1f} ms  over 5 ms: {slow:4} "
        f"({stalled * 1e3:5.0f} ms, {stalled / seconds:.1%} of the time)  "
        f"spares {len(prepared)} (mean {spare})",
        flush=True,
    )


def main():
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    for _ in range(rounds):
        for mode in ("none", "bulk", "paced", "direct"):
            run(directory, mode, seconds)


if __name__ == "__main__":
    main()
