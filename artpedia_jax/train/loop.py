"""The training loop behind `run.py`: data → sharded train step → logs, evals, checkpoints.

A run is fully described by its config and workdir: a second run with the same workdir
resumes from the last checkpoint (parameters, optimiser, step, the data iterator's
position and early stopping's count), so it continues on the same data order, and stops
at the same step, as if it had never stopped. One run at a time holds a workdir
(`workdir_lock`); the workdir may be on any file system etils.epath reaches (gs://).
"""

import dataclasses
import os
import time
from typing import Any

from absl import logging
from flax import nnx
import jax
import ml_collections
import numpy as np

from artpedia_jax.checkpoints import manager as checkpoint_lib
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import prefetch
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import device_scorer
from artpedia_jax.evaluation import evaluator as evaluation
from artpedia_jax.model import model as model_lib
from artpedia_jax.model import text_inputs
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from artpedia_jax.train import losses
from artpedia_jax.train import metric_window
from artpedia_jax.train import metric_writers
from artpedia_jax.train import model_selection
from artpedia_jax.train import optim
from artpedia_jax.train import preemption
from artpedia_jax.train import step as train_step_lib
from artpedia_jax.train import workdir_lock
from tfds_artpedia import errors

_EARLY_STOPPING = 'early_stopping'  # the checkpoint's loop state: {'criterion', 'best', ...}


class TooManySkippedSteps(errors.UserError, RuntimeError):
  """Consecutive non-finite steps: the run cannot make progress."""


def total_train_steps(config: ml_collections.ConfigDict, num_pairs: int) -> int:
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config.num_epochs * pipeline.steps_per_epoch(num_pairs, config.batch_size)


def _maybe_round(value: float | None) -> str:
  """Metrics undefined on a split (e.g. mAP with no mixed painting) are None."""
  return 'n/a' if value is None else f'{value:.3f}'


def _format_eta(seconds: float) -> str:
  minutes, secs = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{secs:02d}s'


def _text_inputs(config, train_source, checkpointer) -> text_inputs.TextInputs:
  """The saved tokenizer when resuming (ids must not move), else a new one."""
  if checkpointer.latest_step() is not None:
    return text_inputs.TextInputs.from_json(checkpointer.load_vocab('latest'))
  return text_inputs.build(config, train_source)


def _word_embeddings(config, tokenizer):
  if not config.vocab.glove_path:
    return None
  matrix, missing = vocab_lib.load_glove(config.vocab.glove_path, tokenizer,
                                          config.model.word_dim)
  logging.info('GloVe: %d of %d words not found in %s.', missing, len(tokenizer),
               config.vocab.glove_path)
  return matrix


@dataclasses.dataclass
class TrainResult:
  """What a run leaves besides its checkpoints: the logged history."""
  train_log: list[dict[str, float]] = dataclasses.field(default_factory=list)
  validation: list[dict] = dataclasses.field(default_factory=list)
  final_step: int = 0
  stopped_early: bool = False  # early_stopping_patience evaluations without a new best


@dataclasses.dataclass
class _Run:
  """Everything the loop touches, built once by `train_and_evaluate`."""
  config: ml_collections.ConfigDict
  workdir: str
  mesh: jax.sharding.Mesh
  train_step: Any
  data_iter: prefetch.DevicePrefetcher  # saved with checkpoints: its get_state
  checkpointer: checkpoint_lib.Checkpointer
  evaluator: evaluation.SplitEvaluator
  early_stopping: model_selection.EarlyStopping
  text: text_inputs.TextInputs
  writer: metric_writers.MetricWriter
  total_steps: int


