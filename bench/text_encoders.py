r"""The two text encoders in the train step: padded, length-grouped and packed sentences.

Each encoder at its recipe's batch on synthetic inputs and random weights (nothing is
downloaded): the bi-GRU at `--bigru_batch` pairs (default 128, `configs/align.py`:
max_words 60, word_dim 300, D 1024), BERT at `--bert_batch` pairs (default 32) with
at most `--bert_pieces` word pieces (48, markers included) in the shape of
all-MiniLM-L6-v2 (`MINILM`: 6 layers, hidden 384, 12 heads, 1536 intermediate); both with
the config's cls_sentences (2), regions 36 x 2048. Sentence lengths are real Artpedia's
(`common.artpedia_lengths`; BERT: 1.2 pieces per word plus [CLS] and [SEP]).

Per encoder and sentence layout, prints the share of the encoder's positions holding
words (`real`), the seconds of the text encoder's forward+backward on the step's
B (1 + K) sentences alone (`text_s`) and its useful FLOP/s (real words only, below) as a
fraction of a plain matmul of the encoder's width measured in the same run, and the
seconds of the whole train step (`train_step.make_train_step`, optimiser included).
Layouts: `padded` (one row per sentence at the batch's bucket, as before packing),
`grouped` (sentences sorted by length in GROUPS equal groups, each cut to its own bucket
and encoded in its own call: the alternative to packing, measured on the encoder alone)
and `packed` (the pipeline's layout, `data.sentence_packing`).

  python -m bench.text_encoders [--config=configs/align.py] [--bigru_batch=128] \
      [--bert_batch=32] [--encoders=bigru,bert] [--steps=2] [--config.model.dtype=bfloat16]

Useful FLOPs, forward+backward = 3x forward: bi-GRU 2 directions x (2 word_dim 3D +
2 D 3D) per real word; BERT per real piece and layer 2 (4 H^2 + 2 H I) plus attention
4 L H over its own sentence of L pieces, and the projection 2 H D.
"""

from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.data import sentence_packing
from artpedia_jax.model import bert
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import config_checks
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align.py', 'Config file whose model and data sizes are measured.',
    lock_config=True)  # its model.dtype is BERT's (and the bi-GRU's) compute dtype
_BIGRU_BATCH = flags.DEFINE_integer('bigru_batch', 128, 'Pairs of the bi-GRU step.')
_BERT_BATCH = flags.DEFINE_integer('bert_batch', 32, 'Pairs of the BERT step.')
_BERT_PIECES = flags.DEFINE_integer('bert_pieces', 48, "BERT's max_words (pieces).")
_ENCODERS = flags.DEFINE_list('encoders', ['bigru', 'bert'], 'Encoders to measure.')
_STEPS = flags.DEFINE_integer('steps', 2, 'Timed steps after one warm-up step.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000,
                                   "The bi-GRU's vocabulary (Artpedia ~20k words).")
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')

# all-MiniLM-L6-v2's shape (its config.json).
MINILM = bert.BertConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                         intermediate_size=1536, max_positions=512)
GROUPS = 4
_PIECES_PER_WORD = 1.2


def _config(encoder: str):
  config = _CONFIG.value.copy_and_resolve_references()
  config.model.text_encoder = encoder
  if encoder == 'bert':
    config.batch_size = _BERT_BATCH.value
    config.dataset.max_words = _BERT_PIECES.value
  else:
    config.batch_size = _BIGRU_BATCH.value
  return config


def _host_batch(config, encoder: str) -> dict[str, np.ndarray]:
  """A synthetic batch; BERT's sentences hold [CLS] pieces [SEP] of Artpedia lengths."""
  rng = np.random.default_rng(0)
  vocab = _VOCAB_SIZE.value if encoder == 'bigru' else MINILM.vocab_size
  batch = common.synthetic_batch(config, rng, _FEATURE_DIM.value, vocab)
  if encoder == 'bert':
    batch = common.with_bert_sentences(batch, config, rng, vocab, _PIECES_PER_WORD)
  return batch


def _model(config, encoder: str) -> model_lib.ArtpediaModel:
  return model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=_VOCAB_SIZE.value,
      feature_dim=_FEATURE_DIM.value, rngs=nnx.Rngs(config.seed),
      bert_config=MINILM if encoder == 'bert' else None)


