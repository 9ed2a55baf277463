"""One painting from the files a user has: an image, or detector regions (.npz / TSV row).

A trained model takes paintings the way it was trained: pixels when its config sets a
backbone, detector region features otherwise. `PaintingReader` turns a user's file into
exactly the inputs the evaluation split gives that model (`painting_inputs`),
and says plainly when the file is the wrong kind for the model. An image may come with
regions too: its size then scales region files that do not record one, and pages show it.
"""

from collections.abc import Iterator
import contextlib
import dataclasses
import io
import pathlib
from typing import Any

import numpy as np
from PIL import Image

from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from tfds_artpedia import errors
from tfds_artpedia import regions as regions_lib

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.gif', '.tif', '.tiff')
REGION_SUFFIXES = ('.npz', '.tsv')
# Decompression-bomb guard: far above any painting scan a user would annotate.
MAX_IMAGE_PIXELS = 80_000_000


class PaintingInputError(errors.UserError, ValueError):
  """A painting file that cannot be read, or the wrong kind for the model."""


@dataclasses.dataclass(frozen=True)
class Painting:
  """One painting ready for the model."""
  name: str
  inputs: dict[str, np.ndarray] | None  # the model's painting inputs, no batch axis
  # Its encoding (a leading axis of 1) when already known (a cached collection's row).
  encoded: Any = None


@contextlib.contextmanager
def _opened(data: bytes, where: str) -> Iterator[Image.Image]:
  """The image file in `data` opened by Pillow (header read), or a PaintingInputError
  saying why not."""
  try:
    with Image.open(io.BytesIO(data)) as image:
      if image.width * image.height > MAX_IMAGE_PIXELS:
        raise PaintingInputError(
            f'{where}: {image.width} x {image.height} pixels is more than the '
            f'{MAX_IMAGE_PIXELS:,} accepted; downscale the image first.')
      yield image
  except PaintingInputError:
    raise
  except Image.UnidentifiedImageError as error:
    raise PaintingInputError(f'{where}: not an image Pillow can decode; give a JPEG or '
                             'PNG file.') from error
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
    raise PaintingInputError(f'{where}: a damaged or unsupported image ({error}); give '
                             'a JPEG or PNG file.') from error


def decode_image(data: bytes, where: str) -> np.ndarray:
  """uint8 [H, W, 3] of an image file's bytes, or a PaintingInputError saying why not."""
  with _opened(data, where) as image:
    return np.asarray(image.convert('RGB'), np.uint8)


def image_size(data: bytes, where: str) -> tuple[int, int]:
  """(width, height) of an image file's bytes, from its header."""
  with _opened(data, where) as image:
    return image.size


def downscaled_jpeg(data: bytes, max_side: int, where: str) -> bytes:
  """The image file in `data` downscaled to fit `max_side`, as JPEG bytes (what pages
  show)."""
  picture = Image.fromarray(decode_image(data, where))
  picture.thumbnail((max_side, max_side))
  buffer = io.BytesIO()
  picture.save(buffer, format='JPEG', quality=85)
  return buffer.getvalue()


class _AnyId:
  """Accepts every id: a user's own TSV row belongs to no annotation file."""

  def __contains__(self, painting_id: object) -> bool:
    return True


def read_regions(path: str | pathlib.Path, feature_dim: int,
                 painting_id: str | None = None,
                 size: tuple[int, int] | None = None) -> regions_lib.Regions:
  """Regions of one painting from `<id>.npz` or a bottom-up TSV (its only row, or the
  row of `painting_id`); boxes normalised as in the dataset, by the image size the file
  records or else `size` (width, height) of its image."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise PaintingInputError(f'{path}: no such file.')
  try:
    if path.suffix == '.npz':
      return regions_lib.NpzRegions([path], {path.stem}, feature_dim).load(path.stem, size)
    if path.suffix == '.tsv':
      table = regions_lib.TsvRegions([path], _AnyId(), feature_dim)
      ids = sorted(table.ids)
      if painting_id is None and len(ids) != 1:
        raise PaintingInputError(
            f'{path}: holds {len(ids)} rows; name the painting with --id (first ids: '
            f'{ids[:5]}).')
      painting_id = ids[0] if painting_id is None else painting_id
      if painting_id not in table.ids:
        raise PaintingInputError(f'{path}: no row with image_id {painting_id!r}.')
      return table.load(painting_id, size)
  except regions_lib.RegionError as error:
    raise PaintingInputError(str(error)) from error
  raise PaintingInputError(f'{path}: region files are {" or ".join(REGION_SUFFIXES)}.')


class PaintingReader:
  """Builds `Painting`s for one model (its inputs and region feature size)."""

  def __init__(self, spec: input_spec.InputSpec, feature_dim: int | None):
    self._spec = spec
    self._feature_dim = feature_dim
    self._transform = painting_inputs.painting_inputs(spec, train=False)

  @property
  def uses_pixels(self) -> bool:
    return self._spec.pixels

  def kind_hint(self) -> str:
    """What this model needs, as advice to a user."""
    if self.uses_pixels:
      return (f'this model reads pixels (backbone {self._spec.backbone}): pass '
              'an image file (--image FILE.jpg)')
    return ('this model was trained on detector regions: pass --regions FILE.npz (or a '
            'bottom-up TSV), or train configs/align_pixels.py to annotate raw images')

  def read(self, *, image: bytes | None = None, regions: str | pathlib.Path | None = None,
           name: str = 'painting', painting_id: str | None = None) -> Painting:
    """A painting from image bytes and/or a regions file, as this model needs it; a
    region model reads only the image's size (for region files without one)."""
    if self.uses_pixels:
      if image is None or regions is not None:
        raise PaintingInputError(f'{name}: {self.kind_hint()}.')
      return Painting(name, self._transform({'image': decode_image(image, name)}, rng=None))
    if regions is None:
      raise PaintingInputError(f'{name}: {self.kind_hint()}.')
    size = image_size(image, name) if image is not None else None
    found = read_regions(regions, self._feature_dim, painting_id, size)
    record = {'regions': {'features': found.features, 'boxes': found.boxes}}
    return Painting(name, self._transform(record, rng=None))

  def from_record(self, record: dict, name: str) -> Painting:
    """A painting of a built split (a record of `pipeline.open_source`)."""
    return Painting(name, self._transform(record, rng=None))
