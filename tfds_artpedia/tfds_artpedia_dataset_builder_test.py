"""TFDS's own builder checks (build, read back with tf.data, split counts, reload) per config.

`dummy_data/` is the sample corpus written to disk, 12 paintings (10 train, 1 validation,
1 test), regenerated with
`python -m tfds_artpedia.sample --out=tfds_artpedia/dummy_data --num_paintings=12`;
the `sample` config generates the same 12 paintings in-process, `sample_realistic` 12
paintings with the same split sizes (neither reads dummy_data).
"""

import pytest
import tensorflow_datasets as tfds

from tfds_artpedia import tfds_artpedia_dataset_builder

DUMMY_PAINTINGS = 12
pytest.importorskip('dill', reason='tfds.testing needs dill (tensorflow-datasets[tests]).')


class _ArtpediaConfigTest(tfds.testing.DatasetBuilderTestCase):
  __test__ = False  # a base: each subclass tests one config
  DATASET_CLASS = tfds_artpedia_dataset_builder.Artpedia
  SPLITS = {'train': 10, 'validation': 1, 'test': 1}

  def _make_builder(self, config=None):
    # This test case reads back with tf.data (`as_dataset`), which TFDS implements for
    # tfrecord only; the default array_record files are checked with `tfds.data_source`
    # in tests/tfds_artpedia/test_main.py.
    return self.dataset_class(data_dir=self.tmp_dir, config=config, version=self.VERSION,
                              num_paintings=DUMMY_PAINTINGS, file_format='tfrecord')


class SampleConfigTest(_ArtpediaConfigTest):
  __test__ = True
  BUILDER_CONFIG_NAMES_TO_TEST = ['sample']


class SampleRealisticConfigTest(_ArtpediaConfigTest):
  __test__ = True
  BUILDER_CONFIG_NAMES_TO_TEST = ['sample_realistic']


class ImagesConfigTest(_ArtpediaConfigTest):
  __test__ = True
  BUILDER_CONFIG_NAMES_TO_TEST = ['images']


class RegionsConfigTest(_ArtpediaConfigTest):
  __test__ = True
  BUILDER_CONFIG_NAMES_TO_TEST = ['regions']


if __name__ == '__main__':
  tfds.testing.test_main()
