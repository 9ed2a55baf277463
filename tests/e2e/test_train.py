"""Training end to end on a small sample corpus: learning, resuming, stopping, evaluating."""

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from artpedia_jax.checkpoints import manager as checkpoint
from artpedia_jax.checkpoints import restore
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.evaluation import checkpoint_eval
from artpedia_jax.train import loop as train
from artpedia_jax.train import model_selection
from tests.helpers import e2e_helpers

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tfds')
  dataset.prepare(e2e_helpers.e2e_config(path))
  return path


def _params(workdir):
  """(step, parameters as numpy) of the latest checkpoint in `workdir`."""
  restored = restore.restore_model(str(workdir), 'latest')
  return restored.step, jax.tree.map(np.asarray, restored.variables)


def test_training_learns_and_the_eval_binary_reproduces_validation(data_dir, tmp_path):
  config = e2e_helpers.e2e_config(data_dir, log_every_steps=1)
  result = train.train_and_evaluate(config, str(tmp_path))

  losses = [entry['loss'] for entry in result.train_log]
  assert result.final_step == config.num_train_steps
  # Mean of the last 10 steps against the first 10: one batch's loss is too noisy.
  assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10]), losses

  logged = json.loads((tmp_path / 'eval' / f'validation_step{result.final_step}.json')
                      .read_text())
  # Training adds which criterion ranks the step; the rest is the evaluation itself.
  assert logged.pop('best_metric')['name'] == 'rsum'
  again = checkpoint_eval.evaluate_checkpoint(str(tmp_path), 'latest', 'validation')
  again.metrics.pop('chosen_as_best_by', None)  # the eval binary's note, when best
  assert again.metrics == logged
  e2e_helpers.assert_beats_chance(again.metrics, again.chance)

  test_eval = checkpoint_eval.evaluate_checkpoint(str(tmp_path), 'best', 'test')
  assert test_eval.metrics['chosen_as_best_by']['name'] == 'rsum'
  report = test_eval.report_path
  assert report and report.endswith('.md')
  text = open(report).read()
  assert 'recall' in text and 'precision-recall' in text
  assert "best checkpoint by validation `rsum`" in text


def test_sigkill_at_a_random_step_then_resume_gives_bitwise_equal_params(data_dir,
                                                                          tmp_path):
  overrides = {'log_every_steps': 1, 'checkpoint_every_steps': 5}
  reference = tmp_path / 'uninterrupted'
  config = e2e_helpers.e2e_config(data_dir, **overrides)
  trained = train.train_and_evaluate(config, str(reference))
  e2e_helpers.assert_beats_chance(trained.validation[-1],
                                  e2e_helpers.chance_levels(config, 'validation'))

  interrupted = tmp_path / 'interrupted'
  kill_at = random.randint(6, 35)
  run = e2e_helpers.start_run(interrupted, data_dir, **overrides)
  for line in run.stderr:
    if f'step {kill_at}/' in line:
      run.send_signal(signal.SIGKILL)
      break
  assert run.wait(timeout=120) == -signal.SIGKILL, f'never reached step {kill_at}'

  result = train.train_and_evaluate(e2e_helpers.e2e_config(data_dir, **overrides),
                                    str(interrupted))
  assert result.final_step == 40
  step_a, params_a = _params(reference)
  step_b, params_b = _params(interrupted)
  assert step_a == step_b == 40
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b, err_msg=f'killed at step {kill_at}')


