#!/usr/bin/env bash
# Installs what scripts/test-debian-package.sh needs to build, check and install the Debian
# package: cargo-deb (cargo install --locked), lintian, man-db (man -l), bash-completion,
# systemd-analyze (Debian package systemd; installing it on a host without systemd as PID 1 does
# not start it), adduser and zstd (the test compresses the demo snapshot). Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
missing=()
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v man >/dev/null 2>&1 || missing+=(man-db)
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked --quiet
fi
lintian --version >/dev/null
systemd-analyze --version >/dev/null
cargo deb --version >/dev/null
