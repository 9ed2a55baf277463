#!/usr/bin/env bash
# Installs the test extras and runs the whole test suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,tfds-cli
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
