#!/usr/bin/env python3
"""Instructions per request of `kbi-advice serve`, counted by callgrind (docs/performance.md).

    python3 load-tests/callgrind.py BINARY SNAPSHOT BODIES_DIR OUT_DIR [N]

Starts BINARY under `valgrind --tool=callgrind` with instrumentation off (start-up and the
snapshot load are not counted), then per scenario: zero the counters, send N requests over one
keep-alive connection, dump. Instruction counts do not depend on the machine's load, unlike
times: the figure to compare before and after a change on a shared machine. Prints one line per
scenario (instructions per request) and leaves the dumps in OUT_DIR for `callgrind_annotate`.

BODIES_DIR is what `load-tests/bodies.py` writes (inszs.txt, soap-single-*.xml,
soap-batch100-*.xml, rest-batch1000-*.json) for SNAPSHOT. The audit log is off: this counts
the request path; with AUDIT=on it is on (in OUT_DIR/audit), and the audit writer's and syncer's
instructions are counted too (not the time they wait for the disk).

With FLOOR=PATH (the `floor` example: `cargo build --release --example floor`), the empty
actix-web handler is counted the same way afterwards, for a GET like REST single's and a POST of
the SOAP single body, and the ratios of kbi-advice to it are printed: the framework's share of a
request, which the throughput ratio "REST single audit off / empty handler" (≥ 0.85 ×) measures
through the noise of a shared machine.
"""

import glob
import http.client
import os
import re
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, process, path="/health/ready"):
    for _ in range(600):
        if process.poll() is not None:
            sys.exit("the server stopped before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("the server did not get ready")


def under_callgrind(out, command, log, env=None):
    """Starts `command` under callgrind with instrumentation off until `count_scenarios`
    turns it on (start-up is not counted); its dumps go to OUT."""
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={out}/callgrind.out.%p", *command],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(out, log), "w"))


def callgrind_control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def main():
    binary, snapshot, bodies, out = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    os.makedirs(out, exist_ok=True)
    port, ops = free_port(), free_port()
    env = dict(
        os.environ,
        KBI_ADVICE__LOG__LEVEL=os.environ.get("KBI_ADVICE__LOG__LEVEL", "warn"),
        KBI_ADVICE__AUDIT__ENABLED="true" if os.environ.get("AUDIT") == "on" else "false",
        KBI_ADVICE__AUDIT__DIR=os.path.join(out, "audit"),
    )
    server = under_callgrind(
        out, [binary, "serve", "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
              "--snapshot", snapshot], "serve.log", env)
    try:
        wait_ready(ops, server)
        inszs = open(os.path.join(bodies, "inszs.txt")).read().split()
        soap = [open(p, "rb").read() for p in sorted(glob.glob(f"{bodies}/soap-single-*.xml"))]
        batch = [open(p, "rb").read() for p in sorted(glob.glob(f"{bodies}/rest-batch1000-*.json"))]
        soap_batch = [open(p, "rb").read() for p in sorted(glob.glob(f"{bodies}/soap-batch100-*.xml"))]
        scenarios = [
            ("rest-single", n, lambda i: ("GET",
             f"/v1/integration-obligation/{inszs[i % len(inszs)]}?date=2026-01-01", None, {})),
            ("soap-single", n, lambda i: ("POST", "/soap/GeefAdviesInburgeringsplicht-01.00",
             soap[i % len(soap)], {"Content-Type": "text/xml; charset=utf-8"})),
            ("rest-batch-1000", max(n // 20, 10), lambda i: ("POST",
             "/v1/integration-obligation:batch", batch[i % len(batch)],
             {"Content-Type": "application/json"})),
            ("soap-batch-100", max(n // 10, 10), lambda i: ("POST",
             "/soap/GeefAdviesInburgeringsplicht-01.00", soap_batch[i % len(soap_batch)],
             {"Content-Type": "text/xml; charset=utf-8"})),
        ]
        # HOSTILE=DIR (load-tests/hostile_bodies.py): each hostile body too, whatever it is
        # answered (a Fault is 500).
        hostile = os.environ.get("HOSTILE")
        for path in sorted(glob.glob(f"{hostile}/hostile-*.xml")) if hostile else []:
            body = open(path, "rb").read()
            name = os.path.basename(path)[:-4]
            scenarios.append((name, max(n // 20, 10), lambda i, body=body: ("POST",
                              "/soap/GeefAdviesInburgeringsplicht-01.00", body,
                              {"Content-Type": "text/xml; charset=utf-8"})))
        counted = count_scenarios(server, port, out, scenarios)
    finally:
        server.terminate()
        server.wait()

    floor = os.environ.get("FLOOR")
    if not floor:
        return
    port = free_port()
    server = under_callgrind(out, [floor, f"127.0.0.1:{port}"], "floor.log")
    try:
        wait_ready(port, server, "/")
        floors = count_scenarios(server, port, out, [
            ("floor-get", n, lambda i: ("GET",
             f"/v1/integration-obligation/{inszs[i % len(inszs)]}?date=2026-01-01", None, {})),
            ("floor-soap-body", n, lambda i: ("POST", "/soap/GeefAdviesInburgeringsplicht-01.00",
             soap[i % len(soap)], {"Content-Type": "text/xml; charset=utf-8"})),
        ])
    finally:
        server.terminate()
        server.wait()
    for ours, theirs in (("rest-single", "floor-get"), ("soap-single", "floor-soap-body")):
        print(f"{ours} / {theirs}: {counted[ours] / floors[theirs]:.2f} × the instructions "
              f"(the handler's share of {ours}: {1 - floors[theirs] / counted[ours]:.0%})")


def count_scenarios(server, port, out, scenarios):
    """Counts each scenario's requests over one keep-alive connection; returns instructions per
    request by name."""
    counted = {}
    callgrind_control(server.pid, "-i", "on")
    for name, count, make in scenarios:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        # One warm-up request: the connection's set-up is not a request's cost.
        for i in range(-1, count):
            if i == 0:
                callgrind_control(server.pid, "-z")
            method, path, body, headers = make(max(i, 0))
            connection.request(method, path, body=body, headers={"X-Client-Id": "demo", **headers})
            response = connection.getresponse()
            response.read()
            if response.status != 200 and not name.startswith("hostile-"):
                sys.exit(f"{name}: HTTP {response.status}")
        callgrind_control(server.pid, "-d", name)
        connection.close()
        time.sleep(1)
        dumps = sorted(glob.glob(f"{out}/callgrind.out.{server.pid}.*"), key=os.path.getmtime)
        total = 0
        for line in open(dumps[-1]):
            match = re.match(r"(?:summary|totals): (\d+)", line)
            if match:
                total = int(match.group(1))
                break
        os.replace(dumps[-1], f"{out}/{name}.callgrind")
        counted[name] = total / count
        print(f"{name}: {total / count:,.0f} instructions per request ({count} requests)",
              flush=True)
    return counted


if __name__ == "__main__":
    main()
