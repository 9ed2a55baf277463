"""Splits free text (an article, a museum label) into the sentences the model scores.

syntok (a rule-based segmenter, pure Python, no model files, so it works offline) keeps
abbreviations such as "St. John", "c. 1503", "fig. 3" or "Mr." inside their sentence,
leaves hyphenated words ("18th-century") whole and keeps a closing quote with the
sentence it ends. Each sentence is returned as it stands in the text (its characters
from the first token to the last), so what a user reads is what they wrote.
"""

from syntok import segmenter


def split_sentences(text: str) -> list[str]:
  """The sentences of `text`, in order; blank text gives none."""
  sentences = []
  for paragraph in segmenter.analyze(text):
    for sentence in paragraph:
      first, last = sentence[0], sentence[-1]
      sentences.append(text[first.offset:last.offset + len(last.value)])
  return [s for s in sentences if s.strip()]
