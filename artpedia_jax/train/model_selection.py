"""Which validation evaluation is the best one, and when to stop looking for a better one.

`config.best_metric` names the criterion; its value on a split's metrics is higher-is-
better:

  rsum          the retrieval sum (0..600);
  visual_ap     the visual/contextual classifier's average precision over all sentences;
  rsum_and_ap   both tasks at once: the sum, over rsum and visual AP, of the gain over
                chance as a fraction of the possible gain, (m - chance) / (max - chance),
                so each task counts from 0 (chance) to 1 (perfect) whatever its scale.
"""

from collections.abc import Mapping
from typing import Any

CRITERIA = ('rsum', 'visual_ap', 'rsum_and_ap')
SELECTION = 'best_metric'  # metrics file key of {'name', 'value'} (docs/design.md §6.13)
_MAX_RSUM = 600.0  # six recalls of 100
_MAX_AP = 1.0


def _visual_ap(metrics: Mapping[str, Any]) -> float:
  """Undefined (None) only on a split without visual sentences: counts as 0."""
  return metrics['visual_id']['ap'] or 0.0


def _gain(value: float, chance: float, best: float) -> float:
  return (value - chance) / (best - chance)


def selection_value(criterion: str, metrics: Mapping[str, Any],
                    chance: Mapping[str, Any]) -> float:
  """The value of `criterion` on an evaluation's `metrics`, given the split's chance
  levels (`metrics.chance_levels`, same layout)."""
  if criterion == 'rsum':
    return float(metrics['rsum'])
  if criterion == 'visual_ap':
    return float(_visual_ap(metrics))
  if criterion == 'rsum_and_ap':
    return float(_gain(metrics['rsum'], chance['rsum'], _MAX_RSUM)
                 + _gain(_visual_ap(metrics), _visual_ap(chance), _MAX_AP))
  raise ValueError(f'Unknown best_metric {criterion!r}: use one of {CRITERIA}.')


def all_values(metrics: Mapping[str, Any], chance: Mapping[str, Any]) -> dict[str, float]:
  """The value of every criterion: what a checkpoint is ranked by, so that a run resumed
  with another `best_metric` can still rank the steps saved before."""
  return {criterion: selection_value(criterion, metrics, chance) for criterion in CRITERIA}


class EarlyStopping:
  """Counts evaluations without improvement of the selection value.

  `patience` 0 never stops. A resumed run starts from the saved `best` and count
  (`to_json` / `from_json`), so that it stops where an uninterrupted run would.
  """

  def __init__(self, patience: int, best: float | None = None,
               without_improvement: int = 0):
    self.patience = patience
    self.best = best
    self.without_improvement = without_improvement

  @property
  def exhausted(self) -> bool:
    """Whether `patience` evaluations in a row have brought no new best."""
    return 0 < self.patience <= self.without_improvement

  def to_json(self) -> dict[str, Any]:
    return {'best': self.best, 'without_improvement': self.without_improvement}

  @classmethod
  def from_json(cls, patience: int, saved: Mapping[str, Any]) -> 'EarlyStopping':
    return cls(patience, saved['best'], saved['without_improvement'])

  def update(self, value: float) -> bool:
    """Records one evaluation; True when training should stop."""
    if self.best is None or value > self.best:
      self.best, self.without_improvement = value, 0
    else:
      self.without_improvement += 1
    return self.exhausted
