r"""Train-step throughput, how much of its work is useful, and the scoring's share of it.

On synthetic inputs of the config's shapes (regions R x F, sentences of real-Artpedia
lengths padded to their length bucket T <= max_words, cls_sentences C, embed D) and the
current backend, prints per scorer and per sentence layout (`--layouts`: `padded`, one
encoder row per sentence as before packing, and `packed`, the pipeline's layout, see
`data.sentence_packing`): the share of the encoder's positions holding words, compile time
apart, steps/s and pairs/s of the real train step (`train_step.make_train_step`), the
step's *useful* FLOP/s (below) as a fraction of a plain matmul measured in the same run,
the time of a jitted forward+backward of `model.pairwise_scores` alone on pre-encoded
v [B, R, D] and w [B, T, D] (laid out as in the step: paintings split over the mesh,
sentences whole) and its share of the step, and the scoring's FLOP/s; then the text
encoder's forward+backward on the step's sentences (one call over B (1 + K), see
`pipeline.extra_cls_sentences`) per layout, and the packed / padded speed-ups. On a CPU
backend the batch defaults to CPU_BATCH_SIZE (the full 128 takes minutes a step);
`--batch_size` overrides.

  python -m bench.train_step [--config=configs/align.py] [--batch_size=128] \
      [--scores=align,scan_t2i,pooled] [--layouts=padded,packed] [--steps=3] \
      [--config.model.embed_dim=1024 ...]

Counted scoring FLOPs (forward+backward = 3x forward): the region-word contraction
2 B^2 R T D; for scan_t2i also the attention-Gram contraction 2 B^2 R^2 T; for pooled
(no region-word contraction) the global cosine 2 B^2 D. Elementwise work, the per-block
region Gram matrices and the blocks' rematerialised forward are not counted.

Useful FLOPs of a step count real words only: the bi-GRU's 2 directions x
(2 word_dim 3D + 2 D 3D) per real word, x3 for forward+backward; the region projection
2 B R F D, x2 (no input gradient); the scoring above scaled by the real-word fraction of
the ranking sentences. Classifier, losses and optimiser are not counted.
"""


from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.data import length_buckets
from artpedia_jax.data import sentence_packing
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align.py', 'Config file whose model and data sizes are measured.',
    lock_config=True)
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', None, 'Global batch; default: config.batch_size, capped at '
    'CPU_BATCH_SIZE on a CPU backend.')
_SCORES = flags.DEFINE_list('scores', ['align', 'scan_t2i', 'pooled'], 'Scorers to measure.')
_LAYOUTS = flags.DEFINE_list('layouts', ['padded', 'packed'],
                              'Sentence layouts of the step, measured back to back.')
_STEPS = flags.DEFINE_integer('steps', 3, 'Timed steps after one warm-up step.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Vocabulary size (Artpedia ~20k).')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')

# A full-size align step (batch 128) took 132 s and 8.7 GiB on the shared 2-core CPU.
CPU_BATCH_SIZE = 32


def _batch_size(config) -> int:
  if _BATCH_SIZE.value is not None:
    return _BATCH_SIZE.value
  if jax.default_backend() == 'cpu':
    return min(config.batch_size, CPU_BATCH_SIZE)
  return config.batch_size


