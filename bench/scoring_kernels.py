"""Micro-benchmark of the pairwise scorers (docs/design.md §5.4, the Gram-matrix form).

Prints, per scorer, the time of one jitted forward+backward of a contrastive loss over
the pairwise scores, and for `scan_t2i` the ratio against the direct form that
materialises the attended context c_t ([P, S, T, D], D times the score tensor).

  python bench/scoring_kernels.py --batch=128 --regions=36 --words=40 --dim=1024
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from artpedia_jax.model import scoring

LAMBDA_SOFTMAX = 9.0
LAMBDA_LSE = 6.0


def scan_t2i_direct(v, rmask, w, wmask):
  """SCAN t2i with c_t materialised: the reference the Gram form must match."""
  s = jnp.where(rmask[:, None, None, :] & wmask[None, :, :, None],
                scoring.word_region_scores(v, w), 0.0)
  a = scoring.text_to_image_attention(s, rmask, LAMBDA_SOFTMAX)
  context = jnp.einsum('pstr,prd->pstd', a, v)
  relevance = jnp.sum(w[None] * context, -1) / jnp.maximum(
      scoring.safe_norm(w)[None] * scoring.safe_norm(context), 1e-8)
  logits = jnp.where(wmask[None], LAMBDA_LSE * relevance, -1e9)
  return jax.nn.logsumexp(logits, axis=-1) / LAMBDA_LSE


def _loss(scores):
  return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(10.0 * scores, axis=1)))


def _time(fn, args, repeats):
  """Best wall time of `repeats` runs after a compile-and-warm-up run."""
  jax.block_until_ready(fn(*args))
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--regions', type=int, default=36)
  parser.add_argument('--words', type=int, default=40)
  parser.add_argument('--dim', type=int, default=256)
  parser.add_argument('--block_size', type=int, default=32)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  v = jnp.asarray(unit(rng.normal(size=(args.batch, args.regions, args.dim))), jnp.float32)
  w = jnp.asarray(unit(rng.normal(size=(args.batch, args.words, args.dim))), jnp.float32)
  rmask = jnp.ones((args.batch, args.regions), bool)
  wmask = jnp.ones((args.batch, args.words), bool)
  inputs = (v, w)
  print(f'{jax.devices()[0].platform}: batch {args.batch}, {args.regions} regions, '
        f'{args.words} words, D={args.dim}, block {args.block_size}')

  def step(core):
    loss = lambda v, w: _loss(core(v, rmask, w, wmask))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

  seconds = {}
  for name in ('align', 'scan_t2i', 'pooled'):
    scorer = scoring.get_score_function(name, lambda_softmax=LAMBDA_SOFTMAX, lambda_lse=LAMBDA_LSE)
    blocked = lambda v, rmask, w, wmask, s=scorer: s.pairwise(
        v, rmask, w, wmask, block_size=args.block_size)
    seconds[name] = _time(step(blocked), inputs, args.repeats)
    print(f'{name:>9} blocked   fwd+bwd {seconds[name]:8.4f} s')

  gram_core = scoring.get_score_function(
      'scan_t2i', lambda_softmax=LAMBDA_SOFTMAX, lambda_lse=LAMBDA_LSE).core
  gram = _time(step(gram_core), inputs, args.repeats)
  direct = _time(step(scan_t2i_direct), inputs, args.repeats)
  gap = jnp.max(jnp.abs(jax.jit(gram_core)(v, rmask, w, wmask)
                        - jax.jit(scan_t2i_direct)(v, rmask, w, wmask)))
  print(f' scan_t2i unblocked fwd+bwd: Gram form {gram:.4f} s, direct form {direct:.4f} s, '
        f'direct/Gram {direct / gram:.1f}x, max |difference| {gap:.1e}')


if __name__ == '__main__':
  main()