def test_sigterm_finishes_the_step_saves_and_exits_cleanly(data_dir, tmp_path):
  run = e2e_helpers.start_run(tmp_path, data_dir, log_every_steps=1)
  log = []
  for line in run.stderr:
    log.append(line)
    if 'step 8/' in line:
      run.send_signal(signal.SIGTERM)
  assert run.wait(timeout=120) == 0, ''.join(log[-20:])
  stopped = [line for line in log if 'Stopped at step' in line]
  assert stopped, ''.join(log[-20:])
  step = int(re.search(r'Stopped at step (\d+)', stopped[0]).group(1))
  assert 8 <= step < 40
  with checkpoint.Checkpointer(tmp_path / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.latest_step() == step


def test_regions_dataset_not_built_and_no_manual_dir_is_a_clear_error(tmp_path):
  config = e2e_helpers.e2e_config(tmp_path, **{'dataset.name': 'artpedia/regions'})
  with pytest.raises(dataset.DatasetNotBuiltError, match='manual_dir'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w' / 'checkpoints').exists()


def test_early_stopping_ends_the_run_with_a_checkpoint_and_names_the_criterion(
    data_dir, tmp_path):
  """A learning rate too small to move a float32 parameter: no evaluation improves on the
  first, so patience 2 stops the run at the third evaluation."""
  config = e2e_helpers.e2e_config(
      data_dir, num_train_steps=40, eval_every_steps=10, checkpoint_every_steps=40,
      early_stopping_patience=2, best_metric='rsum_and_ap',
      **{'optimizer.learning_rate': 1e-12})
  result = train.train_and_evaluate(config, str(tmp_path))
  assert result.stopped_early and result.final_step == 30
  with checkpoint.Checkpointer(tmp_path / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.latest_step() == 30  # equal values: Orbax keeps the newest as best
    assert ckpt.best_step('rsum_and_ap') == 30
    assert ckpt.metrics(30)['best_metric']['name'] == 'rsum_and_ap'
  logged = json.loads((tmp_path / 'eval' / 'validation_step30.json').read_text())
  assert logged['best_metric']['name'] == 'rsum_and_ap'
  assert logged['best_metric']['value'] == result.validation[0]['best_metric']['value']


def test_a_resume_with_another_best_metric_keeps_best_on_a_step_it_scored(
    data_dir, tmp_path, caplog):
  """40 steps ranked by rsum (hundreds), resumed to 80 by visual_ap (below 1): an old
  rsum must not outrank the new criterion's values."""
  overrides = {'eval_every_steps': 10, 'checkpoint_every_steps': 10,
               'keep_checkpoints': 1}
  train.train_and_evaluate(e2e_helpers.e2e_config(data_dir, **overrides), str(tmp_path))
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(
        e2e_helpers.e2e_config(data_dir, num_train_steps=80, best_metric='visual_ap',
                               **overrides), str(tmp_path))
  (told,) = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith('best_metric is now visual_ap (was rsum)')]
  assert told.endswith('early stopping counts again from 0.')

  with checkpoint.Checkpointer(tmp_path / 'checkpoints', read_only=True) as ckpt:
    kept = ckpt.all_steps()
  ap = {step: json.loads((tmp_path / 'eval' / f'validation_step{step}.json').read_text())
        ['visual_id']['ap'] for step in kept}
  best = max(kept, key=lambda step: (ap[step], step))
  restored = restore.restore_model(str(tmp_path), 'best')
  assert restored.step == best, (kept, ap)
  assert restored.chosen_as_best_by == {'name': 'visual_ap', 'value': ap[best]}


# Each evaluation's value (the same for every criterion) by step: the last improvement
# is at step 20, so patience 2 stops an uninterrupted run at step 40.
SCRIPTED_VALUES = {10: 1.0, 20: 2.0, 30: 2.0, 40: 1.5, 50: 3.0, 60: 3.0, 70: 3.0, 80: 3.0}
EARLY_STOPPING = {'num_train_steps': 80, 'eval_every_steps': 10, 'log_every_steps': 1,
                  'checkpoint_every_steps': 5, 'early_stopping_patience': 2}
# run.py with the scripted values, for a child process to kill.
SCRIPTED_RUN = ('import runpy, sys; from tests.e2e import test_train; '
                'test_train.script_selection(); sys.argv[0] = "run.py"; '
                'runpy.run_path("run.py", run_name="__main__")')


def _scripted_values(metrics, chance):
  del chance
  return dict.fromkeys(model_selection.CRITERIA, SCRIPTED_VALUES[metrics['step']])


def script_selection():
  model_selection.all_values = _scripted_values


def test_early_stopping_survives_a_kill_and_a_rerun_says_it_stopped(
    data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(model_selection, 'all_values', _scripted_values)
  config = e2e_helpers.e2e_config(data_dir, **EARLY_STOPPING)
  reference = train.train_and_evaluate(config, str(tmp_path / 'uninterrupted'))
  assert reference.stopped_early and reference.final_step == 40

  # Killed after the checkpoint of step 30, which holds one evaluation without a new best
  # (the save of step 35, before step 38, waited for it to commit).
  interrupted = tmp_path / 'interrupted'
  flags = e2e_helpers.config_flags(data_dir, **EARLY_STOPPING)
  run = subprocess.Popen(
      [sys.executable, '-c', SCRIPTED_RUN, f'--workdir={interrupted}', *flags],
      cwd=e2e_helpers.REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
      env=dict(os.environ, PYTHONUNBUFFERED='1'))
  for line in run.stderr:
    if 'step 38/' in line:
      run.send_signal(signal.SIGKILL)
      break
  assert run.wait(timeout=300) == -signal.SIGKILL, 'never reached step 38'
  with checkpoint.Checkpointer(interrupted / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.latest_step() in (30, 35)

  resumed = train.train_and_evaluate(config, str(interrupted))
  assert resumed.stopped_early and resumed.final_step == 40
  step_a, params_a = _params(tmp_path / 'uninterrupted')
  step_b, params_b = _params(interrupted)
  assert step_a == step_b == 40
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b)

  before = e2e_helpers.file_digests(interrupted)
  again = subprocess.run([sys.executable, 'run.py', f'--workdir={interrupted}', *flags],
                         cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert ('This run stopped early at step 40 (2 evaluations without a better rsum than '
          '2.0000): nothing to do.') in again.stderr
  assert e2e_helpers.file_digests(interrupted) == before
