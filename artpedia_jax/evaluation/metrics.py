"""Evaluation metrics of docs/design.md §7, in plain numpy, and their chance levels.

Conventions (our definitions; docs/design.md §7 states them with their reasons):
- A rank is the number of *negative* candidates (those that are not a positive of the
  query) whose score is greater than or equal to the best positive's score; 0 is best.
  Ties count against the model, so a collapsed model (all scores equal) ranks every
  query last, never first; positives tied with each other never count. Without ties
  this equals the VSE++ rank ("how many candidates score higher").
  R@K = 100 × fraction of queries with rank < K; medr = floor(median(rank)) + 1;
  meanr = mean(rank) + 1.
- Sentences without any word (punctuation only) take no part in retrieval: their score
  carries no information, so they are neither queries nor candidates
  (`retrievable=False`); they stay in `visual_id`.
- Each retrieval direction also reports `num_queries`; `i2t` and `i2t_all` report
  `num_left_out`, the paintings without any visual sentence (they have no positive, so
  they are no query; their contextual sentences stay distractors in `i2t_all`).
- AP (visual identification) = mean over the positives of the precision at that
  positive's score, counting every item with a score >= it as retrieved. Ties are thus
  resolved pessimistically (a tied group is retrieved all at once), which equals the
  step-wise AP of scikit-learn's `average_precision_score`; all-equal probabilities give
  AP = fraction of positives.
- Threshold metrics predict visual when p(visual) >= 0.5 (a tie at exactly 0.5 is visual). A ratio with a zero
  denominator (precision with nothing predicted visual, recall with no visual sentence,
  f1 with precision + recall = 0) is 0. Metrics that are undefined without both classes
  (`auc`, `ap`, `mAP` without any painting having both kinds) are None (JSON null).
- visual_id metrics are fractions in [0, 1]; R@K are percentages.
"""

from collections.abc import Sequence
import dataclasses
import math

import numpy as np

RECALL_KS = (1, 5, 10)
DECISION_THRESHOLD = 0.5
_MEDIAN_TOLERANCE = 1e-9  # cumulative products of ratios miss 0.5 by rounding


@dataclasses.dataclass(frozen=True)
class RetrievalRanks:
  """Per-query ranks, kept so that plots (recall@K curves) reuse the metric's ranks.

  `i2t_paintings` are the query paintings of `i2t`/`i2t_all` (those with at least one
  visual sentence); `t2i_sentences` are the query sentences of `t2i` (the visual ones).
  """
  i2t: np.ndarray
  i2t_all: np.ndarray
  t2i: np.ndarray
  i2t_paintings: np.ndarray
  t2i_sentences: np.ndarray
  num_paintings: int


def _check_sentences(sentence_painting, is_visual, num_paintings: int | None):
  """Validated int64 painting index and bool label per sentence, and the painting count."""
  sentence_painting = np.asarray(sentence_painting)
  is_visual = np.asarray(is_visual)
  if sentence_painting.ndim != 1 or is_visual.shape != sentence_painting.shape:
    raise ValueError(
        f'sentence_painting {sentence_painting.shape} and is_visual {is_visual.shape} '
        'must both be 1-D with one entry per sentence.')
  if sentence_painting.size and not np.issubdtype(sentence_painting.dtype, np.integer):
    raise ValueError(f'sentence_painting must hold integer painting indices, got '
                     f'{sentence_painting.dtype}.')
  sentence_painting = sentence_painting.astype(np.int64)
  if num_paintings is None:
    num_paintings = int(sentence_painting.max()) + 1 if sentence_painting.size else 0
  if sentence_painting.size and (sentence_painting.min() < 0 or
                                 sentence_painting.max() >= num_paintings):
    raise ValueError(
        f'sentence_painting must index paintings in [0, {num_paintings}); got values in '
        f'[{sentence_painting.min()}, {sentence_painting.max()}].')
  return sentence_painting, is_visual.astype(bool), num_paintings


