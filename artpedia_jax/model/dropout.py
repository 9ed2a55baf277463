"""Inverted dropout, the one form every part of the model uses in training."""

import jax
import jax.numpy as jnp

Array = jax.Array


def dropout(x: Array, rate: float, key: Array | None) -> Array:
  """Zeroes each entry with probability `rate` and scales the rest by 1 / (1 - rate);
  the identity without a key (evaluation) or at rate 0. Keeps x's dtype."""
  if key is None or rate == 0:
    return x
  return apply_keep(x, jax.random.bernoulli(key, 1.0 - rate, x.shape), rate)


def apply_keep(x: Array, keep: Array, rate: float) -> Array:
  """x with the entries outside the boolean `keep` (broadcast to x) zeroed and the rest
  scaled by 1 / (1 - rate): dropout with a mask drawn elsewhere (BERT's, per sentence)."""
  return jnp.where(keep, x / (1.0 - rate), 0.0)
