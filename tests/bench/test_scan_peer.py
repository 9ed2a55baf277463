"""The SCAN peer of bench/scan_vs_ours.py computes what our scan_t2i and hinge compute,
where the formulas are meant to agree (skipped without torch, not a dependency)."""

import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.model import scoring
from artpedia_jax.train import losses

torch = pytest.importorskip('torch')
scan_peer = pytest.importorskip('bench.scan_peer')


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_t2i_scores_with_logsumexp_equal_our_scan_t2i():
  rng = np.random.default_rng(0)
  v = _unit(rng.normal(size=(3, 6, 8))).astype(np.float32)
  w = _unit(rng.normal(size=(4, 5, 8))).astype(np.float32)
  lengths = np.asarray([5, 3, 1, 4])
  wmask = np.arange(5)[None] < lengths[:, None]
  w = np.where(wmask[..., None], w, 0.0).astype(np.float32)

  peer = scan_peer.t2i_scores(torch.from_numpy(v), torch.from_numpy(w),
                              torch.from_numpy(lengths), lambda_softmax=9.0,
                              lambda_lse=6.0).numpy()
  ours = scoring.scan_t2i(jnp.asarray(v), jnp.ones((3, 6), bool), jnp.asarray(w),
                          jnp.asarray(wmask), lambda_softmax=9.0, lambda_lse=6.0)
  np.testing.assert_allclose(peer, np.asarray(ours), atol=1e-5)
  average = scan_peer.t2i_scores(torch.from_numpy(v), torch.from_numpy(w),
                                 torch.from_numpy(lengths), lambda_softmax=9.0).numpy()
  assert np.all(average <= peer + 1e-6)  # LogSumExp bounds the mean from above


def test_summed_hinge_is_batch_size_times_our_mean_hinge():
  scores = np.random.default_rng(1).uniform(-1, 1, (5, 5)).astype(np.float32)
  peer = scan_peer.hardest_negative_hinge(torch.from_numpy(scores), margin=0.2)
  ours = losses.hinge_loss(jnp.asarray(scores), jnp.eye(5, dtype=bool), margin=0.2,
                           max_violation=True)
  np.testing.assert_allclose(float(peer), 5 * float(ours), rtol=1e-6)


def test_packed_sentence_encoding_ignores_the_other_sentences():
  torch.manual_seed(0)
  encoder = scan_peer.SentenceEncoder(vocab_size=50, word_dim=6, embed_dim=8)
  tokens = torch.randint(1, 50, (3, 7))
  lengths = torch.tensor([7, 4, 2])
  with torch.no_grad():
    batch = encoder(tokens, lengths)
    alone = encoder(tokens[1:2, :4], lengths[1:2])
  np.testing.assert_allclose(batch[1, :4].numpy(), alone[0].numpy(), atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(batch[1, :4].numpy(), axis=-1), 1.0, atol=1e-5)
  assert batch.shape == (3, 7, 8) and np.all(batch[2, 2:].numpy() == 0)
