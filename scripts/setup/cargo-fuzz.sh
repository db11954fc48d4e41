#!/usr/bin/env bash
# Installs what scripts/fuzz.sh needs: a nightly toolchain (libFuzzer's coverage instrumentation
# and AddressSanitizer are nightly-only flags) and cargo-fuzz. Used by scripts/test.sh (the fuzz
# smoke: 20 s per target). Idempotent.
set -euo pipefail

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version >/dev/null
