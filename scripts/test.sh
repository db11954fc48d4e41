#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the test tools, then format, lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

for setup in scripts/setup/*.sh; do
    [ -e "$setup" ] || continue
    echo "== setup: $setup"
    bash "$setup"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (every workspace member)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (every workspace member)"
cargo test --workspace --no-fail-fast
echo "== load-tests/run --smoke (a few seconds per step: the load test must not rot)"
bash load-tests/run --smoke
echo "== Debian package: cargo deb, lintian, systemd-analyze, install/upgrade/remove/purge (root only)"
KBI_DEB_PROFILE="${KBI_DEB_PROFILE:-dev}" bash scripts/test-debian-package.sh
echo "== scripts/fuzz.sh 20 (fuzz smoke: 20 s per target, fails on any crash, leak, timeout or OOM)"
bash scripts/fuzz.sh 20
