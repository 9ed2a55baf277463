"""The TF-IDF + logistic-regression baseline of visual-sentence identification."""

import numpy as np
import pytest

from artpedia_jax.evaluation import text_baseline

VISUAL = ['a red robe over the kneeling figure', 'the sky is blue above the hills',
          'a white dove hovers over the figure', 'gold light falls on the red robe',
          'the kneeling saint wears a blue cloak', 'two figures stand under a blue sky']
CONTEXTUAL = ['the altarpiece was commissioned in 1503', 'he was paid by the guild in 1520',
              'the panel was sold to the museum in 1880', 'the guild commissioned the work',
              'the museum bought the panel from a dealer', 'records from 1510 mention the fee']


def _fit():
  return text_baseline.TextBaseline.fit(VISUAL + CONTEXTUAL,
                                        [True] * len(VISUAL) + [False] * len(CONTEXTUAL))


def test_learns_a_separable_set_and_generalises_by_words():
  baseline = _fit()
  train = baseline.predict_proba(VISUAL + CONTEXTUAL)
  assert train.shape == (12,) and train.dtype == np.float64
  assert np.all(train[:6] > 0.5) and np.all(train[6:] < 0.5)
  unseen = baseline.predict_proba(['a blue robe on the kneeling figure',
                                   'the guild paid the museum in 1503'])
  assert unseen[0] > 0.5 > unseen[1]
  assert np.all((unseen >= 0) & (unseen <= 1))


def test_bigrams_carry_information_beyond_single_words():
  # Same words in both classes; only their order (bigrams) tells the classes apart.
  visual = ['red robe blue sky'] * 4
  contextual = ['blue robe red sky'] * 4
  baseline = text_baseline.TextBaseline.fit(visual + contextual, [True] * 4 + [False] * 4)
  p = baseline.predict_proba(['red robe blue sky', 'blue robe red sky'])
  assert p[0] > 0.5 > p[1]


def test_is_deterministic():
  texts = ['the red robe', 'sold in 1880', 'a blue sky', 'paid in 1503']
  np.testing.assert_array_equal(_fit().predict_proba(texts), _fit().predict_proba(texts))


def test_label_order_does_not_matter_for_the_visual_column():
  # Visual first or contextual first in the data: p is always p(visual).
  baseline = text_baseline.TextBaseline.fit(CONTEXTUAL + VISUAL,
                                            [False] * len(CONTEXTUAL) + [True] * len(VISUAL))
  assert baseline.predict_proba(['a red robe over the kneeling figure'])[0] > 0.5


def test_empty_input_gives_empty_output():
  assert _fit().predict_proba([]).shape == (0,)


@pytest.mark.parametrize('label, kind', [(True, 'visual'), (False, 'contextual')])
def test_one_class_is_a_clear_error(label, kind):
  with pytest.raises(text_baseline.BaselineError, match=f'all {kind}.*both visual and'):
    text_baseline.TextBaseline.fit(VISUAL, [label] * len(VISUAL))


def test_no_sentences_is_a_clear_error():
  with pytest.raises(text_baseline.BaselineError, match='no training sentences'):
    text_baseline.TextBaseline.fit([], [])


def test_sentences_without_words_are_a_clear_error():
  with pytest.raises(text_baseline.BaselineError, match='no words'):
    text_baseline.TextBaseline.fit(['', '!'], [True, False])


def test_mismatched_labels_are_a_clear_error():
  with pytest.raises(text_baseline.BaselineError, match='one label per sentence'):
    text_baseline.TextBaseline.fit(VISUAL, [True, False])
