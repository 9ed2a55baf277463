"""The word-piece tokenizer on a real checkpoint's tokenizer.json (all-MiniLM-L6-v2).

all-MiniLM-L6-v2's file itself pads and truncates to 128 tokens around `[CLS] … [SEP]`:
the `tokenizers` library running the file as it is gives the ids the file defines, which
`WordPieceTokenizer` must reproduce at max_len 128 (it switches the file's padding and
truncation off and does its own).
"""

import numpy as np
import tokenizers

from artpedia_jax.data import wordpiece

HARD_CASES = {  # text → the pieces an uncased BERT vocabulary gives it
    'Élisabeth Vigée Le Brun, 18th-century.': [
        'elisabeth', 'vi', '##gee', 'le', 'br', '##un', ',', '18th', '-', 'century', '.'],
    'St. Jerome (c. 1780–1785)': [
        'st', '.', 'jerome', '(', 'c', '.', '1780', '–', '1785', ')'],
    "Café São Paulo, 1,200 florins; Dürer's Œuvre": [
        'cafe', 'sao', 'paulo', ',', '1', ',', '200', 'fl', '##orin', '##s', ';', 'du',
        '##rer', "'", 's', 'œ', '##u', '##vre'],
}


def test_real_tokenizer_gives_the_ids_its_file_defines(minilm_folder):
  path = minilm_folder / 'tokenizer.json'
  ours = wordpiece.WordPieceTokenizer.from_file(path)
  theirs = tokenizers.Tokenizer.from_file(str(path))
  assert theirs.padding['length'] == theirs.truncation['max_length'] == 128
  long_text = ' '.join(HARD_CASES) * 8  # over 128 pieces: truncated, [SEP] kept
  texts = [*HARD_CASES, long_text, '']

  for text in texts:
    np.testing.assert_array_equal(ours.encode(text, 128), theirs.encode(text).ids, text)
  np.testing.assert_array_equal(ours.batch_encode(texts, 128),
                                [e.ids for e in theirs.encode_batch(texts)])
  for text, pieces in HARD_CASES.items():
    assert ours.pieces(text).tokens == pieces
  assert ours.count_truncated(texts, 128) == 1
