"""Metrics of docs/design.md §7 on hand-made score matrices, and chance levels vs Monte Carlo."""

import json
import math

import numpy as np
import pytest

from artpedia_jax.evaluation import metrics

# Three paintings; painting 0: 2 visual + 1 contextual, 1: 1 visual + 2 contextual,
# 2: 1 visual and no contextual sentence.
PAINTING = np.array([0, 0, 0, 1, 1, 1, 2])
VISUAL = np.array([True, True, False, True, False, False, True])


def _perfect_scores(painting=PAINTING, visual=VISUAL, num_paintings=3):
  """Own visual sentences score 1, own contextual 0.5, others 0: every query first."""
  own = painting[None, :] == np.arange(num_paintings)[:, None]
  return np.where(own, np.where(visual[None, :], 1.0, 0.5), 0.0)


def test_perfect_ranking_gives_full_recall():
  result = metrics.retrieval_metrics(_perfect_scores(), PAINTING, VISUAL)
  for direction in ('i2t', 't2i', 'i2t_all'):
    assert result[direction]['R@1'] == 100.0
    assert result[direction]['medr'] == 1
    assert result[direction]['meanr'] == 1.0
  assert result['rsum'] == 600.0
  assert result['i2t']['num_queries'] == 3
  assert result['t2i']['num_queries'] == 4


def test_reversed_ranking_puts_positives_last():
  # One visual sentence per painting, own score lowest in every row and column.
  painting = np.arange(4)
  visual = np.ones(4, bool)
  scores = 1.0 - np.eye(4) + np.arange(4)[None, :] * 0.01
  ranks = metrics.retrieval_ranks(scores, painting, visual)
  np.testing.assert_array_equal(ranks.i2t, [3, 3, 3, 3])
  np.testing.assert_array_equal(ranks.t2i, [3, 3, 3, 3])
  result = metrics.retrieval_metrics(scores, painting, visual)
  assert result['i2t']['R@1'] == 0.0
  assert result['i2t']['R@5'] == 100.0
  assert result['t2i']['medr'] == 4
  assert result['t2i']['meanr'] == 4.0


def test_constant_scorer_ranks_every_query_last():
  # A collapsed model: every score equal. Each rank is the number of negatives.
  ranks = metrics.retrieval_ranks(np.zeros((3, 7)), PAINTING, VISUAL)
  np.testing.assert_array_equal(ranks.t2i, [2, 2, 2, 2])  # the other two paintings
  np.testing.assert_array_equal(ranks.i2t, [2, 3, 3])  # other paintings' visual ones
  np.testing.assert_array_equal(ranks.i2t_all, [5, 6, 6])  # all but own visual ones
  result = metrics.retrieval_metrics(np.zeros((3, 7)), PAINTING, VISUAL)
  assert result['t2i']['R@1'] == 0.0 and result['i2t']['R@1'] == 0.0


def test_negative_tied_with_the_positive_counts_against():
  scores = _perfect_scores()
  scores[1, 0] = 1.0  # painting 1 ties sentence 0 with painting 0 (its positive)
  scores[0, 3] = 1.0  # painting 0 ties painting 1's visual sentence 3 with its own
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  assert ranks.t2i[0] == 1
  assert ranks.i2t[0] == 1
  assert ranks.i2t_all[0] == 1


def test_positives_tied_with_each_other_never_count():
  scores = _perfect_scores()  # painting 0's two visual sentences both score 1
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  assert ranks.i2t[0] == 0 and ranks.i2t_all[0] == 0


def test_own_contextual_sentence_tied_with_the_positive_is_a_distractor():
  scores = _perfect_scores()
  scores[0, 2] = 1.0  # painting 0's contextual sentence ties its visual ones
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  assert ranks.i2t[0] == 0  # not a candidate of i2t
  assert ranks.i2t_all[0] == 1


def test_sentences_without_words_take_no_part_in_retrieval():
  rng = np.random.default_rng(1)
  scores = rng.normal(size=(3, 7))
  keep = np.array([True, True, False, True, True, False, True])
  with_empty = metrics.evaluation_metrics(scores, rng.random(7), PAINTING, VISUAL,
                                          split='test', step=0, retrievable=keep)
  without = metrics.retrieval_metrics(scores[:, keep], PAINTING[keep], VISUAL[keep])
  for key in ('i2t', 't2i', 'i2t_all', 'rsum'):
    assert with_empty[key] == without[key]
  assert with_empty['num_sentences_not_retrievable'] == 2
  assert with_empty['num_sentences'] == 7


