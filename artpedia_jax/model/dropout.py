"""Inverted dropout, the one form every part of the model uses in training."""

import math

import jax
from jax.extend import random as jax_random
import jax.numpy as jnp

Array = jax.Array


def dropout(x: Array, rate: float, key: Array | None) -> Array:
  """Zeroes each entry with probability `rate` and scales the rest by 1 / (1 - rate);
  the identity without a key (evaluation) or at rate 0. Keeps x's dtype."""
  if key is None or rate == 0:
    return x
  return apply_keep(x, keep_mask(key, rate, x.shape), rate)


_DRAWS_PER_HASH = 4  # a threefry hash gives 64 bits: four 16-bit draws


def keep_mask(key: Array, rate: float, shape: tuple[int, ...]) -> Array:
  """bool `shape`: each entry kept with probability 1 - `rate` (`rate` rounded to 1/65536).

  `jax.random.bernoulli` spends one threefry hash (64 bits) per entry on the CPU, about
  a fifth of a BERT fine-tuning step in masks; here each hash gives four 16-bit draws.
  A function of the key and the shape only, like `bernoulli`: the masks do not depend on
  how the array is later laid out or sharded.
  """
  *lead, last = shape
  hashes = (*lead, -(-last // _DRAWS_PER_HASH))
  if math.prod(hashes) >= 2**32:
    raise ValueError(f'A dropout mask of {shape} needs more than 2**32 hashes.')
  key_hi, key_lo = jax.random.bits(key, (2,), jnp.uint32)
  counter = jax.lax.iota(jnp.uint32, math.prod(hashes)).reshape(hashes)
  bits_hi, bits_lo = jax_random.threefry2x32_p.bind(
      key_hi, key_lo, jnp.zeros_like(counter), counter)
  draws = jax.lax.bitcast_convert_type(jnp.stack([bits_hi, bits_lo], -1), jnp.uint16)
  draws = draws.reshape(*lead, hashes[-1] * _DRAWS_PER_HASH)[..., :last]
  return draws >= jnp.uint16(round(rate * 65536))


def apply_keep(x: Array, keep: Array, rate: float) -> Array:
  """x with the entries outside the boolean `keep` (broadcast to x) zeroed and the rest
  scaled by 1 / (1 - rate): dropout with a mask drawn elsewhere (BERT's, per sentence)."""
  return jnp.where(keep, x / (1.0 - rate), 0.0)
