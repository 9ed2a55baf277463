"""Inverted dropout, the one form every part of the model uses in training."""

import jax

Array = jax.Array


def dropout(x: Array, rate: float, key: Array | None) -> Array:
  """Zeroes each entry with probability `rate` and scales the rest by 1 / (1 - rate);
  the identity without a key (evaluation) or at rate 0. Keeps x's dtype."""
  if key is None or rate == 0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jax.numpy.where(keep, x / (1.0 - rate), 0.0)
