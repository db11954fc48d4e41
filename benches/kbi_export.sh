#!/usr/bin/env bash
# Benchmark of `kbi-advice export` (not a test): generated dossiers with their profile, a
# monitoring file of 15 profile fields and 2 join columns from a join file with one row per
# person, pseudonymised, suppressed (min_group 5), encrypted and signed; and the floor, the same
# XML read by quick-xml's reader doing nothing (benches/floor/kbi_xml_floor.rs). Floor and
# export alternate in the same run, ROUNDS times (the machine is shared and noisy); the best of
# each is reported with the ratio.
#
#   bash benches/kbi_export.sh [PERSONS] [ROUNDS]     (default 1000000 persons, 3 rounds)
#
# Needs /usr/bin/time (GNU time) for the peak RSS, python3 for the join file; the `age` tool, if
# installed, encrypts the join file (decrypted in memory by the export, as in production).
# Data in ${KBI_BENCH_DIR:-/tmp/kbi-export-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSONS=${1:-1000000}
ROUNDS=${2:-3}
DIR=${KBI_BENCH_DIR:-/tmp/kbi-export-bench}/$PERSONS
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
if [ ! -f "$DIR/keys/sign.pem" ]; then
    mkdir -p "$DIR/keys"
    "$BIN" premium-list keygen --out-dir "$DIR/keys" --name sign > /dev/null
    "$BIN" protocol keygen --pseudonym "$DIR/keys/pseudonym.key" > /dev/null
fi
# One join row per person of the dossiers (the INSZ of expected.jsonl's person lines).
if [ ! -f "$DIR/join.csv" ]; then
    python3 - "$DIR/replies/expected.jsonl" "$DIR/join.csv" <<'EOF'
import json, sys
src, out = sys.argv[1], sys.argv[2]
with open(src) as f, open(out, "w") as o:
    o.write("insz,education_level,outflow_to_work\n")
    for n, line in enumerate(f):
        record = json.loads(line)
        if "insz" not in record:
            continue
        o.write(f"{record['insz']},{('ISCED1','ISCED2','ISCED3','ISCED5')[n % 4]},{('ja','nee')[n % 2]}\n")
EOF
fi
JOIN="$DIR/join.csv"
IDENTITY=()
if command -v age > /dev/null && command -v age-keygen > /dev/null; then
    [ -f "$DIR/keys/agency.key" ] || age-keygen -o "$DIR/keys/agency.key" 2> /dev/null
    if [ ! -f "$DIR/join.csv.age" ]; then
        age -e -r "$(age-keygen -y "$DIR/keys/agency.key")" -o "$DIR/join.csv.age" "$DIR/join.csv"
    fi
    JOIN="$DIR/join.csv.age"
    IDENTITY=(--identity "$DIR/keys/agency.key")
fi
RECIPIENT=age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
cat > "$DIR/bench.toml" <<'EOF'
id = "bench"
title = "benchmark: a monitoring file of 15 profile fields and a join"
sender = "AgII"
recipient = "benchmark"
legal_basis = ["none: generated data"]
term = { from = 2000-01-01 }
retention_years = 5

[[files]]
id = "monitoring"
period = "on-demand"
population = ["all"]
fields = ["pseudonym", "age_category", "sex", "target_group", "target_group_since",
          "registration_date", "contract_date", "contract_signed", "certificate_obtained",
          "trajectory_type", "kbi_office", "kbi_region", "plo_decision", "plo_decision_reason",
          "highest_nt2_level", "last_nt2_activity_date",
          "join:partner.education_level", "join:partner.outflow_to_work"]
identity = "pseudonym"
encryption = "recipients"
age_bands = [18, 25, 35, 45, 55, 65]
min_group = 5
quasi_identifiers = ["age_category", "sex", "kbi_region"]

[[files.joins]]
name = "partner"
key = "insz"
columns = ["education_level", "outflow_to_work"]
EOF
BYTES=$(cat "$DIR"/replies/batch-*.xml | wc -c)
measure() { # label command... → $DIR/label.out, $DIR/label.time
    local label=$1; shift
    /usr/bin/time -v "$@" > "$DIR/$label.out" 2> "$DIR/$label.time" || { cat "$DIR/$label.time" >&2; exit 1; }
}
secs() {
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}
rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$1"; }
best_floor=999999; best_export=999999; floor_rss=0; export_rss=0; floor_cpu=999999; export_cpu=999999
for round in $(seq "$ROUNDS"); do
    measure floor "$FLOOR" "$DIR/replies"
    f=$(secs "$DIR/floor.time"); fr=$(rss "$DIR/floor.time"); fc=$(cpu "$DIR/floor.time")
    rm -rf "$DIR/out"; mkdir -p "$DIR/out"
    measure export "$BIN" export --protocol "$DIR/bench.toml" --file monitoring "$DIR/replies" \
        --reference-date 2026-06-30 --join "partner=$JOIN" "${IDENTITY[@]}" \
        --pseudonym-key "$DIR/keys/pseudonym.key" --recipient "$RECIPIENT" \
        --signing-key "$DIR/keys/sign.pem" --out "$DIR/out" --operator bench \
        --report "$DIR/report.json"
    e=$(secs "$DIR/export.time"); er=$(rss "$DIR/export.time"); ec=$(cpu "$DIR/export.time")
    echo "round $round: floor ${f}s wall ${fc}s cpu (rss ${fr} KiB), export ${e}s wall ${ec}s cpu (rss ${er} KiB); load $(cut -d' ' -f1 /proc/loadavg)"
    if awk "BEGIN { exit !($fc < $floor_cpu) }"; then floor_cpu=$fc; fi
    if awk "BEGIN { exit !($ec < $export_cpu) }"; then export_cpu=$ec; fi
    if awk "BEGIN { exit !($f < $best_floor) }"; then best_floor=$f; floor_rss=$fr; fi
    if awk "BEGIN { exit !($e < $best_export) }"; then best_export=$e; export_rss=$er; fi
done
read -r DOSSIERS ROWS JOINROWS SUPPRESSED < <(python3 -c "
import json; r = json.load(open('$DIR/report.json'))
print(r['read'], r['rows'], r['joins'][0]['rows'], r['suppressed_cells'])")
awk -v b="$BYTES" -v d="$DOSSIERS" -v rows="$ROWS" -v j="$JOINROWS" -v s="$SUPPRESSED" \
    -v f="$best_floor" -v e="$best_export" -v fr="$floor_rss" -v er="$export_rss" \
    -v fc="$floor_cpu" -v ec="$export_cpu" 'BEGIN {
    printf "XML: %.0f MB, %d dossiers; join %d rows; %d rows written, %d cells suppressed\n", b / 1e6, d, j, rows, s;
    printf "floor (quick-xml, nothing else): %.2f s, %.0f MB/s, peak RSS %.1f MB\n", f, b / 1e6 / f, fr / 1024;
    printf "export: %.2f s, %.0f MB/s, %.0f dossiers/s, peak RSS %.1f MB\n", e, b / 1e6 / e, d / e, er / 1024;
    printf "speed export/floor: %.2f (wall), CPU user+sys: floor %.2f s, export %.2f s\n", f / e, fc, ec }'
