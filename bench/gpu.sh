#!/bin/bash
# Every benchmark at full size in one go, for an accelerator machine:
#   bash bench/gpu.sh [OUT_DIR]        (default bench_results/; PYTHON overrides .venv/bin/python)
# Each benchmark's output is shown and kept in OUT_DIR/<name>.txt. The train step (padded
# and packed sentences back to back), the two text encoders (bi-GRU at batch 128, BERT
# MiniLM-sized at 32 pairs: padded, length-grouped, packed) and the evaluation run at
# align.py sizes (batch 128, 340 x 3,000) in float32 and bfloat16; their "of matmul"
# columns compare with a plain matmul of the same dtype measured in the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-bench_results}
mkdir -p "$OUT"

run() {
  local name=$1; shift
  echo "== $name: $*"
  "$PY" -m "bench.${name%%.*}" "$@" 2>&1 | tee "$OUT/$name.txt"
}

for dtype in float32 bfloat16; do
  run "train_step.$dtype" --config=configs/align.py --batch_size=128 --steps=10 \
      --config.model.dtype=$dtype
  run "text_encoders.$dtype" --config=configs/align.py --steps=10 --config.model.dtype=$dtype
  run "eval_scoring.$dtype" --config=configs/align.py --config.model.dtype=$dtype
done
run scoring_kernels
run scaling --config=configs/align.py --memory_table  # fake CPU devices: runs anywhere
run backbone
echo "All benchmark outputs are in $OUT/."
