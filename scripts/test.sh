#!/usr/bin/env bash
# Install tain with its test tools into .venv and run the whole test suite, spread over
# the machine's cores (pytest-xdist; TAIN_TEST_WORKERS overrides, 0 runs in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
exec .venv/bin/python -m pytest -n "${TAIN_TEST_WORKERS:-auto}" "$@"