def _check_finite(name: str, values: np.ndarray) -> None:
  if not np.all(np.isfinite(values)):
    raise ValueError(f'{name} contains NaN or inf ({np.sum(~np.isfinite(values))} '
                     'entries): the model produced non-finite outputs; evaluate a '
                     'checkpoint from before the divergence.')


def _retrievable_columns(retrievable, num_sentences: int) -> np.ndarray:
  """Indices of the sentences that take part in retrieval (all when None)."""
  if retrievable is None:
    return np.arange(num_sentences)
  retrievable = np.asarray(retrievable, dtype=bool)
  if retrievable.shape != (num_sentences,):
    raise ValueError(f'retrievable {retrievable.shape} must have one entry per sentence '
                     f'({num_sentences}).')
  return np.flatnonzero(retrievable)


def retrieval_ranks(scores, sentence_painting, is_visual, retrievable=None
                    ) -> RetrievalRanks:
  """Ranks of every query of i2t, i2t_all and t2i (docs/design.md §7.5), vectorised.

  Only the `retrievable` sentences (default: all) are queries and candidates. A
  painting's rank is that of its best-scored own visual sentence, so one comparison of
  each row against that score suffices; positives are masked out of the count.
  """
  scores = np.asarray(scores)
  if not np.issubdtype(scores.dtype, np.floating):
    scores = scores.astype(np.float64)
  if scores.ndim != 2:
    raise ValueError(f'scores must be [paintings, sentences], got shape {scores.shape}.')
  num_paintings, num_sentences = scores.shape
  sentence_painting, is_visual, _ = _check_sentences(
      sentence_painting, is_visual, num_paintings)
  if sentence_painting.size != num_sentences:
    raise ValueError(f'scores has {num_sentences} sentence columns but sentence_painting '
                     f'has {sentence_painting.size} entries; they must match.')
  columns = _retrievable_columns(retrievable, num_sentences)
  scores = scores[:, columns]
  sentence_painting, is_visual = sentence_painting[columns], is_visual[columns]
  _check_finite('scores', scores)
  visual = np.flatnonzero(is_visual)
  if visual.size == 0:
    raise ValueError('retrieval metrics need at least one visual sentence in the split; '
                     'got none (check is_visual).')
  owner = sentence_painting[visual]
  positive = scores[owner, visual]  # S(own painting, visual sentence)
  best_own = np.full(num_paintings, -np.inf, dtype=scores.dtype)
  np.maximum.at(best_own, owner, positive)
  queries = np.flatnonzero(np.isfinite(best_own))
  paintings = np.arange(num_paintings)[:, None]
  own_visual = (sentence_painting[None, :] == paintings) & is_visual[None, :]  # [P, S]
  at_least_best = (scores >= best_own[:, None]) & ~own_visual
  visual_scores = scores[:, visual]
  other_painting = owner[None, :] != paintings  # [P, V]
  return RetrievalRanks(
      i2t=np.count_nonzero(at_least_best[:, visual], axis=1)[queries],
      i2t_all=np.count_nonzero(at_least_best, axis=1)[queries],
      t2i=np.count_nonzero((visual_scores >= positive[None, :]) & other_painting, axis=0),
      i2t_paintings=queries,
      t2i_sentences=columns[visual],
      num_paintings=num_paintings)


def recall_at_k(ranks: np.ndarray, ks: Sequence[int]) -> np.ndarray:
  """R@K in percent for each K in `ks`: 100 × fraction of ranks below K."""
  ranks = np.asarray(ranks)
  return 100.0 * np.mean(ranks[:, None] < np.asarray(ks)[None, :], axis=0)


def rank_summary(ranks: np.ndarray) -> dict:
  """R@1/5/10, medr, meanr and the query count of one retrieval direction."""
  recalls = recall_at_k(ranks, RECALL_KS)
  summary = {f'R@{k}': float(r) for k, r in zip(RECALL_KS, recalls)}
  summary['medr'] = int(math.floor(np.median(ranks))) + 1
  summary['meanr'] = float(np.mean(ranks)) + 1.0
  summary['num_queries'] = int(len(ranks))
  return summary


