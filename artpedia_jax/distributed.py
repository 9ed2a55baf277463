"""Multi-host start-up: `jax.distributed.initialize` from flags, environment or cluster.

On one host nothing happens. On a TPU pod slice or a SLURM / Open MPI cluster JAX detects
the cluster itself (`--distributed=auto`); elsewhere pass the coordinator explicitly, with
flags or with the environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
JAX_PROCESS_ID (flags win). On CPU, processes exchange collectives over gloo (JAX's
default CPU collectives once `initialize` has run).

Every process runs the same program; process 0 alone logs progress (the others log only
warnings) and writes TensorBoard, metrics and reports.
"""

import os

from absl import flags
from absl import logging
import jax

_MODE = flags.DEFINE_enum(
    'distributed', 'off', ['off', 'auto', 'explicit'],
    'off: single process. auto: let JAX detect the cluster (TPU pods, SLURM, MPI). '
    'explicit: use --coordinator_address, --num_processes and --process_id (or '
    'JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None,
    'host:port of process 0 (explicit mode; default: $JAX_COORDINATOR_ADDRESS).')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Processes in the job (default: $JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, 'This process, 0-based (default: $JAX_PROCESS_ID).')


def _flag_or_env(flag: flags.FlagHolder, variable: str, parse=str):
  if flag.value is not None:
    return flag.value
  value = os.environ.get(variable)
  return None if value is None else parse(value)


def _explicit_settings() -> dict:
  settings = {
      'coordinator_address': _flag_or_env(_COORDINATOR, 'JAX_COORDINATOR_ADDRESS'),
      'num_processes': _flag_or_env(_NUM_PROCESSES, 'JAX_NUM_PROCESSES', int),
      'process_id': _flag_or_env(_PROCESS_ID, 'JAX_PROCESS_ID', int),
  }
  missing = [name for name, value in settings.items() if value is None]
  if missing:
    raise flags.ValidationError(
        f'--distributed=explicit needs --{", --".join(missing)} (or the environment '
        'variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).')
  return settings


def initialize_from_flags() -> None:
  """Joins the multi-process job that the flags describe, if any."""
  if _MODE.value == 'off':
    return
  if _MODE.value == 'auto':
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(**_explicit_settings())
  logging.info('Process %d of %d; %d local and %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  if jax.process_index() > 0:
    logging.set_verbosity(logging.WARNING)
