"""A collection of paintings to search: a built dataset split, or a folder of files.

A collection gives the model inputs of its paintings in row order, their Artpedia ids
(the one name of a painting everywhere: page URLs, command line, API, JSON), titles and
years, their images for thumbnails and pages, and a `key` naming its content, so a cache
of encoded paintings keyed by it is never stale. A split also carries its sentences
(texts, painting of each, visual label), the candidates that `Predictor.describe` ranks
for a painting.

A split's key comes from the dataset build's own files (names, sizes, modification
times: a rebuild changes them) and the split's name, so it is known without reading the
split; with the cache's catalogue (`SplitCollection.catalogue`) a cached split opens
without reading the dataset at all, and its records are read only for a painting's
image or inputs. A folder's key hashes its files' bytes.
"""

import hashlib
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.inference import painting_files
from tfds_artpedia import errors
from tfds_artpedia import tfds_artpedia_dataset_builder  # pylint: disable=unused-import
# Registers the 'artpedia' builder with TFDS.

UNKNOWN_YEAR = -1


class CollectionError(errors.UserError, ValueError):
  """A collection that cannot be opened; the message says what to do."""


def _fingerprint(parts) -> str:
  digest = hashlib.sha256()
  for part in parts:
    digest.update(part if isinstance(part, bytes) else str(part).encode('utf-8'))
    digest.update(b'\0')
  return digest.hexdigest()[:20]


class _Catalogue:
  """Ids, titles and years, with a lookup from id to row."""

  ids: list[str]
  titles: list[str]
  years: list[int]

  def _index_ids(self) -> None:
    self._rows = {painting_id: row for row, painting_id in enumerate(self.ids)}

  def __len__(self) -> int:
    return len(self.ids)

  def index_of(self, painting_id: str) -> int | None:
    """The row of the painting with this Artpedia id (None: not in the collection)."""
    return self._rows.get(painting_id)

  def year(self, index: int) -> int | None:
    year = self.years[index]
    return None if year == UNKNOWN_YEAR else year


class SplitCollection(_Catalogue):
  """Every painting of a built split, with its sentences."""

  def __init__(self, name: str, key: str, catalogue: dict[str, np.ndarray],
               open_source: Callable[[], Sequence[dict]],
               reader: painting_files.PaintingReader,
               inputs: dict[str, np.ndarray] | None = None):
    self.name = name
    self.key = key
    self.ids = [str(i) for i in catalogue['ids']]
    self.titles = [str(t) for t in catalogue['titles']]
    self.years = [int(y) for y in catalogue['years']]
    self.sentence_texts = [str(t) for t in catalogue['sentence_texts']]
    self.sentence_painting = np.asarray(catalogue['sentence_painting'], np.int32)
    self.is_visual = np.asarray(catalogue['is_visual'], bool)
    self._open_source = open_source
    self._source = None
    self._reader = reader
    self._inputs = inputs
    self._index_ids()

  def catalogue(self) -> dict[str, np.ndarray]:
    """What `__init__` needs besides the dataset: kept in the encodings' cache."""
    return {'ids': np.asarray(self.ids, str), 'titles': np.asarray(self.titles, str),
            'years': np.asarray(self.years, np.int32),
            'sentence_texts': np.asarray(self.sentence_texts, str),
            'sentence_painting': self.sentence_painting, 'is_visual': self.is_visual}

  def _record(self, index: int) -> dict:
    if self._source is None:
      self._source = self._open_source()
    return self._source[index]

  def inputs(self, start: int, stop: int) -> dict[str, np.ndarray]:
    if self._inputs is not None:
      return {key: x[start:stop] for key, x in self._inputs.items()}
    rows = [self._reader.from_record(self._record(i), self.ids[i]).inputs
            for i in range(start, stop)]
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}

  def image_bytes(self, index: int) -> bytes | None:
    image = self._record(index).get('image')
    return image if isinstance(image, bytes) and image else None

  def painting(self, index: int) -> painting_files.Painting:
    """Painting `index` with its model inputs (its image is served by URL, not kept)."""
    return painting_files.Painting(
        self.ids[index], {k: x[0] for k, x in self.inputs(index, index + 1).items()}, None)

  def sentence_rows(self, index: int) -> np.ndarray:
    """Indices of painting `index`'s own sentences among the split's sentences."""
    return np.flatnonzero(self.sentence_painting == index)

  def own_sentences(self, index: int) -> list[str]:
    return [self.sentence_texts[j] for j in self.sentence_rows(index)]


