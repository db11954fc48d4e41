#!/usr/bin/env python3
"""Summarises the audit writer from a /metrics exposition on stdin: rounds (one fsync each),
records, records per round, mean and bucket-estimated p99 round duration.
usage: curl -s OPS/metrics | audit_stats.py LABEL"""
import re
import sys

label = sys.argv[1]
text = sys.stdin.read()


def value(name):
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


count = value("kbi_audit_write_duration_seconds_count")
total = value("kbi_audit_write_duration_seconds_sum")
records = value("kbi_audit_records_total")
buckets = [
    (float(le), float(n))
    for le, n in re.findall(r'^kbi_audit_write_duration_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+-]+)$', text, re.M)
]
p99 = next((le for le, n in buckets if count and n >= 0.99 * count), float("nan"))
if count:
    print(
        f"{label}: {int(count)} audit rounds (one fdatasync each), {int(records)} records, "
        f"{records / count:.1f} records/round, mean {1000 * total / count:.2f} ms/round, "
        f"p99 ≤ {1000 * p99:.1f} ms/round"
    )
else:
    print(f"{label}: no audit rounds")
