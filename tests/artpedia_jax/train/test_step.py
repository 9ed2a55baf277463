"""The objective against a numpy reference, and the sharded train step: same loss and
gradients on 8 devices as on 1, linear memory, skipped non-finite steps."""

import dataclasses

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from artpedia_jax.data import sentence_packing
from artpedia_jax.model import bert
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step
from tests.helpers import reference_losses
from tests.helpers import train_fixtures


_spec = train_fixtures.step_spec  # a short name for the many calls below


def _loss_and_grads(config, params, graphdef, batch, devices):
  mesh = sharding.make_mesh(devices)

  def loss(p, b):
    model = model_lib.merge(graphdef, {'params': p, 'model_state': {}})
    return train_step.objective(model, b, _spec(config), step=0)[0]

  fn = jax.jit(jax.value_and_grad(loss),
               in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)))
  return jax.device_get(fn(params, batch))


@pytest.mark.parametrize('score, packed', [('align', True), ('scan_t2i', False),
                                           ('pooled', True)])
@pytest.mark.parametrize('rank', ['hinge', 'infonce'])
def test_loss_and_gradients_on_8_devices_equal_1_device(score, rank, packed):
  assert jax.device_count() == 8
  config = train_fixtures.tiny_config(score=score)
  config.loss.rank = rank
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  params = variables['params']
  batch = train_fixtures.synthetic_batch(config, batch_size=16)
  if packed:  # one shard per device: packing and unpacking stay on each device
    batch = sentence_packing.with_layout(batch, shards=8)

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
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=1000)
  state = sharding.replicate(mesh, train_step.init_state(variables, optimizer.tx))
  step = train_step.make_train_step(graphdef, optimizer, _spec(config), mesh)
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


@pytest.mark.parametrize('dtype', model_lib.COMPUTE_DTYPES)
def test_loss_falls_on_a_fixed_batch(dtype):
  """bfloat16 computation still learns; its parameters and optimiser state stay float32."""
  config = train_fixtures.tiny_config(dtype=dtype)
  step, state, batch = _step_and_state(config, 16)
  losses = []
  for _ in range(30):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert losses[-1] < 0.5 * losses[0], losses
  floats = [x for x in jax.tree.leaves((state['params'], state['opt_state']))
            if jnp.issubdtype(x.dtype, jnp.floating)]
  assert floats and all(x.dtype == jnp.float32 for x in floats)


# ---------------------------------------------------------- packed sentences


_TINY_BERT = bert.BertConfig(vocab_size=train_fixtures.VOCAB_SIZE, hidden_size=16,
                             num_layers=2, num_heads=4, intermediate_size=24,
                             max_positions=40)


def _packing_case(encoder, bert_dropout=0.0):
  """(config, model, padded batch, packed batch): 32 pairs, 4 classifier slots, in 2
  shards; the bi-GRU with its dropouts on (their masks are drawn per sentence word), BERT
  with its own at `bert_dropout` (its masks drawn per sentence position)."""
  if encoder == 'bert':
    config = train_fixtures.tiny_config(text_encoder='bert')
    model = model_lib.ArtpediaModel(
        model_lib.ModelSpec.from_config(config), vocab_size=train_fixtures.VOCAB_SIZE,
        feature_dim=train_fixtures.FEATURE_DIM, rngs=nnx.Rngs(0),
        bert_config=dataclasses.replace(_TINY_BERT, hidden_dropout=bert_dropout,
                                        attention_dropout=bert_dropout))
  else:
    config = train_fixtures.tiny_config(dropout=0.5, word_dropout=0.25)
    model = train_fixtures.tiny_model(config)
  batch = train_fixtures.synthetic_batch(config, batch_size=32, seed=5)
  packed = sentence_packing.with_layout(batch, shards=2)
  rows = packed['packed_sentence'].shape[0] * packed['packed_sentence'].shape[1]
  assert rows < 32 * 4  # the case packs several sentences per row
  return config, model, batch, packed