def rsum(i2t: dict, t2i: dict) -> float:
  return float(sum(i2t[f'R@{k}'] + t2i[f'R@{k}'] for k in RECALL_KS))


def _with_left_out(summary: dict, num_paintings: int) -> dict:
  return {**summary, 'num_left_out': num_paintings - summary['num_queries']}


def retrieval_metrics(scores, sentence_painting, is_visual, retrievable=None) -> dict:
  """i2t, t2i, i2t_all summaries and rsum for a [P, S] score matrix."""
  ranks = retrieval_ranks(scores, sentence_painting, is_visual, retrievable)
  i2t = _with_left_out(rank_summary(ranks.i2t), ranks.num_paintings)
  t2i = rank_summary(ranks.t2i)
  i2t_all = _with_left_out(rank_summary(ranks.i2t_all), ranks.num_paintings)
  return {'i2t': i2t, 't2i': t2i, 'i2t_all': i2t_all, 'rsum': rsum(i2t, t2i)}


def _average_precision_by_group(scores, labels, groups, num_groups):
  """AP of each group's positives when the group ranks its own items by score.

  Vectorised over groups: scores become dense integer levels, and (group, level) one
  sortable integer key, so "same group and score >= mine" is a difference of two
  `searchsorted` positions. Returns (AP or nan per group, positives, items per group).
  """
  _, levels = np.unique(scores, return_inverse=True)
  levels = levels.reshape(-1)
  num_levels = int(levels.max()) + 1 if levels.size else 1
  keys = groups * num_levels + levels
  positive_keys = keys[labels]
  group_end = (groups[labels] + 1) * num_levels

  def count_at_least(sorted_keys):
    return (np.searchsorted(sorted_keys, group_end, side='left') -
            np.searchsorted(sorted_keys, positive_keys, side='left'))

  precision = count_at_least(np.sort(positive_keys)) / count_at_least(np.sort(keys))
  num_positive = np.bincount(groups[labels], minlength=num_groups)
  num_items = np.bincount(groups, minlength=num_groups)
  summed = np.bincount(groups[labels], weights=precision, minlength=num_groups)
  with np.errstate(invalid='ignore', divide='ignore'):
    return summed / num_positive, num_positive, num_items


def average_precision(scores, labels) -> float | None:
  """AP of the positives over all items (None without any positive)."""
  labels = np.asarray(labels, dtype=bool)
  if not labels.any():
    return None
  groups = np.zeros(labels.size, dtype=np.int64)
  ap, _, _ = _average_precision_by_group(np.asarray(scores), labels, groups, 1)
  return float(ap[0])


def roc_auc(scores, labels) -> float | None:
  """ROC AUC = P(positive scores above negative), ties counted as half (None if one class)."""
  scores = np.asarray(scores)
  labels = np.asarray(labels, dtype=bool)
  positives, negatives = scores[labels], np.sort(scores[~labels])
  if positives.size == 0 or negatives.size == 0:
    return None
  below = np.searchsorted(negatives, positives, side='left')
  tied = np.searchsorted(negatives, positives, side='right') - below
  return float((below.sum() + 0.5 * tied.sum()) / (positives.size * negatives.size))