def _unit_where(x: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.where(mask[..., None], x / jnp.linalg.norm(x, axis=-1, keepdims=True), 0.0)


def _encoded(config, mesh, batch):
  """Random v, rmask (paintings split over `data`) and w, wmask (whole on every device)."""
  b, dim = config.batch_size, config.model.embed_dim
  key_v, key_w = jax.random.split(jax.random.key(0))
  rmask = jnp.asarray(batch['region_mask'])
  wmask = jnp.asarray(batch['tokens'] != 0)
  v = _unit_where(jax.random.normal(key_v, (b, rmask.shape[1], dim)), rmask)
  w = _unit_where(jax.random.normal(key_w, (b, wmask.shape[1], dim)), wmask)
  split = lambda x: jax.device_put(x, sharding_lib.batch_sharded(mesh))
  whole = lambda x: jax.device_put(x, sharding_lib.replicated(mesh))
  return split(v), split(rmask), whole(w), whole(wmask)


def _time_scoring(config, model, encoded) -> float:
  """Seconds per forward+backward of the pairwise scores alone (gradient wrt v and w)."""
  v, rmask, w, wmask = encoded

  def scores_vjp(v, w):
    total = lambda v, w: jnp.sum(model.pairwise_scores(
        v, rmask, w, wmask, block_size=config.score_block_size))
    return jax.grad(total, argnums=(0, 1))(v, w)

  return common.time_compiled(scores_vjp, (v, w), _STEPS.value)[1]


def useful_step_flops(config, batch) -> float:
  """Forward+backward FLOPs of a step on real words only (see the docstring)."""
  b, r, _, d = _sizes(config, batch)
  word_dim = config.model.word_dim
  real_words = int(length_buckets.num_words(np.asarray(common.step_sentences(batch))).sum())
  encoder = 3 * real_words * 2 * (2 * word_dim * 3 * d + 2 * d * 3 * d)
  projection = 2 * 2 * b * r * _FEATURE_DIM.value * d
  ranking = length_buckets.num_words(np.asarray(batch['tokens']))
  real_t = ranking.sum() / b  # the mean real length: scoring is linear in T
  return encoder + projection + scoring_flops(config.model.score, b, r, real_t, d)


def scoring_flops(score: str, b: int, r: int, t: int, d: int) -> float:
  """Counted forward+backward FLOPs of all-pairs scoring of a batch (see the docstring)."""
  if score == 'pooled':
    forward = 2 * b * b * d
  else:
    forward = 2 * b * b * r * t * d
    if score == 'scan_t2i':
      forward += 2 * b * b * r * r * t
  return 3 * forward


def _print_header(config, config_batch_size: int, batch, matmul: float) -> None:
  b, r, t, d = _sizes(config, batch)
  print(f'{common.backend_line()}; batch {b} (config {config_batch_size}), '
        f'R={r} x F={_FEATURE_DIM.value}, T={t} (bucket; max_words '
        f'{config.dataset.max_words}), C={config.dataset.cls_sentences}, D={d}, '
        f'word_dim {config.model.word_dim}, dtype {config.model.dtype}, '
        f'vocab {_VOCAB_SIZE.value}, score block {config.score_block_size}, '
        f'{_STEPS.value} timed steps')
  print(f'plain {config.model.dtype} matmul [{b * r}, {d}] @ [{d}, {b * t}]: '
        f'{matmul / 1e9:.1f} GFLOP/s')
  _print_real_tokens(config, batch)
  print(f'{"score":<10}{"layout":>7}{"real":>7}{"compile_s":>10}{"step_s":>9}{"steps/s":>9}'
        f'{"pairs/s":>9}{"useful GFLOP/s":>15}{"of matmul":>10}'
        f'{"scoring_s":>10}{"share":>7}{"scoring GFLOP/s":>16}{"of matmul":>10}')


def _print_real_tokens(config, batch) -> None:
  """Real-word fractions of the encoder's and the scoring's token positions when every
  sentence is padded (per layout: the `real` column)."""
  width, max_words = batch['tokens'].shape[1], config.dataset.max_words
  parts = {'padded encoder': length_buckets.num_words(np.asarray(common.step_sentences(batch))),
           'scoring': length_buckets.num_words(np.asarray(batch['tokens']))}
  for name, lengths in parts.items():
    real = lambda t: 1 - length_buckets.padding_fraction(lengths, t)
    print(f'real words in {name} positions: {real(width):.1%} padded to the bucket '
          f'{width}, {real(max_words):.1%} padded to max_words {max_words}')


def _sizes(config, batch) -> tuple[int, int, int, int]:
  """(B, R, T, D) of the measured step (T: the batch's padded sentence length)."""
  return (config.batch_size, config.dataset.max_regions, batch['tokens'].shape[1],
          config.model.embed_dim)


def _measure_scorer(config, mesh, batches, matmul: float
                    ) -> tuple[nnx.Module, dict[str, float]]:
  """Prints the rows of `config.model.score`, one per layout; returns (its model,
  seconds per step per layout)."""
  config_checks.validate(config, num_devices=mesh.size)
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                  vocab_size=_VOCAB_SIZE.value,
                                  feature_dim=_FEATURE_DIM.value, rngs=nnx.Rngs(config.seed))
  padded = batches['padded']
  scoring_s = _time_scoring(config, model, _encoded(config, mesh, padded))
  b = config.batch_size
  flops_per_s = scoring_flops(config.model.score, *_sizes(config, padded)) / scoring_s
  seconds = {}
  for layout in _LAYOUTS.value:
    batch = batches[layout]
    compile_s, step_s = common.time_train_step(config, mesh, model, batch, _STEPS.value)
    useful_per_s = useful_step_flops(config, batch) / step_s
    real = sentence_packing.real_fraction(jax.device_get(batch))
    print(f'{config.model.score:<10}{layout:>7}{real:>7.1%}{compile_s:>10.1f}'
          f'{step_s:>9.3f}{1 / step_s:>9.3f}'
          f'{b / step_s:>9.1f}{useful_per_s / 1e9:>15.1f}{useful_per_s / matmul:>10.1%}'
          f'{scoring_s:>10.3f}{scoring_s / step_s:>7.1%}'
          f'{flops_per_s / 1e9:>16.1f}{flops_per_s / matmul:>10.1%}', flush=True)
    seconds[layout] = step_s
  return model, seconds


