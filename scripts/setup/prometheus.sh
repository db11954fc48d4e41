#!/usr/bin/env bash
# Installs promtool, used by tests/it/observability_config.rs (`promtool check rules`, `promtool test
# rules` on config/prometheus/) and tests/it/metrics.rs (`promtool check metrics` on a live scrape).
# Idempotent.
#
# Only the promtool binary is taken from Debian's `prometheus` package: installing the package
# itself would also install (and on some hosts start) a Prometheus server, whose default port 9090
# is the port of our own operations listener.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    apt-get download prometheus >/dev/null
fi
dpkg-deb -x prometheus_*.deb extracted
$SUDO install -m 0755 extracted/usr/bin/promtool /usr/local/bin/promtool
command -v promtool >/dev/null
promtool --version >/dev/null