def test_painting_rank_is_best_of_its_visual_sentences():
  # Painting 0's visual sentences score 0.5 and 0.9 in its row; visual sentence 3 of
  # painting 1 scores 0.95 and contextual sentences 2, 4, 5 score 0.99 (i2t_all only).
  scores = np.zeros((3, 7))
  scores[0] = [0.5, 0.9, 0.99, 0.95, 0.99, 0.99, 0.1]
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  assert ranks.i2t[0] == 1  # only sentence 3 beats 0.9 among visual sentences
  assert ranks.i2t_all[0] == 4  # sentences 2, 3, 4, 5 beat 0.9


def test_t2i_rank_counts_paintings_scoring_higher():
  scores = _perfect_scores()
  scores[:, 6] = [0.7, 0.8, 0.6]  # painting 2 is third for its own sentence 6
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  np.testing.assert_array_equal(ranks.t2i_sentences, [0, 1, 3, 6])
  np.testing.assert_array_equal(ranks.t2i, [0, 0, 0, 2])


def test_summary_conventions():
  summary = metrics.rank_summary(np.array([0, 1, 2, 12]))
  assert summary['R@1'] == 25.0
  assert summary['R@5'] == 75.0
  assert summary['R@10'] == 75.0
  assert summary['medr'] == 2  # floor(median 1.5) + 1
  assert summary['meanr'] == 4.75


def test_painting_without_visual_sentence_is_left_out_and_counted():
  painting = np.array([0, 0, 1, 1])
  visual = np.array([True, False, False, False])
  scores = np.array([[0.5, 0.1, 0.9, 0.2],
                     [0.3, 0.3, 0.3, 0.3]])
  result = metrics.retrieval_metrics(scores, painting, visual)
  assert result['i2t']['num_queries'] == 1
  assert result['i2t']['num_left_out'] == 1
  assert result['i2t']['R@1'] == 100.0
  # Painting 1's contextual sentence 2 is a distractor for painting 0 in i2t_all.
  assert result['i2t_all']['medr'] == 2
  assert result['i2t_all']['num_left_out'] == 1


def test_split_of_one_painting():
  scores = np.array([[0.2, 0.9, 0.1]])
  painting = np.zeros(3, np.int64)
  visual = np.array([True, False, True])
  result = metrics.evaluation_metrics(scores, np.array([0.9, 0.3, 0.2]), painting,
                                      visual, split='test', step=3)
  assert result['t2i']['R@1'] == 100.0
  assert result['i2t']['R@1'] == 100.0
  assert result['i2t_all']['meanr'] == 2.0  # the contextual sentence is above 0.2
  assert result['visual_id']['mAP'] == pytest.approx((1 + 2 / 3) / 2)
  chance = metrics.chance_levels(painting, visual)
  assert chance['t2i']['R@1'] == 100.0
  assert chance['i2t']['R@1'] == 100.0


def test_evaluation_metrics_layout_is_json():
  rng = np.random.default_rng(0)
  result = metrics.evaluation_metrics(rng.normal(size=(3, 7)), rng.random(7), PAINTING,
                                      VISUAL, split='validation', step=10)
  assert list(result) == ['split', 'step', 'num_paintings', 'num_sentences',
                          'num_sentences_not_retrievable', 'i2t', 't2i', 'i2t_all', 'rsum',
                          'visual_id']
  assert result['num_paintings'] == 3 and result['num_sentences'] == 7
  for direction in ('i2t', 't2i', 'i2t_all'):
    assert {'R@1', 'R@5', 'R@10', 'medr', 'meanr'} <= set(result[direction])
  assert {'mAP', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'ap'} <= set(
      result['visual_id'])
  assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_mismatched_or_non_finite_inputs_are_errors():
  with pytest.raises(ValueError, match='sentence columns'):
    metrics.retrieval_metrics(np.zeros((3, 6)), PAINTING, VISUAL)
  with pytest.raises(ValueError, match='NaN'):
    metrics.retrieval_metrics(np.full((3, 7), np.nan), PAINTING, VISUAL)
  with pytest.raises(ValueError, match=r'\[0, 2\)'):
    metrics.retrieval_metrics(np.zeros((2, 7)), PAINTING, VISUAL)
  with pytest.raises(ValueError, match='at least one visual'):
    metrics.retrieval_metrics(np.zeros((3, 7)), PAINTING, np.zeros(7, bool))


