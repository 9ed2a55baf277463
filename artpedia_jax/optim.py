"""Optimiser and learning-rate schedules, all from `config.optimizer`.

A pixel backbone (`config.model.backbone`) is trained at its own peak rate,
`optimizer.backbone_learning_rate`, on the same warm-up and decay as the rest; a frozen
one is not updated at all (no weight decay either, and no optimiser moments).
"""

from typing import NamedTuple

import jax
import ml_collections
import optax

from artpedia_jax import model as model_lib

BACKBONE, HEAD = 'backbone', 'head'
OPTIMIZERS = ('adam', 'adamw')  # the values of config.optimizer.name
DECAYS = ('cosine', 'linear', 'constant')  # the values of config.optimizer.decay


def _schedule(config: ml_collections.ConfigDict, peak: float,
              total_steps: int) -> optax.Schedule:
  """Linear warm-up to `peak`, then cosine / linear decay to zero, or constant."""
  opt = config.optimizer
  warmup = min(opt.warmup_steps, max(total_steps - 1, 0))
  decay_steps = max(total_steps - warmup, 1)
  decays = {
      'cosine': lambda: optax.cosine_decay_schedule(peak, decay_steps),
      'linear': lambda: optax.linear_schedule(peak, 0.0, decay_steps),
      'constant': lambda: optax.constant_schedule(peak),
  }
  decay = decays[opt.decay]()
  if warmup == 0:
    return decay
  ramp = optax.linear_schedule(0.0, peak, warmup)
  return optax.join_schedules([ramp, decay], [warmup])


def _update_rule(config: ml_collections.ConfigDict,
                 schedule: optax.Schedule) -> optax.GradientTransformation:
  opt = config.optimizer
  if opt.name == 'adamw':
    return optax.adamw(schedule, weight_decay=opt.weight_decay)
  return optax.adam(schedule)


def parameter_labels(params) -> dict:
  """BACKBONE for every leaf under the pixel encoder, HEAD for the others."""
  def label(path, _):
    return BACKBONE if path[0].key == model_lib.PIXEL_ENCODER else HEAD
  return jax.tree_util.tree_map_with_path(label, params)


def _backbone_rule(config: ml_collections.ConfigDict,
                   total_steps: int) -> optax.GradientTransformation:
  if config.model.backbone_frozen:
    return optax.set_to_zero()
  return _update_rule(
      config, _schedule(config, config.optimizer.backbone_learning_rate, total_steps))


class Optimizer(NamedTuple):
  """The update rule and the learning-rate schedule it applies outside a backbone."""
  tx: optax.GradientTransformation
  learning_rate: optax.Schedule  # of the number of updates applied (`applied_updates`)


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int) -> Optimizer:
  """Global-norm clipping followed by Adam or AdamW on the schedule(s)."""
  opt = config.optimizer
  learning_rate = _schedule(config, opt.learning_rate, total_steps)
  step = _update_rule(config, learning_rate)
  if config.model.backbone:
    step = optax.multi_transform(
        {HEAD: step, BACKBONE: _backbone_rule(config, total_steps)}, parameter_labels)
  parts = [step]
  if opt.grad_clip_norm > 0:
    parts.insert(0, optax.clip_by_global_norm(opt.grad_clip_norm))
  return Optimizer(optax.chain(*parts), learning_rate)


def applied_updates(opt_state) -> jax.Array:
  """How many updates the optimiser has applied: the step its schedules are evaluated at.

  Read from optax's own counter, so a step the train step skipped (its optimiser state
  kept) is not counted, whatever the train step's own step counter says.
  """
  counts = optax.tree_utils.tree_get_all_with_path(
      opt_state, 'count',
      filtering=lambda path, _: path[-1].tuple_name == 'ScaleByScheduleState')
  return counts[0][1]
