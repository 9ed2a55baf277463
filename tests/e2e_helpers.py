"""A small built sample dataset and configs pointing at it, for end-to-end tests."""

import os
import pathlib
import subprocess
import sys

from configs import test as test_config

REPO = pathlib.Path(__file__).resolve().parents[1]
NUM_PAINTINGS = 120
DATASET = f'artpedia/sample/num_paintings={NUM_PAINTINGS}'


def e2e_config(data_dir, **overrides):
  config = test_config.get_config()
  config.dataset.data_dir = str(data_dir)
  config.dataset.name = DATASET
  for key, value in overrides.items():
    section, _, field = key.rpartition('.')
    setattr(config[section] if section else config, field, value)
  return config


def config_flags(data_dir, **overrides) -> list[str]:
  """The run.py flags equivalent to `e2e_config(data_dir, **overrides)`."""
  flags = ['--config=configs/test.py', f'--config.dataset.data_dir={data_dir}',
           f'--config.dataset.name={DATASET}']
  return flags + [f'--config.{key}={value}' for key, value in overrides.items()]


def start_run(workdir, data_dir, **overrides) -> subprocess.Popen:
  """`python run.py` on the test config in a child process, stderr piped line by line."""
  return subprocess.Popen(
      [sys.executable, 'run.py', f'--workdir={workdir}',
       *config_flags(data_dir, **overrides)],
      cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
      env=dict(os.environ, PYTHONUNBUFFERED='1'))
