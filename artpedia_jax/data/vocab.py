"""Word-level tokenizer, vocabulary and GloVe initialisation of the word embeddings.

The vocabulary is built from the *training split only* (so validation and test words the
model never saw become `<unk>`), is deterministic (same data, same ids) and is stored as
JSON beside the checkpoint, so that evaluation encodes text exactly as training did.
"""

from collections.abc import Iterable, Mapping, Sequence
import collections
import json
import re
from typing import Any

from absl import logging
from etils import epath
import numpy as np

PAD_TOKEN = '<pad>'
UNK_TOKEN = '<unk>'
_SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN)
_NUM_SPECIAL_TOKENS = len(_SPECIAL_TOKENS)
# Runs of Unicode letters or digits: punctuation, symbols and underscores separate words.
_WORD_PATTERN = re.compile(r'[^\W_]+')


def as_text(value: str | bytes) -> str:
  """TFDS gives text features as UTF-8 bytes; everything else here works on str."""
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def tokenize(text: str | bytes) -> list[str]:
  """Lower-cased words and numbers of `text`; the dataset gives text as bytes or str."""
  return _WORD_PATTERN.findall(as_text(text).lower())


class Vocabulary:
  """Maps words to int ids: 0 is `<pad>`, 1 is `<unk>`, then words by frequency."""

  PAD = 0
  UNK = 1

  def __init__(self, words: Sequence[str]):
    """`words` are the ids' words in order, starting with `<pad>` and `<unk>`."""
    if tuple(words[:_NUM_SPECIAL_TOKENS]) != _SPECIAL_TOKENS:
      raise ValueError(
          f'A vocabulary must start with {_SPECIAL_TOKENS}; got {list(words[:2])}.'
          ' Build it with Vocabulary.build or load a file written by Vocabulary.save.')
    if len(set(words)) != len(words):
      raise ValueError('A vocabulary lists each word once; the given words repeat some.')
    self.words = list(words)
    self._ids = {word: i for i, word in enumerate(self.words)}

  @classmethod
  def build(cls, sentences: Iterable[str | bytes], min_count: int = 1) -> 'Vocabulary':
    """Keeps words seen at least `min_count` times, by count (desc) then word, for stable ids."""
    counts = collections.Counter(word for s in sentences for word in tokenize(s))
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    logging.info('Vocabulary: %d of %d distinct words seen at least %d times.',
                 len(kept), len(counts), min_count)
    return cls([*_SPECIAL_TOKENS, *kept])

  def __len__(self) -> int:
    return len(self.words)

  def __contains__(self, word: str) -> bool:
    return word in self._ids

  def word_id(self, word: str) -> int:
    return self._ids.get(word, self.UNK)

  def encode(self, text: str | bytes, max_len: int) -> np.ndarray:
    """int32 [max_len]: the first `max_len` words, then `<pad>`."""
    ids = [self.word_id(w) for w in tokenize(text)[:max_len]]
    tokens = np.zeros([max_len], np.int32)
    tokens[:len(ids)] = ids
    return tokens

  def batch_encode(self, texts: Iterable[str | bytes], max_len: int) -> np.ndarray:
    """int32 [N, max_len]."""
    encoded = [self.encode(t, max_len) for t in texts]
    return np.stack(encoded) if encoded else np.zeros([0, max_len], np.int32)

  def count_truncated(self, texts: Iterable[str | bytes], max_len: int) -> int:
    """How many of `texts` have more than `max_len` words (their tail is dropped)."""
    return sum(len(tokenize(t)) > max_len for t in texts)

  def alignment_words(self, text: str | bytes,
                      max_len: int) -> list[tuple[str, list[int]]]:
    """The words `encode` keeps, each with its position in the ids."""
    return [(word, [position]) for position, word in enumerate(tokenize(text)[:max_len])]

  def to_json(self) -> dict[str, Any]:
    """A JSON-ready dict (what the checkpoint stores beside the parameters)."""
    return {'words': list(self.words)}

  @classmethod
  def from_json(cls, data: Mapping[str, Any] | str) -> 'Vocabulary':
    """Inverse of `to_json`; also takes the JSON text itself."""
    if isinstance(data, str):
      data = json.loads(data)
    if 'words' not in data:
      raise ValueError('Vocabulary JSON has no "words" list; was it written by Vocabulary.save?')
    return cls(data['words'])

  def save(self, path: str | epath.Path) -> None:
    epath.Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding='utf-8')

  @classmethod
  def load(cls, path: str | epath.Path) -> 'Vocabulary':
    return cls.from_json(epath.Path(path).read_text(encoding='utf-8'))


def build_from_source(source: Sequence[dict[str, Any]], min_count: int) -> Vocabulary:
  """Builds the vocabulary from every sentence of `source`, which must be the *train* split."""
  return Vocabulary.build(
      (s for i in range(len(source)) for s in source[i]['sentences']), min_count)


def load_glove(path: str | epath.Path, vocab: Vocabulary, dim: int,
               seed: int = 0) -> tuple[np.ndarray, int]:
  """Word-embedding init from a GloVe text file (`word v1 ... v_dim` per line).

  Words absent from the file keep a small seeded random vector so that they still differ
  from each other; the `<pad>` row is zero because padding must contribute nothing.

  Returns:
    (float32 [len(vocab), dim] matrix, number of vocabulary words, `<pad>` and `<unk>`
    aside, that the file lacks).
  """
  matrix = (np.random.default_rng(seed).standard_normal([len(vocab), dim]) * 0.1)
  matrix = matrix.astype(np.float32)
  found = np.zeros([len(vocab)], bool)
  with epath.Path(path).open('r', encoding='utf-8') as f:
    for line_number, line in enumerate(f, start=1):
      parts = line.rstrip().split(' ')
      if len(parts) != dim + 1:
        raise ValueError(
            f'{path} line {line_number}: {len(parts) - 1} values after the word, expected'
            f' {dim}. Set the word dimension (config.model.word_dim) to the file\'s dimension.')
      if parts[0] in vocab:
        word_id = vocab.word_id(parts[0])
        matrix[word_id] = np.asarray(parts[1:], np.float32)
        found[word_id] = True
  matrix[Vocabulary.PAD] = 0.0
  num_missing = int(np.sum(~found[_NUM_SPECIAL_TOKENS:]))
  logging.info('GloVe %s: %d of %d vocabulary words missing (random init).',
               path, num_missing, len(vocab) - _NUM_SPECIAL_TOKENS)
  return matrix, num_missing
