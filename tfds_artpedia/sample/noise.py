"""Artpedia's label noise, applied to the generated sentence lists.

Fragments (2-5 words of a sentence, as a bad sentence splitter leaves them), 2-3% of the
sentences filed in the wrong list, the odd run-on sentence of more than 60 words and rare
punctuation-only ones ("—") with no word left after tokenisation. Each noisy sentence
carries its kind ('fragment', 'misfiled', 'long', 'no_words'), so tests and statistics
can tell it from a clean one.
"""

from collections.abc import Callable, Sequence

import numpy as np

from tfds_artpedia.sample.scene import pick
from tfds_artpedia.sample.sentences import capitalise, Sentence

LONG_WORDS = 60  # a run-on sentence has more (whitespace-separated) words than this
_ORDINARY_KINDS = ('visual', 'contextual')  # the kinds noise may turn into another one
_KEPT_KINDS = ('visual', 'fragment')  # a painting keeps one visual sentence of these kinds
_FRAGMENT_RATE = 0.03  # of ordinary sentences
_MISFILED_RATE = 0.025  # of ordinary sentences
_LONG_RATE = 0.04  # of paintings with a contextual sentence: one becomes a run-on sentence
_NO_WORDS_RATE = 0.02  # of paintings: one sentence of punctuation only
_NO_WORDS = ('—', '–', '…', '* * *', '(?)', '"')


def _fragment(rng: np.random.Generator, sentence: str) -> str:
  """2-5 words of `sentence`, its head or its tail, as a bad sentence splitter leaves them."""
  words = sentence.split()
  length = int(rng.integers(2, max(3, min(6, len(words) - 1))))
  return ' '.join(words[:length] if rng.random() < 0.5 else words[-length:])


def _fragmented(rng: np.random.Generator, sentences: list[Sentence]) -> list[Sentence]:
  cut = rng.random(len(sentences)) < _FRAGMENT_RATE
  return [(_fragment(rng, text), 'fragment') if c and kind in _ORDINARY_KINDS else (text, kind)
          for (text, kind), c in zip(sentences, cut)]


def _run_on_sentence(rng: np.random.Generator, facts: Sequence[str]) -> str:
  """Facts joined by semicolons past LONG_WORDS words: a paragraph that lost its stops."""
  clauses = []
  for i in rng.permutation(len(facts)):
    clauses.append(facts[i].removesuffix('.'))
    if sum(len(clause.split()) for clause in clauses) > LONG_WORDS:
      break
  return capitalise('; '.join(clauses)) + '.'


def _with_run_on_sentence(rng: np.random.Generator, contextual: list[Sentence],
                          facts: Callable[[], Sequence[str]]) -> list[Sentence]:
  slots = [i for i, (_, kind) in enumerate(contextual) if kind == 'contextual']
  if not slots or rng.random() >= _LONG_RATE:
    return contextual
  slot = pick(rng, slots)
  return contextual[:slot] + [(_run_on_sentence(rng, facts()), 'long')] + contextual[slot + 1:]


def _misfiled(rng: np.random.Generator, sentences: list[Sentence],
              keep_one: bool = False) -> tuple[list[Sentence], list[Sentence]]:
  """(the sentences that stay, the ordinary ones that go to the other list as 'misfiled').

  `keep_one`: one sentence of _KEPT_KINDS stays, if there was one.
  """
  ordinary = np.array([kind in _ORDINARY_KINDS for _, kind in sentences], bool)
  moved = (rng.random(len(sentences)) < _MISFILED_RATE) & ordinary
  if keep_one and moved.any() and not any(
      kind in _KEPT_KINDS for (_, kind), m in zip(sentences, moved) if not m):
    moved[np.flatnonzero(moved)[0]] = False
  stay = [sentence for sentence, m in zip(sentences, moved) if not m]
  return stay, [(text, 'misfiled') for (text, _), m in zip(sentences, moved) if m]


def insert_randomly(rng: np.random.Generator, sentences: list[Sentence],
                    extra: list[Sentence]) -> list[Sentence]:
  """`sentences` with each of `extra` inserted at a random place."""
  sentences = list(sentences)
  for sentence in extra:
    sentences.insert(int(rng.integers(len(sentences) + 1)), sentence)
  return sentences


def with_label_noise(rng: np.random.Generator, visual: list[Sentence],
                     contextual: list[Sentence],
                     facts: Callable[[], Sequence[str]]
                     ) -> tuple[list[Sentence], list[Sentence]]:
  """Artpedia's noise: fragments, run-on and punctuation-only sentences, misfiled labels.

  `facts()` gives the contextual sentences a run-on sentence may join (every fact known
  about the work, not only those in the list); it is called only for a run-on sentence.
  Misfiling never takes a painting's last visual sentence about what is painted.
  """
  visual, contextual = _fragmented(rng, visual), _fragmented(rng, contextual)
  contextual = _with_run_on_sentence(rng, contextual, facts)
  visual, to_contextual = _misfiled(rng, visual, keep_one=True)
  contextual, to_visual = _misfiled(rng, contextual)
  visual = insert_randomly(rng, visual, to_visual)
  contextual = insert_randomly(rng, contextual, to_contextual)
  if rng.random() < _NO_WORDS_RATE:
    no_words = [(pick(rng, _NO_WORDS), 'no_words')]
    if rng.random() < 1 / 3:
      visual = insert_randomly(rng, visual, no_words)
    else:
      contextual = insert_randomly(rng, contextual, no_words)
  return visual, contextual