def main(argv):
  del argv
  console.quiet_third_party_info()
  config = _CONFIG.value
  config_batch_size = config.batch_size
  config.batch_size = _batch_size(config)
  mesh = sharding_lib.make_mesh()
  host = common.synthetic_batch(
      config, np.random.default_rng(0), _FEATURE_DIM.value, _VOCAB_SIZE.value)
  batches = {'padded': host, 'packed': sentence_packing.with_layout(host, mesh.size)}
  batches = {layout: sharding_lib.global_batch(mesh, batches[layout])
             for layout in ('padded', *_LAYOUTS.value)}
  b, r, t, d = _sizes(config, batches['padded'])
  matmul = common.matmul_flops_per_s(b * r, d, b * t, dtype=config.model.dtype)
  _print_header(config, config_batch_size, batches['padded'], matmul)
  step_seconds = {}
  for score in _SCORES.value:
    config.model.score = score
    model, step_seconds[score] = _measure_scorer(config, mesh, batches, matmul)
  sentences = common.step_sentences(batches['padded']).shape[0]
  text_seconds = {}
  for layout in _LAYOUTS.value:  # the text encoder is the same for every scorer
    text_seconds[layout] = common.time_text_encoder(model, batches[layout], _STEPS.value)
    shares = ', '.join(f'{text_seconds[layout] / seconds[layout]:.0%} of {score}'
                       for score, seconds in step_seconds.items())
    print(f'text encoder fwd+bwd on the {sentences} sentences of the step, {layout}: '
          f'{text_seconds[layout]:.3f} s ({shares})')
  if {'padded', 'packed'} <= set(_LAYOUTS.value):
    speedups = ', '.join(f'{score} step {s["padded"] / s["packed"]:.2f}x'
                         for score, s in step_seconds.items())
    print(f'packed vs padded: text encoder '
          f'{text_seconds["padded"] / text_seconds["packed"]:.2f}x, {speedups}')
  print(f'peak RSS {common.peak_rss_mib():.0f} MiB')


if __name__ == '__main__':
  app.run(main)
