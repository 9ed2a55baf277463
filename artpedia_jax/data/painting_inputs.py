"""The model's painting inputs from a dataset record: region features or an image.

With region features (`InputSpec.backbone` empty) a batch carries
`regions`, `boxes` and `region_mask`; with a pixel backbone it carries `images` instead,
uint8 [b, S, S, 3] with S = `dataset.image_size`: decoded JPEG, for training a random
crop (area ≥ `dataset.crop_min_scale` of the image, aspect ratio in [3/4, 4/3]) and an
optional mirror drawn with the same (seed, position) RNG; for evaluation the whole image.
Either is resized to S x S without keeping the aspect, so that the backbone's grid cells
tile the whole (cropped) painting. Normalisation is the model's (`resnet.normalize`, the
statistics of the ImageNet weights it imports), so the images stay uint8 here.
"""

from collections.abc import Sequence
import dataclasses
import io
import math
from typing import Any

import numpy as np
from PIL import Image

from artpedia_jax.data import input_spec
from artpedia_jax.data import vocab as vocab_lib

Record = dict[str, Any]
_CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
_CROP_ATTEMPTS = 10  # random crops tried before falling back to the whole image


def feature_dim(source: Sequence[Record]) -> int:
  """The region feature size F of the dataset (the model's input size)."""
  if not len(source):
    raise ValueError('The split is empty: check the dataset split and data_dir.')
  return _padded_regions(source[0], max_regions=0)['regions'].shape[-1]


def region_feature_dim(spec: input_spec.InputSpec, source: Sequence[Record]) -> int | None:
  """The model's `feature_dim`: F of the dataset's regions, None when a backbone sets it."""
  return None if spec.pixels else feature_dim(source)


def _padded_regions(record: Record, max_regions: int) -> dict[str, np.ndarray]:
  """Regions, boxes and mask padded to `max_regions`; extra regions beyond it are dropped."""
  if 'regions' not in record:
    raise ValueError(f'Record {vocab_lib.as_text(record["id"])!r} has no region features:'
                     ' use a dataset config that has them (artpedia/regions, artpedia/sample or'
                     ' artpedia/sample_realistic).')
  features = np.asarray(record['regions']['features'], np.float32)[:max_regions]
  boxes = np.asarray(record['regions']['boxes'], np.float32).reshape([-1, 4])[:max_regions]
  num = len(features)
  padded = {
      'regions': np.zeros([max_regions, features.shape[-1]], np.float32),
      'boxes': np.zeros([max_regions, 4], np.float32),
      'region_mask': np.arange(max_regions) < num,
  }
  padded['regions'][:num] = features
  padded['boxes'][:num] = boxes
  return padded


@dataclasses.dataclass(frozen=True)
class RegionInputs:
  """Detector regions, padded to `max_regions` (picklable for grain workers)."""
  max_regions: int

  def __call__(self, record: Record, rng: np.random.Generator | None
               ) -> dict[str, np.ndarray]:
    del rng  # Region features are not augmented.
    return _padded_regions(record, self.max_regions)


def _decode_rgb(record: Record) -> Image.Image:
  """JPEG bytes (`open_source` skips TFDS decoding) or an already decoded array."""
  image = record['image']
  if isinstance(image, bytes):
    return Image.open(io.BytesIO(image)).convert('RGB')
  return Image.fromarray(np.asarray(image, np.uint8)).convert('RGB')


def random_crop_box(width: int, height: int, min_scale: float,
                    rng: np.random.Generator) -> tuple[int, int, int, int]:
  """(x0, y0, x1, y1): a random area fraction in [min_scale, 1] and aspect ratio in
  [3/4, 4/3] (as Inception's crops), or the whole image if none fits in a few tries."""
  for _ in range(_CROP_ATTEMPTS):
    area = width * height * rng.uniform(min_scale, 1.0)
    aspect = math.exp(rng.uniform(*np.log(_CROP_ASPECT_RANGE)))
    crop_w = int(round(math.sqrt(area * aspect)))
    crop_h = int(round(math.sqrt(area / aspect)))
    if 0 < crop_w <= width and 0 < crop_h <= height:
      x0 = int(rng.integers(0, width - crop_w + 1))
      y0 = int(rng.integers(0, height - crop_h + 1))
      return x0, y0, x0 + crop_w, y0 + crop_h
  return 0, 0, width, height


@dataclasses.dataclass(frozen=True)
class ImageInputs:
  """Square uint8 images; `augment` draws a crop and flip from the example's RNG."""
  image_size: int
  augment: bool
  crop_min_scale: float = 1.0
  random_flip: bool = False

  def __call__(self, record: Record, rng: np.random.Generator | None
               ) -> dict[str, np.ndarray]:
    image = _decode_rgb(record)
    box = (0, 0) + image.size
    if self.augment and self.crop_min_scale < 1.0:
      box = random_crop_box(*image.size, self.crop_min_scale, rng)
    image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR,
                         box=box)
    if self.augment and self.random_flip and rng.random() < 0.5:
      image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {'images': np.asarray(image, np.uint8)}


def painting_inputs(spec: input_spec.InputSpec, *,
                    train: bool) -> RegionInputs | ImageInputs:
  """The per-record transform giving the model's painting inputs (see module docstring)."""
  if not spec.pixels:
    return RegionInputs(spec.max_regions)
  return ImageInputs(spec.image_size, augment=train, crop_min_scale=spec.crop_min_scale,
                     random_flip=spec.random_flip)
