"""The lexical baseline of visual-sentence identification: TF-IDF + logistic regression.

A bag-of-words classifier is the first thing a reader compares the model's visual/contextual
classifier with: if word counts alone do as well, the model has learnt nothing beyond them.
The baseline sees only the training split's sentences and labels and is deterministic (a
fixed solver, no sampling), so two evaluations of the same data report the same figures.

Features: word 1- and 2-grams, lower-cased, sublinear term frequency (1 + log tf), idf
smoothing and L2-normalised rows. Classifier: L2-regularised logistic regression (C = 1,
lbfgs). Both are scikit-learn's.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

NGRAM_RANGE = (1, 2)
_MAX_ITER = 1000


class BaselineError(ValueError):
  """The training sentences cannot fit a baseline (one class only, no words)."""


@dataclasses.dataclass(frozen=True)
class TextBaseline:
  """A fitted TF-IDF vectoriser and the logistic regression on its features."""
  vectorizer: TfidfVectorizer
  classifier: LogisticRegression

  @classmethod
  def fit(cls, texts: Sequence[str], is_visual: Sequence[bool]) -> 'TextBaseline':
    """Fits on training sentences and their labels (True = visual)."""
    texts = list(texts)
    labels = np.asarray(is_visual, dtype=bool)
    if labels.shape != (len(texts),):
      raise BaselineError(
          f'{len(texts)} sentences but labels of shape {labels.shape}; give one label '
          'per sentence.')
    if not texts:
      raise BaselineError('no training sentences; the baseline needs the training split.')
    classes = np.unique(labels)
    if classes.size < 2:
      kind = 'visual' if classes[0] else 'contextual'
      raise BaselineError(
          f'the training sentences are all {kind} ({len(texts)} of them); the baseline '
          'needs both visual and contextual sentences to learn from.')
    vectorizer = TfidfVectorizer(ngram_range=NGRAM_RANGE, sublinear_tf=True, lowercase=True)
    try:
      features = vectorizer.fit_transform(texts)
    except ValueError as e:  # scikit-learn's "empty vocabulary"
      raise BaselineError(
          f'the training sentences contain no words to count ({e}); check that the '
          'split holds sentence text.') from e
    classifier = LogisticRegression(solver='lbfgs', C=1.0, max_iter=_MAX_ITER, random_state=0)
    classifier.fit(features, labels)
    return cls(vectorizer, classifier)

  def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
    """p(visual) per sentence, float64 of shape [len(texts)]."""
    texts = list(texts)
    if not texts:
      return np.zeros((0,), np.float64)
    probabilities = self.classifier.predict_proba(self.vectorizer.transform(texts))
    visual_column = list(self.classifier.classes_).index(True)
    return probabilities[:, visual_column].astype(np.float64)
