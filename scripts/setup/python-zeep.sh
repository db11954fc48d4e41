#!/usr/bin/env bash
# Installs the Python SOAP client zeep into the shared test virtualenv target/test-venv, used by
# tests/it/soap_zeep.rs to prove the served WSDL works unchanged in a standard client. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=target/test-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if "$VENV/bin/python" -c 'import zeep' >/dev/null 2>&1; then
    exit 0
fi
"$VENV/bin/pip" install -q 'zeep>=4.2,<5'
"$VENV/bin/python" -c 'import zeep'
