"""Load one painting image → RGB, EXIF-rotated, reduced while loading, JPEG bytes.

Wikimedia originals come in every mode Pillow knows (CMYK, palette, greyscale, 16-bit,
with alpha) and some exceed 100 megapixels, while the dataset stores at most
`max_side` pixels on the longer side. JPEGs are therefore decoded at 1/2, 1/4 or 1/8
scale by the decoder itself (`Image.draft`), so a huge JPEG is never decoded whole; other
formats have no scaled decoding in Pillow: they are decoded, then shrunk by an integer
factor (`Image.reduce`) before the final resampling, and Pillow's decompression-bomb
guard bounds what that costs. The guard is raised to `max_source_pixels` around a single
load (not switched off process-wide), and anything above it is an `ImageError`.
"""

from collections.abc import Iterator
import contextlib
import dataclasses
import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image

DEFAULT_MAX_SIDE = 512
# Above any painting in Artpedia (the largest originals are a few hundred megapixels).
MAX_SOURCE_PIXELS = 1_000_000_000
JPEG_QUALITY = 90
_BACKGROUND = (255, 255, 255)  # transparent pixels become white, as on Wikipedia pages
_ALPHA_MODES = ('RGBA', 'RGBa', 'LA', 'La', 'PA')
_SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')
# EXIF orientation tag value → the transpose that displays the image upright.
_EXIF_ORIENTATION = 0x0112
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = (5, 6, 7, 8)


class ImageError(Exception):
  """An image file that cannot be used; `reason` is 'unreadable' or 'oversized'."""

  def __init__(self, path: str | os.PathLike[str], reason: str, detail: str):
    super().__init__(f'{os.fspath(path)}: {reason} image ({detail})')
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class LoadedImage:
  jpeg: bytes
  size: tuple[int, int]  # (width, height) of the encoded image
  source_size: tuple[int, int]  # (width, height) of the upright original


def index_images(images_dir: str | os.PathLike[str]) -> dict[str, pathlib.Path]:
  """Maps painting id → its image file `images_dir/<id>.<ext>` (one listing, any ext).

  Partial downloads such as `<id>.jpg.part` do not match (their stem is not the id).
  When one id has several files, the first in sorted order is used.
  """
  index = {}
  for path in sorted(pathlib.Path(images_dir).iterdir()):
    if path.is_file():
      index.setdefault(path.stem, path)
  return index


def load_jpeg(path: str | os.PathLike[str], max_side: int = DEFAULT_MAX_SIDE,
              max_source_pixels: int = MAX_SOURCE_PIXELS) -> LoadedImage:
  """Decodes an image file, upright and RGB, reduced to `max_side`, as JPEG bytes.

  Raises:
    ImageError: the file cannot be decoded, or has more than `max_source_pixels`.
  """
  try:
    with _pixel_guard(max_source_pixels), Image.open(path) as image:
      orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
      source_size = image.size
      target = fit_size(source_size, max_side)
      image.draft('RGB', target)  # JPEG only: scaled DCT decoding; a no-op otherwise
      # Finished inside `with`: closing the file frees the pixels of `image` itself.
      reduced = _shrink(to_rgb(image), target)
      if orientation in _UPRIGHT:
        reduced = reduced.transpose(_UPRIGHT[orientation])
      jpeg = encode_jpeg(reduced)
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise ImageError(path, 'oversized', str(e)) from e
  except Exception as e:  # Pillow's decoders raise assorted types on corrupt files.
    raise ImageError(path, 'unreadable', f'{type(e).__name__}: {e}') from e
  if orientation in _SWAPS_SIDES:
    source_size = source_size[::-1]
  return LoadedImage(jpeg, reduced.size, source_size)


def to_jpeg(image: Image.Image, max_side: int = DEFAULT_MAX_SIDE) -> LoadedImage:
  """Reduces and encodes an in-memory image (the sample corpus) as `load_jpeg` would."""
  rgb = _shrink(to_rgb(image), fit_size(image.size, max_side))
  return LoadedImage(encode_jpeg(rgb), rgb.size, image.size)


def fit_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
  """(width, height) with the longer side at most `max_side`, aspect kept; never enlarged."""
  width, height = size
  scale = max_side / max(width, height)
  if scale >= 1:
    return size
  return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
  """8-bit RGB: 16-bit scaled (not clipped) to 8, alpha composited over white."""
  if image.mode in _SIXTEEN_BIT_MODES:
    grey = np.asarray(image, dtype=np.float32) / 257.0
    image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))  # mode L
  if image.mode in _ALPHA_MODES or 'transparency' in image.info:
    rgba = image.convert('RGBA')
    rgb = Image.new('RGB', rgba.size, _BACKGROUND)
    rgb.paste(rgba, mask=rgba.getchannel('A'))
    return rgb
  return image if image.mode == 'RGB' else image.convert('RGB')  # no copy of a huge RGB


def encode_jpeg(image: Image.Image) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format='JPEG', quality=JPEG_QUALITY)
  return buffer.getvalue()


def _shrink(image: Image.Image, target: tuple[int, int]) -> Image.Image:
  """Integer-factor box reduction first (cheap on huge images), then Lanczos to size."""
  factor = min(image.width // target[0], image.height // target[1])
  if factor >= 2:
    image = image.reduce(factor)
  if image.size != target:
    image = image.resize(target, Image.Resampling.LANCZOS)
  return image


@contextlib.contextmanager
def _pixel_guard(max_pixels: int) -> Iterator[None]:
  """Pillow's decompression-bomb guard at `max_pixels` for one load, as an error."""
  previous = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = max_pixels
  try:
    with warnings.catch_warnings():
      # Pillow only warns between 1x and 2x its limit; make the limit exact.
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = previous
