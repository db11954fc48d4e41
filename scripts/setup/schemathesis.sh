#!/usr/bin/env bash
# Installs schemathesis into its own virtualenv target/schemathesis-venv (its dependencies are
# many and should not disturb the zeep venv), used by tests/it/openapi_schemathesis.rs. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=target/schemathesis-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ -x "$VENV/bin/schemathesis" ]; then
    exit 0
fi
"$VENV/bin/pip" install -q 'schemathesis>=4,<5'
"$VENV/bin/schemathesis" --version
