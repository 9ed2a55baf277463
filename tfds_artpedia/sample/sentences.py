"""The sentences of the `sample` corpus: what is painted, and what is told about the work.

* visual sentences, drawn from everything true of the picture: attributes, counts, spatial
  relations, the background, contrast and composition, in varied templates;
* contextual sentences about invented artists, museums, exhibitions and provenance, in
  the order a Wikipedia article tells them. Some name colours and shapes of *other*
  works (or hidden underdrawings), and about one in eight describes another work (a
  pendant, a study) in the visual templates' own words, half of them without any marker:
  its objects are absent from the painting, so only the image tells it from a visual
  sentence, as the image-aware classifier must.

Each sentence comes with its kind (SENTENCE_KINDS), which says why it is in its list.
"""

from collections.abc import Callable
import dataclasses
import itertools
from typing import Any

import numpy as np

from tfds_artpedia.sample import scene
from tfds_artpedia.sample.scene import SceneObject, Background, pick

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
Sentence = tuple[str, str]  # (text, kind), kind one of SENTENCE_KINDS

PLACEMENTS = ('in the upper left corner', 'at the top', 'in the upper right corner',
              'on the left', 'in the centre', 'on the right', 'in the lower left corner',
              'at the bottom', 'in the lower right corner')  # of scene.AREAS, in order
