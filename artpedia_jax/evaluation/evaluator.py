"""Evaluation of a model on one split: device scores → metrics and baselines → files.

`SplitEvaluator` runs inside training (on validation) and behind the eval binary
(`evaluate_checkpoint`), so both report the same numbers for a checkpoint. Every metrics
file carries, beside the model's figures, the honest reference points a reader needs:
the chance levels (in the report) and `visual_id_baseline`, a TF-IDF + logistic
regression classifier fit on the training split's sentences (`text_baseline`). With
`pooled_baseline`, the eval binary also scores the split with the `pooled` scorer on
the same encoders (`retrieval_pooled`): what region–word alignment adds at scoring time.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import json
from typing import Any

from absl import logging
from etils import epath
import numpy as np

from artpedia_jax.checkpoints import restore as restore_lib
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.evaluation import metrics as metrics_lib
from artpedia_jax.evaluation import report as report_lib
from artpedia_jax.evaluation import text_baseline
from tfds_artpedia import errors

NUM_EXAMPLES = 4  # paintings shown with their retrieved sentences in the report


class EvalError(errors.UserError, RuntimeError):
  """What the user asked for cannot be evaluated; the message says what to do."""


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
  paintings: device_scoring.EncodedPaintings


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


def _open_split(spec: input_spec.InputSpec, split: str, **kwargs):
  try:
    return pipeline.open_source(spec, split, **kwargs)
  except Exception as error:  # tfds raises several types for a missing split or dataset
    raise EvalError(
        f'Cannot open split {split!r} of {spec.dataset_name} in '
        f'{spec.data_dir or "the default TFDS data_dir"}: {error}. Splits are '
        'train, validation and test; build the dataset with `python -m tfds_artpedia '
        'build`, or pass --data_dir=DIR where it now lives.') from error


def _examples(evaluator: SplitEvaluator, variables, evaluation: SplitEvaluation,
              images, tokenizer: tokenizer_lib.Tokenizer,
              max_words: int) -> list[report_lib.Example]:
  """A few paintings with their top-5 sentences and one sentence's word alignment (a
  word split into word pieces aligned by the mean of its pieces' scores)."""
  split, paintings = evaluator.split, evaluation.paintings
  examples = []
  for p in range(min(NUM_EXAMPLES, len(split.painting_ids))):
    own_visual = np.flatnonzero((split.sentence_painting == p) & split.is_visual
                                & split.has_words)
    if not len(own_visual):
      continue
    sentence = int(own_visual[0])
    token_region = evaluator.scorer.word_region_scores(
        variables, paintings.take(np.array([p])), split.tokens[sentence:sentence + 1])[0]
    words, word_region = alignment_lib.merge_pieces(
        tokenizer.alignment_words(split.sentence_texts[sentence], max_words), token_region)
    record = images[p]
    examples.append(report_lib.Example(
        painting_id=str(split.painting_ids[p]), title=str(split.titles[p]),
        image=np.asarray(record['image']) if 'image' in record else None,
        top_sentences=report_lib.retrieved_sentences(
            evaluation.scores.scores[p], p, split.sentence_texts, split.sentence_painting,
            split.is_visual),
        aligned_sentence=str(split.sentence_texts[sentence]),
        alignment=alignment_lib.word_alignment(words, word_region, paintings.boxes[p],
                                            paintings.region_mask[p])))
  return examples


def _pooled_retrieval(restored: restore_lib.RestoredModel, evaluator: SplitEvaluator,
                      paintings: device_scoring.EncodedPaintings) -> dict:
  """Retrieval metrics of the same encoders under the `pooled` scorer."""
  graphdef = restore_lib.model_graphdef(restored, score='pooled')
  scorer = device_scoring.DeviceScorer(
      graphdef, device_scoring.EvalSpec.from_config(restored.config), restored.mesh)
  split = evaluator.split
  scores = scorer.score_sentences(restored.variables, paintings, split.tokens)
  return metrics_lib.retrieval_metrics(scores.scores, split.sentence_painting,
                                       split.is_visual, split.has_words)


@dataclasses.dataclass(frozen=True)
class EvalResult:
  metrics: dict
  chance: dict
  metrics_path: str
  report_path: str | None


def evaluate_checkpoint(workdir: str, step: str | int, split_name: str, *,
                        overrides: Mapping[str, Any] | None = None,
                        write_report: bool = True,
                        pooled_baseline: bool = False) -> EvalResult:
  """Evaluates checkpoint `step` of `workdir` on `split_name`; writes metrics + report."""
  restored = restore_lib.restore_model(workdir, step, overrides=overrides)
  inputs = input_spec.InputSpec.from_config(restored.config)
  source = _open_split(inputs, split_name)
  try:
    split = eval_split.load_eval_split(inputs, source, restored.vocab)
  except ValueError as error:
    raise EvalError(str(error)) from error
  evaluator = SplitEvaluator(
      device_scoring.DeviceScorer(restored.graphdef,
                                  device_scoring.EvalSpec.from_config(restored.config),
                                  restored.mesh), split,
      split_name=split_name,
      baseline_probs=text_baseline_probs(_open_split(inputs, 'train'), split))
  evaluation = evaluator.run(restored.variables, step=restored.step)
  result = evaluation.metrics
  if restored.chosen_as_best_by:
    result['chosen_as_best_by'] = restored.chosen_as_best_by
  if pooled_baseline:
    result['retrieval_pooled'] = _pooled_retrieval(restored, evaluator,
                                                   evaluation.paintings)
  path = write_metrics(workdir, result)
  chance = dict(evaluator.chance, step=restored.step)
  report_path = None
  if write_report:
    ranks = metrics_lib.retrieval_ranks(evaluation.scores.scores, split.sentence_painting,
                                        split.is_visual, split.has_words)
    images = _open_split(inputs, split_name, decode_images=True)
    report_path = str(report_lib.write_report(
        path.parent, result, chance,
        examples=_examples(evaluator, restored.variables, evaluation, images,
                           restored.vocab, inputs.max_words),
        probs=evaluation.scores.probs, is_visual=split.is_visual, i2t_ranks=ranks.i2t,
        t2i_ranks=ranks.t2i, basename=f'{split_name}_step{restored.step}'))
  return EvalResult(result, chance, str(path), report_path)