def _step_spec(config: ml_collections.ConfigDict, table: pipeline.SentenceTable,
               pairs: np.ndarray) -> train_step_lib.StepSpec:
  """The step's settings; `loss.cls_pos_weight=-1` becomes the weight that corrects the
  classifier's draws to the training split's share of visual sentences."""
  if config.loss.cls_pos_weight != -1:
    return train_step_lib.StepSpec.from_config(config)
  split_share, sampled_share = pipeline.classifier_visual_shares(
      table, pairs, config.dataset.cls_sentences)
  weight = losses.prior_pos_weight(split_share, sampled_share)
  logging.info('Classifier: %.1f%% of the training split is visual, %.1f%% of its draws; '
               'loss.cls_pos_weight=-1 weighs visual sentences %.3f.',
               100 * split_share, 100 * sampled_share, weight)
  return train_step_lib.StepSpec.from_config(config, prior_pos_weight=weight)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainResult:
  """Trains `config` in `workdir` (resuming from its last checkpoint, if any).

  The config is checked before the workdir is created; the workdir is locked for the
  run (`workdir_lock`: a second run on it is an error).
  """
  mesh = sharding_lib.make_mesh()
  config_checks.validate(config, num_devices=mesh.size)
  with workdir_lock.hold(workdir):
    dataset.prepare(config)
    checkpointer = checkpoint_lib.Checkpointer(
        os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints,
        criterion=config.best_metric)
    try:
      return _train(config, workdir, mesh, checkpointer)
    finally:
      checkpointer.close()


def _train(config, workdir, mesh, checkpointer) -> TrainResult:
  inputs = input_spec.InputSpec.from_config(config)
  train_source = pipeline.open_source(inputs, 'train')
  val_source = pipeline.open_source(inputs, 'validation')
  text = _text_inputs(config, train_source, checkpointer)
  tokenizer = text.tokenizer
  pairs = pipeline.visual_pair_index(train_source)
  total_steps = total_train_steps(config, len(pairs))

  model = model_lib.init_model(
      model_lib.ModelSpec.from_config(config), vocab_size=len(tokenizer),
      feature_dim=painting_inputs.region_feature_dim(inputs, train_source),
      rngs=nnx.Rngs(config.seed),
      word_embeddings=_word_embeddings(config, tokenizer),
      backbone_weights=config.model.backbone_weights,
      bert_config=text.bert_config, text_weights=text.weights_folder or '')
  graphdef, variables = model_lib.split(model)
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps)
  state = sharding_lib.replicate(mesh, train_step_lib.init_state(variables, optimizer.tx))
  table = pipeline.sentence_table(train_source, tokenizer, inputs.max_words)
  data_iter = pipeline.train_iterator(
      inputs, train_source, tokenizer, process_index=jax.process_index(),
      process_count=jax.process_count(), seed=config.seed, pairs=pairs,
      table=table, local_devices=jax.local_device_count())
  restored_step = None
  if checkpointer.latest_step() is not None:
    restored_step, state = checkpointer.restore(
        'latest', abstract_state=sharding_lib.abstract_like(state),
        data_iterator=data_iter)
    logging.info('Resumed from the checkpoint of step %d.', restored_step)
  early_stopping = _early_stopping(config, checkpointer, restored_step)
  if early_stopping.exhausted and restored_step is not None and restored_step < total_steps:
    logging.warning(
        'This run stopped early at step %d (%d evaluations without a better %s than '
        '%.4f): nothing to do. Raise early_stopping_patience to train on.',
        restored_step, early_stopping.without_improvement, config.best_metric,
        early_stopping.best)
    return TrainResult(final_step=restored_step, stopped_early=True)

  writer = metric_writers.MetricWriter(workdir, enabled=jax.process_index() == 0)
  run = _Run(config=config, workdir=workdir, mesh=mesh,
             train_step=train_step_lib.make_train_step(
                 graphdef, optimizer, _step_spec(config, table, pairs), mesh),
             data_iter=prefetch.DevicePrefetcher(
                 data_iter, lambda local: sharding_lib.global_batch(mesh, local)),
             checkpointer=checkpointer,
             evaluator=_validation_evaluator(config, inputs, graphdef, mesh, train_source,
                                             val_source, tokenizer),
             early_stopping=early_stopping,
             text=text, writer=writer, total_steps=total_steps)
  stop = preemption.StopRequest()
  try:
    return _loop(run, state, stop)
  finally:
    stop.restore()
    writer.close()


