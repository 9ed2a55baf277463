"""Read precomputed region features in the formats users actually have.

* the bottom-up-attention TSV (`image_id, image_w, image_h, num_boxes, boxes, features`,
  arrays as base64 float32, one image per line, possibly split over several `*.tsv`
  files): indexed by byte offset once, then read one line per painting, so that files
  of several GB never sit in memory;
* a folder of per-image `<id>.npz` files (`features` or `x`, `boxes` or `bbox`, optional
  `image_w` / `image_h`; without them the image's own size).

Boxes come in pixels as (x0, y0, x1, y1) and leave as (y0, x0, y1, x1) in [0, 1] (the
dataset's convention). Anything that would silently corrupt training (an id that no
annotation knows, wrong shapes, NaN or inf) is a `RegionError` naming the file and id.
"""

import base64
import binascii
from collections.abc import Collection, Iterator, Set
import contextlib
import csv
import os
import pathlib
from typing import NamedTuple

import numpy as np

from tfds_artpedia import errors

FEATURE_DIM = 2048  # bottom-up attention's; the sample corpora draw features of this size
TSV_FIELDS = ('image_id', 'image_w', 'image_h', 'num_boxes', 'boxes', 'features')
# One TSV line holds 100 x 2048 float32 in base64 (~1.1 MB): above csv's 128 KB default.
_TSV_FIELD_LIMIT = 1 << 30


class RegionError(errors.UserError, ValueError):
  """Region features that do not match the annotations or are malformed."""


class Regions(NamedTuple):
  features: np.ndarray  # float32 [R, FEATURE_DIM]
  boxes: np.ndarray  # float32 [R, 4] (y0, x0, y1, x1) in [0, 1]


def normalise_boxes(pixel_boxes: np.ndarray, width: float, height: float) -> np.ndarray:
  """Pixel (x0, y0, x1, y1) → (y0, x0, y1, x1) / image size, clipped to [0, 1]."""
  x0, y0, x1, y1 = np.moveaxis(np.asarray(pixel_boxes, np.float64), -1, 0)
  boxes = np.stack([y0 / height, x0 / width, y1 / height, x1 / width], axis=-1)
  return np.clip(boxes, 0.0, 1.0).astype(np.float32)


def pixel_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
  """(y0, x0, y1, x1) in [0, 1] → pixel (x0, y0, x1, y1): the inverse of `normalise_boxes`.

  What region files hold (`.npz`, bottom-up-attention TSV), for writers of such files.
  """
  y0, x0, y1, x1 = np.moveaxis(np.asarray(boxes, np.float64), -1, 0)
  return np.stack([x0 * width, y0 * height, x1 * width, y1 * height],
                  axis=-1).astype(np.float32)


def open_regions(regions_dir: str | os.PathLike[str], known_ids: Collection[str],
                 feature_dim: int = FEATURE_DIM) -> 'TsvRegions | NpzRegions':
  """The region source in `regions_dir`: its `*.tsv` files, else its `*.npz` files."""
  regions_dir = pathlib.Path(regions_dir)
  if not regions_dir.is_dir():
    raise RegionError(f'{regions_dir}: no such folder; put the region features '
                      '(bottom-up-attention *.tsv or per-image <id>.npz) there.')
  tsv_files = sorted(regions_dir.glob('*.tsv'))
  npz_files = sorted(regions_dir.glob('*.npz'))
  if tsv_files and npz_files:
    raise RegionError(f'{regions_dir}: holds both *.tsv and *.npz region files; keep '
                      'one format so that each painting has one source.')
  if tsv_files:
    return TsvRegions(tsv_files, known_ids, feature_dim)
  if npz_files:
    return NpzRegions(npz_files, known_ids, feature_dim)
  raise RegionError(f'{regions_dir}: no *.tsv or *.npz region feature files found.')


class TsvRegions:
  """Bottom-up-attention TSV files, indexed by painting id."""

  def __init__(self, paths: list[pathlib.Path], known_ids: Collection[str],
               feature_dim: int = FEATURE_DIM):
    self._feature_dim = feature_dim
    self._offsets: dict[str, tuple[pathlib.Path, int]] = {}
    for path in paths:
      for image_id, offset in _line_offsets(path):
        self._add(image_id, path, offset, known_ids)

  @property
  def ids(self) -> Set[str]:
    return self._offsets.keys()

  def load(self, painting_id: str, image_size: tuple[int, int] | None = None) -> Regions:
    """Decodes one painting's line (the TSV carries its own image size)."""
    del image_size  # Always in the line.
    path, offset = self._offsets[painting_id]
    with open(path, 'rb') as f:
      f.seek(offset)
      line = f.readline().decode('utf-8')
    with _csv_field_limit(_TSV_FIELD_LIMIT):
      fields = next(csv.reader([line], delimiter='\t'))
    where = f'{path}: image_id {painting_id!r}'
    if len(fields) != len(TSV_FIELDS):
      raise RegionError(f'{where}: expected {len(TSV_FIELDS)} tab-separated fields '
                        f'{TSV_FIELDS}, got {len(fields)}.')
    record = dict(zip(TSV_FIELDS, fields))
    width, height, num_boxes = (_positive_int(record[k], k, where)
                                for k in ('image_w', 'image_h', 'num_boxes'))
    features = _decode_floats(record['features'], 'features', where)
    boxes = _decode_floats(record['boxes'], 'boxes', where)
    if features.size != num_boxes * self._feature_dim or boxes.size != num_boxes * 4:
      raise RegionError(
          f'{where}: num_boxes is {num_boxes} but it has {boxes.size} box values and '
          f'{features.size} feature values; expected {num_boxes} x 4 and {num_boxes} x '
          f'{self._feature_dim}.')
    return _checked(features.reshape(num_boxes, self._feature_dim),
                    boxes.reshape(num_boxes, 4), width, height, self._feature_dim, where)

  def _add(self, image_id: str, path: pathlib.Path, offset: int,
           known_ids: Collection[str]) -> None:
    if image_id not in known_ids:
      raise RegionError(f'{path}: image_id {image_id!r} is not a painting of the '
                        'annotations; remove it or use the matching artpedia.json.')
    if image_id in self._offsets:
      raise RegionError(f'{path}: image_id {image_id!r} appears twice (also in '
                        f'{self._offsets[image_id][0]}).')
    self._offsets[image_id] = (path, offset)


