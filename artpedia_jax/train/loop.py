"""The training loop behind `run.py`: data → sharded train step → logs, evals, checkpoints.

A run is fully described by its config and workdir: a second run with the same workdir
resumes from the last checkpoint (parameters, optimiser, step and the data iterator's
position), so it continues on the same data order as if it had never stopped.
"""

import dataclasses
import json
import os
import signal
import time
from typing import Any

from absl import logging
from flax import nnx
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import tensorboardX

from artpedia_jax.checkpoints import manager as checkpoint_lib
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import pipeline
from artpedia_jax.data import prefetch
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import evaluator as evaluation
from artpedia_jax.model import model as model_lib
from artpedia_jax.model import text_inputs
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from artpedia_jax.train import metric_window
from artpedia_jax.train import model_selection
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step_lib
from tfds_artpedia import errors


TRAIN_METRICS_FILE = 'train_metrics.jsonl'  # in the workdir: one JSON object per log step


class TooManySkippedSteps(errors.UserError, RuntimeError):
  """Consecutive non-finite steps: the run cannot make progress."""


class _StopRequest:
  """Turns SIGTERM into a request to stop after the current step (preemption).

  With several processes the signal may reach them at different steps; they agree on
  stopping (any process asked) at every log step, so that all save the same step and exit
  together instead of waiting on each other's collectives, and no other step waits for a
  cross-process exchange. (The installed jax's `reached_preemption_sync_point` would need
  the distributed preemption service, which installs its own SIGTERM handling, and a call
  every step.) A preempted multi-process run thus finishes at most `log_every_steps`
  more steps: keep the scheduler's grace period longer than that.
  """

  def __init__(self):
    self._requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: finishing this step, saving a checkpoint, exiting.')
    self._requested = True

  def agreed(self, is_log_step: bool) -> bool:
    """Whether any process has been asked to stop (several processes: log steps only)."""
    if jax.process_count() == 1:
      return self._requested
    if not is_log_step:
      return False
    flags = multihost_utils.process_allgather(np.int32(self._requested))
    return bool(np.max(flags))

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


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


