"""The training loop behind `run.py`: data → sharded train step → logs, evals, checkpoints.

A run is fully described by its config and workdir: a second run with the same workdir
resumes from the last checkpoint (parameters, optimiser, step and the data iterator's
position), so it continues on the same data order as if it had never stopped.
"""

import os
import signal
import time

from absl import logging
from flax import nnx
import jax
import ml_collections
import numpy as np
import tensorboardX

from artpedia_jax import checkpoint as checkpoint_lib
from artpedia_jax import config_checks
from artpedia_jax import dataset
from artpedia_jax import evaluator as evaluator_lib
from artpedia_jax import model as model_lib
from artpedia_jax import optim
from artpedia_jax import pipeline
from artpedia_jax import sharding as sharding_lib
from artpedia_jax import train_step as train_step_lib
from artpedia_jax import vocab as vocab_lib


class TooManySkippedSteps(RuntimeError):
  """Consecutive non-finite steps: the run cannot make progress."""


class _StopRequest:
  """Turns SIGTERM into a request to stop after the current step (preemption)."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: finishing this step, saving a checkpoint, exiting.')
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def total_train_steps(config: ml_collections.ConfigDict, num_pairs: int) -> int:
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config.num_epochs * pipeline.steps_per_epoch(num_pairs, config.batch_size)


def _format_eta(seconds: float) -> str:
  minutes, secs = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{secs:02d}s'


def _vocabulary(config, train_source, checkpointer) -> vocab_lib.Vocabulary:
  """The saved vocabulary when resuming (ids must not move), else a new one."""
  step = checkpointer.latest_step()
  if step is not None:
    return vocab_lib.Vocabulary.from_json(checkpointer.load_vocab(step))
  vocab = vocab_lib.build_from_source(train_source, config.vocab.min_count)
  logging.info('Vocabulary: %d words (min count %d) from the training split.',
               len(vocab), config.vocab.min_count)
  return vocab


def _word_embeddings(config, vocab):
  if not config.vocab.glove_path:
    return None
  matrix, missing = vocab_lib.load_glove(config.vocab.glove_path, vocab,
                                          config.model.word_dim)
  logging.info('GloVe: %d of %d words not found in %s.', missing, len(vocab),
               config.vocab.glove_path)
  return matrix


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir`; returns the last validation metrics."""
  mesh = sharding_lib.make_mesh()
  config_checks.validate(config, num_devices=mesh.size)
  dataset.prepare(config)
  train_source = pipeline.open_source(config, 'train')
  val_source = pipeline.open_source(config, 'validation')

  checkpointer = checkpoint_lib.Checkpointer(
      os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  vocab = _vocabulary(config, train_source, checkpointer)
  num_pairs = len(pipeline.visual_pair_index(train_source))
  total_steps = total_train_steps(config, num_pairs)

  model = model_lib.ArtpediaModel(
      config, vocab_size=len(vocab),
      feature_dim=pipeline.feature_dim(train_source),
      rngs=nnx.Rngs(config.seed),
      word_embeddings=_word_embeddings(config, vocab))
  graphdef, params = nnx.split(model, nnx.Param)
  params = nnx.to_pure_dict(params)
  schedule = optim.learning_rate_schedule(config, total_steps)
  tx = optim.make_optimizer(config, total_steps)
  state = sharding_lib.replicate(mesh, train_step_lib.init_state(params, tx))
  train_step = train_step_lib.make_train_step(graphdef, tx, config, mesh, schedule)

  data_iter = pipeline.train_iterator(
      config, train_source, vocab, process_index=jax.process_index(),
      process_count=jax.process_count(), seed=config.seed)
  if checkpointer.latest_step() is not None:
    abstract_state = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    restored_step, state = checkpointer.restore(
        'latest', abstract_state=abstract_state, data_iterator=data_iter)
    logging.info('Resumed from the checkpoint of step %d.', restored_step)

  val_split = pipeline.load_eval_split(config, val_source, vocab)
  evaluator = evaluator_lib.Evaluator(graphdef, config, mesh)
  writer = (tensorboardX.SummaryWriter(os.path.join(workdir, 'tensorboard'))
            if jax.process_index() == 0 else None)
  stop = _StopRequest()
  last_metrics = {}
  try:
    last_metrics = _loop(config, workdir, state, train_step, data_iter, mesh,
                         checkpointer, evaluator, val_split, vocab, writer,
                         total_steps, stop)
  finally:
    stop.restore()
    checkpointer.close()
    if writer is not None:
      writer.close()
  return last_metrics


def _loop(config, workdir, state, train_step, data_iter, mesh, checkpointer,
          evaluator, val_split, vocab, writer, total_steps, stop) -> dict:
  """Steps until `total_steps` or a stop request; evaluates and checkpoints on period."""
  step = int(state['step'])
  start_step, start_time = step, time.time()
  window_start, window_steps = time.time(), 0
  consecutive_skips = 0
  last_metrics = {}
  while step < total_steps:
    batch = sharding_lib.global_batch(mesh, next(data_iter))
    state, metrics = train_step(state, batch)
    step += 1
    window_steps += 1
    skipped = int(metrics['skipped'])
    consecutive_skips = consecutive_skips + 1 if skipped else 0
    if skipped:
      logging.warning('Step %d skipped: non-finite loss or gradient (paintings %s).',
                      step, np.asarray(batch['painting']).tolist())
      if consecutive_skips >= config.max_consecutive_skips:
        raise TooManySkippedSteps(
            f'{consecutive_skips} consecutive steps had a non-finite loss or gradient '
            f'(last at step {step}); the last good checkpoint is step '
            f'{checkpointer.latest_step()}. Lower optimizer.learning_rate or check '
            'the data.')

    if step % config.log_every_steps == 0 or step == total_steps:
      elapsed = time.time() - window_start
      scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
      scalars['steps_per_second'] = window_steps / elapsed
      scalars['pairs_per_second'] = window_steps * config.batch_size / elapsed
      done = (step - start_step) / (time.time() - start_time)
      eta = (total_steps - step) / max(done, 1e-9)
      logging.info(
          'step %d/%d (%.0f%%) loss %.4f rank %.4f cls %.4f acc %.3f lr %.2e '
          '%.0f pairs/s ETA %s', step, total_steps, 100 * step / total_steps,
          scalars['loss'], scalars['rank_loss'], scalars['cls_loss'],
          scalars['cls_accuracy'], scalars.get('learning_rate', 0.0),
          scalars['pairs_per_second'], _format_eta(eta))
      _write_scalars(writer, 'train', scalars, step)
      window_start, window_steps = time.time(), 0

    is_last = step == total_steps
    val_metrics = None
    if step % config.eval_every_steps == 0 or is_last:
      val_metrics = evaluator.evaluate(state['params'], val_split,
                                       split_name='validation', step=step)
      evaluator_lib.write_metrics(workdir, val_metrics)
      logging.info('validation step %d: rsum %.2f  i2t R@1 %.2f  t2i R@1 %.2f  '
                   'visual mAP %.2f', step, val_metrics['rsum'],
                   val_metrics['i2t']['R@1'], val_metrics['t2i']['R@1'],
                   val_metrics['visual_id']['mAP'])
      _write_scalars(writer, 'validation', evaluator_lib.flatten(val_metrics), step)
      last_metrics = val_metrics
    if (step % config.checkpoint_every_steps == 0 or is_last or stop.requested
        or val_metrics is not None):
      checkpointer.save(step, state=state, data_iterator=data_iter, config=config,
                        vocab=vocab.to_json(), metrics=val_metrics)
    if stop.requested:
      logging.warning('Stopped at step %d on request; resume with the same workdir.',
                      step)
      break
  checkpointer.wait_until_finished()
  return last_metrics


def _write_scalars(writer, prefix: str, scalars: dict, step: int) -> None:
  if writer is None:
    return
  for name, value in scalars.items():
    writer.add_scalar(f'{prefix}/{name}', value, step)
  writer.flush()
