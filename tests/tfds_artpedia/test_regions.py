"""Region features from bottom-up-attention TSV files and per-image .npz folders."""

import base64
import csv

import numpy as np
import pytest

from tfds_artpedia import regions
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder

NUM_PAINTINGS = 3


@pytest.fixture(scope='module')
def generated():
  return {p.id: p for p in sample_corpus.generate(NUM_PAINTINGS, seed=1)}


def _folder(tmp_path, region_format):
  sample_folder.write_folder(str(tmp_path), sample_corpus.generate(NUM_PAINTINGS, seed=1),
                             region_format)
  return tmp_path / 'regions'


def _b64(array):
  return base64.b64encode(np.asarray(array, '<f4').tobytes()).decode('ascii')


def _tsv_line(image_id, features, boxes, width=100, height=50, num_boxes=None):
  num_boxes = len(features) if num_boxes is None else num_boxes
  return '\t'.join([image_id, str(width), str(height), str(num_boxes), _b64(boxes),
                    _b64(features)]) + '\n'


def _features(num_regions, dim=regions.FEATURE_DIM):
  return np.random.default_rng(0).normal(size=(num_regions, dim)).astype(np.float32)


def test_normalise_boxes_swaps_to_yx_scales_and_clips():
  boxes = regions.normalise_boxes(np.array([[10, 5, 60, 25], [-4, 0, 120, 60]]), 100, 50)
  np.testing.assert_allclose(boxes, [[0.1, 0.1, 0.5, 0.6], [0, 0, 1, 1]])
  assert boxes.dtype == np.float32


def test_pixel_boxes_inverts_normalise_boxes():
  pixel = np.array([[10, 5, 60, 25], [0, 0, 100, 50]], np.float32)
  normalised = regions.normalise_boxes(pixel, 100, 50)
  np.testing.assert_allclose(normalised[0], [0.1, 0.1, 0.5, 0.6], atol=1e-7)
  back = regions.pixel_boxes(normalised, 100, 50)
  assert back.dtype == np.float32 and back.shape == (2, 4)
  np.testing.assert_allclose(back, pixel, atol=1e-4)
  # Any leading shape: one box per row of the last axis.
  assert regions.pixel_boxes(np.zeros((3, 2, 4)), 7, 9).shape == (3, 2, 4)


@pytest.mark.parametrize('region_format', ['tsv', 'npz'])
def test_reads_what_the_generator_wrote(tmp_path, generated, region_format):
  source = regions.open_regions(_folder(tmp_path, region_format), set(generated))
  assert source.ids == set(generated)
  for painting_id, painting in generated.items():
    loaded = source.load(painting_id, painting.image.size)
    assert loaded.features.dtype == np.float32 and loaded.boxes.dtype == np.float32
    np.testing.assert_array_equal(loaded.features, painting.features)
    np.testing.assert_allclose(loaded.boxes, painting.boxes, atol=1e-6)


def test_tsv_with_header_long_fields_and_several_files(tmp_path):
  features = _features(100)  # ~1.1 MB of base64 on one line
  (tmp_path / 'a.tsv').write_text('\t'.join(regions.TSV_FIELDS) + '\n' +
                                  _tsv_line('1', features, np.tile([0, 0, 50, 25], (100, 1))))
  (tmp_path / 'b.tsv').write_text(_tsv_line('2', features[:1], [[0, 0, 100, 50]]))
  limit = csv.field_size_limit()
  source = regions.open_regions(tmp_path, {'1', '2', '3'})
  assert source.ids == {'1', '2'}
  np.testing.assert_array_equal(source.load('1').features, features)
  np.testing.assert_allclose(source.load('1').boxes[0], [0, 0, 0.5, 0.5])
  np.testing.assert_allclose(source.load('2').boxes, [[0, 0, 1, 1]])
  assert csv.field_size_limit() == limit


def test_npz_alternative_keys_and_image_size_fallback(tmp_path):
  np.savez(tmp_path / '9.npz', x=_features(2), bbox=[[0, 0, 20, 10], [10, 5, 40, 20]])
  source = regions.open_regions(tmp_path, {'9'})
  np.testing.assert_allclose(source.load('9', image_size=(40, 20)).boxes,
                             [[0, 0, 0.5, 0.5], [0.25, 0.25, 1, 1]])
  with pytest.raises(regions.RegionError, match="9.npz: image_id '9'.*image size is unknown"):
    source.load('9')


