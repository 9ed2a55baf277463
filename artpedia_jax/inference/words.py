"""Which words of a query or sentence the model reads, and whether that is enough.

A word outside the bi-GRU's vocabulary (or with a BERT `[UNK]` piece) reaches the model
as "unknown": a query of unknown words scores on its few known ones, usually function
words ("of", "a"), and still ranks paintings with confident-looking numbers. So every
answer carries the words read and those not, and an answer whose content words are
mostly unknown is marked unreliable. Function words are also what the alignment
pictures dim: they align with some region, but carry no meaning of their own.
"""

import dataclasses
from collections.abc import Container, Sequence

# English closed-class words: articles, pronouns, prepositions, conjunctions,
# auxiliaries and a few adverbs; what a description of a painting holds besides content.
FUNCTION_WORDS = frozenset('''
a an the this that these those there here it its it's they them their theirs he him
his she her hers we us our you your i me my one ones
of in on at to from by with without within into onto upon over under above below
between among through across along around behind beside besides near against toward
towards about after before during until since via per off out up down
and or nor but yet so than as if whether while because though although
is are was were be been being am has have had having do does did done will would
shall should can could may might must
not no also very too just only then which who whom whose what where when why how
all any each both either neither some such other another more most much many few
'''.split())


def is_function_word(word: str) -> bool:
  return word.lower() in FUNCTION_WORDS


@dataclasses.dataclass(frozen=True)
class WordsRead:
  """A text's words split by whether the model knows them, in the text's order."""
  known: list[str]
  unknown: list[str]

  @classmethod
  def of(cls, words: Sequence[str], vocabulary: Container[str]) -> 'WordsRead':
    return cls([w for w in words if w in vocabulary],
               [w for w in words if w not in vocabulary])

  @property
  def unreliable(self) -> bool:
    """Most of the content words are unknown (most of all words, without content
    words), so a score says little about the text."""
    content_known = [w for w in self.known if not is_function_word(w)]
    content_unknown = [w for w in self.unknown if not is_function_word(w)]
    if not content_known and not content_unknown:
      content_known, content_unknown = self.known, self.unknown
    return len(content_unknown) > len(content_known)

  def to_json(self) -> dict[str, list[str]]:
    return {'known': list(self.known), 'unknown': list(self.unknown)}
