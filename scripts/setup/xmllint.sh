#!/usr/bin/env bash
# Installs xmllint (Debian libxml2-utils), used by tests/it/soap_codec.rs to validate rendered SOAP
# requests and replies against wsdl/GeefAdviesInburgeringsplicht-01.00.xsd. Idempotent.
set -euo pipefail

if command -v xmllint >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libxml2-utils >/dev/null
command -v xmllint >/dev/null
