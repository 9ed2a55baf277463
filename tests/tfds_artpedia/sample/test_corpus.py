"""The generated sample corpus: determinism, Artpedia's fields, splits and sizes."""

import re

import numpy as np
import pytest

from tests.helpers import sample_helpers
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import sentences as sample_sentences
from tfds_artpedia.sample import statistics as sample_statistics

_WELL_FORMED_KINDS = ('visual', 'contextual', 'other_work', 'other_work_marked', 'misfiled',
                      'long')


def _assert_same_painting(a, b):
  assert (a.id, a.title, a.year, a.split, a.img_url) == (b.id, b.title, b.year, b.split,
                                                        b.img_url)
  assert a.visual_sentences == b.visual_sentences
  assert a.contextual_sentences == b.contextual_sentences
  assert (a.visual_kinds, a.contextual_kinds) == (b.visual_kinds, b.contextual_kinds)
  assert a.image.size == b.image.size and a.image.tobytes() == b.image.tobytes()
  np.testing.assert_array_equal(a.features, b.features)
  np.testing.assert_array_equal(a.boxes, b.boxes)


def test_generate_is_deterministic(sample_paintings):
  again = list(sample_corpus.generate(num_paintings=30, seed=0))
  assert len(again) == len(sample_paintings) == 30
  for a, b in zip(sample_paintings, again):
    _assert_same_painting(a, b)


def test_different_seeds_give_different_corpora(sample_paintings):
  other = list(sample_corpus.generate(num_paintings=30, seed=1))
  assert [p.visual_sentences for p in other] != [p.visual_sentences for p in sample_paintings]
  assert [p.title for p in other] != [p.title for p in sample_paintings]
  assert not np.array_equal(other[0].features[:1], sample_paintings[0].features[:1])


def test_bad_arguments_fail_at_the_call():
  with pytest.raises(ValueError, match='num_paintings'):
    sample_corpus.generate(num_paintings=-1)
  with pytest.raises(ValueError, match='seed'):
    sample_corpus.generate(num_paintings=3, seed=-2)


def test_paintings_have_artpedia_fields(sample_paintings):
  assert [p.id for p in sample_paintings] == [str(i) for i in range(30)]
  url = re.compile(r'^https://upload\.wikimedia\.org/wikipedia/commons/([0-9a-f])/\1[0-9a-f]/'
                   r'[^/\s]+\.(jpg|png)$')
  for p in sample_paintings:
    assert p.title and isinstance(p.title, str)
    assert p.year is None or 1700 < p.year < 2000
    assert url.match(p.img_url), p.img_url
    assert p.split in ('train', 'val', 'test')
    assert 1 <= p.visual_kinds.count('visual') + p.visual_kinds.count('fragment') <= 6
    assert len(p.visual_kinds) == len(p.visual_sentences)
    assert len(p.contextual_kinds) == len(p.contextual_sentences)
    assert set(p.visual_kinds + p.contextual_kinds) <= set(sample_sentences.SENTENCE_KINDS)
    for sentence, kind in sample_helpers.labelled(p):
      assert sentence.strip(), (p.id, kind)  # the builder would drop an empty one
      if kind in _WELL_FORMED_KINDS:
        assert sentence[0].isupper() and sentence.endswith('.'), (p.id, sentence)
    assert p.image.mode == 'RGB'
    assert 256 <= max(p.image.size) <= 384


def test_splits_and_sentence_ratios_follow_artpedia(large_sample_corpus):
  stats = sample_statistics.corpus_statistics(large_sample_corpus)
  assert stats['num_paintings'] == 200
  assert stats['paintings_per_split'] == {'train': 160, 'val': 20, 'test': 20}
  assert 2.6 < stats['visual_per_painting'] < 3.6
  assert 5.5 < stats['contextual_per_painting'] < 7.5
  assert 1.6 < stats['contextual_sentences'] / stats['visual_sentences'] < 2.6
  assert 5 <= stats['paintings_without_contextual'] <= 40
  assert stats['vocabulary_size'] > 300
  assert 8 < stats['mean_sentence_length'] < 20
  unknown_years = sum(p.year is None for p in large_sample_corpus)
  assert 5 <= unknown_years <= 40


def test_small_corpora_still_have_every_split():
  splits = [p.split for p in sample_corpus.generate(num_paintings=5, seed=0)]
  assert sorted(splits) == ['test', 'train', 'train', 'train', 'val']
