"""Tests of the sample corpus generator: determinism, Artpedia's shape, the on-disk formats."""

import base64
import functools
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest

from tfds_artpedia import sample

_WORD = re.compile(r"[a-z]+")
_ALL_COLOURS = {**sample.COLOURS, **sample.BACKGROUND_COLOURS}
_WELL_FORMED_KINDS = ('visual', 'contextual', 'other_work', 'other_work_marked', 'misfiled',
                      'long')
_OTHER_WORK_KINDS = ('other_work', 'other_work_marked')


@pytest.fixture(scope='module')
def paintings():
  return list(sample.generate(num_paintings=30, seed=0))


@pytest.fixture(scope='module')
def large_corpus():
  return list(sample.generate(num_paintings=200, seed=1))


def _words(sentence):
  return set(_WORD.findall(sentence.lower()))


def _image_colours(image):
  return {rgb for _, rgb in image.getcolors(maxcolors=image.width * image.height)}


def _assert_same_painting(a, b):
  assert (a.id, a.title, a.year, a.split, a.img_url) == (b.id, b.title, b.year, b.split,
                                                        b.img_url)
  assert a.visual_sentences == b.visual_sentences
  assert a.contextual_sentences == b.contextual_sentences
  assert (a.visual_kinds, a.contextual_kinds) == (b.visual_kinds, b.contextual_kinds)
  assert a.image.size == b.image.size and a.image.tobytes() == b.image.tobytes()
  np.testing.assert_array_equal(a.features, b.features)
  np.testing.assert_array_equal(a.boxes, b.boxes)


def _labelled(painting):
  return list(zip(painting.visual_sentences + painting.contextual_sentences,
                  painting.visual_kinds + painting.contextual_kinds))


def _true_of_the_picture(painting):
  """Sentences that describe this painting: visual ones, their fragments, misfiled ones."""
  visual = [s for s, k in zip(painting.visual_sentences, painting.visual_kinds)
            if k in ('visual', 'fragment')]
  return visual + [s for s, k in zip(painting.contextual_sentences, painting.contextual_kinds)
                   if k == 'misfiled']


def _tree_bytes(root):
  root = pathlib.Path(root)
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
          if p.is_file()}


def test_generate_is_deterministic(paintings):
  again = list(sample.generate(num_paintings=30, seed=0))
  assert len(again) == len(paintings) == 30
  for a, b in zip(paintings, again):
    _assert_same_painting(a, b)


def test_different_seeds_give_different_corpora(paintings):
  other = list(sample.generate(num_paintings=30, seed=1))
  assert [p.visual_sentences for p in other] != [p.visual_sentences for p in paintings]
  assert [p.title for p in other] != [p.title for p in paintings]
  assert not np.array_equal(other[0].features[:1], paintings[0].features[:1])


def test_bad_arguments_fail_at_the_call():
  with pytest.raises(ValueError, match='num_paintings'):
    sample.generate(num_paintings=-1)
  with pytest.raises(ValueError, match='seed'):
    sample.generate(num_paintings=3, seed=-2)


def test_paintings_have_artpedia_fields(paintings):
  assert [p.id for p in paintings] == [str(i) for i in range(30)]
  url = re.compile(r'^https://upload\.wikimedia\.org/wikipedia/commons/([0-9a-f])/\1[0-9a-f]/'
                   r'[^/\s]+\.(jpg|png)$')
  for p in paintings:
    assert p.title and isinstance(p.title, str)
    assert p.year is None or 1700 < p.year < 2000
    assert url.match(p.img_url), p.img_url
    assert p.split in ('train', 'val', 'test')
    assert 1 <= p.visual_kinds.count('visual') + p.visual_kinds.count('fragment') <= 6
    assert len(p.visual_kinds) == len(p.visual_sentences)
    assert len(p.contextual_kinds) == len(p.contextual_sentences)
    assert set(p.visual_kinds + p.contextual_kinds) <= set(sample.SENTENCE_KINDS)
    for sentence, kind in _labelled(p):
      assert sentence.strip(), (p.id, kind)  # the builder would drop an empty one
      if kind in _WELL_FORMED_KINDS:
        assert sentence[0].isupper() and sentence.endswith('.'), (p.id, sentence)
    assert p.image.mode == 'RGB'
    assert 256 <= max(p.image.size) <= 384


