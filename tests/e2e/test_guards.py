"""Run-level guarantees: non-finite steps stop a run safely; a seed fixes a run on CPU."""

import json
import types

import jax
import numpy as np
import pytest

from artpedia_jax.checkpoints import manager as checkpoint
from artpedia_jax.checkpoints import restore
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.parallel import sharding
from artpedia_jax.train import loop as train
from artpedia_jax.train import step as train_step_lib
from tests.helpers import e2e_helpers

pytestmark = pytest.mark.slow

GOOD_STEPS = 4
MAX_SKIPS = 3
TIMING_KEYS = ('steps_per_second', 'pairs_per_second')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tfds')
  dataset.prepare(e2e_helpers.e2e_config(path))
  return path


def _nan_regions_after(good_steps: int):
  """A `global_batch` whose batches after the first `good_steps` have NaN features."""
  real_global_batch, calls = sharding.global_batch, [0]

  def global_batch(mesh, local_batch):
    calls[0] += 1
    if calls[0] > good_steps:
      local_batch = dict(local_batch, regions=np.full_like(local_batch['regions'], np.nan))
    return real_global_batch(mesh, local_batch)

  return global_batch


def test_consecutive_non_finite_steps_stop_the_run_with_a_good_checkpoint(
    data_dir, tmp_path, monkeypatch, caplog):
  config = e2e_helpers.e2e_config(
      data_dir, log_every_steps=1, checkpoint_every_steps=3, eval_every_steps=1000,
      max_consecutive_skips=MAX_SKIPS)
  monkeypatch.setattr(sharding, 'global_batch', _nan_regions_after(GOOD_STEPS))

  last_step = GOOD_STEPS + MAX_SKIPS
  with pytest.raises(train.TooManySkippedSteps, match=f'step {last_step}'):
    train.train_and_evaluate(config, str(tmp_path))

  skipped = [r.getMessage() for r in caplog.records if 'skipped' in r.getMessage()]
  assert len(skipped) == MAX_SKIPS and 'paintings' in skipped[0], skipped
  with checkpoint.Checkpointer(tmp_path / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.all_steps()[-1] < last_step
  restored = restore.restore_model(str(tmp_path), 'latest')
  for leaf in jax.tree.leaves(restored.variables):
    assert np.all(np.isfinite(np.asarray(leaf)))


def _train(config, workdir):
  result = train.train_and_evaluate(config, str(workdir))
  losses = [{k: v for k, v in entry.items() if k not in TIMING_KEYS}
            for entry in result.train_log]
  validation = (workdir / 'eval' / f'validation_step{result.final_step}.json').read_text()
  return losses, json.loads(validation)


def test_same_config_and_seed_give_identical_runs_on_cpu(data_dir, tmp_path):
  config = e2e_helpers.e2e_config(data_dir, num_train_steps=10, eval_every_steps=10,
                                  log_every_steps=1)
  losses_a, validation_a = _train(config, tmp_path / 'a')
  losses_b, validation_b = _train(config, tmp_path / 'b')
  assert len(losses_a) == 9
  assert losses_a == losses_b
  assert validation_a == validation_b


def test_throughput_counts_training_time_only(data_dir, tmp_path, monkeypatch):
  """A fake clock: each train step takes 1 s, each evaluation and save 1000 s."""
  clock = [0.0]

  def advancing(seconds, function):
    def advanced(*args, **kwargs):
      clock[0] += seconds
      return function(*args, **kwargs)
    return advanced

  real_make_train_step = train_step_lib.make_train_step
  monkeypatch.setattr(train_step_lib, 'make_train_step',
                      lambda *a, **k: advancing(1.0, real_make_train_step(*a, **k)))
  monkeypatch.setattr(train, '_validate', advancing(1000.0, train._validate))
  monkeypatch.setattr(checkpoint.Checkpointer, 'save',
                      advancing(1000.0, checkpoint.Checkpointer.save))
  monkeypatch.setattr(train, 'time', types.SimpleNamespace(time=lambda: clock[0]))
  config = e2e_helpers.e2e_config(data_dir, num_train_steps=9, log_every_steps=2,
                                  eval_every_steps=4, checkpoint_every_steps=3)
  result = train.train_and_evaluate(config, str(tmp_path))
  assert [entry['step'] for entry in result.train_log] == [2, 4, 6, 8, 9]
  assert [entry['steps_per_second'] for entry in result.train_log] == [1.0] * 5
