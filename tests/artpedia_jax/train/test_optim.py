"""Learning-rate schedules, the rate the optimiser applies, and gradient clipping, each
against values written out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.train import optim
from tests.helpers import train_fixtures

PEAK = 1e-2
WARMUP = 4
TOTAL = 14  # 10 steps of decay after the warm-up
COUNTS = [0, 1, 2, 4, 5, 9, 13, 14, 20]


def _spec(**optimizer) -> optim.OptimizerSpec:
  config = train_fixtures.tiny_config()
  config.optimizer.learning_rate = PEAK
  config.optimizer.warmup_steps = WARMUP
  for key, value in optimizer.items():
    setattr(config.optimizer, key, value)
  return optim.OptimizerSpec.from_config(config)


def _decayed(decay: str, t: int, start: int, steps: int) -> float:
  """The rate `t - start` steps into a decay of `steps` steps from PEAK to 0."""
  progress = min(max(t - start, 0), steps) / steps
  return {'cosine': PEAK * 0.5 * (1 + math.cos(math.pi * progress)),
          'linear': PEAK * (1 - progress),
          'constant': PEAK}[decay]


@pytest.mark.parametrize('decay', ['cosine', 'linear', 'constant'])
def test_schedule_warms_up_linearly_then_decays(decay):
  schedule = optim.make_optimizer(_spec(decay=decay), TOTAL).learning_rate
  want = [PEAK * t / WARMUP if t < WARMUP else _decayed(decay, t, WARMUP, TOTAL - WARMUP)
          for t in COUNTS]
  np.testing.assert_allclose([float(schedule(t)) for t in COUNTS], want,
                             rtol=1e-6, atol=1e-12)


def test_schedule_without_warmup_starts_at_the_peak():
  schedule = optim.make_optimizer(_spec(warmup_steps=0), TOTAL).learning_rate
  want = [_decayed('cosine', t, 0, TOTAL) for t in COUNTS]
  np.testing.assert_allclose([float(schedule(t)) for t in COUNTS], want,
                             rtol=1e-6, atol=1e-12)


def test_warmup_longer_than_the_run_is_cut_to_leave_one_decay_step():
  schedule = optim.make_optimizer(_spec(warmup_steps=100, decay='linear'),
                                  total_steps=5).learning_rate
  # Warm-up of 4 steps (total - 1), then 1 linear step down to 0.
  np.testing.assert_allclose([float(schedule(t)) for t in range(6)],
                             [0.0, PEAK / 4, PEAK / 2, 3 * PEAK / 4, PEAK, 0.0],
                             rtol=1e-6, atol=1e-12)


def test_optimizer_applies_its_schedule_and_counts_its_updates():
  """Adam on a constant gradient moves each step by exactly the rate (m̂ / √v̂ = 1)."""
  optimizer = optim.make_optimizer(_spec(grad_clip_norm=0.0), TOTAL)
  params = {'w': jnp.zeros(3)}  # zero parameters: AdamW's decay adds nothing
  state = optimizer.tx.init(params)
  for count in range(7):
    assert int(optim.applied_updates(state)) == count
    updates, state = optimizer.tx.update({'w': jnp.ones(3)}, state, params)
    # float32 bias corrections: Adam's ratio is 1 to about 1e-5.
    np.testing.assert_allclose(updates['w'], -float(optimizer.learning_rate(count)),
                               rtol=1e-4)


def _numpy_adam_updates(grads, lr, b1=0.9, b2=0.999, eps=1e-8):
  m = v = 0.0
  out = []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
  return out


@pytest.mark.parametrize('clip_norm', [0.0, 1.0])
def test_gradients_are_clipped_to_the_global_norm_before_adam(clip_norm):
  spec = _spec(name='adam', decay='constant', warmup_steps=0, grad_clip_norm=clip_norm)
  tx = optim.make_optimizer(spec, TOTAL).tx
  # Global norm 5 over the two leaves, then 0.5: only the first is clipped (to norm 1).
  grads = [{'a': np.array([3.0]), 'b': np.array([4.0])},
           {'a': np.array([0.3]), 'b': np.array([-0.4])}]
  scale = 1.0 / 5.0 if clip_norm else 1.0
  clipped = [np.array([3.0, 4.0]) * scale, np.array([0.3, -0.4])]
  want = _numpy_adam_updates(clipped, PEAK)
  params = {'a': jnp.zeros(1), 'b': jnp.zeros(1)}
  state = tx.init(params)
  for g, expected in zip(grads, want):
    updates, state = tx.update(g, state, params)
    np.testing.assert_allclose([updates['a'][0], updates['b'][0]], expected, rtol=1e-4)