def _validation_evaluator(config, inputs, graphdef, mesh, train_source, val_source,
                          tokenizer) -> evaluation.SplitEvaluator:
  """Validation with the lexical baseline fit once, on the training split."""
  split = eval_split.load_eval_split(inputs, val_source, tokenizer)
  return evaluation.SplitEvaluator(
      device_scorer.DeviceScorer(graphdef, device_scorer.EvalSpec.from_config(config), mesh),
      split,
      split_name='validation',
      baseline_probs=evaluation.text_baseline_probs(train_source, split))


def _early_stopping(config, checkpointer: checkpoint_lib.Checkpointer,
                    restored_step: int | None) -> model_selection.EarlyStopping:
  """Early stopping as the restored step left it; after a change of `best_metric`, from
  the best step by the new criterion (every scored step carries the value of each
  criterion), counting again from 0, as the log says."""
  patience, criterion = config.early_stopping_patience, config.best_metric
  if restored_step is None:
    return model_selection.EarlyStopping(patience)
  saved = (checkpointer.load_loop_state(restored_step) or {}).get(_EARLY_STOPPING)
  if saved and saved['criterion'] == criterion:
    return model_selection.EarlyStopping.from_json(patience, saved)
  best_step = checkpointer.best_step()
  best = None if best_step is None else checkpointer.scores(best_step)[criterion]
  previous = checkpointer.load_config(restored_step).best_metric
  if previous != criterion:
    steps = checkpointer.all_steps()
    unranked = [s for s in steps
                if checkpointer.metrics(s) is not None and criterion not in
                checkpointer.scores(s)]
    logging.warning(
        'best_metric is now %s (was %s): the saved steps are ranked by their %s; the '
        'best is %s%s; early stopping counts again from 0.', criterion, previous,
        criterion, 'none yet' if best_step is None else f'step {best_step} ({best:.4f})',
        f'; steps {unranked}, saved without a {criterion} value, no longer compete for '
        'best' if unranked else '')
  return model_selection.EarlyStopping(patience, best)


def _log_train(run: _Run, step: int, window: metric_window.Summary, steps: int,
               seconds: float, result: TrainResult, eta_seconds: float) -> None:
  """Logs the means over the window's steps (the skipped ones left out)."""
  scalars = dict(window.means, skipped=window.skipped)
  scalars['steps_per_second'] = steps / seconds
  scalars['pairs_per_second'] = steps * run.config.batch_size / seconds
  logging.info(
      'step %d/%d (%.0f%%) loss %.4f rank %.4f cls %.4f acc %.3f lr %.2e '
      '%.0f pairs/s ETA %s', step, run.total_steps, 100 * step / run.total_steps,
      scalars['loss'], scalars['rank_loss'], scalars['cls_loss'],
      scalars['cls_accuracy'], scalars['learning_rate'],
      scalars['pairs_per_second'], _format_eta(eta_seconds))
  result.train_log.append(dict(scalars, step=step))
  run.writer.write_train(step, scalars)


def _validate(run: _Run, state, step: int,
              result: TrainResult) -> tuple[dict, dict[str, float]]:
  """The step's validation metrics (with the `best_metric` record) and its value under
  every criterion (what the checkpoint is ranked by)."""
  metrics = run.evaluator.evaluate(_variables(state), step=step)
  criterion = run.config.best_metric
  scores = model_selection.all_values(metrics, run.evaluator.chance)
  metrics[model_selection.SELECTION] = {'name': criterion, 'value': scores[criterion]}
  if jax.process_index() == 0:
    evaluation.write_metrics(run.workdir, metrics)
  logging.info('validation step %d: rsum %.2f  i2t R@1 %.2f  t2i R@1 %.2f  '
               'visual mAP %s  %s %.4f', step, metrics['rsum'], metrics['i2t']['R@1'],
               metrics['t2i']['R@1'], _maybe_round(metrics['visual_id']['mAP']),
               criterion, scores[criterion])
  run.writer.write_validation(step, metrics)
  result.validation.append(metrics)
  return metrics, scores


