"""The pictures of the sample corpora: geometric objects on a background, and their regions.

A "painting" holds 1-4 objects (shape, colour, size, position on a 3x3 grid) on a plain,
graded, striped or horizon background, drawn with Pillow. Its "detector" regions are one
box per object plus 2-4 background boxes, each with a feature vector that is a fixed random
projection of the region's attributes plus Gaussian noise: the same projection for every
seed, so that a model can learn which words name which features. Every draw takes the
caller's random stream, so a painting is a pure function of it.
"""

from collections.abc import Iterable
import dataclasses
import functools
import math

import numpy as np
from PIL import Image
from PIL import ImageDraw

from tfds_artpedia import regions as regions_lib

FEATURE_NOISE = 0.5  # std of the noise added to each region feature (signal std is ~1)

SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'diamond', 'hexagon', 'ring')
COLOURS = {
    'red': (215, 35, 35), 'orange': (245, 135, 20), 'yellow': (250, 215, 35),
    'green': (35, 150, 60), 'blue': (35, 75, 205), 'purple': (125, 45, 160),
    'pink': (245, 135, 185), 'brown': (115, 65, 25), 'black': (15, 15, 15),
    'white': (250, 250, 250),
}
BACKGROUND_COLOURS = {
    'grey': (150, 150, 150), 'beige': (222, 205, 170), 'sage': (165, 185, 150),
    'slate': (100, 115, 135), 'lavender': (190, 175, 215), 'cream': (245, 238, 210),
    'teal': (60, 130, 130), 'navy': (35, 45, 90), 'olive': (128, 128, 60),
    'ochre': (200, 150, 60),
}
BACKGROUND_KINDS = ('plain', 'gradient', 'horizontal stripes', 'vertical stripes', 'horizon')
SIZES = ('small', 'large')
AREAS = ('upper left', 'top', 'upper right', 'left side', 'centre', 'right side',
         'lower left', 'bottom', 'lower right')  # a 3x3 grid, row by row
_MIN_CONTRAST = 90  # Euclidean RGB distance an object keeps from every background colour
_PROJECTION_SEED = 20190909  # fixes the attribute -> feature projection for every seed

_STAR = tuple((r * math.cos(a), r * math.sin(a)) for r, a in (
    (1.0 if k % 2 == 0 else 0.42, math.radians(-90 + 36 * k)) for k in range(10)))
_ARM = 0.33
_UNIT_OUTLINES = {  # polygons within [-1, 1]^2, y down; `None`: drawn as an ellipse
    'circle': None, 'ring': None,
    'square': ((-.8, -.8), (.8, -.8), (.8, .8), (-.8, .8)),
    'triangle': ((0, -1), (.95, .75), (-.95, .75)),
    'diamond': ((0, -1), (.7, 0), (0, 1), (-.7, 0)),
    'hexagon': tuple((math.cos(math.radians(60 * k)), math.sin(math.radians(60 * k)))
                     for k in range(6)),
    'star': _STAR,
    'cross': ((-_ARM, -1), (_ARM, -1), (_ARM, -_ARM), (1, -_ARM), (1, _ARM), (_ARM, _ARM),
              (_ARM, 1), (-_ARM, 1), (-_ARM, _ARM), (-1, _ARM), (-1, -_ARM),
              (-_ARM, -_ARM)),
}


@dataclasses.dataclass(frozen=True)
class SceneObject:
  shape: str
  colour: str
  size: str
  cx: float  # centre and radius in pixels
  cy: float
  radius: float
  area: int  # index into AREAS


@dataclasses.dataclass(frozen=True)
class Background:
  kind: str
  colours: tuple[str, ...]  # one for 'plain'; (first, second) otherwise, sky first
  horizon: float  # height of the horizon as a fraction of the image ('horizon' only)
  stripe_width: int  # pixels ('... stripes' only)


def pick(rng: np.random.Generator, options):
  """One of `options`, uniformly (one integer draw from `rng`)."""
  return options[int(rng.integers(len(options)))]


