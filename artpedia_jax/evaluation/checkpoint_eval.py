"""The eval command's job: restore a checkpoint, evaluate one split, write the files.

`evaluate_checkpoint` restores a workdir's step (its saved config and vocabulary, onto
the devices present), runs the same `SplitEvaluator` as training's validation, and writes
the metrics JSON and the Markdown report with example retrievals. With
`pooled_baseline` it also scores the split with the `pooled` scorer on the same encoders
(`retrieval_pooled`): what region–word alignment adds at scoring time.
"""

from collections.abc import Mapping
import dataclasses
from typing import Any

import numpy as np

from artpedia_jax.checkpoints import restore as restore_lib
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.evaluation import evaluator as evaluator_lib
from artpedia_jax.evaluation import metrics as metrics_lib
from artpedia_jax.evaluation import report as report_lib
from tfds_artpedia import errors

NUM_EXAMPLES = 4  # paintings shown with their retrieved sentences in the report


class EvalError(errors.UserError, RuntimeError):
  """What the user asked for cannot be evaluated; the message says what to do."""


def _open_split(spec: input_spec.InputSpec, split: str, **kwargs):
  try:
    return pipeline.open_source(spec, split, **kwargs)
  except Exception as error:  # tfds raises several types for a missing split or dataset
    raise EvalError(
        f'Cannot open split {split!r} of {spec.dataset_name} in '
        f'{spec.data_dir or "the default TFDS data_dir"}: {error}. Splits are '
        'train, validation and test; build the dataset with `python -m tfds_artpedia '
        'build`, or pass --data_dir=DIR where it now lives.') from error


def _examples(evaluator: evaluator_lib.SplitEvaluator, variables,
              evaluation: evaluator_lib.SplitEvaluation, images,
              tokenizer: tokenizer_lib.Tokenizer,
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


def _pooled_retrieval(restored: restore_lib.RestoredModel,
                      evaluator: evaluator_lib.SplitEvaluator,
                      paintings: device_scoring.HostEncodedPaintings) -> dict:
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
    split = eval_split.load_eval_split(inputs, source, restored.tokenizer)
  except ValueError as error:
    raise EvalError(str(error)) from error
  evaluator = evaluator_lib.SplitEvaluator(
      device_scoring.DeviceScorer(restored.graphdef,
                                  device_scoring.EvalSpec.from_config(restored.config),
                                  restored.mesh), split,
      split_name=split_name,
      baseline_probs=evaluator_lib.text_baseline_probs(_open_split(inputs, 'train'), split))
  evaluation = evaluator.run(restored.variables, step=restored.step)
  result = evaluation.metrics
  if restored.chosen_as_best_by:
    result['chosen_as_best_by'] = restored.chosen_as_best_by
  if pooled_baseline:
    result['retrieval_pooled'] = _pooled_retrieval(restored, evaluator,
                                                   evaluation.paintings)
  path = evaluator_lib.write_metrics(workdir, result)
  chance = dict(evaluator.chance, step=restored.step)
  report_path = None
  if write_report:
    ranks = metrics_lib.retrieval_ranks(evaluation.scores.scores, split.sentence_painting,
                                        split.is_visual, split.has_words)
    images = _open_split(inputs, split_name, decode_images=True)
    report_path = str(report_lib.write_report(
        path.parent, result, chance,
        examples=_examples(evaluator, restored.variables, evaluation, images,
                           restored.tokenizer, inputs.max_words),
        probs=evaluation.scores.probs, is_visual=split.is_visual, i2t_ranks=ranks.i2t,
        t2i_ranks=ranks.t2i, basename=f'{split_name}_step{restored.step}'))
  return EvalResult(result, chance, str(path), report_path)
