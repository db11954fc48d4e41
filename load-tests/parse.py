#!/usr/bin/env python3
"""Turns one load tool's output into one JSON line of load-tests/run's results.

usage: parse.py wrk|oha|redis NAME QUESTIONS_PER_REQUEST OUTPUT_FILE
Prints {"name", "tool", "rps", "qps", "p50_ms", "p99_ms", "errors"}.
"""
import json
import re
import sys

tool, name, per_request, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
text = open(path).read()
result = {"name": name, "tool": tool, "errors": 0}


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


if tool == "wrk":
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        result[f"p{pct}_ms"] = ms(*m.groups()) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    result["errors"] = errors
elif tool == "oha":
    data = json.loads(text)
    summary = data["summary"]
    result["rps"] = summary["requestsPerSec"]
    pct = data.get("latencyPercentiles", {})
    result["p50_ms"] = pct.get("p50", 0) * 1000 if pct.get("p50") is not None else None
    result["p99_ms"] = pct.get("p99", 0) * 1000 if pct.get("p99") is not None else None
    statuses = data.get("statusCodeDistribution", {})
    result["errors"] = sum(n for code, n in statuses.items() if not code.startswith("2"))
    # Requests still in flight when the duration ends are "aborted due to deadline": oha's way of
    # stopping, not a failure of the service.
    result["errors"] += sum(
        n for kind, n in data.get("errorDistribution", {}).items() if "deadline" not in kind
    )
elif tool == "redis":
    # redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
    # "p95_latency_ms","p99_latency_ms","max_latency_ms"
    rows = [line.replace('"', "").split(",") for line in text.strip().splitlines()]
    header, values = rows[0], rows[-1]
    row = dict(zip(header, values))
    result["rps"] = float(row["rps"])
    result["p50_ms"] = float(row.get("p50_latency_ms", "nan"))
    result["p99_ms"] = float(row.get("p99_latency_ms", "nan"))
else:
    sys.exit(f"unknown tool {tool}")
result["qps"] = result["rps"] * per_request
print(json.dumps(result))
