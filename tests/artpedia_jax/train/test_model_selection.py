"""The best_metric criteria, and early stopping on them."""

import pytest

from artpedia_jax.train import model_selection


def _metrics(rsum, ap):
  return {'rsum': rsum, 'visual_id': {'ap': ap}}


CHANCE = _metrics(12.0, 0.4)


def test_each_criterion_on_the_same_evaluation():
  metrics = _metrics(306.0, 0.7)
  value = lambda name: model_selection.selection_value(name, metrics, CHANCE)
  assert value('rsum') == 306.0
  assert value('visual_ap') == 0.7
  # (306 - 12) / (600 - 12) + (0.7 - 0.4) / (1 - 0.4) = 0.5 + 0.5
  assert value('rsum_and_ap') == pytest.approx(1.0)


def test_rsum_and_ap_weighs_the_two_tasks_by_their_gain_over_chance():
  """A point of rsum is worth little, a point of AP much: the normalised sum prefers
  the evaluation that gains more of what each task leaves to gain."""
  better_retrieval = _metrics(600.0, 0.4)  # all of retrieval's gain, none of AP's
  better_classifier = _metrics(12.0, 0.9)  # 5/6 of AP's gain, none of retrieval's
  value = lambda m: model_selection.selection_value('rsum_and_ap', m, CHANCE)
  assert value(better_retrieval) == pytest.approx(1.0)
  assert value(better_classifier) == pytest.approx(5 / 6)
  assert value(CHANCE) == 0.0


def test_unknown_criterion_is_an_error():
  with pytest.raises(ValueError, match='rsum_and_ap'):
    model_selection.selection_value('loss', CHANCE, CHANCE)


def test_early_stopping_counts_evaluations_without_a_new_best():
  stopper = model_selection.EarlyStopping(patience=2)
  assert [stopper.update(v) for v in (1.0, 2.0, 2.0, 1.5)] == [False, False, False, True]
  assert stopper.best == 2.0


def test_early_stopping_off_and_resumed():
  never = model_selection.EarlyStopping(patience=0)
  assert not any(never.update(0.0) for _ in range(10))
  resumed = model_selection.EarlyStopping(patience=1, best=5.0)
  assert resumed.update(4.0)  # the first evaluation after a resume is no new best


def test_all_values_give_each_criterion():
  metrics = _metrics(306.0, 0.7)
  assert model_selection.all_values(metrics, CHANCE) == {
      name: model_selection.selection_value(name, metrics, CHANCE)
      for name in model_selection.CRITERIA}


def test_early_stopping_resumes_with_its_count():
  """Saved after two evaluations without a new best, patience 3: the next one stops."""
  before = model_selection.EarlyStopping(patience=3)
  for value in (2.0, 1.0, 1.5):
    before.update(value)
  resumed = model_selection.EarlyStopping.from_json(3, before.to_json())
  assert (resumed.best, resumed.without_improvement) == (2.0, 2)
  assert not resumed.exhausted
  assert resumed.update(1.9) and resumed.exhausted
