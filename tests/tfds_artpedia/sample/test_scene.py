"""The pictures and "detector" regions of the sample corpus."""

import numpy as np
import pytest

from tests.helpers import sample_helpers
from tfds_artpedia import regions
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import scene as sample_scene


def test_regions_have_detector_shapes(sample_paintings):
  counts = set()
  for p in sample_paintings:
    num_regions = len(p.boxes)
    counts.add(num_regions)
    assert 3 <= num_regions <= 8
    assert p.features.dtype == np.float32 and p.features.shape == (num_regions,
                                                                    regions.FEATURE_DIM)
    assert p.boxes.dtype == np.float32 and p.boxes.shape == (num_regions, 4)
    y0, x0, y1, x1 = p.boxes.T
    assert np.all(p.boxes >= 0) and np.all(p.boxes <= 1)
    assert np.all(y0 < y1) and np.all(x0 < x1)
  assert len(counts) > 2  # the number of regions varies from painting to painting


@pytest.mark.parametrize('seed', [0, 7])
def test_region_features_project_attributes_of_what_is_in_the_box(seed):
  # The same fixed projection for every seed: features decode to one object's attributes
  # (whose colour is painted inside its box) or to the background's.
  for p in sample_corpus.generate(num_paintings=10, seed=seed):
    width, height = p.image.size
    kinds = []
    for attributes, box in zip(sample_helpers.decoded_attributes(p.features), p.boxes):
      groups = dict(attributes)
      kinds.append(groups['region'])
      if groups['region'] == 'object':
        assert sorted(g for g, _ in attributes) == ['area', 'colour', 'region', 'shape', 'size']
        y0, x0, y1, x1 = (box * [height, width, height, width]).round().astype(int)
        crop = p.image.crop((x0, y0, x1, y1))
        assert sample_scene.COLOURS[groups['colour']] in sample_helpers.image_colours(crop)
      else:
        assert {g for g, _ in attributes} == {'region', 'background', 'background colour'}
    assert 1 <= kinds.count('object') <= 4 and 2 <= kinds.count('background') <= 4
