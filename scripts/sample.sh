#!/usr/bin/env bash
# The main job end to end on the embedded sample corpus:
# build the dataset → train → evaluate the best checkpoint on test → write the report →
# annotate one test painting's sentences with the trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workdir="${1:-workdirs/sample}"
.venv/bin/python run.py --config=configs/sample.py --workdir="$workdir"
.venv/bin/python -m artpedia_jax.eval --workdir="$workdir" --step=best --split=test
echo "Report: $workdir/eval/"
painting=$(.venv/bin/python -c 'from artpedia_jax.data import input_spec, pipeline
from configs import sample
spec = input_spec.InputSpec.from_config(sample.get_config())
print(pipeline.open_source(spec, "test")[0]["id"].decode())')
.venv/bin/python -m artpedia_jax.annotate --workdir="$workdir" --split=test --id="$painting" \
  --out="$workdir/annotations/test_$painting"
