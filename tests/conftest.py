"""Test setup shared by every test under tests/.

Multi-device behaviour is tested on CPU with 8 fake devices: XLA reads the flag once,
when jax first initialises a backend, so it is set here, before any test imports jax.
"""

import os

os.environ['XLA_FLAGS'] = ' '.join(
    filter(None, [os.environ.get('XLA_FLAGS'), '--xla_force_host_platform_device_count=8']))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfds_artpedia import sample_corpus  # pylint: disable=g-import-not-at-top,wrong-import-position

# Library code reads absl flags (e.g. logging); pytest never parses them.
flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope='session')
def sample_paintings():
  """30 paintings of the generated sample corpus (seed 0), made once per session."""
  return tuple(sample_corpus.generate(num_paintings=30, seed=0))


@pytest.fixture(scope='session')
def large_sample_corpus():
  """200 paintings of the generated sample corpus (seed 1): enough for its ratios."""
  return tuple(sample_corpus.generate(num_paintings=200, seed=1))
