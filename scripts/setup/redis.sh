#!/usr/bin/env bash
# Installs redis-server and redis-cli (Debian redis-server, redis-tools), used by
# tests/it/redis_distribution.rs: every test starts its own throw-away redis-server on a free
# loopback port (tests/it/support/redis.rs). Idempotent.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
# The package starts a system-wide instance on 6379; the tests never use it.
command -v redis-server >/dev/null
command -v redis-cli >/dev/null