def precision_recall_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(precision, recall, threshold) at each distinct score, highest threshold first.

  At threshold t every item with score >= t is predicted positive (as in AP above).
  """
  scores = np.asarray(scores)
  labels = np.asarray(labels, dtype=bool)
  order = np.argsort(-scores, kind='stable')
  sorted_scores = scores[order]
  true_positives = np.cumsum(labels[order])
  last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
  predicted = np.arange(1, scores.size + 1)[last_of_tie]
  true_positives = true_positives[last_of_tie]
  recall = true_positives / max(int(labels.sum()), 1)
  return true_positives / predicted, recall, sorted_scores[last_of_tie]


def _ratio(numerator: float, denominator: float) -> float:
  return float(numerator / denominator) if denominator else 0.0


def _threshold_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
  predicted = probs >= DECISION_THRESHOLD
  true_positives = np.sum(predicted & labels)
  precision = _ratio(true_positives, predicted.sum())
  recall = _ratio(true_positives, labels.sum())
  return {
      'accuracy': _ratio(np.sum(predicted == labels), labels.size),
      'precision': precision,
      'recall': recall,
      'f1': _ratio(2 * precision * recall, precision + recall),
  }


def _both_kinds(num_positive: np.ndarray, num_items: np.ndarray) -> np.ndarray:
  return (num_positive > 0) & (num_positive < num_items)


def _mean_or_none(values: np.ndarray) -> float | None:
  return float(np.mean(values)) if values.size else None


def visual_id_metrics(probs, is_visual, sentence_painting, *,
                      num_paintings: int | None = None) -> dict:
  """mAP over paintings, threshold metrics, auc and ap of p(visual) (docs/design.md §7.6).

  `num_paintings_mAP` paintings have both kinds of sentence and enter mAP;
  `num_paintings_left_out_mAP` (those with one kind only, or no sentence) do not.
  `num_paintings` defaults to max(sentence_painting) + 1.
  """
  probs = np.asarray(probs, dtype=np.float64)
  sentence_painting, is_visual, num_paintings = _check_sentences(
      sentence_painting, is_visual, num_paintings)
  if probs.shape != is_visual.shape:
    raise ValueError(f'probs {probs.shape} must have one entry per sentence, like '
                     f'is_visual {is_visual.shape}.')
  _check_finite('probs', probs)
  ap, num_positive, num_items = _average_precision_by_group(
      probs, is_visual, sentence_painting, num_paintings)
  counted = _both_kinds(num_positive, num_items)
  return {
      'mAP': _mean_or_none(ap[counted]),
      **_threshold_metrics(probs, is_visual),
      'auc': roc_auc(probs, is_visual),
      'ap': average_precision(probs, is_visual),
      'num_paintings_mAP': int(counted.sum()),
      'num_paintings_left_out_mAP': int(num_paintings - counted.sum()),
  }


def evaluation_metrics(scores, probs, sentence_painting, is_visual, *, split: str,
                       step: int, retrievable=None) -> dict:
  """The metrics file of docs/design.md §7.9 (JSON-serialisable python numbers).

  `num_sentences_not_retrievable` counts the sentences left out of retrieval (no word);
  every sentence counts in `visual_id`.
  """
  scores = np.asarray(scores)
  columns = _retrievable_columns(retrievable, scores.shape[1])
  return {
      'split': split,
      'step': int(step),
      'num_paintings': int(scores.shape[0]),
      'num_sentences': int(scores.shape[1]),
      'num_sentences_not_retrievable': int(scores.shape[1] - columns.size),
      **retrieval_metrics(scores, sentence_painting, is_visual, retrievable),
      'visual_id': visual_id_metrics(probs, is_visual, sentence_painting,
                                     num_paintings=scores.shape[0]),
  }


# Chance levels: the value of each metric under i.i.d. continuous random scores and
# probabilities uniform in [0, 1]. Retrieval is exact: ranking is a uniformly random
# permutation, and with k positives among N candidates the best positive's rank r has
# P(rank >= r) = C(N-k, r) / C(N, r) (no positive among the top r). R@K and meanr are
# the expectations over queries; medr is the median of the rank distribution pooled over
# queries (the value the sample medr tends to on a large split), plus one.


def _first_positive_survival(num_candidates: int, num_positives: int) -> np.ndarray:
  """P(rank >= r) for r = 0..N: a product of ratios, exact up to float rounding."""
  r = np.arange(num_candidates)
  ratios = np.clip((num_candidates - num_positives - r) / (num_candidates - r), 0, None)
  return np.concatenate([[1.0], np.cumprod(ratios)])


def _chance_rank_summary(num_candidates: int, positives_per_query: np.ndarray) -> dict:
  ks, counts = np.unique(positives_per_query, return_counts=True)
  survival = sum(c * _first_positive_survival(num_candidates, int(k))
                 for k, c in zip(ks, counts)) / counts.sum()
  summary = {f'R@{k}': float(100.0 * (1.0 - survival[min(k, num_candidates)]))
             for k in RECALL_KS}
  below_or_at = 1.0 - survival[1:]  # P(rank <= r)
  summary['medr'] = int(np.argmax(below_or_at >= 0.5 - _MEDIAN_TOLERANCE)) + 1
  summary['meanr'] = float(survival[1:].sum()) + 1.0
  summary['num_queries'] = int(len(positives_per_query))
  return summary


def expected_average_precision(num_items, num_positives):
  """E[AP] under a uniformly random order of N items with k positives (exact).

  A positive at position n (uniform in 1..N) has on average (n-1)(k-1)/(N-1) other
  positives above it, so E[AP] = (k-1)/(N-1) + H_N (N-k) / (N (N-1)); 1 when N = 1.
  """
  counts = np.asarray(num_items, dtype=np.int64)
  harmonic = np.r_[0.0, np.cumsum(1.0 / np.arange(1, counts.max(initial=0) + 1))][counts]
  n = counts.astype(np.float64)
  k = np.asarray(num_positives, dtype=np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    value = (k - 1) / (n - 1) + harmonic * (n - k) / (n * (n - 1))
  return np.where(n == 1, 1.0, value)


def _chance_visual_id(is_visual: np.ndarray, sentence_painting: np.ndarray,
                      num_paintings: int) -> dict:
  """A fair coin per sentence (p(visual) uniform): accuracy 0.5, recall 0.5, auc 0.5.

  Precision and f1 come from the coin's expected confusion matrix (precision = fraction
  visual): the large-split limit of their expectations.
  """
  num_positive = np.bincount(sentence_painting[is_visual], minlength=num_paintings)
  num_items = np.bincount(sentence_painting, minlength=num_paintings)
  counted = _both_kinds(num_positive, num_items)
  prevalence = float(np.mean(is_visual))
  recall = 0.5 if is_visual.any() else 0.0
  precision = prevalence
  has_both = 0 < is_visual.sum() < is_visual.size
  return {
      'mAP': _mean_or_none(expected_average_precision(num_items[counted],
                                                      num_positive[counted])),
      'accuracy': 0.5,
      'precision': precision,
      'recall': recall,
      'f1': _ratio(2 * precision * recall, precision + recall),
      'auc': 0.5 if has_both else None,
      'ap': (float(expected_average_precision(is_visual.size, is_visual.sum()))
             if is_visual.any() else None),
      'num_paintings_mAP': int(counted.sum()),
      'num_paintings_left_out_mAP': int(num_paintings - counted.sum()),
  }


def chance_levels(sentence_painting, is_visual, *, num_paintings: int | None = None,
                  split: str | None = None, step: int | None = None) -> dict:
  """The metrics file of random scores for this split (same layout as the metrics).

  `num_paintings` defaults to max(sentence_painting) + 1; pass it when some paintings
  have no sentence.
  """
  sentence_painting, is_visual, num_paintings = _check_sentences(
      sentence_painting, is_visual, num_paintings)
  if not is_visual.any():
    raise ValueError('chance levels of retrieval need at least one visual sentence in '
                     'the split; got none (check is_visual).')
  visual_per_painting = np.bincount(sentence_painting[is_visual], minlength=num_paintings)
  positives = visual_per_painting[visual_per_painting > 0]
  i2t = _with_left_out(_chance_rank_summary(int(is_visual.sum()), positives),
                       num_paintings)
  t2i = _chance_rank_summary(num_paintings, np.ones(int(is_visual.sum()), np.int64))
  i2t_all = _with_left_out(_chance_rank_summary(is_visual.size, positives), num_paintings)
  return {
      'split': split,
      'step': step,
      'num_paintings': num_paintings,
      'num_sentences': int(is_visual.size),
      'i2t': i2t,
      't2i': t2i,
      'i2t_all': i2t_all,
      'rsum': rsum(i2t, t2i),
      'visual_id': _chance_visual_id(is_visual, sentence_painting, num_paintings),
  }
