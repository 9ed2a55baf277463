"""Which words the model read, and when a text is too unknown to trust."""

from artpedia_jax.inference import words


def test_words_keep_the_text_order_split_by_the_vocabulary():
  read = words.WordsRead.of(['a', 'portrait', 'of', 'a', 'saint'], {'a', 'of'})
  assert read.known == ['a', 'of', 'a'] and read.unknown == ['portrait', 'saint']
  assert read.to_json() == {'known': ['a', 'of', 'a'], 'unknown': ['portrait', 'saint']}


def test_unreliable_when_most_content_words_are_unknown():
  vocabulary = {'a', 'of', 'the', 'red', 'cross', 'blue'}
  def unreliable(text):
    return words.WordsRead.of(text.split(), vocabulary).unreliable
  assert unreliable('portrait of a saint')  # only function words known
  assert unreliable('a red xyzzy plugh')
  assert not unreliable('a red cross')
  assert not unreliable('a red xyzzy')  # half: the known word still carries meaning
  assert unreliable('of xyzzy')
  assert unreliable('qq ww') and not unreliable('of the')  # no content words: all count


def test_function_words_are_case_blind():
  assert words.is_function_word('The') and words.is_function_word('of')
  assert not words.is_function_word('cross')
