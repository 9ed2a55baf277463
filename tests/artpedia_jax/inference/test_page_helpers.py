"""A sentence cut into its aligned words, as written, and their boxes for the page."""

from artpedia_jax.evaluation import alignment
from artpedia_jax.inference import page_helpers


def _word(word, box=(0.1, 0.2, 0.5, 0.6)):
  return alignment.AlignedWord(word, box, 0.5)


def test_words_are_found_in_the_text_as_written():
  text = 'The X-rays show a Red cross.'
  aligned = [_word(w) for w in ('the', 'x', 'rays', 'show', 'a', 'red', 'cross')]
  segments = page_helpers.word_segments(text, aligned)
  assert ''.join(piece for piece, _ in segments) == text
  assert [piece for piece, w in segments if w] == ['The', 'X', 'rays', 'show', 'a', 'Red',
                                                   'cross']
  assert [piece for piece, w in segments if not w] == [' ', '-', ' ', ' ', ' ', ' ', '.']


def test_a_word_missing_from_the_text_is_skipped():
  segments = page_helpers.word_segments('a cross', [_word('a'), _word('ghost'),
                                                    _word('cross')])
  assert [(piece, w.word if w else None) for piece, w in segments] == [
      ('a', 'a'), (' ', None), ('cross', 'cross')]


def test_boxes_are_x_y_width_height_with_corners_in_order():
  assert page_helpers.box(_word('w', (0.5, 0.6, 0.1, 0.2))) == '0.2000 0.1000 0.4000 0.4000'
  words = [_word('the', (0, 0, 1, 1)), _word('red'), _word('cross'),
           _word('ring', (0, 0, 0.5, 0.5))]
  assert page_helpers.distinct_boxes(words) == ['0.2000 0.1000 0.4000 0.4000',
                                                '0.0000 0.0000 0.5000 0.5000']
