#!/usr/bin/env python3
"""The audit writer during one load step, from /metrics expositions.

usage: curl -s OPS/metrics | audit_stats.py LABEL [BEFORE.txt]
    Sync rounds (one fdatasync each), records, records per round (mean and bucket-estimated
    p50/p99), round duration, and the distribution of an append's wait (hand-over to the writer
    until durable: kbi_audit_wait_seconds); then the slow ones, the tail's witnesses: syncs
    over 5 ms and the slowest sync's bucket, and appends that waited over 5 ms. With BEFORE (the
    exposition saved before the step), only what happened during the step counts.
usage: audit_stats.py --record-bytes AUDIT_DIR
    The mean length (bytes, newline included) of the records in AUDIT_DIR's segments: the value
    size of the durable Redis peer."""
import glob
import re
import sys


def parse(text):
    values = {}
    for name, labels, value in re.findall(r"^(kbi_audit_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+|NaN)$", text, re.M):
        values[name + (labels or "")] = float(value)
    return values


def histogram(values, name):
    """(count, sum, [(le, cumulative)])."""
    buckets = sorted(
        (float("inf") if le == "+Inf" else float(le), n)
        for key, n in values.items()
        for le in re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}}$', key)
    )
    return values.get(f"{name}_count", 0.0), values.get(f"{name}_sum", 0.0), buckets


def quantile(q, count, buckets):
    """Upper bound of the bucket holding quantile q."""
    for le, n in buckets:
        if count and n >= q * count:
            return le
    return float("nan")


def over(limit, count, buckets):
    """How many observations fell above `limit` (a bucket bound), and the bound of the slowest
    bucket holding any."""
    below = next((n for le, n in buckets if le == limit), count)
    return int(count - below), quantile(1.0, count, buckets)


def record_bytes(directory):
    total = lines = 0
    for path in sorted(glob.glob(f"{directory}/audit-*.jsonl")):
        data = open(path, "rb").read()
        data = data[: data.find(b"\0")] if b"\0" in data else data
        total += len(data)
        lines += data.count(b"\n")
    return round(total / lines) if lines else 400


def main():
    if sys.argv[1] == "--record-bytes":
        print(record_bytes(sys.argv[2]))
        return
    label = sys.argv[1]
    after = parse(sys.stdin.read())
    before = parse(open(sys.argv[2]).read()) if len(sys.argv) > 2 else {}
    delta = {key: value - before.get(key, 0.0) for key, value in after.items()}

    rounds, _, per_round = histogram(delta, "kbi_audit_records_per_sync")
    records = delta.get("kbi_audit_records_total", 0.0)
    syncs, sync_sum, sync_buckets = histogram(delta, "kbi_audit_write_duration_seconds")
    waits, wait_sum, wait_buckets = histogram(delta, "kbi_audit_wait_seconds")
    if not rounds:
        print(f"{label}: no audit rounds")
        return
    ms = lambda s: f"{1000 * s:.2f}"  # noqa: E731
    print(
        f"{label}: {int(rounds)} sync rounds (one fdatasync each), {int(records)} records, "
        f"{records / rounds:.1f} records/round (p50 ≤ {quantile(0.5, rounds, per_round):g}, "
        f"p99 ≤ {quantile(0.99, rounds, per_round):g}), mean sync {ms(sync_sum / rounds)} ms; "
        f"wait per append: mean {ms(wait_sum / waits) if waits else '–'} ms, "
        f"p50 ≤ {ms(quantile(0.5, waits, wait_buckets))} ms, "
        f"p90 ≤ {ms(quantile(0.9, waits, wait_buckets))} ms, "
        f"p99 ≤ {ms(quantile(0.99, waits, wait_buckets))} ms"
    )
    slow_syncs, slowest = over(0.005, syncs, sync_buckets)
    slow_waits, _ = over(0.005, waits, wait_buckets)
    print(
        f"{label}, the slow ones: {slow_syncs} syncs over 5 ms (the slowest ≤ {ms(slowest)} ms), "
        f"{slow_waits} appends waited over 5 ms ({100 * slow_waits / waits if waits else 0:.2f} %)"
    )


main()
