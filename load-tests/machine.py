#!/usr/bin/env python3
"""What the machine itself did during one load step: time stolen by the hypervisor and time
some task waited for a CPU (pressure stall information), both from /proc.

    machine.py save FILE          record the counters now
    machine.py since FILE LABEL   print what happened since FILE was saved

A p99 of a few milliseconds is 1 % of the requests: if the machine took the CPUs away from the
service and its load generator for more than about 1 % of a step (steal), or kept some task
waiting for a CPU that long (pressure), no server can keep its tail below that on it."""
import sys
import time


def counters():
    fields = open("/proc/stat").readline().split()[1:]
    ticks = [int(x) for x in fields]
    steal_s = ticks[7] / 100.0 if len(ticks) > 7 else 0.0
    all_s = sum(ticks[:8]) / 100.0
    idle_s = (ticks[3] + ticks[4]) / 100.0  # idle and iowait
    pressure_us = 0
    try:
        for line in open("/proc/pressure/cpu"):
            if line.startswith("some"):
                pressure_us = int(line.split("total=")[1])
    except OSError:
        pressure_us = -1
    return {"at": time.monotonic(), "steal": steal_s, "all": all_s, "idle": idle_s, "pressure": pressure_us}


def main():
    if sys.argv[1] == "save":
        c = counters()
        with open(sys.argv[2], "w") as out:
            out.write(" ".join(f"{k}={v}" for k, v in c.items()))
        return
    before = dict(kv.split("=") for kv in open(sys.argv[2]).read().split())
    before = {k: float(v) for k, v in before.items()}
    now = counters()
    wall = now["at"] - before["at"]
    steal = now["steal"] - before["steal"]
    cpu = now["all"] - before["all"]
    busy = cpu - (now["idle"] - before["idle"])
    if not cpu:
        print(f"{sys.argv[3]}: –")
        return
    parts = [
        f"{sys.argv[3]}: {wall:.1f} s; CPUs busy {busy / cpu:.0%}; "
        f"steal {steal * 1e3:.0f} ms of {cpu:.1f} CPU-s ({steal / cpu:.2%})"
    ]
    if now["pressure"] >= 0 and before["pressure"] >= 0:
        waited = (now["pressure"] - before["pressure"]) / 1e6
        parts.append(f"some task waiting for a CPU {waited / wall:.0%} of the time")
    print("; ".join(parts))


if __name__ == "__main__":
    main()