def split_key(spec: input_spec.InputSpec, split_name: str) -> str:
  """The key of a built split: its name and the dataset build's files (sizes and
  modification times), read without opening the split."""
  try:
    folder = pathlib.Path(tfds.builder(spec.dataset_name, data_dir=spec.data_dir).data_dir)
  except Exception as error:  # tfds raises several types for an unknown dataset
    raise _unopenable(spec, split_name, error) from error
  files = sorted(p for p in folder.glob('*') if p.is_file()) if folder.is_dir() else []
  if not files:
    raise _unopenable(spec, split_name, f'nothing built in {folder}')
  return _fingerprint([spec.dataset_name, split_name] + [
      f'{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}' for p in files])


def _unopenable(spec: input_spec.InputSpec, split_name: str, why) -> CollectionError:
  why = str(why).strip().splitlines()[0]  # TFDS appends the list of all its datasets
  return CollectionError(
      f'cannot open split {split_name!r} of {spec.dataset_name} in '
      f'{spec.data_dir or "the default TFDS data_dir"} ({why}); splits are '
      'train, validation and test, or pass --folder with images/.npz files.')


def _source_opener(spec: input_spec.InputSpec, split_name: str) -> Callable[[], Sequence[dict]]:
  def open_source():
    try:
      return pipeline.open_source(spec, split_name)
    except Exception as error:  # tfds raises several types for a missing split
      raise _unopenable(spec, split_name, error) from error
  return open_source


def _years(records) -> np.ndarray:
  return np.asarray([int(np.asarray(r.get('year', UNKNOWN_YEAR)).reshape(-1)[0])
                     for r in records], np.int32)


def open_split(spec: input_spec.InputSpec, split_name: str,
               tokenizer: tokenizer_lib.Tokenizer, reader: painting_files.PaintingReader,
               key: str, catalogue: dict[str, np.ndarray] | None = None
               ) -> SplitCollection:
  """The split `split_name` of the dataset the model was trained on: from `catalogue`
  (a cache's) when given, otherwise read from the dataset."""
  name = f'{spec.dataset_name}:{split_name}'
  opener = _source_opener(spec, split_name)
  if catalogue is not None:
    return SplitCollection(name, key, catalogue, opener, reader)
  source = opener()
  split = eval_split.load_eval_split(spec, source, tokenizer)
  catalogue = {'ids': split.painting_ids, 'titles': split.titles,
               'years': _years([source[i] for i in range(len(source))]),
               'sentence_texts': split.sentence_texts,
               'sentence_painting': split.sentence_painting, 'is_visual': split.is_visual}
  return SplitCollection(name, key, catalogue, lambda: source, reader, split.paintings)


class FolderCollection(_Catalogue):
  """The images (pixel models) or `<id>.npz` region files (region models) of a folder;
  a region file's same-named image, when present, is its thumbnail and gives its size."""

  def __init__(self, folder: str | pathlib.Path,
               reader: painting_files.PaintingReader):
    folder = pathlib.Path(folder)
    if not folder.is_dir():
      raise CollectionError(f'{folder}: no such folder.')
    self.name = str(folder)
    self._reader = reader
    files = sorted(p for p in folder.iterdir() if p.is_file())
    images = {p.stem: p for p in files if p.suffix.lower() in painting_files.IMAGE_SUFFIXES}
    if reader.uses_pixels:
      self._model_files = images
    else:
      self._model_files = {p.stem: p for p in files if p.suffix == '.npz'}
    if not self._model_files:
      wanted = 'image files' if reader.uses_pixels else '<id>.npz region files'
      raise CollectionError(f'{folder}: holds no {wanted}; {reader.kind_hint()}.')
    self._images = images
    self.ids = sorted(self._model_files)
    self.titles = list(self.ids)
    self.years = [UNKNOWN_YEAR] * len(self.ids)
    self.sentence_texts = []
    self.key = _fingerprint(
        [self.name] + [part for i in self.ids
                       for part in (i, self._model_files[i].read_bytes())])
    self._index_ids()

  def catalogue(self) -> dict[str, np.ndarray]:
    return {'ids': np.asarray(self.ids, str)}

  def image_bytes(self, index: int) -> bytes | None:
    path = self._images.get(self.ids[index])
    return path.read_bytes() if path is not None else None

  def painting(self, index: int) -> painting_files.Painting:
    painting_id = self.ids[index]
    model_file = self._model_files[painting_id]
    if self._reader.uses_pixels:
      return self._reader.read(image=self.image_bytes(index), name=str(model_file))
    return self._reader.read(image=self.image_bytes(index), regions=model_file,
                             name=str(model_file))

  def inputs(self, start: int, stop: int) -> dict[str, np.ndarray]:
    paintings = [self.painting(i).inputs for i in range(start, stop)]
    return {key: np.stack([p[key] for p in paintings]) for key in paintings[0]}

  def sentence_rows(self, index: int) -> np.ndarray:
    del index
    return np.zeros(0, np.int64)

  def own_sentences(self, index: int) -> list[str]:
    del index
    return []
