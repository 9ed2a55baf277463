"""Parse and validate `artpedia.json` into `Painting`s.

Artpedia's labels are noisy (fragments, stray whitespace, empty strings), and the file is
edited by hand by some users. Noise in sentences is tolerated (whitespace normalised, empty
sentences dropped and counted); anything that would make the dataset silently wrong
(malformed JSON, missing or mistyped fields, unknown splits, duplicate ids) is an
`AnnotationError` that names the painting, so the user can fix that entry.
"""

import collections
from collections.abc import Iterable, Mapping
import dataclasses
import json
import os
from typing import Any

from tfds_artpedia import errors

# Artpedia's split names → TFDS split names.
SPLITS = {'train': 'train', 'val': 'validation', 'test': 'test'}
REQUIRED_FIELDS = ('title', 'img_url', 'year', 'visual_sentences',
                   'contextual_sentences', 'split')
UNKNOWN_YEAR = -1
_INT32_MAX = 2**31 - 1


class AnnotationError(errors.UserError, ValueError):
  """`artpedia.json` is malformed or one of its entries is invalid."""


@dataclasses.dataclass(frozen=True)
class Painting:
  """One validated painting: sentences normalised, visual ones first."""
  id: str
  title: str
  year: int  # UNKNOWN_YEAR when the annotation has null
  split: str  # a TFDS split name: 'train' | 'validation' | 'test'
  img_url: str
  sentences: tuple[str, ...]
  is_visual: tuple[bool, ...]


@dataclasses.dataclass(frozen=True)
class Annotations:
  """The validated paintings, in file order, and how many empty sentences were dropped."""
  paintings: list[Painting]
  num_empty_sentences_dropped: int


class _PairsDict(dict):
  """A JSON object that remembers its duplicate keys (plain `json` keeps the last one)."""

  def __init__(self, pairs: list[tuple[str, Any]]):
    super().__init__(pairs)
    counts = collections.Counter(key for key, _ in pairs)
    self.duplicates = sorted(key for key, n in counts.items() if n > 1)


def normalise_whitespace(text: str) -> str:
  """Collapses runs of (Unicode) whitespace to one space; other characters are kept."""
  return ' '.join(text.split())


def load(path: str | os.PathLike[str]) -> Annotations:
  """Reads and validates an `artpedia.json` file."""
  return from_entries(read_json(path).items(), source=os.fspath(path))


def read_json(path: str | os.PathLike[str]) -> Mapping[str, Any]:
  """The top-level object of an `artpedia.json`: UTF-8, well-formed, ids unique.

  The entries are not validated (the downloader needs only their `img_url`).
  """
  source = os.fspath(path)
  with open(path, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    raise AnnotationError(
        f'{source}: not UTF-8 text (byte {data[e.start:e.start + 1]!r} at offset '
        f'{e.start}); save the file as UTF-8, or download it again.') from e
  return _json_object(text, source)


def parse(text: str, source: str = 'artpedia.json') -> Annotations:
  """Validates the JSON text of an `artpedia.json` (`source` names it in errors)."""
  return from_entries(_json_object(text, source).items(), source=source)


def _json_object(text: str, source: str) -> Mapping[str, Any]:
  try:
    root = json.loads(text, object_pairs_hook=_PairsDict)
  except json.JSONDecodeError as e:
    raise AnnotationError(
        f'{source}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}. '
        'Fix the file (or download it again).') from e
  if not isinstance(root, dict):
    raise AnnotationError(
        f'{source}: expected a JSON object keyed by painting id, got '
        f'{type(root).__name__}.')
  if root.duplicates:
    raise AnnotationError(
        f'{source}: duplicate painting ids {root.duplicates}: each id may appear once.')
  return root


def from_entries(entries: Iterable[tuple[str, Mapping[str, Any]]],
                 source: str = 'artpedia.json') -> Annotations:
  """Validates (painting id, entry) pairs shaped like the values of `artpedia.json`.

  Also used for the in-process sample corpus, so that every config shares one
  normalisation.
  """
  paintings, dropped, seen = [], 0, set()
  for painting_id, entry in entries:
    if painting_id in seen:
      raise AnnotationError(f'{source}: duplicate painting id {painting_id!r}.')
    seen.add(painting_id)
    painting, num_dropped = _painting(painting_id, entry, source)
    paintings.append(painting)
    dropped += num_dropped
  return Annotations(paintings, dropped)


def _painting(painting_id: str, entry: Any, source: str) -> tuple[Painting, int]:
  where = f'{source}: painting {painting_id!r}'
  if not painting_id or '/' in painting_id or '\\' in painting_id:
    raise AnnotationError(f'{where}: an id must be non-empty and without path '
                          'separators (it names the image file).')
  if not isinstance(entry, Mapping):
    raise AnnotationError(f'{where}: expected an object, got {type(entry).__name__}.')
  if getattr(entry, 'duplicates', None):
    raise AnnotationError(f'{where}: duplicate fields {entry.duplicates}.')
  missing = [f for f in REQUIRED_FIELDS if f not in entry]
  if missing:
    raise AnnotationError(f'{where}: missing fields {missing} (required: '
                          f'{list(REQUIRED_FIELDS)}).')
  visual, dropped_visual = _sentences(entry['visual_sentences'], 'visual_sentences',
                                      where)
  contextual, dropped_contextual = _sentences(entry['contextual_sentences'],
                                              'contextual_sentences', where)
  painting = Painting(
      id=painting_id,
      title=normalise_whitespace(_string(entry['title'], 'title', where)),
      year=_year(entry['year'], where),
      split=_split(entry['split'], where),
      img_url=_string(entry['img_url'], 'img_url', where).strip(),
      sentences=tuple(visual + contextual),
      is_visual=(True,) * len(visual) + (False,) * len(contextual),
  )
  return painting, dropped_visual + dropped_contextual


def _string(value: Any, field: str, where: str) -> str:
  if not isinstance(value, str):
    raise AnnotationError(f'{where}: field {field!r} must be a string, got '
                          f'{type(value).__name__} {value!r:.60}.')
  return value


def _year(value: Any, where: str) -> int:
  if value is None:
    return UNKNOWN_YEAR
  if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _INT32_MAX:
    raise AnnotationError(f'{where}: field \'year\' must be an integer or null, got '
                          f'{value!r:.60}.')
  return value


def _split(value: Any, where: str) -> str:
  if value not in SPLITS:
    raise AnnotationError(f'{where}: unknown split {value!r}; expected one of '
                          f'{sorted(SPLITS)}.')
  return SPLITS[value]


def _sentences(value: Any, field: str, where: str) -> tuple[list[str], int]:
  """Returns the non-empty normalised sentences and how many empty ones were dropped."""
  if not isinstance(value, list):
    raise AnnotationError(f'{where}: field {field!r} must be a list of strings, got '
                          f'{type(value).__name__}.')
  kept = []
  for i, sentence in enumerate(value):
    text = normalise_whitespace(_string(sentence, f'{field}[{i}]', where))
    if text:
      kept.append(text)
  return kept, len(value) - len(kept)
