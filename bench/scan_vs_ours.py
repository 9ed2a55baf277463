r"""Our train step and evaluation scoring against a PyTorch peer of SCAN, in one run.

Issue 23's comparison with SCAN t2i (Lee et al. 2018; `bench/scan_peer.py` is the peer,
written from the paper and the official code's facts: linear 2048 -> D regions, bi-GRU
words over packed sequences, t2i attention with clipped_l2norm and λ_softmax 9, AVG over
words, the per-caption scoring loop, summed hardest-negative hinge, Adam, clip 2). Both
sides get the same random region features (R x F, every region real) and the same token
ids (vocabulary `--vocab_size`, real-Artpedia lengths capped at `--max_words`).

- train step, seconds per step after one warm-up step (ours: compile apart): ours is the
  real train step (`train_step.make_train_step`) of `--config` at batch `--batch_size`
  with `model.score` align and scan_t2i, sentences packed as the pipeline lays them out.
  It does more than the peer: the visual/contextual classifier (B (1 + K) sentences
  encoded instead of B, K from `dataset.cls_sentences`, and its MLP and loss), box
  embeddings, dropout and word dropout, AdamW with a schedule;
- evaluation scoring of `--paintings` x `--sentences`, encoders excluded on both sides
  ("SCAN scoring alone"): the peer scores blocks of `--shard` images x `--shard` captions
  under no_grad as the official evaluation does; ours runs `pairwise_scores` laid out as
  the evaluator lays it out (`device_scorer.DeviceScorer.score_sentences`: sentences
  sorted by length in chunks of `eval_batch_size`, each cut to its length bucket,
  against painting chunks of `device_scorer.painting_chunk_rows`, padding rows
  included), after one compiling call per bucket in use.

Formulas, by design not the same (costs alike): our scan_t2i pools words by LogSumExp
(λ_lse 6) where this peer averages them (the paper's t2i AVG; `scan_peer.t2i_scores`
with `lambda_lse` gives ours, checked in tests/bench/test_scan_peer.py); our hinge
averages each direction over its queries and skips same-painting negatives, SCAN's sums
over queries; our L2 norms floor the norm at ε, SCAN's add ε; ours computes the attended
context through the regions' Gram matrix (docs/design.md §5.4) where SCAN materialises it.

Needs torch beside the project (not a dependency), e.g. `pip install torch==2.13.0`;
torch's threads default to the machine's cores (`--torch_threads`). On a machine other
jobs keep busy, give torch one thread: its small per-caption products then wait on each
other's threads (on the shared 2-core CPU at load 5, 2 threads scored 4x slower than 1).

  python -m bench.scan_vs_ours [--batch_size=128] [--max_words=40] [--steps=2] \
      [--paintings=340] [--sentences=3000] [--scores=align,scan_t2i] [--parts=train,eval]
"""

import os
import time

from absl import app
from absl import flags
from flax import nnx
import jax
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.data import length_buckets
from artpedia_jax.data import sentence_packing
from artpedia_jax.evaluation import device_scorer
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align.py', 'Our config (its model, loss and optimiser).',
    lock_config=True)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Pairs of a train step.')
_MAX_WORDS = flags.DEFINE_integer('max_words', 40, 'Longest sentence, in words.')
_STEPS = flags.DEFINE_integer('steps', 2, 'Timed train steps after one warm-up step.')
_PAINTINGS = flags.DEFINE_integer('paintings', 340, 'Paintings scored in evaluation.')
_SENTENCES = flags.DEFINE_integer('sentences', 3000, 'Sentences scored in evaluation.')
_SHARD = flags.DEFINE_integer('shard', 128, "The peer's evaluation shard (images and "
                              'captions per block).')
_SCORES = flags.DEFINE_list('scores', ['align', 'scan_t2i'], 'Our scorers to measure.')
_PARTS = flags.DEFINE_list('parts', ['train', 'eval'], 'What to measure: train, eval.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Vocabulary size (Artpedia ~20k).')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')
_TORCH_THREADS = flags.DEFINE_integer('torch_threads', os.cpu_count(), "torch's threads.")

flags.register_validator('parts', lambda parts: set(parts) <= {'train', 'eval'},
                         '--parts takes train and/or eval.')

# Issue 23's targets, peer seconds / ours seconds, per (part, our scorer).
_TARGETS = {('train', 'align'): 2.0, ('train', 'scan_t2i'): 2.0, ('eval', 'scan_t2i'): 4.0}


def _config(score: str):
  config = _CONFIG.value
  config.batch_size = _BATCH_SIZE.value
  config.dataset.max_words = _MAX_WORDS.value
  config.model.score = score
  return config


