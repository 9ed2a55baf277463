#!/usr/bin/env bash
# The main job end to end on the embedded sample corpus:
# build the dataset → train → evaluate the best checkpoint on test → write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workdir="${1:-workdirs/sample}"
.venv/bin/python run.py --config=configs/sample.py --workdir="$workdir"
.venv/bin/python -m artpedia_jax.eval --workdir="$workdir" --step=best --split=test
echo "Report: $workdir/eval/"