class NpzRegions:
  """A folder of `<id>.npz` files."""

  def __init__(self, paths: list[pathlib.Path], known_ids: Collection[str],
               feature_dim: int = FEATURE_DIM):
    self._feature_dim = feature_dim
    self._paths = {path.stem: path for path in paths}
    unknown = sorted(set(self._paths) - set(known_ids))
    if unknown:
      raise RegionError(f'{self._paths[unknown[0]]}: image_id {unknown[0]!r} is not a '
                        f'painting of the annotations ({len(unknown)} such files); '
                        'remove them or use the matching artpedia.json.')

  @property
  def ids(self) -> Set[str]:
    return self._paths.keys()

  def load(self, painting_id: str, image_size: tuple[int, int] | None = None) -> Regions:
    """Reads one painting; `image_size` (w, h) is used when the file has none."""
    path = self._paths[painting_id]
    where = f'{path}: image_id {painting_id!r}'
    try:
      with open(path, 'rb') as f, np.load(f) as npz:
        arrays = dict(npz)
    except (OSError, ValueError) as e:
      raise RegionError(f'{where}: unreadable .npz ({e}).') from e
    features = _first_of(arrays, ('features', 'x'), where)
    boxes = _first_of(arrays, ('boxes', 'bbox'), where)
    if 'image_w' in arrays and 'image_h' in arrays:
      width, height = (_positive_int(arrays[k], k, where) for k in ('image_w', 'image_h'))
    elif image_size is not None:
      width, height = image_size
    else:
      raise RegionError(f'{where}: has no image_w/image_h and the image size is unknown.')
    return _checked(features, boxes, width, height, self._feature_dim, where)


def _checked(features: np.ndarray, boxes: np.ndarray, width: int, height: int,
             feature_dim: int, where: str) -> Regions:
  """Validates shapes and values, and normalises the boxes."""
  if features.ndim != 2 or features.shape[1] != feature_dim or not features.shape[0]:
    raise RegionError(f'{where}: features have shape {features.shape}, expected '
                      f'[num_regions >= 1, {feature_dim}].')
  if boxes.shape != (features.shape[0], 4):
    raise RegionError(f'{where}: boxes have shape {boxes.shape}, expected '
                      f'[{features.shape[0]}, 4] (one pixel x0, y0, x1, y1 per region).')
  for name, array in (('features', features), ('boxes', boxes)):
    if not np.all(np.isfinite(array)):
      raise RegionError(f'{where}: {name} contain NaN or infinite values.')
  return Regions(features.astype(np.float32), normalise_boxes(boxes, width, height))


def _line_offsets(path: pathlib.Path) -> Iterator[tuple[str, int]]:
  """(image_id, byte offset) of every data line; a header line is skipped."""
  with open(path, 'rb') as f:
    offset = 0
    for line in f:
      image_id = line.split(b'\t', 1)[0].decode('utf-8').strip()
      if image_id and image_id != TSV_FIELDS[0]:
        yield image_id, offset
      offset += len(line)


def _decode_floats(text: str, field: str, where: str) -> np.ndarray:
  try:
    return np.frombuffer(base64.b64decode(text, validate=True), dtype=np.float32)
  except (binascii.Error, ValueError) as e:
    raise RegionError(f'{where}: field {field!r} is not base64 float32 ({e}).') from e


def _positive_int(value: object, field: str, where: str) -> int:
  try:
    number = int(np.asarray(value).item())  # a TSV string or a 0-d npz array
  except (TypeError, ValueError) as e:
    raise RegionError(f'{where}: {field} {value!r:.40} is not an integer.') from e
  if number < 1:
    raise RegionError(f'{where}: {field} must be at least 1, got {number}.')
  return number


def _first_of(arrays: dict[str, np.ndarray], keys: tuple[str, ...],
              where: str) -> np.ndarray:
  for key in keys:
    if key in arrays:
      return arrays[key]
  raise RegionError(f'{where}: none of the keys {keys} (has {sorted(arrays)}).')


@contextlib.contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
  previous = csv.field_size_limit(limit)
  try:
    yield
  finally:
    csv.field_size_limit(previous)
