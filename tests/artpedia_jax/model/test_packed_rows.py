"""Packed rows: the round trip keeps every word, and the declared gradients (each
direction the other's transpose) equal the ones autodiff derives from the gathers."""

import jax
import jax.numpy as jnp
import numpy as np

from artpedia_jax.data import sentence_packing
from artpedia_jax.model import packed_rows

SHARDS, SENTENCES, WIDTH, FEATURES = 2, 6, 5, 3


def _case():
  rng = np.random.default_rng(0)
  lengths = rng.integers(0, WIDTH + 1, (SHARDS, SENTENCES))
  lengths[0, 0] = WIDTH  # a sentence filling a whole row
  sentence, position = sentence_packing.pack(lengths, width=WIDTH)
  layout = packed_rows.PackedRows(jnp.asarray(sentence), jnp.asarray(position))
  x = rng.normal(size=(SHARDS * SENTENCES, WIDTH, FEATURES)).astype(np.float32)
  real = np.arange(WIDTH) < lengths.reshape(-1, 1)
  return layout, jnp.asarray(x * real[..., None]), real


def _autodiff_pack(layout, x):
  """The same gather written without the custom VJP: autodiff transposes it to a
  scatter-add."""
  num_sentences = x.shape[0] // SHARDS
  padding = (layout.sentence >= num_sentences).reshape(-1)
  flat = (jnp.arange(SHARDS)[:, None, None] * num_sentences + layout.sentence).reshape(-1)
  values = x[jnp.where(padding, 0, flat), layout.position.reshape(-1)]
  return jnp.where(padding[:, None], 0, values).reshape(-1, WIDTH, FEATURES)


def test_unpack_after_pack_gives_back_every_word_and_zero_padding():
  layout, x, real = _case()
  rows = packed_rows.pack(layout, x)
  assert rows.shape[0] < x.shape[0]  # fewer rows than sentences: packing did pack
  np.testing.assert_array_equal(rows, _autodiff_pack(layout, x))
  back = packed_rows.unpack(layout, rows, *x.shape[:2])
  np.testing.assert_array_equal(back, x)
  assert not np.any(np.asarray(back)[~real])


def test_the_declared_gradients_equal_autodiffs_of_the_plain_gathers():
  layout, x, _ = _case()
  rows_cotangent = jax.random.normal(jax.random.key(1), _autodiff_pack(layout, x).shape)
  _, pack_vjp = jax.vjp(lambda v: packed_rows.pack(layout, v), x)
  _, reference_vjp = jax.vjp(lambda v: _autodiff_pack(layout, v), x)
  np.testing.assert_array_equal(pack_vjp(rows_cotangent)[0],
                                reference_vjp(rows_cotangent)[0])

  sentences_cotangent = jax.random.normal(jax.random.key(2), x.shape)
  rows = _autodiff_pack(layout, x)
  _, unpack_vjp = jax.vjp(lambda r: packed_rows.unpack(layout, r, *x.shape[:2]), rows)
  _, reference_vjp = jax.vjp(
      lambda r: jax.linear_transpose(lambda v: _autodiff_pack(layout, v), x)(r)[0], rows)
  np.testing.assert_array_equal(unpack_vjp(sentences_cotangent)[0],
                                reference_vjp(sentences_cotangent)[0])
