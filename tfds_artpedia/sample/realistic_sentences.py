"""The sentences of the `sample_realistic` corpus: Artpedia's lengths, words and label noise.

The `sample` corpus is easy to read: short sentences (12.5 words) from a 716-word
vocabulary, with visual and contextual sentences in disjoint words. Real Artpedia's are
22 words long on average (median 20, 95th percentile 43, 99th 59), draw on a long tail of
names (`sample_lexicon`), and are noisy in two ways that a bag of words cannot see
through: many sentences labelled visual state the painter, date and collection ("X is a
painting by Y, now in the Z museum"), and many contextual sentences name objects and
figures ("the saint was venerated in ..."). This module writes such sentences about the
same pictures as `sample` (`sample_scene`): visual sentences name the painted objects
with art-historical synonyms ("a crimson orb", "a great ultramarine panel"), so the words
still point at region features, while some visual sentences describe figures that no
region shows (the Virgin, angels, a distant town).

A sentence grows clause by clause to a length drawn from a log-normal distribution, so
that both kinds of sentence share Artpedia's lengths and length says nothing of the label.
The noise is what keeps a bag of words from near-perfect scores: the metadata sentences
filed as visual share their words with more numerous contextual ones, and most
object-naming contextual sentences are worded as visual ones.
"""

from collections.abc import Callable
import dataclasses
import functools
import itertools
import math

import numpy as np

from tfds_artpedia.sample import lexicon as sample_lexicon
from tfds_artpedia.sample import scene
from tfds_artpedia.sample import sentences as sample_sentences
from tfds_artpedia.sample.scene import Background, pick, SceneObject
from tfds_artpedia.sample.sentences import a, capitalise, Sentence

# The kinds of `sample_sentences.SENTENCE_KINDS`, and three that only this corpus has:
SENTENCE_KINDS = sample_sentences.SENTENCE_KINDS + (
    'unseen_object',  # visual, about figures or places that no region shows
    'metadata',  # painter, date and collection, filed as visual (Artpedia's noise)
    'object_context',  # contextual, naming objects and figures (Artpedia's noise)
)
# Painted objects by art-historical synonyms; a shape keeps its words, so words name features.
OBJECT_NOUNS = {
    'circle': ('orb', 'disc', 'halo', 'sun'), 'square': ('panel', 'window', 'tablet', 'book'),
    'triangle': ('mountain', 'tent', 'pyramid', 'gable'),
    'star': ('star', 'rosette', 'flower'), 'cross': ('cross', 'crucifix'),
    'diamond': ('lozenge', 'jewel', 'kite'), 'hexagon': ('font', 'lantern', 'cell'),
    'ring': ('wreath', 'crown', 'garland', 'hoop'),
}
COLOUR_WORDS = {
    'red': ('red', 'crimson', 'vermilion', 'scarlet'), 'orange': ('orange', 'saffron'),
    'yellow': ('yellow', 'golden', 'lemon'), 'green': ('green', 'verdigris', 'emerald'),
    'blue': ('blue', 'ultramarine', 'azure'), 'purple': ('purple', 'violet', 'mauve'),
    'pink': ('pink', 'rose'), 'brown': ('brown', 'umber', 'sepia'),
    'black': ('black', 'ebony'), 'white': ('white', 'ivory', 'pale'),
}
_SIZE_WORDS = {'small': ('small', 'little', 'tiny', 'modest'),
               'large': ('large', 'great', 'broad', 'massive')}
FIGURES = ('the Virgin', 'the Child', 'an angel', 'two angels', 'a shepherd', 'the donor',
           'a kneeling bishop', 'the saint', 'a young woman', 'an old man', 'three putti',
           'a horseman', 'the apostles', 'a monk', 'the Magi', 'a dog')  # never drawn
_POSES = ('is seated', 'kneels', 'stands', 'is shown in profile', 'leans forward',
          'raises a hand', 'looks towards the viewer', 'holds a book', 'points upwards',
          'rests on a cushion')
_VERBS = ('appears', 'is painted', 'sits', 'floats', 'hangs', 'rises', 'is set')
_GUILDS = ('weavers', 'notaries', 'goldsmiths', 'bakers', 'tanners', 'physicians', 'masons')
_MEDIA = ('oil on panel', 'oil on canvas', 'tempera on panel', 'fresco', 'tempera and gold')
# Lengths: a log-normal target; clauses overshoot it, giving mean 22 and median 20 words.
_LENGTH_MEDIAN = 18.0
_LENGTH_SIGMA = 0.46
# Noise rates, calibrated so that the TF-IDF baseline scores about as on real Artpedia
# (test accuracy 0.855, AUC 0.925): about 0.85 and 0.9 on the default corpus.
_UNSEEN_RATE = 0.2  # of visual sentences: about figures or places no region shows
_METADATA_RATE = 0.15  # of visual sentences: painter, date, collection
_OBJECT_CONTEXT_RATE = 0.16  # of contextual sentences: naming objects and figures
_CONTEXTUAL_METADATA_RATE = 0.25  # of contextual sentences: the same words as 'metadata'


