#!/usr/bin/env bash
# Installs the age command-line tool (Debian package `age`: age, age-keygen), used by
# tests/it/premium_list.rs to prove that the yearly reduced-premium list decrypts with the standard
# tool the recipient uses (`age -d -i key.txt`). Idempotent.
set -euo pipefail

if command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq age >/dev/null
command -v age >/dev/null
command -v age-keygen >/dev/null
