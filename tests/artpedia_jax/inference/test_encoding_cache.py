"""The encodings' cache: names that change with the model, dtypes that survive disk."""

import jax.numpy as jnp
import ml_collections
import numpy as np

from artpedia_jax.evaluation import device_scorer
from artpedia_jax.inference import encoding_cache
from configs import test as test_config


def _entry(dtype) -> encoding_cache.Entry:
  v = np.linspace(-1, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4).astype(dtype)
  return encoding_cache.Entry(
      device_scorer.HostEncodedPaintings(v, np.ones([2, 3], bool),
                                     np.full([2, 3, 4], 0.25, np.float32)),
      {'ids': np.asarray(['a', 'b']), 'years': np.asarray([1900, -1], np.int32)})


def test_bfloat16_encodings_come_back_as_bfloat16_with_their_values(tmp_path):
  cache = encoding_cache.EncodingCache(tmp_path, 'model')
  entry = _entry(jnp.bfloat16)
  assert not cache.has('collection') and cache.load('collection') is None
  cache.save('collection', entry)
  with np.load(cache.path('collection')) as stored:
    assert stored['v'].dtype == np.float32  # readable by any numpy
  loaded = encoding_cache.EncodingCache(tmp_path, 'model').load('collection')
  assert loaded.encoded.v.dtype == jnp.bfloat16
  np.testing.assert_array_equal(loaded.encoded.v.astype(np.float32),
                                entry.encoded.v.astype(np.float32))
  assert loaded.encoded.region_mask.dtype == bool
  assert list(loaded.catalogue['ids']) == ['a', 'b']
  assert list(loaded.catalogue['years']) == [1900, -1]
  assert not list(tmp_path.glob('.*tmp'))  # written under a temporary name, renamed


def test_entries_of_other_models_are_apart(tmp_path):
  encoding_cache.EncodingCache(tmp_path, 'model-a').save('collection', _entry(np.float32))
  assert not encoding_cache.EncodingCache(tmp_path, 'model-b').has('collection')
  assert encoding_cache.EncodingCache(None, 'model-a').load('collection') is None


def test_the_model_key_follows_the_checkpoint_and_the_model_settings():
  config = test_config.get_config()
  key = encoding_cache.model_key('digest', config)
  assert key == encoding_cache.model_key('digest', ml_collections.ConfigDict(config))
  assert key != encoding_cache.model_key('other digest', config)
  for section, field, value in (('model', 'dtype', 'bfloat16'),
                                ('dataset', 'max_regions', 4), ('vocab', 'min_count', 3)):
    changed = ml_collections.ConfigDict(config.to_dict())
    changed[section][field] = value
    assert encoding_cache.model_key('digest', changed) != key, field
  unrelated = ml_collections.ConfigDict(config.to_dict())
  unrelated.eval_batch_size = 7  # how evaluation runs, not what a painting encodes to
  assert encoding_cache.model_key('digest', unrelated) == key
