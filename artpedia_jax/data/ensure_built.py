"""Makes sure the configured TFDS dataset is materialised before the pipeline opens it.

`run.py` builds the dataset on first use (the `sample` config needs nothing; `images` and
`regions` need `dataset.manual_dir`), so a new user goes from a clone to training with one
command.
"""

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import tensorflow_datasets as tfds

from tfds_artpedia import errors
# Importing the builder module registers `artpedia` with TFDS.
from tfds_artpedia import tfds_artpedia_dataset_builder


class DatasetNotBuiltError(errors.UsageError):
  """The dataset is not built and cannot be built from what the config gives."""


def prepare(config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the dataset's builder, building the dataset first if needed.

  With several processes, process 0 builds (into the shared data_dir) while the others
  wait, so that no two processes write the same dataset.
  """
  if jax.process_count() == 1:
    return _build_if_needed(config)
  if jax.process_index() == 0:
    _build_if_needed(config)
  multihost_utils.sync_global_devices('artpedia dataset prepared')
  return tfds.builder(config.dataset.name, data_dir=config.dataset.data_dir)


def _build_if_needed(config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  builder = tfds.builder(config.dataset.name, data_dir=config.dataset.data_dir)
  if not builder.is_prepared():
    if builder.reads_manual_dir and not config.dataset.manual_dir:
      raise DatasetNotBuiltError(
          f'Dataset {config.dataset.name} is not built in {builder.data_dir} and '
          'config.dataset.manual_dir is not set. Build it first with '
          f'`python -m tfds_artpedia build --config={builder.builder_config.name} '
          '--manual_dir=DIR` (DIR holding artpedia.json, images/ and regions/), or '
          'pass --config.dataset.manual_dir=DIR.')
    logging.info('Building %s into %s (first use).', config.dataset.name,
                 builder.data_dir)
  return tfds_artpedia_dataset_builder.prepare(
      builder, config.dataset.manual_dir or None, overwrite=config.dataset.overwrite,
      overwrite_hint='--config.dataset.overwrite=True')