@dataclasses.dataclass(frozen=True)
class RealisticWorld:
  """The names of one seed: the lexicon and the institutions built from it."""
  lexicon: sample_lexicon.Lexicon
  museums: tuple[str, ...]


def world(rng: np.random.Generator) -> RealisticWorld:
  lexicon = sample_lexicon.lexicon(rng)
  patterns = ('the {place} Museum', 'the Galleria {surname}', 'the {surname} Collection',
              'the Pinacoteca of {place}', 'the Museum of Fine Arts in {place}',
              'the cathedral of {place}', 'the {surname} Foundation')
  museums = tuple(pick(rng, patterns).format(place=lexicon.places.draw(rng),
                                             surname=lexicon.surnames.draw(rng))
                  for _ in range(300))
  return RealisticWorld(lexicon, museums)


@dataclasses.dataclass(frozen=True)
class _Work:
  """What the sentences of one painting say about it."""
  title: str
  painter: str
  year: int
  museum: str
  place: str
  saint: str
  objects: list[SceneObject]
  background: Background


def _museum(rng: np.random.Generator, the_world: RealisticWorld) -> str:
  """A collection, drawn by Zipf's law too: a few museums hold many of the paintings."""
  return the_world.museums[min(int(rng.zipf(1.3)) - 1, len(the_world.museums) - 1)]


def _object_words(rng: np.random.Generator, obj: SceneObject, with_size: bool) -> str:
  words = [pick(rng, COLOUR_WORDS[obj.colour]), pick(rng, OBJECT_NOUNS[obj.shape])]
  if with_size:
    words.insert(0, pick(rng, _SIZE_WORDS[obj.size]))
  return ' '.join(words)


def _target_length(rng: np.random.Generator) -> int:
  return int(round(_LENGTH_MEDIAN * math.exp(_LENGTH_SIGMA * rng.standard_normal())))


def _grown(rng: np.random.Generator, core: str, modifiers, target: int) -> str:
  """`core` with modifiers appended until it reaches `target` words: one sentence."""
  text = core
  while len(text.split()) < target:
    text += pick(rng, modifiers)(rng)
  return capitalise(text) + '.'


# -------------------------------------------------------------------- visual sentences


def _visual_modifiers(work: _Work, lexicon: sample_lexicon.Lexicon):
  others = work.objects
  return (
      lambda r: f', its contour {pick(r, ("softened", "sharpened", "traced"))} by '
                f'{lexicon.techniques.draw(r)}',
      lambda r: f' with touches of {lexicon.pigments.draw(r)} '
                f'{pick(r, COLOUR_WORDS[pick(r, others).colour])}',
      lambda r: f', set against the {work.background.colours[0]} '
                f'{pick(r, ("ground", "background", "field"))}',
      lambda r: f' beside {a(_object_words(r, pick(r, others), False))}',
      lambda r: f', in a manner close to {lexicon.styles.draw(r)}',
      lambda r: f', the light falling from the {pick(r, ("left", "right", "upper left"))}',
      lambda r: f', rendered with {pick(r, ("thin", "loose", "dense", "careful"))} '
                f'{pick(r, ("brushwork", "glazes", "strokes", "hatching"))}',
      lambda r: f' under a {pick(r, work.background.colours)} sky',
      lambda r: f' {pick(r, sample_sentences.PLACEMENTS)}',
  )


def _seen_core(rng: np.random.Generator, work: _Work) -> str:
  """A clause about painted objects: one, or two and where one is from the other."""
  obj = pick(rng, work.objects)
  placement = sample_sentences.PLACEMENTS[obj.area]
  if len(work.objects) > 1 and rng.random() < 0.3:
    first, second = (work.objects[i] for i in rng.choice(len(work.objects), 2, replace=False))
    return (f'{a(_object_words(rng, first, True))} {pick(rng, _VERBS)} '
            f'{sample_sentences.relation(first, second)} the '
            f'{_object_words(rng, second, False)}')
  return pick(rng, (
      f'{a(_object_words(rng, obj, True))} {pick(rng, _VERBS)} {placement}',
      f'{placement}, the painter set {a(_object_words(rng, obj, True))}',
      f'the {_object_words(rng, obj, False)} {placement} is painted in '
      f'{pick(rng, COLOUR_WORDS[obj.colour])}',
  ))


