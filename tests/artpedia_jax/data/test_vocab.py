"""Tokenizer, vocabulary and GloVe loading."""

import numpy as np
import pytest

from artpedia_jax.data import vocab as vocab_lib

SENTENCES = [b'The red circle, left of the SQUARE.', 'A red square; a blue circle!',
             'Painted in 1503 by Leonardo.']


def test_tokenize_lowercases_and_drops_punctuation():
  assert vocab_lib.tokenize(b'The RED circle, (1503)!') == ['the', 'red', 'circle', '1503']
  assert vocab_lib.tokenize('Über die Brücke — Gemälde') == [
      'über', 'die', 'brücke', 'gemälde']
  assert vocab_lib.tokenize('snake_case  ...') == ['snake', 'case']
  assert vocab_lib.tokenize('') == []


def test_build_orders_by_count_then_word():
  vocab = vocab_lib.Vocabulary.build(SENTENCES, min_count=1)
  assert vocab.words[:2] == ['<pad>', '<unk>']
  # red, circle, square, a, the twice; then the rest alphabetically.
  assert vocab.words[2:7] == ['a', 'circle', 'red', 'square', 'the']
  assert vocab.words[7:] == sorted(vocab.words[7:])
  assert len(vocab) == 2 + 5 + 8


def test_min_count_drops_rare_words_to_unk():
  vocab = vocab_lib.Vocabulary.build(SENTENCES, min_count=2)
  assert vocab.words == ['<pad>', '<unk>', 'a', 'circle', 'red', 'square', 'the']
  tokens = vocab.encode('The blue square', max_len=4)
  np.testing.assert_array_equal(tokens, [6, vocab_lib.Vocabulary.UNK, 5, 0])
  assert tokens.dtype == np.int32


def test_encode_truncates_and_batch_encode_pads():
  vocab = vocab_lib.Vocabulary.build(SENTENCES)
  np.testing.assert_array_equal(vocab.encode('red red red red', max_len=2),
                                [vocab.word_id('red')] * 2)
  batch = vocab.batch_encode(['red', b'', 'never seen'], max_len=3)
  assert batch.dtype == np.int32
  np.testing.assert_array_equal(batch, [[vocab.word_id('red'), 0, 0], [0, 0, 0], [1, 1, 0]])
  assert vocab.batch_encode([], max_len=3).shape == (0, 3)


def test_json_round_trip(tmp_path):
  vocab = vocab_lib.Vocabulary.build(SENTENCES + ['Gemälde'])
  path = tmp_path / 'vocab.json'
  vocab.save(path)
  loaded = vocab_lib.Vocabulary.load(path)
  assert loaded.words == vocab.words
  assert vocab_lib.Vocabulary.from_json(vocab.to_json()).words == vocab.words
  np.testing.assert_array_equal(loaded.encode('gemälde red', 3), vocab.encode('gemälde red', 3))


def test_rejects_vocabulary_without_special_tokens():
  with pytest.raises(ValueError, match='must start with'):
    vocab_lib.Vocabulary(['red', 'blue'])
  with pytest.raises(ValueError, match='"words"'):
    vocab_lib.Vocabulary.from_json('{"tokens": []}')


def test_build_from_source_reads_sentences_field():
  source = [{'sentences': [b'red circle', b'red']}, {'sentences': [b'blue']}]
  vocab = vocab_lib.build_from_source(source, min_count=1)
  assert vocab.words == ['<pad>', '<unk>', 'red', 'blue', 'circle']


def _write_glove(path, rows):
  path.write_text(''.join(f'{w} ' + ' '.join(str(v) for v in vec) + '\n' for w, vec in rows))


def test_load_glove_counts_found_and_missing(tmp_path):
  vocab = vocab_lib.Vocabulary(['<pad>', '<unk>', 'red', 'circle', 'gemälde'])
  path = tmp_path / 'glove.txt'
  _write_glove(path, [('red', [1.0, 2.0, 3.0]), ('green', [0.0, 0.0, 1.0]),
                      ('gemälde', [-1.0, 0.5, 0.25])])
  matrix, num_missing = vocab_lib.load_glove(path, vocab, dim=3)
  assert matrix.shape == (5, 3) and matrix.dtype == np.float32
  assert num_missing == 1  # circle
  np.testing.assert_array_equal(matrix[2], [1.0, 2.0, 3.0])
  np.testing.assert_array_equal(matrix[4], [-1.0, 0.5, 0.25])
  np.testing.assert_array_equal(matrix[0], 0.0)
  assert 0 < np.abs(matrix[3]).max() < 1.0  # small random init
  again, _ = vocab_lib.load_glove(path, vocab, dim=3)
  np.testing.assert_array_equal(again, matrix)


def test_load_glove_names_the_bad_line(tmp_path):
  vocab = vocab_lib.Vocabulary(['<pad>', '<unk>', 'red'])
  path = tmp_path / 'glove.txt'
  _write_glove(path, [('red', [1.0, 2.0, 3.0]), ('blue', [1.0, 2.0])])
  with pytest.raises(ValueError, match='line 2: 2 values .* expected 3'):
    vocab_lib.load_glove(path, vocab, dim=3)
