#!/usr/bin/env python3
"""Prints load-tests/run's results as a table with the ratios of performance.md, and writes the
same as Markdown. usage: report.py RESULTS.jsonl OUT.md"""
import json
import sys

results = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        results[r["name"]] = r


def fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


lines = ["| measure | tool | requests/s | questions/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
for r in results.values():
    lines.append(
        f"| {r['name']} | {r['tool']} | {fmt(r['rps'])} | {fmt(r['qps'])} | "
        f"{fmt(r.get('p50_ms'), 3)} | {fmt(r.get('p99_ms'), 3)} | {r['errors']} |"
    )


def ratio(a, b, key="rps"):
    if a in results and b in results and results[b][key]:
        return results[a][key] / results[b][key]
    return None


checks = []


def check(label, value, target, higher=True, unit="×"):
    if value is None:
        checks.append(f"| {label} | – | {target}{unit} | not measured |")
        return
    ok = value >= target if higher else value <= target
    checks.append(
        f"| {label} | {value:.2f}{unit} | {'≥' if higher else '≤'} {target}{unit} | {'met' if ok else 'NOT MET'} |"
    )


# The targets of performance.md, each against the figure it names (audit on or off).
check(
    "REST single (audit on) / Redis SET, appendfsync always (durable peer)",
    ratio("rest-single", "redis-set-aof"),
    1.0,
)
check("REST single, audit off / Redis GET", ratio("rest-single-audit-off", "redis-get"), 1.0)
check("SOAP single, audit off / Redis GET", ratio("soap-single-audit-off", "redis-get"), 0.6)
check("REST single, audit off / empty actix handler", ratio("rest-single-audit-off", "floor"), 0.85)
for name, target in (("soap-batch-100", 500), ("soap-batch-1000", 700), ("rest-batch-1000", 500)):
    q = results.get(name, {}).get("qps")
    check(f"questions/s, {name}", q / 1000 if q else None, target, unit=" k/s")
cr = results.get("rest-constant-rate")
check("p99 at half the max rate, audit on (REST, corrected)", cr.get("p99_ms") if cr else None, 5.0, higher=False, unit=" ms")
off = results.get("rest-constant-rate-audit-off")
check("p99 at half the max rate, audit off (REST, corrected)", off.get("p99_ms") if off else None, 2.0, higher=False, unit=" ms")
scr = results.get("soap-constant-rate")
check("p99 at half the max rate, audit on (SOAP single, corrected)", scr.get("p99_ms") if scr else None, 5.0, higher=False, unit=" ms")
soff = results.get("soap-constant-rate-audit-off")
check("p99 at half the max rate, audit off (SOAP single, corrected)", soff.get("p99_ms") if soff else None, 2.0, higher=False, unit=" ms")
fcr = results.get("floor-constant-rate")
check("p99 of the empty actix handler at the audit-off REST rate (the machine's own tail)", fcr.get("p99_ms") if fcr else None, 2.0, higher=False, unit=" ms")
fscr = results.get("floor-soap-constant-rate")
check("p99 of the empty actix handler, SOAP bodies, at the audit-off SOAP rate (the machine's own tail)", fscr.get("p99_ms") if fscr else None, 2.0, higher=False, unit=" ms")
check("mutual TLS / plain (oha, same settings)", ratio("rest-mtls", "rest-plain-oha"), 0.8)
check("audit on / audit off (REST single)", ratio("rest-single", "rest-single-audit-off"), 0.9)
check(
    "audit on / audit off, 256 connections (REST single)",
    ratio("rest-single-256", "rest-single-audit-off-256"),
    0.9,
)
big, small = results.get("rest-constant-rate-10m"), results.get("rest-constant-rate")
flat = big["p99_ms"] / small["p99_ms"] if big and small and small.get("p99_ms") else None
check("p99 at the same rate, 10 M / 100 k persons", flat, 1.5, higher=False)

table = "\n".join(lines)
verdicts = "| ratio | measured | target | |\n|---|---|---|---|\n" + "\n".join(checks)
print(table)
print()
print(verdicts)
with open(sys.argv[2], "w") as out:
    out.write(table + "\n\n" + verdicts + "\n")
