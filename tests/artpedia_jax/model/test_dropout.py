"""Dropout's masks: their keep rate, independence, determinism and layout independence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.model import dropout
from artpedia_jax.parallel import sharding


@pytest.mark.parametrize('rate', [0.1, 0.5, 0.9])
def test_masks_keep_one_minus_rate_of_the_entries(rate):
  keep = np.asarray(dropout.keep_mask(jax.random.key(0), rate, (64, 48, 384)))
  expected = 1 - round(rate * 65536) / 65536
  sigma = np.sqrt(expected * (1 - expected) / keep.size)
  assert abs(keep.mean() - expected) < 5 * sigma, (keep.mean(), expected)


def test_neighbouring_draws_are_independent():
  """The four draws of one hash, and the same position in consecutive rows, are not
  correlated: both kept as often as (1 - rate)² predicts."""
  keep = np.asarray(dropout.keep_mask(jax.random.key(1), 0.5, (512, 1024)))
  pairs = {'next in a row': (keep[:, :-1], keep[:, 1:]),
           'same draw of a hash, next row': (keep[:-1], keep[1:])}
  for name, (a, b) in pairs.items():
    both = (a & b).mean()
    assert abs(both - 0.25) < 5 * np.sqrt(0.25 * 0.75 / a.size), (name, both)
  assert len({row.tobytes() for row in keep}) == len(keep)  # no row repeats


def test_a_mask_is_a_function_of_the_key_and_shape():
  mask = lambda seed, shape: np.asarray(dropout.keep_mask(jax.random.key(seed), 0.3, shape))
  np.testing.assert_array_equal(mask(0, (8, 7)), mask(0, (8, 7)))
  assert not np.array_equal(mask(0, (8, 7)), mask(1, (8, 7)))
  assert mask(0, (3, 5, 7)).shape == (3, 5, 7)  # a last axis that is no multiple of 4


def test_masks_do_not_depend_on_how_they_are_sharded():
  mesh = sharding.make_mesh(jax.devices()[:8])
  draw = lambda key: dropout.keep_mask(key, 0.1, (16, 12, 20))
  whole = np.asarray(jax.jit(draw)(jax.random.key(3)))
  split = jax.jit(draw, out_shardings=sharding.batch_sharded(mesh))(jax.random.key(3))
  assert len(split.sharding.device_set) == 8
  np.testing.assert_array_equal(np.asarray(split), whole)


def test_dropout_zeroes_the_dropped_and_scales_the_kept():
  x = jnp.full((256, 256), 2.0)
  key = jax.random.key(4)
  out = np.asarray(dropout.dropout(x, 0.25, key))
  keep = np.asarray(dropout.keep_mask(key, 0.25, x.shape))
  np.testing.assert_array_equal(out, np.where(keep, np.float32(2.0) / np.float32(0.75), 0.0))
  np.testing.assert_array_equal(dropout.dropout(x, 0.25, None), x)
