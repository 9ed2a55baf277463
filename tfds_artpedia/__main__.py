"""`python -m tfds_artpedia build --config=NAME`: builds the dataset without TensorFlow.

The stock `tfds build` command needs TensorFlow (the `[tfds-cli]` extra); this one calls
the builder's `download_and_prepare` directly, writing array_record files, and gives the
same records. Skipped paintings are logged as warnings and listed in the summary.
"""

import argparse

from absl import logging

from tfds_artpedia import cli
from tfds_artpedia import images as images_lib
from tfds_artpedia import tfds_artpedia_dataset_builder as builder_lib


def build(config: str, data_dir: str | None = None, manual_dir: str | None = None,
          overwrite: bool = False, **options) -> builder_lib.Artpedia:
  """Builds `artpedia/<config>` and returns its builder.

  A dataset already built from the same inputs is reused; one built from other inputs
  is refused, or rebuilt with `overwrite`. `options` are the builder options:
  num_paintings, seed, max_image_side, strict.
  """
  builder = builder_lib.Artpedia(config=config, data_dir=data_dir, **options)
  return builder_lib.prepare(builder, manual_dir, overwrite=overwrite)


def _parser() -> argparse.ArgumentParser:
  parser = cli.ArgumentParser(prog='python -m tfds_artpedia', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest='command', required=True)
  build_parser = commands.add_parser('build', help='Build one config of the dataset.')
  build_parser.add_argument('--config', required=True, choices=builder_lib.CONFIGS)
  build_parser.add_argument('--data_dir', help='TFDS data dir (default: TFDS_DATA_DIR or '
                            '~/tensorflow_datasets).')
  build_parser.add_argument('--manual_dir', help='Folder with artpedia.json, images/ and '
                            'regions/ (configs images and regions).')
  build_parser.add_argument('--max_image_side', type=int,
                            default=images_lib.DEFAULT_MAX_SIDE,
                            help='Longer side of the stored images, in pixels.')
  build_parser.add_argument('--strict', action='store_true',
                            help='Fail on a missing or unreadable image instead of '
                            'skipping the painting.')
  build_parser.add_argument('--num_paintings', type=int,
                            default=builder_lib.DEFAULT_NUM_PAINTINGS,
                            help='Size of the generated corpus (configs sample, '
                            'sample_realistic).')
  build_parser.add_argument('--seed', type=int, default=0,
                            help='Seed of the generated corpus (configs sample, '
                            'sample_realistic).')
  build_parser.add_argument('--overwrite', action='store_true',
                            help='Rebuild a dataset on disk that was built from other '
                            'inputs (options, manual_dir or its files), instead of '
                            'stopping with the differences.')
  return parser


def main(args: argparse.Namespace) -> int:
  logging.set_verbosity(logging.WARNING)  # skipped paintings are warnings
  builder = build(args.config, args.data_dir, args.manual_dir, args.overwrite,
                  num_paintings=args.num_paintings, seed=args.seed,
                  max_image_side=args.max_image_side, strict=args.strict)
  counts = ', '.join(f'{name} {split.num_examples}'
                     for name, split in builder.info.splits.items())
  print(f'Built {builder.info.full_name} in {builder.data_dir}: {counts}.')
  skipped = builder.info.metadata.get('num_skipped')
  if skipped:
    print(f'Skipped paintings: {skipped} (ids in {builder.data_dir}/metadata.json).')
  return 0


if __name__ == '__main__':
  cli.run(main, parser=_parser())