def test_splits_and_sentence_ratios_follow_artpedia(large_corpus):
  stats = sample.corpus_statistics(large_corpus)
  assert stats['num_paintings'] == 200
  assert stats['paintings_per_split'] == {'train': 160, 'val': 20, 'test': 20}
  assert 2.6 < stats['visual_per_painting'] < 3.6
  assert 5.5 < stats['contextual_per_painting'] < 7.5
  assert 1.6 < stats['contextual_sentences'] / stats['visual_sentences'] < 2.6
  assert 5 <= stats['paintings_without_contextual'] <= 40
  assert stats['vocabulary_size'] > 300
  assert 8 < stats['mean_sentence_length'] < 20
  unknown_years = sum(p.year is None for p in large_corpus)
  assert 5 <= unknown_years <= 40


def test_small_corpora_still_have_every_split():
  splits = [p.split for p in sample.generate(num_paintings=5, seed=0)]
  assert sorted(splits) == ['test', 'train', 'train', 'train', 'val']


def test_regions_have_detector_shapes(paintings):
  counts = set()
  for p in paintings:
    num_regions = len(p.boxes)
    counts.add(num_regions)
    assert 3 <= num_regions <= 8
    assert p.features.dtype == np.float32 and p.features.shape == (num_regions,
                                                                    sample.FEATURE_DIM)
    assert p.boxes.dtype == np.float32 and p.boxes.shape == (num_regions, 4)
    y0, x0, y1, x1 = p.boxes.T
    assert np.all(p.boxes >= 0) and np.all(p.boxes <= 1)
    assert np.all(y0 < y1) and np.all(x0 < x1)
  assert len(counts) > 2  # the number of regions varies from painting to painting


@functools.cache
def _inverse_projection():
  return np.linalg.pinv(sample._projection().T)


def _decoded_attributes(features):
  """Least-squares inverse of the detector projection, rounded to the attribute multi-hot."""
  index = sample._attribute_index()
  coefficients = _inverse_projection() @ features.T
  assert np.all(np.abs(coefficients - np.round(coefficients)) < 0.2)  # noise is small
  names = {i: pair for pair, i in index.items()}
  return [[names[i] for i in np.flatnonzero(np.round(column) == 1)] for column in coefficients.T]


@pytest.mark.parametrize('seed', [0, 7])
def test_region_features_project_attributes_of_what_is_in_the_box(seed):
  # The same fixed projection for every seed: features decode to one object's attributes
  # (whose colour is painted inside its box) or to the background's.
  for p in sample.generate(num_paintings=10, seed=seed):
    width, height = p.image.size
    kinds = []
    for attributes, box in zip(_decoded_attributes(p.features), p.boxes):
      groups = dict(attributes)
      kinds.append(groups['region'])
      if groups['region'] == 'object':
        assert sorted(g for g, _ in attributes) == ['area', 'colour', 'region', 'shape', 'size']
        y0, x0, y1, x1 = (box * [height, width, height, width]).round().astype(int)
        crop = p.image.crop((x0, y0, x1, y1))
        assert sample.COLOURS[groups['colour']] in _image_colours(crop)
      else:
        assert {g for g, _ in attributes} == {'region', 'background', 'background colour'}
    assert 1 <= kinds.count('object') <= 4 and 2 <= kinds.count('background') <= 4


def test_visual_sentences_name_colours_that_are_painted(large_corpus):
  checked = 0
  for p in large_corpus:
    painted = _image_colours(p.image)
    for sentence in _true_of_the_picture(p):
      for word in _words(sentence) & set(_ALL_COLOURS):
        assert _ALL_COLOURS[word] in painted, (p.id, sentence)
        checked += 1
  assert checked > 300


def test_contextual_sentences_name_colours_and_shapes_of_other_works(paintings):
  colours, shapes = set(sample.COLOURS), set(sample.SHAPES)
  in_picture = not_in_picture = 0
  for p in paintings:
    painted = _image_colours(p.image)
    for sentence in p.contextual_sentences:
      words = _words(sentence)
      if words & shapes:
        for colour in words & colours:
          if sample.COLOURS[colour] in painted:
            in_picture += 1
          else:
            not_in_picture += 1
  # Both kinds occur, so a colour word alone does not say whether a sentence is visual.
  assert in_picture >= 3 and not_in_picture >= 3