def canvas_size(rng: np.random.Generator) -> tuple[int, int]:
  """(width, height): longer side 256-384 px, aspect ratio between 3:5 and 5:3."""
  longer = int(rng.integers(256, 385))
  shorter = int(round(longer / math.exp(rng.uniform(0, math.log(5 / 3)))))
  return (longer, shorter) if rng.random() < 0.5 else (shorter, longer)


def background(rng: np.random.Generator) -> Background:
  kind = pick(rng, BACKGROUND_KINDS)
  names = list(BACKGROUND_COLOURS)
  first, second = (names[i] for i in rng.choice(len(names), 2, replace=False))
  return Background(kind=kind, colours=(first,) if kind == 'plain' else (first, second),
                    horizon=float(rng.uniform(0.35, 0.7)),
                    stripe_width=int(rng.integers(12, 41)))


def contrasting_colours(scene_background: Background) -> list[str]:
  """The object colours that stay visible on every colour of the background."""
  def distance(a, b):
    return math.dist(COLOURS[a], BACKGROUND_COLOURS[b])
  return [c for c in COLOURS
          if all(distance(c, b) >= _MIN_CONTRAST for b in scene_background.colours)]


def objects(rng: np.random.Generator, width: int, height: int,
            kinds: list[tuple[str, str]]) -> list[SceneObject]:
  """1-4 objects of distinct (shape, colour) `kinds`, kept apart when the canvas allows it."""
  count = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.3, 0.25, 0.2]))
  placed = []
  for k in rng.choice(len(kinds), count, replace=False):
    shape, colour = kinds[k]
    size = pick(rng, SIZES)
    fraction = rng.uniform(0.08, 0.11) if size == 'small' else rng.uniform(0.16, 0.22)
    radius = float(fraction * min(width, height))
    for _ in range(30):
      cx = float(rng.uniform(radius, width - radius))
      cy = float(rng.uniform(radius, height - radius))
      if all(math.dist((cx, cy), (o.cx, o.cy)) > 1.05 * (radius + o.radius) for o in placed):
        break
    area = 3 * min(int(3 * cy / height), 2) + min(int(3 * cx / width), 2)
    placed.append(SceneObject(shape, colour, size, cx, cy, radius, area))
  return placed


