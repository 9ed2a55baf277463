"""What a build read, recorded in the dataset's metadata, so that a stale dataset is caught.

A build records its config, its builder options and, for the configs read from a manual
folder, that folder's path and a fingerprint of its contents: the SHA-256 of
`artpedia.json`, and for `images/` and `regions/` the number of files and a SHA-256 of
their names, sizes and modification times (no image is read). Before reusing a built
dataset, the builder compares this record with what the user asks for now; any
difference is named, and the user either rebuilds (`--overwrite`) or changes the request.
"""

import hashlib
import pathlib
from typing import Any

METADATA_KEY = 'build_inputs'
_FOLDERS = ('images', 'regions')
_JSON_NAME = 'artpedia.json'


def record(config: str, options: dict[str, Any], manual_dir: str | None) -> dict[str, Any]:
  """The inputs of a build of `config` with `options` from `manual_dir` (None: no folder)."""
  inputs: dict[str, Any] = {'config': config, 'options': dict(options)}
  if manual_dir is not None:
    folder = pathlib.Path(manual_dir)
    inputs['manual_dir'] = str(folder.resolve())
    inputs[_JSON_NAME] = _file_digest(folder / _JSON_NAME)
    for name in _FOLDERS:
      if (folder / name).is_dir():
        inputs[name] = _listing_digest(folder / name)
  return inputs


def differences(built: dict[str, Any] | None, asked: dict[str, Any]) -> list[str]:
  """How `asked` differs from the record of the dataset on disk, one phrase each.

  The manual folder is compared only when `asked` names one: a user who trains on a
  dataset built earlier need not point at its sources again.
  """
  if not built:
    return []  # built before inputs were recorded: nothing to compare with
  found = []
  built_options, asked_options = built.get('options', {}), asked['options']
  for option in sorted(set(built_options) | set(asked_options)):
    if built_options.get(option) != asked_options.get(option):
      found.append(f'{option} was {built_options.get(option)!r}, now '
                   f'{asked_options.get(option)!r}')
  if 'manual_dir' not in asked:
    return found
  if built.get('manual_dir') != asked['manual_dir']:
    return found + [f'manual_dir was {built.get("manual_dir")}, now {asked["manual_dir"]}']
  if built.get(_JSON_NAME) != asked.get(_JSON_NAME):
    found.append(f'{_JSON_NAME} changed since the build')
  for name in _FOLDERS:
    if built.get(name) != asked.get(name):
      found.append(f'{name}/ changed since the build ({_describe(built.get(name))} then, '
                   f'{_describe(asked.get(name))} now)')
  return found


def _describe(listing: dict[str, Any] | None) -> str:
  return 'absent' if listing is None else f'{listing["files"]} files'


def _file_digest(path: pathlib.Path) -> str | None:
  if not path.is_file():
    return None
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _listing_digest(folder: pathlib.Path) -> dict[str, Any]:
  """Names, sizes and modification times of the files under `folder` (recursively)."""
  digest = hashlib.sha256()
  files = 0
  for path in sorted(p for p in folder.rglob('*') if p.is_file()):
    stat = path.stat()
    digest.update(f'{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n'
                  .encode('utf-8', 'surrogateescape'))
    files += 1
  return {'files': files, 'sha256': digest.hexdigest()}
