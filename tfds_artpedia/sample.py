"""The sample corpus: an Artpedia-shaped world that a model can learn from scratch on a CPU.

Real Artpedia needs a download, images fetched from Wikimedia and a detector run before the
first experiment. This module replaces all three with a small procedural world so that the
whole system (build, train, evaluate) runs anywhere in minutes, and so that its tests have
data:

* "paintings": 1-4 geometric objects (shape, colour, size, position) on a background
  (plain, gradient, stripes or a horizon), drawn with Pillow;
* visual sentences describing them (attributes, counts, spatial relations, background);
* contextual sentences about invented artists, museums, exhibitions and provenance. Some
  name colours and shapes of *other* works (or hidden underdrawings), and about one in
  eight describes another work (a pendant, a study) in the visual templates' own words,
  half of them without any marker: its objects are absent from the painting, so only the
  image tells it from a visual sentence, as the image-aware classifier must;
* Artpedia's label noise: fragments (2-5 words of a sentence), 2-3% of the sentences
  filed in the wrong list, the odd run-on sentence of more than 60 words and rare
  punctuation-only ones ("—") with no word left after tokenisation. `SamplePainting`'s
  `*_kinds` say which sentence is which (SENTENCE_KINDS);
* "detector" regions: one box per object plus 2-4 background boxes, with features that
  are a fixed random projection of the region's attributes plus Gaussian noise.

Sizes and ratios follow Artpedia's (about 3.1 visual and 6.5 contextual sentences per
painting, some paintings with no contextual sentence, 80/10/10 splits). Everything is a
pure function of the seed: painting `i` draws from its own random stream, so `generate` is
lazy and cheap, and `write_folder` writes byte-identical files on every run.

`write_folder` (and `python -m tfds_artpedia.sample --out=DIR`) writes the formats real
users hold (`artpedia.json`, `images/<id>.jpg|png`, bottom-up-attention regions as
per-image `.npz` or one TSV), so the `images` and `regions` builder configs are exercised
on it exactly as on the real data.
"""

import base64
import contextlib
from collections.abc import Callable, Iterable, Iterator
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import re
from typing import Any
import urllib.parse

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

FEATURE_DIM = 2048  # same as bottom-up-attention features, so all three configs share shapes
FEATURE_NOISE = 0.5  # std of the noise added to each region feature (signal std is ~1)
SPLITS = ('train', 'val', 'test')
REGION_FORMATS = ('npz', 'tsv')

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
_PLACEMENTS = ('in the upper left corner', 'at the top', 'in the upper right corner',
               'on the left', 'in the centre', 'on the right', 'in the lower left corner',
               'at the bottom', 'in the lower right corner')
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

_FIRST_NAMES = ('Aurelio', 'Berthe', 'Casimir', 'Dora', 'Elias', 'Fenna', 'Giacomo',
                'Hilde', 'Ivo', 'Jana', 'Konrad', 'Lotte', 'Matthias', 'Nela', 'Oskar',
                'Paulina', 'Quentin', 'Renée', 'Stellan', 'Tilde', 'Umberto', 'Vera',
                'Wendel', 'Xenia', 'Yannick', 'Zofia', 'Émile', 'Søren')
_SURNAME_STEMS = ('Brand', 'Corv', 'Dalm', 'Fenn', 'Grav', 'Holm', 'Lind', 'Marr', 'Norv',
                  'Ostr', 'Pell', 'Rask', 'Stav', 'Tord', 'Vell', 'Wyn')
_SURNAME_ENDINGS = ('ander', 'ini', 'berg', 'ova', 'ec', 'eau', 'holt', 'mann', 'ardi',
                    'sen')
_NATIONALITIES = ('Italian', 'Dutch', 'French', 'Norwegian', 'Spanish', 'Czech', 'German',
                  'Belgian', 'Polish', 'Portuguese')
_MOVEMENTS = ('Prismatism', 'Luminal Abstraction', 'the Still Form movement',
              'Chromatic Realism', 'the New Horizon group', 'Radial Concretism',
              'the Quiet Line school', 'Tonal Geometry')
_CITIES = ('Valmora', 'Eastmoor', 'Lindavik', 'Port Aurel', 'Santa Brisa', 'Kestrelholm',
           'Oderna', 'Marrowgate', 'Tessaly', 'Brunavale', 'Calderra', 'Wendmouth',
           'Ostravel', 'Merano Alta')
_MUSEUM_PATTERNS = ('the Municipal Gallery of {city}', 'the {city} Museum of Fine Arts',
                    'the {surname} Foundation in {city}', 'the National Collection in {city}',
                    'the Civic Museum of {city}')
_EXHIBITION_PATTERNS = ('the {city} Salon', 'the Autumn Exhibition in {city}',
                        'the International Exposition of {city}',
                        'the Spring Academy show in {city}')
_PROFESSIONS = ('banker', 'shipowner', 'physician', 'textile merchant', 'lawyer',
                'publisher')
_VERDICTS = ('too severe', 'childish', 'a mere decoration', 'a sketch rather than a painting')
_SEASONS = ('spring', 'summer', 'autumn', 'winter')
_TITLE_ADJECTIVES = ('Quiet', 'Silent', 'Distant', 'Golden', 'Lonely', 'Hidden', 'Northern')
_TITLE_NOUNS = ('Harbour', 'Garden', 'Evening', 'Procession', 'Orchard', 'Tower', 'Meadow')
_COUNT_WORDS = ('no', 'one', 'two', 'three', 'four')

