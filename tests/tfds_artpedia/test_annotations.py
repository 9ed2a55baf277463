"""`artpedia.json` validation: noise in sentences is tolerated, broken entries are named."""

import json

import pytest

from tfds_artpedia import annotations


def _entry(**overrides):
  entry = {'title': 'Mona Lisa', 'img_url': 'https://upload.wikimedia.org/a.jpg',
           'year': 1503, 'visual_sentences': ['A woman.'],
           'contextual_sentences': ['Painted by Leonardo.'], 'split': 'train'}
  entry.update(overrides)
  return entry


def _parse(entries):
  return annotations.parse(json.dumps(entries, ensure_ascii=False))


def test_parses_fields_and_maps_val_to_validation():
  result = _parse({'7': _entry(split='val', year=None,
                               visual_sentences=['One.', 'Two.'],
                               contextual_sentences=['Three.'])})
  (painting,) = result.paintings
  assert painting.id == '7'
  assert painting.split == 'validation'
  assert painting.year == annotations.UNKNOWN_YEAR
  assert painting.sentences == ('One.', 'Two.', 'Three.')
  assert painting.is_visual == (True, True, False)


def test_normalises_whitespace_keeps_unicode_and_drops_empty_sentences():
  result = _parse({'1': _entry(title='  La\u00a0Gioconda \n',
                               visual_sentences=[' Une  femme\tsourit. ', '', '   '],
                               contextual_sentences=['Der Künstler — 1503 ', '\n'])})
  (painting,) = result.paintings
  assert painting.title == 'La Gioconda'
  assert painting.sentences == ('Une femme sourit.', 'Der Künstler — 1503')
  assert painting.is_visual == (True, False)
  assert result.num_empty_sentences_dropped == 3


def test_a_painting_without_contextual_sentences_is_valid():
  (painting,) = _parse({'1': _entry(contextual_sentences=[])}).paintings
  assert painting.is_visual == (True,)


def test_malformed_json_names_line_and_column():
  with pytest.raises(annotations.AnnotationError, match=r'line 3 column 13'):
    annotations.parse('{\n "1": {\n   "title": ,\n }\n}')


def test_load_names_the_file(tmp_path):
  path = tmp_path / 'artpedia.json'
  path.write_text('[1, 2', encoding='utf-8')
  with pytest.raises(annotations.AnnotationError, match=str(path)):
    annotations.load(path)


def test_duplicate_painting_ids_are_an_error():
  text = '{"12": %s, "12": %s}' % (json.dumps(_entry()), json.dumps(_entry()))
  with pytest.raises(annotations.AnnotationError, match=r"duplicate painting ids \['12'\]"):
    annotations.parse(text)


def test_duplicate_fields_name_the_painting():
  text = '{"5": {"title": "a", "title": "b"}}'
  with pytest.raises(annotations.AnnotationError, match=r"'5'.*duplicate fields \['title'\]"):
    annotations.parse(text)


@pytest.mark.parametrize('entry, message', [
    ({k: v for k, v in _entry().items() if k != 'split'}, r"missing fields \['split'\]"),
    (_entry(split='dev'), r"unknown split 'dev'"),
    (_entry(visual_sentences=['ok', 3]), r"visual_sentences\[1\]' must be a string"),
    (_entry(contextual_sentences='one sentence'), r"'contextual_sentences' must be a list"),
    (_entry(title=None), r"'title' must be a string"),
    (_entry(year='1503'), r"'year' must be an integer or null"),
    (_entry(year=True), r"'year' must be an integer or null"),
    ('not an object', r'expected an object'),
])
def test_invalid_entries_name_the_painting(entry, message):
  with pytest.raises(annotations.AnnotationError, match=r"painting '42'.*" + message):
    _parse({'42': entry})


def test_ids_with_path_separators_are_rejected():
  with pytest.raises(annotations.AnnotationError, match='path separators'):
    _parse({'../etc': _entry()})


def test_top_level_must_be_an_object():
  with pytest.raises(annotations.AnnotationError, match='keyed by painting id'):
    annotations.parse('[]')