# Visual-sentence identification.


def test_average_precision_ties_are_pessimistic():
  # Positives at scores 0.9 and 0.5; a negative tied at 0.9: precisions 1/2 and 2/3.
  scores = np.array([0.9, 0.9, 0.5, 0.1])
  labels = np.array([True, False, True, False])
  assert metrics.average_precision(scores, labels) == pytest.approx((1 / 2 + 2 / 3) / 2)
  assert metrics.average_precision(np.zeros(4), labels) == 0.5  # = fraction positive


def test_average_precision_matches_pr_curve_area():
  rng = np.random.default_rng(1)
  scores = rng.integers(0, 5, 40) / 4  # many ties
  labels = rng.random(40) < 0.3
  precision, recall, thresholds = metrics.precision_recall_curve(scores, labels)
  assert np.all(np.diff(thresholds) < 0)
  assert recall[-1] == 1.0
  area = np.sum(np.diff(np.r_[0.0, recall]) * precision)
  assert metrics.average_precision(scores, labels) == pytest.approx(area)


def test_roc_auc_counts_ties_as_half():
  labels = np.array([True, True, False, False])
  assert metrics.roc_auc(np.array([0.9, 0.4, 0.4, 0.1]), labels) == 0.875
  assert metrics.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 0.0
  assert metrics.roc_auc(np.ones(4), labels) == 0.5
  assert metrics.roc_auc(np.ones(2), np.ones(2, bool)) is None


def test_visual_id_threshold_metrics():
  probs = np.array([0.9, 0.6, 0.4, 0.2, 0.7, 0.5, 0.1])
  result = metrics.visual_id_metrics(probs, VISUAL, PAINTING)
  # Predicted visual (p >= 0.5): sentences 0, 1, 4, 5; true visual: 0, 1, 3, 6.
  assert result['accuracy'] == pytest.approx(3 / 7)
  assert result['precision'] == 0.5
  assert result['recall'] == 0.5
  assert result['f1'] == 0.5
  nothing_predicted = metrics.visual_id_metrics(np.zeros(7), VISUAL, PAINTING)
  assert nothing_predicted['precision'] == 0.0
  assert nothing_predicted['f1'] == 0.0


def test_map_leaves_out_paintings_with_one_kind_of_sentence():
  # Painting 0 ranks its visual sentences 1st and 3rd (AP 5/6); painting 1 puts its
  # visual sentence 2nd (AP 1/2); painting 2 has no contextual sentence: left out.
  probs = np.array([0.9, 0.2, 0.5, 0.6, 0.8, 0.1, 0.0])
  result = metrics.visual_id_metrics(probs, VISUAL, PAINTING)
  assert result['mAP'] == pytest.approx((5 / 6 + 1 / 2) / 2)
  assert result['num_paintings_mAP'] == 2
  assert result['num_paintings_left_out_mAP'] == 1
  only_visual = metrics.visual_id_metrics(probs[6:], VISUAL[6:], np.zeros(1, np.int64))
  assert only_visual['mAP'] is None and only_visual['auc'] is None


# Chance levels.


def test_chance_recall_is_combinatorial():
  chance = metrics.chance_levels(PAINTING, VISUAL)
  num_visual = 4  # candidates of i2t; paintings have 2, 1, 1 visual sentences
  for k in (1, 5, 10):
    top = min(k, num_visual)
    miss = [math.comb(num_visual - n, top) / math.comb(num_visual, top) for n in (2, 1, 1)]
    assert chance['i2t'][f'R@{k}'] == pytest.approx(100 * (1 - np.mean(miss)))
    assert chance['t2i'][f'R@{k}'] == pytest.approx(100 * min(k / 3, 1))
  assert chance['t2i']['meanr'] == pytest.approx(2.0)  # uniform over ranks 0..2, + 1
  assert chance['t2i']['medr'] == 2
  # E[best rank] with n positives among N is (N - n) / (n + 1).
  expected = np.mean([(7 - n) / (n + 1) for n in (2, 1, 1)]) + 1
  assert chance['i2t_all']['meanr'] == pytest.approx(expected)


