"""A BERT encoder (Devlin et al., 2019) in Flax NNX, shaped like the public checkpoints.

Embeddings (word + absolute position + token type, then LayerNorm), then post-LN
transformer layers: x = LN(x + attention(x)); x = LN(x + W2 gelu(W1 x)), with the exact
(erf) GELU that BERT uses. Padding positions are masked out of every attention, so a
sentence's hidden states do not depend on how much padding follows it; a row may also hold
several sentences end to end (packed, see `model.packed_rows`), each attending to itself
only and numbering its own positions from 0, which encodes each as if it were alone.
Attention goes through `jax.nn.dot_product_attention` (XLA's fused attention, cuDNN's
where JAX selects it).

`dtype` is the compute dtype of the matrix products (e.g. bfloat16); parameters, the
LayerNorms, the softmax and the residual stream stay float32, and the output is float32.
Pretrained weights come in through `bert_import`.

Dropout is BERT's own, where it was pre-trained with it (its `config.json` rates): on the
embeddings' output, on the attention probabilities, and on each block's output before
its residual sum. It is on only when a call passes a `dropout_key` (training); the key
is a function of the run's seed and step (see `train.step.dropout_key`), so the encoder
keeps no RNG state and a resumed run draws the same masks. The masks are drawn per
(sentence, position) and laid out as the rows are (`DropoutLayout`), so packed rows drop
what padded ones drop: the result depends neither on the packing nor on the device count.

`frozen_layers` = k > 0 stops the gradient after the embeddings and the first k layers:
their parameters get exactly zero gradients (none is computed for them), so they neither
move nor count in the gradient's global norm.
"""

import dataclasses
import math
from typing import NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp

from artpedia_jax.model import dropout as dropout_lib
from artpedia_jax.model import packed_rows

Array = jax.Array
_INIT_STD = 0.02  # BERT's initializer_range: random init when no weights are imported


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The architecture's sizes (the fields of a Hugging Face BERT `config.json`)."""
  vocab_size: int
  hidden_size: int
  num_layers: int
  num_heads: int
  intermediate_size: int
  max_positions: int
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  pad_token_id: int = 0
  # Training-only dropout rates (config.json's hidden_dropout_prob and
  # attention_probs_dropout_prob); 0 in checkpoints saved before they existed.
  hidden_dropout: float = 0.0
  attention_dropout: float = 0.0

  def __post_init__(self):
    if self.hidden_size % self.num_heads:
      raise ValueError(f'hidden_size={self.hidden_size} is not divisible by '
                       f'num_heads={self.num_heads}.')


# The shape of bert-base-uncased (110M parameters with the pooler).
BERT_BASE = BertConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
                       intermediate_size=3072, max_positions=512)


class DropoutLayout(NamedTuple):
  """Where the encoder's dropout masks come from: drawn over the `num_sentences` sentences
  of `width` positions, then laid out as the rows are: one sentence a row (no `packing`)
  or packed end to end (`packed_rows`)."""
  num_sentences: int
  width: int
  packing: packed_rows.PackedRows | None = None

  def hidden_keep(self, key: Array, rate: float, features: int) -> Array:
    """bool [rows, W, features]: the hidden entries dropout keeps."""
    keep = dropout_lib.keep_mask(key, rate, (self.num_sentences, self.width, features))
    return keep if self.packing is None else packed_rows.pack(self.packing, keep, fill=False)

  def attention_keep(self, key: Array, rate: float, heads: int) -> Array:
    """bool [rows, heads, W, W]: the attention probabilities (query, key) dropout keeps."""
    keep = dropout_lib.keep_mask(key, rate, (self.num_sentences, self.width, self.width, heads))
    if self.packing is not None:
      keep = packed_rows.pack_pairs(self.packing, keep, fill=False)
    return jnp.moveaxis(keep, -1, 1)


def _hidden_dropout(x: Array, rate: float, key: Array | None,
                    layout: DropoutLayout) -> Array:
  if key is None or not rate:
    return x
  return dropout_lib.apply_keep(x, layout.hidden_keep(key, rate, x.shape[-1]), rate)