# Why a sentence is in the list it is in (`SamplePainting.visual_kinds`, `contextual_kinds`):
SENTENCE_KINDS = (
    'visual',  # true of the painting, filed as visual
    'contextual',  # the artist, the history of the work: filed as contextual
    'other_work',  # a visual template about objects absent from the painting (another work)
    'other_work_marked',  # the same behind a marker: "In its pendant, ..."
    'fragment',  # 2-5 words cut from a sentence of its list
    'misfiled',  # a sentence of the other list (label noise)
    'long',  # contextual facts run together past 60 words
    'no_words',  # punctuation only ("—"): non-empty, but no word survives tokenisation
)
_ORDINARY_KINDS = ('visual', 'contextual')  # the kinds noise may turn into another one
_OTHER_WORK_RATE = 0.125  # of contextual sentences
_OTHER_WORK_MARKERS = ('In its pendant, ', 'In a preparatory drawing, ',
                       'In the first version of the picture, ', 'In a copy by a pupil, ',
                       'On the reverse of the panel, ')
_FRAGMENT_RATE = 0.03  # of ordinary sentences
_MISFILED_RATE = 0.025  # of ordinary sentences
_LONG_RATE = 0.04  # of paintings with a contextual sentence: one becomes a run-on sentence
_LONG_WORDS = 60  # a run-on sentence has more (whitespace-separated) words than this
_NO_WORDS_RATE = 0.02  # of paintings: one sentence of punctuation only
_NO_WORDS = ('—', '–', '…', '* * *', '(?)', '"')


@dataclasses.dataclass(frozen=True)
class SamplePainting:
  """One painting of the sample corpus, with everything the builder's `sample` config needs."""
  id: str
  title: str
  year: int | None
  split: str  # 'train' | 'val' | 'test', as in artpedia.json
  img_url: str
  visual_sentences: list[str]
  contextual_sentences: list[str]
  visual_kinds: tuple[str, ...]  # why each sentence is in its list: one of SENTENCE_KINDS
  contextual_kinds: tuple[str, ...]
  image: Image.Image  # RGB
  features: np.ndarray  # float32 [R, FEATURE_DIM]
  boxes: np.ndarray  # float32 [R, 4] (y0, x0, y1, x1) in [0, 1]


@dataclasses.dataclass(frozen=True)
class _Object:
  shape: str
  colour: str
  size: str
  cx: float  # centre and radius in pixels
  cy: float
  radius: float
  area: int  # index into AREAS


@dataclasses.dataclass(frozen=True)
class _Background:
  kind: str
  colours: tuple[str, ...]  # one for 'plain'; (first, second) otherwise, sky first
  horizon: float  # height of the horizon as a fraction of the image ('horizon' only)
  stripe_width: int  # pixels ('... stripes' only)


@dataclasses.dataclass(frozen=True)
class _Artist:
  name: str
  surname: str
  nationality: str
  born: int
  died: int
  movement: str
  city: str


@dataclasses.dataclass(frozen=True)
class _World:
  """What the contextual sentences talk about, shared by all paintings of one seed."""
  artists: tuple[_Artist, ...]
  museums: tuple[str, ...]
  collectors: tuple[str, ...]
  exhibitions: tuple[str, ...]


_Sentence = tuple[str, str]  # (text, kind), kind one of SENTENCE_KINDS


def _pick(rng: np.random.Generator, options):
  return options[int(rng.integers(len(options)))]


def _capitalise(text: str) -> str:
  return text[0].upper() + text[1:]


# ----------------------------------------------------------------------------- the scene


def _canvas_size(rng: np.random.Generator) -> tuple[int, int]:
  """(width, height): longer side 256-384 px, aspect ratio between 3:5 and 5:3."""
  longer = int(rng.integers(256, 385))
  shorter = int(round(longer / math.exp(rng.uniform(0, math.log(5 / 3)))))
  return (longer, shorter) if rng.random() < 0.5 else (shorter, longer)


def _background(rng: np.random.Generator) -> _Background:
  kind = _pick(rng, BACKGROUND_KINDS)
  names = list(BACKGROUND_COLOURS)
  first, second = (names[i] for i in rng.choice(len(names), 2, replace=False))
  return _Background(kind=kind, colours=(first,) if kind == 'plain' else (first, second),
                     horizon=float(rng.uniform(0.35, 0.7)),
                     stripe_width=int(rng.integers(12, 41)))


def _contrasting_colours(background: _Background) -> list[str]:
  def distance(a, b):
    return math.dist(COLOURS[a], BACKGROUND_COLOURS[b])
  return [c for c in COLOURS if all(distance(c, b) >= _MIN_CONTRAST for b in background.colours)]


def _objects(rng: np.random.Generator, width: int, height: int,
             kinds: list[tuple[str, str]]) -> list[_Object]:
  """1-4 objects of distinct (shape, colour) `kinds`, kept apart when the canvas allows it."""
  count = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.3, 0.25, 0.2]))
  objects = []
  for k in rng.choice(len(kinds), count, replace=False):
    shape, colour = kinds[k]
    size = _pick(rng, SIZES)
    fraction = rng.uniform(0.08, 0.11) if size == 'small' else rng.uniform(0.16, 0.22)
    radius = float(fraction * min(width, height))
    for _ in range(30):
      cx = float(rng.uniform(radius, width - radius))
      cy = float(rng.uniform(radius, height - radius))
      if all(math.dist((cx, cy), (o.cx, o.cy)) > 1.05 * (radius + o.radius) for o in objects):
        break
    area = 3 * min(int(3 * cy / height), 2) + min(int(3 * cx / width), 2)
    objects.append(_Object(shape, colour, size, cx, cy, radius, area))
  return objects


