"""Painting–sentence scores S(v, s): pure functions, no parameters.

Inputs follow docs/design.md §5.1: `v` [P, R, D] region vectors with `rmask` [P, R],
`w` [S, T, D] word vectors with `wmask` [S, T]. Every scorer has one *core*, an all-pairs
function `core(v, rmask, w, wmask) -> [P, S]`, and two generic drivers derive the forms the
rest of the code uses:

* `paired`: sentence n against painting n, `[N]` (the classifier, the positives);
* `pairwise`: all pairs in blocks of sentences, `[P, S]`, with each block rematerialised
  in the backward pass, so that memory (forward and backward) stays at
  P × block × R × T instead of P × S × R × T.

Cores never trust the values at padding (they mask them), so padding never changes a
result, whatever the encoder left there. `v` and `w` may be bfloat16 (`config.model.dtype`):
the contractions accumulate and return float32, so scores are float32 either way.
"""

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
Core = Callable[[Array, Array, Array, Array], Array]

# Finite stand-in for -inf (here and in the losses): keeps masked maxima and softmaxes
# free of inf - inf = NaN.
MASKED = -1e9
_EPS = 1e-8


def safe_norm(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
  """‖x‖ along `axis`, floored at a tiny epsilon so that its gradient at 0 is finite."""
  squared_norm = jnp.sum(x * x, axis=axis, keepdims=keepdims)
  return jnp.sqrt(jnp.maximum(squared_norm, _EPS**2))


def l2_normalize(x: Array, axis: int = -1) -> Array:
  """x / ‖x‖ along `axis`; zero vectors stay zero with finite gradients."""
  return x / safe_norm(x, axis=axis, keepdims=True)


def masked_mean(x: Array, mask: Array) -> Array:
  """Mean of x [..., N, D] over the positions where mask [..., N]; zero if none."""
  weights = mask.astype(x.dtype)[..., None]
  count = jnp.maximum(jnp.sum(weights, axis=-2), 1.0)
  return jnp.sum(x * weights, axis=-2) / count


def region_word_scores(v: Array, w: Array) -> Array:
  """s[p, j, r, t] = ⟨v_r(p), w_t(j)⟩ in float32: the one large contraction every scorer
  shares."""
  return jnp.einsum('prd,std->psrt', v, w, preferred_element_type=jnp.float32)


def word_region_scores(v: Array, w: Array) -> Array:
  """s[p, j, t, r] = ⟨w_t(j), v_r(p)⟩ in float32: `region_word_scores` with regions on the
  minor axis, the layout of SCAN's per-word attention (its softmax, Gram contraction and
  sums all run over regions: contiguous there, strided with words minor)."""
  return jnp.einsum('prd,std->pstr', v, w, preferred_element_type=jnp.float32)


def _masked_word_region_scores(v, rmask, w, wmask) -> Array:
  """Word–region scores [P, S, T, R] with every pair touching padding set to 0."""
  s = word_region_scores(v, w)
  pair_mask = rmask[:, None, None, :] & wmask[None, :, :, None]
  return jnp.where(pair_mask, s, 0.0)


def _mean_over_words(per_word: Array, wmask: Array) -> Array:
  """(1/|s|) Σ_t per_word[p, j, t] over real words of sentence j; 0 for empty ones."""
  weights = wmask[None].astype(per_word.dtype)
  return jnp.sum(per_word * weights, -1) / jnp.maximum(jnp.sum(weights, -1), 1.0)


def _region_softmax(logits: Array, rmask: Array) -> Array:
  """Softmax over the region axis (-1) of logits [P, S, T, R], padded regions excluded."""
  return jax.nn.softmax(jnp.where(rmask[:, None, None, :], logits, MASKED), axis=-1)


def align(v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
  """S(v, s) = (1/|s|) Σ_t max_r ⟨v_r, w_t⟩ over real words and regions, [P, S]."""
  s = jnp.where(rmask[:, None, :, None], region_word_scores(v, w), MASKED)
  best_region = jnp.max(s, axis=-2)
  has_region = jnp.any(rmask, axis=-1)[:, None, None]
  return _mean_over_words(jnp.where(has_region, best_region, 0.0), wmask)


def clipped_l2norm(s: Array) -> Array:
  """SCAN's attention normalisation of s [..., T, R]: leaky ReLU, then L2 over the word
  axis (-2)."""
  return l2_normalize(jax.nn.leaky_relu(s, 0.1), axis=-2)


def text_to_image_attention(
    s: Array, rmask: Array, lambda_softmax: float
) -> Array:
  """a[p, j, t, r]: attention of word t of sentence j on region r of painting p, from the
  word–region scores s [P, S, T, R]."""
  return _region_softmax(lambda_softmax * clipped_l2norm(s), rmask)


def scan_t2i(
    v: Array,
    rmask: Array,
    w: Array,
    wmask: Array,
    *,
    lambda_softmax: float,
    lambda_lse: float,
) -> Array:
  """SCAN text-to-image (Lee et al. 2018) with LogSumExp pooling over words, [P, S].

  R_t = cos(w_t, c_t) with c_t = Σ_r a_rt v_r, computed without materialising c_t
  (D times larger than s): ⟨w_t, c_t⟩ = Σ_r a_rt s_rt and ‖c_t‖² = a_tᵀ G a_t with
  G = V Vᵀ the R × R Gram matrix of each painting's regions. Scores are laid out
  [P, S, T, R] (`word_region_scores`): every step after the contraction reduces or
  contracts over regions, and the Gram product is then one [S·T, R] @ [R, R] matrix
  product per painting, with no transposes (`bench/eval_scoring.py` measures it).
  """
  s = _masked_word_region_scores(v, rmask, w, wmask)
  a = text_to_image_attention(s, rmask, lambda_softmax)
  v_real = jnp.where(rmask[..., None], v, 0.0)
  gram = jnp.einsum('prd,pqd->prq', v_real, v_real, preferred_element_type=jnp.float32)
  word_dot_context = jnp.sum(a * s, axis=-1)
  context_sq_norm = jnp.sum(a * jnp.einsum('pstq,prq->pstr', a, gram), axis=-1)
  word_norm = safe_norm(jnp.where(wmask[..., None], w, 0.0).astype(jnp.float32))
  norms = jnp.sqrt(jnp.maximum(context_sq_norm, _EPS**2)) * word_norm[None]
  relevance = word_dot_context / jnp.maximum(norms, _EPS)
  logits = jnp.where(wmask[None], lambda_lse * relevance, MASKED)
  pooled_words = jax.nn.logsumexp(logits, axis=-1) / lambda_lse
  has_pair = jnp.any(rmask, axis=-1)[:, None] & jnp.any(wmask, axis=-1)[None]
  return jnp.where(has_pair, pooled_words, 0.0)


def global_embeddings(
    v: Array, rmask: Array, w: Array, wmask: Array
) -> tuple[Array, Array]:
  """Unit-norm masked means of regions [P, D] and of words [S, D] (VSE++-style), float32."""
  f32 = lambda x: x.astype(jnp.float32)
  return l2_normalize(masked_mean(f32(v), rmask)), l2_normalize(masked_mean(f32(w), wmask))


def pooled(v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
  """Cosine of the global painting and sentence embeddings, [P, S]."""
  painting, sentence = global_embeddings(v, rmask, w, wmask)
  return painting @ sentence.T


def attended_context(
    v: Array, rmask: Array, w: Array, wmask: Array, *, lambda_softmax: float
) -> Array:
  """Unit-norm average over real words of Σ_r a_rt v_r, sentence n in painting n, [N, D].

  The region context the classifier sees: what each word of a sentence points at in its
  own painting. Paired only, so materialising the per-word context is cheap.
  """
  def one_pair(v_n, rmask_n, w_n, wmask_n):
    s = _masked_word_region_scores(v_n[None], rmask_n[None], w_n[None], wmask_n[None])
    a = text_to_image_attention(s, rmask_n[None], lambda_softmax)[0, 0]
    context = jnp.einsum('tr,rd->td', a, jnp.where(rmask_n[:, None], v_n, 0.0),
                         preferred_element_type=jnp.float32)
    return l2_normalize(masked_mean(context, wmask_n))

  return jax.vmap(one_pair)(v, rmask, w, wmask)


def paired(core: Core, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
  """core on each (painting n, sentence n), [N]: the diagonal without the square."""
  def one_pair(v_n, rmask_n, w_n, wmask_n):
    return core(v_n[None], rmask_n[None], w_n[None], wmask_n[None])[0, 0]

  return jax.vmap(one_pair)(v, rmask, w, wmask)


def pairwise(
    core: Core,
    v: Array,
    rmask: Array,
    w: Array,
    wmask: Array,
    *,
    block_size: int,
) -> Array:
  """core on all pairs, [P, S], over blocks of `block_size` sentences.

  Sentences are padded up to a multiple of the block (padded ones are empty and sliced
  off). Each block is checkpointed, so the backward pass recomputes its P × block × R × T
  intermediates instead of keeping those of every block.
  """
  if block_size < 1:
    raise ValueError(f'block_size must be a positive integer, got {block_size}.')
  num_sentences = w.shape[0]
  block = min(block_size, num_sentences)
  num_blocks = -(-num_sentences // block)
  pad = num_blocks * block - num_sentences
  w_blocks = jnp.pad(w, ((0, pad), (0, 0), (0, 0))).reshape(
      num_blocks, block, *w.shape[1:])
  wmask_blocks = jnp.pad(wmask, ((0, pad), (0, 0))).reshape(
      num_blocks, block, wmask.shape[1])

  @functools.partial(jax.checkpoint, prevent_cse=False)
  def score_block(block_inputs):
    return core(v, rmask, *block_inputs)

  blocks = jax.lax.map(score_block, (w_blocks, wmask_blocks))  # [blocks, P, block]
  scores = jnp.moveaxis(blocks, 0, 1).reshape(v.shape[0], num_blocks * block)
  return scores[:, :num_sentences]


_CORES: dict[str, Core] = {'align': align, 'scan_t2i': scan_t2i, 'pooled': pooled}
SCORERS = tuple(_CORES)  # the values of config.model.score
_USES_LAMBDAS = frozenset({'scan_t2i'})


@dataclasses.dataclass(frozen=True)
class ScoreFunction:
  """S(v, s) by name (`align`, `scan_t2i`, `pooled`) with its hyper-parameters: the
  paired and all-pairs forms of one score function; hashable, so it can sit in a module."""

  name: str
  lambda_softmax: float = 9.0
  lambda_lse: float = 6.0

  @property
  def core(self) -> Core:
    core = _CORES[self.name]
    if self.name in _USES_LAMBDAS:
      return functools.partial(
          core, lambda_softmax=self.lambda_softmax, lambda_lse=self.lambda_lse)
    return core

  def paired(self, v: Array, rmask: Array, w: Array, wmask: Array) -> Array:
    return paired(self.core, v, rmask, w, wmask)

  def pairwise(
      self, v: Array, rmask: Array, w: Array, wmask: Array, *, block_size: int
  ) -> Array:
    return pairwise(self.core, v, rmask, w, wmask, block_size=block_size)


def get_score_function(
    name: str, *, lambda_softmax: float = 9.0, lambda_lse: float = 6.0
) -> ScoreFunction:
  """The scorer `config.model.score` names; lambdas are used by `scan_t2i` only."""
  if name not in _CORES:
    raise ValueError(
        f'Unknown score {name!r}: set config.model.score to one of {sorted(_CORES)}.')
  return ScoreFunction(name, float(lambda_softmax), float(lambda_lse))
