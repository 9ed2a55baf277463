r"""Evaluates a saved checkpoint: metrics JSON, a printed table and a report.

  python -m artpedia_jax.eval --workdir=W [--step=N|latest|best] [--split=test]
      [--data_dir=D] [--baselines] [--config.eval_batch_size=64 ...]

Restores the parameters and the config and vocabulary saved beside them, onto whatever
devices are present, and writes W/eval/<split>_step<N>.json and W/eval/<split>_step<N>.md.
`--data_dir` (or `--config.dataset.data_dir`) points at the dataset where it lives now;
`--config.*` overrides only keys that do not change the model (`restore.EVALUATION_KEYS`).
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from artpedia_jax import console
from artpedia_jax.checkpoints import restore
from artpedia_jax.evaluation import checkpoint_eval
from artpedia_jax.evaluation import report
from tfds_artpedia import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'train, validation or test.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Where the TFDS dataset lives now, if not where training read it.')
_REPORT = flags.DEFINE_boolean('report', True, 'Also write the Markdown report.')
_BASELINES = flags.DEFINE_boolean(
    'baselines', False, 'Also score retrieval with the pooled scorer on the same '
    'encoders, to show what region-word alignment adds.')
_CONFIG = config_flags.DEFINE_config_dict(
    'config', restore.overridable_config(),
    'Evaluation-only overrides of the saved config, e.g. --config.eval_batch_size=64.',
    lock_config=False, accept_new_attributes=True)


def _overrides() -> dict:
  overrides = dict(config_flags.get_override_values(flags.FLAGS['config']))
  if _DATA_DIR.value:
    overrides['dataset.data_dir'] = _DATA_DIR.value
  return overrides


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.prepare_command(flags.FLAGS.verbose)
  result = checkpoint_eval.evaluate_checkpoint(
      _WORKDIR.value, _STEP.value, _SPLIT.value, overrides=_overrides(),
      write_report=_REPORT.value, pooled_baseline=_BASELINES.value)
  print(report.format_table(result.metrics, result.chance))
  print(f'Metrics: {result.metrics_path}')
  if result.report_path:
    print(f'Report:  {result.report_path}')


if __name__ == '__main__':
  cli.run(main)