def _background_pixels(background: _Background, width: int, height: int) -> np.ndarray:
  """Every background varies along one axis only: colour one line, then repeat it."""
  colours = np.array([BACKGROUND_COLOURS[c] for c in background.colours], np.float32)
  first, second = colours[0], colours[-1]
  along_x = background.kind == 'vertical stripes'
  position = np.arange(width if along_x else height)[:, None]
  if background.kind == 'plain':
    line = np.broadcast_to(first, (len(position), 3))
  elif background.kind == 'gradient':
    t = position / max(len(position) - 1, 1)
    line = (1 - t) * first + t * second
  elif background.kind == 'horizon':
    line = np.where(position < background.horizon * height, first, second)
  else:
    line = np.where((position // background.stripe_width) % 2 == 1, second, first)
  line = line.round().astype(np.uint8)
  pixels = line[None, :, :] if along_x else line[:, None, :]
  return np.ascontiguousarray(np.broadcast_to(pixels, (height, width, 3)))


def _outline(obj: _Object) -> list[tuple[float, float]] | None:
  unit = _UNIT_OUTLINES[obj.shape]
  if unit is None:
    return None
  return [(obj.cx + obj.radius * x, obj.cy + obj.radius * y) for x, y in unit]


def _pixel_box(obj: _Object) -> tuple[float, float, float, float]:
  """(x0, y0, x1, y1) in pixels: the tight box of what is drawn."""
  points = _outline(obj)
  if points is None:
    r = obj.radius
    return obj.cx - r, obj.cy - r, obj.cx + r, obj.cy + r
  xs, ys = zip(*points)
  return min(xs), min(ys), max(xs), max(ys)


def _draw(width: int, height: int, background: _Background,
          objects: list[_Object]) -> Image.Image:
  image = Image.fromarray(_background_pixels(background, width, height), 'RGB')
  draw = ImageDraw.Draw(image)
  for obj in objects:
    colour = COLOURS[obj.colour]
    points = _outline(obj)
    if points is not None:
      draw.polygon(points, fill=colour)
    elif obj.shape == 'ring':
      draw.ellipse(_pixel_box(obj), outline=colour, width=max(3, int(obj.radius * 0.35)))
    else:
      draw.ellipse(_pixel_box(obj), fill=colour)
  return image


# --------------------------------------------------------------------------- the regions


@functools.cache
def _attribute_index() -> dict[tuple[str, str], int]:
  groups = (('region', ('object', 'background')), ('shape', SHAPES), ('colour', COLOURS),
            ('size', SIZES), ('area', AREAS), ('background', BACKGROUND_KINDS),
            ('background colour', BACKGROUND_COLOURS))
  pairs = [(group, value) for group, values in groups for value in values]
  return {pair: i for i, pair in enumerate(pairs)}


@functools.cache
def _projection() -> np.ndarray:
  """The "detector": one fixed matrix for every seed, so features mean the same everywhere."""
  rng = np.random.default_rng(_PROJECTION_SEED)
  matrix = rng.standard_normal((len(_attribute_index()), FEATURE_DIM), dtype=np.float32)
  return matrix / 2  # an object has five active attributes: signal std ~1.1 per dimension


def _multi_hot(pairs: Iterable[tuple[str, str]]) -> np.ndarray:
  index = _attribute_index()
  vector = np.zeros(len(index), np.float32)
  vector[[index[p] for p in pairs]] = 1.0
  return vector


def _background_boxes(rng: np.random.Generator,
                      background: _Background) -> list[tuple[tuple[float, ...], tuple[str, ...]]]:
  """2-4 (box (y0, x0, y1, x1), colours seen in it): the whole scene, or sky and ground."""
  if background.kind == 'horizon':
    sky, ground = background.colours
    boxes = [((0.0, 0.0, background.horizon, 1.0), (sky,)),
             ((background.horizon, 0.0, 1.0, 1.0), (ground,))]
  else:
    boxes = [((0.0, 0.0, 1.0, 1.0), background.colours)]
  count = int(rng.integers(2, 5))
  while len(boxes) < count:
    h, w = rng.uniform(0.3, 0.8, size=2)
    y0, x0 = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w)
    boxes.append(((y0, x0, y0 + h, x0 + w), background.colours))
  return boxes


def _regions(rng: np.random.Generator, width: int, height: int, background: _Background,
             objects: list[_Object]) -> tuple[np.ndarray, np.ndarray]:
  """(features [R, FEATURE_DIM], boxes [R, 4] (y0, x0, y1, x1) in [0, 1]), in random order."""
  attributes, boxes = [], []
  for obj in objects:
    attributes.append(_multi_hot([('region', 'object'), ('shape', obj.shape),
                                  ('colour', obj.colour), ('size', obj.size),
                                  ('area', AREAS[obj.area])]))
    x0, y0, x1, y1 = _pixel_box(obj)
    boxes.append((y0 / height, x0 / width, y1 / height, x1 / width))
  for box, colours in _background_boxes(rng, background):
    attributes.append(_multi_hot([('region', 'background'), ('background', background.kind)]
                                 + [('background colour', c) for c in colours]))
    boxes.append(box)
  order = rng.permutation(len(boxes))
  signal = np.stack(attributes)[order] @ _projection()
  noise = rng.standard_normal(signal.shape, dtype=np.float32) * FEATURE_NOISE
  boxes = np.clip(np.array(boxes, np.float32)[order], 0.0, 1.0)
  return (signal + noise).astype(np.float32), boxes


# -------------------------------------------------------------------- visual sentences


def _a(phrase: str) -> str:
  return f'an {phrase}' if phrase[0] in 'aeiou' else f'a {phrase}'


def _named(obj: _Object, with_size: bool = False) -> str:
  return f'{obj.size} {obj.colour} {obj.shape}' if with_size else f'{obj.colour} {obj.shape}'


def _placement_sentence(rng: np.random.Generator, obj: _Object) -> str:
  placement, area = _PLACEMENTS[obj.area], AREAS[obj.area]
  templates = (
      f'a {_named(obj, True)} {_pick(rng, ("appears", "is painted", "sits", "floats"))} '
      f'{placement}.',
      f'{placement}, the painter set a {_named(obj, True)}.',
      f'a {_named(obj, True)} '
      f'{"dominates" if obj.size == "large" else "occupies"} the {area} of the canvas.',
  )
  return _pick(rng, templates)


def _colour_sentence(rng: np.random.Generator, obj: _Object) -> str:
  size_phrase = 'rather small' if obj.size == 'small' else 'quite large'
  templates = (
      f'the {obj.shape} {_PLACEMENTS[obj.area]} is painted in '
      f'{_pick(rng, ("bright", "flat", "solid", "pure"))} {obj.colour}.',
      f'{_a(_named(obj))}, {size_phrase}, can be seen {_PLACEMENTS[obj.area]}.',
      f'the {obj.size} {obj.shape} is rendered in {obj.colour}.',
  )
  return _pick(rng, templates)


def _listing(objects: list[_Object]) -> str:
  names = [_a(_named(o)) for o in objects]
  return ', '.join(names[:-1]) + ' and ' + names[-1]


def _count_sentence(rng: np.random.Generator, objects: list[_Object]) -> str:
  if len(objects) == 1:
    obj = objects[0]
    return _pick(rng, (f'a single {_named(obj)} is the only figure in the picture.',
                       f'the composition contains just one {obj.size} {obj.shape}.'))
  count = _COUNT_WORDS[len(objects)]
  return _pick(rng, (f'the canvas shows {count} geometric figures.',
                     f'{count} shapes are arranged on the picture surface.',
                     f'the picture contains {count} objects: {_listing(objects)}.'))


def _relation(a: _Object, b: _Object) -> str:
  """Where `a` is with respect to `b`, along the axis on which they differ most."""
  dx, dy = b.cx - a.cx, b.cy - a.cy
  if abs(dx) >= abs(dy):
    return 'to the left of' if dx > 0 else 'to the right of'
  return 'above' if dy > 0 else 'below'


def _relation_sentence(rng: np.random.Generator, a: _Object, b: _Object) -> str:
  if rng.random() < 0.5:
    a, b = b, a
  relation = _relation(a, b)
  templates = (f'{_a(_named(a))} stands {relation} {_a(_named(b))}.',
               f'the {_named(a)} is placed {relation} the {_named(b)}.',
               f'{relation} the {_named(b)} the artist painted a {_named(a, True)}.')
  return _pick(rng, templates)


def _background_sentence(rng: np.random.Generator, background: _Background) -> str:
  first, second = background.colours[0], background.colours[-1]
  if background.kind == 'plain':
    templates = (f'the figures are set against a plain {first} background.',
                 f'the background is a flat field of {first}.',
                 f'behind the shapes lies an even {first} ground.')
  elif background.kind == 'gradient':
    templates = (f'the background fades from {first} at the top to {second} at the bottom.',
                 f'a soft gradient of {first} and {second} fills the background.')
  elif background.kind == 'horizon':
    height = ('low' if background.horizon > 0.55
              else 'high' if background.horizon < 0.45 else 'level')
    templates = (f'{_a(first)} sky meets {second} ground at a {height} horizon.',
                 f'the horizon divides {_a(first)} sky from the {second} land below.',
                 f'the shapes float above {_a(second)} landscape under {_a(first)} sky.')
  else:
    orientation = background.kind.split()[0]
    templates = (f'the scene is set against {orientation} stripes of {first} and {second}.',
                 f'broad {orientation} bands of {first} and {second} cover the background.')
  return _pick(rng, templates)


def _contrast_sentence(obj: _Object, background: _Background, height: int) -> str:
  if background.kind == 'horizon':
    in_sky = obj.cy < background.horizon * height
    setting = (f'the {background.colours[0]} sky' if in_sky
               else f'the {background.colours[1]} ground')
  elif background.kind == 'plain':
    setting = f'the {background.colours[0]} background'
  else:
    setting = 'the graded background' if background.kind == 'gradient' else 'the striped background'
  return f'the {_named(obj)} stands out against {setting}.'


def _composition_sentence(objects: list[_Object], width: int, height: int) -> str:
  if len(objects) == 1:
    return f'most of the canvas is left empty around the {objects[0].shape}.'
  xs = [o.cx / width for o in objects]
  ys = [o.cy / height for o in objects]
  spread = (max(xs) - min(xs)) * (max(ys) - min(ys)) > 0.15 or max(xs) - min(xs) > 0.6
  arrangement = 'spread across the canvas' if spread else 'clustered closely together'
  return f'the {_COUNT_WORDS[len(objects)]} figures are {arrangement}.'


def _visual_sentences(rng: np.random.Generator, width: int, height: int,
                      background: _Background, objects: list[_Object]) -> list[str]:
  """1-6 sentences (about 3.1 on average) drawn from everything true of the picture."""
  pool = [_placement_sentence(rng, o) for o in objects]
  pool += [_colour_sentence(rng, o) for o in objects]
  pool += [_relation_sentence(rng, a, b) for a, b in itertools.combinations(objects, 2)]
  pool += [_count_sentence(rng, objects), _background_sentence(rng, background),
           _contrast_sentence(_pick(rng, objects), background, height),
           _composition_sentence(objects, width, height)]
  count = min(1 + int(rng.binomial(5, 0.42)), len(pool))
  return [_capitalise(pool[i]) for i in rng.choice(len(pool), count, replace=False)]


# ---------------------------------------------------------------- contextual sentences


def _world(rng: np.random.Generator) -> _World:
  surnames = [s + e for s in _SURNAME_STEMS for e in _SURNAME_ENDINGS]

  def person():
    surname = _pick(rng, surnames)
    return f'{_pick(rng, _FIRST_NAMES)} {surname}', surname

  def place(patterns, count):
    return tuple(_pick(rng, patterns).format(city=_pick(rng, _CITIES), surname=person()[1])
                 for _ in range(count))

  artists = []
  for _ in range(60):
    name, surname = person()
    born = int(rng.integers(1780, 1931))
    artists.append(_Artist(name, surname, _pick(rng, _NATIONALITIES), born,
                           born + int(rng.integers(40, 91)), _pick(rng, _MOVEMENTS),
                           _pick(rng, _CITIES)))
  return _World(artists=tuple(artists), museums=place(_MUSEUM_PATTERNS, 25),
                collectors=tuple(person()[0] for _ in range(40)),
                exhibitions=place(_EXHIBITION_PATTERNS, 12))


def _motif(rng: np.random.Generator, objects: list[_Object]) -> tuple[str, str]:
  """(colour, shape) of some other work: half the time one that is also in this painting."""
  if rng.random() < 0.5:
    obj = _pick(rng, objects)
    return obj.colour, obj.shape
  return _pick(rng, tuple(COLOURS)), _pick(rng, SHAPES)


# In the order a Wikipedia article would tell them: the work, the artist, its history.
_CONTEXTUAL_TEMPLATES = (
    '{title} is a painting by the {nationality} artist {artist}, completed {when}.',
    '{artist} ({born}–{died}) was one of the leading figures of {movement}.',
    '{artist} trained at the academy of {city} under {other_artist}.',
    'According to the artist\'s letters, the picture was begun in {city} and finished the '
    'following {season}.',
    'The painting was commissioned by {collector}, a {profession} from {other_city}.',
    '{artist} painted several versions of the {colour} {shape} motif during the {decade}s.',
    'The artist\'s earlier painting of {a_motif} hangs in {other_museum}.',
    'The work was first shown at {exhibition} in {exhibition_year}.',
    'Critics at {exhibition} dismissed the canvas as {verdict}.',
    '{a_motif} by {other_artist} was hung beside it at {exhibition}.',
    '{other_artist}, a friend of the painter, admired the {colour} tones of the series.',
    'It is one of {works} works that {artist} sent to {exhibition}.',
    'The picture remained in the studio until {surname}\'s death in {died}.',
    'The title was chosen by the dealer {collector} when the work was sold in {sale_year}.',
    'The work was sold at auction in {sale_year} for a record price.',
    'It was acquired by {museum} in {acquisition_year} from the estate of {collector}.',
    'The painting is now in the collection of {museum}.',
    'In {loan_year} the canvas was lent to {other_museum} for a retrospective of {artist}.',
    'When the canvas was restored in {restoration_year}, X-rays revealed {a_motif} '
    'hidden beneath the paint.',
    'Art historians link the work to the teaching of {other_artist}.',
    'In {stamp_year} the painting was reproduced on a postage stamp.',
)


def _contextual_fields(rng: np.random.Generator, world: _World, artist: _Artist, title: str,
                       year: int, year_known: bool, objects: list[_Object]) -> dict[str, Any]:
  colour, shape = _motif(rng, objects)
  museum, other_museum = (world.museums[i]
                          for i in rng.choice(len(world.museums), 2, replace=False))
  return dict(
      title=title, artist=artist.name, surname=artist.surname, nationality=artist.nationality,
      born=artist.born, died=artist.died, movement=artist.movement, city=artist.city,
      when=f'in {year}' if year_known else 'at an unknown date',
      other_artist=_pick(rng, [a for a in world.artists if a != artist]).name,
      other_city=_pick(rng, _CITIES), season=_pick(rng, _SEASONS),
      collector=_pick(rng, world.collectors), profession=_pick(rng, _PROFESSIONS),
      colour=colour, shape=shape, a_motif=_a(f'{colour} {shape}'), decade=10 * (year // 10),
      museum=museum, other_museum=other_museum, exhibition=_pick(rng, world.exhibitions),
      exhibition_year=year + int(rng.integers(0, 4)), verdict=_pick(rng, _VERDICTS),
      works=int(rng.integers(3, 13)), sale_year=year + int(rng.integers(1, 30)),
      acquisition_year=year + int(rng.integers(5, 45)),
      loan_year=year + int(rng.integers(20, 45)),
      restoration_year=max(year + 40, int(rng.integers(1960, 2016))),
      stamp_year=max(year + 30, int(rng.integers(1950, 2011))))


def _contextual_count(rng: np.random.Generator) -> int:
  """0 for one painting in ten, else 1 + Poisson: about 6.5 on average, as in Artpedia."""
  if rng.random() < 0.1:
    return 0
  return min(1 + int(rng.poisson(6.0)), len(_CONTEXTUAL_TEMPLATES))


def _contextual_sentences(rng: np.random.Generator, fields: dict[str, Any],
                          other_work: Callable[[], _Sentence]) -> list[_Sentence]:
  """Facts in article order, about one in eight replaced by `other_work()`."""
  chosen = sorted(rng.choice(len(_CONTEXTUAL_TEMPLATES), _contextual_count(rng), replace=False))
  return [other_work() if rng.random() < _OTHER_WORK_RATE
          else (_capitalise(_CONTEXTUAL_TEMPLATES[i].format(**fields)), 'contextual')
          for i in chosen]


def _absent_kinds(objects: list[_Object]) -> list[tuple[str, str]]:
  present = {(o.shape, o.colour) for o in objects}
  return [kind for kind in itertools.product(SHAPES, COLOURS) if kind not in present]


def _other_work_sentence(rng: np.random.Generator, width: int, height: int,
                         objects: list[_Object]) -> _Sentence:
  """A visual template about another work (a pendant, a study): contextual, and only the
  image tells, since every (shape, colour) it names is absent from this painting. Half
  start with a marker ("In its pendant, ..."); half, like Artpedia's ambiguous sentences,
  have none."""
  others = _objects(rng, width, height, _absent_kinds(objects))
  pool = [_placement_sentence(rng, o) for o in others]
  pool += [_colour_sentence(rng, o) for o in others]
  pool += [_relation_sentence(rng, a, b) for a, b in itertools.combinations(others, 2)]
  sentence = _pick(rng, pool)
  if rng.random() < 0.5:
    return _pick(rng, _OTHER_WORK_MARKERS) + sentence, 'other_work_marked'
  return _capitalise(sentence), 'other_work'


# ------------------------------------------------------------------ noise in the labels


def _fragment(rng: np.random.Generator, sentence: str) -> str:
  """2-5 words of `sentence`, its head or its tail, as a bad sentence splitter leaves them."""
  words = sentence.split()
  length = int(rng.integers(2, max(3, min(6, len(words) - 1))))
  return ' '.join(words[:length] if rng.random() < 0.5 else words[-length:])


def _fragmented(rng: np.random.Generator, sentences: list[_Sentence]) -> list[_Sentence]:
  cut = rng.random(len(sentences)) < _FRAGMENT_RATE
  return [(_fragment(rng, text), 'fragment') if c and kind in _ORDINARY_KINDS else (text, kind)
          for (text, kind), c in zip(sentences, cut)]


def _run_on_sentence(rng: np.random.Generator, fields: dict[str, Any]) -> str:
  """Facts joined by semicolons past `_LONG_WORDS` words: a paragraph that lost its stops."""
  clauses = []
  for i in rng.permutation(len(_CONTEXTUAL_TEMPLATES)):
    clauses.append(_CONTEXTUAL_TEMPLATES[i].format(**fields).removesuffix('.'))
    if sum(len(clause.split()) for clause in clauses) > _LONG_WORDS:
      break
  return _capitalise('; '.join(clauses)) + '.'


def _with_run_on_sentence(rng: np.random.Generator, contextual: list[_Sentence],
                          fields: dict[str, Any]) -> list[_Sentence]:
  slots = [i for i, (_, kind) in enumerate(contextual) if kind == 'contextual']
  if not slots or rng.random() >= _LONG_RATE:
    return contextual
  slot = _pick(rng, slots)
  return contextual[:slot] + [(_run_on_sentence(rng, fields), 'long')] + contextual[slot + 1:]


def _misfiled(rng: np.random.Generator, sentences: list[_Sentence],
              keep_one: bool = False) -> tuple[list[_Sentence], list[_Sentence]]:
  """(the sentences that stay, the ordinary ones that go to the other list as 'misfiled')."""
  ordinary = np.array([kind in _ORDINARY_KINDS for _, kind in sentences], bool)
  moved = (rng.random(len(sentences)) < _MISFILED_RATE) & ordinary
  if keep_one and moved.all():
    moved[:1] = False
  stay = [sentence for sentence, m in zip(sentences, moved) if not m]
  return stay, [(text, 'misfiled') for (text, _), m in zip(sentences, moved) if m]


def _insert_randomly(rng: np.random.Generator, sentences: list[_Sentence],
                     extra: list[_Sentence]) -> list[_Sentence]:
  sentences = list(sentences)
  for sentence in extra:
    sentences.insert(int(rng.integers(len(sentences) + 1)), sentence)
  return sentences


def _with_label_noise(rng: np.random.Generator, visual: list[_Sentence],
                      contextual: list[_Sentence],
                      fields: dict[str, Any]) -> tuple[list[_Sentence], list[_Sentence]]:
  """Artpedia's noise: fragments, run-on and punctuation-only sentences, misfiled labels.
  Misfiling never empties the visual list: every painting keeps a visual sentence."""
  visual, contextual = _fragmented(rng, visual), _fragmented(rng, contextual)
  contextual = _with_run_on_sentence(rng, contextual, fields)
  visual, to_contextual = _misfiled(rng, visual, keep_one=True)
  contextual, to_visual = _misfiled(rng, contextual)
  visual = _insert_randomly(rng, visual, to_visual)
  contextual = _insert_randomly(rng, contextual, to_contextual)
  if rng.random() < _NO_WORDS_RATE:
    no_words = [(_pick(rng, _NO_WORDS), 'no_words')]
    if rng.random() < 1 / 3:
      visual = _insert_randomly(rng, visual, no_words)
    else:
      contextual = _insert_randomly(rng, contextual, no_words)
  return visual, contextual


# ------------------------------------------------------------------------ the painting


def _title(rng: np.random.Generator, objects: list[_Object], background: _Background,
           year: int | None) -> str:
  obj = _pick(rng, objects)
  colour, shape = obj.colour.title(), obj.shape.title()
  titles = [f'Composition with {colour} {shape}',
            f'{colour} {shape} on {background.colours[0].title()}',
            f'Study No. {int(rng.integers(1, 40))}',
            f'The {_pick(rng, _TITLE_ADJECTIVES)} {_pick(rng, _TITLE_NOUNS)}',
            f'{_pick(rng, _TITLE_NOUNS)} at {_pick(rng, _CITIES)}']
  if year is not None:
    titles.append(f'Untitled ({year})')
  return _pick(rng, titles)


def _file_format(index: int) -> tuple[str, str]:
  """(extension, PIL mode) of painting `index` on disk: mostly RGB JPEG, with the odd cases
  real Wikimedia files bring (PNG, an alpha channel, a black-and-white reproduction), so
  that the builder's conversions are exercised. `SamplePainting.image` is always RGB."""
  if index % 20 == 5:
    return 'png', 'RGBA'
  if index % 20 == 15:
    return 'jpg', 'L'
  return ('png', 'RGB') if index % 10 == 0 else ('jpg', 'RGB')


def _img_url(artist: _Artist, title: str, extension: str) -> str:
  """A Wikimedia Commons upload URL, laid out as Commons does (md5 of the file name)."""
  filename = f'{artist.name} - {title}.{extension}'.replace(' ', '_')
  digest = hashlib.md5(filename.encode('utf-8')).hexdigest()
  return (f'https://upload.wikimedia.org/wikipedia/commons/{digest[0]}/{digest[:2]}/'
          f'{urllib.parse.quote(filename)}')


def _split_names(rng: np.random.Generator, num_paintings: int) -> list[str]:
  """80/10/10, exactly, with at least one validation and one test painting from 3 on."""
  held_out = max(1, round(num_paintings / 10)) if num_paintings >= 3 else 0
  names = ['val'] * held_out + ['test'] * held_out
  names += ['train'] * (num_paintings - len(names))
  return [names[i] for i in rng.permutation(num_paintings)]


def _painting(index: int, seed: int, split: str, world: _World) -> SamplePainting:
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
  width, height = _canvas_size(rng)
  background = _background(rng)
  objects = _objects(rng, width, height,
                     list(itertools.product(SHAPES, _contrasting_colours(background))))
  artist = _pick(rng, world.artists)
  year = int(rng.integers(artist.born + 18, min(artist.died, 1975)))
  year_known = rng.random() >= 0.1
  title = _title(rng, objects, background, year if year_known else None)
  features, boxes = _regions(rng, width, height, background, objects)
  fields = _contextual_fields(rng, world, artist, title, year, year_known, objects)
  visual = [(text, 'visual')
            for text in _visual_sentences(rng, width, height, background, objects)]
  contextual = _contextual_sentences(
      rng, fields, functools.partial(_other_work_sentence, rng, width, height, objects))
  visual, contextual = _with_label_noise(rng, visual, contextual, fields)
  return SamplePainting(
      id=str(index), title=title, year=year if year_known else None, split=split,
      img_url=_img_url(artist, title, _file_format(index)[0]),
      visual_sentences=[text for text, _ in visual],
      contextual_sentences=[text for text, _ in contextual],
      visual_kinds=tuple(kind for _, kind in visual),
      contextual_kinds=tuple(kind for _, kind in contextual),
      image=_draw(width, height, background, objects), features=features, boxes=boxes)


def generate(num_paintings: int = 1000, seed: int = 0) -> Iterator[SamplePainting]:
  """Yields the sample corpus lazily; the same (num_paintings, seed) gives the same paintings.

  Painting `i` depends only on `seed` and `i` (its split also on `num_paintings`). Arguments
  are checked now, not at the first painting.
  """
  if num_paintings < 0 or seed < 0:
    raise ValueError(f'num_paintings and seed must be >= 0, got num_paintings={num_paintings}, '
                     f'seed={seed}.')
  world_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
  world = _world(world_rng)
  splits = _split_names(world_rng, num_paintings)
  return (_painting(index, seed, splits[index], world) for index in range(num_paintings))


# ------------------------------------------------------------------------ on disk


def _annotation(painting: SamplePainting) -> dict[str, Any]:
  return {'title': painting.title, 'img_url': painting.img_url, 'year': painting.year,
          'visual_sentences': painting.visual_sentences,
          'contextual_sentences': painting.contextual_sentences, 'split': painting.split}


# Pillow writes neither format with a timestamp: the bytes depend on the pixels only.
_ENCODERS = {'jpg': ('JPEG', {'quality': 90}), 'png': ('PNG', {'optimize': False})}


def _write_image(path_without_extension: str, image: Image.Image, index: int) -> None:
  extension, mode = _file_format(index)
  image_format, options = _ENCODERS[extension]
  # RGB -> RGBA is fully opaque: the same picture, with an alpha channel.
  image.convert(mode).save(f'{path_without_extension}.{extension}', format=image_format,
                           **options)


def _pixel_boxes(painting: SamplePainting) -> np.ndarray:
  """[R, 4] (x0, y0, x1, y1) in pixels, as bottom-up attention writes them."""
  width, height = painting.image.size
  y0, x0, y1, x1 = painting.boxes.T
  return np.stack([x0 * width, y0 * height, x1 * width, y1 * height], axis=1).astype(np.float32)


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


def write_folder(out_dir: str | os.PathLike[str], num_paintings: int = 1000, seed: int = 0,
                 region_format: str = 'npz') -> None:
  """Writes the corpus in the real on-disk formats (what `images`/`regions` configs read).

  `out_dir/artpedia.json`, `out_dir/images/<id>.jpg|png`, and either
  `out_dir/regions/<id>.npz` (keys `features`, `boxes` in pixels (x0, y0, x1, y1),
  `image_w`, `image_h`) or `out_dir/regions/features.tsv` (bottom-up-attention TSV).
  `out_dir` must be empty or absent, so that no file of an earlier corpus (or of the other
  region format) is left beside the new one.
  """
  if region_format not in REGION_FORMATS:
    raise ValueError(f'region_format must be one of {REGION_FORMATS}, got {region_format!r}.')
  if os.path.isdir(out_dir) and os.listdir(out_dir):
    raise FileExistsError(f'{out_dir} is not empty: write the sample corpus into a new or '
                          'empty folder.')
  images_dir, regions_dir = os.path.join(out_dir, 'images'), os.path.join(out_dir, 'regions')
  os.makedirs(images_dir, exist_ok=True)
  os.makedirs(regions_dir, exist_ok=True)
  annotations = {}
  with contextlib.ExitStack() as stack:
    tsv = (stack.enter_context(open(os.path.join(regions_dir, 'features.tsv'), 'w',
                                    encoding='ascii', newline='\n'))
           if region_format == 'tsv' else None)
    for index, painting in enumerate(generate(num_paintings, seed)):
      annotations[painting.id] = _annotation(painting)
      _write_image(os.path.join(images_dir, painting.id), painting.image, index)
      if tsv is not None:
        tsv.write(_tsv_row(painting))
      else:
        _write_npz(os.path.join(regions_dir, f'{painting.id}.npz'), painting)
  with open(os.path.join(out_dir, 'artpedia.json'), 'w', encoding='utf-8') as f:
    json.dump(annotations, f, ensure_ascii=False, indent=1)
    f.write('\n')


# ------------------------------------------------------------------------ statistics


def _words(sentence: str) -> list[str]:
  return re.findall(r"[^\W_]+(?:'[^\W_]+)?", sentence.lower())


def corpus_statistics(paintings: Iterable[SamplePainting]) -> dict[str, Any]:
  """Counts the README reports next to Artpedia's own.

  Any objects with the same text fields are accepted, so the figures of real annotations
  can be computed the same way; `sentence_kinds` (sentences of each of SENTENCE_KINDS, per
  list) counts only generated paintings, the only ones that know why a sentence is where.
  """
  per_split = dict.fromkeys(SPLITS, 0)
  num_paintings = num_visual = num_contextual = without_contextual = num_words = 0
  without_words = long_sentences = 0
  vocabulary = set()
  kinds = {'visual': dict.fromkeys(SENTENCE_KINDS, 0),
           'contextual': dict.fromkeys(SENTENCE_KINDS, 0)}
  for painting in paintings:
    num_paintings += 1
    per_split[painting.split] = per_split.get(painting.split, 0) + 1
    num_visual += len(painting.visual_sentences)
    num_contextual += len(painting.contextual_sentences)
    without_contextual += not painting.contextual_sentences
    if isinstance(painting, SamplePainting):
      for kind in painting.visual_kinds:
        kinds['visual'][kind] += 1
      for kind in painting.contextual_kinds:
        kinds['contextual'][kind] += 1
    for sentence in itertools.chain(painting.visual_sentences, painting.contextual_sentences):
      words = _words(sentence)
      num_words += len(words)
      without_words += not words
      long_sentences += len(words) > _LONG_WORDS
      vocabulary.update(words)
  num_sentences = num_visual + num_contextual
  return {
      'num_paintings': num_paintings,
      'paintings_per_split': per_split,
      'visual_sentences': num_visual,
      'contextual_sentences': num_contextual,
      'visual_per_painting': num_visual / max(num_paintings, 1),
      'contextual_per_painting': num_contextual / max(num_paintings, 1),
      'paintings_without_contextual': without_contextual,
      'vocabulary_size': len(vocabulary),
      'mean_sentence_length': num_words / max(num_sentences, 1),
      f'sentences_over_{_LONG_WORDS}_words': long_sentences,
      'sentences_without_words': without_words,
      'sentence_kinds': kinds,
  }


# ------------------------------------------------------------------------ command line


def _define_flags() -> None:
  # Defined only when run as a program, so importing this module (the builder does) adds no
  # flags that could clash with those of the importing program.
  flags.DEFINE_string('out', None, 'Folder to write artpedia.json, images/ and regions/ into.')
  flags.DEFINE_integer('num_paintings', 1000, 'Number of paintings to generate.')
  flags.DEFINE_integer('seed', 0, 'Seed: the same seed writes the same bytes.')
  flags.DEFINE_enum('region_format', 'npz', REGION_FORMATS,
                    'npz: one regions/<id>.npz per image; tsv: one bottom-up-attention '
                    'regions/features.tsv.')
  flags.mark_flag_as_required('out')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = flags.FLAGS
  write_folder(config.out, config.num_paintings, config.seed, config.region_format)
  statistics = corpus_statistics(generate(config.num_paintings, config.seed))
  print(f'Wrote {config.num_paintings} paintings to {config.out}')
  print(json.dumps(statistics, indent=2))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
