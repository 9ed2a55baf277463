"""Decoders of generated paintings shared by the tests of the sample modules."""

import functools

import numpy as np

from tfds_artpedia.sample import scene as sample_scene


def labelled(painting):
  """(sentence, kind) of every sentence of `painting`, visual ones first."""
  return list(zip(painting.visual_sentences + painting.contextual_sentences,
                  painting.visual_kinds + painting.contextual_kinds))


def image_colours(image):
  return {rgb for _, rgb in image.getcolors(maxcolors=image.width * image.height)}


@functools.cache
def _inverse_projection():
  return np.linalg.pinv(sample_scene.projection().T)


def decoded_attributes(features):
  """Least-squares inverse of the detector projection, rounded to the attribute multi-hot."""
  index = sample_scene.attribute_index()
  coefficients = _inverse_projection() @ features.T
  assert np.all(np.abs(coefficients - np.round(coefficients)) < 0.2)  # noise is small
  names = {i: pair for pair, i in index.items()}
  return [[names[i] for i in np.flatnonzero(np.round(column) == 1)] for column in coefficients.T]
