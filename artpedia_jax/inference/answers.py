"""The model's answers as JSON: one shape each for the API, the command line and files.

`GET /api/search`, `GET /api/paintings/<id>` and `POST /api/annotate` return these
dicts, `search --json` prints the first, and `annotate` writes the third as
annotation.json, so a script sees the same fields whichever way it asks. Paintings are
named by their Artpedia id; every answer about a text carries the words the model read
(`known`) and those it did not (`unknown`).
"""

from collections.abc import Sequence

from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import words as words_lib


def words_json(words: words_lib.WordsRead) -> dict:
  return words.to_json()


def search_json(result: inference.SearchResult) -> dict:
  """The paintings found for a query, best first, and how much of it the model read."""
  return {
      'query': result.query,
      'results': [{'id': hit.painting_id, 'title': hit.title, 'year': hit.year,
                   'score': hit.score} for hit in result.hits],
      'words': words_json(result.words),
      'unreliable': result.unreliable,
  }


def painting_json(collection, index: int,
                  ranked: Sequence[inference.RankedSentence]) -> dict:
  """A collection painting with its own sentences ranked by S(v, s)."""
  rows = collection.sentence_rows(index)
  return {
      'id': collection.ids[index],
      'title': collection.titles[index],
      'year': collection.year(index),
      'sentences': [{
          'text': s.text, 'kind': s.kind, 'p_visual': s.p_visual, 'score': s.score,
          'label': 'visual' if collection.is_visual[rows[s.index]] else 'contextual',
      } for s in ranked],
  }


def annotation_json(painting_id: str, sentences: Sequence[inference.AnnotatedSentence],
                    step: int) -> dict:
  """A text's sentences in reading order, each with its kind, scores, words' regions
  and the words the model did not know."""
  return {
      'painting': painting_id,
      'checkpoint_step': step,
      'sentences': [{
          'text': s.text,
          'kind': s.kind,
          'p_visual': s.p_visual,
          'score': s.score,
          'words': [{'word': w.word, 'box_y0_x0_y1_x1': list(w.box), 'score': w.score,
                     'function_word': words_lib.is_function_word(w.word)}
                    for w in s.words],
          'unknown_words': s.words_read.unknown,
          'unreliable': s.words_read.unreliable,
      } for s in sentences],
  }
