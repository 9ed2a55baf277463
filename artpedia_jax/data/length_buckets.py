"""Padded sentence lengths: a small fixed set, so padding shrinks with few compilations.

Every sentence tensor is right-padded to `max_words` by the pipeline; the encoders and
scorers cost in proportion to the padded length, and real Artpedia sentences are much
shorter than the longest (mean 22 words, 99th percentile 59). Padding a group of
sentences only to the smallest *bucket* that holds its longest one removes most of that
cost, while each jit-compiled function sees at most `len(widths)` token shapes (compiled
on first use, then cached by `jax.jit`). Padding never changes a result: encoders and
scorers mask it (see `scoring` and `model.encode_sentences`).
"""

from collections.abc import Sequence

import numpy as np


def widths(buckets: Sequence[int], max_words: int) -> tuple[int, ...]:
  """The padded lengths in use: `buckets` clipped to `max_words`, which is always one.

  An empty `buckets` means no bucketing: everything stays padded to `max_words`.
  """
  return tuple(sorted({min(int(b), max_words) for b in buckets} | {max_words}))


def width_for(longest: int, bucket_widths: Sequence[int]) -> int:
  """The smallest width holding `longest` words (the largest width if none does)."""
  for width in bucket_widths:
    if longest <= width:
      return width
  return bucket_widths[-1]


def num_words(tokens: np.ndarray) -> np.ndarray:
  """Real words per right-padded sentence (token 0 is padding), [...]."""
  return np.count_nonzero(tokens, axis=-1)


def trim(tokens: np.ndarray, width: int) -> np.ndarray:
  """Right-padded tokens [..., T] cut to [..., width] (only padding is removed when width
  holds the longest sentence)."""
  return tokens[..., :width]


def padding_fraction(lengths: np.ndarray, width: int) -> float:
  """Share of the token positions of sentences padded to `width` that are padding."""
  lengths = np.minimum(np.asarray(lengths), width)
  return 1.0 - float(lengths.sum()) / (lengths.size * width) if lengths.size else 0.0

