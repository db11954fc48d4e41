#!/usr/bin/env bash
# Installs the load-test tools: wrk (Debian), redis-server and redis-benchmark (Debian), and, unless
# --no-oha, oha (crates.io, built once into target/load-tools) for constant-rate runs with
# coordinated-omission correction and for client-certificate (mTLS) runs. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" != "--no-oha" ] && [ ! -x target/load-tools/bin/oha ]; then
    echo "building oha into target/load-tools (once; a few minutes)"
    cargo install --quiet --locked oha --version 1.16.0 --root target/load-tools
fi
