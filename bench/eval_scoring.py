r"""All-pairs scoring of a test-split-sized random split through the real `Evaluator`.

Artpedia's test split is about 340 paintings x 3,000 sentences; at `configs/align.py`
sizes (36 regions x 2048 features, up to 60 words, D=1024) every scorer must finish on a
2-core CPU within minutes, with memory bounded by the chunk and block sizes. Each scorer
runs in a fresh child process so that its peak resident memory is its own; the child also
measures a plain matmul of one scoring block's size, so the FLOP/s fraction compares
figures of the same process and moment.

  python -m bench.eval_scoring [--config=configs/align.py] [--paintings=340] \
      [--sentences=3000] [--scores=align,scan_t2i,pooled] [--config.score_block_size=32]

Sentences have real-Artpedia lengths (`common.artpedia_lengths`: mean 22, median 20,
95th percentile 43, 99th 59 words, clipped to max_words).

Columns: `warmup_s` scores the split once (compiles every function: one shape per length
bucket in use); `score_s` is `Evaluator.score` of the split (encoding every painting and
sentence, all pairs, the visual probabilities) and pairs/s counts real pairs over it.
GFLOP/s counts the region-word contraction 2 P S R T D (scan_t2i: + 2 P S R^2 T; pooled:
2 P S D) on the padded shapes XLA runs (each sentence chunk at its bucket's T), over
`score_s`, so it is a lower bound (the encoders' time is included); `useful` counts the
same on real words only (T = each sentence's length), as a fraction of `matmul`, a plain
[chunk R, D] @ [D, block T] (one block's contraction); `real` is the share of the
executed sentence positions that hold real words (`at_max` the same with every sentence
padded to max_words, as without buckets). `rss_MiB` is the child's peak resident memory,
`before_MiB` its peak before the split was scored.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from flax import nnx
import jax
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.evaluation import device_scorer
from artpedia_jax.evaluation import evaluator as evaluation
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align.py', 'Config file whose model and eval sizes are measured.',
    lock_config=True)
_PAINTINGS = flags.DEFINE_integer('paintings', 340, 'Paintings in the split.')
_SENTENCES = flags.DEFINE_integer('sentences', 3000, 'Sentences in the split.')
_SCORES = flags.DEFINE_list('scores', ['align', 'scan_t2i', 'pooled'], 'Scorers to measure.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Vocabulary size (Artpedia ~20k).')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')
_CHILD_SCORE = flags.DEFINE_string(
    'child_score', None, 'Internal: measure this one scorer in this process and print '
    'its figures as one JSON line.')

_RESULT_PREFIX = 'RESULT '


def random_split(config, paintings: int, sentences: int) -> eval_split.EvalSplit:
  """A split of random regions and tokens; sentence j belongs to painting j mod P."""
  rng = np.random.default_rng(0)
  regions, boxes, region_mask = common.random_regions(
      rng, paintings, config.dataset.max_regions, _FEATURE_DIM.value)
  return eval_split.EvalSplit(
      painting_ids=np.asarray([f'p{i}' for i in range(paintings)]),
      titles=np.asarray([f'title {i}' for i in range(paintings)]),
      paintings={'regions': regions, 'boxes': boxes, 'region_mask': region_mask},
      tokens=common.random_tokens(rng, (sentences,), config.dataset.max_words,
                                  _VOCAB_SIZE.value),
      sentence_texts=np.asarray([f's{j}' for j in range(sentences)]),
      sentence_painting=(np.arange(sentences) % paintings).astype(np.int32),
      is_visual=rng.uniform(size=sentences) < 0.5)


def _padded(n: int, chunk: int) -> int:
  return -(-n // chunk) * chunk


def executed_words(config, tokens: np.ndarray, chunk: int) -> int:
  """Sentence positions the evaluator runs: chunks of the length-sorted sentences, each
  padded to the bucket of its longest (the last chunk's padding rows at its width)."""
  lengths = np.sort(length_buckets.num_words(tokens))
  widths = input_spec.InputSpec.from_config(config).bucket_widths
  return sum(chunk * length_buckets.width_for(lengths[a:a + chunk].max(), widths)
             for a in range(0, len(lengths), chunk))


def scoring_flops(config, paintings: int, words: int) -> float:
  """Counted forward FLOPs of scoring `paintings` against sentences of `words` positions
  in all (see the docstring); pooled counts one position per sentence instead."""
  r, d = config.dataset.max_regions, config.model.embed_dim
  if config.model.score == 'pooled':
    return 2 * paintings * words * d
  flops = 2 * paintings * words * r * d
  if config.model.score == 'scan_t2i':
    flops += 2 * paintings * words * r * r
  return flops


def _timed(function, *args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(function(*args))
  return time.perf_counter() - start


def measure_one(config) -> dict:
  """Figures of one scorer (`config.model.score`) in this process."""
  mesh = sharding_lib.make_mesh()
  config_checks.validate(config, num_devices=mesh.size)
  split = random_split(config, _PAINTINGS.value, _SENTENCES.value)
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                  vocab_size=_VOCAB_SIZE.value,
                                  feature_dim=_FEATURE_DIM.value,
                                  rngs=nnx.Rngs(config.seed))
  graphdef, variables = model_lib.split(model)
  scorer = device_scorer.DeviceScorer(graphdef, device_scorer.EvalSpec.from_config(config), mesh)
  score = lambda variables, split: evaluation.SplitEvaluator(
      scorer, split, split_name='bench').run(variables, step=0).scores.scores
  log = lambda message: print(f'[{config.model.score}] {message}', file=sys.stderr,
                              flush=True)
  warmup_s = _timed(score, variables, split)
  log(f'compiled and scored in {warmup_s:.1f} s')
  before_mib = common.peak_rss_mib()
  score_s = _timed(score, variables, split)
  rss_mib = common.peak_rss_mib()
  log(f'encoded and scored {_PAINTINGS.value} x {_SENTENCES.value} pairs in '
      f'{score_s:.1f} s')

  chunk = -(-config.eval_batch_size // mesh.size) * mesh.size
  r, t, d = config.dataset.max_regions, config.dataset.max_words, config.model.embed_dim
  real_words = int(length_buckets.num_words(split.tokens).sum())
  run_words = executed_words(config, split.tokens, chunk)
  painting_rows = device_scorer.painting_chunk_rows(_PAINTINGS.value, chunk, mesh.size)
  paintings = _padded(_PAINTINGS.value, painting_rows)
  pooled = config.model.score == 'pooled'  # one position per sentence
  executed = scoring_flops(config, paintings,
                           _padded(_SENTENCES.value, chunk) if pooled else run_words)
  useful = scoring_flops(config, _PAINTINGS.value,
                         _SENTENCES.value if pooled else real_words)
  return {
      'score': config.model.score, 'warmup_s': warmup_s, 'score_s': score_s,
      'pairs_per_s': _PAINTINGS.value * _SENTENCES.value / score_s,
      'flops_per_s': executed / score_s, 'useful_flops_per_s': useful / score_s,
      'real': real_words / run_words,
      'real_at_max': real_words / (_padded(_SENTENCES.value, chunk) * t),
      'matmul_flops_per_s': common.matmul_flops_per_s(
          chunk // mesh.size * r, d, config.score_block_size * t,
          dtype=config.model.dtype),
      'before_mib': before_mib, 'rss_mib': rss_mib,
  }


def _run_child(score: str) -> dict:
  """Runs this benchmark for one scorer in a fresh process; returns its figures."""
  command = [sys.executable, '-m', 'bench.eval_scoring', *sys.argv[1:],
             f'--child_score={score}']
  child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
  output = child.stdout.read()
  _, status, _ = os.wait4(child.pid, 0)
  if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f'The {score} run failed (its error is above): {" ".join(command)}')
  lines = [line for line in output.splitlines() if line.startswith(_RESULT_PREFIX)]
  return json.loads(lines[-1][len(_RESULT_PREFIX):])


def _print_header(config) -> None:
  data = config.dataset
  print(f'{common.backend_line()}; {_PAINTINGS.value} paintings x {_SENTENCES.value} '
        f'sentences, R={data.max_regions} x F={_FEATURE_DIM.value}, T={data.max_words}, '
        f'D={config.model.embed_dim}, eval chunk {config.eval_batch_size}, score block '
        f'{config.score_block_size}')
  print(f'{"score":<10}{"warmup_s":>9}{"score_s":>9}'
        f'{"pairs/s":>9}{"real":>7}{"at_max":>7}'
        f'{"GFLOP/s":>9}{"matmul":>8}{"fraction":>9}{"useful":>8}'
        f'{"before_MiB":>11}{"rss_MiB":>9}',
        flush=True)


def _print_row(row: dict) -> None:
  print(f'{row["score"]:<10}{row["warmup_s"]:>9.1f}{row["score_s"]:>9.1f}'
        f'{row["pairs_per_s"]:>9.0f}{row["real"]:>7.1%}{row["real_at_max"]:>7.1%}'
        f'{row["flops_per_s"] / 1e9:>9.1f}{row["matmul_flops_per_s"] / 1e9:>8.1f}'
        f'{row["flops_per_s"] / row["matmul_flops_per_s"]:>9.1%}'
        f'{row["useful_flops_per_s"] / row["matmul_flops_per_s"]:>8.1%}'
        f'{row["before_mib"]:>11.0f}{row["rss_mib"]:>9.0f}', flush=True)


def main(argv):
  del argv
  console.quiet_third_party_info()
  config = _CONFIG.value
  if _CHILD_SCORE.value is not None:
    config.model.score = _CHILD_SCORE.value
    print(_RESULT_PREFIX + json.dumps(measure_one(config)), flush=True)
    return
  _print_header(config)
  for score in _SCORES.value:
    _print_row(_run_child(score))


if __name__ == '__main__':
  app.run(main)
