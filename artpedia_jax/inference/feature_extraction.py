"""A pixel backbone's grid region features, one `<id>.npz` per painting of a dataset.

The library side of `python -m artpedia_jax.extract_features`. Each image of
`config.dataset.name` (built first if needed, as `run.py` does) is resized to
`dataset.image_size` squared, as evaluation does, and its backbone feature map
(inference-mode batch norm) becomes R = h * w regions, written in the `.npz` layout that
the dataset's `regions` config reads from `manual_dir/regions/`: `features` float32
[R, C], `boxes` float32 [R, 4] in pixels (x0, y0, x1, y1) of the stored image, `image_w`,
`image_h`. So a user extracts once into `DIR/regions` and trains fast on
`artpedia/regions` with `model.backbone=''`.

That builder stores 2048-dim features (ResNet-50 and deeper); ResNet-18/34 give 512.
Resumable: paintings whose file exists are skipped, and each file is written under a
temporary name and renamed, so an interrupted run never leaves a partial file.
"""

from collections.abc import Sequence
import io
import os

from absl import logging
from flax import nnx
import jax
import ml_collections
import numpy as np
from PIL import Image
import tqdm

from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.model import model as model_lib
from artpedia_jax.train import config_checks
from tfds_artpedia import regions as regions_lib

SPLITS = ('train', 'validation', 'test')


def _write_npz(path: str, **arrays: np.ndarray) -> None:
  """Writes then renames, so that `path` exists only once complete."""
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def _encoder_fn(config: ml_collections.ConfigDict):
  """The configured backbone (with its weights) as a jitted images → (features, boxes)."""
  encoder = model_lib.build_pixel_encoder(
      model_lib.ModelSpec.from_config(config).backbone, rngs=nnx.Rngs(config.seed))
  if config.model.backbone_weights:
    model_lib.load_backbone_weights(encoder, config.model.backbone_weights)
  else:
    logging.warning('config.model.backbone_weights is empty: extracting features of a '
                    'randomly initialised %s.', config.model.backbone)
  if encoder.feature_dim != regions_lib.FEATURE_DIM:
    logging.warning('%s gives %d-dim features; the artpedia/regions builder stores %d.',
                    config.model.backbone, encoder.feature_dim, regions_lib.FEATURE_DIM)
  graphdef, state = nnx.split(encoder)

  @jax.jit
  def encode(images):
    features, boxes, _ = nnx.merge(graphdef, state)(images, train=False)
    return features, boxes

  return encode


def _pending(source, out_dir: str) -> list[int]:
  """Indices of the records that have no `.npz` yet."""
  return [i for i in range(len(source)) if not os.path.exists(
      os.path.join(out_dir, vocab_lib.as_text(source[i]['id']) + '.npz'))]


def extract(config: ml_collections.ConfigDict, out_dir: str, *,
            splits: Sequence[str] = SPLITS, batch_size: int = 32,
            progress: bool = True) -> int:
  """Writes `<id>.npz` for every painting of `splits` lacking one; returns how many."""
  if not config.model.backbone:
    raise config_checks.ConfigError(
        'config.model.backbone is empty: set it (e.g. --config.model.backbone=resnet50) '
        'to say which backbone extracts the features.')
  config_checks.validate(config, num_devices=jax.device_count())
  dataset.prepare(config)
  os.makedirs(out_dir, exist_ok=True)
  encode = _encoder_fn(config)
  inputs = input_spec.InputSpec.from_config(config)
  transform = painting_inputs.painting_inputs(inputs, train=False)
  sources = {split: pipeline.open_source(inputs, split) for split in splits}
  pending = {split: _pending(source, out_dir) for split, source in sources.items()}
  total = sum(len(indices) for indices in pending.values())
  logging.info('Extracting %s features of %d paintings into %s (%d already there).',
               config.model.backbone, total, out_dir,
               sum(map(len, sources.values())) - total)
  with tqdm.tqdm(total=total, desc='extract', unit='image', disable=not progress) as bar:
    for split, indices in pending.items():
      for start in range(0, len(indices), batch_size):
        records = [sources[split][i] for i in indices[start:start + batch_size]]
        _extract_batch(encode, transform, records, batch_size, out_dir)
        bar.update(len(records))
  return total


def _extract_batch(encode, transform, records, batch_size: int, out_dir: str) -> None:
  """Encodes up to `batch_size` records (padded to it: one compilation) and writes them."""
  images = np.stack([transform(record, rng=None)['images'] for record in records])
  padded = np.zeros((batch_size,) + images.shape[1:], images.dtype)
  padded[:len(images)] = images
  features, boxes = jax.device_get(encode(padded))
  for record, record_features, record_boxes in zip(records, features, boxes):
    width, height = Image.open(io.BytesIO(record['image'])).size
    _write_npz(os.path.join(out_dir, vocab_lib.as_text(record['id']) + '.npz'),
               features=record_features.astype(np.float32),
               boxes=regions_lib.pixel_boxes(record_boxes, width, height),
               image_w=np.int32(width), image_h=np.int32(height))
