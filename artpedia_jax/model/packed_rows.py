"""Moving per-word arrays between sentences [S·N, T, ...] and packed rows [S·rows, W, ...].

The layout comes from `data.sentence_packing` (the host packs; this only follows it):
`sentence` and `position` [S, rows, W] say which of its shard's N sentences, and which
word of it, each packed position holds (N: padding). Both directions are gathers within a
shard, vmapped over the shard axis (the one the batch is split over devices along), so
each device's gather reads only its own sentences; their gradients are scatter-adds.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class PackedRows(NamedTuple):
  """A packing layout (int32 [S, rows, W] each, see the module docstring)."""
  sentence: Array
  position: Array

  @property
  def segments(self) -> Array:
    """[S·rows, W]: which sentence of its shard each position holds (N at padding), for
    the encoders' segment boundaries."""
    return self.sentence.reshape(-1, self.sentence.shape[-1])

  @property
  def positions(self) -> Array:
    """[S·rows, W]: each position's word index in its sentence (BERT's position ids)."""
    return self.position.reshape(-1, self.position.shape[-1])


def pack(layout: PackedRows, x: Array, fill=0) -> Array:
  """Sentences x [S·N, T, ...] → packed rows [S·rows, W, ...]; `fill` at padding."""
  shards = layout.sentence.shape[0]
  per_shard = x.reshape(shards, -1, *x.shape[1:])

  def one_shard(x_s, sentence, position):
    return x_s.at[sentence, position].get(mode='fill', fill_value=fill)

  packed = jax.vmap(one_shard)(per_shard, layout.sentence, layout.position)
  return packed.reshape(-1, *packed.shape[2:])


def unpack(layout: PackedRows, rows: Array, num_sentences: int, width: int) -> Array:
  """Packed rows [S·rows, W, ...] → the `num_sentences` = S·N sentences [S·N, width, ...],
  zero at padding."""
  shards, num_rows, row_width = layout.sentence.shape
  num_sentences //= shards
  per_shard = rows.reshape(shards, num_rows * row_width, *rows.shape[2:])
  source = jnp.arange(num_rows * row_width, dtype=jnp.int32).reshape(num_rows, row_width)

  def one_shard(rows_s, sentence, position):
    # For each (sentence, word): the packed position holding it, or past the end.
    where = jnp.full((num_sentences, width), num_rows * row_width, jnp.int32)
    where = where.at[sentence, position].set(source, mode='drop')
    return rows_s.at[where].get(mode='fill', fill_value=0)

  sentences = jax.vmap(one_shard)(per_shard, layout.sentence, layout.position)
  return sentences.reshape(-1, *sentences.shape[2:])
