r"""Evaluates a saved checkpoint: metrics JSON, a printed table and a report.

  python -m artpedia_jax.eval --workdir=W [--step=N|latest|best] [--split=test]

Restores the parameters and the config and vocabulary saved beside them, onto whatever
devices are present, and writes W/eval/<split>_step<N>.json and W/eval/<split>_step<N>.md.
"""

from absl import app
from absl import flags

from artpedia_jax import console
from artpedia_jax import evaluate_checkpoint

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'train, validation or test.')
_REPORT = flags.DEFINE_boolean('report', True, 'Also write the Markdown report.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.quiet_third_party_info()
  try:
    result = evaluate_checkpoint.run(_WORKDIR.value, _STEP.value, _SPLIT.value,
                                     write_report=_REPORT.value)
  except evaluate_checkpoint.EvalError as e:
    raise SystemExit(f'error: {e}') from None
  print(evaluate_checkpoint.format_table(result.metrics, result.chance))
  print(f'Metrics: {result.metrics_path}')
  if result.report_path:
    print(f'Report:  {result.report_path}')


if __name__ == '__main__':
  app.run(main)
