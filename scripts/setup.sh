#!/usr/bin/env bash
# Creates .venv (if missing) and installs the project with the extras given as arguments.
#   bash scripts/setup.sh                 # core only (CPU)
#   bash scripts/setup.sh test,tfds-cli   # extras, comma-separated
#   bash scripts/setup.sh cuda12          # NVIDIA GPU (CUDA 12 wheels); `tpu` for Cloud TPU
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
# Unknown extras are refused before anything is installed (pip would only warn).
python3 - "$extras" <<'PY'
import sys, tomllib
known = list(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies'])
for extra in filter(None, sys.argv[1].split(',')):
  if extra not in known:
    print(f"error: unknown extra {extra!r}; the extras are: {', '.join(known)}",
          file=sys.stderr)
    sys.exit(2)
PY
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -e ".[$extras]"
else
  .venv/bin/python -m pip install -q -e .
fi
