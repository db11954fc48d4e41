#!/usr/bin/env python3
"""CPU per request of `kbi-advice serve`, thread by thread, audit log on and off, beside the
durable peer's (docs/performance.md).

    python3 load-tests/cpu_split.py BINARY SNAPSHOT INSZ_FILE [SECONDS]

For each of: the service with the audit log on, the same with it off, and Redis with
`appendonly yes, appendfsync always` (SET, the `redis-set-aof` step's peer): start it, warm up
2 s, then load it for SECONDS (default 10) with 64 connections (wrk and `lua/rest-single.lua`
for the service, `redis-benchmark -t set -d 512` for Redis) and read every thread's CPU time and
context switches from /proc/PID/task/*/ before and after. Prints requests/s, CPU µs per request
in all and per kind of thread (the actix workers, the audit writer, syncer and spare preparer),
and voluntary context switches per request. The load generator shares the machine's CPUs with
the server, so the throughput follows the CPU per request of both; the CPU per request is the
figure that does not depend on how many cores the server got.

With STRACE=1 the service is also loaded once more, shorter, under `strace -c -f`, and the
system calls per request are printed (strace slows the server; the counts per request hold).
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from callgrind import free_port, wait_ready  # noqa: E402
from ctxsw import thread_counters  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def threads(pid):
    """{thread name: (cpu seconds, voluntary switches)} summed over threads of one kind."""
    out = {}
    for name, cpu, voluntary, _ in thread_counters(pid):
        kind = "actix workers" if name.startswith("actix-rt") else name
        previous = out.get(kind, (0.0, 0))
        out[kind] = (previous[0] + cpu, previous[1] + voluntary)
    return out


def report(label, requests, seconds, before, after):
    print(f"{label}: {requests / seconds:,.0f} requests/s")
    total_cpu = 0.0
    rows = []
    for kind in sorted(after):
        cpu = after[kind][0] - before.get(kind, (0.0, 0))[0]
        switches = after[kind][1] - before.get(kind, (0.0, 0))[1]
        total_cpu += cpu
        if cpu > 0 or switches > requests / 100:
            rows.append((kind, cpu, switches))
    print(f"  CPU per request {total_cpu / requests * 1e6:.1f} µs")
    for kind, cpu, switches in rows:
        print(f"    {kind:<16} {cpu / requests * 1e6:6.1f} µs  "
              f"{switches / requests:5.2f} voluntary switches per request")


def wrk(port, seconds, insz_file, out=None):
    result = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", os.path.join(HERE, "lua/rest-single.lua"),
         f"http://127.0.0.1:{port}"],
        env=dict(os.environ, KBI_INSZ_FILE=insz_file), capture_output=True, text=True, check=True)
    if out:
        open(out, "w").write(result.stdout)
    if re.search(r"Non-2xx|Socket errors", result.stdout):
        sys.exit(f"wrk saw failed requests:\n{result.stdout}")
    return int(re.search(r"(\d+) requests in", result.stdout).group(1))


def service(binary, snapshot, insz_file, audit, seconds, work):
    port, ops = free_port(), free_port()
    env = dict(os.environ, KBI_ADVICE__LOG__LEVEL="warn",
               KBI_ADVICE__AUDIT__ENABLED="true" if audit else "false",
               KBI_ADVICE__AUDIT__DIR=os.path.join(work, f"audit-{port}"))
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
         "--snapshot", snapshot], env=env, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, f"serve-{port}.log"), "w"))
    try:
        wait_ready(ops, server)
        wrk(port, 2, insz_file)
        before = threads(server.pid)
        requests = wrk(port, seconds, insz_file)
        after = threads(server.pid)
        report(f"kbi-advice REST single, audit {'on' if audit else 'off'}", requests, seconds,
               before, after)
        if os.environ.get("STRACE") == "1":
            counts = os.path.join(work, f"strace-{port}.txt")
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", counts, "-p", str(server.pid)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            traced = wrk(port, 4, insz_file)
            tracer.send_signal(2)
            tracer.wait()
            calls = []
            for line in open(counts):
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls.append((int(parts[3]) / traced, parts[-1]))
            print("    system calls per request (under strace): " + ", ".join(
                f"{name} {per:.2f}" for per, name in sorted(calls, reverse=True) if per >= 0.01))
    finally:
        server.terminate()
        server.wait()


def redis_set_aof(seconds, work):
    port = free_port()
    directory = os.path.join(work, f"redis-{port}")
    os.makedirs(directory)
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)

        def bench(n):
            started = time.monotonic()
            subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "64",
                            "-n", str(n), "-t", "set", "-d", "512", "-q"],
                           capture_output=True, check=True)
            return time.monotonic() - started

        bench(50_000)
        # As many requests as the rate of a short probe gives for SECONDS.
        rate = 100_000 / bench(100_000)
        n = int(rate * seconds)
        before = threads(server.pid)
        took = bench(n)
        after = threads(server.pid)
        report("Redis SET, appendfsync always", n, took, before, after)
    finally:
        server.terminate()
        server.wait()


def main():
    binary, snapshot, insz_file = sys.argv[1:4]
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    with tempfile.TemporaryDirectory(prefix="kbi-cpu-split-") as work:
        service(binary, snapshot, insz_file, True, seconds, work)
        service(binary, snapshot, insz_file, False, seconds, work)
        redis_set_aof(seconds, work)


if __name__ == "__main__":
    main()
