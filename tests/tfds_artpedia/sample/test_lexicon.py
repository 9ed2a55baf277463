"""The procedural art-historical lexicon: deterministic, distinct words, Zipfian draws."""

import collections

import numpy as np

from tfds_artpedia.sample import lexicon as sample_lexicon


def _lexicon(seed, scale=0.2):
  return sample_lexicon.lexicon(np.random.default_rng(seed), scale=scale)


def test_is_deterministic_per_seed():
  assert _lexicon(0) == _lexicon(0)
  assert _lexicon(0).surnames.words != _lexicon(1).surnames.words


def test_words_are_distinct_names_of_their_kind():
  lexicon = _lexicon(0)
  assert len(lexicon.surnames.words) == 1000 and len(set(lexicon.surnames.words)) == 1000
  assert all(word[0].isupper() for word in lexicon.places.words)
  assert all(word.startswith('Saint ') for word in lexicon.saints.words)
  assert all(word.isalpha() and word.islower() for word in lexicon.pigments.words)
  rng = np.random.default_rng(0)
  first, last = lexicon.person(rng).split()
  assert first in lexicon.first_names.words and last in lexicon.surnames.words


def test_draws_follow_zipfs_law():
  words = sample_lexicon.ZipfWords(tuple(f'w{i}' for i in range(1000)))
  rng = np.random.default_rng(0)
  counts = collections.Counter(words.draw(rng) for _ in range(20000))
  # p(rank r) = 1 / (r H_1000): rank 1 about 13%, rank 10 about 1.3%.
  assert 0.12 < counts['w0'] / 20000 < 0.145
  assert 0.009 < counts['w9'] / 20000 < 0.017
  assert counts['w0'] > counts['w1'] > counts['w9'] > counts['w99']
  # The rarer half of the words: ln 2 / H_1000 = 9% of the draws, spread thin.
  assert 0.075 < sum(counts[f'w{i}'] for i in range(500, 1000)) / 20000 < 0.11
