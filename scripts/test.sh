#!/usr/bin/env bash
# Run the whole test suite (installs what is missing first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One pytest worker per CPU (pytest-xdist): most tests wait on real servers, and the suite
# must stay well under CI's 10 minutes.  REPZONE_TEST_JOBS=0 runs in one process.
exec .venv/bin/python -m pytest -n "${REPZONE_TEST_JOBS:-auto}" "$@"
