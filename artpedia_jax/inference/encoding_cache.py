"""A collection's encoded paintings on disk, keyed by everything they depend on.

Encoding a collection is the slow part of its first query; the cache makes every later
process (a `search` again, a `serve` restart) start from the encodings. A cached entry
must never be served for another model or another collection, so its file name holds
two digests:

* the model's: its checkpoint's content (the digest of the step's checksum manifest,
  which lists the SHA-256 of every file: parameters, config, vocabulary) and its model
  and painting-input settings, so two runs that reached the same step number, or a
  workdir retrained after its checkpoints were deleted, never share an entry;
* the collection's (`painting_collection`): its files' content or the dataset build's
  record of them.

An entry also holds the collection's catalogue (ids, titles, years, and a split's
sentences with their labels), so a cached split is opened without reading the dataset.
Floating arrays are stored as float32 with their dtype's name beside them (numpy cannot
read bfloat16 back) and cast back on load, so a bfloat16 model scores cached paintings
exactly as fresh ones. Writes go through `etils.epath` (local or gs:// workdirs) to a
temporary name renamed into place, so a reader never sees half a file.
"""

import dataclasses
import hashlib
import io
import json
import os

from etils import epath
import jax.numpy as jnp
import ml_collections
import numpy as np

from artpedia_jax.evaluation import device_scorer as device_scoring

FOLDER_NAME = 'inference_cache'
_DTYPE_SUFFIX = '.dtype'
_CATALOGUE_PREFIX = 'catalogue.'
# Config sections that change what a painting encodes to, besides the parameters.
_MODEL_SECTIONS = ('model', 'vocab')
_PAINTING_KEYS = ('max_regions', 'image_size')


def model_key(checkpoint_digest: str, config: ml_collections.ConfigDict) -> str:
  """The part of an entry's name that names the model."""
  settings = {section: config[section].to_dict() for section in _MODEL_SECTIONS}
  settings['dataset'] = {key: config.dataset.get(key) for key in _PAINTING_KEYS}
  digest = hashlib.sha256(checkpoint_digest.encode('ascii'))
  digest.update(json.dumps(settings, sort_keys=True, default=str).encode('utf-8'))
  return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Entry:
  """What a cache file holds: the encodings and the collection's catalogue."""
  encoded: device_scoring.HostEncodedPaintings
  catalogue: dict[str, np.ndarray]  # e.g. ids, titles, years, sentence texts


def _to_storable(name: str, array: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
  array = np.asarray(array)
  if np.issubdtype(array.dtype, np.floating) or array.dtype.kind == 'V':
    arrays[name + _DTYPE_SUFFIX] = np.asarray(str(array.dtype))
    array = array.astype(np.float32)
  arrays[name] = array


def _from_stored(name: str, stored) -> np.ndarray:
  array = stored[name]
  dtype_key = name + _DTYPE_SUFFIX
  if dtype_key in stored.files:
    array = array.astype(jnp.dtype(str(stored[dtype_key])))
  return array


class EncodingCache:
  """The entries of one model in `folder` (None: nothing is kept on disk)."""

  def __init__(self, folder: str | os.PathLike | None, model: str):
    self._folder = None if folder is None else epath.Path(folder)
    self._model = model

  def path(self, collection_key: str) -> epath.Path | None:
    if self._folder is None:
      return None
    return self._folder / f'{self._model}_{collection_key}.npz'

  def has(self, collection_key: str) -> bool:
    path = self.path(collection_key)
    return path is not None and path.exists()

  def load(self, collection_key: str) -> Entry | None:
    """The entry for `collection_key`, or None when there is none."""
    if not self.has(collection_key):
      return None
    with self.path(collection_key).open('rb') as f:
      with np.load(io.BytesIO(f.read())) as stored:
        encoded = device_scoring.HostEncodedPaintings(**{
            field.name: _from_stored(field.name, stored)
            for field in dataclasses.fields(device_scoring.HostEncodedPaintings)})
        catalogue = {name[len(_CATALOGUE_PREFIX):]: stored[name] for name in stored.files
                     if name.startswith(_CATALOGUE_PREFIX)}
    return Entry(encoded, catalogue)

  def save(self, collection_key: str, entry: Entry) -> None:
    path = self.path(collection_key)
    if path is None:
      return
    arrays = {}
    for name, array in dataclasses.asdict(entry.encoded).items():
      _to_storable(name, array, arrays)
    for name, array in entry.catalogue.items():
      arrays[_CATALOGUE_PREFIX + name] = np.asarray(array)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f'.{path.name}.{os.getpid()}.tmp'
    temporary.write_bytes(buffer.getvalue())
    temporary.rename(path)
