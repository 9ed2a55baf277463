"""The two kinds of tokenizer a run may use, as one type, and the truncation count.

'bigru' runs use the training split's word vocabulary (`vocab.Vocabulary`); 'bert' runs
the pretrained model folder's word pieces (`wordpiece.WordPieceTokenizer`). The pipeline
needs only what both share, so it depends on this module, not on the model's.
"""

from collections.abc import Iterable

from absl import logging

from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.data import wordpiece

Tokenizer = vocab_lib.Vocabulary | wordpiece.WordPieceTokenizer


def log_truncated(tokenizer: Tokenizer, texts: Iterable[str | bytes], max_len: int,
                  what: str) -> int:
  """Logs (and returns) how many of `texts` are cut to `max_len` tokens."""
  texts = list(texts)
  count = tokenizer.count_truncated(texts, max_len)
  logging.info('%s: %d of %d sentences truncated to %d tokens '
               '(config.dataset.max_words).', what, count, len(texts), max_len)
  return count
