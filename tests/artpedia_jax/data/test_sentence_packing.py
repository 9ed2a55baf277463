"""Packing sentences into rows: every word once and in order, bounded row counts."""

import numpy as np
import pytest

from artpedia_jax.data import length_buckets
from artpedia_jax.data import sentence_packing


def _words_placed(sentence, position, lengths):
  """For one shard: asserts each sentence sits contiguous in one row at positions
  0..L-1 and that nothing else is placed."""
  for n, length in enumerate(lengths):
    rows, columns = np.nonzero(sentence == n)
    assert len(rows) == length
    if length:
      assert len(set(rows)) == 1 and np.all(np.diff(columns) == 1)
      np.testing.assert_array_equal(position[rows, columns], np.arange(length))
  assert np.count_nonzero(sentence < len(lengths)) == lengths.sum()


def test_every_word_is_placed_once_in_order_and_rows_are_mostly_words():
  rng = np.random.default_rng(0)
  lengths = np.clip(np.rint(rng.lognormal(np.log(20), 0.465, (2, 128))), 1, 60)
  lengths = lengths.astype(np.int64)
  lengths[0, :5] = 0  # unused classifier slots take no room
  sentence, position = sentence_packing.pack(lengths, width=60)
  assert sentence.shape == position.shape and sentence.shape[::2] == (2, 60)
  for shard in range(2):
    _words_placed(sentence[shard], position[shard], lengths[shard])
  # ~22-word sentences pack three or so to a 60-word row.
  assert lengths.sum() / sentence.size > 0.85


def test_real_fraction_counts_words_over_the_positions_the_encoder_runs():
  one_word = np.array([5, 0, 0, 0], np.int32)
  batch = {'tokens': np.tile(one_word, (8, 1)), 'cls_tokens': np.tile(one_word, (8, 1, 1))}
  assert sentence_packing.real_fraction(batch) == 16 / 64  # 16 sentences x 4 positions
  packed = sentence_packing.with_layout(batch, shards=1)
  assert packed['packed_sentence'].shape == (1, 4, 4)  # 16 one-word sentences in 4 rows
  assert sentence_packing.real_fraction(packed) == 1.0


def test_a_sentence_as_long_as_the_row_fits_and_one_word_more_is_refused():
  sentence, position = sentence_packing.pack(np.array([[8, 3, 5, 1]]), width=8)
  _words_placed(sentence[0], position[0], np.array([8, 3, 5, 1]))
  with pytest.raises(ValueError, match='9 words does not fit a row of 8'):
    sentence_packing.pack(np.array([[9, 1]]), width=8)


def test_row_counts_are_few_per_width_and_never_exceed_the_sentences():
  for num_sentences in (1, 7, 64, 256):
    counts = {sentence_packing.row_count(needed, num_sentences)
              for needed in range(1, num_sentences + 1)}
    assert len(counts) <= sentence_packing.ROW_STEPS
    assert max(counts) == num_sentences
    assert all(sentence_packing.row_count(needed, num_sentences) >= needed
               for needed in range(1, num_sentences + 1))


def test_shards_get_the_row_count_of_the_fullest():
  lengths = np.array([[4, 4, 4, 4], [1, 1, 1, 1]])
  sentence, _ = sentence_packing.pack(lengths, width=4)
  assert sentence.shape == (2, 4, 4)
  assert np.all(sentence[1, 1:] == 4)  # the short shard's spare rows are padding


def test_width_for_gives_a_bucket_one_word_longer_sentences_do_not_fit_in():
  widths = length_buckets.widths((16, 24, 32, 48), max_words=60)
  assert widths == (16, 24, 32, 48, 60)
  for smaller, larger in zip(widths, widths[1:]):
    assert length_buckets.width_for(smaller, widths) == smaller
    assert length_buckets.width_for(smaller + 1, widths) == larger
  assert length_buckets.width_for(1, widths) == 16
