"""Throughput of the pixel encoder's backbone: images/s of ResNet forward and forward+backward.

Forward is inference mode (running batch-norm statistics, as a frozen backbone runs);
forward+backward is train mode (batch statistics, gradients of every parameter), as a
fine-tuned backbone runs inside the train step. Compile time is reported apart from the
steady-state step time.

  python bench/backbone.py [--batch_size=32] [--depths=18,50] [--image_size=224] \
      [--steps=10] [--dtype=float32|bfloat16]
"""

import time

from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp

from artpedia_jax import resnet

_BATCH_SIZE = flags.DEFINE_integer('batch_size', 32, 'Images per step.')
_DEPTHS = flags.DEFINE_list('depths', ['18', '50'], 'ResNet depths to measure.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, 'Square image side in pixels.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps after one warm-up step.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Computation dtype (parameters stay float32).')


def _step_functions(model: resnet.ResNet):
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


def _measure(function, args, steps: int) -> tuple[float, float]:
  """(compile seconds, steady-state seconds per step)."""
  start = time.perf_counter()
  compiled = jax.jit(function).lower(*args).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(*args))  # warm-up: first-call transfers and allocation
  start = time.perf_counter()
  for _ in range(steps):
    result = compiled(*args)
  jax.block_until_ready(result)
  return compile_s, (time.perf_counter() - start) / steps


def main(argv):
  del argv
  dtype = jnp.dtype(_DTYPE.value)
  batch, size = _BATCH_SIZE.value, _IMAGE_SIZE.value
  images = jax.random.normal(jax.random.key(0), (batch, size, size, 3), jnp.float32)
  print(f'backend {jax.default_backend()} ({jax.devices()[0].device_kind}), '
        f'batch {batch}, {size} px, {dtype.name}, {_STEPS.value} timed steps')
  print(f'{"model":<10}{"pass":<18}{"compile_s":>10}{"step_ms":>10}{"images/s":>10}')
  for depth in map(int, _DEPTHS.value):
    functions, state = _step_functions(resnet.ResNet(depth, dtype=dtype, rngs=nnx.Rngs(0)))
    for name, function in functions.items():
      compile_s, step_s = _measure(function, (*state, images), _STEPS.value)
      print(f'{f"resnet{depth}":<10}{name:<18}{compile_s:>10.1f}{1e3 * step_s:>10.1f}'
            f'{batch / step_s:>10.1f}', flush=True)


if __name__ == '__main__':
  app.run(main)
