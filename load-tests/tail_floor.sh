#!/usr/bin/env bash
# Does the audit-off p99 at a constant rate depend on how many connections the load generator
# keeps? The empty actix-web handler (load-tests/floor.rs) and kbi-advice with the audit log off,
# at the same constant rate (oha -q RATE --latency-correction, 10 s), with CONNECTION_COUNTS
# connections each, interleaved over ROUNDS rounds. Prints one line per step (load-tests/parse.py's
# JSON: rps, p50_ms, p99_ms, errors) and what the machine did meanwhile (steal, CPU pressure:
# load-tests/machine.py).
#   load-tests/tail_floor.sh SNAPSHOT INSZ_FILE      (after cargo build --release --bin kbi-advice --example floor
#                                                     and load-tests/setup.sh)
#   RATE=35000 ROUNDS=2 CONNECTION_COUNTS="64 16 8" DURATION=10 load-tests/tail_floor.sh …
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAPSHOT=$1 INSZ=$(sed -n 1p "$2")
RATE=${RATE:-35000} ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-10}
CONNECTION_COUNTS=${CONNECTION_COUNTS:-64 16 8}
OHA=$ROOT/target/load-tools/bin/oha
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$OUT"' EXIT
# shellcheck source=load-tests/lib.sh
. "$ROOT/load-tests/lib.sh"

PORT=$(free_port) OPS=$(free_port) FPORT=$(free_port)
KBI_ADVICE__LOG__LEVEL=warn KBI_ADVICE__AUDIT__ENABLED=false "$ROOT/target/release/kbi-advice" serve \
    --listen 127.0.0.1:$PORT --ops-listen 127.0.0.1:$OPS --snapshot "$SNAPSHOT" > "$OUT/serve.log" 2>&1 &
"$ROOT/target/release/examples/floor" 127.0.0.1:$FPORT > "$OUT/floor.log" 2>&1 &
wait_http "http://127.0.0.1:$OPS/health/ready" "kbi-advice serve"
wait_http "http://127.0.0.1:$FPORT/" "the floor handler"

for round in $(seq 1 "$ROUNDS"); do
    for connections in $CONNECTION_COUNTS; do
        for who in floor kbi-advice; do
            case $who in
                floor) url="http://127.0.0.1:$FPORT/v1/integration-obligation/x?date=2026-01-01" ;;
                *) url="http://127.0.0.1:$PORT/v1/integration-obligation/$INSZ?date=2026-01-01" ;;
            esac
            python3 "$ROOT/load-tests/machine.py" save "$OUT/machine"
            "$OHA" --no-tui --output-format json -z "${DURATION}s" -c "$connections" -q "$RATE" \
                --latency-correction -H "X-Client-Id: demo" "$url" > "$OUT/step.json"
            python3 "$ROOT/load-tests/parse.py" oha "round-$round-$who-$connections-connections" 1 "$OUT/step.json"
            python3 "$ROOT/load-tests/machine.py" since "$OUT/machine" "          machine"
        done
    done
done
