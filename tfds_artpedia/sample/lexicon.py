"""A procedural art-historical lexicon with a long tail, for the realistic sample corpus.

Most of real Artpedia's 28,000 distinct words are rare: painters, saints, patrons, places,
churches, styles, pigments and techniques, each named once or a few times in the whole
corpus. This module composes such names from syllables (no real list is copied),
deterministically from a seed, and draws them by Zipf's law (the word of rank r with
probability proportional to 1 / r), so that a few are frequent and most are rare.
"""

import dataclasses
import functools

import numpy as np

_ONSETS = ('b', 'c', 'd', 'f', 'g', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'cr',
           'dr', 'fr', 'gr', 'pr', 'tr', 'st', 'sp', 'ch', 'gl', 'pl', 'sc', 'qu')
_VOWELS = ('a', 'e', 'i', 'o', 'u', 'a', 'e', 'o', 'ia', 'io', 'ei', 'au')
_CODAS = ('', '', '', 'n', 'r', 'l', 's', 'nt', 'rd', 'st', 'm', 'c')
# Endings that make a stem read as a name of its kind.
_FIRST_NAME_ENDINGS = ('o', 'a', 'us', 'ent', 'ine', 'ard', 'elm', 'ian', 'is', 'ette')
_SURNAME_ENDINGS = ('ini', 'elli', 'oni', 'aert', 'ssen', 'ez', 'ois', 'ier', 'ach', 'ov',
                    'etti', 'ano', 'mans', 'ert', 'enti', 'uccio')
_PLACE_ENDINGS = ('ano', 'ola', 'burg', 'heim', 'ville', 'ford', 'esca', 'ona', 'dorf',
                  'ara', 'enza', 'mont', 'ingen', 'ia')
_PLACE_PREFIXES = ('San ', 'Monte ', 'Castel ', 'Santa ', 'Borgo ', 'Pieve ', 'Val ')
_SAINT_ENDINGS = ('us', 'a', 'ius', 'ina', 'an', 'ilda', 'ard')
_PIGMENT_ENDINGS = ('ite', 'ine', 'ian', 'ese', 'ar')
_TECHNIQUE_ENDINGS = ('ato', 'ura', 'age', 'ino', 'etto', 'ism')
_STYLE_ENDINGS = ('ism', 'esque', 'ist', 'ine', 'ian')


def _syllable(rng: np.random.Generator) -> str:
  return (_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
          + _CODAS[rng.integers(len(_CODAS))])


def _stem(rng: np.random.Generator) -> str:
  return ''.join(_syllable(rng) for _ in range(int(rng.integers(1, 3))))


def _distinct(rng: np.random.Generator, count: int, make) -> tuple[str, ...]:
  """`count` distinct strings from `make(rng)`, in the order first made."""
  seen: dict[str, None] = {}
  while len(seen) < count:
    seen.setdefault(make(rng), None)
  return tuple(seen)


@dataclasses.dataclass(frozen=True)
class ZipfWords:
  """Words ranked by frequency: `draw` picks rank r with probability ∝ 1 / r."""
  words: tuple[str, ...]

  @functools.cached_property
  def _cumulative(self) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(self.words) + 1)
    return np.cumsum(weights) / weights.sum()

  def draw(self, rng: np.random.Generator) -> str:
    index = int(np.searchsorted(self._cumulative, rng.random(), side='right'))
    return self.words[min(index, len(self.words) - 1)]


@dataclasses.dataclass(frozen=True)
class Lexicon:
  """The rare words of one seed, by kind."""
  first_names: ZipfWords
  surnames: ZipfWords
  places: ZipfWords
  saints: ZipfWords
  pigments: ZipfWords  # adjectives before a colour: "calvanite blue"
  techniques: ZipfWords
  styles: ZipfWords

  def person(self, rng: np.random.Generator) -> str:
    return f'{self.first_names.draw(rng)} {self.surnames.draw(rng)}'


def lexicon(rng: np.random.Generator, scale: float = 2.0) -> Lexicon:
  """Composes every kind of name; `scale` multiplies the number of words of each kind."""
  def sized(count):
    return max(8, int(count * scale))

  def titled(endings, prefixes=()):
    def make(r):
      word = (_stem(r) + endings[r.integers(len(endings))]).capitalize()
      if prefixes and r.random() < 0.2:
        word = prefixes[r.integers(len(prefixes))] + word
      return word
    return make

  def lower(endings):
    return lambda r: _stem(r) + endings[r.integers(len(endings))]

  return Lexicon(
      first_names=ZipfWords(_distinct(rng, sized(500), titled(_FIRST_NAME_ENDINGS))),
      surnames=ZipfWords(_distinct(rng, sized(5000), titled(_SURNAME_ENDINGS))),
      places=ZipfWords(_distinct(rng, sized(2500), titled(_PLACE_ENDINGS, _PLACE_PREFIXES))),
      saints=ZipfWords(tuple(f'Saint {name}' for name in _distinct(
          rng, sized(900), titled(_SAINT_ENDINGS)))),
      pigments=ZipfWords(_distinct(rng, sized(500), lower(_PIGMENT_ENDINGS))),
      techniques=ZipfWords(_distinct(rng, sized(500), lower(_TECHNIQUE_ENDINGS))),
      styles=ZipfWords(_distinct(rng, sized(300), titled(_STYLE_ENDINGS))),
  )
