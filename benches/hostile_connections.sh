#!/usr/bin/env bash
# Benchmark (not a test) of issue 24, item 7: the latency of a second address (127.0.0.2) while
# 127.0.0.1 attacks the client port with silent connections, slow request heads and slow bodies
# (tests/hostile_net/hostile_connections.rs, the ignored test). Target: p99 < 100 ms in every attack.
#
#   bash benches/hostile_connections.sh            (release build)
#   KBI_BENCH_PROFILE=debug bash benches/hostile_connections.sh
#
# Each attack starts its own service; they run one after the other (about a minute in all).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${KBI_BENCH_PROFILE:-release}
FLAGS=()
[ "$PROFILE" = release ] && FLAGS=(--release)
cargo test "${FLAGS[@]}" --quiet --test hostile_net -- --ignored --nocapture \
    hostile_connections::measure_the_second_address_under_the_three_attacks 2>&1 | grep -E '^attack |test result'
