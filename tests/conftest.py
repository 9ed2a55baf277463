"""Test setup shared by every test under tests/.

Multi-device behaviour is tested on CPU with 8 fake devices: XLA reads the flag once,
when jax first initialises a backend, so it is set here, before any test imports jax.
"""

import os
import tempfile

os.environ['XLA_FLAGS'] = ' '.join(
    filter(None, [os.environ.get('XLA_FLAGS'), '--xla_force_host_platform_device_count=8']))
# The commands keep compiled code on disk (artpedia_jax.console): in one folder per test
# session, not the user's cache.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      tempfile.mkdtemp(prefix='artpedia-jax-compilation-'))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfds_artpedia.sample import corpus as sample_corpus  # pylint: disable=wrong-import-position

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


@pytest.fixture(scope='session')
def sample_data_dir(tmp_path_factory):
  """The end-to-end sample dataset (`e2e_helpers.DATASET`), built once per session."""
  from artpedia_jax.data import ensure_built as dataset
  from tests.helpers import e2e_helpers
  data_dir = tmp_path_factory.mktemp('tfds')
  dataset.prepare(e2e_helpers.e2e_config(data_dir))
  return data_dir


def _trained(tmp_path_factory, data_dir, name, **overrides):
  from artpedia_jax.train import loop as train
  from tests.helpers import e2e_helpers
  workdir = tmp_path_factory.mktemp(name)
  train.train_and_evaluate(e2e_helpers.e2e_config(data_dir, **overrides), str(workdir))
  return workdir


@pytest.fixture(scope='session')
def region_workdir(tmp_path_factory, sample_data_dir):
  """The workdir of a 20-step run of the test config on detector regions."""
  return _trained(tmp_path_factory, sample_data_dir, 'region_run', num_train_steps=20)


@pytest.fixture(scope='session')
def pixel_workdir(tmp_path_factory, sample_data_dir):
  """The workdir of a 4-step run of the test config from pixels (ResNet-18, 64 px)."""
  return _trained(tmp_path_factory, sample_data_dir, 'pixel_run', num_train_steps=4,
                  eval_every_steps=4, checkpoint_every_steps=4,
                  **{'model.backbone': 'resnet18', 'dataset.image_size': 64})


@pytest.fixture(scope='session')
def other_seed_workdir(tmp_path_factory, sample_data_dir):
  """`region_workdir`'s run with another seed: another model at the same step."""
  return _trained(tmp_path_factory, sample_data_dir, 'other_seed_run', num_train_steps=20,
                  seed=1)


@pytest.fixture(scope='session')
def bfloat16_workdir(tmp_path_factory, sample_data_dir):
  """`region_workdir`'s run computing in bfloat16."""
  return _trained(tmp_path_factory, sample_data_dir, 'bfloat16_run', num_train_steps=20,
                  **{'model.dtype': 'bfloat16'})


@pytest.fixture(scope='session')
def minilm_folder():
  """A real pretrained BERT (all-MiniLM-L6-v2) folder; see `bert_fixtures.minilm_folder`."""
  from tests.helpers import bert_fixtures
  return bert_fixtures.minilm_folder()
