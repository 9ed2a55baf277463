"""`ArtpediaModel` (Flax NNX): painting encoder, text encoder, scorer and classifier.

Paintings come either as detector region features (`regions`, `boxes`, `region_mask`) or,
with a backbone in the `ModelSpec`, as pixels (`images`): a ResNet's last feature map is
then read as a grid of regions with their boxes, and both paths share the region projection.
`encode_painting_inputs` takes whichever the batch carries (see `REGION_INPUTS`,
`IMAGE_INPUTS`).

Sentences are encoded by a bi-GRU over a word vocabulary (`ModelSpec.text_encoder`
'bigru') or by a BERT encoder (`'bert'`, its shape given as `bert_config`, its weights
imported from a Hugging Face folder) whose per-token outputs are projected to the joint
space; either way each word (word piece for BERT, without [CLS]/[SEP]) gets a unit
vector, so the scorers and the classifier see the same thing.

The region model holds only `nnx.Param` state (the recurrent layers get explicit zero
initial carries, so they keep no RNG streams); a pixel backbone adds its batch-norm
statistics (`nnx.BatchStat`), which `split` keeps apart from the trained parameters.
"""

from collections.abc import Mapping
import dataclasses
from typing import NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.model import bert
from artpedia_jax.model import bert_import
from artpedia_jax.model import dropout as dropout_lib
from artpedia_jax.model import packed_rows
from artpedia_jax.model import resnet
from artpedia_jax.model import scoring
from artpedia_jax.model import weights_import

Array = jax.Array
CLASSIFIER_INPUTS = ('text_image', 'text')  # the values of config.model.classifier_inputs
# The painting inputs of a batch, per path.
REGION_INPUTS = ('regions', 'boxes', 'region_mask')
IMAGE_INPUTS = ('images',)
BACKBONES = {f'resnet{depth}': depth for depth in resnet.ARCHITECTURES}
BACKBONE_DTYPES = ('float32', 'bfloat16')  # the values of config.model.backbone_dtype
# config.model.dtype: the computation dtype of the text encoder, the region projections and
# the scoring contractions. Parameters (and so the optimiser state) stay float32; scores
# come out of the contractions in float32, so the losses and their logsumexps are float32.
COMPUTE_DTYPES = ('float32', 'bfloat16')
# The ArtpediaModel attribute (and parameter subtree) holding the pixel backbone: the
# optimiser gives it its own rate.
PIXEL_ENCODER = 'pixel_encoder'
TEXT_ENCODERS = ('bigru', 'bert')  # the values of config.model.text_encoder
# config.model.sentence_pooling: the classifier's sentence vector is the mean of the word
# vectors, or (BERT only) the [CLS] token's vector, projected like the words.
SENTENCE_POOLINGS = ('mean', 'cls')
# The ArtpediaModel attribute holding a BERT text encoder: its own rate, frozen layers.
BERT_ENCODER = 'bert'


class EncodedPaintings(NamedTuple):
  """Region vectors with the mask and boxes of the regions they stand for."""
  v: Array  # [P, R, D], unit norm, zero at padding
  region_mask: Array  # [P, R] bool
  boxes: Array  # [P, R, 4] (y0, x0, y1, x1) in [0, 1]: detector boxes or grid cells


def _average(forward: Array, backward: Array) -> Array:
  """Merges the two GRU directions per word (docs/design.md §5.3: averaged, not concatenated)."""
  return 0.5 * (forward + backward)


def box_features(boxes: Array) -> Array:
  """(y0, x0, y1, x1) → (y0, x0, y1, x1, area), the box embedding's input."""
  area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
  return jnp.concatenate([boxes, area[..., None]], axis=-1)


def _masked_unit(x: Array, mask: Array) -> Array:
  """L2-normalised vectors (the norm taken in float32), exactly zero where mask is False;
  in x's dtype."""
  unit = scoring.l2_normalize(x.astype(jnp.float32)).astype(x.dtype)
  return jnp.where(mask[..., None], unit, jnp.zeros((), x.dtype))


