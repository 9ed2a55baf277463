"""A BERT checkpoint's own word-piece tokenizer, with the interface of `vocab.Vocabulary`.

The tokenizer is the checkpoint folder's `tokenizer.json`, run by the `tokenizers`
library: its normaliser decides lower-casing and accent stripping (an uncased model
lower-cases, a cased one does not), its pre-tokeniser splits words and punctuation, and
its word-piece model splits words into pieces. Whatever padding or truncation the file
configures is switched off: this class fixes both.

A sentence is encoded as `[CLS] piece_1 ... piece_n [SEP]` then `[PAD]` up to `max_len`
(BERT was trained with both markers, so the encoder sees them), keeping at most
`max_len - 2` pieces: truncation drops the last pieces but keeps `[SEP]`. The markers are
not alignment words: the model masks them out of its word vectors (see
`bert.word_piece_mask`), so a sentence's "words" for scoring and classification are its
word pieces.

The whole `tokenizer.json` is saved in the checkpoint (`to_json`), so evaluation
tokenises exactly as training did without the model folder.
"""

from collections.abc import Iterable, Mapping
import json
from typing import Any

import numpy as np
import tokenizers

from artpedia_jax.data import vocab as vocab_lib

CLS_TOKEN, SEP_TOKEN, PAD_TOKEN, UNK_TOKEN = '[CLS]', '[SEP]', '[PAD]', '[UNK]'
_NUM_MARKERS = 2  # [CLS] and [SEP]
_JSON_KEY = 'wordpiece_tokenizer'


class WordPieceTokenizer:
  """Text → int32 ids [max_len] of `[CLS] pieces [SEP] [PAD]...` (see module docstring)."""

  def __init__(self, tokenizer_json: str):
    """`tokenizer_json`: the text of a Hugging Face `tokenizer.json`."""
    try:
      tokenizer = tokenizers.Tokenizer.from_str(tokenizer_json)
    except Exception as error:  # the library raises a bare Exception on bad files
      raise ValueError(f'Not a tokenizers tokenizer.json: {error}') from error
    tokenizer.no_truncation()
    tokenizer.no_padding()
    ids = {name: tokenizer.token_to_id(name) for name in (CLS_TOKEN, SEP_TOKEN, PAD_TOKEN)}
    absent = [name for name, i in ids.items() if i is None]
    if absent:
      raise ValueError(f'The tokenizer has no {", ".join(absent)} token: a BERT '
                       'tokenizer.json is needed.')
    self._tokenizer = tokenizer
    self._json = tokenizer_json
    self.cls_id, self.sep_id, self.pad_id = ids[CLS_TOKEN], ids[SEP_TOKEN], ids[PAD_TOKEN]

  @classmethod
  def from_file(cls, path) -> 'WordPieceTokenizer':
    with open(path, encoding='utf-8') as f:
      text = f.read()
    try:
      return cls(text)
    except ValueError as error:
      raise ValueError(f'{path}: {error}') from error

  def __len__(self) -> int:
    return self._tokenizer.get_vocab_size()

  def __contains__(self, word: str) -> bool:
    """Whether the model reads `word`: it has pieces and none is the unknown token."""
    ids = self.pieces(word).ids
    return bool(ids) and self._tokenizer.token_to_id(UNK_TOKEN) not in ids

  def pieces(self, text: str | bytes) -> tokenizers.Encoding:
    """The word pieces of `text`, without markers (ids, tokens, offsets, word_ids)."""
    return self._tokenizer.encode(vocab_lib.as_text(text), add_special_tokens=False)

  def _ids(self, piece_ids: list[int], max_len: int) -> np.ndarray:
    if max_len < _NUM_MARKERS + 1:
      raise ValueError(f'max_len={max_len} leaves no room for a word piece between '
                       '[CLS] and [SEP]: use at least 3 (config.dataset.max_words).')
    kept = piece_ids[:max_len - _NUM_MARKERS]
    tokens = np.full([max_len], self.pad_id, np.int32)
    tokens[:len(kept) + _NUM_MARKERS] = [self.cls_id, *kept, self.sep_id]
    return tokens

  def encode(self, text: str | bytes, max_len: int) -> np.ndarray:
    """int32 [max_len]: [CLS], the first `max_len - 2` pieces, [SEP], then [PAD]."""
    return self._ids(self.pieces(text).ids, max_len)

  def batch_encode(self, texts: Iterable[str | bytes], max_len: int) -> np.ndarray:
    """int32 [N, max_len]."""
    encodings = self._tokenizer.encode_batch(
        [vocab_lib.as_text(t) for t in texts], add_special_tokens=False)
    if not encodings:
      return np.zeros([0, max_len], np.int32)
    return np.stack([self._ids(e.ids, max_len) for e in encodings])

  def count_truncated(self, texts: Iterable[str | bytes], max_len: int) -> int:
    """How many of `texts` have more than `max_len - 2` pieces (their tail is dropped)."""
    encodings = self._tokenizer.encode_batch(
        [vocab_lib.as_text(t) for t in texts], add_special_tokens=False)
    return sum(len(e.ids) > max_len - _NUM_MARKERS for e in encodings)

  def alignment_words(self, text: str | bytes,
                      max_len: int) -> list[tuple[str, list[int]]]:
    """The words of `text` kept by `encode`, each with its pieces' positions in the ids.

    A word is what the tokenizer's pre-tokeniser splits (punctuation is a word of its
    own); its text is taken from `text` as written (case kept), and a word that
    truncation cuts shows the text of its kept pieces only.
    """
    text = vocab_lib.as_text(text)
    encoding = self.pieces(text)
    words = {}
    for position, (word, (start, end)) in enumerate(
        zip(encoding.word_ids, encoding.offsets), start=1):  # position 0 is [CLS]
      if position > max_len - _NUM_MARKERS:
        break
      first, last, positions = words.get(word, (start, end, []))
      words[word] = (min(first, start), max(last, end), positions + [position])
    return [(text[start:end], positions) for start, end, positions in words.values()]

  def to_json(self) -> dict[str, Any]:
    """A JSON-ready dict holding the whole tokenizer (what the checkpoint stores)."""
    return {_JSON_KEY: json.loads(self._json)}

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> 'WordPieceTokenizer':
    return cls(json.dumps(data[_JSON_KEY]))

  @staticmethod
  def is_saved_json(data: Mapping[str, Any]) -> bool:
    """Whether a checkpoint's vocabulary item holds a word-piece tokenizer."""
    return _JSON_KEY in data

  def __getstate__(self):  # grain workers receive the tokenizer by pickling
    return {'tokenizer_json': self._json}

  def __setstate__(self, state):
    self.__init__(state['tokenizer_json'])
