"""Scorers against plain numpy references on the unpadded data, and the blocked forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.model import scoring

LAMBDA_SOFTMAX = 9.0
LAMBDA_LSE = 6.0
NAMES = ('align', 'scan_t2i', 'pooled')


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _padded_inputs(seed, num_paintings=5, num_sentences=7, regions=6, words=5, dim=8):
  """Unit vectors with ragged lengths; padding holds garbage that must not matter."""
  rng = np.random.default_rng(seed)
  v = rng.normal(size=(num_paintings, regions, dim)).astype(np.float32)
  w = rng.normal(size=(num_sentences, words, dim)).astype(np.float32)
  num_regions = rng.integers(1, regions + 1, num_paintings)
  num_regions[0] = regions
  num_words = rng.integers(1, words + 1, num_sentences)
  num_words[0] = words
  rmask = np.arange(regions)[None] < num_regions[:, None]
  wmask = np.arange(words)[None] < num_words[:, None]
  return _unit(v), rmask, _unit(w), wmask


def _numpy_align(v, w):
  return np.mean(np.max(v @ w.T, axis=0))


def _numpy_scan_t2i(v, w):
  """SCAN t2i in its direct form: the attended context c_t is materialised."""
  s = v @ w.T  # [r, t]
  s = np.where(s > 0, s, 0.1 * s)
  s = s / np.linalg.norm(s, axis=1, keepdims=True)
  logits = LAMBDA_SOFTMAX * s
  a = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
  c = a.T @ v  # [t, D]
  relevance = np.sum(w * c, -1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(c, axis=-1))
  return np.log(np.sum(np.exp(LAMBDA_LSE * relevance))) / LAMBDA_LSE


def _numpy_pooled(v, w):
  return np.dot(_unit(v.mean(0)), _unit(w.mean(0)))


NUMPY_REFERENCES = {
    'align': _numpy_align, 'scan_t2i': _numpy_scan_t2i, 'pooled': _numpy_pooled}


def _scorer(name):
  return scoring.get_score_function(name, lambda_softmax=LAMBDA_SOFTMAX, lambda_lse=LAMBDA_LSE)


def _pairwise(scorer, *args, block_size):
  """Jitted, so that a test compiles once instead of dispatching every op eagerly."""
  return jax.jit(scorer.pairwise, static_argnames='block_size')(*args, block_size=block_size)


@pytest.mark.parametrize('name', NAMES)
def test_pairwise_on_padded_inputs_equals_numpy_on_unpadded(name):
  v, rmask, w, wmask = _padded_inputs(seed=0)
  scores = _pairwise(_scorer(name), v, rmask, w, wmask, block_size=3)
  expected = np.array([
      [NUMPY_REFERENCES[name](v[i][rmask[i]], w[j][wmask[j]]) for j in range(len(w))]
      for i in range(len(v))])
  np.testing.assert_allclose(scores, expected, atol=1e-5)


@pytest.mark.parametrize('name', NAMES)
def test_extra_padding_changes_nothing(name):
  v, rmask, w, wmask = _padded_inputs(seed=1)
  more_v = np.pad(v, ((0, 0), (0, 3), (0, 0)), constant_values=0.5)
  more_w = np.pad(w, ((0, 0), (0, 2), (0, 0)), constant_values=-0.5)
  scorer = _scorer(name)
  np.testing.assert_allclose(
      _pairwise(scorer, more_v, np.pad(rmask, ((0, 0), (0, 3))),
                more_w, np.pad(wmask, ((0, 0), (0, 2))), block_size=4),
      _pairwise(scorer, v, rmask, w, wmask, block_size=4), atol=1e-6)


@pytest.mark.parametrize('name', NAMES)
def test_pairwise_equals_paired_over_all_pairs(name):
  v, rmask, w, wmask = _padded_inputs(seed=2)
  p, s = len(v), len(w)
  scorer = _scorer(name)
  paired = jax.jit(scorer.paired)(
      np.repeat(v, s, 0), np.repeat(rmask, s, 0), np.tile(w, (p, 1, 1)),
      np.tile(wmask, (p, 1)))
  np.testing.assert_allclose(
      _pairwise(scorer, v, rmask, w, wmask, block_size=2), paired.reshape(p, s), atol=1e-6)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('block_size', [1, 3, 4, 100])
def test_blocked_equals_unblocked(name, block_size):
  v, rmask, w, wmask = _padded_inputs(seed=3, num_sentences=8)
  scorer = _scorer(name)
  np.testing.assert_allclose(
      _pairwise(scorer, v, rmask, w, wmask, block_size=block_size),
      jax.jit(scorer.core)(v, rmask, w, wmask), atol=1e-6)


def _contrastive_loss(scores):
  """A loss that touches every entry of the score matrix, for gradient checks."""
  return jnp.sum(jax.nn.log_softmax(5.0 * scores, axis=1) * jnp.eye(*scores.shape))


@pytest.mark.parametrize('name', NAMES)
def test_gradients_of_blocked_equal_unblocked(name):
  v, rmask, w, wmask = _padded_inputs(seed=4, num_sentences=7)
  scorer = _scorer(name)

  def blocked(v, w):
    return _contrastive_loss(scorer.pairwise(v, rmask, w, wmask, block_size=3)[:, :5])

  def unblocked(v, w):
    return _contrastive_loss(scorer.core(v, rmask, w, wmask)[:, :5])

  got = jax.jit(jax.grad(blocked, argnums=(0, 1)))(v, w)
  want = jax.jit(jax.grad(unblocked, argnums=(0, 1)))(v, w)
  for g, e in zip(got, want):
    assert np.all(np.isfinite(g))
    assert np.abs(e).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(g, e, atol=1e-5)


@pytest.mark.parametrize('name', ['align', 'scan_t2i'])
def test_empty_sentence_and_painting_score_zero_with_finite_gradients(name):
  v, rmask, w, wmask = _padded_inputs(seed=5)
  rmask[1] = False
  wmask[2] = False
  scorer = _scorer(name)
  scores = _pairwise(scorer, v, rmask, w, wmask, block_size=4)
  assert np.all(scores[1] == 0) and np.all(scores[:, 2] == 0)
  grads = jax.jit(jax.grad(
      lambda v, w: jnp.sum(scorer.pairwise(v, rmask, w, wmask, block_size=4)),
      argnums=(0, 1)))(v, w)
  assert all(np.all(np.isfinite(g)) for g in grads)


def _backward_temp_bytes(pairwise_fn, batch, regions=16, words=12, dim=16):
  v = jnp.zeros((batch, regions, dim))
  w = jnp.zeros((batch, words, dim))
  rmask = jnp.ones((batch, regions), bool)
  wmask = jnp.ones((batch, words), bool)
  loss = lambda v, w: _contrastive_loss(pairwise_fn(v, rmask, w, wmask))
  compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(v, w).compile()
  return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize('name', ['align', 'scan_t2i'])
def test_backward_memory_grows_linearly_with_batch(name):
  """At fixed block size, 4× the batch must not cost 16× the memory (P × S × R × T)."""
  scorer = _scorer(name)
  blocked = lambda *args: scorer.pairwise(*args, block_size=8)
  ratio = _backward_temp_bytes(blocked, 256) / _backward_temp_bytes(blocked, 64)
  assert ratio < 6, ratio
  # The measure can tell: the unblocked form grows with the square of the batch.
  unblocked_ratio = (
      _backward_temp_bytes(scorer.core, 256) / _backward_temp_bytes(scorer.core, 64))
  assert unblocked_ratio > 12, unblocked_ratio


def test_attended_context_matches_numpy_on_unpadded():
  v, rmask, w, wmask = _padded_inputs(seed=6, num_paintings=4, num_sentences=4)
  context = jax.jit(scoring.attended_context, static_argnames='lambda_softmax')(
      v, rmask, w, wmask, lambda_softmax=LAMBDA_SOFTMAX)
  for n in range(4):
    regions, words = v[n][rmask[n]], w[n][wmask[n]]
    s = regions @ words.T
    s = np.where(s > 0, s, 0.1 * s)
    s = LAMBDA_SOFTMAX * s / np.linalg.norm(s, axis=1, keepdims=True)
    a = np.exp(s - s.max(0)) / np.exp(s - s.max(0)).sum(0)
    np.testing.assert_allclose(context[n], _unit((a.T @ regions).mean(0)), atol=1e-5)


def test_unknown_scorer_names_the_known_ones():
  with pytest.raises(ValueError, match=r"'align', 'pooled', 'scan_t2i'"):
    scoring.get_score_function('cosine')


def test_scorer_is_hashable_and_compares_by_value():
  assert _scorer('scan_t2i') == _scorer('scan_t2i')
  assert hash(_scorer('align')) == hash(_scorer('align'))
  assert _scorer('scan_t2i') != scoring.get_score_function('scan_t2i', lambda_lse=1.0)
