"""A small built sample dataset and configs pointing at it, for end-to-end tests."""

import hashlib
import os
import pathlib
import subprocess
import sys

import numpy as np

from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.evaluation import metrics as metrics_lib
from configs import test as test_config

REPO = pathlib.Path(__file__).resolve().parents[2]  # tests/helpers/ → the checkout
NUM_PAINTINGS = 120
DATASET = f'artpedia/sample/num_paintings={NUM_PAINTINGS}'
# A faster start than the test config's, so that 40 steps learn to retrieve: summed
# hinges for the first half (every negative teaches), a higher peak rate.
TRAINING = {'optimizer.learning_rate': 1e-2, 'loss.max_violation_warmup_steps': 20}
# How far above chance a trained run must be. The validation and test splits have 12
# paintings, where random scores reach rsum 238 (of 600) on average, with a standard
# deviation of 36 (a 40-step run reaches ~300); random visual probabilities give AUC 0.5
# (deviation 0.06; a 40-step run reaches ~0.95).
RSUM_ABOVE_CHANCE = 40.0
AUC_ABOVE_CHANCE = 0.3


def e2e_config(data_dir, **overrides):
  config = test_config.get_config()
  config.dataset.data_dir = str(data_dir)
  config.dataset.name = DATASET
  for key, value in dict(TRAINING, **overrides).items():
    section, _, field = key.rpartition('.')
    setattr(config[section] if section else config, field, value)
  return config


def config_flags(data_dir, **overrides) -> list[str]:
  """The run.py flags equivalent to `e2e_config(data_dir, **overrides)`."""
  flags = ['--config=configs/test.py', f'--config.dataset.data_dir={data_dir}',
           f'--config.dataset.name={DATASET}']
  return flags + [f'--config.{key}={value}'
                  for key, value in dict(TRAINING, **overrides).items()]


def start_run(workdir, data_dir, **overrides) -> subprocess.Popen:
  """`python run.py` on the test config in a child process, stderr piped line by line."""
  return subprocess.Popen(
      [sys.executable, 'run.py', f'--workdir={workdir}',
       *config_flags(data_dir, **overrides)],
      cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
      env=dict(os.environ, PYTHONUNBUFFERED='1'))


def chance_levels(config, split: str) -> dict:
  """The metrics random scores get on a built split, from its records alone."""
  source = pipeline.open_source(input_spec.InputSpec.from_config(config), split)
  visual = [np.asarray(source[i]['is_visual'], bool) for i in range(len(source))]
  painting = np.repeat(np.arange(len(visual)), [len(v) for v in visual])
  return metrics_lib.chance_levels(painting, np.concatenate(visual),
                                   num_paintings=len(visual))


def assert_beats_chance(metrics: dict, chance: dict) -> None:
  """A trained model: retrieval rsum and visual-sentence AUC clearly above chance."""
  assert metrics['rsum'] >= chance['rsum'] + RSUM_ABOVE_CHANCE, (
      metrics['rsum'], chance['rsum'])
  auc, chance_auc = metrics['visual_id']['auc'], chance['visual_id']['auc']
  assert auc >= chance_auc + AUC_ABOVE_CHANCE, (auc, chance_auc)


def file_digests(folder) -> dict[str, str]:
  """Every file under `folder` with the SHA-256 of its bytes: to show nothing changed."""
  folder = pathlib.Path(folder)
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob('*')) if p.is_file()}