def _unseen_core(rng: np.random.Generator, lexicon: sample_lexicon.Lexicon) -> str:
  """A clause about figures or places that no region shows."""
  return pick(rng, (
      f'{pick(rng, FIGURES)} {pick(rng, _POSES)} {pick(rng, sample_sentences.PLACEMENTS)}',
      f'in the distance lies the town of {lexicon.places.draw(rng)}',
      f'{pick(rng, FIGURES)} {pick(rng, _POSES)} beside {pick(rng, FIGURES)}',
  ))


def _metadata_core(rng: np.random.Generator, work: _Work) -> str:
  return pick(rng, (
      f'{work.title} is a painting by {work.painter}, dated {work.year}, now in {work.museum}',
      f'{work.title} is {a(pick(rng, _MEDIA))} by {work.painter} in {work.museum}',
      f'the painting by {work.painter} is kept in {work.museum}',
      f'{work.painter} signed and dated the work {work.year}',
  ))


def _visual(rng: np.random.Generator, work: _Work, lexicon: sample_lexicon.Lexicon,
            count: int) -> list[Sentence]:
  visual_modifiers = _visual_modifiers(work, lexicon)
  sentences = []
  for _ in range(count):
    u = rng.random()
    if u < _METADATA_RATE:
      core, kind, modifiers = (_metadata_core(rng, work), 'metadata',
                               _contextual_modifiers(lexicon))
    elif u < _METADATA_RATE + _UNSEEN_RATE:
      core, kind, modifiers = _unseen_core(rng, lexicon), 'unseen_object', visual_modifiers
    else:
      core, kind, modifiers = _seen_core(rng, work), 'visual', visual_modifiers
    sentences.append((_grown(rng, core, modifiers, _target_length(rng)), kind))
  # Every painting keeps one sentence about what its regions show.
  if not any(kind == 'visual' for _, kind in sentences):
    sentences[0] = (_grown(rng, _seen_core(rng, work), visual_modifiers,
                           _target_length(rng)), 'visual')
  return sentences


# ---------------------------------------------------------------- contextual sentences


def _contextual_modifiers(lexicon: sample_lexicon.Lexicon):
  return (
      lambda r: f' during a stay in {lexicon.places.draw(r)}',
      lambda r: f' after the death of {lexicon.person(r)}',
      lambda r: f', according to {lexicon.person(r)}',
      lambda r: f' as recorded in the inventory of {int(r.integers(1400, 1950))}',
      lambda r: f', together with a {pick(r, ("predella", "lunette", "pendant", "study"))} '
                'now lost',
      lambda r: f' at the request of {lexicon.person(r)}',
      lambda r: f' in the manner of {lexicon.styles.draw(r)}',
      lambda r: f', when {lexicon.person(r)} was prior of the convent of '
                f'{lexicon.saints.draw(r)}',
      lambda r: f' before moving to {lexicon.places.draw(r)}',
      lambda r: f' for the sum of {int(r.integers(10, 900))} florins',
      lambda r: f', as {lexicon.person(r)} wrote in {int(r.integers(1500, 1990))}',
  )


def _contextual_core(rng: np.random.Generator, work: _Work,
                     lexicon: sample_lexicon.Lexicon) -> str:
  return pick(rng, (
      f'{work.painter} painted the work in {work.year} for {lexicon.person(rng)}',
      f'the altarpiece was commissioned by {lexicon.person(rng)} for the church of '
      f'{work.saint} in {work.place}',
      f'the painting entered {work.museum} in {work.year + int(rng.integers(20, 400))}',
      f'{work.painter} was born in {lexicon.places.draw(rng)} and trained under '
      f'{lexicon.person(rng)}',
      f'the panel was restored in {int(rng.integers(1850, 2015))} by {lexicon.person(rng)}',
      f'the work is documented in a letter from {lexicon.person(rng)} to {work.painter}',
      f'it was exhibited in {lexicon.places.draw(rng)} in '
      f'{work.year + int(rng.integers(5, 500))}',
      f'art historians attribute the picture to the circle of {lexicon.person(rng)}',
      f'{work.painter} belonged to the followers of {lexicon.styles.draw(rng)}',
      f'the confraternity of {work.saint} paid for the frame',
  ))


