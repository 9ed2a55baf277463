"""Checksums of a committed checkpoint step, since Orbax keeps none.

Orbax and TensorStore notice a missing or truncated file, but a few flipped bytes inside
a compressed chunk can decode to wrong numbers (NaN, or plausible garbage) without an
error. Once a step is committed, its writer records the size and SHA-256 of every file
in it (`MANIFEST`); before a step is read, the files are checked against that record.
A step committed without a manifest (the writer stopped right after the commit) is
trusted as Orbax alone would.
"""

import hashlib
import json
import os
import pathlib

MANIFEST = 'artpedia_checksums.json'


def _digest(path: pathlib.Path) -> str:
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


def _files(step_dir: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in step_dir.rglob('*') if p.is_file() and p.name != MANIFEST)


def has_manifest(step_dir: str | os.PathLike) -> bool:
  return (pathlib.Path(step_dir) / MANIFEST).is_file()


def write_manifest(step_dir: str | os.PathLike) -> None:
  """Records every file of the committed step at `step_dir` (atomically)."""
  step_dir = pathlib.Path(step_dir)
  files = {str(p.relative_to(step_dir)): {'bytes': p.stat().st_size, 'sha256': _digest(p)}
           for p in _files(step_dir)}
  temp = step_dir / f'.{MANIFEST}.tmp'
  temp.write_text(json.dumps(files, indent=1, sort_keys=True), encoding='utf-8')
  os.replace(temp, step_dir / MANIFEST)


def problem(step_dir: str | os.PathLike) -> str | None:
  """How the step at `step_dir` differs from its manifest (None: it matches, or has none)."""
  step_dir = pathlib.Path(step_dir)
  if not has_manifest(step_dir):
    return None
  recorded = json.loads((step_dir / MANIFEST).read_text(encoding='utf-8'))
  for name, expected in sorted(recorded.items()):
    path = step_dir / name
    if not path.is_file():
      return f'{name} is missing'
    size = path.stat().st_size
    if size != expected['bytes']:
      return f'{name} has {size} bytes, {expected["bytes"]} were written'
    if _digest(path) != expected['sha256']:
      return f'{name} has changed since it was written (checksum mismatch)'
  return None
