"""The workdir a run owns: created only for a valid config, locked against a second run,
and reachable through etils.epath alone (a gs:// workdir)."""

import json
import pathlib
import signal
import subprocess
import sys

import pytest

from artpedia_jax.checkpoints import manager as checkpoint
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.evaluation import checkpoint_eval
from artpedia_jax.train import loop as train
from artpedia_jax.train import metric_writers
from artpedia_jax.train import workdir_lock
from tests.helpers import e2e_helpers
from tests.helpers import fake_gcs


def _run_py(workdir, *flags) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, 'run.py', f'--workdir={workdir}', *flags],
                        cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=600)


def _error_lines(stderr: str) -> list[str]:
  return [line for line in stderr.splitlines() if line.startswith('error:')]


@pytest.mark.parametrize('bad_flag', ['--config.model.score=bogus',
                                      '--config.batch_size=7'])
def test_a_bad_config_leaves_no_workdir(tmp_path, bad_flag):
  result = _run_py(tmp_path / 'workdir', '--config=configs/test.py', bad_flag,
                   f'--config.dataset.data_dir={tmp_path / "tfds"}')
  assert result.returncode == 2, result.stderr[-2000:]
  assert len(_error_lines(result.stderr)) == 1
  assert 'Invalid configuration' in _error_lines(result.stderr)[0]
  assert not (tmp_path / 'workdir').exists()


@pytest.mark.slow
def test_a_second_run_on_a_locked_workdir_is_one_error_and_touches_nothing(tmp_path):
  """The first run is paused (SIGSTOP) while the second tries, so that its files hold
  still; then it resumes and ends as if nothing had happened."""
  data_dir = tmp_path / 'tfds'
  dataset.prepare(e2e_helpers.e2e_config(data_dir))
  workdir = tmp_path / 'workdir'
  overrides = {'num_train_steps': 30, 'log_every_steps': 1, 'checkpoint_every_steps': 5}
  first = e2e_helpers.start_run(workdir, data_dir, **overrides)
  log = []
  try:
    for line in first.stderr:
      log.append(line)
      if 'step 17/' in line:  # step 10 committed, with its manifest
        break
    first.send_signal(signal.SIGSTOP)
    before = e2e_helpers.file_digests(workdir)
    second = _run_py(workdir, *e2e_helpers.config_flags(data_dir, **overrides))
    after = e2e_helpers.file_digests(workdir)
  finally:
    first.send_signal(signal.SIGCONT)
  log += first.stderr.readlines()
  assert first.wait(timeout=300) == 0, ''.join(log[-20:])

  assert second.returncode == 1, second.stderr[-2000:]
  assert 'Traceback' not in second.stderr
  (error,) = _error_lines(second.stderr)
  assert error.startswith(f'error: {workdir} is in use by another run (process '
                          f'{first.pid} on host ')
  assert error.endswith(f'{workdir}/{workdir_lock.LOCK_FILE} holds its lock): wait for it '
                        'to end or pass another --workdir.')
  assert after == before
  assert {workdir_lock.LOCK_FILE, 'checkpoints/10/artpedia_checksums.json'} <= set(before)
  with checkpoint.Checkpointer(workdir / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.latest_step() == 30
  assert not (workdir / workdir_lock.LOCK_FILE).exists()  # released at the end


@pytest.mark.slow
def test_a_gs_workdir_gets_every_file_through_epath(tmp_path, monkeypatch):
  """A run and its evaluation on gs://bucket/run, a fake epath backend (Orbax's own gs://
  support, through TensorStore, is Orbax's: its directory is redirected to a local one)."""
  data_dir = tmp_path / 'tfds'
  dataset.prepare(e2e_helpers.e2e_config(data_dir))
  monkeypatch.chdir(tmp_path)
  fake = fake_gcs.fake_gcs(tmp_path / 'bucket_root', monkeypatch)

  class LocalCheckpointer(checkpoint.Checkpointer):
    def __init__(self, directory, **kwargs):
      super().__init__(fake.local(directory), **kwargs)

  monkeypatch.setattr(checkpoint, 'Checkpointer', LocalCheckpointer)
  config = e2e_helpers.e2e_config(data_dir, num_train_steps=20, eval_every_steps=10)
  train.train_and_evaluate(config, 'gs://bucket/run')
  result = checkpoint_eval.evaluate_checkpoint('gs://bucket/run', 'best', 'validation')

  written = set(fake.written)
  assert {'gs://bucket/run/run.lock', 'gs://bucket/run/train_metrics.jsonl',
          'gs://bucket/run/eval/validation_step10.json',
          'gs://bucket/run/eval/validation_step20.json',
          result.metrics_path, result.report_path} <= written
  local_run = pathlib.Path(fake.local('gs://bucket/run'))
  files = {str(p.relative_to(local_run)) for p in local_run.rglob('*')
           if p.is_file() and not p.is_relative_to(local_run / 'checkpoints')}
  assert {f'gs://bucket/run/{name}' for name in files} <= written  # each through epath
  assert any(name.startswith(f'{metric_writers.TENSORBOARD_DIR}/events.') for name in files)
  assert any(name.endswith('_pr.png') for name in files)
  assert not (local_run / workdir_lock.LOCK_FILE).exists()
  assert json.loads((local_run / 'eval' / 'validation_step20.json').read_text())['step'] == 20
  assert not (tmp_path / 'gs:').exists()  # nothing went to the local disk by name
