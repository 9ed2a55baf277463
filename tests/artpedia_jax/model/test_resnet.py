"""ResNet backbone: architecture sizes, batch-norm modes, grid regions, pixel encoder.

Numerical agreement with torchvision is tested in test_weights_import.py.
"""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.model import resnet

# torchvision's parameter counts (resnetN().parameters()) less the 1000-way classifier.
TORCHVISION_PARAMETERS_WITHOUT_FC = {
    18: 11_689_512 - 513_000,
    34: 21_797_672 - 513_000,
    50: 25_557_032 - 2_049_000,
    101: 44_549_160 - 2_049_000,
    152: 60_192_808 - 2_049_000,
}


def _abstract_resnet(depth):
  return nnx.eval_shape(lambda: resnet.ResNet(depth, rngs=nnx.Rngs(0)))


def _batch_stats(module):
  return jax.tree.map(np.asarray, nnx.state(module, nnx.BatchStat))


def _trees_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))


@pytest.fixture(scope='module')
def resnet18():
  """A ResNet-18 filled from numpy: eager random init compiles per shape and is slow."""
  model = _abstract_resnet(18)
  rng = np.random.default_rng(0)
  for path, variable in nnx.iter_graph(model):
    if isinstance(variable, nnx.Variable):
      if path[-1] == 'kernel':
        value = rng.normal(0.0, np.sqrt(2.0 / np.prod(variable.shape[:-1])), variable.shape)
      else:
        value = np.full(variable.shape, 1.0 if path[-1] in ('scale', 'var') else 0.0)
      variable.set_value(jnp.asarray(value, jnp.float32))
  return model


@pytest.mark.parametrize('depth', sorted(TORCHVISION_PARAMETERS_WITHOUT_FC))
def test_parameter_count_matches_torchvision(depth):
  params = nnx.state(_abstract_resnet(depth), nnx.Param)
  count = sum(leaf.size for leaf in jax.tree.leaves(params))
  assert count == TORCHVISION_PARAMETERS_WITHOUT_FC[depth]


@pytest.mark.parametrize('depth, channels', [(18, 512), (50, 2048)])
def test_feature_map_has_output_stride_32(depth, channels):
  model = _abstract_resnet(depth)
  images = jax.ShapeDtypeStruct((2, 100, 64, 3), jnp.float32)
  feature_map = nnx.eval_shape(lambda m, x: m(x, train=False), model, images)
  assert feature_map.shape == (2, 4, 2, channels)
  assert model.num_features == channels


def test_unknown_depth_is_refused():
  with pytest.raises(ValueError, match='depth 20 is not one of'):
    resnet.ResNet(20, rngs=nnx.Rngs(0))


def test_normalize_standardises_with_imagenet_statistics():
  images = np.array([[[0, 128, 255]]], np.uint8)
  expected = (np.array([0, 128, 255]) / 255 - resnet.IMAGENET_MEAN) / resnet.IMAGENET_STD
  np.testing.assert_allclose(resnet.normalize(images)[0, 0], expected, rtol=1e-6)


def test_normalize_refuses_images_that_are_not_uint8():
  with pytest.raises(TypeError, match='expects uint8'):
    resnet.normalize(np.zeros((1, 4, 4, 3), np.float32))


def test_grid_regions_are_row_major_cells_with_their_boxes():
  feature_map = jnp.arange(2 * 2 * 3 * 5, dtype=jnp.float32).reshape(2, 2, 3, 5)
  features, boxes = resnet.grid_regions(feature_map)
  assert features.shape == (2, 6, 5) and boxes.shape == (2, 6, 4)
  np.testing.assert_array_equal(features[1, 4], feature_map[1, 1, 1])  # row 1, column 1
  np.testing.assert_allclose(boxes[1, 4], [1 / 2, 1 / 3, 2 / 2, 2 / 3], rtol=1e-6)
  np.testing.assert_allclose(boxes[0, 0], [0, 0, 1 / 2, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(boxes[0, 5], [1 / 2, 2 / 3, 1, 1], rtol=1e-6)


@nnx.jit(static_argnames='train')
def _forward(module, images, train):
  return module(images, train=train)


def test_batch_norm_uses_batch_statistics_only_in_train_mode():
  block = resnet.BasicBlock(8, 16, 2, rngs=nnx.Rngs(0))  # with a downsample shortcut
  images = jax.random.normal(jax.random.key(1), (4, 8, 8, 8)) * 3.0 + 1.0
  initial = _batch_stats(block)

  other_batch = images.at[1:].multiply(-2.0)  # same first example, different others

  inference = _forward(block, images, train=False)
  assert _trees_equal(_batch_stats(block), initial)
  # In inference an example's output does not depend on the rest of the batch.
  np.testing.assert_allclose(_forward(block, other_batch, train=False)[0], inference[0],
                             rtol=1e-5)

  train = _forward(block, images, train=True)
  assert not _trees_equal(_batch_stats(block), initial)
  assert not np.allclose(_forward(block, other_batch, train=True)[0], train[0], rtol=1e-3)


@pytest.mark.parametrize('frozen', [False, True])
def test_frozen_encoder_stops_gradients_and_keeps_batch_stats(resnet18, frozen):
  encoder = resnet.PixelRegionEncoder(resnet18, frozen=frozen)
  images = jax.random.randint(jax.random.key(2), (2, 64, 64, 3), 0, 256).astype(jnp.uint8)
  initial = _batch_stats(encoder)

  def total_feature(module):
    return module(images, train=True)[0].sum()

  grads = nnx.jit(nnx.grad(total_feature))(encoder)
  gradient_norm = sum(float(jnp.abs(leaf).sum()) for leaf in jax.tree.leaves(grads))
  assert (gradient_norm == 0.0) == frozen
  assert _trees_equal(_batch_stats(encoder), initial) == frozen


def test_encoder_yields_detector_shaped_regions(resnet18):
  encoder = resnet.PixelRegionEncoder(resnet18, frozen=True)
  images = jnp.zeros((3, 64, 96, 3), jnp.uint8)
  features, boxes, region_mask = _forward(encoder, images, train=False)
  assert features.shape == (3, 6, encoder.feature_dim) and features.dtype == jnp.float32
  np.testing.assert_array_equal(boxes, resnet.grid_regions(jnp.zeros((3, 2, 3, 1)))[1])
  assert region_mask.shape == (3, 6) and bool(region_mask.all())
