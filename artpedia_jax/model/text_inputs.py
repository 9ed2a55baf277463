"""The text side of a run: the tokenizer that makes token ids, and a BERT's shape.

`config.model.text_encoder`:
  'bigru'  a word vocabulary built from the training split (`vocab.Vocabulary`);
  'bert'   the model folder's own tokenizer (`wordpiece.WordPieceTokenizer`) and the
           architecture of its `config.json`.
Either is saved in the checkpoint's vocabulary item (`to_json`), so that resuming keeps
the ids and evaluation needs neither the training split nor the model folder. A bi-GRU's
item is the vocabulary's own JSON, as before BERT existed.
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

_BERT_CONFIG_KEY = 'bert_config'


@dataclasses.dataclass(frozen=True)
class TextInputs:
  """What turns sentences into the text encoder's inputs."""
  tokenizer: tokenizer_lib.Tokenizer
  bert_config: bert.BertConfig | None = None  # None: the bi-GRU

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
            _BERT_CONFIG_KEY: dataclasses.asdict(self.bert_config)}

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> 'TextInputs':
    """Inverse of `to_json`."""
    if not wordpiece.WordPieceTokenizer.is_saved_json(data):
      return cls(vocab_lib.Vocabulary.from_json(data))
    return cls(wordpiece.WordPieceTokenizer.from_json(data),
               bert.BertConfig(**data[_BERT_CONFIG_KEY]))


def build(config: ml_collections.ConfigDict,
          train_source: Sequence[Mapping[str, Any]]) -> TextInputs:
  """A new run's text inputs: the vocabulary of `train_source`, or the BERT folder's."""
  if config.model.text_encoder != 'bert':
    vocab = vocab_lib.build_from_source(train_source, config.vocab.min_count)
    logging.info('Vocabulary: %d words (min count %d) from the training split.',
                 len(vocab), config.vocab.min_count)
    return TextInputs(vocab)
  folder = config.model.text_weights
  tokenizer = wordpiece.WordPieceTokenizer.from_file(
      os.path.join(folder, bert_import.TOKENIZER_FILE))
  logging.info('BERT tokenizer of %s: %d tokens.', folder, len(tokenizer))
  tokenizer_lib.log_truncated(tokenizer, (s for i in range(len(train_source))
                            for s in train_source[i]['sentences']),
                config.dataset.max_words, 'Training split')
  return TextInputs(tokenizer, bert_import.read_config(folder))
