"""Evaluates one saved checkpoint on one split: the library behind `artpedia_jax.eval`.

Only the parameters are restored (no optimiser state), with the config and vocabulary
saved beside them, onto the devices present now, whatever the count at training time.
"""

import dataclasses
import os
from typing import Any

from flax import nnx
import jax
import numpy as np

from artpedia_jax import checkpoint as checkpoint_lib
from artpedia_jax import evaluator as evaluator_lib
from artpedia_jax import metrics as metrics_lib
from artpedia_jax import model as model_lib
from artpedia_jax import pipeline
from artpedia_jax import report as report_lib
from artpedia_jax import sharding as sharding_lib
from artpedia_jax import vocab as vocab_lib

NUM_EXAMPLES = 4


class EvalError(RuntimeError):
  """What the user asked for cannot be evaluated; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class EvalResult:
  metrics: dict
  chance: dict
  metrics_path: str
  report_path: str | None


def _open_split(config, split: str):
  try:
    return pipeline.open_source(config, split)
  except Exception as error:  # tfds raises several types for a missing split or dataset
    raise EvalError(
        f'Cannot open split {split!r} of {config.dataset.name} in '
        f'{config.dataset.data_dir or "the default TFDS data_dir"}: {error}. Splits are '
        'train, validation and test; build the dataset with `python -m tfds_artpedia '
        'build` (or pass the data_dir the run used).') from error


def _restore(checkpointer, step, config, vocab, feature_dim, mesh):
  """The checkpoint's model, with its variables restored replicated on `mesh`."""
  abstract_model = nnx.eval_shape(lambda: model_lib.ArtpediaModel(
      config, vocab_size=len(vocab), feature_dim=feature_dim, rngs=nnx.Rngs(0)))
  graphdef, abstract_variables = model_lib.split(abstract_model)
  replicated = sharding_lib.replicated(mesh)
  abstract_variables = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
      {name: tree for name, tree in abstract_variables.items() if tree})
  try:
    step, variables = checkpointer.restore_subset(step, abstract_variables)
  except (ValueError, KeyError) as error:
    raise EvalError(
        f'The parameters of step {step} in {checkpointer.directory} do not fit the model '
        f'that its saved config builds on this data (features of size {feature_dim}, '
        f'{len(vocab)} words): {error}. Was it written by another version of the code, '
        'or is the dataset another one than the run trained on?') from error
  return graphdef, dict({'model_state': {}}, **variables), step


def _examples(evaluator, variables, split, scores, source, vocab, config):
  """A few paintings with their top-5 sentences and one sentence's word alignment."""
  examples = []
  for p in range(min(NUM_EXAMPLES, len(split.painting_ids))):
    own_visual = np.flatnonzero((split.sentence_painting == p) & split.is_visual)
    if not len(own_visual):
      continue
    sentence = int(own_visual[0])
    words = vocab_lib.tokenize(split.sentence_texts[sentence])[:config.dataset.max_words]
    word_region, boxes, region_mask = evaluator.word_region_scores(variables, split, p,
                                                                   sentence)
    record = source[p]
    examples.append(report_lib.Example(
        painting_id=str(split.painting_ids[p]), title=str(split.titles[p]),
        image=np.asarray(record['image']) if 'image' in record else None,
        top_sentences=report_lib.retrieved_sentences(
            scores[p], p, split.sentence_texts, split.sentence_painting,
            split.is_visual),
        aligned_sentence=str(split.sentence_texts[sentence]),
        alignment=report_lib.word_alignment(words, word_region, boxes, region_mask)))
  return examples


@dataclasses.dataclass(frozen=True)
class Restored:
  """A checkpoint's model, ready to evaluate on one split."""
  step: int
  config: Any
  vocab: vocab_lib.Vocabulary
  source: Any  # the split's records
  graphdef: nnx.GraphDef
  variables: model_lib.Variables
  mesh: jax.sharding.Mesh


def restore(workdir: str, step: str | int, split_name: str) -> Restored:
  """Restores checkpoint `step` ('latest', 'best' or a number) of `workdir`."""
  directory = os.path.join(workdir, 'checkpoints')
  try:
    with checkpoint_lib.Checkpointer(directory, read_only=True) as checkpointer:
      step = checkpointer.resolve_step(step)
      config = checkpointer.load_config(step)
      vocab = vocab_lib.Vocabulary.from_json(checkpointer.load_vocab(step))
      source = _open_split(config, split_name)
      mesh = sharding_lib.make_mesh()
      graphdef, variables, step = _restore(checkpointer, step, config, vocab,
                                        pipeline.region_feature_dim(config, source), mesh)
  except (FileNotFoundError, ValueError) as error:
    raise EvalError(str(error)) from error
  return Restored(step, config, vocab, source, graphdef, variables, mesh)


def run(workdir: str, step: str | int, split_name: str, *, write_report: bool = True
        ) -> EvalResult:
  """Evaluates checkpoint `step` of `workdir` on `split_name`; writes metrics + report."""
  restored = restore(workdir, step, split_name)
  config, vocab, step, variables = (restored.config, restored.vocab, restored.step,
                                    restored.variables)
  split = pipeline.load_eval_split(config, restored.source, vocab)
  evaluator = evaluator_lib.Evaluator(restored.graphdef, config, restored.mesh)
  result, scored = evaluator.evaluate_with_scores(variables, split, split_name=split_name,
                                                  step=step)
  metrics_path = evaluator_lib.write_metrics(workdir, result)
  chance = metrics_lib.chance_levels(split.sentence_painting, split.is_visual,
                                     num_paintings=len(split.painting_ids),
                                     split=split_name, step=step)
  report_path = None
  if write_report:
    ranks = metrics_lib.retrieval_ranks(scored.scores, split.sentence_painting,
                                        split.is_visual)
    images = pipeline.open_source(config, split_name, decode_images=True)
    report_path = str(report_lib.write_report(
        os.path.dirname(metrics_path), result, chance,
        examples=_examples(evaluator, variables, split, scored.scores, images, vocab,
                           config),
        probs=scored.probs, is_visual=split.is_visual, i2t_ranks=ranks.i2t,
        t2i_ranks=ranks.t2i, basename=f'{split_name}_step{step}'))
  return EvalResult(result, chance, metrics_path, report_path)


def format_table(metrics: dict, chance: dict) -> str:
  """The headline metrics beside their chance levels, as a console table."""
  fmt = report_lib.format_metric
  lines = [f"split {metrics['split']}, step {metrics['step']}: "
           f"{metrics['num_paintings']} paintings, {metrics['num_sentences']} sentences",
           f"{'metric':<22}{'model':>10}{'chance':>10}"]
  for direction in ('i2t', 't2i', 'i2t_all'):
    for key in ('R@1', 'R@5', 'R@10', 'medr', 'meanr'):
      lines.append(f'{direction + " " + key:<22}{fmt(metrics[direction][key]):>10}'
                   f'{fmt(chance[direction][key]):>10}')
  lines.append(f"{'rsum':<22}{fmt(metrics['rsum']):>10}{fmt(chance['rsum']):>10}")
  for key in ('mAP', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'ap'):
    lines.append(f'{"visual_id " + key:<22}{fmt(metrics["visual_id"][key]):>10}'
                 f'{fmt(chance["visual_id"][key]):>10}')
  return '\n'.join(lines)
