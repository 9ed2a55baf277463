"""Optimiser and learning-rate schedules, from an `OptimizerSpec` (`config.optimizer`).

A pixel backbone (`config.model.backbone`) is trained at its own peak rate,
`optimizer.backbone_learning_rate`, on the same warm-up and decay as the rest; a frozen
one is not updated at all (no weight decay either, and no optimiser moments).
A BERT text encoder (`config.model.text_encoder='bert'`) likewise has its own peak rate,
`optimizer.text_learning_rate`; with `model.text_frozen_layers` = k > 0 its embeddings
and its first k layers are frozen the same way. The projection of its outputs to the
joint space is trained with the rest.
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import ml_collections
import optax

from artpedia_jax.model import model as model_lib

BACKBONE, TEXT, FROZEN, HEAD = 'backbone', 'text', 'frozen', 'head'
OPTIMIZERS = ('adam', 'adamw')  # the values of config.optimizer.name
DECAYS = ('cosine', 'linear', 'constant')  # the values of config.optimizer.decay


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
  """What the optimiser needs of a validated config: `config.optimizer`, and which
  parameter groups exist (a pixel backbone, frozen or not; a BERT and its frozen layers)."""
  name: str
  learning_rate: float
  backbone_learning_rate: float
  text_learning_rate: float
  weight_decay: float
  warmup_steps: int
  decay: str
  grad_clip_norm: float
  backbone: bool
  backbone_frozen: bool
  bert: bool
  text_frozen_layers: int

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'OptimizerSpec':
    opt = config.optimizer
    return cls(name=opt.name, learning_rate=opt.learning_rate,
               backbone_learning_rate=opt.backbone_learning_rate,
               text_learning_rate=opt.text_learning_rate, weight_decay=opt.weight_decay,
               warmup_steps=opt.warmup_steps, decay=opt.decay,
               grad_clip_norm=opt.grad_clip_norm, backbone=bool(config.model.backbone),
               backbone_frozen=config.model.backbone_frozen,
               bert=config.model.text_encoder == 'bert',
               text_frozen_layers=config.model.text_frozen_layers)


def _schedule(opt: OptimizerSpec, peak: float, total_steps: int) -> optax.Schedule:
  """Linear warm-up to `peak`, then cosine / linear decay to zero, or constant."""
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


def _update_rule(opt: OptimizerSpec,
                 schedule: optax.Schedule) -> optax.GradientTransformation:
  if opt.name == 'adamw':
    return optax.adamw(schedule, weight_decay=opt.weight_decay)
  return optax.adam(schedule)


def _text_label(path, frozen_layers: int) -> str:
  """FROZEN for the embeddings and layers below `frozen_layers` of a BERT, else TEXT."""
  if frozen_layers > 0:
    part = path[1].key
    if part == 'embeddings' or (part == 'layers' and path[2].key < frozen_layers):
      return FROZEN
  return TEXT


def parameter_labels(params, text_frozen_layers: int = 0) -> dict:
  """BACKBONE under the pixel encoder, TEXT / FROZEN under a BERT text encoder, else
  HEAD."""
  def label(path, _):
    if path[0].key == model_lib.PIXEL_ENCODER:
      return BACKBONE
    if path[0].key == model_lib.BERT_ENCODER:
      return _text_label(path, text_frozen_layers)
    return HEAD
  return jax.tree_util.tree_map_with_path(label, params)


def _backbone_rule(opt: OptimizerSpec, total_steps: int) -> optax.GradientTransformation:
  if opt.backbone_frozen:
    return optax.set_to_zero()
  return _update_rule(opt, _schedule(opt, opt.backbone_learning_rate, total_steps))


class Optimizer(NamedTuple):
  """The update rule and the learning-rate schedule it applies outside a backbone."""
  tx: optax.GradientTransformation
  learning_rate: optax.Schedule  # of the number of updates applied (`applied_updates`)


def make_optimizer(opt: OptimizerSpec, total_steps: int) -> Optimizer:
  """Global-norm clipping followed by Adam or AdamW on the schedule(s)."""
  learning_rate = _schedule(opt, opt.learning_rate, total_steps)
  step = _update_rule(opt, learning_rate)
  if opt.backbone or opt.bert:
    rules = {HEAD: step, FROZEN: optax.set_to_zero()}
    if opt.backbone:
      rules[BACKBONE] = _backbone_rule(opt, total_steps)
    if opt.bert:
      rules[TEXT] = _update_rule(opt, _schedule(opt, opt.text_learning_rate, total_steps))
    step = optax.multi_transform(rules, functools.partial(
        parameter_labels, text_frozen_layers=opt.text_frozen_layers))
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
