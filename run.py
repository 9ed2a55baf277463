r"""Trains the Artpedia alignment model.

  python run.py --config=configs/align.py --workdir=W [--config.batch_size=256 ...]

Builds the dataset if it is not built yet, trains, evaluates on validation every
`eval_every_steps` and checkpoints into W. Re-running with the same W resumes.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from artpedia_jax import console
from artpedia_jax import distributed
from artpedia_jax import train

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and '
                               'evaluations are written.', required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.quiet_third_party_info()
  distributed.initialize_from_flags()
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)