def _linear(in_features: int, out_features: int, dtype, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(in_features, out_features, dtype=dtype, param_dtype=jnp.float32,
                    kernel_init=nnx.initializers.normal(_INIT_STD), rngs=rngs)


def _layer_norm(features: int, epsilon: float, rngs: nnx.Rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(features, epsilon=epsilon, dtype=jnp.float32,
                       use_fast_variance=False, rngs=rngs)


def _embed(count: int, features: int, rngs: nnx.Rngs) -> nnx.Embed:
  return nnx.Embed(count, features, embedding_init=nnx.initializers.normal(_INIT_STD),
                   rngs=rngs)


class BertEmbeddings(nnx.Module):
  """Word + position + token-type embeddings, LayerNorm-ed."""

  def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
    self.word = _embed(config.vocab_size, config.hidden_size, rngs)
    self.position = _embed(config.max_positions, config.hidden_size, rngs)
    self.token_type = _embed(config.type_vocab_size, config.hidden_size, rngs)
    self.norm = _layer_norm(config.hidden_size, config.layer_norm_eps, rngs)

  def __call__(self, token_ids: Array, token_type_ids: Array,
               positions: Array | None = None) -> Array:
    """The LayerNorm-ed sum, before dropout. `positions` [B, T]: each token's position id
    (default: its index in the row)."""
    length = token_ids.shape[-1]
    if length > self.position.num_embeddings:
      raise ValueError(f'Sequences of {length} tokens exceed the encoder\'s '
                       f'{self.position.num_embeddings} positions: lower '
                       'config.dataset.max_words.')
    if positions is None:
      positions = jnp.arange(length)
    x = (self.word(token_ids) + self.position(positions)
         + self.token_type(token_type_ids))
    return self.norm(x)


class BertLayer(nnx.Module):
  """Multi-head self-attention and a GELU feed-forward block, each add-then-LayerNorm."""

  def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
    hidden, inner = config.hidden_size, config.intermediate_size
    self.num_heads = config.num_heads
    self.hidden_dropout = config.hidden_dropout
    self.attention_dropout = config.attention_dropout
    self.query = _linear(hidden, hidden, dtype, rngs)
    self.key = _linear(hidden, hidden, dtype, rngs)
    self.value = _linear(hidden, hidden, dtype, rngs)
    self.attention_output = _linear(hidden, hidden, dtype, rngs)
    self.attention_norm = _layer_norm(hidden, config.layer_norm_eps, rngs)
    self.intermediate = _linear(hidden, inner, dtype, rngs)
    self.output = _linear(inner, hidden, dtype, rngs)
    self.output_norm = _layer_norm(hidden, config.layer_norm_eps, rngs)

  def _heads(self, x: Array) -> Array:
    """[B, T, H] → [B, T, heads, H / heads]."""
    return x.reshape(*x.shape[:-1], self.num_heads, -1)

  def attention(self, x: Array, mask: Array, dropout_key: Array | None = None,
                dropout_layout: DropoutLayout | None = None) -> Array:
    """Self-attention over the keys `mask` allows: [B, T] the real tokens of each row, or
    [B, T, T] per query (packed rows). Logits and softmax in float32.

    Without dropout (evaluation, inference, or a zero rate) through
    `jax.nn.dot_product_attention`, the backend's fused kernel where it has one; a
    `dropout_key` (training) forms the probabilities explicitly so that dropout can drop
    them, as BERT was trained (masks from `dropout_layout`).
    """
    q, k, v = (self._heads(layer(x)) for layer in (self.query, self.key, self.value))
    mask = mask[:, None, None, :] if mask.ndim == 2 else mask[:, None]
    if dropout_key is None or not self.attention_dropout:
      context = jax.nn.dot_product_attention(q, k, v, mask=mask)
    else:
      logits = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32)
      logits = jnp.where(mask, logits / math.sqrt(q.shape[-1]),
                         jnp.finfo(jnp.float32).min)
      keep = dropout_layout.attention_keep(dropout_key, self.attention_dropout,
                                           self.num_heads)
      weights = dropout_lib.apply_keep(jax.nn.softmax(logits, axis=-1), keep,
                                       self.attention_dropout)
      context = jnp.einsum('bhqk,bkhd->bqhd', weights.astype(v.dtype), v)
    return self.attention_output(context.reshape(x.shape))

  def __call__(self, x: Array, mask: Array, dropout_key: Array | None = None,
               dropout_layout: DropoutLayout | None = None) -> Array:
    """One layer; a `dropout_key` (training) turns on its dropout, its masks drawn as
    `dropout_layout` says."""
    keys = [None] * 3 if dropout_key is None else list(jax.random.split(dropout_key, 3))
    attended = _hidden_dropout(self.attention(x, mask, keys[0], dropout_layout),
                               self.hidden_dropout, keys[1], dropout_layout)
    x = self.attention_norm(x + attended)
    inner = jax.nn.gelu(self.intermediate(x), approximate=False)
    output = _hidden_dropout(self.output(inner), self.hidden_dropout, keys[2],
                             dropout_layout)
    return self.output_norm(x + output)


class BertEncoder(nnx.Module):
  """Token ids [B, T] → last-layer hidden states [B, T, hidden_size] (float32)."""

  def __init__(self, config: BertConfig, *, dtype=jnp.float32, frozen_layers: int = 0,
               rngs: nnx.Rngs):
    """`frozen_layers` = k > 0: no gradient reaches the embeddings and layers 1..k."""
    if not 0 <= frozen_layers <= config.num_layers:
      raise ValueError(f'frozen_layers={frozen_layers}: the encoder has '
                       f'{config.num_layers} layers (config.model.text_frozen_layers).')
    self.config = config
    self.frozen_layers = frozen_layers
    self.embeddings = BertEmbeddings(config, rngs=rngs)
    self.layers = nnx.List(
        [BertLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_layers)])

  def __call__(self, token_ids: Array, mask: Array | None = None,
               token_type_ids: Array | None = None, positions: Array | None = None, *,
               dropout_key: Array | None = None,
               dropout_layout: DropoutLayout | None = None) -> Array:
    """`mask` [B, T]: real tokens (default: ids other than the config's pad id), or
    [B, T, T]: the keys each query attends to; `positions` [B, T]: position ids
    (default: the index in the row); `dropout_key`: training, BERT's dropout on (see the
    module docstring), its masks drawn as `dropout_layout` says (default: a sentence a
    row)."""
    if dropout_layout is None:
      dropout_layout = DropoutLayout(*token_ids.shape)
    if mask is None:
      mask = token_ids != self.config.pad_token_id
    if token_type_ids is None:
      token_type_ids = jnp.zeros_like(token_ids)
    # One key per stage: the embeddings, then each layer.
    keys = ([None] * (len(self.layers) + 1) if dropout_key is None
            else list(jax.random.split(dropout_key, len(self.layers) + 1)))
    x = _hidden_dropout(self.embeddings(token_ids, token_type_ids, positions),
                        self.config.hidden_dropout, keys[0], dropout_layout)
    for index, layer in enumerate(self.layers, start=1):
      x = layer(x, mask, keys[index], dropout_layout)
      if index == self.frozen_layers:  # the frozen part ends here
        x = jax.lax.stop_gradient(x)
    return x


def abstract_encoder(config: BertConfig, dtype=jnp.float32) -> BertEncoder:
  """The encoder's structure and shapes without allocating its parameters."""
  return nnx.eval_shape(lambda: BertEncoder(config, dtype=dtype, rngs=nnx.Rngs(0)))


def parameter_count(encoder: BertEncoder) -> int:
  """Number of trainable scalars (works on an abstract encoder too)."""
  return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(encoder, nnx.Param)))


def word_piece_mask(token_mask: Array) -> Array:
  """The alignment words of `[CLS] pieces [SEP] [PAD]...` rows: the pieces only.

  `token_mask` [B, T] marks the real tokens (markers included); the result drops each
  row's first ([CLS]) and last real ([SEP]) position.
  """
  positions = jnp.arange(token_mask.shape[-1])
  lengths = jnp.sum(token_mask, axis=-1, keepdims=True)
  return token_mask & (positions > 0) & (positions < lengths - 1)