COUNT_WORDS = ('no', 'one', 'two', 'three', 'four')

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
CITIES = ('Valmora', 'Eastmoor', 'Lindavik', 'Port Aurel', 'Santa Brisa', 'Kestrelholm',
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
_OTHER_WORK_RATE = 0.125  # of contextual sentences
_OTHER_WORK_MARKERS = ('In its pendant, ', 'In a preparatory drawing, ',
                       'In the first version of the picture, ', 'In a copy by a pupil, ',
                       'On the reverse of the panel, ')


@dataclasses.dataclass(frozen=True)
class Artist:
  name: str
  surname: str
  nationality: str
  born: int
  died: int
  movement: str
  city: str


@dataclasses.dataclass(frozen=True)
class World:
  """What the contextual sentences talk about, shared by all paintings of one seed."""
  artists: tuple[Artist, ...]
  museums: tuple[str, ...]
  collectors: tuple[str, ...]
  exhibitions: tuple[str, ...]


def capitalise(text: str) -> str:
  return text[0].upper() + text[1:]


def a(phrase: str) -> str:
  """`phrase` with its indefinite article."""
  return f'an {phrase}' if phrase[0] in 'aeiou' else f'a {phrase}'


# -------------------------------------------------------------------- visual sentences


def _named(obj: SceneObject, with_size: bool = False) -> str:
  return f'{obj.size} {obj.colour} {obj.shape}' if with_size else f'{obj.colour} {obj.shape}'


def _placement_sentence(rng: np.random.Generator, obj: SceneObject) -> str:
  placement, area = PLACEMENTS[obj.area], scene.AREAS[obj.area]
  templates = (
      f'a {_named(obj, True)} {pick(rng, ("appears", "is painted", "sits", "floats"))} '
      f'{placement}.',
      f'{placement}, the painter set a {_named(obj, True)}.',
      f'a {_named(obj, True)} '
      f'{"dominates" if obj.size == "large" else "occupies"} the {area} of the canvas.',
  )
  return pick(rng, templates)


def _colour_sentence(rng: np.random.Generator, obj: SceneObject) -> str:
  size_phrase = 'rather small' if obj.size == 'small' else 'quite large'
  templates = (
      f'the {obj.shape} {PLACEMENTS[obj.area]} is painted in '
      f'{pick(rng, ("bright", "flat", "solid", "pure"))} {obj.colour}.',
      f'{a(_named(obj))}, {size_phrase}, can be seen {PLACEMENTS[obj.area]}.',
      f'the {obj.size} {obj.shape} is rendered in {obj.colour}.',
  )
  return pick(rng, templates)


def _listing(scene_objects: list[SceneObject]) -> str:
  names = [a(_named(o)) for o in scene_objects]
  return ', '.join(names[:-1]) + ' and ' + names[-1]


def _count_sentence(rng: np.random.Generator, scene_objects: list[SceneObject]) -> str:
  if len(scene_objects) == 1:
    obj = scene_objects[0]
    return pick(rng, (f'a single {_named(obj)} is the only figure in the picture.',
                      f'the composition contains just one {obj.size} {obj.shape}.'))
  count = COUNT_WORDS[len(scene_objects)]
  return pick(rng, (f'the canvas shows {count} geometric figures.',
                    f'{count} shapes are arranged on the picture surface.',
                    f'the picture contains {count} objects: {_listing(scene_objects)}.'))


def relation(first: SceneObject, second: SceneObject) -> str:
  """Where `first` is with respect to `second`, along the axis on which they differ most."""
  dx, dy = second.cx - first.cx, second.cy - first.cy
  if abs(dx) >= abs(dy):
    return 'to the left of' if dx > 0 else 'to the right of'
  return 'above' if dy > 0 else 'below'


def _relation_sentence(rng: np.random.Generator, first: SceneObject,
                       second: SceneObject) -> str:
  if rng.random() < 0.5:
    first, second = second, first
  where = relation(first, second)
  templates = (f'{a(_named(first))} stands {where} {a(_named(second))}.',
               f'the {_named(first)} is placed {where} the {_named(second)}.',
               f'{where} the {_named(second)} the artist painted a {_named(first, True)}.')
  return pick(rng, templates)


def _background_sentence(rng: np.random.Generator, scene_background: Background) -> str:
  first, second = scene_background.colours[0], scene_background.colours[-1]
  if scene_background.kind == 'plain':
    templates = (f'the figures are set against a plain {first} background.',
                 f'the background is a flat field of {first}.',
                 f'behind the shapes lies an even {first} ground.')
  elif scene_background.kind == 'gradient':
    templates = (f'the background fades from {first} at the top to {second} at the bottom.',
                 f'a soft gradient of {first} and {second} fills the background.')
  elif scene_background.kind == 'horizon':
    height = ('low' if scene_background.horizon > 0.55
              else 'high' if scene_background.horizon < 0.45 else 'level')
    templates = (f'{a(first)} sky meets {second} ground at a {height} horizon.',
                 f'the horizon divides {a(first)} sky from the {second} land below.',
                 f'the shapes float above {a(second)} landscape under {a(first)} sky.')
  else:
    orientation = scene_background.kind.split()[0]
    templates = (f'the scene is set against {orientation} stripes of {first} and {second}.',
                 f'broad {orientation} bands of {first} and {second} cover the background.')
  return pick(rng, templates)


def _contrast_sentence(obj: SceneObject, scene_background: Background, height: int) -> str:
  if scene_background.kind == 'horizon':
    in_sky = obj.cy < scene_background.horizon * height
    setting = (f'the {scene_background.colours[0]} sky' if in_sky
               else f'the {scene_background.colours[1]} ground')
  elif scene_background.kind == 'plain':
    setting = f'the {scene_background.colours[0]} background'
  else:
    setting = ('the graded background' if scene_background.kind == 'gradient'
               else 'the striped background')
  return f'the {_named(obj)} stands out against {setting}.'


def _composition_sentence(scene_objects: list[SceneObject], width: int, height: int) -> str:
  if len(scene_objects) == 1:
    return f'most of the canvas is left empty around the {scene_objects[0].shape}.'
  xs = [o.cx / width for o in scene_objects]
  ys = [o.cy / height for o in scene_objects]
  spread = (max(xs) - min(xs)) * (max(ys) - min(ys)) > 0.15 or max(xs) - min(xs) > 0.6
  arrangement = 'spread across the canvas' if spread else 'clustered closely together'
  return f'the {COUNT_WORDS[len(scene_objects)]} figures are {arrangement}.'


def visual_sentences(rng: np.random.Generator, width: int, height: int,
                     scene_background: Background,
                     scene_objects: list[SceneObject]) -> list[Sentence]:
  """1-6 sentences (about 3.1 on average) drawn from everything true of the picture."""
  pool = [_placement_sentence(rng, o) for o in scene_objects]
  pool += [_colour_sentence(rng, o) for o in scene_objects]
  pool += [_relation_sentence(rng, first, second)
           for first, second in itertools.combinations(scene_objects, 2)]
  pool += [_count_sentence(rng, scene_objects), _background_sentence(rng, scene_background),
           _contrast_sentence(pick(rng, scene_objects), scene_background, height),
           _composition_sentence(scene_objects, width, height)]
  count = min(1 + int(rng.binomial(5, 0.42)), len(pool))
  return [(capitalise(pool[i]), 'visual')
          for i in rng.choice(len(pool), count, replace=False)]


# ---------------------------------------------------------------- contextual sentences


def world(rng: np.random.Generator) -> World:
  """Sixty artists, 25 museums, 40 collectors and 12 exhibitions of one seed."""
  surnames = [s + e for s in _SURNAME_STEMS for e in _SURNAME_ENDINGS]

  def person():
    surname = pick(rng, surnames)
    return f'{pick(rng, _FIRST_NAMES)} {surname}', surname

  def place(patterns, count):
    return tuple(pick(rng, patterns).format(city=pick(rng, CITIES), surname=person()[1])
                 for _ in range(count))

  artists = []
  for _ in range(60):
    name, surname = person()
    born = int(rng.integers(1780, 1931))
    artists.append(Artist(name, surname, pick(rng, _NATIONALITIES), born,
                          born + int(rng.integers(40, 91)), pick(rng, _MOVEMENTS),
                          pick(rng, CITIES)))
  return World(artists=tuple(artists), museums=place(_MUSEUM_PATTERNS, 25),
               collectors=tuple(person()[0] for _ in range(40)),
               exhibitions=place(_EXHIBITION_PATTERNS, 12))


def _motif(rng: np.random.Generator, scene_objects: list[SceneObject]) -> tuple[str, str]:
  """(colour, shape) of some other work: half the time one that is also in this painting."""
  if rng.random() < 0.5:
    obj = pick(rng, scene_objects)
    return obj.colour, obj.shape
  return pick(rng, tuple(scene.COLOURS)), pick(rng, scene.SHAPES)


# In the order a Wikipedia article would tell them: the work, the artist, its history.
CONTEXTUAL_TEMPLATES = (
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


def contextual_fields(rng: np.random.Generator, the_world: World, artist: Artist, title: str,
                      year: int, year_known: bool,
                      scene_objects: list[SceneObject]) -> dict[str, Any]:
  """The values CONTEXTUAL_TEMPLATES name, for one painting."""
  colour, shape = _motif(rng, scene_objects)
  museum, other_museum = (the_world.museums[i]
                          for i in rng.choice(len(the_world.museums), 2, replace=False))
  return dict(
      title=title, artist=artist.name, surname=artist.surname, nationality=artist.nationality,
      born=artist.born, died=artist.died, movement=artist.movement, city=artist.city,
      when=f'in {year}' if year_known else 'at an unknown date',
      other_artist=pick(rng, [x for x in the_world.artists if x != artist]).name,
      other_city=pick(rng, CITIES), season=pick(rng, _SEASONS),
      collector=pick(rng, the_world.collectors), profession=pick(rng, _PROFESSIONS),
      colour=colour, shape=shape, a_motif=a(f'{colour} {shape}'), decade=10 * (year // 10),
      museum=museum, other_museum=other_museum, exhibition=pick(rng, the_world.exhibitions),
      exhibition_year=year + int(rng.integers(0, 4)), verdict=pick(rng, _VERDICTS),
      works=int(rng.integers(3, 13)), sale_year=year + int(rng.integers(1, 30)),
      acquisition_year=year + int(rng.integers(5, 45)),
      loan_year=year + int(rng.integers(20, 45)),
      restoration_year=max(year + 40, int(rng.integers(1960, 2016))),
      stamp_year=max(year + 30, int(rng.integers(1950, 2011))))


def _contextual_count(rng: np.random.Generator) -> int:
  """0 for one painting in ten, else 1 + Poisson: about 6.5 on average, as in Artpedia."""
  if rng.random() < 0.1:
    return 0
  return min(1 + int(rng.poisson(6.0)), len(CONTEXTUAL_TEMPLATES))


def contextual_sentences(rng: np.random.Generator, fields: dict[str, Any],
                         other_work: Callable[[], Sentence]) -> list[Sentence]:
  """Facts in article order, about one in eight replaced by `other_work()`."""
  chosen = sorted(rng.choice(len(CONTEXTUAL_TEMPLATES), _contextual_count(rng), replace=False))
  return [other_work() if rng.random() < _OTHER_WORK_RATE
          else (capitalise(CONTEXTUAL_TEMPLATES[i].format(**fields)), 'contextual')
          for i in chosen]


def _absent_kinds(scene_objects: list[SceneObject]) -> list[tuple[str, str]]:
  present = {(o.shape, o.colour) for o in scene_objects}
  return [kind for kind in itertools.product(scene.SHAPES, scene.COLOURS)
          if kind not in present]


def other_work_sentence(rng: np.random.Generator, width: int, height: int,
                        scene_objects: list[SceneObject]) -> Sentence:
  """A visual template about another work (a pendant, a study): contextual, and only the
  image tells, since every (shape, colour) it names is absent from this painting. Half
  start with a marker ("In its pendant, ..."); half, like Artpedia's ambiguous sentences,
  have none."""
  others = scene.objects(rng, width, height, _absent_kinds(scene_objects))
  pool = [_placement_sentence(rng, o) for o in others]
  pool += [_colour_sentence(rng, o) for o in others]
  pool += [_relation_sentence(rng, first, second)
           for first, second in itertools.combinations(others, 2)]
  sentence = pick(rng, pool)
  if rng.random() < 0.5:
    return pick(rng, _OTHER_WORK_MARKERS) + sentence, 'other_work_marked'
  return capitalise(sentence), 'other_work'
