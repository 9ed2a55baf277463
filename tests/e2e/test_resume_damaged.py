"""`run.py` resumes past a damaged latest checkpoint (slow).

The damage is flipped bytes in a data file, the one Orbax alone would not notice; every
kind of damage is covered at the `Checkpointer` level in test_checkpoint.py.
"""

import shutil
import subprocess
import sys

import pytest

from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.train import loop as train
from tests.artpedia_jax.checkpoints import test_manager as test_checkpoint
from tests.helpers import e2e_helpers

pytestmark = pytest.mark.slow

OVERRIDES = {'checkpoint_every_steps': 5, 'eval_every_steps': 100, 'log_every_steps': 5}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A workdir with the checkpoints of steps 5 and 10, and its data_dir."""
  root = tmp_path_factory.mktemp('trained')
  dataset.prepare(e2e_helpers.e2e_config(root / 'tfds'))
  train.train_and_evaluate(
      e2e_helpers.e2e_config(root / 'tfds', num_train_steps=10, **OVERRIDES),
      str(root / 'workdir'))
  return root


def test_resume_continues_from_the_previous_good_step(trained, tmp_path):
  workdir = tmp_path / 'workdir'
  shutil.copytree(trained / 'workdir', workdir)
  test_checkpoint.flip_bytes_in_the_middle(str(workdir / 'checkpoints' / '10'))
  result = subprocess.run(
      [sys.executable, 'run.py', f'--workdir={workdir}',
       *e2e_helpers.config_flags(trained / 'tfds', num_train_steps=15, **OVERRIDES)],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  fallbacks = [line for line in result.stderr.splitlines() if 'cannot be read' in line]
  assert len(fallbacks) == 1
  assert fallbacks[0].endswith('using step 5 instead (the damaged ones are kept as '
                               '<step>.damaged).')
  assert 'Resumed from the checkpoint of step 5.' in result.stderr
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == [
      '10', '10.damaged', '15', '5']


def test_eval_of_latest_falls_back_and_a_damaged_step_by_number_is_one_error(
    trained, tmp_path):
  workdir = tmp_path / 'workdir'
  shutil.copytree(trained / 'workdir', workdir)
  test_checkpoint.flip_bytes_in_the_middle(str(workdir / 'checkpoints' / '10'))
  command = [sys.executable, '-m', 'artpedia_jax.eval', f'--workdir={workdir}',
             '--split=validation', '--noreport']
  result = subprocess.run([*command, '--step=latest'], cwd=e2e_helpers.REPO,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  fallbacks = [line for line in result.stderr.splitlines() if 'cannot be read' in line]
  assert len(fallbacks) == 1 and fallbacks[0].endswith('using step 5 instead.')
  assert (workdir / 'eval' / 'validation_step5.json').exists()

  result = subprocess.run([*command, '--step=10'], cwd=e2e_helpers.REPO,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1
  assert errors[0].startswith(f'error: Checkpoint step 10 in {workdir}/checkpoints cannot '
                              'be read (state/')
  assert errors[0].endswith('(checksum mismatch)); steps that read: [5]. Ask for one of '
                            'them, or "latest" for the newest one that reads.')
