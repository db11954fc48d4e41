#!/usr/bin/env bash
# Installs the Node.js SOAP client node-soap (npm package `soap` 1.x) into target/node-soap, used
# by tests/it/soap_node.rs to prove the served WSDL works unchanged in a second SOAP stack. Needs
# node and npm (on the machine; Debian packages nodejs and npm otherwise). Idempotent.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIR=target/node-soap
if [ -f "$DIR/node_modules/soap/package.json" ]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$DIR"
cp tests/node_soap/package.json "$DIR/"
(cd "$DIR" && npm install --silent --no-audit --no-fund)
node -e "require('./$DIR/node_modules/soap')"