def useful_encoder_flops(config, encoder: str, lengths: np.ndarray) -> float:
  """Forward+backward FLOPs of encoding sentences of `lengths` tokens (see docstring)."""
  d = config.model.embed_dim
  if encoder == 'bigru':
    return 3 * lengths.sum() * 2 * (2 * config.model.word_dim * 3 * d + 2 * d * 3 * d)
  h, inner = MINILM.hidden_size, MINILM.intermediate_size
  per_layer = lengths.sum() * 2 * (4 * h * h + 2 * h * inner) + 4 * h * (lengths**2).sum()
  return 3 * (MINILM.num_layers * per_layer + lengths.sum() * 2 * h * d)


def _time_grouped(model, config, host) -> tuple[float, float]:
  """(seconds of the encoder's forward+backward over GROUPS length-sorted groups, each at
  its own bucket, real-word share of their positions)."""
  sentences = np.asarray(common.step_sentences(host))
  lengths = length_buckets.num_words(sentences)
  order = np.argsort(lengths, kind='stable')
  widths = input_spec.InputSpec.from_config(config).bucket_widths
  groups = []
  for rows in np.array_split(order, GROUPS):
    width = length_buckets.width_for(lengths[rows].max(), widths)
    groups.append(jnp.asarray(length_buckets.trim(sentences[rows], width)))
  graphdef, variables = model_lib.split(model)

  def encoder_vjp(params, groups):
    def total(params):
      encoder = model_lib.merge(graphdef, dict(variables, params=params))
      return sum(jnp.sum(encoder.encode_sentences(g)[0]) for g in groups)
    return jax.grad(total)(params)

  seconds = common.time_compiled(encoder_vjp, (variables['params'], groups), _STEPS.value)[1]
  return seconds, lengths.sum() / sum(g.size for g in groups)


def _measure(encoder: str, mesh) -> dict[str, float]:
  """Prints the rows of `encoder`; returns the text encoder's seconds per layout."""
  config = _config(encoder)
  model = _model(config, encoder)
  host = _host_batch(config, encoder)
  lengths = length_buckets.num_words(np.asarray(common.step_sentences(host)))
  if encoder == 'bert':
    lengths = lengths - 2  # the markers are not words; they are run all the same
  useful = useful_encoder_flops(config, encoder, lengths)
  width = MINILM.hidden_size if encoder == 'bert' else config.model.embed_dim
  matmul = common.matmul_flops_per_s(lengths.size * host['tokens'].shape[-1], width, width,
                                     dtype=config.model.dtype)
  print(f'{encoder}: batch {config.batch_size} pairs, {lengths.size} sentences padded to '
        f'{host["tokens"].shape[-1]} (max_words {config.dataset.max_words}), plain matmul '
        f'{matmul / 1e9:.1f} GFLOP/s')
  seconds = {}
  for layout in ('padded', 'grouped', 'packed'):
    step = ''
    if layout == 'grouped':
      seconds[layout], real = _time_grouped(model, config, host)
    else:
      local = host if layout == 'padded' else sentence_packing.with_layout(host, mesh.size)
      real = sentence_packing.real_fraction(local)
      batch = sharding_lib.global_batch(mesh, local)
      seconds[layout] = common.time_text_encoder(model, batch, _STEPS.value)
      compile_s, step_s = common.time_train_step(config, mesh, model, batch, _STEPS.value)
      step = f'{compile_s:>11.1f}{step_s:>9.3f}'
    per_s = useful / seconds[layout]
    print(f'{encoder:<7}{layout:>8}{real:>7.1%}{seconds[layout]:>9.3f}'
          f'{per_s / 1e9:>16.1f}{per_s / matmul:>10.1%}{step}', flush=True)
  print(f'{encoder} text encoder vs padded: grouped '
        f'{seconds["padded"] / seconds["grouped"]:.2f}x, packed '
        f'{seconds["padded"] / seconds["packed"]:.2f}x')
  return seconds


def main(argv):
  del argv
  console.quiet_third_party_info()
  config = _CONFIG.value
  mesh = sharding_lib.make_mesh()
  config_checks.validate(config, num_devices=mesh.size)
  print(f'{common.backend_line()}; R={config.dataset.max_regions} x F={_FEATURE_DIM.value}, '
        f'C={config.dataset.cls_sentences}, D={config.model.embed_dim}, compute dtype '
        f'{config.model.dtype}, {_STEPS.value} timed steps')
  print(f'{"encoder":<7}{"layout":>8}{"real":>7}{"text_s":>9}{"useful GFLOP/s":>16}'
        f'{"of matmul":>10}{"compile_s":>11}{"step_s":>9}')
  for encoder in _ENCODERS.value:
    _measure(encoder, mesh)
  print(f'peak RSS {common.peak_rss_mib():.0f} MiB')


if __name__ == '__main__':
  app.run(main)
