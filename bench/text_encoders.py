r"""The two text encoders side by side: bi-GRU vs BERT-base, train-step time and sizes.

At a config's sizes (regions R x F, max_words T, cls_sentences C, embed D) on synthetic
inputs and random weights (BERT-base has the shape of bert-base-uncased, `bert.BERT_BASE`,
so nothing is downloaded), prints per encoder: the text encoder's parameters, the whole
model's, the compile time apart, seconds per real train step (`train_step.make_train_step`,
optimiser included) and seconds of the text encoder's forward+backward alone on the
step's B (1 + C) sentences, then the BERT / bi-GRU ratio of the step time. On a CPU
backend the batch defaults to CPU_BATCH_SIZE; `--batch_size` overrides.

  python -m bench.text_encoders [--config=configs/align.py] [--batch_size=4] \
      [--steps=2] [--config.model.dtype=bfloat16]
"""

import math

from absl import app
from absl import flags
from flax import nnx
import jax
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.model import bert
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align.py', 'Config file whose model and data sizes are measured.',
    lock_config=True)  # its model.dtype is BERT's (and the bi-GRU's) compute dtype
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', None, 'Global batch; default: config.batch_size, capped at '
    'CPU_BATCH_SIZE on a CPU backend.')
_STEPS = flags.DEFINE_integer('steps', 2, 'Timed steps after one warm-up step.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000,
                                   "The bi-GRU's vocabulary (Artpedia ~20k words).")
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')

# BERT-base forward+backward on 4 x (1 + 8) sentences of 60 tokens takes tens of seconds
# on two CPU cores.
CPU_BATCH_SIZE = 4
_TEXT_PARTS = {'bigru': ('word_embedding', 'text_rnn'),
               'bert': (model_lib.BERT_ENCODER, 'text_projection')}


def _count(tree) -> int:
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _model(config, encoder: str) -> model_lib.ArtpediaModel:
  config.model.text_encoder = encoder
  return model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=_VOCAB_SIZE.value,
      feature_dim=_FEATURE_DIM.value,
      rngs=nnx.Rngs(config.seed),
      bert_config=bert.BERT_BASE if encoder == 'bert' else None)


def _measure(config, mesh, encoder: str) -> float:
  """Prints the row of `encoder`; returns its seconds per train step."""
  model = _model(config, encoder)
  # BERT's ids: [CLS] at 0 and [SEP] at the last real position are what the mask drops.
  vocab = _VOCAB_SIZE.value if encoder == 'bigru' else bert.BERT_BASE.vocab_size
  batch = sharding_lib.global_batch(mesh, common.synthetic_batch(
      config, np.random.default_rng(0), _FEATURE_DIM.value, vocab))
  params = nnx.state(model, nnx.Param)
  text_params = sum(_count(params[name]) for name in _TEXT_PARTS[encoder])
  compile_s, step_s = common.time_train_step(config, mesh, model, batch, _STEPS.value)
  text_s = common.time_text_encoder(model, batch, _STEPS.value)
  print(f'{encoder:<7}{text_params / 1e6:>14.2f}M{_count(params) / 1e6:>13.2f}M'
        f'{compile_s:>11.1f}{step_s:>9.2f}{text_s:>9.2f}{text_s / step_s:>8.0%}',
        flush=True)
  return step_s


def main(argv):
  del argv
  console.quiet_third_party_info()
  config = _CONFIG.value
  config_batch_size = config.batch_size
  if _BATCH_SIZE.value is not None:
    config.batch_size = _BATCH_SIZE.value
  elif jax.default_backend() == 'cpu':
    config.batch_size = min(config.batch_size, CPU_BATCH_SIZE)
  config_checks.validate(config, num_devices=1)
  data = config.dataset
  print(f'{common.backend_line()}; batch {config.batch_size} (config {config_batch_size})'
        f', R={data.max_regions} x F={_FEATURE_DIM.value}, T={data.max_words}, '
        f'C={data.cls_sentences}, D={config.model.embed_dim}, bi-GRU word_dim '
        f'{config.model.word_dim} vocab {_VOCAB_SIZE.value}, compute dtype '
        f'{config.model.dtype}, {_STEPS.value} timed steps')
  print(f'{"encoder":<7}{"text params":>15}{"all params":>14}{"compile_s":>11}'
        f'{"step_s":>9}{"text_s":>9}{"share":>8}')
  mesh = sharding_lib.make_mesh()
  seconds = {encoder: _measure(config, mesh, encoder) for encoder in ('bigru', 'bert')}
  print(f'BERT-base / bi-GRU step time: {seconds["bert"] / seconds["bigru"]:.1f}x; '
        f'peak RSS {common.peak_rss_mib():.0f} MiB')


if __name__ == '__main__':
  app.run(main)
