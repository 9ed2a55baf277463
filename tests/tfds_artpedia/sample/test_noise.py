"""Artpedia's label noise in the sample corpus: fragments, misfiled, run-on, no words."""

import re

from tests.helpers import sample_helpers
from tfds_artpedia.sample import statistics as sample_statistics

_WORD = re.compile(r"[a-z]+")


def test_labels_are_noisy_like_artpedias(large_sample_corpus):
  stats = sample_statistics.corpus_statistics(large_sample_corpus)
  visual, contextual = (stats['sentence_kinds'][name] for name in ('visual', 'contextual'))
  # Misfiled: 2-3% of each list's own sentences end up in the other list.
  assert 0.01 <= contextual['misfiled'] / (visual['visual'] + contextual['misfiled']) <= 0.05
  assert 0.01 <= visual['misfiled'] / (contextual['contextual'] + visual['misfiled']) <= 0.05
  assert 0.01 <= (visual['fragment'] + contextual['fragment']) / (
      stats['visual_sentences'] + stats['contextual_sentences']) <= 0.05
  assert stats['sentences_over_60_words'] == contextual['long'] >= 2
  assert stats['sentences_without_words'] == visual['no_words'] + contextual['no_words'] >= 2
  for p in large_sample_corpus:
    assert {'visual', 'fragment'} & set(p.visual_kinds), p.id  # a visual sentence remains
    for sentence, kind in sample_helpers.labelled(p):
      words = sentence.split()
      if kind == 'fragment':
        assert 2 <= len(words) <= 5, sentence
      elif kind == 'long':
        assert len(words) > 60, sentence
      assert (kind == 'no_words') == (not _WORD.findall(sentence.lower())), sentence