def _scene_template(sentence):
  """The sentence with its scene words masked: what a text-only classifier has to go on."""
  phrases = sorted({*sample._PLACEMENTS, *sample.AREAS, 'to the left of', 'to the right of',
                    'above', 'below'}, key=len, reverse=True)
  words = sorted({*sample.COLOURS, *sample.SHAPES, *sample.SIZES}, key=len, reverse=True)
  masked = re.sub(r'\b(' + '|'.join(phrases) + r')\b', 'PLACE', sentence.lower())
  return re.sub(r'\b(' + '|'.join(words) + r')\b', 'WORD', masked)


def _other_work_sentences(painting):
  return [(s, k) for s, k in zip(painting.contextual_sentences, painting.contextual_kinds)
          if k in _OTHER_WORK_KINDS]


def test_one_contextual_sentence_in_eight_describes_another_work_in_visual_words(
    large_corpus):
  kinds = sample.corpus_statistics(large_corpus)['sentence_kinds']['contextual']
  unmarked, marked = kinds['other_work'], kinds['other_work_marked']
  assert 0.10 <= (unmarked + marked) / sum(kinds.values()) <= 0.15
  assert 0.4 <= unmarked / (unmarked + marked) <= 0.6
  visual_templates = {_scene_template(s) for p in large_corpus
                      for s, k in zip(p.visual_sentences, p.visual_kinds) if k == 'visual'}
  for p in large_corpus:
    for sentence, kind in _other_work_sentences(p):
      if kind == 'other_work_marked':  # "In its pendant, <a visual sentence>"
        marker, sentence = sentence.split(', ', 1)
        assert marker.startswith(('In ', 'On ')), marker
      assert _scene_template(sentence) in visual_templates, sentence


def _named_objects(sentence):
  """(shape, colour) pairs a sentence names: "red circle", or "the circle ... in red"."""
  words = _WORD.findall(sentence.lower())
  pairs = {(b, a) for a, b in zip(words, words[1:])
           if a in sample.COLOURS and b in sample.SHAPES}
  if not pairs:
    (colour,) = set(words) & set(sample.COLOURS)
    (shape,) = set(words) & set(sample.SHAPES)
    pairs = {(shape, colour)}
  return pairs


def test_other_works_name_objects_absent_from_the_painting(large_corpus):
  checked = 0
  for p in large_corpus:
    other_work = _other_work_sentences(p)
    if not other_work:
      continue
    painted = {(dict(a)['shape'], dict(a)['colour']) for a in _decoded_attributes(p.features)
               if dict(a)['region'] == 'object'}
    for sentence, _ in other_work:
      named = _named_objects(sentence)
      assert named and not named & painted, (p.id, sentence, painted)
      checked += 1
  assert checked > 100


def test_labels_are_noisy_like_artpedias(large_corpus):
  stats = sample.corpus_statistics(large_corpus)
  visual, contextual = (stats['sentence_kinds'][name] for name in ('visual', 'contextual'))
  # Misfiled: 2-3% of each list's own sentences end up in the other list.
  assert 0.01 <= contextual['misfiled'] / (visual['visual'] + contextual['misfiled']) <= 0.05
  assert 0.01 <= visual['misfiled'] / (contextual['contextual'] + visual['misfiled']) <= 0.05
  assert 0.01 <= (visual['fragment'] + contextual['fragment']) / (
      stats['visual_sentences'] + stats['contextual_sentences']) <= 0.05
  assert stats['sentences_over_60_words'] == contextual['long'] >= 2
  assert stats['sentences_without_words'] == visual['no_words'] + contextual['no_words'] >= 2
  for p in large_corpus:
    assert {'visual', 'fragment'} & set(p.visual_kinds), p.id  # a visual sentence remains
    for sentence, kind in _labelled(p):
      words = sentence.split()
      if kind == 'fragment':
        assert 2 <= len(words) <= 5, sentence
      elif kind == 'long':
        assert len(words) > 60, sentence
      assert (kind == 'no_words') == (not _WORD.findall(sentence.lower())), sentence


