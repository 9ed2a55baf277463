"""Training from pixels: image preprocessing, the pixel model, batch norm in the train
step, the backbone's learning rate, feature extraction, and a short run end to end."""

import io

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import safetensors.numpy

from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import checkpoint_eval
from artpedia_jax.inference import feature_extraction
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding
from artpedia_jax.train import loop as train
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step
from tests.artpedia_jax.model import test_weights_import
from tests.helpers import e2e_helpers
from tests.helpers import train_fixtures
from tfds_artpedia import regions as regions_lib


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)

IMAGE_SIZE = 64  # a 2 x 2 grid of regions


def _jpeg(width: int, height: int, seed: int = 0) -> bytes:
  """A JPEG whose left half is red and right half blue, with noise."""
  pixels = np.zeros((height, width, 3), np.uint8)
  pixels[:, :width // 2, 0] = 220
  pixels[:, width // 2:, 2] = 220
  pixels += np.random.default_rng(seed).integers(0, 20, pixels.shape, np.uint8)
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, format='JPEG', quality=95)
  return out.getvalue()


def _record(i: int, width: int = 90, height: int = 60) -> dict:
  return {
      'id': str(i).encode(), 'title': f'Painting {i}'.encode(), 'year': np.int32(-1),
      'sentences': np.asarray([b'a red square', b'a blue circle', b'painted in 1500'],
                              object),
      'is_visual': np.asarray([True, True, False]),
      'image': _jpeg(width, height, seed=i),
  }


def pixel_config(**overrides):
  config = train_fixtures.tiny_config(backbone='resnet18')
  config.dataset.image_size = IMAGE_SIZE
  for key, value in overrides.items():
    section, _, field = key.rpartition('.')
    setattr(config[section] if section else config, field, value)
  return config


# ------------------------------------------------------------------------- pipeline


def test_evaluation_resizes_the_whole_image_to_a_square():
  record = _record(0, width=90, height=60)
  images = painting_inputs.painting_inputs(_inputs(pixel_config()), train=False)(record, rng=None)
  expected = Image.open(io.BytesIO(record['image'])).resize(
      (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
  assert list(images) == ['images']
  np.testing.assert_array_equal(images['images'], np.asarray(expected))
  assert images['images'].dtype == np.uint8


def test_training_crops_are_random_per_position_and_reproducible():
  transform = painting_inputs.painting_inputs(
      _inputs(pixel_config(**{'dataset.crop_min_scale': 0.2})), train=True)
  record = _record(0)
  crop = lambda position: transform(
      record, np.random.default_rng([0, position]))['images']
  np.testing.assert_array_equal(crop(3), crop(3))
  assert not np.array_equal(crop(3), crop(4))
  assert crop(3).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


@pytest.mark.parametrize('min_scale', [0.1, 0.5, 0.9])
def test_random_crop_boxes_stay_inside_and_cover_the_minimum_area(min_scale):
  rng = np.random.default_rng(0)
  for _ in range(200):
    x0, y0, x1, y1 = painting_inputs.random_crop_box(90, 60, min_scale, rng)
    assert 0 <= x0 < x1 <= 90 and 0 <= y0 < y1 <= 60
    # Rounding the sides to pixels may lose a little of the drawn area.
    assert (x1 - x0) * (y1 - y0) >= min_scale * 90 * 60 * 0.95


def test_random_flip_mirrors_the_painting():
  # Left half red, right half blue: a mirrored crop has blue on the left.
  config = pixel_config(**{'dataset.crop_min_scale': 1.0, 'dataset.random_flip': True})
  transform = painting_inputs.painting_inputs(_inputs(config), train=True)
  lefts = {int(np.argmax(transform(_record(0), np.random.default_rng([0, p]))['images']
                         [:, :IMAGE_SIZE // 4].mean((0, 1))))
           for p in range(12)}
  assert lefts == {0, 2}


def test_pixel_batches_and_eval_split_carry_images_instead_of_regions():
  source = [_record(i) for i in range(6)]
  vocab = vocab_lib.build_from_source(source, min_count=1)
  config = pixel_config(batch_size=4)
  batch = next(pipeline.train_iterator(_inputs(config), source, vocab, process_index=0,
                                       process_count=1, seed=0))
  assert batch['images'].shape == (4, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert batch['images'].dtype == np.uint8
  assert not {'regions', 'boxes', 'region_mask'} & set(batch)
  split = eval_split.load_eval_split(_inputs(config), source, vocab)
  assert list(split.paintings) == ['images']
  assert split.paintings['images'].shape == (6, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert painting_inputs.region_feature_dim(_inputs(config), source) is None


# ---------------------------------------------------------------------------- model


def _images(count: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.uint8)


def test_model_encodes_images_into_grid_regions():
  config = pixel_config()
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config), vocab_size=50,
                                  rngs=nnx.Rngs(0))
  v, region_mask, boxes = model.encode_painting_inputs({'images': _images(3)})
  assert v.shape == (3, 4, config.model.embed_dim)
  np.testing.assert_allclose(jnp.linalg.norm(v, axis=-1), 1.0, rtol=1e-5)
  assert bool(jnp.all(region_mask))
  np.testing.assert_allclose(boxes[0, 3], [0.5, 0.5, 1.0, 1.0])
  with pytest.raises(KeyError, match='images'):
    model.encode_painting_inputs({'regions': np.zeros((3, 4, 512), np.float32)})


def test_backbone_sets_the_feature_size():
  with pytest.raises(ValueError, match='backbone sets the region size'):
    model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(pixel_config()),
                            vocab_size=50, feature_dim=2048, rngs=nnx.Rngs(0))


def test_init_model_loads_the_configured_backbone_weights(tmp_path):
  state = test_weights_import.random_torchvision_state_dict(18, seed=3)
  path = tmp_path / 'resnet18.safetensors'
  safetensors.numpy.save_file(state, path)
  config = pixel_config(**{'model.backbone_weights': str(path)})
  model = model_lib.init_model(
      model_lib.ModelSpec.from_config(config), vocab_size=50, feature_dim=None,
      rngs=nnx.Rngs(0), backbone_weights=config.model.backbone_weights)
  backbone = model.pixel_encoder.backbone
  np.testing.assert_array_equal(backbone.conv1.kernel[...],
                                state['conv1.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(backbone.layer4[1].bn2.var[...],
                                state['layer4.1.bn2.running_var'])


# ------------------------------------------------------------------ train step, optimiser


def _pixel_batch(config, batch_size: int) -> dict[str, np.ndarray]:
  batch = train_fixtures.synthetic_batch(config, batch_size)
  for name in model_lib.REGION_INPUTS:
    del batch[name]
  return dict(batch, images=_images(batch_size))


def _changed(before, after) -> bool:
  return any(not np.array_equal(a, b)
             for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


@pytest.mark.parametrize('frozen', [False, True])
def test_train_step_updates_batch_norm_and_backbone_only_when_fine_tuning(frozen):
  """... and a skipped (non-finite) step updates neither, nor the optimiser."""
  config = pixel_config(**{'model.backbone_frozen': frozen,
                           'optimizer.warmup_steps': 0})
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                  vocab_size=train_fixtures.VOCAB_SIZE,
                                  rngs=nnx.Rngs(0))
  graphdef, variables = model_lib.split(model)
  mesh = sharding.make_mesh(jax.devices()[:1])
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=100)
  state = sharding.replicate(mesh, train_step.init_state(variables, optimizer.tx))
  before = jax.device_get(state)
  step = train_step.make_train_step(graphdef, optimizer,
                                    train_fixtures.step_spec(config), mesh)
  state, metrics = step(state, sharding.global_batch(mesh, _pixel_batch(config, 8)))
  after = jax.device_get(state)

  assert int(metrics['skipped']) == 0
  assert _changed(before['model_state'], after['model_state']) is not frozen
  assert _changed(before['params'][model_lib.PIXEL_ENCODER],
                  after['params'][model_lib.PIXEL_ENCODER]) is not frozen
  assert _changed(before['params']['region_projection'],
                  after['params']['region_projection'])

  nan_labels = _pixel_batch(config, 8)
  nan_labels['cls_labels'][0, 0] = np.nan  # the batch norm sees finite images
  state, metrics = step(state, sharding.global_batch(mesh, nan_labels))
  assert int(metrics['skipped']) == 1
  skipped = jax.device_get(state)
  for key in ('params', 'opt_state', 'model_state'):
    train_fixtures.assert_trees_equal(skipped[key], after[key])


@pytest.mark.parametrize('frozen', [False, True])
def test_backbone_has_its_own_learning_rate_and_none_when_frozen(frozen):
  config = pixel_config(**{
      'model.backbone_frozen': frozen, 'optimizer.name': 'adamw',
      'optimizer.weight_decay': 0.5, 'optimizer.learning_rate': 1e-2,
      'optimizer.backbone_learning_rate': 1e-4, 'optimizer.warmup_steps': 0,
      'optimizer.decay': 'constant', 'optimizer.grad_clip_norm': 0.0})
  params = {model_lib.PIXEL_ENCODER: {'kernel': jnp.ones(3)},
            'region_projection': {'kernel': jnp.ones(3)}}
  grads = jax.tree.map(lambda p: 0.5 * p, params)
  tx = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=10).tx
  updates, _ = tx.update(grads, tx.init(params), params)
  # Adam's first step moves by the rate (g / |g| = 1), plus decay 0.5 * p.
  backbone_rate = 0.0 if frozen else 1e-4
  np.testing.assert_allclose(updates[model_lib.PIXEL_ENCODER]['kernel'],
                             -1.5 * backbone_rate, rtol=1e-5)
  np.testing.assert_allclose(updates['region_projection']['kernel'], -1.5e-2, rtol=1e-5)


def test_optimizer_labels_every_backbone_leaf_of_the_pixel_model():
  spec = model_lib.ModelSpec.from_config(pixel_config())
  model = nnx.eval_shape(lambda: model_lib.ArtpediaModel(spec, vocab_size=50,
                                                         rngs=nnx.Rngs(0)))
  params = model_lib.split(model)[1]['params']
  labels = optim.parameter_labels(params)
  assert set(jax.tree.leaves(labels[model_lib.PIXEL_ENCODER])) == {optim.BACKBONE}
  del labels[model_lib.PIXEL_ENCODER]
  assert set(jax.tree.leaves(labels)) == {optim.HEAD}


# -------------------------------------------------------------------- feature extraction


def test_extracted_features_are_read_back_by_the_regions_reader(tmp_path):
  config = pixel_config()
  config.dataset.name = 'artpedia/sample/num_paintings=10'
  config.dataset.data_dir = str(tmp_path / 'tfds')
  out = tmp_path / 'regions'
  assert feature_extraction.extract(config, str(out), batch_size=4, progress=False) == 10

  files = sorted(out.glob('*.npz'))
  ids = {path.stem for path in files}
  assert len(ids) == 10 and not list(out.glob('*.tmp'))
  reader = regions_lib.open_regions(out, ids, feature_dim=512)  # ResNet-18's width
  source = pipeline.open_source(_inputs(config), 'train')
  record = source[0]
  painting_id = vocab_lib.as_text(record['id'])
  loaded = reader.load(painting_id)
  images = painting_inputs.painting_inputs(_inputs(config), train=False)(record, rng=None)['images']
  encoder = model_lib.build_pixel_encoder(
      model_lib.ModelSpec.from_config(config).backbone, rngs=nnx.Rngs(config.seed))
  features, boxes, _ = encoder(images[None], train=False)
  np.testing.assert_allclose(loaded.features, features[0], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(loaded.boxes, boxes[0], atol=1e-6)

  (out / f'{painting_id}.npz').unlink()
  assert feature_extraction.extract(config, str(out), batch_size=4, progress=False) == 1


# ---------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_short_pixel_run_learns_and_the_eval_binary_restores_batch_norm(tmp_path):
  data_dir = tmp_path / 'tfds'
  overrides = {'model.backbone': 'resnet18', 'dataset.image_size': IMAGE_SIZE,
               'optimizer.backbone_learning_rate': 3e-3}
  config = e2e_helpers.e2e_config(data_dir, **overrides)
  dataset.prepare(config)
  workdir = tmp_path / 'work'
  result = train.train_and_evaluate(config, str(workdir))

  losses = [entry['loss'] for entry in result.train_log]
  assert losses[-1] < 0.9 * losses[0], losses
  # Evaluation needs the trained batch-norm statistics: without them the scores differ.
  again = checkpoint_eval.evaluate_checkpoint(str(workdir), 'latest', 'validation')
  logged = dict(result.validation[-1])
  assert logged.pop('best_metric')['name'] == 'rsum'  # training's selection record
  again.metrics.pop('chosen_as_best_by', None)  # the eval binary's, when best
  assert again.metrics == logged
  assert again.report_path and again.report_path.endswith('.md')
