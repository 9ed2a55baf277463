"""Losses against plain numpy loops (`reference_losses`) on small random matrices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.train import losses
from configs import align
from tests.helpers import reference_losses

MARGIN = 0.2


def _batch(seed, size=6):
  """Scores with sentences 1 and 2 of the same painting (pairs (1, 2) and (2, 1))."""
  rng = np.random.default_rng(seed)
  scores = rng.uniform(-1, 1, (size, size)).astype(np.float32)
  painting = np.arange(size)
  painting[2] = painting[1]
  return scores, painting[:, None] == painting[None, :]


@pytest.mark.parametrize('max_violation', [True, False])
def test_hinge_matches_numpy(max_violation):
  scores, same = _batch(seed=0)
  got = losses.hinge_loss(scores, same, margin=MARGIN, max_violation=max_violation)
  want = reference_losses.hinge(scores, same, margin=MARGIN, max_violation=max_violation)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_hinge_never_uses_same_painting_pairs_as_negatives():
  scores, same = _batch(seed=1)
  changed = scores.copy()
  changed[1, 2] = changed[2, 1] = 10.0  # would dominate every hinge it took part in
  for max_violation in (True, False):
    np.testing.assert_allclose(
        losses.hinge_loss(changed, same, margin=MARGIN, max_violation=max_violation),
        losses.hinge_loss(scores, same, margin=MARGIN, max_violation=max_violation),
        rtol=1e-6)


def test_hinge_switches_on_a_traced_max_violation():
  scores, same = _batch(seed=2)
  loss = jax.jit(lambda flag: losses.hinge_loss(
      scores, same, margin=MARGIN, max_violation=flag))
  for flag in (True, False):
    want = reference_losses.hinge(scores, same, margin=MARGIN, max_violation=flag)
    np.testing.assert_allclose(loss(jnp.array(flag)), want, rtol=1e-5)


def test_hinge_is_zero_without_negatives():
  scores, _ = _batch(seed=3)
  same = np.ones_like(scores, dtype=bool)
  assert losses.hinge_loss(scores, same, margin=MARGIN, max_violation=False) == 0.0


@pytest.mark.parametrize('temperature', [0.07, 0.5])
def test_infonce_matches_numpy(temperature):
  scores, same = _batch(seed=4)
  got = losses.infonce_loss(scores, same, jnp.log(temperature))
  np.testing.assert_allclose(got, reference_losses.infonce(scores, same, temperature),
                             rtol=1e-5)


def test_infonce_temperature_is_floored_at_min_temperature():
  scores, same = _batch(seed=8)
  collapsed = jnp.log(losses.MIN_TEMPERATURE / 100)
  np.testing.assert_allclose(
      losses.infonce_loss(scores, same, collapsed),
      reference_losses.infonce(scores, same, losses.MIN_TEMPERATURE), rtol=1e-5)
  # Below the floor the temperature gets no gradient: it cannot drift further down.
  assert jax.grad(losses.infonce_loss, argnums=2)(scores, same, collapsed) == 0.0


def test_infonce_temperature_gets_a_gradient():
  scores, same = _batch(seed=5)
  grad = jax.grad(losses.infonce_loss, argnums=2)(scores, same, jnp.log(0.1))
  assert np.isfinite(grad) and grad != 0.0


def test_infonce_without_negatives_is_zero():
  scores, _ = _batch(seed=6)
  same = np.ones_like(scores, dtype=bool)
  np.testing.assert_allclose(losses.infonce_loss(scores, same, jnp.log(0.1)), 0.0,
                             atol=1e-6)


@pytest.mark.parametrize('pos_weight', [1.0, 2.5])
def test_classification_loss_matches_numpy(pos_weight):
  rng = np.random.default_rng(7)
  logits = rng.normal(size=(4, 3)).astype(np.float32)
  labels = rng.integers(0, 2, (4, 3)).astype(np.float32)
  mask = rng.uniform(size=(4, 3)) < 0.7
  loss, accuracy = losses.classification_loss(logits, labels, mask, pos_weight=pos_weight)
  want_loss, want_accuracy = reference_losses.bce(logits, labels, mask, pos_weight)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
  np.testing.assert_allclose(accuracy, want_accuracy, rtol=1e-6)


def test_classification_loss_all_masked_is_zero_with_zero_gradient():
  logits = jnp.array([[3.0, -2.0]])
  labels = jnp.array([[0.0, 1.0]])
  mask = jnp.zeros((1, 2), bool)
  loss, accuracy = losses.classification_loss(logits, labels, mask, pos_weight=1.0)
  assert loss == 0.0 and accuracy == 0.0
  grad = jax.grad(lambda x: losses.classification_loss(
      x, labels, mask, pos_weight=1.0)[0])(logits)
  np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize('split_share, sampled_share', [(0.33, 0.6), (0.5, 0.5), (0.8, 0.4)])
def test_prior_pos_weight_moves_the_optimum_to_the_split_share(split_share, sampled_share):
  """A constant logit fit to draws with `sampled_share` positives under the weight ends at
  p = the split's share, not the draws'."""
  labels = (np.arange(1000) < 1000 * sampled_share).astype(np.float32)
  mask = np.ones_like(labels, bool)
  weight = losses.prior_pos_weight(split_share, sampled_share)
  loss = lambda z: losses.classification_loss(jnp.full(labels.shape, z), labels, mask,
                                              pos_weight=weight)[0]
  z = 0.0
  for _ in range(200):  # Newton's method on the convex loss of one scalar
    z -= jax.grad(loss)(z) / jax.grad(jax.grad(loss))(z)
  np.testing.assert_allclose(jax.nn.sigmoid(z), split_share, rtol=1e-4)


def test_prior_pos_weight_leaves_a_one_class_split_alone():
  assert losses.prior_pos_weight(1.0, 0.7) == losses.prior_pos_weight(0.3, 0.0) == 1.0


def test_loss_spec_takes_the_splits_weight_for_minus_one_and_a_number_as_it_is():
  config = align.get_config()
  assert config.loss.cls_pos_weight == -1  # the default corrects the draws
  with pytest.raises(ValueError, match='cls_pos_weight=-1 needs'):
    losses.LossSpec.from_config(config)
  assert losses.LossSpec.from_config(config, prior_pos_weight=0.42).cls_pos_weight == 0.42
  config.loss.cls_pos_weight = 1.5
  assert losses.LossSpec.from_config(config, prior_pos_weight=0.42).cls_pos_weight == 1.5
