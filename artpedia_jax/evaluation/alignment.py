"""Which region of a painting each word of a sentence aligns to.

A word's region is the one its word vector scores highest with (the max in the `align`
score); a word that BERT splits into word pieces scores each region with the mean of its
pieces' scores. The evaluation report draws these alignments, and the inference pages
outline them in the browser. Kept apart from the report so that using a model does not
import its plotting libraries.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np

from artpedia_jax.data import vocab as vocab_lib


@dataclasses.dataclass(frozen=True)
class AlignedWord:
  word: str
  box: tuple[float, float, float, float]  # (y0, x0, y1, x1) in [0, 1]
  score: float  # the word's score with that region


def merge_pieces(words: Sequence[tuple[str, Sequence[int]]],
                 token_region_scores: np.ndarray) -> tuple[list[str], np.ndarray]:
  """Words and their [W, R] region scores from a sentence's [T, R] token scores.

  `words` are (word, positions of its tokens), as the tokenizer's `alignment_words`
  gives them: a word split into several word pieces (BERT) scores each region with the
  mean of its pieces' scores; a word of one token keeps that token's row.
  """
  scores = np.asarray(token_region_scores, np.float64)
  merged = [scores[list(positions)].mean(axis=0) for _, positions in words]
  return ([word for word, _ in words],
          np.stack(merged) if merged else np.zeros([0, scores.shape[-1]]))


def word_alignment(words: Sequence[str | bytes], word_region_scores: np.ndarray,
                   boxes: np.ndarray,
                   region_mask: np.ndarray | None = None) -> list[AlignedWord]:
  """Each word's best real region: argmax over regions of its [T, R] word-region scores."""
  scores = np.asarray(word_region_scores, dtype=np.float64)[:len(words)]
  if region_mask is not None:
    scores = np.where(np.asarray(region_mask)[None, :], scores, -np.inf)
  best = np.argmax(scores, axis=1)
  return [AlignedWord(vocab_lib.as_text(word), tuple(float(c) for c in boxes[r]),
                      float(scores[t, r]))
          for t, (word, r) in enumerate(zip(words, best))]
