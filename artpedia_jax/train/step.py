"""The training objective and the one jit-compiled, data-parallel train step.

State is a plain pytree `{'params', 'model_state', 'opt_state', 'step'}` (the model's
variables as pure dicts, see `model.split`) so that the step is a pure function that can be
donated, sharded and checkpointed as is. The batch
is sharded over the mesh's `data` axis and parameters are replicated; the pairwise scores
are computed between the device's own paintings and the sentences of the *global* batch
(XLA all-gathers the sentence encodings), so every device sees every negative and the
loss equals the single-device loss of the same global batch.
"""

import dataclasses
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import optax

from artpedia_jax.data import sentence_packing
from artpedia_jax.model import model as model_lib
from artpedia_jax.model import packed_rows
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import losses
from artpedia_jax.train import optim

TrainState = dict[str, Any]
Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """What the objective needs besides the model and the batch: the losses' settings, the
  seed that keys dropout, and the block size of the pairwise scoring."""
  loss: losses.LossSpec
  seed: int
  score_block_size: int

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict,
                  prior_pos_weight: float | None = None) -> 'StepSpec':
    return cls(losses.LossSpec.from_config(config, prior_pos_weight), config.seed,
               config.score_block_size)


def init_state(variables: model_lib.Variables,
               tx: optax.GradientTransformation) -> TrainState:
  return {'params': variables['params'], 'model_state': variables['model_state'],
          'opt_state': tx.init(variables['params']), 'step': jnp.zeros((), jnp.int32)}


def dropout_key(seed: int, step: jax.Array) -> jax.Array:
  """The dropout randomness of one step: a function of the seed and step only, so there
  is no RNG state to checkpoint, a resumed run draws the same masks, and the masks of the
  global batch do not depend on how many devices share it."""
  return jax.random.fold_in(jax.random.key(seed), step)


def step_packing(batch: Batch) -> packed_rows.PackedRows | None:
  """The batch's packing of its sentences (the pipeline's `packed_*`), None if it has
  none: each sentence is then encoded in its own padded row."""
  if sentence_packing.KEYS[0] not in batch:
    return None
  return packed_rows.PackedRows(*(batch[key] for key in sentence_packing.KEYS))


def _encode_step_sentences(model, batch: Batch, key: jax.Array):
  """Every sentence of the step through the text encoder in one call, each once.

  The pipeline's classifier slot 0 is the row's ranking sentence, so the step's sentences
  are [B, 1 + K] (`tokens`, then `cls_tokens`): encoded row-major over (painting, slot),
  which keeps each device's rows on that device, packed as the batch says
  (`step_packing`). Returns the classifier's w [B (1 + K), T, D] and word mask, and
  slot 0 of each as the ranking sentences'. `key` draws the step's dropout masks.
  """
  sentences = jnp.concatenate([batch['tokens'][:, None], batch['cls_tokens']], axis=1)
  b, slots, t = sentences.shape
  cls_w, cls_word_mask = model.encode_sentences(sentences.reshape(b * slots, t),
                                                dropout_key=key,
                                                packing=step_packing(batch))
  w = cls_w.reshape(b, slots, *cls_w.shape[1:])[:, 0]
  word_mask = cls_word_mask.reshape(b, slots, t)[:, 0]
  return w, word_mask, cls_w, cls_word_mask


def _rank_loss(model, batch: Batch, v, region_mask, w, word_mask, spec: StepSpec,
               step: jax.Array) -> jax.Array:
  """The ranking loss of the batch's pairs against all other pairs of the global batch."""
  scores = model.pairwise_scores(v, region_mask, w, word_mask,
                                 block_size=spec.score_block_size)
  same_painting = batch['painting'][:, None] == batch['painting'][None, :]
  if spec.loss.rank == 'infonce':
    return losses.infonce_loss(scores, same_painting, model.log_temperature[...])
  hardest = jnp.logical_and(spec.loss.max_violation,
                            step >= spec.loss.max_violation_warmup_steps)
  return losses.hinge_loss(scores, same_painting, margin=spec.loss.margin,
                           max_violation=hardest)


