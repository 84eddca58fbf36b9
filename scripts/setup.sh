#!/usr/bin/env bash
# Install what repzone needs on a Debian 12 machine (run as root): the Debian packages
# the tests and the demo use, and a virtual environment in .venv with repzone in it.
# CI fails on any skipped test (.ci/run), so every program a test looks for is here.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()

# need PROGRAM PACKAGE: install PACKAGE unless PROGRAM is on PATH or in /usr/sbin
# (where the servers live; a non-root PATH often lacks it, and the tests look there too).
need() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || packages+=("$2")
}

need dig bind9-dnsutils                 # tests/test_e2e.py
need kdig knot-dnsutils                 # the docs' kdig checks, tests/test_secondaries.py
need redis-server redis-server          # every sync test
need redis-cli redis-tools              # tests/support/redis_cluster.py
need named-checkzone bind9-utils        # tests/test_export.py
need knotd knot                         # secondaries, export checks
need knotc knot
need kzonecheck knot-dnssecutils
need rbldnsd rbldnsd
need nsd nsd
need nsd-control nsd
need unbound unbound                    # tests/test_peer_unbound.py
need unbound-checkconf unbound
need rspamd rspamd                      # tests/test_peer_rspamd.py
need rspamc rspamd
need spamassassin spamassassin          # tests/test_peer_spamassassin.py
need ip iproute2                        # tests/test_peer_postfix.py: a network namespace
need unshare util-linux
need openssl openssl                    # tests/test_verify.py
need python3 python3
if [ ! -x /usr/lib/postfix/sbin/postscreen ]; then
    # postscreen for the interop test; "No configuration": the package starts nothing.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    packages+=(postfix)
fi
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # One package can provide several programs: list each once.
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
    apt-get install -y --no-install-recommends "${packages[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# compat: the checkout itself goes on sys.path (a .pth file), so Twisted's plugin scan finds
# twisted/plugins/zoned_plugin.py and `.venv/bin/twistd -n zoned` works from any directory;
# setuptools' default editable finder hides that directory from the scan.
.venv/bin/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
