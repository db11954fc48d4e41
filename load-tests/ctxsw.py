#!/usr/bin/env python3
"""Context switches per request of `kbi-advice serve` (docs/performance.md).

    python3 load-tests/ctxsw.py BINARY SNAPSHOT BODIES_DIR [N]

Starts BINARY (audit log off, as callgrind.py), then per scenario sends N requests over one
keep-alive connection, one at a time, and reads every server thread's voluntary and involuntary
context switches from /proc/PID/task/*/status before and after. A request handled on the network
thread alone costs that thread one wake-up (the socket); one handed to the compute pool adds a
wake-up of a compute thread and another of the network thread when the work is done: the hop
shows as about two more voluntary switches per request. For a GET the voluntary figure does not
depend on the machine's load; for a POST a little (http.client sends headers and body in two
writes: a server that read the headers first sleeps once more), so compare several runs. The
involuntary ones do depend on it (preemption). Prints one line per scenario.
"""

import glob
import http.client
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from callgrind import free_port, wait_ready  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def thread_counters(pid):
    """Per thread of process `pid`: (name, CPU seconds, voluntary and involuntary context
    switches), from /proc/PID/task/*/ (a thread that ends meanwhile is left out)."""
    threads = []
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            stat = open(f"{task}/stat").read()
            status = open(f"{task}/status").read()
        except OSError:
            continue
        # The name is in parentheses and may hold spaces: the fields after it are fixed.
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        voluntary = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        involuntary = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        threads.append((name, cpu, voluntary, involuntary))
    return threads


def switches(pid):
    threads = thread_counters(pid)
    return sum(t[2] for t in threads), sum(t[3] for t in threads)


def main():
    binary, snapshot, bodies = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    port, ops = free_port(), free_port()
    env = dict(os.environ, KBI_ADVICE__LOG__LEVEL="warn", KBI_ADVICE__AUDIT__ENABLED="false")
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
         "--snapshot", snapshot],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ops, server)
        inszs = open(os.path.join(bodies, "inszs.txt")).read().split()
        soap = [open(p, "rb").read() for p in sorted(glob.glob(f"{bodies}/soap-single-*.xml"))]
        soap_batch = [open(p, "rb").read() for p in sorted(glob.glob(f"{bodies}/soap-batch100-*.xml"))]
        xml = {"Content-Type": "text/xml; charset=utf-8"}
        scenarios = [
            ("rest-single", n, lambda i: ("GET",
             f"/v1/integration-obligation/{inszs[i % len(inszs)]}?date=2026-01-01", None, {})),
            ("soap-single", n, lambda i: ("POST", "/soap/GeefAdviesInburgeringsplicht-01.00",
             soap[i % len(soap)], xml)),
            ("soap-batch-100", max(n // 10, 10), lambda i: ("POST",
             "/soap/GeefAdviesInburgeringsplicht-01.00", soap_batch[i % len(soap_batch)], xml)),
        ]
        for name, count, make in scenarios:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(-1, count):
                if i == 0:
                    before = switches(server.pid)
                method, path, body, headers = make(max(i, 0))
                connection.request(method, path, body=body, headers={"X-Client-Id": "demo", **headers})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    sys.exit(f"{name}: HTTP {response.status}")
            after = switches(server.pid)
            connection.close()
            voluntary = (after[0] - before[0]) / count
            involuntary = (after[1] - before[1]) / count
            print(f"{name}: {voluntary:.2f} voluntary, {involuntary:.2f} involuntary context "
                  f"switches per request ({count} requests)", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
