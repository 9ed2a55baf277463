"""The text side of a run: the tokenizer that makes token ids, and a BERT's shape.

`config.model.text_encoder`:
  'bigru'  a word vocabulary built from the training split (`vocab.Vocabulary`);
  'bert'   the model folder's own tokenizer (`wordpiece.WordPieceTokenizer`) and the
           architecture of its `config.json` (`model.text_weights`: a folder or a hub
           id, see `bert_import.resolve`).
Either is saved in the checkpoint's vocabulary item (`to_json`), so that resuming keeps
the ids and evaluation needs neither the training split nor the model folder; a BERT's
item also records where its weights came from (folder or hub id and revision) and the
SHA-256 of its files. A bi-GRU's item is the vocabulary's own JSON, as before BERT
existed.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import os
from typing import Any

from absl import logging
import ml_collections

from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.data import wordpiece
from artpedia_jax.model import bert
from artpedia_jax.model import bert_import
from tfds_artpedia import errors

_BERT_CONFIG_KEY = 'bert_config'
_BERT_WEIGHTS_KEY = 'bert_weights'


@dataclasses.dataclass(frozen=True)
class TextInputs:
  """What turns sentences into the text encoder's inputs."""
  tokenizer: tokenizer_lib.Tokenizer
  bert_config: bert.BertConfig | None = None  # None: the bi-GRU
  # BERT: where its weights came from and their digests (`bert_import.resolve`; None in
  # checkpoints saved before they were recorded).
  weights_source: Mapping[str, Any] | None = None
  # BERT: the folder to load the pretrained weights from in a new run; None when read
  # back from a checkpoint, whose own parameters replace them.
  weights_folder: str | None = dataclasses.field(default=None, compare=False)

  def __post_init__(self):
    if self.bert_config is None:
      return
    if self.bert_config.pad_token_id != 0:
      raise ValueError(f'The model pads with id {self.bert_config.pad_token_id}; this '
                       'project pads sentences with id 0 (as BERT\'s own vocabularies '
                       'do): use a checkpoint whose [PAD] is id 0.')
    if self.tokenizer.pad_id != self.bert_config.pad_token_id:
      raise ValueError(f'The tokenizer pads with id {self.tokenizer.pad_id} but the '
                       f'model\'s pad_token_id is {self.bert_config.pad_token_id}: '
                       'tokenizer.json and config.json come from different models.')
    if len(self.tokenizer) > self.bert_config.vocab_size:
      raise ValueError(f'The tokenizer has {len(self.tokenizer)} tokens, the model\'s '
                       f'embeddings only {self.bert_config.vocab_size}: tokenizer.json '
                       'and config.json come from different models.')

  def to_json(self) -> dict[str, Any]:
    """The checkpoint's vocabulary item."""
    if self.bert_config is None:
      return self.tokenizer.to_json()
    return {**self.tokenizer.to_json(),
            _BERT_CONFIG_KEY: dataclasses.asdict(self.bert_config),
            _BERT_WEIGHTS_KEY: self.weights_source}

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> 'TextInputs':
    """Inverse of `to_json`."""
    if not wordpiece.WordPieceTokenizer.is_saved_json(data):
      return cls(vocab_lib.Vocabulary.from_json(data))
    return cls(wordpiece.WordPieceTokenizer.from_json(data),
               bert.BertConfig(**data[_BERT_CONFIG_KEY]), data.get(_BERT_WEIGHTS_KEY))


def build(config: ml_collections.ConfigDict,
          train_source: Sequence[Mapping[str, Any]]) -> TextInputs:
  """A new run's text inputs: the vocabulary of `train_source`, or the BERT folder's."""
  if config.model.text_encoder != 'bert':
    vocab = vocab_lib.build_from_source(train_source, config.vocab.min_count)
    logging.info('Vocabulary: %d words (min count %d) from the training split.',
                 len(vocab), config.vocab.min_count)
    return TextInputs(vocab)
  weights = bert_import.resolve(config.model.text_weights)
  tokenizer = wordpiece.WordPieceTokenizer.from_file(
      os.path.join(weights.folder, bert_import.TOKENIZER_FILE))
  logging.info('BERT tokenizer of %s: %d tokens.', config.model.text_weights,
               len(tokenizer))
  tokenizer_lib.log_truncated(tokenizer, (s for i in range(len(train_source))
                            for s in train_source[i]['sentences']),
                config.dataset.max_words, 'Training split')
  return TextInputs(tokenizer, _bert_config(config, weights.folder), weights.source,
                    weights.folder)


def _bert_config(config: ml_collections.ConfigDict, folder: str) -> bert.BertConfig:
  """The folder's architecture, with `model.text_dropout` over its dropout if set."""
  bert_config = bert_import.read_config(folder)
  frozen = config.model.text_frozen_layers
  if frozen > bert_config.num_layers:
    raise errors.UsageError(
        f'model.text_frozen_layers={frozen}: {config.model.text_weights} has '
        f'{bert_config.num_layers} layers; freeze at most that many.')
  rate = config.model.text_dropout
  if rate >= 0:
    bert_config = dataclasses.replace(bert_config, hidden_dropout=rate,
                                      attention_dropout=rate)
  logging.info('BERT dropout in training: %.3g on hidden states, %.3g on attention.',
               bert_config.hidden_dropout, bert_config.attention_dropout)
  return bert_config
