"""Multi-process training on one machine: 2 processes × 2 CPU devices ≡ 1 process × 4.

The processes talk through `jax.distributed` (gloo collectives on CPU) exactly as hosts of
a cluster would, and share one workdir as hosts share a file system.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from artpedia_jax.checkpoints import manager as checkpoint
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.parallel import distributed
from artpedia_jax.train import metric_writers
from tests.helpers import e2e_helpers
from tfds_artpedia import errors

STEPS = 6
TIMEOUT_S = 300


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(workdir, data_dir, devices: int, *distributed_flags,
           **overrides) -> subprocess.Popen:
  flags = e2e_helpers.config_flags(
      data_dir, **dict({'num_train_steps': STEPS, 'log_every_steps': 1}, **overrides))
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.Popen(
      [sys.executable, 'run.py', f'--workdir={workdir}', *flags, *distributed_flags],
      cwd=e2e_helpers.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True)


def _wait_all(runs: list[subprocess.Popen]) -> list[str]:
  """Waits for every run and returns their logs; on a failure or a hang, kills the others
  and shows its log."""
  logs = []
  try:
    for run in runs:
      _, log = run.communicate(timeout=TIMEOUT_S)
      assert run.returncode == 0, log[-3000:]
      logs.append(log)
  finally:
    for run in runs:
      if run.poll() is None:
        run.kill()
        run.wait()
  return logs


def _two_processes(workdir, data_dir, **overrides) -> list[subprocess.Popen]:
  coordinator = f'127.0.0.1:{_free_port()}'
  return [_start(workdir, data_dir, 2, '--distributed=explicit',
                 f'--coordinator_address={coordinator}', '--num_processes=2',
                 f'--process_id={i}', **overrides)
          for i in range(2)]


def _train_log(workdir) -> list[dict]:
  lines = (workdir / metric_writers.TRAIN_METRICS_FILE).read_text().splitlines()
  return [json.loads(line) for line in lines]


def test_explicit_settings_come_from_the_environment_when_flags_are_unset(monkeypatch):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '10.0.0.1:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '4')
  monkeypatch.setenv('JAX_PROCESS_ID', '3')
  assert distributed.explicit_settings() == {
      'coordinator_address': '10.0.0.1:1234', 'num_processes': 4, 'process_id': 3}


def test_explicit_settings_missing_name_what_to_pass(monkeypatch):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '10.0.0.1:1234')
  monkeypatch.delenv('JAX_NUM_PROCESSES', raising=False)
  monkeypatch.delenv('JAX_PROCESS_ID', raising=False)
  with pytest.raises(errors.UsageError, match='--num_processes, --process_id'):
    distributed.explicit_settings()


def test_explicit_settings_prefer_the_given_values(monkeypatch):
  monkeypatch.setenv('JAX_NUM_PROCESSES', '4')
  settings = distributed.explicit_settings('h:1', num_processes=2, process_id=1)
  assert settings == {'coordinator_address': 'h:1', 'num_processes': 2, 'process_id': 1}


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_as_many_devices(tmp_path):
  data_dir = tmp_path / 'tfds'
  dataset.prepare(e2e_helpers.e2e_config(data_dir))
  one, two = tmp_path / 'one_process', tmp_path / 'two_processes'
  _wait_all([_start(one, data_dir, 4)] + _two_processes(two, data_dir))

  log_one, log_two = _train_log(one), _train_log(two)
  # One line per step: process 1 writes no log of its own into the shared workdir.
  assert [e['step'] for e in log_two] == list(range(2, STEPS + 1))
  assert [e['step'] for e in log_one] == [e['step'] for e in log_two]
  np.testing.assert_allclose([e['loss'] for e in log_two],
                             [e['loss'] for e in log_one], rtol=0, atol=1e-5)
  assert len(list((two / 'tensorboard').iterdir())) == 1

  val_one, val_two = (json.loads((w / 'eval' / f'validation_step{STEPS}.json').read_text())
                      for w in (one, two))
  assert val_two['rsum'] == pytest.approx(val_one['rsum'], abs=1e-3)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_one_step_without_waiting_for_a_log_step(
    tmp_path):
  """A preemption notice reaches process 1 only, with log_every_steps as long as the
  run: both processes save the same step and exit cleanly, long before the end."""
  data_dir = tmp_path / 'tfds'
  dataset.prepare(e2e_helpers.e2e_config(data_dir))
  steps = 400
  runs = _two_processes(tmp_path / 'run', data_dir, num_train_steps=steps,
                        log_every_steps=steps, eval_every_steps=steps,
                        checkpoint_every_steps=steps)
  head = []
  for line in runs[0].stderr:  # process 0 logs at INFO, process 1 warnings only
    head.append(line)
    if 'First step (with compilation) done.' in line:
      runs[1].send_signal(signal.SIGTERM)
      break
  logs = _wait_all(runs)

  stopped = [re.findall(r'Stopped at step (\d+) on request', log) for log in logs]
  assert stopped[0] and stopped[0] == stopped[1], (''.join(head) + logs[0])[-3000:]
  step = int(stopped[0][0])
  assert step < steps
  with checkpoint.Checkpointer(tmp_path / 'run' / 'checkpoints', read_only=True) as ckpt:
    assert ckpt.all_steps() == [step]
