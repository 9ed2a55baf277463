"""Optimiser and learning-rate schedule, all from `config.optimizer`."""

import ml_collections
import optax


def learning_rate_schedule(config: ml_collections.ConfigDict,
                           total_steps: int) -> optax.Schedule:
  """Linear warm-up to the peak, then cosine / linear decay to zero, or constant."""
  opt = config.optimizer
  warmup = min(opt.warmup_steps, max(total_steps - 1, 0))
  decay_steps = max(total_steps - warmup, 1)
  decays = {
      'cosine': lambda: optax.cosine_decay_schedule(opt.learning_rate, decay_steps),
      'linear': lambda: optax.linear_schedule(opt.learning_rate, 0.0, decay_steps),
      'constant': lambda: optax.constant_schedule(opt.learning_rate),
  }
  decay = decays[opt.decay]()
  if warmup == 0:
    return decay
  ramp = optax.linear_schedule(0.0, opt.learning_rate, warmup)
  return optax.join_schedules([ramp, decay], [warmup])


def make_optimizer(config: ml_collections.ConfigDict,
                   total_steps: int) -> optax.GradientTransformation:
  """Global-norm clipping followed by Adam or AdamW on the schedule."""
  opt = config.optimizer
  schedule = learning_rate_schedule(config, total_steps)
  if opt.name == 'adamw':
    step = optax.adamw(schedule, weight_decay=opt.weight_decay)
  else:
    step = optax.adam(schedule)
  parts = [step]
  if opt.grad_clip_norm > 0:
    parts.insert(0, optax.clip_by_global_norm(opt.grad_clip_norm))
  return optax.chain(*parts)
