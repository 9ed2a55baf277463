"""Writing a generated corpus as a real-format folder: JSON, images, npz or TSV regions."""

import base64
import json
import os
import pathlib
import time

import numpy as np
from PIL import Image
import pytest

from tfds_artpedia import errors
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder


def _write_folder(out_dir, num_paintings, seed=0, region_format='npz'):
  sample_folder.write_folder(out_dir, sample_corpus.generate(num_paintings, seed),
                             region_format)


def _tree_bytes(root):
  root = pathlib.Path(root)
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
          if p.is_file()}


def test_write_folder_is_byte_identical_and_ignores_the_clock(tmp_path, monkeypatch):
  _write_folder(tmp_path / 'first', num_paintings=12, seed=4)
  later = time.time() + 400 * 86400
  monkeypatch.setattr(time, 'time', lambda: later)
  _write_folder(tmp_path / 'second', num_paintings=12, seed=4)
  first, second = _tree_bytes(tmp_path / 'first'), _tree_bytes(tmp_path / 'second')
  assert len(first) == 1 + 12 + 12  # artpedia.json, images, regions
  assert first == second


def test_write_folder_npz_round_trips(tmp_path, sample_paintings):
  _write_folder(tmp_path, num_paintings=30, seed=0)
  annotations = json.loads((tmp_path / 'artpedia.json').read_text(encoding='utf-8'))
  assert list(annotations) == [p.id for p in sample_paintings]
  modes = set()
  for p in sample_paintings:
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


def test_write_folder_tsv_round_trips(tmp_path, sample_paintings):
  _write_folder(tmp_path, num_paintings=30, seed=0, region_format='tsv')
  assert os.listdir(tmp_path / 'regions') == ['features.tsv']
  rows = (tmp_path / 'regions' / 'features.tsv').read_text(encoding='ascii').splitlines()
  assert len(rows) == len(sample_paintings)
  for row, p in zip(rows, sample_paintings):
    image_id, width, height, num_boxes, boxes, features = row.split('\t')
    num_boxes = int(num_boxes)
    assert image_id == p.id and num_boxes == len(p.boxes)
    decoded_boxes = np.frombuffer(base64.b64decode(boxes), '<f4').reshape(num_boxes, 4)
    decoded = np.frombuffer(base64.b64decode(features), '<f4').reshape(num_boxes, -1)
    np.testing.assert_array_equal(decoded, p.features)
    _assert_pixel_boxes(decoded_boxes, int(width), int(height), p)


def test_write_folder_rejects_unknown_region_format(tmp_path):
  with pytest.raises(ValueError, match='region_format must be one of'):
    _write_folder(tmp_path, num_paintings=2, region_format='hdf5')


def test_write_folder_refuses_a_folder_with_files(tmp_path):
  (tmp_path / 'artpedia.json').write_text('{}')
  with pytest.raises(errors.UsageError, match='not empty'):
    _write_folder(tmp_path, num_paintings=2)