def _background_pixels(scene_background: Background, width: int, height: int) -> np.ndarray:
  """Every background varies along one axis only: colour one line, then repeat it."""
  colours = np.array([BACKGROUND_COLOURS[c] for c in scene_background.colours], np.float32)
  first, second = colours[0], colours[-1]
  along_x = scene_background.kind == 'vertical stripes'
  position = np.arange(width if along_x else height)[:, None]
  if scene_background.kind == 'plain':
    line = np.broadcast_to(first, (len(position), 3))
  elif scene_background.kind == 'gradient':
    t = position / max(len(position) - 1, 1)
    line = (1 - t) * first + t * second
  elif scene_background.kind == 'horizon':
    line = np.where(position < scene_background.horizon * height, first, second)
  else:
    line = np.where((position // scene_background.stripe_width) % 2 == 1, second, first)
  line = line.round().astype(np.uint8)
  pixels = line[None, :, :] if along_x else line[:, None, :]
  return np.ascontiguousarray(np.broadcast_to(pixels, (height, width, 3)))


def _outline(obj: SceneObject) -> list[tuple[float, float]] | None:
  unit = _UNIT_OUTLINES[obj.shape]
  if unit is None:
    return None
  return [(obj.cx + obj.radius * x, obj.cy + obj.radius * y) for x, y in unit]


def _pixel_box(obj: SceneObject) -> tuple[float, float, float, float]:
  """(x0, y0, x1, y1) in pixels: the tight box of what is drawn."""
  points = _outline(obj)
  if points is None:
    r = obj.radius
    return obj.cx - r, obj.cy - r, obj.cx + r, obj.cy + r
  xs, ys = zip(*points)
  return min(xs), min(ys), max(xs), max(ys)


def draw(width: int, height: int, scene_background: Background,
         scene_objects: list[SceneObject]) -> Image.Image:
  """The RGB picture."""
  image = Image.fromarray(_background_pixels(scene_background, width, height), 'RGB')
  canvas = ImageDraw.Draw(image)
  for obj in scene_objects:
    colour = COLOURS[obj.colour]
    points = _outline(obj)
    if points is not None:
      canvas.polygon(points, fill=colour)
    elif obj.shape == 'ring':
      canvas.ellipse(_pixel_box(obj), outline=colour, width=max(3, int(obj.radius * 0.35)))
    else:
      canvas.ellipse(_pixel_box(obj), fill=colour)
  return image


@functools.cache
def attribute_index() -> dict[tuple[str, str], int]:
  """(group, value) → row of the projection: what a region feature encodes."""
  groups = (('region', ('object', 'background')), ('shape', SHAPES), ('colour', COLOURS),
            ('size', SIZES), ('area', AREAS), ('background', BACKGROUND_KINDS),
            ('background colour', BACKGROUND_COLOURS))
  pairs = [(group, value) for group, values in groups for value in values]
  return {pair: i for i, pair in enumerate(pairs)}


@functools.cache
def projection() -> np.ndarray:
  """The "detector": one fixed matrix for every seed, so features mean the same everywhere."""
  rng = np.random.default_rng(_PROJECTION_SEED)
  matrix = rng.standard_normal((len(attribute_index()), regions_lib.FEATURE_DIM),
                               dtype=np.float32)
  return matrix / 2  # an object has five active attributes: signal std ~1.1 per dimension


def _multi_hot(pairs: Iterable[tuple[str, str]]) -> np.ndarray:
  index = attribute_index()
  vector = np.zeros(len(index), np.float32)
  vector[[index[p] for p in pairs]] = 1.0
  return vector


def _background_boxes(rng: np.random.Generator, scene_background: Background
                      ) -> list[tuple[tuple[float, ...], tuple[str, ...]]]:
  """2-4 (box (y0, x0, y1, x1), colours seen in it): the whole scene, or sky and ground."""
  if scene_background.kind == 'horizon':
    sky, ground = scene_background.colours
    boxes = [((0.0, 0.0, scene_background.horizon, 1.0), (sky,)),
             ((scene_background.horizon, 0.0, 1.0, 1.0), (ground,))]
  else:
    boxes = [((0.0, 0.0, 1.0, 1.0), scene_background.colours)]
  count = int(rng.integers(2, 5))
  while len(boxes) < count:
    h, w = rng.uniform(0.3, 0.8, size=2)
    y0, x0 = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w)
    boxes.append(((y0, x0, y0 + h, x0 + w), scene_background.colours))
  return boxes


def regions(rng: np.random.Generator, width: int, height: int, scene_background: Background,
            scene_objects: list[SceneObject]) -> regions_lib.Regions:
  """One region per object plus the background's, in random order."""
  attributes, boxes = [], []
  for obj in scene_objects:
    attributes.append(_multi_hot([('region', 'object'), ('shape', obj.shape),
                                  ('colour', obj.colour), ('size', obj.size),
                                  ('area', AREAS[obj.area])]))
    x0, y0, x1, y1 = _pixel_box(obj)
    boxes.append((y0 / height, x0 / width, y1 / height, x1 / width))
  for box, colours in _background_boxes(rng, scene_background):
    attributes.append(_multi_hot([('region', 'background'),
                                  ('background', scene_background.kind)]
                                 + [('background colour', c) for c in colours]))
    boxes.append(box)
  order = rng.permutation(len(boxes))
  signal = np.stack(attributes)[order] @ projection()
  noise = rng.standard_normal(signal.shape, dtype=np.float32) * FEATURE_NOISE
  boxes = np.clip(np.array(boxes, np.float32)[order], 0.0, 1.0)
  return regions_lib.Regions((signal + noise).astype(np.float32), boxes)
