r"""The BERT fine-tuning step against `transformers` + PyTorch, side by side in one run.

Both fine-tune a model of all-MiniLM-L6-v2's shape (random weights: the time does not
depend on them) as a text-only visual/contextual classifier on the same sentences: B pairs
of `--bert_batch` with the config's cls_sentences, [CLS] pieces [SEP] of real-Artpedia
lengths (1.2 pieces a word, at most `--bert_pieces`).

- ours: the real train step (`train_step.make_train_step`, Adam, the recipe's text-only
  keys: `model.classifier_inputs=text`, `loss.rank_weight=0`, sentences packed end to end
  as the pipeline lays them out), once with BERT's dropout on (0.1, as the peer) and once
  without (`model.text_dropout=0`);
- peer: `transformers.BertModel` in training mode (dropout 0.1), the sentences padded to
  the batch's longest, mean of the pieces' states, a linear classifier, BCE, `torch.optim.Adam`.

Prints seconds per step after a warm-up (ours: compile apart) and the speed-ups. Needs
torch and transformers beside the project (not its dependencies):
`pip install torch==2.13.0 transformers`.

  python -m bench.bert_vs_transformers [--bert_batch=32] [--bert_pieces=48] [--steps=3]
"""

import time

from absl import app
from absl import flags
from flax import nnx
import numpy as np

from artpedia_jax import console
from artpedia_jax.data import sentence_packing
from artpedia_jax.model import bert
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from bench import common
from configs import align_bert

_BERT_BATCH = flags.DEFINE_integer('bert_batch', 32, 'Pairs of the step.')
_BERT_PIECES = flags.DEFINE_integer('bert_pieces', 48, "max_words (pieces, markers included).")
_STEPS = flags.DEFINE_integer('steps', 3, 'Timed steps after one warm-up step.')

# all-MiniLM-L6-v2's config.json (dropout 0.1 as it was pre-trained).
MINILM = bert.BertConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                         intermediate_size=1536, max_positions=512, hidden_dropout=0.1,
                         attention_dropout=0.1)
_PIECES_PER_WORD = 1.2
_FEATURE_DIM = 2048


def _config():
  config = align_bert.get_config()
  config.batch_size = _BERT_BATCH.value
  config.dataset.max_words = _BERT_PIECES.value
  config.model.classifier_inputs = 'text'
  config.loss.rank_weight = 0.0
  return config


def _ours(config, host, dropout: float, mesh) -> float:
  """Seconds per step of our train step, BERT's dropout at `dropout`."""
  bert_config = bert.BertConfig(**{**MINILM.__dict__, 'hidden_dropout': dropout,
                                   'attention_dropout': dropout})
  model = model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=1, feature_dim=_FEATURE_DIM,
      rngs=nnx.Rngs(config.seed), bert_config=bert_config)
  local = sentence_packing.with_layout(host, mesh.size)
  compile_s, step_s = common.time_train_step(
      config, mesh, model, sharding_lib.global_batch(mesh, local), _STEPS.value)
  print(f'ours, dropout {dropout}: {step_s:.3f} s a step (compile {compile_s:.1f} s, '
        f'{local["packed_sentence"].size} packed positions)', flush=True)
  return step_s


def _peer(host) -> float:
  """Seconds per step of `transformers` + PyTorch on the same sentences and labels."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  encoder = transformers.BertModel(transformers.BertConfig(
      vocab_size=MINILM.vocab_size, hidden_size=MINILM.hidden_size,
      num_hidden_layers=MINILM.num_layers, num_attention_heads=MINILM.num_heads,
      intermediate_size=MINILM.intermediate_size, hidden_dropout_prob=0.1,
      attention_probs_dropout_prob=0.1), add_pooling_layer=False)
  classifier = torch.nn.Linear(MINILM.hidden_size, 1)
  encoder.train()
  parameters = [*encoder.parameters(), *classifier.parameters()]
  optimizer = torch.optim.Adam(parameters, lr=5e-5)
  sentences = np.asarray(common.step_sentences(host))
  longest = int((sentences != 0).sum(axis=1).max())
  ids = torch.from_numpy(sentences[:, :longest].astype(np.int64))
  mask = (ids != 0).long()
  labels = torch.from_numpy(host['cls_labels'].reshape(-1))

  def step():
    optimizer.zero_grad()
    hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    pooled = (hidden * weights).sum(1) / weights.sum(1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        classifier(pooled).squeeze(-1), labels)
    loss.backward()
    optimizer.step()

  step()  # warm-up
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    step()
  seconds = (time.perf_counter() - start) / _STEPS.value
  print(f'transformers {transformers.__version__} + torch {torch.__version__} '
        f'({torch.get_num_threads()} threads), padded to {longest}: {seconds:.3f} s a step',
        flush=True)
  return seconds


def main(argv):
  del argv
  console.quiet_third_party_info()
  config = _config()
  mesh = sharding_lib.make_mesh()
  rng = np.random.default_rng(0)
  host = common.with_bert_sentences(
      common.synthetic_batch(config, rng, _FEATURE_DIM, MINILM.vocab_size), config, rng,
      MINILM.vocab_size, _PIECES_PER_WORD)
  sentences = np.asarray(common.step_sentences(host))
  print(f'{common.backend_line()}; {sentences.shape[0]} sentences ({config.batch_size} pairs, '
        f'cls_sentences {config.dataset.cls_sentences}) of {(sentences != 0).sum(1).mean():.1f} '
        f'pieces on average, bucket {sentences.shape[1]}; {_STEPS.value} timed steps')
  peer = _peer(host)
  for dropout in (MINILM.hidden_dropout, 0.0):
    ours = _ours(config, host, dropout, mesh)
    print(f'  peer / ours, dropout {dropout}: {peer / ours:.2f}x')
  print(f'peak RSS {common.peak_rss_mib():.0f} MiB')


if __name__ == '__main__':
  app.run(main)