@pytest.mark.parametrize('encoder, bert_dropout',
                         [('bigru', 0.0), ('bert', 0.0), ('bert', 0.1)])
def test_packed_sentences_give_the_padded_scores_probabilities_and_gradients(
    encoder, bert_dropout):
  config, model, padded, packed = _packing_case(encoder, bert_dropout)
  key = train_step.dropout_key(config.seed, jnp.asarray(1))
  sentences = np.concatenate([padded['tokens'][:, None], padded['cls_tokens']], axis=1)
  b, slots, t = sentences.shape
  v, rmask, _ = model.encode_painting_inputs(padded, train=True)
  own = np.repeat(np.arange(b), slots)

  def outputs(batch):
    w, wmask = model.encode_sentences(
        sentences.reshape(b * slots, t), dropout_key=key,
        packing=train_step.step_packing(batch))
    return (model.pairwise_scores(v, rmask, w[::slots], wmask[::slots], block_size=8),
            jax.nn.sigmoid(model.classify(v[own], rmask[own], w, wmask)))

  outputs = jax.jit(outputs)
  for got, want in zip(outputs(packed), outputs(padded)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  if bert_dropout:  # it was on: without a key (evaluation) the vectors differ
    assert not np.allclose(model.encode_sentences(sentences.reshape(b * slots, t))[0],
                           model.encode_sentences(sentences.reshape(b * slots, t),
                                                  dropout_key=key)[0])

  graphdef, variables = model_lib.split(model)

  def loss(params, batch):
    merged = model_lib.merge(graphdef, dict(variables, params=params))
    return train_step.objective(merged, batch, _spec(config), jnp.asarray(1))[0]

  grad = jax.jit(jax.value_and_grad(loss))
  (loss_packed, grads_packed), (loss_padded, grads_padded) = (
      grad(variables['params'], batch) for batch in (packed, padded))
  np.testing.assert_allclose(loss_packed, loss_padded, rtol=1e-5)
  # Each parameter's gradient to 1e-5 of its norm; those that are zero in exact
  # arithmetic (BERT's key biases: softmax ignores them) to 1e-5 of the whole gradient's.
  floor = 1e-5 * float(optax.tree.norm(grads_padded))
  for got, want in zip(jax.tree.leaves(grads_packed), jax.tree.leaves(grads_padded)):
    assert np.linalg.norm(got - want) <= max(1e-5 * np.linalg.norm(want), floor)


# ------------------------------------------------------------- the objective, by hand

WARMUP = 3  # loss.max_violation_warmup_steps of the reference tests


def _reference_config(rank):
  config = train_fixtures.tiny_config(score='align')
  config.loss.rank = rank
  config.loss.max_violation = True
  config.loss.max_violation_warmup_steps = WARMUP
  config.loss.cls_weight = 0.7
  config.loss.cls_pos_weight = 1.5
  return config


def _reference_batch(config):
  """Six pairs; rows 0 and 1 are two sentences of one painting (same regions)."""
  batch = train_fixtures.synthetic_batch(config, batch_size=6, seed=3)
  for name in model_lib.REGION_INPUTS:
    batch[name][1] = batch[name][0]
  assert batch['painting'][0] == batch['painting'][1]
  return batch


def _reference_objective(model, batch, config, step):
  """rank + cls_weight * cls, written out pair by pair in numpy.

  Only the encoders and the classifier head come from the model; the scores, the
  negatives, the warm-up switch, the pairing of classifier sentences with their own
  painting and the weighting are the reference's own.
  """
  v, rmask, _ = model.encode_painting_inputs(batch, train=True)
  w, wmask = model.encode_sentences(batch['tokens'])
  v, rmask, w, wmask = map(np.asarray, (v, rmask, w, wmask))
  scores = reference_losses.align(v, rmask, w, wmask)
  painting = batch['painting']
  same = np.array([[painting[i] == painting[j] for j in range(len(painting))]
                   for i in range(len(painting))])
  if config.loss.rank == 'infonce':
    temperature = float(np.exp(model.log_temperature[...]))
    rank = reference_losses.infonce(scores, same, temperature)
  else:
    rank = reference_losses.hinge(
        scores, same, margin=config.loss.margin,
        max_violation=step >= config.loss.max_violation_warmup_steps)

  # Classifier slot 0 is the ranking sentence, then `cls_tokens` (the pipeline's layout).
  sentences = np.concatenate([batch['tokens'][:, None], batch['cls_tokens']], axis=1)
  b, c, t = sentences.shape
  own = [i for i in range(b) for _ in range(c)]  # sentence (i, k) is of painting i
  cls_w, cls_wmask = model.encode_sentences(sentences.reshape(b * c, t))
  logits = np.asarray(model.classify(v[own], rmask[own], cls_w, cls_wmask))
  cls, _ = reference_losses.bce(logits, batch['cls_labels'].ravel(),
                                batch['cls_mask'].ravel(), config.loss.cls_pos_weight)
  return rank + config.loss.cls_weight * cls


@pytest.mark.parametrize('rank, step', [('hinge', WARMUP - 1), ('hinge', WARMUP),
                                        ('infonce', 0)])
def test_objective_equals_a_numpy_reference(rank, step):
  config = _reference_config(rank)
  model = train_fixtures.tiny_model(config)
  batch = _reference_batch(config)
  total, parts = train_step.objective(model, batch, _spec(config), jnp.asarray(step))
  want = _reference_objective(model, batch, config, step)
  np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(parts['loss'], total)


@pytest.mark.parametrize('rank', ['hinge', 'infonce'])
def test_gradients_reach_every_parameter_that_should_move(rank):
  config = _reference_config(rank)
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  batch = _reference_batch(config)

  def loss(params):
    model = model_lib.merge(graphdef, {'params': params, 'model_state': {}})
    return train_step.objective(model, batch, _spec(config), jnp.asarray(WARMUP))[0]

  grads = jax.jit(jax.grad(loss))(variables['params'])
  moving = {jax.tree_util.keystr(path): bool(np.any(np.asarray(g) != 0))
            for path, g in jax.tree_util.tree_leaves_with_path(grads)}
  # Only InfoNCE uses the learned temperature; everything else is in every loss.
  temperature = "['log_temperature']"
  assert moving.pop(temperature) is (rank == 'infonce')
  assert all(moving.values()), [name for name, moves in moving.items() if not moves]


# ---------------------------------------------------------------- skipped steps


def test_skipped_step_keeps_the_state_and_the_next_step_is_the_uninterrupted_one():
  config = train_fixtures.tiny_config()  # 5 warm-up steps: the rate changes every step
  mesh = sharding.make_mesh()
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=100)
  step = train_step.make_train_step(graphdef, optimizer, _spec(config), mesh)
  batch = lambda seed, **changes: sharding.global_batch(
      mesh, dict(train_fixtures.synthetic_batch(config, 16, seed=seed), **changes))
  state = sharding.replicate(mesh, train_step.init_state(variables, optimizer.tx))
  for seed in range(2):
    state, _ = step(state, batch(seed))
  before = jax.device_get(state)

  nan_regions = train_fixtures.synthetic_batch(config, 16, seed=2)['regions']
  nan_regions[3, 0, 0] = np.nan
  state, metrics = step(state, batch(2, regions=nan_regions))
  assert int(metrics['skipped']) == 1
  skipped = jax.device_get(state)
  assert int(skipped['step']) == int(before['step']) + 1
  for key in ('params', 'opt_state', 'model_state'):  # the optimiser's count included
    train_fixtures.assert_trees_equal(skipped[key], before[key])

  resumed, resumed_metrics = step(state, batch(3))
  uninterrupted, uninterrupted_metrics = step(sharding.replicate(mesh, before), batch(3))
  assert int(resumed_metrics['skipped']) == 0
  for key in ('params', 'opt_state', 'model_state'):
    train_fixtures.assert_trees_equal(jax.device_get(resumed[key]),
                                      jax.device_get(uninterrupted[key]))
  # Two updates applied before: the third applies 2/5 of the peak, and says so, also
  # after the skip (the step counter is one ahead of the optimiser's count there).
  rate = 2 / config.optimizer.warmup_steps * config.optimizer.learning_rate
  for logged in (metrics, resumed_metrics, uninterrupted_metrics):
    np.testing.assert_allclose(float(logged['learning_rate']), rate, rtol=1e-6)
