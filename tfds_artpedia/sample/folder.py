"""Writes a generated corpus in the on-disk formats real users hold.

`artpedia.json`, `images/<id>.jpg|png` and bottom-up-attention regions (per-image `.npz`
or one TSV), so that the `images` and `regions` builder configs are exercised on it
exactly as on the real data. The bytes depend on the seed only: Pillow writes neither
image format with a timestamp, and the JSON keeps the paintings' order.
"""

from collections.abc import Iterable
import base64
import contextlib
import json
import os
from typing import Any

import numpy as np
from PIL import Image

from tfds_artpedia import errors
from tfds_artpedia import regions as regions_lib
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample.corpus import SamplePainting

REGION_FORMATS = ('npz', 'tsv')
_ENCODERS = {'jpg': ('JPEG', {'quality': 90}), 'png': ('PNG', {'optimize': False})}


def _annotation(painting: SamplePainting) -> dict[str, Any]:
  return {'title': painting.title, 'img_url': painting.img_url, 'year': painting.year,
          'visual_sentences': painting.visual_sentences,
          'contextual_sentences': painting.contextual_sentences, 'split': painting.split}


def _write_image(path_without_extension: str, image: Image.Image, index: int) -> None:
  extension, mode = sample_corpus.file_format(index)
  image_format, options = _ENCODERS[extension]
  # RGB -> RGBA is fully opaque: the same picture, with an alpha channel.
  image.convert(mode).save(f'{path_without_extension}.{extension}', format=image_format,
                           **options)


def _pixel_boxes(painting: SamplePainting) -> np.ndarray:
  return regions_lib.pixel_boxes(painting.boxes, *painting.image.size)


def _tsv_row(painting: SamplePainting) -> str:
  def encoded(array):
    return base64.b64encode(np.ascontiguousarray(array, '<f4').tobytes()).decode('ascii')
  width, height = painting.image.size
  return '\t'.join([painting.id, str(width), str(height), str(len(painting.boxes)),
                    encoded(_pixel_boxes(painting)), encoded(painting.features)]) + '\n'


def _write_npz(path: str, painting: SamplePainting) -> None:
  width, height = painting.image.size
  np.savez(path, features=painting.features, boxes=_pixel_boxes(painting),
           image_w=np.int32(width), image_h=np.int32(height))


def write_folder(out_dir: str | os.PathLike[str], paintings: Iterable[SamplePainting],
                 region_format: str = 'npz') -> None:
  """Writes `paintings` in the real on-disk formats (what `images`/`regions` configs read).

  `out_dir/artpedia.json`, `out_dir/images/<id>.jpg|png`, and either
  `out_dir/regions/<id>.npz` (keys `features`, `boxes` in pixels (x0, y0, x1, y1),
  `image_w`, `image_h`) or `out_dir/regions/features.tsv` (bottom-up-attention TSV).
  `out_dir` must be empty or absent, so that no file of an earlier corpus (or of the other
  region format) is left beside the new one.
  """
  if region_format not in REGION_FORMATS:
    raise errors.UsageError(f'region_format must be one of {REGION_FORMATS}, got '
                            f'{region_format!r}.')
  if os.path.isdir(out_dir) and os.listdir(out_dir):
    raise errors.UsageError(f'{out_dir} is not empty: write the sample corpus into a new '
                            'or empty folder.')
  images_dir, regions_dir = os.path.join(out_dir, 'images'), os.path.join(out_dir, 'regions')
  os.makedirs(images_dir, exist_ok=True)
  os.makedirs(regions_dir, exist_ok=True)
  annotations = {}
  with contextlib.ExitStack() as stack:
    tsv = (stack.enter_context(open(os.path.join(regions_dir, 'features.tsv'), 'w',
                                    encoding='ascii', newline='\n'))
           if region_format == 'tsv' else None)
    for index, painting in enumerate(paintings):
      annotations[painting.id] = _annotation(painting)
      _write_image(os.path.join(images_dir, painting.id), painting.image, index)
      if tsv is not None:
        tsv.write(_tsv_row(painting))
      else:
        _write_npz(os.path.join(regions_dir, f'{painting.id}.npz'), painting)
  with open(os.path.join(out_dir, 'artpedia.json'), 'w', encoding='utf-8') as f:
    json.dump(annotations, f, ensure_ascii=False, indent=1)
    f.write('\n')
