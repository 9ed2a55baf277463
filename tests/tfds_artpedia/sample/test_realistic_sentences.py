"""The realistic sample corpus: Artpedia's lengths, long-tail vocabulary and label noise."""

import re

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics

from artpedia_jax.evaluation import text_baseline
from tests.helpers import sample_helpers
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import realistic_sentences as realistic
from tfds_artpedia.sample import scene as sample_scene
from tfds_artpedia.sample import statistics as sample_statistics

_WORD = re.compile(r"[a-z]+")
_COLOUR_OF_WORD = {word: colour for colour, words in realistic.COLOUR_WORDS.items()
                   for word in words}
_SHAPE_OF_NOUN = {noun: shape for shape, nouns in realistic.OBJECT_NOUNS.items()
                  for noun in nouns}
_FIGURE_WORDS = {figure.split()[-1].lower() for figure in realistic.FIGURES}


@pytest.fixture(scope='module')
def corpus():
  """300 paintings: enough for stable ratios, small enough to stay cheap."""
  return tuple(sample_corpus.generate(num_paintings=300, seed=0, realistic=True))


def _sentences(paintings, splits):
  texts, labels = [], []
  for p in paintings:
    if p.split in splits:
      texts += p.visual_sentences + p.contextual_sentences
      labels += [True] * len(p.visual_sentences) + [False] * len(p.contextual_sentences)
  return texts, np.array(labels)


def _named_objects(sentence):
  """(shape, colour) of every "<colour word> <object noun>" in the sentence."""
  words = _WORD.findall(sentence.lower())
  return {(_SHAPE_OF_NOUN[b], _COLOUR_OF_WORD[a]) for a, b in zip(words, words[1:])
          if a in _COLOUR_OF_WORD and b in _SHAPE_OF_NOUN}


def _of_kind(paintings, kind):
  return [(p, s) for p in paintings for s, k in sample_helpers.labelled(p) if k == kind]


def test_is_deterministic_and_differs_by_seed():
  first = list(sample_corpus.generate(num_paintings=6, seed=3, realistic=True))
  again = list(sample_corpus.generate(num_paintings=6, seed=3, realistic=True))
  other = list(sample_corpus.generate(num_paintings=6, seed=4, realistic=True))
  for a, b in zip(first, again):
    assert sample_helpers.labelled(a) == sample_helpers.labelled(b)
    assert (a.title, a.year, a.split, a.img_url) == (b.title, b.year, b.split, b.img_url)
    assert a.image.tobytes() == b.image.tobytes()
    np.testing.assert_array_equal(a.features, b.features)
  assert [p.visual_sentences for p in first] != [p.visual_sentences for p in other]


def test_has_the_sample_corpus_splits_and_its_own_kinds():
  plain = list(sample_corpus.generate(num_paintings=20, seed=0))
  real = list(sample_corpus.generate(num_paintings=20, seed=0, realistic=True))
  assert sorted(p.split for p in plain) == sorted(p.split for p in real)
  assert set(k for p in real for _, k in sample_helpers.labelled(p)) <= set(
      realistic.SENTENCE_KINDS)


def test_statistics_follow_real_artpedia(corpus):
  stats = sample_statistics.corpus_statistics(corpus)
  # Real Artpedia: mean 22, median 20, 95th percentile 43, 99th 59 words.
  assert 20.5 <= stats['mean_sentence_length'] <= 24
  assert 18 <= stats['median_sentence_length'] <= 22
  assert 39 <= stats['p95_sentence_length'] <= 47
  assert 52 <= stats['p99_sentence_length'] <= 68
  # A long tail: thousands of words, most of them rare.
  assert stats['vocabulary_size'] >= 3000
  assert stats['words_seen_once'] >= 0.4 * stats['vocabulary_size']
  assert 1.7 <= stats['contextual_sentences'] / stats['visual_sentences'] <= 2.4
  assert stats['paintings_per_split'] == {'train': 240, 'val': 30, 'test': 30}


def test_a_lexical_baseline_is_good_but_not_near_perfect(corpus):
  # Real Artpedia's test split: accuracy 0.855, AUC 0.925 for this baseline.
  baseline = text_baseline.TextBaseline.fit(*_sentences(corpus, ('train',)))
  texts, labels = _sentences(corpus, ('val', 'test'))
  p_visual = baseline.predict_proba(texts)
  accuracy = sklearn_metrics.accuracy_score(labels, p_visual >= 0.5)
  assert 0.78 <= accuracy <= 0.92
  assert sklearn_metrics.roc_auc_score(labels, p_visual) < 0.95


def test_visual_sentences_that_state_painter_date_and_collection(corpus):
  metadata = _of_kind(corpus, 'metadata')
  visual = sum(len(p.visual_sentences) for p in corpus)
  assert 0.1 <= len(metadata) / visual <= 0.2
  for p, sentence in metadata:
    assert sentence in p.visual_sentences
    assert re.search(r'\bpainting by\b|\bby [A-Z]|\bsigned and dated\b', sentence), sentence
  # The same words are filed as contextual more often still: a bag of words cannot tell.
  contextual_metadata = [s for p in corpus for s, k in zip(p.contextual_sentences,
                                                           p.contextual_kinds)
                         if k == 'contextual' and ' is a painting by ' in s]
  assert len(contextual_metadata) > len([s for _, s in metadata if ' is a painting by ' in s])


def test_contextual_sentences_that_name_objects_and_figures(corpus):
  named = _of_kind(corpus, 'object_context')
  contextual = sum(len(p.contextual_sentences) for p in corpus)
  assert 0.1 <= len(named) / contextual <= 0.22
  saints = sum('was venerated in' in s or 'was a symbol of' in s for _, s in named)
  assert saints >= 0.2 * len(named)
  for p, sentence in named:
    assert sentence in p.contextual_sentences
    words = set(_WORD.findall(sentence.lower()))
    assert words & (set(_SHAPE_OF_NOUN) | _FIGURE_WORDS | {'saint'}), sentence


def test_visual_sentences_name_painted_objects_and_some_name_unseen_ones(corpus):
  checked = 0
  for p in corpus:
    painted = {(dict(a)['shape'], dict(a)['colour'])
               for a in sample_helpers.decoded_attributes(p.features)
               if dict(a)['region'] == 'object'}
    for sentence, kind in zip(p.visual_sentences, p.visual_kinds):
      if kind == 'visual':
        named = _named_objects(sentence)
        assert named <= painted, (p.id, sentence, painted)
        checked += bool(named)
  assert checked > 300
  unseen = {p.id for p, _ in _of_kind(corpus, 'unseen_object')}
  assert len(unseen) >= 0.3 * len(corpus)  # paintings with a visual sentence no region shows
  for _, sentence in _of_kind(corpus, 'unseen_object'):
    words = set(_WORD.findall(sentence.lower()))
    assert words & (_FIGURE_WORDS | {'town'}), sentence


def test_every_painting_keeps_a_sentence_about_its_regions(corpus):
  for p in corpus:
    assert {'visual', 'fragment'} & set(p.visual_kinds), p.id
    assert p.features.shape[1] == 2048 and 3 <= len(p.boxes) <= 8
    assert set(sample_scene.SHAPES) >= {dict(a)['shape'] for a in sample_helpers.
                                       decoded_attributes(p.features)
                                       if dict(a)['region'] == 'object'}
