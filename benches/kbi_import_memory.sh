#!/usr/bin/env bash
# Peak memory of `snapshot import` with 4 workers (issue 24, item 5; not a test): the red team's
# input, four files of one reply each keeping 80,000 values of 1 KiB (84 MB per file), and, for
# comparison, generated dossiers in four files. Before the per-reply bound the first peaked at
# 321 MB with --workers 4 (95 MB with one); now a reply keeping more than 10,000 values or 1 MiB
# of them is refused, so the peak is bounded per worker whatever the input.
#
#   bash benches/kbi_import_memory.sh [PERSONS]     (default 200000 generated persons)
#
# Needs /usr/bin/time (GNU time). Data in ${KBI_BENCH_DIR:-/tmp/kbi-import-bench}/memory.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSONS=${1:-200000}
DIR=${KBI_BENCH_DIR:-/tmp/kbi-import-bench}/memory
# KBI_BIN: a binary built elsewhere; else built here.
if [ -z "${KBI_BIN:-}" ]; then
    cargo build --release --quiet --bin kbi-advice
fi
BIN=${KBI_BIN:-target/release/kbi-advice}
mkdir -p "$DIR"
if [ ! -f "$DIR/attack/4.xml" ]; then
    mkdir -p "$DIR/attack"
    python3 - "$DIR/attack" <<'PY'
import sys
ns = "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be"
value = "7" * 1024
inbreuk = "<Inbreuk><Type>" + value + "</Type></Inbreuk>"
for f in range(1, 5):
    with open(f"{sys.argv[1]}/{f}.xml", "w") as out:
        out.write(f'<web:GeefDossierKBIResponse xmlns:web="{ns}"><Repliek><Context><Naam>GeefDossierKBI</Naam>'
                  '<Versie>01.00.0000</Versie></Context><Antwoorden><Antwoord><Inhoud><KBIDossier>'
                  '<Personalia><INSZ>88021412358</INSZ></Personalia><Inbreuken>')
        for _ in range(80_000):
            out.write(inbreuk)
        out.write('</Inbreuken></KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>')
PY
fi
if [ ! -f "$DIR/generated/expected.jsonl" ]; then
    rm -rf "$DIR/generated"
    "$BIN" snapshot generate --format kbi-dossier-01.00 --persons "$PERSONS" --seed 1 \
        --per-file $((PERSONS / 4)) --out "$DIR/generated" > /dev/null
fi
rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
secs() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"; }
for input in attack generated; do
    for workers in 1 4; do
        rm -f "$DIR/out.jsonl.zst"
        /usr/bin/time -v "$BIN" snapshot import --from kbi-dossier-01.00 "$DIR/$input" \
            --out "$DIR/out.jsonl.zst" --snapshot-id mem --extracted-at 2026-11-01T02:00:00Z \
            --workers "$workers" > /dev/null 2> "$DIR/time.txt" || true
        verdict=$(grep -E '^(imported|REFUSED)' "$DIR/time.txt" | cut -c1-40)
        echo "$input, --workers $workers: peak RSS $(( $(rss "$DIR/time.txt") / 1024 )) MB, $(secs "$DIR/time.txt") s wall ($verdict)"
    done
done
