"""Splits free text (an article, a museum label) into the sentences the model scores.

syntok (a rule-based segmenter, pure Python, no model files, so it works offline) keeps
abbreviations such as "St. John", "c. 1503", "fig. 3" or "Mr." inside their sentence,
leaves hyphenated words ("18th-century") whole and keeps a closing quote with the
sentence it ends. It does split inside a quotation that holds full stops (`called it "a
quiet manifesto. Nothing more." in a review`), so sentences that open a quotation are
joined with the following ones of their paragraph up to the one that closes it. Each
sentence is returned as it stands in the text (its characters from the first token to
the last), so what a user reads is what they wrote.
"""

from syntok import segmenter

_STRAIGHT_QUOTE = '"'
_OPENING_QUOTES = '“«„'
_CLOSING_QUOTES = '”»'


def _open_quotes(text: str) -> int:
  """How many quotations `text` opens and leaves open (negative: closes earlier ones)."""
  curly = sum(text.count(q) for q in _OPENING_QUOTES) - sum(
      text.count(q) for q in _CLOSING_QUOTES)
  return curly + text.count(_STRAIGHT_QUOTE) % 2


def _spans(paragraph) -> list[tuple[int, int]]:
  return [(sentence[0].offset, sentence[-1].offset + len(sentence[-1].value))
          for sentence in paragraph]


def _join_quotations(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
  """`spans` with each run that opens a quotation and closes it later made one span; a
  quotation never closed in the paragraph joins nothing."""
  joined, i = [], 0
  while i < len(spans):
    end, depth = i, _open_quotes(text[slice(*spans[i])])
    while depth > 0 and end + 1 < len(spans):
      end += 1
      depth = _open_quotes(text[spans[i][0]:spans[end][1]])
    if depth > 0:
      end = i
    joined.append((spans[i][0], spans[end][1]))
    i = end + 1
  return joined


def split_sentences(text: str) -> list[str]:
  """The sentences of `text`, in order; blank text gives none."""
  sentences = []
  for paragraph in segmenter.analyze(text):
    sentences += [text[start:stop]
                  for start, stop in _join_quotations(text, _spans(paragraph))]
  return [s for s in sentences if s.strip()]