def _word_embeddings(config, vocab):
  if not config.vocab.glove_path:
    return None
  matrix, missing = vocab_lib.load_glove(config.vocab.glove_path, vocab,
                                          config.model.word_dim)
  logging.info('GloVe: %d of %d words not found in %s.', missing, len(vocab),
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
  writer: Any
  total_steps: int


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainResult:
  """Trains `config` in `workdir` (resuming from its last checkpoint, if any)."""
  mesh = sharding_lib.make_mesh()
  config_checks.validate(config, num_devices=mesh.size)
  dataset.prepare(config)
  train_source = pipeline.open_source(config, 'train')
  val_source = pipeline.open_source(config, 'validation')

  checkpointer = checkpoint_lib.Checkpointer(
      os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  text = _text_inputs(config, train_source, checkpointer)
  vocab = text.tokenizer
  pairs = pipeline.visual_pair_index(train_source)
  total_steps = total_train_steps(config, len(pairs))

  model = model_lib.init_model(
      model_lib.ModelSpec.from_config(config), vocab_size=len(vocab),
      feature_dim=pipeline.region_feature_dim(config, train_source),
      rngs=nnx.Rngs(config.seed),
      word_embeddings=_word_embeddings(config, vocab),
      backbone_weights=config.model.backbone_weights,
      bert_config=text.bert_config, text_weights=config.model.text_weights)
  graphdef, variables = model_lib.split(model)
  optimizer = optim.make_optimizer(config, total_steps)
  state = sharding_lib.replicate(mesh, train_step_lib.init_state(variables, optimizer.tx))
  data_iter = pipeline.train_iterator(
      config, train_source, vocab, process_index=jax.process_index(),
      process_count=jax.process_count(), seed=config.seed, pairs=pairs,
      table=pipeline.sentence_table(train_source, vocab, config.dataset.max_words),
      local_devices=jax.local_device_count())
  if checkpointer.latest_step() is not None:
    restored_step, state = checkpointer.restore(
        'latest', abstract_state=sharding_lib.abstract_like(state),
        data_iterator=data_iter)
    logging.info('Resumed from the checkpoint of step %d.', restored_step)

  writer = (tensorboardX.SummaryWriter(os.path.join(workdir, 'tensorboard'))
            if jax.process_index() == 0 else None)
  run = _Run(config=config, workdir=workdir, mesh=mesh,
             train_step=train_step_lib.make_train_step(graphdef, optimizer, config,
                                                       mesh),
             data_iter=prefetch.DevicePrefetcher(
                 data_iter, lambda local: sharding_lib.global_batch(mesh, local)),
             checkpointer=checkpointer,
             evaluator=_validation_evaluator(config, graphdef, mesh, train_source,
                                             val_source, vocab),
             early_stopping=model_selection.EarlyStopping(
                 config.early_stopping_patience,
                 best=_resumed_best(config, checkpointer)),
             text=text, writer=writer, total_steps=total_steps)
  stop = _StopRequest()
  try:
    return _loop(run, state, stop)
  finally:
    stop.restore()
    checkpointer.close()
    if writer is not None:
      writer.close()


def _validation_evaluator(config, graphdef, mesh, train_source, val_source,
                          vocab) -> evaluation.SplitEvaluator:
  """Validation with the lexical baseline fit once, on the training split."""
  split = pipeline.load_eval_split(config, val_source, vocab)
  return evaluation.SplitEvaluator(
      evaluation.make_device_scorer(graphdef, config, mesh), split,
      split_name='validation',
      baseline_probs=evaluation.text_baseline_probs(train_source, split))


def _resumed_best(config, checkpointer) -> float | None:
  """The best value of `config.best_metric` among the saved steps (a resumed run)."""
  chosen = (checkpointer.best_metrics() or {}).get(checkpoint_lib.SELECTION)
  return chosen['value'] if chosen and chosen['name'] == config.best_metric else None


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
  entry = dict(scalars, step=step)
  result.train_log.append(entry)
  _write_scalars(run.writer, 'train', scalars, step)
  if jax.process_index() == 0:
    _append_json_line(os.path.join(run.workdir, TRAIN_METRICS_FILE), entry)


def _append_json_line(path: str, entry: dict) -> None:
  """Full-precision scalars (TensorBoard rounds to float32); a resumed run appends."""
  with open(path, 'a') as f:
    f.write(json.dumps(entry) + '\n')


def _validate(run: _Run, state, step: int, result: TrainResult) -> dict:
  metrics = run.evaluator.evaluate(_variables(state), step=step)
  criterion = run.config.best_metric
  value = model_selection.selection_value(criterion, metrics, run.evaluator.chance)
  metrics[checkpoint_lib.SELECTION] = {'name': criterion, 'value': value}
  if jax.process_index() == 0:
    evaluation.write_metrics(run.workdir, metrics)
  logging.info('validation step %d: rsum %.2f  i2t R@1 %.2f  t2i R@1 %.2f  '
               'visual mAP %s  %s %.4f', step, metrics['rsum'], metrics['i2t']['R@1'],
               metrics['t2i']['R@1'], _maybe_round(metrics['visual_id']['mAP']),
               criterion, value)
  _write_scalars(run.writer, 'validation', _flatten(metrics), step)
  result.validation.append(metrics)
  return metrics


def _variables(state: train_step_lib.TrainState) -> model_lib.Variables:
  return {'params': state['params'], 'model_state': state['model_state']}


def _loop(run: _Run, state, stop: _StopRequest) -> TrainResult:
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
    val_metrics = None
    if step % config.eval_every_steps == 0 or is_last:
      val_metrics = _validate(run, state, step, result)
    no_progress = val_metrics is not None and run.early_stopping.update(
        val_metrics[checkpoint_lib.SELECTION]['value'])
    stopping = stop.agreed(is_log_step)
    if (step % config.checkpoint_every_steps == 0 or is_last or stopping
        or val_metrics is not None):
      run.checkpointer.save(step, state=state, data_iterator=run.data_iter,
                            config=config, vocab=run.text.to_json(),
                            metrics=val_metrics, force=True)
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


def _flatten(result: dict, prefix: str = '') -> dict[str, float]:
  """Nested metrics → {'i2t/R_at_1': ...} scalars for TensorBoard."""
  flat = {}
  for key, value in result.items():
    name = f'{prefix}{key}'.replace('@', '_at_')  # TensorBoard tag characters
    if isinstance(value, dict):
      flat.update(_flatten(value, name + '/'))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      flat[name] = float(value)
  return flat


def _write_scalars(writer, prefix: str, scalars: dict, step: int) -> None:
  if writer is None:
    return
  for name, value in scalars.items():
    writer.add_scalar(f'{prefix}/{name}', value, step)
  writer.flush()
