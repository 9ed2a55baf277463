"""What the page's templates need besides the answers themselves.

The templates (`templates/`, Jinja) and their stylesheet and script (`static/`) are
shared by the local web page (`web_app`, through Flask) and the annotation file that
`artpedia_jax.annotate` writes (`annotation_page`, through `environment` here). A
sentence is shown as written, its words made hoverable: `word_segments` finds each word
the model aligned in the sentence's own text, and `box` turns its region into the
numbers the page's script draws over the painting.
"""

from collections.abc import Callable, Sequence
import pathlib

import jinja2

from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.inference import words as words_lib

TEMPLATES = pathlib.Path(__file__).parent / 'templates'
STATIC = pathlib.Path(__file__).parent / 'static'


def word_segments(text: str, words: Sequence[alignment_lib.AlignedWord]
                  ) -> list[tuple[str, alignment_lib.AlignedWord | None]]:
  """`text` cut into (piece, aligned word or None): the words in order, as written,
  and the text between them."""
  segments, cursor, lowered = [], 0, text.lower()
  for word in words:
    start = lowered.find(word.word.lower(), cursor)
    if start < 0:
      continue
    if start > cursor:
      segments.append((text[cursor:start], None))
    end = start + len(word.word)
    segments.append((text[start:end], word))
    cursor = end
  if cursor < len(text):
    segments.append((text[cursor:], None))
  return segments


def box(aligned: alignment_lib.AlignedWord) -> str:
  """The word's region as 'x y width height' in [0, 1] (detector boxes may come with
  corners swapped)."""
  y0, x0, y1, x1 = aligned.box
  x, y = min(x0, x1), min(y0, y1)
  return f'{x:.4f} {y:.4f} {abs(x1 - x0):.4f} {abs(y1 - y0):.4f}'


def distinct_boxes(words: Sequence[alignment_lib.AlignedWord]) -> list[str]:
  """The regions of a sentence's content words, each once."""
  return list(dict.fromkeys(box(w) for w in words
                            if not words_lib.is_function_word(w.word)))


def register(env: jinja2.Environment) -> None:
  """The filters and tests the templates use."""
  env.filters['segments'] = word_segments
  env.filters['box'] = box
  env.filters['distinct_boxes'] = distinct_boxes
  env.tests['function_word'] = words_lib.is_function_word


def environment(asset_url: Callable[[str], str]) -> jinja2.Environment:
  """The templates outside Flask (the annotation file), with `asset_url(name)` the URL
  of a file of static/."""
  env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                           trim_blocks=True, lstrip_blocks=True)
  register(env)
  env.globals['asset'] = asset_url
  return env
