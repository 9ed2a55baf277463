r"""Throughput of the pixel path: images/s of the ResNet backbone and of the whole train step.

Per depth, on the current backend, with compile time reported apart:
* `forward`: the backbone alone in inference mode (running batch-norm statistics), as a
  frozen backbone and `extract_features` run it;
* `forward+backward`: the backbone alone in train mode (batch statistics, gradients of
  every parameter), as a fine-tuned backbone runs inside the train step;
* `train step frozen` / `train step fine-tuned`: the real `train_step.make_train_step`
  of `ArtpediaModel` from pixels (backbone, text encoder, scoring, both losses, the
  optimiser update), with the sizes of `--config` (default `configs/align_pixels.py`)
  and the batch, image size and dtype below.

  python -m bench.backbone [--batch_size=32] [--depths=18,50] [--image_size=224] \
      [--steps=10] [--dtype=float32|bfloat16] [--config=configs/align_pixels.py]
"""


from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from artpedia_jax import console
from artpedia_jax.model import model as model_lib
from artpedia_jax.model import resnet
from artpedia_jax.parallel import sharding as sharding_lib
from bench import common

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/align_pixels.py', 'Config whose model sizes the train step uses.',
    lock_config=True)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 32, 'Images per step.')
_DEPTHS = flags.DEFINE_list('depths', ['18', '50'], 'ResNet depths to measure.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, 'Square image side in pixels.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps after one warm-up step.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Computation dtype (parameters stay float32).')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Vocabulary size (Artpedia ~20k).')


def _backbone_functions(model: resnet.ResNet):
  """Pure jit-able forward and forward+backward over the model's split state."""
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)

  def forward(params, batch_stats, images):
    return nnx.merge(graphdef, params, batch_stats)(images, train=False)

  def forward_backward(params, batch_stats, images):
    def loss(params, batch_stats):
      # copy=True: fresh Variables at this trace level, which batch norm may update.
      model = nnx.merge(graphdef, params, batch_stats, copy=True)
      feature_map = model(images, train=True).astype(jnp.float32)
      return jnp.mean(feature_map**2), nnx.state(model, nnx.BatchStat)
    return jax.grad(loss, has_aux=True)(params, batch_stats)

  return {'forward': forward, 'forward+backward': forward_backward}, (params, batch_stats)


def _pixel_config(depth: int, frozen: bool):
  config = _CONFIG.value.copy_and_resolve_references()
  config.batch_size = _BATCH_SIZE.value
  config.dataset.image_size = _IMAGE_SIZE.value
  config.model.backbone = f'resnet{depth}'
  config.model.backbone_frozen = frozen
  config.model.backbone_dtype = _DTYPE.value
  return config


def _synthetic_batch(config, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A training batch from pixels of distinct paintings with the config's shapes."""
  b, size = config.batch_size, config.dataset.image_size
  return {
      'images': rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8),
      'painting': np.arange(b, dtype=np.int32),
      **common.random_sentence_fields(rng, config, _VOCAB_SIZE.value),
  }


def _time_train_step(config) -> tuple[float, float]:
  """(compile seconds, seconds per step) of the real train step from pixels."""
  mesh = sharding_lib.make_mesh()
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                  vocab_size=_VOCAB_SIZE.value, rngs=nnx.Rngs(0))
  batch = sharding_lib.global_batch(mesh, _synthetic_batch(config, np.random.default_rng(0)))
  return common.time_train_step(config, mesh, model, batch, _STEPS.value)


def _row(name: str, what: str, compile_s: float, step_s: float) -> None:
  print(f'{name:<10}{what:<22}{compile_s:>10.1f}{1e3 * step_s:>10.1f}'
        f'{_BATCH_SIZE.value / step_s:>10.1f}', flush=True)


def main(argv):
  del argv
  console.quiet_third_party_info()
  dtype = jnp.dtype(_DTYPE.value)
  batch, size = _BATCH_SIZE.value, _IMAGE_SIZE.value
  images = jax.random.normal(jax.random.key(0), (batch, size, size, 3), jnp.float32)
  print(f'{common.backend_line()}, batch {batch}, {size} px, {dtype.name}, '
        f'{_STEPS.value} timed steps')
  print(f'{"model":<10}{"pass":<22}{"compile_s":>10}{"step_ms":>10}{"images/s":>10}')
  for depth in map(int, _DEPTHS.value):
    name = f'resnet{depth}'
    functions, state = _backbone_functions(resnet.ResNet(depth, dtype=dtype,
                                                         rngs=nnx.Rngs(0)))
    for what, function in functions.items():
      _row(name, what, *common.time_compiled(function, (*state, images), _STEPS.value))
    for frozen in (True, False):
      what = f'train step {"frozen" if frozen else "fine-tuned"}'
      _row(name, what, *_time_train_step(_pixel_config(depth, frozen)))


if __name__ == '__main__':
  app.run(main)
