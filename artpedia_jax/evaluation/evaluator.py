"""Evaluation of a model on one split: device scores → metrics and baselines → files.

`SplitEvaluator` runs inside training (on validation) and behind the eval command
(`checkpoint_eval.evaluate_checkpoint`), so both report the same numbers for a
checkpoint. Every metrics file carries, beside the model's figures, the honest reference
points a reader needs: the chance levels (in the report) and `visual_id_baseline`, a
TF-IDF + logistic regression classifier fit on the training split's sentences
(`text_baseline`).
"""

from collections.abc import Sequence
import dataclasses
import json
from typing import Any

from absl import logging
from etils import epath
import numpy as np

from artpedia_jax.data import eval_split
from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.evaluation import metrics as metrics_lib
from artpedia_jax.evaluation import text_baseline

def text_baseline_probs(train_source: Sequence[Any],
                        split: eval_split.EvalSplit) -> np.ndarray:
  """p(visual) of the split's sentences from the lexical baseline fit on `train_source`."""
  texts, labels = eval_split.sentences_and_labels(train_source)
  baseline = text_baseline.TextBaseline.fit(texts, labels)
  return baseline.predict_proba(list(split.sentence_texts))


@dataclasses.dataclass(frozen=True)
class SplitEvaluation:
  """The metrics of one evaluation, with the arrays the report draws from."""
  metrics: dict
  scores: device_scoring.SentenceScores
  paintings: device_scoring.HostEncodedPaintings


class SplitEvaluator:
  """Evaluates model variables on one split; the split's model-free parts (chance
  levels, baseline predictions) are computed once, at construction."""

  def __init__(self, scorer: device_scoring.DeviceScorer, split: eval_split.EvalSplit, *,
               split_name: str, baseline_probs: np.ndarray | None = None):
    self.scorer = scorer
    self.split = split
    self.split_name = split_name
    self.chance = metrics_lib.chance_levels(
        split.sentence_painting, split.is_visual,
        num_paintings=len(split.painting_ids), split=split_name)
    self._baseline = (None if baseline_probs is None else metrics_lib.visual_id_metrics(
        baseline_probs, split.is_visual, split.sentence_painting,
        num_paintings=len(split.painting_ids)))
    num_left_out = int(np.sum(~split.has_words))
    if num_left_out:
      logging.info('%s: %d sentences without any word take no part in retrieval.',
                   split_name, num_left_out)

  def run(self, variables, *, step: int) -> SplitEvaluation:
    split = self.split
    paintings = self.scorer.encode_paintings(variables, split.paintings)
    scores = self.scorer.score_sentences(variables, paintings, split.tokens,
                                         own_painting=split.sentence_painting)
    result = metrics_lib.evaluation_metrics(
        scores.scores, scores.probs, split.sentence_painting, split.is_visual,
        split=self.split_name, step=step, retrievable=split.has_words)
    if self._baseline is not None:
      result['visual_id_baseline'] = self._baseline
    return SplitEvaluation(result, scores, paintings)

  def evaluate(self, variables, *, step: int) -> dict:
    """The metrics of `variables` on the split (the metrics file's content)."""
    return self.run(variables, step=step).metrics


def metrics_path(workdir: epath.PathLike, split: str, step: int) -> epath.Path:
  return epath.Path(workdir) / 'eval' / f'{split}_step{step}.json'


def write_metrics(workdir: epath.PathLike, result: dict) -> epath.Path:
  """Writes `W/eval/<split>_step<N>.json` (through epath: W may be gs://...) atomically
  where the file system can rename; returns its path."""
  path = metrics_path(workdir, result['split'], result['step'])
  path.parent.mkdir(parents=True, exist_ok=True)
  temp = path.with_name(path.name + '.tmp')
  temp.write_text(json.dumps(result, indent=2, sort_keys=False))
  temp.replace(path)
  return path