def _object_context_core(rng: np.random.Generator, work: _Work,
                         lexicon: sample_lexicon.Lexicon) -> tuple[str, bool]:
  """(a contextual clause that names objects or figures, whether it reads as a visual one).

  Most are in the words of a visual sentence (another version, a copy, a lost pendant
  described object by object, as Artpedia's articles do): only the image can tell them,
  since half of them name objects that are not in this painting.
  """
  if rng.random() < 1 / 3:
    return pick(rng, (
        f'the {pick(rng, tuple(itertools.chain(*OBJECT_NOUNS.values())))} was a symbol of '
        f'{work.saint}, whose cult spread from {lexicon.places.draw(rng)}',
        f'{work.saint} was venerated in {lexicon.places.draw(rng)} as the patron of the '
        f'{pick(rng, _GUILDS)}',
    )), False
  obj = pick(rng, work.objects) if rng.random() < 0.5 else SceneObject(
      pick(rng, scene.SHAPES), pick(rng, tuple(scene.COLOURS)), 'small', 0, 0, 0, 0)
  return pick(rng, (
      f'{a(_object_words(rng, obj, True))} {pick(rng, _VERBS)} '
      f'{pick(rng, sample_sentences.PLACEMENTS)}',
      f'the {_object_words(rng, obj, False)} {pick(rng, sample_sentences.PLACEMENTS)} is '
      f'painted in {pick(rng, COLOUR_WORDS[obj.colour])}',
      f'{pick(rng, FIGURES)} {pick(rng, _POSES)} {pick(rng, sample_sentences.PLACEMENTS)}',
  )), True


def _contextual(rng: np.random.Generator, work: _Work, lexicon: sample_lexicon.Lexicon,
                count: int) -> list[Sentence]:
  contextual_modifiers = _contextual_modifiers(lexicon)
  sentences = []
  for _ in range(count):
    modifiers = contextual_modifiers
    u = rng.random()
    if u < _OBJECT_CONTEXT_RATE:
      (core, reads_visual), kind = _object_context_core(rng, work, lexicon), 'object_context'
      if reads_visual:
        modifiers = _visual_modifiers(work, lexicon)
    elif u < _OBJECT_CONTEXT_RATE + _CONTEXTUAL_METADATA_RATE:
      core, kind = _metadata_core(rng, work), 'contextual'
    else:
      core, kind = _contextual_core(rng, work, lexicon), 'contextual'
    sentences.append((_grown(rng, core, modifiers, _target_length(rng)), kind))
  return sentences


def _facts(rng: np.random.Generator, work: _Work, lexicon: sample_lexicon.Lexicon) -> list[str]:
  """Contextual clauses a run-on sentence may join."""
  return [capitalise(_contextual_core(rng, work, lexicon)) + '.' for _ in range(12)]


# ------------------------------------------------------------------------ the painting


def _title(rng: np.random.Generator, work_objects: list[SceneObject], saint: str,
           place: str, painter: str) -> str:
  obj = pick(rng, work_objects)
  noun = pick(rng, OBJECT_NOUNS[obj.shape]).title()
  return pick(rng, (
      f'The Martyrdom of {saint}', f'{saint} in {place}', f'Madonna of the {noun}',
      f'The {pick(rng, COLOUR_WORDS[obj.colour]).title()} {noun}',
      f'Portrait of {painter.split()[0]} {pick(rng, ("the Elder", "the Younger", "II"))}',
      f'View of {place}', f'Allegory with a {noun}',
  ))


@dataclasses.dataclass(frozen=True)
class PaintingText:
  title: str
  painter: str
  year: int
  visual: list[Sentence]
  contextual: list[Sentence]
  facts: Callable[[], list[str]]  # drawn from the painting's stream only when called


def painting_text(rng: np.random.Generator, the_world: RealisticWorld,
                  work_objects: list[SceneObject], work_background: Background,
                  num_visual: int, num_contextual: int) -> PaintingText:
  """Title, painter, year and the two sentence lists of one painting."""
  lexicon = the_world.lexicon
  painter, place, saint = lexicon.person(rng), lexicon.places.draw(rng), lexicon.saints.draw(rng)
  year = int(rng.integers(1300, 1900))
  work = _Work(title=_title(rng, work_objects, saint, place, painter), painter=painter,
               year=year, museum=_museum(rng, the_world), place=place, saint=saint,
               objects=work_objects, background=work_background)
  return PaintingText(title=work.title, painter=painter, year=year,
                      visual=_visual(rng, work, lexicon, num_visual),
                      contextual=_contextual(rng, work, lexicon, num_contextual),
                      facts=functools.partial(_facts, rng, work, lexicon))

