"""`ArtpediaModel` (Flax NNX): region encoder, text encoder, scorer and classifier.

The model holds only `nnx.Param` state (the recurrent layers get explicit zero initial
carries, so they keep no RNG streams): `nnx.state(model, nnx.Param)` is all there is to
optimise and checkpoint.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from artpedia_jax import scoring

Array = jax.Array
CLASSIFIER_INPUTS = ('text_image', 'text')


def _average(forward: Array, backward: Array) -> Array:
  """Merges the two GRU directions per word (DESIGN §4: averaged, not concatenated)."""
  return 0.5 * (forward + backward)


def box_features(boxes: Array) -> Array:
  """(y0, x0, y1, x1) → (y0, x0, y1, x1, area), the box embedding's input."""
  area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
  return jnp.concatenate([boxes, area[..., None]], axis=-1)


def _masked_unit(x: Array, mask: Array) -> Array:
  """L2-normalised vectors, exactly zero where mask is False."""
  return jnp.where(mask[..., None], scoring.l2_normalize(x), 0.0)


def _embedding_init(word_embeddings: np.ndarray, vocab_size: int, word_dim: int):
  """An initializer returning the given table, after checking it fits the model."""
  if word_embeddings.shape != (vocab_size, word_dim):
    raise ValueError(
        f'word_embeddings has shape {word_embeddings.shape}, the model needs '
        f'(vocab_size, config.model.word_dim) = {(vocab_size, word_dim)}: build the '
        'table from the same vocabulary and set word_dim to the GloVe dimension.')
  table = jnp.asarray(word_embeddings, jnp.float32)
  return lambda key, shape, dtype: table.astype(dtype)


class ArtpediaModel(nnx.Module):
  """Encoders into a D-dim joint space, the configured scorer, and the classifier."""

  def __init__(
      self,
      config: ml_collections.ConfigDict,
      *,
      vocab_size: int,
      feature_dim: int,
      rngs: nnx.Rngs,
      word_embeddings: np.ndarray | None = None,
  ):
    model = config.model
    if model.classifier_inputs not in CLASSIFIER_INPUTS:
      raise ValueError(
          f'Unknown config.model.classifier_inputs {model.classifier_inputs!r}: use one '
          f'of {CLASSIFIER_INPUTS}.')
    dim = model.embed_dim
    self.embed_dim = dim
    self.scorer = scoring.get_scorer(
        model.score, lambda_softmax=model.lambda_softmax, lambda_lse=model.lambda_lse)
    self.classifier_inputs = model.classifier_inputs

    self.region_projection = nnx.Linear(feature_dim, dim, rngs=rngs)
    self.box_embedding = (
        nnx.Linear(5, dim, rngs=rngs) if model.use_boxes else None)

    embed_kwargs = {}
    if word_embeddings is not None:
      embed_kwargs['embedding_init'] = _embedding_init(
          word_embeddings, vocab_size, model.word_dim)
    self.word_embedding = nnx.Embed(vocab_size, model.word_dim, rngs=rngs, **embed_kwargs)
    self.text_rnn = nnx.Bidirectional(
        nnx.RNN(nnx.GRUCell(model.word_dim, dim, rngs=rngs), rngs=False),
        nnx.RNN(nnx.GRUCell(model.word_dim, dim, rngs=rngs), rngs=False),
        merge_fn=_average,
        rngs=False)

    classifier_in = dim if model.classifier_inputs == 'text' else 3 * dim + 1
    self.classifier_hidden = nnx.Linear(classifier_in, model.classifier_hidden, rngs=rngs)
    self.classifier_out = nnx.Linear(model.classifier_hidden, 1, rngs=rngs)

    self.log_temperature = nnx.Param(
        jnp.log(jnp.asarray(config.loss.init_temperature, jnp.float32)))

  def encode_paintings(self, regions: Array, boxes: Array, region_mask: Array) -> Array:
    """regions [P, R, F], boxes [P, R, 4] → v [P, R, D], unit norm, zero at padding."""
    x = self.region_projection(regions)
    if self.box_embedding is not None:
      x = x + self.box_embedding(box_features(boxes))
    return _masked_unit(x, region_mask)

  def encode_sentences(self, tokens: Array) -> tuple[Array, Array]:
    """tokens [S, T] (right-padded with 0) → (w [S, T, D], word_mask [S, T]).

    `seq_lengths` makes the backward direction start at each sentence's last real word,
    so padding never reaches a real word's vector.
    """
    word_mask = tokens != 0
    initial_carry = jnp.zeros((tokens.shape[0], self.embed_dim), jnp.float32)
    hidden = self.text_rnn(
        self.word_embedding(tokens),
        initial_carry=(initial_carry, initial_carry),
        seq_lengths=jnp.sum(word_mask, axis=-1))
    return _masked_unit(hidden, word_mask), word_mask

  def pairwise_scores(
      self, v: Array, rmask: Array, w: Array, wmask: Array, block_size: int
  ) -> Array:
    """scores[i, j] = S(painting i, sentence j), [P, S], in blocks of sentences."""
    return self.scorer.pairwise(v, rmask, w, wmask, block_size=block_size)

  def paired_scores(self, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
    """S(painting n, sentence n), [N]."""
    return self.scorer.paired(v, rmask, w, wmask)

  def classify(self, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
    """Logit of p(visual | sentence n, its own painting n), [N].

    Features: the sentence vector u, the region context c its words attend to in its own
    painting, u * c, and S(v, s); with classifier_inputs='text', u alone.
    """
    sentence = scoring.l2_normalize(scoring.masked_mean(w, wmask))
    if self.classifier_inputs == 'text':
      features = sentence
    else:
      context = scoring.attended_context(
          v, rmask, w, wmask, lambda_softmax=self.scorer.lambda_softmax)
      own_score = self.paired_scores(v, rmask, w, wmask)
      features = jnp.concatenate(
          [sentence, context, sentence * context, own_score[:, None]], axis=-1)
    hidden = jax.nn.relu(self.classifier_hidden(features))
    return self.classifier_out(hidden)[:, 0]


Variables = dict[str, dict]  # {'params': trained by the optimiser, 'model_state': the rest}


def split(model: nnx.Module) -> tuple[nnx.GraphDef, Variables]:
  """The model's structure and its variables as pure dicts (checkpointable pytrees).

  `params` are what the optimiser trains; `model_state` holds every other variable
  (e.g. a pixel backbone's batch-norm statistics) and is empty for the region model.
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  return graphdef, {'params': nnx.to_pure_dict(params),
                    'model_state': nnx.to_pure_dict(rest)}


def merge(graphdef: nnx.GraphDef, variables: Variables) -> nnx.Module:
  """Inverse of `split`."""
  states = [variables['params']]
  if variables['model_state']:
    states.append(variables['model_state'])
  return nnx.merge(graphdef, *states)