def objective(model, batch: Batch, spec: StepSpec,
              step: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """rank_weight * rank + cls_weight * cls on one global batch; returns (total, parts).

  With `rank_weight` 0 the ranking loss is not computed at all (reported as 0), so
  classifier-only training skips the pairwise scoring. A fine-tuned pixel backbone runs
  its batch norm in training mode here (batch statistics over the global batch), which
  updates the model's `BatchStat` variables.
  """
  v, region_mask, _ = model.encode_painting_inputs(batch, train=True)
  w, word_mask, cls_w, cls_word_mask = _encode_step_sentences(
      model, batch, dropout_key(spec.seed, step))
  rank = (_rank_loss(model, batch, v, region_mask, w, word_mask, spec, step)
          if spec.loss.rank_weight else jnp.zeros((), jnp.float32))

  slots = batch['cls_mask'].shape[1]
  own_v = jnp.repeat(v, slots, axis=0)
  own_region_mask = jnp.repeat(region_mask, slots, axis=0)
  logits = model.classify(own_v, own_region_mask, cls_w, cls_word_mask)
  cls, cls_accuracy = losses.classification_loss(
      logits, batch['cls_labels'].reshape(-1), batch['cls_mask'].reshape(-1),
      pos_weight=spec.loss.cls_pos_weight)
  total = spec.loss.rank_weight * rank + spec.loss.cls_weight * cls
  return total, {'loss': total, 'rank_loss': rank, 'cls_loss': cls,
                 'cls_accuracy': cls_accuracy}


def make_train_step(graphdef: nnx.GraphDef, optimizer: optim.Optimizer, spec: StepSpec,
                    mesh: jax.sharding.Mesh
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
  """Compiles `(state, global batch) -> (new state, metrics)` over `mesh`.

  `model_state` comes back as the forward pass left it: updated batch-norm statistics
  of a fine-tuned backbone, unchanged otherwise (region features, frozen backbone).
  A step whose loss or gradients are not finite leaves the state unchanged except for
  the step counter, and reports `skipped=1` so the loop can log it and stop after too
  many in a row. The optimiser's own count is kept too, so a skip delays the schedule by
  one step and `learning_rate` reports the rate this step applied (or would have).
  """
  tx = optimizer.tx

  def loss_fn(params, model_state, batch, step):
    model = model_lib.merge(graphdef, {'params': params, 'model_state': model_state},
                            copy=True)
    total, parts = objective(model, batch, spec, step)
    return total, (parts, model_lib.split(model)[1]['model_state'])

  def step_fn(state: TrainState, batch: Batch):
    params = state['params']
    grads, (parts, model_state) = jax.grad(loss_fn, has_aux=True)(
        params, state['model_state'], batch, state['step'])
    updates, opt_state = tx.update(grads, state['opt_state'], params)
    new_params = optax.apply_updates(params, updates)
    grad_norm = optax.tree.norm(grads)  # not finite iff some gradient is not (or overflows)
    finite = jnp.logical_and(jnp.isfinite(grad_norm), jnp.isfinite(parts['loss']))
    keep_if_finite = lambda new, old: jnp.where(finite, new, old)
    new_state = {
        'params': jax.tree.map(keep_if_finite, new_params, params),
        'model_state': jax.tree.map(keep_if_finite, model_state, state['model_state']),
        'opt_state': jax.tree.map(keep_if_finite, opt_state, state['opt_state']),
        'step': state['step'] + 1,
    }
    metrics = dict(parts, grad_norm=grad_norm,
                   skipped=jnp.logical_not(finite).astype(jnp.int32),
                   learning_rate=optimizer.learning_rate(
                       optim.applied_updates(state['opt_state'])))
    return new_state, metrics

  replicated = sharding_lib.replicated(mesh)
  return jax.jit(step_fn,
                 in_shardings=(replicated, sharding_lib.batch_sharded(mesh)),
                 out_shardings=(replicated, replicated),
                 donate_argnums=(0,))
