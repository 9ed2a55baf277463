"""The sentence splitter on the abbreviations, numbers and quotes of texts about art."""

from artpedia_jax.inference import sentences


def test_hard_cases_stay_inside_their_sentence():
  text = ('The altarpiece was painted for the chapel of St. John in Florence, c. 1503. '
          'It shows the Virgin holding the Child. An 18th-century inventory calls it '
          '"a fine work by Mr. Raphael." Dr. Smith disagreed! "Is it finished?" asked '
          'Vasari. It was restored in 1850 (see fig. 3). The panel measures 2.5 m. across.')
  assert sentences.split_sentences(text) == [
      'The altarpiece was painted for the chapel of St. John in Florence, c. 1503.',
      'It shows the Virgin holding the Child.',
      'An 18th-century inventory calls it "a fine work by Mr. Raphael."',
      'Dr. Smith disagreed!',
      '"Is it finished?" asked Vasari.',
      'It was restored in 1850 (see fig. 3).',
      'The panel measures 2.5 m. across.',
  ]


def test_paragraphs_and_line_breaks_end_sentences_and_text_is_kept_verbatim():
  text = 'Title of the work\n\nA woman  holds a child. She smiles'
  assert sentences.split_sentences(text) == [
      'Title of the work', 'A woman  holds a child.', 'She smiles']


def test_blank_text_has_no_sentences():
  assert sentences.split_sentences('  \n\t ') == []
  assert sentences.split_sentences('') == []


def test_a_quotation_with_full_stops_stays_inside_its_sentence():
  text = ('Critics called it "a quiet manifesto. Nothing more." in their review. '
          'It hangs in Milan. She wrote “a study. A sketch.” twice. An unclosed " quote. '
          'Ends here.')
  assert sentences.split_sentences(text) == [
      'Critics called it "a quiet manifesto. Nothing more." in their review.',
      'It hangs in Milan.',
      'She wrote “a study. A sketch.” twice.',
      'An unclosed " quote.',
      'Ends here.',
  ]