def _variables(state: train_step_lib.TrainState) -> model_lib.Variables:
  return {'params': state['params'], 'model_state': state['model_state']}


def _loop(run: _Run, state, stop: preemption.StopRequest) -> TrainResult:
  """Steps until `total_steps` or a stop request; evaluates and checkpoints on period.

  Nothing is read back from the devices between log steps (see `metric_window`), so
  the host keeps the next steps queued while the current one runs.
  """
  config, result = run.config, TrainResult()
  step = int(state['step'])
  window, paintings = None, {}
  timer_start, timed_steps, steady_start, steady_steps = None, 0, None, 0
  while step < run.total_steps:
    batch, local = next(run.data_iter)
    state, metrics = run.train_step(state, batch)
    step += 1
    if window is None:
      window = metric_window.empty(metrics)
    window = metric_window.add(window, metrics, state['step'])
    paintings[step] = local['painting']
    if timer_start is None:  # the first step compiles: time from the next one on
      jax.block_until_ready(metrics)
      timer_start = steady_start = time.time()
      logging.info('First step (with compilation) done.')
    else:
      timed_steps += 1
      steady_steps += 1

    is_last = step == run.total_steps
    is_log_step = step % config.log_every_steps == 0 or is_last
    if is_log_step:
      summary = metric_window.read(window)
      _report_skips(run, summary, step, paintings)
      if timed_steps:
        now = time.time()
        eta = (run.total_steps - step) * (now - steady_start) / steady_steps
        _log_train(run, step, summary, timed_steps, now - timer_start, result, eta)
        timer_start, timed_steps = now, 0
      window, paintings = metric_window.empty(metrics, summary.consecutive), {}

    paused = time.time()
    val_metrics, scores = None, None
    if step % config.eval_every_steps == 0 or is_last:
      val_metrics, scores = _validate(run, state, step, result)
    no_progress = scores is not None and run.early_stopping.update(
        scores[config.best_metric])
    stopping = stop.reached(step)
    if (step % config.checkpoint_every_steps == 0 or is_last or stopping
        or val_metrics is not None):
      run.checkpointer.save(
          step, state=state, data_iterator=run.data_iter, config=config,
          vocab=run.text.to_json(), scores=scores, metrics=val_metrics,
          loop_state={_EARLY_STOPPING: dict(run.early_stopping.to_json(),
                                            criterion=config.best_metric)},
          force=True)
    if timer_start is not None:  # pairs/s and the ETA count training time only
      excluded = time.time() - paused
      timer_start += excluded
      steady_start += excluded
    if no_progress and not is_last:
      result.stopped_early = True
      logging.warning('Early stop at step %d: %d evaluations without a better %s than '
                      '%.4f.', step, run.early_stopping.without_improvement,
                      config.best_metric, run.early_stopping.best)
      break
    if stopping:
      logging.warning('Stopped at step %d on request; resume with the same workdir.',
                      step)
      break
  run.checkpointer.wait_until_finished()
  result.final_step = step
  return result


def _report_skips(run: _Run, window: metric_window.Summary, step: int,
                  paintings: dict[int, np.ndarray]) -> None:
  """Logs the window's skipped (non-finite) steps; stops the run after too many in a row.

  `paintings` holds this process's painting rows of the window's steps.
  """
  if not window.skipped:
    return
  last = window.last_skipped_step
  logging.warning('%d of the %d steps up to step %d skipped: non-finite loss or gradient '
                  '(the last at step %d; this process\'s paintings there, as dataset '
                  'record indices: %s).', window.skipped, window.steps, step, last,
                  paintings[last].tolist())
  reached = window.step_reaching(run.config.max_consecutive_skips)
  if reached is not None:
    raise TooManySkippedSteps(
        f'{run.config.max_consecutive_skips} consecutive steps had a non-finite loss or '
        f'gradient (the last of them at step {reached}); the last good checkpoint is step '
        f'{run.checkpointer.latest_step()}. Lower optimizer.learning_rate or check the '
        'data.')
