#!/usr/bin/env bash
# Install what repzone needs on a Debian 12 machine (run as root): the Debian packages
# the tests and the demo use, and a virtual environment in .venv with repzone in it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v dig >/dev/null 2>&1 || packages+=(bind9-dnsutils)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v named-checkzone >/dev/null 2>&1 || packages+=(bind9-utils)
command -v knotd >/dev/null 2>&1 || packages+=(knot)
command -v kzonecheck >/dev/null 2>&1 || packages+=(knot-dnssecutils)
command -v rbldnsd >/dev/null 2>&1 || packages+=(rbldnsd)
command -v nsd >/dev/null 2>&1 || packages+=(nsd)
command -v unbound >/dev/null 2>&1 || packages+=(unbound)
command -v rspamd >/dev/null 2>&1 || packages+=(rspamd)
command -v spamassassin >/dev/null 2>&1 || packages+=(spamassassin)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
command -v unshare >/dev/null 2>&1 || packages+=(util-linux)
if ! command -v postfix >/dev/null 2>&1; then
    # postscreen for the interop test; "No configuration": the package starts nothing.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    packages+=(postfix)
fi
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
