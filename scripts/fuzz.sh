#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each (default 20), with the limits of
# docs/fuzzing.md: inputs up to the request body limit (1 MiB), an input that takes more than
# 1 s (libFuzzer's -timeout, whole seconds) or 100 ms of CPU (the targets' own budget,
# KBI_FUZZ_SLOW_MS) is a failure, as are crashes, leaks and more than 2 GiB resident.
# Fails if any target found anything; findings are saved in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh            # 20 s per target (CI's smoke, from scripts/test.sh)
#   scripts/fuzz.sh 3600       # an hour per target
#   scripts/fuzz.sh 600 soap_door rest_batch
#
# The committed seeds (fuzz/corpus/TARGET) are only read; what the fuzzer learns is kept in
# fuzz/work/TARGET (not committed), so a longer run continues where the last one stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
bash scripts/setup/cargo-fuzz.sh

cd fuzz
# One build for all targets.
cargo +nightly fuzz build
bin="target/x86_64-unknown-linux-gnu/release"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

max_len="${KBI_FUZZ_MAX_LEN:-1048576}"
failed=()
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "work/$target" "artifacts/$target" "corpus/$target"
    if ! "$bin/$target" "work/$target" "corpus/$target" \
        -max_total_time="$seconds" \
        -max_len="$max_len" \
        -timeout=1 \
        -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" \
        -print_final_stats=1 2>"work/$target.log"; then
        tail -n 60 "work/$target.log"
        failed+=("$target")
    else
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' \
            "work/$target.log" || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, nothing found"
