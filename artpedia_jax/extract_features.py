r"""Precomputes a pixel backbone's grid region features, one `<id>.npz` per painting.

  python -m artpedia_jax.extract_features --config=configs/align_pixels.py --out=DIR \
      [--config.model.backbone_weights=resnet152.safetensors] [--splits=train,test]

The files go where the dataset's `regions` config reads them (`manual_dir/regions/`);
see `inference.feature_extraction` for their layout. Resumable: existing files are kept.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from artpedia_jax import console
from artpedia_jax.inference import feature_extraction
from tfds_artpedia import cli


def _define_flags() -> None:
  """Flags exist only when this module runs as the program: importing it (tests, other
  tools) must not claim names such as --out in the process-wide absl registry."""
  config_flags.DEFINE_config_file(
      'config', None, 'Path to a config file (configs/*.py) with model.backbone set.',
      lock_config=True)
  flags.DEFINE_string('out', None, 'Folder of the <id>.npz files.', required=True)
  flags.DEFINE_list('splits', list(feature_extraction.SPLITS), 'Dataset splits to extract.')
  flags.DEFINE_integer('batch_size', 32, 'Images per backbone call.')
  flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.prepare_command(flags.FLAGS.verbose)
  args = flags.FLAGS
  written = feature_extraction.extract(args.config, cli.writable_folder(args.out, '--out'),
                                       splits=args.splits, batch_size=args.batch_size)
  print(f'Wrote {written} files into {args.out}.')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
