"""Multi-host start-up: `jax.distributed.initialize` from flags, environment or cluster.

On one host nothing happens. On a TPU pod slice or a SLURM / Open MPI cluster JAX detects
the cluster itself (`--distributed=auto`); elsewhere pass the coordinator explicitly.
"""

from absl import flags
from absl import logging
import jax

_MODE = flags.DEFINE_enum(
    'distributed', 'off', ['off', 'auto', 'explicit'],
    'off: single process. auto: let JAX detect the cluster (TPU pods, SLURM, MPI). '
    'explicit: use --coordinator_address, --num_processes and --process_id.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 (explicit mode).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in the job.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process (0-based).')


def initialize_from_flags() -> None:
  """Joins the multi-process job that the flags describe, if any."""
  if _MODE.value == 'off':
    return
  if _MODE.value == 'auto':
    jax.distributed.initialize()
  else:
    missing = [name for name, flag in (('coordinator_address', _COORDINATOR),
                                       ('num_processes', _NUM_PROCESSES),
                                       ('process_id', _PROCESS_ID))
               if flag.value is None]
    if missing:
      raise flags.ValidationError(
          f'--distributed=explicit needs --{", --".join(missing)}')
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  logging.info('Process %d of %d; %d local and %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
