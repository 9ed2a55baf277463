r"""Trains the Artpedia alignment model.

  python run.py --config=configs/align.py --workdir=W [--config.batch_size=256 ...]

Builds the dataset if it is not built yet, trains, evaluates on validation every
`eval_every_steps` and checkpoints into W. Re-running with the same W resumes.
Several hosts: the same command on each, with `--distributed` (see --help).
"""

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from artpedia_jax import console
from artpedia_jax.parallel import distributed
from artpedia_jax.train import config_checks
from artpedia_jax.train import loop as train
from tfds_artpedia import cli

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and '
                               'evaluations are written.', required=True)
_DISTRIBUTED = flags.DEFINE_enum('distributed', 'off', distributed.MODES,
                                 distributed.MODE_HELP)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None,
    'host:port of process 0 (explicit mode; default: $JAX_COORDINATOR_ADDRESS).')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Processes in the job (default: $JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, 'This process, 0-based (default: $JAX_PROCESS_ID).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.prepare_command(flags.FLAGS.verbose)
  distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value,
                         _PROCESS_ID.value)
  # A bad config is refused before the workdir exists, so it leaves no folder behind.
  config_checks.validate(_CONFIG.value, num_devices=jax.device_count())
  workdir = cli.writable_folder(_WORKDIR.value, '--workdir')
  train.train_and_evaluate(_CONFIG.value, workdir)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  cli.run(main)
