"""Length buckets: the widths in use, the width a group of sentences gets, and trimming
that removes only padding."""

import numpy as np
import pytest

from artpedia_jax.data import length_buckets


@pytest.mark.parametrize('buckets, max_words, expected', [
    ((16, 24, 32, 48, 64), 60, (16, 24, 32, 48, 60)),  # clipped, max_words always one
    ((16, 24, 32), 24, (16, 24)),
    ((), 40, (40,)),  # no buckets: everything at max_words
    ((32, 8, 32, 16), 64, (8, 16, 32, 64)),  # sorted, without duplicates
])
def test_widths_are_the_buckets_clipped_to_max_words(buckets, max_words, expected):
  assert length_buckets.widths(buckets, max_words) == expected


@pytest.mark.parametrize('longest, expected', [
    (0, 8), (1, 8), (8, 8),  # exactly a bucket's width fits that bucket
    (9, 16),  # one word more than a bucket takes the next one
    (16, 16), (17, 24), (24, 24),
    (30, 24),  # longer than every width: the largest (the pipeline truncated it there)
])
def test_width_for_is_the_smallest_width_holding_the_longest(longest, expected):
  assert length_buckets.width_for(longest, (8, 16, 24)) == expected


def test_no_sentence_loses_a_word_to_its_width():
  rng = np.random.default_rng(0)
  widths = length_buckets.widths((4, 7, 11), 16)
  for _ in range(200):
    lengths = rng.integers(0, 17, size=rng.integers(1, 6))
    tokens = np.zeros((len(lengths), 16), np.int32)
    for row, length in enumerate(lengths):
      tokens[row, :length] = rng.integers(1, 100, size=length)
    trimmed = length_buckets.trim(
        tokens, length_buckets.width_for(int(length_buckets.num_words(tokens).max()), widths))
    np.testing.assert_array_equal(length_buckets.num_words(trimmed),
                                  length_buckets.num_words(tokens))
    np.testing.assert_array_equal(trimmed, tokens[:, :trimmed.shape[1]])
    assert not tokens[:, trimmed.shape[1]:].any()


def test_num_words_counts_the_non_padding_tokens():
  tokens = np.array([[5, 6, 7, 0, 0], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
  np.testing.assert_array_equal(length_buckets.num_words(tokens), [3, 0, 5])


@pytest.mark.parametrize('lengths, width, expected', [
    ([4, 4], 4, 0.0),
    ([2, 4], 4, 0.25),
    ([8, 2], 4, 0.25),  # a sentence longer than the width counts as full
    ([], 4, 0.0),
])
def test_padding_fraction(lengths, width, expected):
  assert length_buckets.padding_fraction(np.asarray(lengths), width) == pytest.approx(expected)