def test_dropout_masks_follow_the_step_and_not_the_device_count():
  """The masks come from (seed, step): two steps draw different ones, the same step the
  same ones (a resumed run repeats it bitwise), on 8 devices as on 1."""
  config = train_fixtures.tiny_config(dropout=0.5, word_dropout=0.25)
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  batch = train_fixtures.synthetic_batch(config, batch_size=16)
  model = model_lib.merge(graphdef, variables)
  objective = jax.jit(lambda step: train_step.objective(model, batch, _spec(config), step)[0])
  loss = lambda step: float(objective(jnp.asarray(step)))
  assert loss(0) == loss(0) and loss(0) != loss(1)

  loss1, grads1 = _loss_and_grads(config, variables['params'], graphdef, batch,
                                  jax.devices()[:1])
  loss8, grads8 = _loss_and_grads(config, variables['params'], graphdef, batch,
                                  jax.devices())
  np.testing.assert_allclose(loss8, loss1, rtol=1e-5)
  for g8, g1 in zip(jax.tree.leaves(grads8), jax.tree.leaves(grads1)):
    assert np.linalg.norm(g8 - g1) <= 1e-5 * np.linalg.norm(g1)


def test_a_step_repeated_from_the_same_state_is_bitwise_equal_with_dropout():
  config = train_fixtures.tiny_config(dropout=0.5, word_dropout=0.25)
  step, state, batch = _step_and_state(config, 16)
  saved = jax.device_get(state)
  first, _ = step(state, batch)
  mesh = sharding.make_mesh()
  second, _ = step(sharding.replicate(mesh, saved), batch)
  for a, b in zip(jax.tree.leaves(jax.device_get(first)),
                  jax.tree.leaves(jax.device_get(second))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('rank_weight, cls_weight', [(0.0, 1.0), (2.0, 0.5)])
def test_total_loss_weighs_both_tasks_and_rank_weight_zero_skips_ranking(
    rank_weight, cls_weight):
  config = train_fixtures.tiny_config()
  graphdef, variables = model_lib.split(train_fixtures.tiny_model(config))
  batch = train_fixtures.synthetic_batch(config, batch_size=16)
  model = model_lib.merge(graphdef, variables)
  full = train_step.objective(model, batch, _spec(config), step=0)[1]
  config.loss.rank_weight, config.loss.cls_weight = rank_weight, cls_weight
  total, parts = train_step.objective(model, batch, _spec(config), step=0)
  expected_rank = full['rank_loss'] if rank_weight else 0.0
  np.testing.assert_allclose(parts['rank_loss'], expected_rank, rtol=1e-6)
  np.testing.assert_allclose(
      total, rank_weight * full['rank_loss'] + cls_weight * full['cls_loss'], rtol=1e-6)
  if not rank_weight:  # nothing of the ranking is computed: no pairwise scores at all
    def program_size(cfg):
      loss = lambda v: train_step.objective(model_lib.merge(graphdef, v), batch, _spec(cfg),
                                            step=0)[0]
      return len(str(jax.make_jaxpr(loss)(variables)))
    assert program_size(config) < program_size(train_fixtures.tiny_config())