def test_unknown_ids_are_named(tmp_path):
  (tmp_path / 'f.tsv').write_text(_tsv_line('77', _features(1), [[0, 0, 1, 1]]))
  with pytest.raises(regions.RegionError, match=r"f\.tsv: image_id '77' is not a painting"):
    regions.open_regions(tmp_path, {'1'})
  npz_dir = tmp_path / 'npz'
  npz_dir.mkdir()
  np.savez(npz_dir / '78.npz', features=_features(1), boxes=[[0, 0, 1, 1]])
  with pytest.raises(regions.RegionError, match=r"78\.npz: image_id '78' is not a painting"):
    regions.open_regions(npz_dir, {'1'})


def test_duplicate_tsv_ids_are_an_error(tmp_path):
  line = _tsv_line('1', _features(1), [[0, 0, 1, 1]])
  (tmp_path / 'f.tsv').write_text(line + line)
  with pytest.raises(regions.RegionError, match="image_id '1' appears twice"):
    regions.open_regions(tmp_path, {'1'})


@pytest.mark.parametrize('features, boxes, message', [
    (_features(2, 100), [[0, 0, 1, 1]] * 2, r'features have shape \(2, 100\)'),
    (_features(2), [[0, 0, 1, 1]], r'boxes have shape \(1, 4\)'),
    (_features(0), np.zeros((0, 4)), r'features have shape \(0, 2048\)'),
    (np.full((1, regions.FEATURE_DIM), np.nan), [[0, 0, 1, 1]], 'features contain NaN'),
    (_features(1), [[0, 0, np.inf, 1]], 'boxes contain NaN or infinite'),
])
def test_bad_npz_arrays_name_file_and_id(tmp_path, features, boxes, message):
  np.savez(tmp_path / '5.npz', features=features, boxes=boxes, image_w=10, image_h=10)
  with pytest.raises(regions.RegionError, match=r"5\.npz: image_id '5'.*" + message):
    regions.open_regions(tmp_path, {'5'}).load('5')


def test_npz_without_feature_key_is_named(tmp_path):
  np.savez(tmp_path / '5.npz', feats=_features(1), boxes=[[0, 0, 1, 1]])
  with pytest.raises(regions.RegionError, match=r"none of the keys \('features', 'x'\)"):
    regions.open_regions(tmp_path, {'5'}).load('5', (10, 10))


@pytest.mark.parametrize('line, message', [
    (_tsv_line('4', _features(2), [[0, 0, 1, 1]] * 2, num_boxes=3), 'num_boxes is 3'),
    (_tsv_line('4', np.full((1, regions.FEATURE_DIM), np.inf), [[0, 0, 1, 1]]),
     'features contain NaN or infinite'),
    (_tsv_line('4', _features(1), [[0, 0, 1, 1]], width=0), 'image_w must be at least 1'),
    ('4\t10\t10\t1\tAAAA\tnot-base64!\n', "'features' is not base64"),
    ('4\t10\t10\n', 'expected 6 tab-separated fields'),
])
def test_bad_tsv_lines_name_file_and_id(tmp_path, line, message):
  (tmp_path / 'r.tsv').write_text(line)
  with pytest.raises(regions.RegionError, match=r"r\.tsv: image_id '4'.*" + message):
    regions.open_regions(tmp_path, {'4'}).load('4')


def test_folder_must_hold_exactly_one_format(tmp_path):
  with pytest.raises(regions.RegionError, match='no such folder'):
    regions.open_regions(tmp_path / 'missing', {'1'})
  with pytest.raises(regions.RegionError, match=r'no \*\.tsv or \*\.npz'):
    regions.open_regions(tmp_path, {'1'})
  (tmp_path / 'a.tsv').write_text('')
  np.savez(tmp_path / '1.npz', features=_features(1), boxes=[[0, 0, 1, 1]])
  with pytest.raises(regions.RegionError, match='both'):
    regions.open_regions(tmp_path, {'1'})