def test_write_folder_is_byte_identical_and_ignores_the_clock(tmp_path, monkeypatch):
  sample.write_folder(tmp_path / 'first', num_paintings=12, seed=4)
  later = time.time() + 400 * 86400
  monkeypatch.setattr(time, 'time', lambda: later)
  sample.write_folder(tmp_path / 'second', num_paintings=12, seed=4)
  first, second = _tree_bytes(tmp_path / 'first'), _tree_bytes(tmp_path / 'second')
  assert len(first) == 1 + 12 + 12  # artpedia.json, images, regions
  assert first == second


def test_write_folder_npz_round_trips(tmp_path, paintings):
  sample.write_folder(tmp_path, num_paintings=30, seed=0)
  annotations = json.loads((tmp_path / 'artpedia.json').read_text(encoding='utf-8'))
  assert list(annotations) == [p.id for p in paintings]
  modes = set()
  for p in paintings:
    entry = annotations[p.id]
    assert list(entry) == ['title', 'img_url', 'year', 'visual_sentences',
                           'contextual_sentences', 'split']
    assert entry == {'title': p.title, 'img_url': p.img_url, 'year': p.year,
                     'visual_sentences': p.visual_sentences,
                     'contextual_sentences': p.contextual_sentences, 'split': p.split}
    extension = p.img_url.rsplit('.', 1)[1]
    with Image.open(tmp_path / 'images' / f'{p.id}.{extension}') as image:
      image.load()
      assert image.size == p.image.size
      assert image.format == {'jpg': 'JPEG', 'png': 'PNG'}[extension]
      modes.add((image.format, image.mode))
    with np.load(tmp_path / 'regions' / f'{p.id}.npz') as regions:
      np.testing.assert_array_equal(regions['features'], p.features)
      _assert_pixel_boxes(regions['boxes'], int(regions['image_w']), int(regions['image_h']), p)
  assert modes == {('JPEG', 'RGB'), ('PNG', 'RGB'), ('PNG', 'RGBA'), ('JPEG', 'L')}


def _assert_pixel_boxes(pixel_boxes, width, height, painting):
  assert (width, height) == painting.image.size
  assert pixel_boxes.dtype == np.float32
  x0, y0, x1, y1 = pixel_boxes.T
  np.testing.assert_allclose(np.stack([y0 / height, x0 / width, y1 / height, x1 / width], 1),
                             painting.boxes, atol=1e-5)


def test_write_folder_tsv_round_trips(tmp_path, paintings):
  sample.write_folder(tmp_path, num_paintings=30, seed=0, region_format='tsv')
  assert os.listdir(tmp_path / 'regions') == ['features.tsv']
  rows = (tmp_path / 'regions' / 'features.tsv').read_text(encoding='ascii').splitlines()
  assert len(rows) == len(paintings)
  for row, p in zip(rows, paintings):
    image_id, width, height, num_boxes, boxes, features = row.split('\t')
    num_boxes = int(num_boxes)
    assert image_id == p.id and num_boxes == len(p.boxes)
    decoded_boxes = np.frombuffer(base64.b64decode(boxes), '<f4').reshape(num_boxes, 4)
    decoded = np.frombuffer(base64.b64decode(features), '<f4').reshape(num_boxes, -1)
    np.testing.assert_array_equal(decoded, p.features)
    _assert_pixel_boxes(decoded_boxes, int(width), int(height), p)


def test_write_folder_rejects_unknown_region_format(tmp_path):
  with pytest.raises(ValueError, match='region_format must be one of'):
    sample.write_folder(tmp_path, num_paintings=2, region_format='hdf5')


def test_write_folder_refuses_a_folder_with_files(tmp_path):
  (tmp_path / 'artpedia.json').write_text('{}')
  with pytest.raises(FileExistsError, match='not empty'):
    sample.write_folder(tmp_path, num_paintings=2)


def test_command_line_writes_folder_and_prints_statistics(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'tfds_artpedia.sample', f'--out={tmp_path}',
       '--num_paintings=4', '--seed=2', '--region_format=tsv'],
      capture_output=True, text=True, check=True,
      cwd=pathlib.Path(__file__).resolve().parents[1])
  statistics = json.loads(result.stdout[result.stdout.index('{'):])
  assert statistics['num_paintings'] == 4
  assert len(json.loads((tmp_path / 'artpedia.json').read_text(encoding='utf-8'))) == 4
  assert (tmp_path / 'regions' / 'features.tsv').exists()
