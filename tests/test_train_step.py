"""The sharded train step: same loss and gradients on 8 devices as on 1, linear memory."""

import jax
import numpy as np
import pytest

from artpedia_jax import model as model_lib
from artpedia_jax import optim
from artpedia_jax import sharding
from artpedia_jax import train_step
from tests import train_fixtures


def _loss_and_grads(config, params, graphdef, batch, devices):
  mesh = sharding.make_mesh(devices)

  def loss(p, b):
    model = model_lib.merge(graphdef, {'params': p, 'model_state': {}})
    return train_step.objective(model, b, config, step=0)[0]

  fn = jax.jit(jax.value_and_grad(loss),
               in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)))
  return jax.device_get(fn(params, batch))


@pytest.mark.parametrize('score', ['align', 'scan_t2i', 'pooled'])
@pytest.mark.parametrize('rank', ['hinge', 'infonce'])
def test_loss_and_gradients_on_8_devices_equal_1_device(score, rank):
  assert jax.device_count() == 8
  config = train_fixtures.tiny_config(score=score)
  config.loss.rank = rank
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  params = variables['params']
  batch = train_fixtures.synthetic_batch(config, batch_size=16)

  loss1, grads1 = _loss_and_grads(config, params, graphdef, batch, jax.devices()[:1])
  loss8, grads8 = _loss_and_grads(config, params, graphdef, batch, jax.devices())

  np.testing.assert_allclose(loss8, loss1, rtol=1e-5)
  for g8, g1 in zip(jax.tree.leaves(grads8), jax.tree.leaves(grads1)):
    # Relative error of each parameter's gradient as a whole: sums are reduced in
    # another order on 8 devices, which moves single near-zero entries by ~1e-9.
    assert np.linalg.norm(g8 - g1) <= 1e-5 * np.linalg.norm(g1), (g8, g1)


def _step_and_state(config, batch_size, devices=None):
  mesh = sharding.make_mesh(devices)
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  optimizer = optim.make_optimizer(config, total_steps=1000)
  state = sharding.replicate(mesh, train_step.init_state(variables, optimizer.tx))
  step = train_step.make_train_step(graphdef, optimizer, config, mesh)
  batch = sharding.global_batch(
      mesh, train_fixtures.synthetic_batch(config, batch_size=batch_size))
  return step, state, batch


def test_step_temporary_memory_grows_linearly_with_the_batch():
  config = train_fixtures.tiny_config()
  config.score_block_size = 8
  temp = {}
  for batch_size in (32, 128):
    step, state, batch = _step_and_state(config, batch_size, jax.devices()[:1])
    compiled = step.lower(state, batch).compile()
    temp[batch_size] = compiled.memory_analysis().temp_size_in_bytes
  # 4x the batch: linear growth gives about 4x, the square of the batch 16x.
  assert temp[128] / temp[32] < 8, temp


def test_step_updates_params_counts_steps_and_reports_metrics():
  config = train_fixtures.tiny_config()
  step, state, batch = _step_and_state(config, 16)
  before = jax.device_get(state['params'])
  for _ in range(2):  # the warm-up's learning rate is 0 at step 0
    state, metrics = step(state, batch)
  after = jax.device_get(state['params'])
  assert int(state['step']) == 2
  assert int(metrics['skipped']) == 0
  assert np.isfinite(float(metrics['loss']))
  changed = [not np.array_equal(a, b)
             for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before))]
  assert any(changed)


def test_non_finite_batch_is_skipped_and_leaves_params_unchanged():
  config = train_fixtures.tiny_config()
  step, state, batch = _step_and_state(config, 16)
  before = jax.device_get(state['params'])
  bad = dict(batch)
  bad['regions'] = batch['regions'].at[0, 0, 0].set(np.nan)
  mesh = sharding.make_mesh()
  bad['regions'] = jax.device_put(bad['regions'], sharding.batch_sharded(mesh))
  state, metrics = step(state, bad)
  assert int(metrics['skipped']) == 1
  assert int(state['step']) == 1
  for a, b in zip(jax.tree.leaves(jax.device_get(state['params'])),
                  jax.tree.leaves(before)):
    np.testing.assert_array_equal(a, b)


def test_loss_falls_on_a_fixed_batch():
  config = train_fixtures.tiny_config()
  step, state, batch = _step_and_state(config, 16)
  losses = []
  for _ in range(30):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert losses[-1] < 0.5 * losses[0], losses
