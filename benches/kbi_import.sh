#!/usr/bin/env bash
# Benchmark of `snapshot import --from kbi-dossier-01.00` (not a test): generated dossiers in
# batch files, imported; and the floor, the same XML read by quick-xml's reader doing nothing
# (benches/floor/kbi_xml_floor.rs). Floor and import alternate in the same run, ROUNDS times, because
# the machine is shared and noisy; the best of each is reported with the ratio.
#
#   bash benches/kbi_import.sh [PERSONS] [ROUNDS]     (default 1000000 persons, 3 rounds)
#
# With KBI_BASE_BIN=/path/to/an/older/kbi-advice, each round also imports with that binary (same
# data, same flags, alternating) and the summary gives the ratio this build / that one: the
# before/after of a change measured in one run (issue 20's "no slower than today").
#
# Needs /usr/bin/time (GNU time) for the peak RSS. Data in ${KBI_BENCH_DIR:-/tmp/kbi-import-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSONS=${1:-1000000}
ROUNDS=${2:-3}
DIR=${KBI_BENCH_DIR:-/tmp/kbi-import-bench}/$PERSONS
# KBI_BIN / KBI_FLOOR: binaries built elsewhere (e.g. another CARGO_TARGET_DIR); else built here.
if [ -z "${KBI_BIN:-}" ]; then
    cargo build --release --quiet --bin kbi-advice --example kbi_xml_floor
fi
BIN=${KBI_BIN:-target/release/kbi-advice}
FLOOR=${KBI_FLOOR:-target/release/examples/kbi_xml_floor}
if [ ! -f "$DIR/replies/expected.jsonl" ]; then
    rm -rf "$DIR"; mkdir -p "$DIR"
    "$BIN" snapshot generate --format kbi-dossier-01.00 --persons "$PERSONS" --seed 1 \
        --per-file 100000 --out "$DIR/replies"
fi
BYTES=$(cat "$DIR"/replies/batch-*.xml | wc -c)
measure() { # label command... → $DIR/label.out, $DIR/label.time
    local label=$1; shift
    /usr/bin/time -v "$@" > "$DIR/$label.out" 2> "$DIR/$label.time" || { cat "$DIR/$label.time" >&2; exit 1; }
}
secs() { # GNU time's "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:12.34"
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}
rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$1"; }
best_floor=999999; best_import=999999; floor_rss=0; import_rss=0; floor_cpu=999999; import_cpu=999999
best_base=999999; base_rss=0; base_cpu=999999
for round in $(seq "$ROUNDS"); do
    if [ -n "${KBI_BASE_BIN:-}" ]; then
        rm -f "$DIR/imported.jsonl.zst"
        measure base "$KBI_BASE_BIN" snapshot import --from kbi-dossier-01.00 "$DIR/replies" \
            --out "$DIR/imported.jsonl.zst" --snapshot-id bench --extracted-at 2026-11-01T02:00:00Z \
            --report "$DIR/report-base.json"
        b=$(secs "$DIR/base.time"); br=$(rss "$DIR/base.time"); bc=$(cpu "$DIR/base.time")
        echo "round $round: base import ${b}s wall ${bc}s cpu (rss ${br} KiB)"
        if awk "BEGIN { exit !($bc < $base_cpu) }"; then base_cpu=$bc; fi
        if awk "BEGIN { exit !($b < $best_base) }"; then best_base=$b; base_rss=$br; fi
    fi
    measure floor "$FLOOR" "$DIR/replies"
    f=$(secs "$DIR/floor.time"); fr=$(rss "$DIR/floor.time"); fc=$(cpu "$DIR/floor.time")
    rm -f "$DIR/imported.jsonl.zst"
    measure import "$BIN" snapshot import --from kbi-dossier-01.00 "$DIR/replies" \
        --out "$DIR/imported.jsonl.zst" --snapshot-id bench --extracted-at 2026-11-01T02:00:00Z \
        --report "$DIR/report.json"
    i=$(secs "$DIR/import.time"); ir=$(rss "$DIR/import.time"); ic=$(cpu "$DIR/import.time")
    echo "round $round: floor ${f}s wall ${fc}s cpu (rss ${fr} KiB), import ${i}s wall ${ic}s cpu (rss ${ir} KiB); load $(cut -d' ' -f1 /proc/loadavg)"
    if awk "BEGIN { exit !($fc < $floor_cpu) }"; then floor_cpu=$fc; fi
    if awk "BEGIN { exit !($ic < $import_cpu) }"; then import_cpu=$ic; fi
    if awk "BEGIN { exit !($f < $best_floor) }"; then best_floor=$f; floor_rss=$fr; fi
    if awk "BEGIN { exit !($i < $best_import) }"; then best_import=$i; import_rss=$ir; fi
done
DOSSIERS=$(python3 -c "import json; print(json.load(open('$DIR/report.json'))['dossiers'])")
REPLIES=$(python3 -c "import json; print(json.load(open('$DIR/report.json'))['replies'])")
awk -v b="$BYTES" -v d="$DOSSIERS" -v r="$REPLIES" -v f="$best_floor" -v i="$best_import" \
    -v fr="$floor_rss" -v ir="$import_rss" -v fc="$floor_cpu" -v ic="$import_cpu" 'BEGIN {
    printf "XML: %.0f MB in %d replies (%d dossiers)\n", b / 1e6, r, d;
    printf "floor (quick-xml, nothing else): %.2f s, %.0f MB/s, peak RSS %.1f MB\n", f, b / 1e6 / f, fr / 1024;
    printf "import: %.2f s, %.0f MB/s, %.0f dossiers/s, peak RSS %.1f MB\n", i, b / 1e6 / i, d / i, ir / 1024;
    printf "ratio import/floor: %.2f wall, %.2f CPU (user+sys: floor %.2f s, import %.2f s)\n", i / f, ic / fc, fc, ic }'
if [ -n "${KBI_BASE_BIN:-}" ]; then
    awk -v b="$best_base" -v i="$best_import" -v br="$base_rss" -v ir="$import_rss" -v bc="$base_cpu" -v ic="$import_cpu" 'BEGIN {
    printf "base import: %.2f s wall, %.2f s CPU, peak RSS %.1f MB\n", b, bc, br / 1024;
    printf "ratio this/base: %.2f wall, %.2f CPU, %.2f peak RSS\n", i / b, ic / bc, ir / br }'
fi