def _model(config) -> nnx.Module:
  return model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                 vocab_size=_VOCAB_SIZE.value,
                                 feature_dim=_FEATURE_DIM.value, rngs=nnx.Rngs(config.seed))


def _peer(torch):
  from bench import scan_peer  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  config = _CONFIG.value
  return scan_peer.ScanT2I(
      vocab_size=_VOCAB_SIZE.value, feature_dim=_FEATURE_DIM.value,
      word_dim=config.model.word_dim, embed_dim=config.model.embed_dim,
      lambda_softmax=config.model.lambda_softmax, margin=config.loss.margin,
      learning_rate=config.optimizer.learning_rate,
      grad_clip=config.optimizer.grad_clip_norm)


def _longest_first(torch, tokens: np.ndarray) -> tuple[np.ndarray, object, object]:
  """(order, tokens, lengths) of sentences sorted longest first, cut to the longest, as
  torch tensors: the order pack_padded_sequence wants."""
  lengths = length_buckets.num_words(tokens)
  order = np.argsort(-lengths, kind='stable')
  tokens = tokens[order][:, :lengths.max()].astype(np.int64)
  return order, torch.from_numpy(tokens), torch.from_numpy(lengths[order])


def _peer_step_seconds(torch, host) -> float:
  peer = _peer(torch)
  order, tokens, lengths = _longest_first(torch, host['tokens'])
  features = torch.from_numpy(host['regions'][order])
  peer.train_step(features, tokens, lengths)  # warm-up
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    peer.train_step(features, tokens, lengths)
  return (time.perf_counter() - start) / _STEPS.value


def _peer_scoring_seconds(torch, regions: np.ndarray, tokens: np.ndarray) -> float:
  """Seconds of the peer's sharded scoring; its encoders (run first, untimed, in batches
  of `--shard` as the official loader feeds them) excluded."""
  peer = _peer(torch)
  peer.eval()
  shard = _SHARD.value
  with torch.no_grad():
    v = torch.cat([peer.regions(torch.from_numpy(regions[a:a + shard]))
                   for a in range(0, len(regions), shard)])
    width = int(length_buckets.num_words(tokens).max())
    w = torch.zeros(len(tokens), width, peer.sentences.embed_dim)
    lengths = torch.zeros(len(tokens), dtype=torch.int64)
    for a in range(0, len(tokens), shard):
      order, chunk, chunk_lengths = _longest_first(torch, tokens[a:a + shard])
      rows = torch.from_numpy(a + order)
      w[rows, :chunk.shape[1]] = peer.sentences(chunk, chunk_lengths)
      lengths[rows] = chunk_lengths
  peer.sharded_scores(v[:shard], w[:shard], lengths[:shard], shard)  # warm-up: one block
  start = time.perf_counter()
  peer.sharded_scores(v, w, lengths, shard)
  return time.perf_counter() - start


def _ours_step_seconds(score: str, mesh, host) -> float:
  config = _config(score)
  config_checks.validate(config, num_devices=mesh.size)
  batch = sharding_lib.global_batch(mesh, sentence_packing.with_layout(host, mesh.size))
  compile_s, step_s = common.time_train_step(config, mesh, _model(config), batch,
                                             _STEPS.value)
  print(f'  ours {score}: {step_s:.3f} s a step (compile {compile_s:.1f} s)', flush=True)
  return step_s