def test_chance_medr_of_even_uniform_rank():
  painting = np.arange(10)
  chance = metrics.chance_levels(painting, np.ones(10, bool))
  assert chance['t2i']['medr'] == 5  # ranks 0..9: lower median 4, + 1


def _random_sentences(rng, num_paintings):
  visual = [rng.integers(0, 4) for _ in range(num_paintings)]
  contextual = [rng.integers(0, 5) for _ in range(num_paintings)]
  visual[0] = 0  # a painting without visual sentence
  contextual[1] = 0  # and one without contextual sentence
  painting = np.repeat(np.arange(num_paintings), np.add(visual, contextual))
  is_visual = np.concatenate([np.r_[np.ones(v, bool), np.zeros(c, bool)]
                              for v, c in zip(visual, contextual)])
  return painting, is_visual


def test_chance_levels_match_monte_carlo_average():
  rng = np.random.default_rng(0)
  num_paintings = 40
  painting, is_visual = _random_sentences(rng, num_paintings)
  chance = metrics.chance_levels(painting, is_visual)
  draws = [metrics.evaluation_metrics(rng.random((num_paintings, painting.size)),
                                      rng.random(painting.size), painting, is_visual,
                                      split='test', step=0)
           for _ in range(400)]
  def assert_close_to_average(key_path):
    *parents, key = key_path
    values = [d[parents[0]][key] if parents else d[key] for d in draws]
    expected = chance[parents[0]][key] if parents else chance[key]
    standard_error = np.std(values) / math.sqrt(len(values))
    assert abs(np.mean(values) - expected) <= 4 * standard_error + 1e-9, (
        key_path, np.mean(values), expected)

  for direction in ('i2t', 't2i', 'i2t_all'):
    for key in ('R@1', 'R@5', 'R@10', 'meanr', 'medr'):
      assert_close_to_average((direction, key))
  assert_close_to_average(('rsum',))
  for key in ('mAP', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'ap'):
    assert_close_to_average(('visual_id', key))
  assert chance['visual_id']['num_paintings_mAP'] == draws[0]['visual_id'][
      'num_paintings_mAP']


def test_vectorised_ranks_match_a_loop_over_queries():
  rng = np.random.default_rng(2)
  painting, is_visual = _random_sentences(rng, 12)
  scores = rng.integers(0, 4, (12, painting.size)).astype(float)  # many ties
  ranks = metrics.retrieval_ranks(scores, painting, is_visual)
  visual = np.flatnonzero(is_visual)
  expected_i2t, expected_i2t_all = [], []
  for p in ranks.i2t_paintings:  # negatives scoring >= a positive, best positive
    own = visual[painting[visual] == p]
    negatives = [j for j in visual if j not in own]
    distractors = [j for j in range(painting.size) if j not in own]
    expected_i2t.append(min(np.sum(scores[p, negatives] >= scores[p, j]) for j in own))
    expected_i2t_all.append(
        min(np.sum(scores[p, distractors] >= scores[p, j]) for j in own))
  expected_t2i = [sum(scores[q, j] >= scores[painting[j], j]
                      for q in range(12) if q != painting[j]) for j in visual]
  np.testing.assert_array_equal(ranks.i2t_paintings, np.unique(painting[visual]))
  np.testing.assert_array_equal(ranks.i2t, expected_i2t)
  np.testing.assert_array_equal(ranks.i2t_all, expected_i2t_all)
  np.testing.assert_array_equal(ranks.t2i, expected_t2i)


def test_tie_free_ranks_equal_the_vse_argsort_convention():
  # VSE++ ranks a query's candidates by sorting scores in descending order and takes the
  # position of the first positive; without ties this equals our count of negatives.
  rng = np.random.default_rng(3)
  num_paintings, per_painting = 6, 5
  painting = np.repeat(np.arange(num_paintings), per_painting)
  visual = np.ones(painting.size, bool)
  scores = rng.normal(size=(num_paintings, painting.size))  # continuous: no ties
  ranks = metrics.retrieval_ranks(scores, painting, visual)
  for p in range(num_paintings):
    order = np.argsort(-scores[p])
    assert ranks.i2t[p] == min(np.flatnonzero(np.isin(order, np.flatnonzero(painting == p))))
  for j in range(painting.size):
    order = np.argsort(-scores[:, j])
    assert ranks.t2i[j] == np.flatnonzero(order == painting[j])[0]
