"""Multi-host start-up: `jax.distributed.initialize` from flags, environment or cluster.

The command (`run.py`) defines the flags and passes their values to `initialize`.

On one host nothing happens. On a TPU pod slice or a SLURM / Open MPI cluster JAX detects
the cluster itself (`--distributed=auto`); elsewhere pass the coordinator explicitly, with
flags or with the environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
JAX_PROCESS_ID (flags win). On CPU, processes exchange collectives over gloo (JAX's
default CPU collectives once `initialize` has run).

Every process runs the same program; process 0 alone logs progress (the others log only
warnings) and writes TensorBoard, metrics and reports.
"""

import os

from absl import logging
import jax

from tfds_artpedia import errors

MODES = ('off', 'auto', 'explicit')
MODE_HELP = ('off: single process. auto: let JAX detect the cluster (TPU pods, SLURM, '
             'MPI). explicit: use --coordinator_address, --num_processes and --process_id '
             '(or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).')


def _given_or_env(value, variable: str, parse=str):
  if value is not None:
    return value
  from_env = os.environ.get(variable)
  return None if from_env is None else parse(from_env)


def explicit_settings(coordinator_address: str | None = None,
                      num_processes: int | None = None,
                      process_id: int | None = None) -> dict:
  """The `jax.distributed.initialize` arguments: those given, else the environment's."""
  settings = {
      'coordinator_address': _given_or_env(coordinator_address, 'JAX_COORDINATOR_ADDRESS'),
      'num_processes': _given_or_env(num_processes, 'JAX_NUM_PROCESSES', int),
      'process_id': _given_or_env(process_id, 'JAX_PROCESS_ID', int),
  }
  missing = [name for name, value in settings.items() if value is None]
  if missing:
    raise errors.UsageError(
        f'--distributed=explicit needs --{", --".join(missing)} (or the environment '
        'variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).')
  return settings


def initialize(mode: str = 'off', coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None) -> None:
  """Joins the multi-process job that `mode` (one of MODES) describes, if any.

  Mode 'explicit' uses the other arguments, each defaulting to its environment variable.
  """
  if mode not in MODES:
    raise errors.UsageError(f'--distributed={mode!r}: must be one of {", ".join(MODES)}.')
  if mode == 'off':
    return
  if mode == 'auto':
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(
        **explicit_settings(coordinator_address, num_processes, process_id))
  logging.info('Process %d of %d; %d local and %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  if jax.process_index() > 0:
    logging.set_verbosity(logging.WARNING)
