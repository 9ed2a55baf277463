"""Losses of docs/design.md §6.1–§6.3: VSE++ hinge, symmetric InfoNCE, classifier BCE.

Score matrices follow docs/design.md §5.1: `scores[i, j]` = S(painting i, sentence j) with the
positive pairs on the diagonal; `same_painting[i, j]` marks pairs that must never serve
as negatives (sentence j describes painting i as well).
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from artpedia_jax.model import scoring

Array = jax.Array

# Never let the InfoNCE temperature fall below this (as CLIP caps its logit scale):
# below it the logits explode and training diverges.
MIN_TEMPERATURE = 0.01
# The values of config.loss.rank: `hinge_loss` or `infonce_loss`.
RANK_LOSSES = ('hinge', 'infonce')


@dataclasses.dataclass(frozen=True)
class LossSpec:
  """The objective's settings (`config.loss`, docs/design.md §6.4): frozen and hashable, so
  the jitted step closes over plain values, not over the config."""
  rank: str
  margin: float
  max_violation: bool
  max_violation_warmup_steps: int
  rank_weight: float
  cls_weight: float
  cls_pos_weight: float

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict,
                  prior_pos_weight: float | None = None) -> 'LossSpec':
    """`prior_pos_weight` is what `loss.cls_pos_weight=-1` stands for: the training
    split's `prior_pos_weight`, which only the caller that holds the split can compute."""
    loss = config.loss
    pos_weight = loss.cls_pos_weight
    if pos_weight == -1:
      if prior_pos_weight is None:
        raise ValueError('loss.cls_pos_weight=-1 needs the training split\'s weight '
                         '(prior_pos_weight)')
      pos_weight = prior_pos_weight
    return cls(rank=loss.rank, margin=loss.margin, max_violation=loss.max_violation,
               max_violation_warmup_steps=loss.max_violation_warmup_steps,
               rank_weight=loss.rank_weight, cls_weight=loss.cls_weight,
               cls_pos_weight=pos_weight)


def _negatives(same_painting: Array) -> Array:
  """Pairs usable as negatives: other paintings only, and never the diagonal."""
  eye = jnp.eye(*same_painting.shape, dtype=bool)
  return ~(same_painting | eye)


def hinge_loss(
    scores: Array,
    same_painting: Array,
    *,
    margin: float,
    max_violation: bool | Array,
) -> Array:
  """VSE++ hinge in both directions, mean over the queries of each direction.

  `max_violation` keeps only the hardest negative per query, otherwise all negatives are
  summed; it may be a traced boolean so that a warm-up can switch it inside one compiled
  step.
  """
  negatives = _negatives(same_painting)
  positives = jnp.diagonal(scores)
  image_to_text = jnp.where(negatives, jax.nn.relu(margin + scores - positives[:, None]), 0)
  text_to_image = jnp.where(negatives, jax.nn.relu(margin + scores - positives[None, :]), 0)

  def reduce(cost, axis):
    per_query = jnp.where(max_violation, jnp.max(cost, axis), jnp.sum(cost, axis))
    return jnp.mean(per_query)

  return reduce(image_to_text, 1) + reduce(text_to_image, 0)


def infonce_loss(scores: Array, same_painting: Array, log_temperature: Array) -> Array:
  """Symmetric InfoNCE (mean of the two directions) with a learned temperature.

  Other pairs of the same painting are removed from the denominators: they are neither
  the positive nor a negative.
  """
  temperature = jnp.exp(jnp.maximum(log_temperature, jnp.log(MIN_TEMPERATURE)))
  logits = scores / temperature
  candidates = ~same_painting | jnp.eye(*scores.shape, dtype=bool)
  logits = jnp.where(candidates, logits, scoring.MASKED)
  positives = jnp.diagonal(logits)
  image_to_text = jax.nn.logsumexp(logits, axis=1) - positives
  text_to_image = jax.nn.logsumexp(logits, axis=0) - positives
  return 0.5 * (jnp.mean(image_to_text) + jnp.mean(text_to_image))


def prior_pos_weight(split_share: float, sampled_share: float) -> float:
  """The positive weight that makes a classifier trained on draws with `sampled_share`
  positives estimate p(visual) at the split's prior `split_share`: reweighting each class
  by (its split share / its sampled share) moves the optimum of the cross-entropy to the
  split's class balance; only the ratio of the two weights matters to the optimum."""
  if not 0 < split_share < 1 or not 0 < sampled_share < 1:
    return 1.0  # one class only: there is no balance to correct
  return (split_share * (1 - sampled_share)) / (sampled_share * (1 - split_share))


def classification_loss(
    logits: Array, labels: Array, mask: Array, *, pos_weight: float
) -> tuple[Array, Array]:
  """Masked mean binary cross-entropy (positives weighted) and masked accuracy.

  Both are 0 when nothing is masked in, so that an empty batch cannot produce NaN.
  """
  labels = labels.astype(jnp.float32)
  weights = mask.astype(jnp.float32)
  per_item = -(pos_weight * labels * jax.nn.log_sigmoid(logits)
               + (1.0 - labels) * jax.nn.log_sigmoid(-logits))
  correct = ((logits > 0) == (labels > 0.5)).astype(jnp.float32)
  count = jnp.maximum(jnp.sum(weights), 1.0)
  return jnp.sum(per_item * weights) / count, jnp.sum(correct * weights) / count