def _ours_scoring_seconds(score: str, mesh, paintings: dict[str, np.ndarray],
                          tokens: np.ndarray) -> float:
  """Seconds of our all-pairs scoring of encoded paintings and sentences, in the
  evaluator's layout (see the docstring); encoding and compilation excluded."""
  config = _config(score)
  config_checks.validate(config, num_devices=mesh.size)
  graphdef, variables = model_lib.split(_model(config))
  spec = device_scorer.EvalSpec.from_config(config)
  scorer = device_scorer.DeviceScorer(graphdef, spec, mesh)
  encoded = scorer.encode_paintings(variables, paintings)
  chunk = -(-spec.chunk_size // mesh.size) * mesh.size
  painting_rows = device_scorer.painting_chunk_rows(len(encoded), chunk, mesh.size)
  put = lambda x: sharding_lib.shard_full(mesh, x)
  rows = lambda x, a, size=chunk: device_scorer.pad_rows(x[a:a + size], size)
  painting_chunks = [(put(rows(encoded.v, a, painting_rows)),
                      put(rows(encoded.region_mask, a, painting_rows)))
                     for a in range(0, len(encoded), painting_rows)]
  merge = lambda p: model_lib.merge(graphdef, p)
  encode = jax.jit(lambda p, t: merge(p).encode_sentences(t))
  pairwise = jax.jit(lambda p, v, rmask, w, wmask: merge(p).pairwise_scores(
      v, rmask, w, wmask, block_size=spec.block_size))
  tokens = tokens[np.argsort(length_buckets.num_words(tokens), kind='stable')]
  sentence_chunks = []
  for a in range(0, len(tokens), chunk):
    cut = rows(tokens, a)
    cut = length_buckets.trim(cut, length_buckets.width_for(
        length_buckets.num_words(cut).max(), spec.bucket_widths))
    sentence_chunks.append(jax.device_put(encode(variables, put(cut)),
                                          sharding_lib.replicated(mesh)))
  by_width = {w.shape[1]: (w, wmask) for w, wmask in sentence_chunks}
  for w, wmask in by_width.values():  # compiles each bucket's function
    jax.block_until_ready(pairwise(variables, *painting_chunks[0], w, wmask))
  start = time.perf_counter()
  for w, wmask in sentence_chunks:
    for v, rmask in painting_chunks:
      sharding_lib.to_host(pairwise(variables, v, rmask, w, wmask))
  seconds = time.perf_counter() - start
  print(f'  ours {score}: {seconds:.1f} s ({len(painting_chunks)} painting chunks of '
        f'{painting_rows} x {len(sentence_chunks)} sentence chunks of {chunk}, widths '
        f'{sorted(by_width)})',
        flush=True)
  return seconds


def _ratios(part: str, peer: float, ours: dict[str, float]) -> None:
  for score, seconds in ours.items():
    target = _TARGETS.get((part, score))
    wanted = '' if target is None else f' (issue 23 asks >= {target:.0f}x)'
    print(f'  peer / ours {score}: {peer / seconds:.2f}x{wanted}', flush=True)


def _train(torch, mesh) -> None:
  config = _config(_SCORES.value[0])
  host = common.synthetic_batch(config, np.random.default_rng(0), _FEATURE_DIM.value,
                                _VOCAB_SIZE.value)
  lengths = length_buckets.num_words(host['tokens'])
  print(f'train step: batch {config.batch_size}, ranking sentences of {lengths.mean():.1f} '
        f'words on average (longest {lengths.max()}, bucket {host["tokens"].shape[1]}), '
        f'ours also encodes {host["cls_tokens"].shape[1]} classifier sentence(s) a pair; '
        f'{_STEPS.value} timed steps', flush=True)
  peer = _peer_step_seconds(torch, host)
  print(f'  peer: {peer:.3f} s a step', flush=True)
  _ratios('train', peer, {score: _ours_step_seconds(score, mesh, host)
                          for score in _SCORES.value})


def _eval(torch, mesh) -> None:
  config = _config(_SCORES.value[0])
  rng = np.random.default_rng(1)
  regions, boxes, region_mask = common.random_regions(
      rng, _PAINTINGS.value, config.dataset.max_regions, _FEATURE_DIM.value)
  tokens = common.random_tokens(rng, (_SENTENCES.value,), _MAX_WORDS.value,
                                _VOCAB_SIZE.value)
  print(f'evaluation scoring, encoders excluded: {_PAINTINGS.value} paintings x '
        f'{_SENTENCES.value} sentences of {length_buckets.num_words(tokens).mean():.1f} '
        f'words on average; peer shard {_SHARD.value}, our chunk {config.eval_batch_size} '
        f'and score block {config.score_block_size}', flush=True)
  peer = _peer_scoring_seconds(torch, regions, tokens)
  print(f'  peer: {peer:.1f} s', flush=True)
  paintings = {'regions': regions, 'boxes': boxes, 'region_mask': region_mask}
  _ratios('eval', peer, {score: _ours_scoring_seconds(score, mesh, paintings, tokens)
                         for score in _SCORES.value})


def main(argv):
  del argv
  console.quiet_third_party_info()
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise app.UsageError('The peer needs torch beside the project: pip install '
                         'torch==2.13.0 (or put its site-packages on PYTHONPATH).') from error
  torch.set_num_threads(_TORCH_THREADS.value)
  config = _config(_SCORES.value[0])
  mesh = sharding_lib.make_mesh()
  print(f'{common.backend_line()}; torch {torch.__version__} ({torch.get_num_threads()} '
        f'threads); R={config.dataset.max_regions} x F={_FEATURE_DIM.value}, '
        f'D={config.model.embed_dim}, word_dim {config.model.word_dim}, vocab '
        f'{_VOCAB_SIZE.value}, max_words {_MAX_WORDS.value}, dtype {config.model.dtype}; '
        f'load average {os.getloadavg()[0]:.2f}', flush=True)
  parts = {'train': _train, 'eval': _eval}
  for part in _PARTS.value:
    parts[part](torch, mesh)
  print(f'peak RSS {common.peak_rss_mib():.0f} MiB; load average '
        f'{os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  app.run(main)
