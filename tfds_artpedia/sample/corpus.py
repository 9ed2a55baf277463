"""The `sample` corpus: Artpedia-shaped paintings that a model can learn from on a CPU.

Real Artpedia needs a download, images fetched from Wikimedia and a detector run before
the first experiment. The sample corpus replaces all three with a procedural world, so
that the whole system (build, train, evaluate) runs anywhere in minutes and its tests have
data. A painting is a picture with its regions (`sample_scene`), its visual and contextual
sentences (`sample_sentences`) with Artpedia's label noise (`sample_noise`), a title, a
year and a Wikimedia-style URL.

Sizes and ratios follow Artpedia's (about 3.1 visual and 6.5 contextual sentences per
painting, some paintings with no contextual sentence, 80/10/10 splits). Everything is a
pure function of the seed: painting `i` draws from its own random stream, so `generate`
is lazy and cheap.
"""

from collections.abc import Iterator
import dataclasses
import functools
import hashlib
import itertools
import urllib.parse

import numpy as np
from PIL import Image

from tfds_artpedia import errors
from tfds_artpedia.sample import noise as sample_noise
from tfds_artpedia.sample import realistic_sentences
from tfds_artpedia.sample import scene
from tfds_artpedia.sample import sentences
from tfds_artpedia.sample.scene import pick

SPLITS = ('train', 'val', 'test')
_TITLE_ADJECTIVES = ('Quiet', 'Silent', 'Distant', 'Golden', 'Lonely', 'Hidden', 'Northern')
_TITLE_NOUNS = ('Harbour', 'Garden', 'Evening', 'Procession', 'Orchard', 'Tower', 'Meadow')


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


def _title(rng: np.random.Generator, scene_objects: list[scene.SceneObject],
           scene_background: scene.Background, year: int | None) -> str:
  obj = pick(rng, scene_objects)
  colour, shape = obj.colour.title(), obj.shape.title()
  titles = [f'Composition with {colour} {shape}',
            f'{colour} {shape} on {scene_background.colours[0].title()}',
            f'Study No. {int(rng.integers(1, 40))}',
            f'The {pick(rng, _TITLE_ADJECTIVES)} {pick(rng, _TITLE_NOUNS)}',
            f'{pick(rng, _TITLE_NOUNS)} at {pick(rng, sentences.CITIES)}']
  if year is not None:
    titles.append(f'Untitled ({year})')
  return pick(rng, titles)


def file_format(index: int) -> tuple[str, str]:
  """(extension, PIL mode) of painting `index` on disk: mostly RGB JPEG, with the odd cases
  real Wikimedia files bring (PNG, an alpha channel, a black-and-white reproduction), so
  that the builder's conversions are exercised. `SamplePainting.image` is always RGB."""
  if index % 20 == 5:
    return 'png', 'RGBA'
  if index % 20 == 15:
    return 'jpg', 'L'
  return ('png', 'RGB') if index % 10 == 0 else ('jpg', 'RGB')


def _img_url(artist: str, title: str, extension: str) -> str:
  """A Wikimedia Commons upload URL, laid out as Commons does (md5 of the file name)."""
  filename = f'{artist} - {title}.{extension}'.replace(' ', '_')
  digest = hashlib.md5(filename.encode('utf-8')).hexdigest()
  return (f'https://upload.wikimedia.org/wikipedia/commons/{digest[0]}/{digest[:2]}/'
          f'{urllib.parse.quote(filename)}')


def _split_names(rng: np.random.Generator, num_paintings: int) -> list[str]:
  """80/10/10, exactly, with at least one validation and one test painting from 3 on."""
  held_out = max(1, round(num_paintings / 10)) if num_paintings >= 3 else 0
  names = ['val'] * held_out + ['test'] * held_out
  names += ['train'] * (num_paintings - len(names))
  return [names[i] for i in rng.permutation(num_paintings)]


def _scene(rng: np.random.Generator):
  """(width, height, background, objects) of one picture."""
  width, height = scene.canvas_size(rng)
  background = scene.background(rng)
  objects = scene.objects(rng, width, height,
                          list(itertools.product(scene.SHAPES,
                                                 scene.contrasting_colours(background))))
  return width, height, background, objects


def _painting(index: int, seed: int, split: str, world: sentences.World) -> SamplePainting:
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
  width, height, background, objects = _scene(rng)
  artist = pick(rng, world.artists)
  year = int(rng.integers(artist.born + 18, min(artist.died, 1975)))
  year_known = rng.random() >= 0.1
  title = _title(rng, objects, background, year if year_known else None)
  regions = scene.regions(rng, width, height, background, objects)
  fields = sentences.contextual_fields(rng, world, artist, title, year, year_known, objects)
  visual = sentences.visual_sentences(rng, width, height, background, objects)
  contextual = sentences.contextual_sentences(
      rng, fields, functools.partial(sentences.other_work_sentence, rng, width, height,
                                     objects))
  visual, contextual = sample_noise.with_label_noise(
      rng, visual, contextual,
      lambda: [template.format(**fields) for template in sentences.CONTEXTUAL_TEMPLATES])
  return _assembled(index, split, title, year if year_known else None, artist.name, visual,
                    contextual, scene.draw(width, height, background, objects), regions)


def _realistic_painting(index: int, seed: int, split: str,
                        world: realistic_sentences.RealisticWorld) -> SamplePainting:
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
  width, height, background, objects = _scene(rng)
  regions = scene.regions(rng, width, height, background, objects)
  num_visual = 1 + int(rng.binomial(5, 0.42))
  num_contextual = 0 if rng.random() < 0.1 else 1 + int(rng.poisson(6.0))
  text = realistic_sentences.painting_text(rng, world, objects, background, num_visual,
                                           num_contextual)
  visual, contextual = sample_noise.with_label_noise(rng, text.visual, text.contextual,
                                                     text.facts)
  return _assembled(index, split, text.title, text.year, text.painter, visual, contextual,
                    scene.draw(width, height, background, objects), regions)


def _assembled(index: int, split: str, title: str, year: int | None, artist: str,
               visual: list[sentences.Sentence], contextual: list[sentences.Sentence],
               image: Image.Image, regions) -> SamplePainting:
  return SamplePainting(
      id=str(index), title=title, year=year, split=split,
      img_url=_img_url(artist, title, file_format(index)[0]),
      visual_sentences=[text for text, _ in visual],
      contextual_sentences=[text for text, _ in contextual],
      visual_kinds=tuple(kind for _, kind in visual),
      contextual_kinds=tuple(kind for _, kind in contextual),
      image=image, features=regions.features, boxes=regions.boxes)


def generate(num_paintings: int = 1000, seed: int = 0,
             realistic: bool = False) -> Iterator[SamplePainting]:
  """Yields the sample corpus lazily; the same arguments give the same paintings.

  `realistic` selects the `sample_realistic` corpus: the same pictures and regions, with
  sentences of real Artpedia's lengths, vocabulary and label noise
  (`sample_realistic_sentences`). Painting `i` depends only on `seed` and `i` (its split
  also on `num_paintings`). Arguments are checked now, not at the first painting.
  """
  if num_paintings < 0 or seed < 0:
    raise errors.UsageError(f'num_paintings and seed must be >= 0, got '
                            f'num_paintings={num_paintings}, seed={seed}.')
  world_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
  if realistic:
    world, painting = realistic_sentences.world(world_rng), _realistic_painting
  else:
    world, painting = sentences.world(world_rng), _painting
  splits = _split_names(world_rng, num_paintings)
  return (painting(index, seed, splits[index], world) for index in range(num_paintings))