def _segment_edges(segments: Array, real: Array) -> tuple[Array, Array]:
  """(first, last) [rows, W] bool: the real positions that start / end their segment
  (`segments` [rows, W] numbers the sentence each position belongs to)."""
  before = jnp.pad(segments[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
  after = jnp.pad(segments[:, 1:], ((0, 0), (0, 1)), constant_values=-1)
  return real & (segments != before), real & (segments != after)


def _gru_update(cell: nnx.GRUCell, h: Array, inputs: Array) -> Array:
  """One step of `cell` from carry h, its input projection `inputs` = cell.dense_i(x)
  computed beforehand for every position at once."""
  x_r, x_z, x_n = jnp.split(inputs, 3, axis=-1)
  h_r, h_z, h_n = jnp.split(cell.dense_h(h), 3, axis=-1)
  r = cell.gate_fn(x_r + h_r)
  z = cell.gate_fn(x_z + h_z)
  n = cell.activation_fn(x_n + r * h_n)
  return (1.0 - z) * n + z * h


def compute_dtype(name: str) -> jnp.dtype:
  """The jnp dtype `config.model.dtype` names."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'Unknown config.model.dtype {name!r}: use one of {COMPUTE_DTYPES}.')
  return jnp.dtype(name)


def word_dropout(tokens: Array, rate: float, key: Array | None) -> Array:
  """Each real word replaced by `<unk>` with probability `rate`; padding stays padding."""
  if key is None or rate == 0:
    return tokens
  real = tokens != vocab_lib.Vocabulary.PAD
  drop = jax.random.bernoulli(key, rate, tokens.shape) & real
  return jnp.where(drop, vocab_lib.Vocabulary.UNK, tokens)


def _embedding_init(word_embeddings: np.ndarray, vocab_size: int, word_dim: int):
  """An initializer returning the given table, after checking it fits the model."""
  if word_embeddings.shape != (vocab_size, word_dim):
    raise ValueError(
        f'word_embeddings has shape {word_embeddings.shape}, the model needs '
        f'(vocab_size, config.model.word_dim) = {(vocab_size, word_dim)}: build the '
        'table from the same vocabulary and set word_dim to the GloVe dimension.')
  table = jnp.asarray(word_embeddings, jnp.float32)
  return lambda key, shape, dtype: table.astype(dtype)


def _word_embedding(spec: 'ModelSpec', vocab_size: int,
                    word_embeddings: np.ndarray | None, dtype,
                    rngs: nnx.Rngs) -> nnx.Embed:
  """The bi-GRU's word table: random, or `word_embeddings` (GloVe) when given."""
  embed_kwargs = {}
  if word_embeddings is not None:
    embed_kwargs['embedding_init'] = _embedding_init(
        word_embeddings, vocab_size, spec.word_dim)
  return nnx.Embed(vocab_size, spec.word_dim, dtype=dtype, rngs=rngs, **embed_kwargs)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
  """The ResNet that turns pixels into grid regions."""
  name: str  # a key of BACKBONES, e.g. 'resnet50'
  dtype: str = 'float32'  # computation dtype, one of BACKBONE_DTYPES; params stay f32
  frozen: bool = False  # batch norm in inference mode, no updates


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """The hyperparameters of `ArtpediaModel`, read from a config by `from_config` only.

  The sizes that come from the data (vocabulary, region features) are not here: the model
  takes them beside the spec.
  """
  embed_dim: int  # D, the joint space
  word_dim: int  # word embedding size
  score: str  # a scoring.get_score_function name
  lambda_softmax: float
  lambda_lse: float
  use_boxes: bool
  classifier_inputs: str  # one of CLASSIFIER_INPUTS
  classifier_hidden: int
  init_temperature: float  # the learned InfoNCE temperature's start
  backbone: BackboneSpec | None = None  # None: precomputed region features
  # Training only (see `ArtpediaModel.encode_sentences`): dropout rate on the word
  # embeddings and on the text encoder's word vectors, and the probability of replacing
  # a real word by `<unk>`.
  dropout: float = 0.0
  word_dropout: float = 0.0
  dtype: str = 'float32'  # computation dtype, one of COMPUTE_DTYPES; params stay f32
  text_encoder: str = 'bigru'  # one of TEXT_ENCODERS
  text_frozen_layers: int = 0  # BERT: no gradient to its embeddings and first k layers
  sentence_pooling: str = 'mean'  # one of SENTENCE_POOLINGS

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'ModelSpec':
    """The spec of `config.model` (and the loss's initial temperature)."""
    model = config.model
    backbone = (BackboneSpec(model.backbone, dtype=model.backbone_dtype,
                             frozen=model.backbone_frozen) if model.backbone else None)
    return cls(
        embed_dim=model.embed_dim, word_dim=model.word_dim, score=model.score,
        lambda_softmax=model.lambda_softmax, lambda_lse=model.lambda_lse,
        use_boxes=model.use_boxes, classifier_inputs=model.classifier_inputs,
        classifier_hidden=model.classifier_hidden,
        init_temperature=config.loss.init_temperature, backbone=backbone,
        dropout=model.dropout, word_dropout=model.word_dropout, dtype=model.dtype,
        text_encoder=model.text_encoder, text_frozen_layers=model.text_frozen_layers,
        # (configs saved before the key existed pooled by the mean)
        sentence_pooling=model.get('sentence_pooling', 'mean'))


def build_pixel_encoder(spec: BackboneSpec, *,
                        rngs: nnx.Rngs) -> resnet.PixelRegionEncoder:
  """The ResNet of `spec` as a randomly initialised grid-region encoder."""
  backbone = resnet.ResNet(BACKBONES[spec.name], dtype=jnp.dtype(spec.dtype), rngs=rngs)
  return resnet.PixelRegionEncoder(backbone, frozen=spec.frozen)


def load_backbone_weights(encoder: resnet.PixelRegionEncoder, path: str) -> None:
  """Overwrites the encoder's backbone with a torchvision checkpoint (.safetensors/.pth)."""
  skipped = weights_import.import_resnet_weights(
      encoder.backbone, weights_import.load_torchvision_state_dict(path))
  logging.info('Backbone weights loaded from %s (%d keys without counterpart skipped).',
               path, len(skipped))


class ArtpediaModel(nnx.Module):
  """Encoders into a D-dim joint space, the configured scorer, and the classifier."""

  def __init__(
      self,
      spec: ModelSpec,
      *,
      vocab_size: int,
      feature_dim: int | None = None,
      rngs: nnx.Rngs,
      word_embeddings: np.ndarray | None = None,
      bert_config: bert.BertConfig | None = None,
  ):
    """`bert_config`: the BERT's shape (its config.json), for text_encoder='bert'."""
    dim = spec.embed_dim
    self.dtype = dtype = compute_dtype(spec.dtype)
    self.embed_dim = dim
    self.score_function = scoring.get_score_function(
        spec.score, lambda_softmax=spec.lambda_softmax, lambda_lse=spec.lambda_lse)
    self.classifier_inputs = spec.classifier_inputs
    self.sentence_pooling = spec.sentence_pooling
    self.dropout = spec.dropout
    self.word_dropout = spec.word_dropout

    if spec.backbone is not None and feature_dim is not None:
      raise ValueError(
          f'feature_dim={feature_dim} was given with config.model.backbone='
          f'{spec.backbone.name!r}: the backbone sets the region size, pass None.')
    if spec.backbone is None and feature_dim is None:
      raise ValueError('feature_dim is required without a backbone: pass the size of '
                       "the dataset's region features (painting_inputs.region_feature_dim).")
    self.pixel_encoder = (build_pixel_encoder(spec.backbone, rngs=rngs)
                          if spec.backbone is not None else None)
    if self.pixel_encoder is not None:
      feature_dim = self.pixel_encoder.feature_dim
    self.region_projection = nnx.Linear(feature_dim, dim, dtype=dtype, rngs=rngs)
    self.box_embedding = (
        nnx.Linear(5, dim, dtype=dtype, rngs=rngs) if spec.use_boxes else None)

    if spec.text_encoder not in TEXT_ENCODERS:
      raise ValueError(f'Unknown config.model.text_encoder {spec.text_encoder!r}: use '
                       f'one of {TEXT_ENCODERS}.')
    uses_bert = spec.text_encoder == 'bert'
    if uses_bert and bert_config is None:
      raise ValueError("config.model.text_encoder='bert' needs bert_config: pass "
                       'bert_import.read_config(config.model.text_weights).')
    if spec.sentence_pooling not in SENTENCE_POOLINGS or (
        spec.sentence_pooling == 'cls' and not uses_bert):
      raise ValueError(f'config.model.sentence_pooling={spec.sentence_pooling!r}: use '
                       "'mean', or 'cls' with text_encoder='bert'.")
    self.bert = (bert.BertEncoder(bert_config, dtype=dtype,
                                  frozen_layers=spec.text_frozen_layers, rngs=rngs)
                 if uses_bert else None)
    self.text_projection = (nnx.Linear(bert_config.hidden_size, dim, dtype=dtype,
                                       rngs=rngs) if uses_bert else None)
    self.word_embedding = (None if uses_bert else _word_embedding(
        spec, vocab_size, word_embeddings, dtype, rngs))
    self.text_rnn = None if uses_bert else nnx.Bidirectional(
        nnx.RNN(nnx.GRUCell(spec.word_dim, dim, dtype=dtype, rngs=rngs), rngs=False),
        nnx.RNN(nnx.GRUCell(spec.word_dim, dim, dtype=dtype, rngs=rngs), rngs=False),
        merge_fn=_average,
        rngs=False)

    classifier_in = dim if spec.classifier_inputs == 'text' else 3 * dim + 1
    self.classifier_hidden = nnx.Linear(classifier_in, spec.classifier_hidden, rngs=rngs)
    self.classifier_out = nnx.Linear(spec.classifier_hidden, 1, rngs=rngs)

    self.log_temperature = nnx.Param(
        jnp.log(jnp.asarray(spec.init_temperature, jnp.float32)))

  @property
  def painting_input_names(self) -> tuple[str, ...]:
    return REGION_INPUTS if self.pixel_encoder is None else IMAGE_INPUTS

  def encode_painting_inputs(self, inputs: Mapping[str, Array], *,
                             train: bool = False) -> EncodedPaintings:
    """Paintings from a batch (or any mapping) holding this model's painting inputs.

    Detector regions, or uint8 `images` [P, H, W, 3] whose backbone feature map becomes
    the regions; `train` puts a fine-tuned backbone's batch norm in training mode.
    """
    missing = [name for name in self.painting_input_names if name not in inputs]
    if missing:
      path = ('pixels (config.model.backbone set)' if self.pixel_encoder is not None
              else 'region features (config.model.backbone empty)')
      raise KeyError(f'The model encodes paintings from {path} but the inputs lack '
                     f'{missing} (they have {sorted(inputs)}); use the pipeline built '
                     'from the same config.')
    if self.pixel_encoder is None:
      regions, boxes, region_mask = (inputs[name] for name in REGION_INPUTS)
    else:
      regions, boxes, region_mask = self.pixel_encoder(inputs['images'], train=train)
    return EncodedPaintings(self.encode_paintings(regions, boxes, region_mask),
                            region_mask, boxes)

  def encode_paintings(self, regions: Array, boxes: Array, region_mask: Array) -> Array:
    """regions [P, R, F], boxes [P, R, 4] → v [P, R, D], unit norm, zero at padding,
    in the compute dtype."""
    x = self.region_projection(regions)
    if self.box_embedding is not None:
      x = x + self.box_embedding(box_features(boxes))
    return _masked_unit(x, region_mask)

  def encode_sentences(self, tokens: Array, *, dropout_key: Array | None = None,
                       packing: packed_rows.PackedRows | None = None
                       ) -> tuple[Array, Array]:
    """tokens [S, T] (right-padded with 0) → (w [S, T, D], word_mask [S, T]).

    bi-GRU: word ids; each direction starts from a zero carry at its sentence's first
    (forward) or last (backward) real word, so padding never reaches a real word's
    vector. A `dropout_key` (training) turns on word dropout and dropout on the
    embeddings and on the word vectors before their normalisation, drawn per (sentence,
    word) whatever the packing; without one (evaluation) the encoding is deterministic.
    BERT: `[CLS] pieces [SEP]` padded with the pad id (0); the markers are fed to BERT but
    are not words (out of `word_mask`; zero in `w`, except that with sentence_pooling
    'cls' position 0 holds the [CLS] vector for `classify`). A `dropout_key` turns on
    BERT's own dropout.
    `packing` (the train step's, `packed_rows`): the encoder runs over the sentences
    packed end to end into fewer rows instead of one padded row each; the result is the
    same to float rounding.
    """
    if self.bert is not None:
      return self._encode_bert(tokens, packing, dropout_key)
    word_mask = tokens != 0
    unk_key = embed_key = hidden_key = None
    if dropout_key is not None:
      unk_key, embed_key, hidden_key = jax.random.split(dropout_key, 3)
    embedded = self.word_embedding(word_dropout(tokens, self.word_dropout, unk_key))
    embedded = dropout_lib.dropout(embedded, self.dropout, embed_key)
    if packing is None:
      hidden = self._bigru(embedded, jnp.where(word_mask, 0, 1), word_mask)
    else:
      rows = packed_rows.pack(packing, embedded)
      real = packed_rows.pack(packing, word_mask, fill=False)
      hidden = packed_rows.unpack(packing, self._bigru(rows, packing.segments, real),
                                  *tokens.shape)
    w = _masked_unit(dropout_lib.dropout(hidden, self.dropout, hidden_key), word_mask)
    return w, word_mask

  def _encode_bert(self, tokens: Array, packing: packed_rows.PackedRows | None,
                   dropout_key: Array | None) -> tuple[Array, Array]:
    """`encode_sentences` for BERT: one sentence per row, or packed rows where each
    sentence attends to itself and numbers its positions from 0 (BERT's dropout masks
    drawn per sentence position, `bert.DropoutLayout`, so they do not depend on it)."""
    pad = self.bert.config.pad_token_id
    token_mask = tokens != pad
    word_mask = bert.word_piece_mask(token_mask)
    if packing is None:
      hidden = self.bert(tokens, token_mask, dropout_key=dropout_key)
      projected = self.text_projection(hidden)
    else:
      rows = packed_rows.pack(packing, tokens, fill=pad)
      segments = packing.segments
      attends = (segments[:, :, None] == segments[:, None, :]) & (rows != pad)[:, None, :]
      hidden = self.bert(rows, attends, positions=packing.positions, dropout_key=dropout_key,
                         dropout_layout=bert.DropoutLayout(*tokens.shape, packing))
      projected = packed_rows.unpack(packing, self.text_projection(hidden), *tokens.shape)
    kept = word_mask.at[:, 0].set(True) if self.sentence_pooling == 'cls' else word_mask
    return _masked_unit(projected, kept), word_mask

  def _bigru(self, x: Array, segments: Array, real: Array) -> Array:
    """Both GRU directions over rows x [rows, W, F], restarting from a zero carry at every
    segment boundary; their average per position, [rows, W, D] (garbage at padding).

    One scan steps both directions (the backward one over the reversed rows); the input
    projections of all positions are one matrix product each, outside the scan.
    """
    first, last = _segment_edges(segments, real)
    forward, backward = self.text_rnn.forward_rnn.cell, self.text_rnn.backward_rnn.cell
    time_major = lambda a: jnp.swapaxes(a, 0, 1)
    inputs = (time_major(forward.dense_i(x)), time_major(backward.dense_i(x))[::-1],
              time_major(first), time_major(last)[::-1])
    zero = jnp.zeros((x.shape[0], self.embed_dim), self.dtype)

    def step(carry, inputs_t):
      h_forward, h_backward = carry
      x_forward, x_backward, restart_forward, restart_backward = inputs_t
      h_forward = _gru_update(
          forward, jnp.where(restart_forward[:, None], zero, h_forward), x_forward)
      h_backward = _gru_update(
          backward, jnp.where(restart_backward[:, None], zero, h_backward), x_backward)
      return (h_forward, h_backward), (h_forward, h_backward)

    _, (h_forward, h_backward) = jax.lax.scan(step, (zero, zero), inputs)
    return _average(time_major(h_forward), time_major(h_backward[::-1]))

  def pairwise_scores(
      self, v: Array, rmask: Array, w: Array, wmask: Array, block_size: int
  ) -> Array:
    """scores[i, j] = S(painting i, sentence j), [P, S], in blocks of sentences."""
    return self.score_function.pairwise(v, rmask, w, wmask, block_size=block_size)

  def paired_scores(self, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
    """S(painting n, sentence n), [N]."""
    return self.score_function.paired(v, rmask, w, wmask)

  def classify(self, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
    """Logit of p(visual | sentence n, its own painting n), [N].

    Features: the sentence vector u, the region context c its words attend to in its own
    painting, u * c, and S(v, s); with classifier_inputs='text', u alone. u is the mean
    of the word vectors, normalised, or with sentence_pooling 'cls' the [CLS] vector.
    """
    if self.sentence_pooling == 'cls':
      sentence = w[:, 0].astype(jnp.float32)  # unit already (see encode_sentences)
    else:
      sentence = scoring.l2_normalize(scoring.masked_mean(w.astype(jnp.float32), wmask))
    if self.classifier_inputs == 'text':
      features = sentence
    else:
      context = scoring.attended_context(
          v, rmask, w, wmask, lambda_softmax=self.score_function.lambda_softmax)
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


def merge(graphdef: nnx.GraphDef, variables: Variables, *,
          copy: bool = False) -> nnx.Module:
  """Inverse of `split`.

  `copy=True` gives fresh variables, which a forward pass may update (batch norm in
  training mode) inside a jax transform such as `jax.grad`.
  """
  states = [variables['params']]
  if variables['model_state']:
    states.append(variables['model_state'])
  return nnx.merge(graphdef, *states, copy=copy)


def init_model(spec: ModelSpec, *, vocab_size: int, feature_dim: int | None,
               rngs: nnx.Rngs, word_embeddings: np.ndarray | None = None,
               backbone_weights: str = '', bert_config: bert.BertConfig | None = None,
               text_weights: str = '') -> ArtpediaModel:
  """A model to start training from: random init, then the pretrained weights if given.

  `backbone_weights`: a torchvision .safetensors / .pth checkpoint; `text_weights`: a
  BERT's Hugging Face model folder (its shape is `bert_config`); '' keeps the random
  init.
  """
  model = ArtpediaModel(spec, vocab_size=vocab_size, feature_dim=feature_dim, rngs=rngs,
                        word_embeddings=word_embeddings, bert_config=bert_config)
  if model.pixel_encoder is not None and backbone_weights:
    load_backbone_weights(model.pixel_encoder, backbone_weights)
  if model.bert is not None and text_weights:
    bert_import.load_weights(model.bert, text_weights)
  return model
