"""A collection of paintings to search: a built dataset split, or a folder of files.

A collection gives the model inputs of its paintings in row order, their ids and titles,
their images for thumbnails and pictures, and a fingerprint of its content: the hash of
what the model reads, so a cache of encoded paintings keyed by it is never stale. A split
also carries its sentences (texts, painting of each, visual label), the candidates that
`Predictor.describe` ranks for a painting.
"""

import hashlib
import pathlib

import numpy as np

from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.inference import painting_files
from tfds_artpedia import errors


class CollectionError(errors.UserError, ValueError):
  """A collection that cannot be opened; the message says what to do."""


def _fingerprint(parts) -> str:
  digest = hashlib.sha256()
  for part in parts:
    digest.update(part if isinstance(part, bytes) else str(part).encode('utf-8'))
    digest.update(b'\0')
  return digest.hexdigest()[:20]


class SplitCollection:
  """Every painting of a built split, with its sentences."""

  def __init__(self, name: str, source, split: eval_split.EvalSplit,
               reader: painting_files.PaintingReader):
    self.name = name
    self._source = source
    self.split = split
    self._reader = reader
    self.ids = [str(i) for i in split.painting_ids]
    self.titles = [str(t) for t in split.titles]
    self._inputs = split.paintings
    self.fingerprint = _fingerprint(
        [name, *self.ids] + [np.ascontiguousarray(x).tobytes()
                             for x in self._inputs.values()])

  def __len__(self) -> int:
    return len(self.ids)

  def inputs(self, start: int, stop: int) -> dict[str, np.ndarray]:
    return {key: x[start:stop] for key, x in self._inputs.items()}

  def image_bytes(self, index: int) -> bytes | None:
    image = self._source[index].get('image')
    return image if isinstance(image, bytes) and image else None

  def painting(self, index: int) -> painting_files.Painting:
    image = self.image_bytes(index)
    pixels = (painting_files.decode_image(image, self.ids[index])
              if image is not None else None)
    return painting_files.Painting(self.ids[index],
                                   {k: x[0] for k, x in self.inputs(index, index + 1).items()},
                                   pixels)

  def sentence_rows(self, index: int) -> np.ndarray:
    """Indices of painting `index`'s own sentences among the split's sentences."""
    return np.flatnonzero(self.split.sentence_painting == index)


def open_split(spec: input_spec.InputSpec, split_name: str, vocab: vocab_lib.Vocabulary,
               reader: painting_files.PaintingReader) -> SplitCollection:
  """The split `split_name` of the dataset the model was trained on."""
  try:
    source = pipeline.open_source(spec, split_name)
  except Exception as error:  # tfds raises several types for a missing split or dataset
    raise CollectionError(
        f'cannot open split {split_name!r} of {spec.dataset_name} in '
        f'{spec.data_dir or "the default TFDS data_dir"} ({error}); splits are '
        'train, validation and test, or pass --folder with images/.npz files.') from error
  split = eval_split.load_eval_split(spec, source, vocab)
  return SplitCollection(f'{spec.dataset_name}:{split_name}', source, split, reader)


class FolderCollection:
  """The images (pixel models) or `<id>.npz` region files (region models) of a folder;
  a region file's same-named image, when present, is its thumbnail."""

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
    self.split = None
    self.fingerprint = _fingerprint(
        [self.name] + [part for i in self.ids
                       for part in (i, self._model_files[i].read_bytes())])

  def __len__(self) -> int:
    return len(self.ids)

  def image_bytes(self, index: int) -> bytes | None:
    path = self._images.get(self.ids[index])
    return path.read_bytes() if path is not None else None

  def painting(self, index: int, *, with_image: bool = True) -> painting_files.Painting:
    """Painting `index`; a region model's thumbnail image is read only `with_image`."""
    painting_id = self.ids[index]
    if self._reader.uses_pixels:
      return self._reader.read(image=self.image_bytes(index),
                               name=str(self._model_files[painting_id]))
    return self._reader.read(image=self.image_bytes(index) if with_image else None,
                             regions=self._model_files[painting_id],
                             name=str(self._model_files[painting_id]))

  def inputs(self, start: int, stop: int) -> dict[str, np.ndarray]:
    paintings = [self.painting(i, with_image=False).inputs for i in range(start, stop)]
    return {key: np.stack([p[key] for p in paintings]) for key in paintings[0]}
