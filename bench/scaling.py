r"""Data-parallel scaling of the train step: step time, and memory per device from XLA.

Two tables, both on fake CPU devices (`jax_num_cpu_devices`), so they run anywhere:

1. `--devices=1,2,4,8`: the step time and the compiled step's memory per device of the
   `--config` model at its global batch, on each device count. The fake devices share the
   host's cores, so the time shows the partitioning's overhead, not a speed-up.
2. `--memory_table`: the memory per device of the `--config` model (default
   `configs/align.py`) for each global batch × device count, from compiling the step
   only (abstract inputs: nothing is allocated or run), with the largest
   `score_block_size` that keeps it under `--budget_gib`.

Why compiling on N fake devices measures what N accelerators would hold: the step is one
SPMD program, and the per-device program XLA partitions it into depends on the mesh only
through the shapes it sees: the local batch B/N on the painting side, the all-gathered
global batch B on the sentence side (every device scores its paintings against all
sentences) and the replicated parameters and optimiser state. The figure is the CPU
compiler's buffer assignment (arguments + outputs − donated + temporaries); a GPU or TPU
compiler fuses differently, so read it as an estimate to within tens of percent.

  python -m bench.scaling --config=configs/test.py --devices=1,2,4,8
  python -m bench.scaling --memory_table [--batches=128,...,4096] [--device_counts=8,...,256]
"""

import time

from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from artpedia_jax.data import pipeline
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step_lib
from bench import common

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/align.py', 'Model config.')
_DEVICES = flags.DEFINE_list('devices', ['1', '2', '4', '8'],
                             'Device counts of the step-time table.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Timed steps after one warm-up step.')
_MEMORY_TABLE = flags.DEFINE_bool('memory_table', False,
                                  'Print the compile-only memory table instead.')
_BATCHES = flags.DEFINE_list('batches', ['128', '256', '512', '1024', '2048', '4096'],
                             'Global batch sizes of the memory table.')
_DEVICE_COUNTS = flags.DEFINE_list('device_counts', ['8', '16', '32', '64', '128', '256'],
                                   'Device counts of the memory table.')
_BLOCKS = flags.DEFINE_list('blocks', ['1024', '512', '256', '128', '64', '32', '16'],
                            'score_block_size candidates, tried largest first (larger '
                            'blocks: fewer, bigger scoring steps).')
_BUDGET_GIB = flags.DEFINE_float('budget_gib', 16.0, 'Memory per device to stay under.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Words in the vocabulary.')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 2048, 'Region feature size.')

GIB = 2**30


def _batch_shapes(config, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
  """The global training batch (docs/design.md §6.8) of the region-feature model."""
  r, t = config.dataset.max_regions, config.dataset.max_words
  k = pipeline.extra_cls_sentences(config.dataset.cls_sentences)
  shapes = {
      'regions': ((batch_size, r, _FEATURE_DIM.value), jnp.float32),
      'boxes': ((batch_size, r, 4), jnp.float32),
      'region_mask': ((batch_size, r), jnp.bool_),
      'tokens': ((batch_size, t), jnp.int32),
      'painting': ((batch_size,), jnp.int32),
      'cls_tokens': ((batch_size, k, t), jnp.int32),
      'cls_labels': ((batch_size, 1 + k), jnp.float32),
      'cls_mask': ((batch_size, 1 + k), jnp.bool_),
  }
  return {name: jax.ShapeDtypeStruct(shape, dtype) for name, (shape, dtype) in shapes.items()}


def _random_batch(shapes: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Every region and word present, every pair a distinct painting."""
  batch = {}
  for name, s in shapes.items():
    if s.dtype == jnp.bool_:
      batch[name] = np.ones(s.shape, bool)
    elif name == 'painting':
      batch[name] = np.arange(s.shape[0], dtype=np.int32)
    elif s.dtype == jnp.int32:
      batch[name] = rng.integers(2, _VOCAB_SIZE.value, s.shape, dtype=np.int32)
    else:
      batch[name] = rng.random(s.shape, dtype=np.float32)
  batch['cls_labels'] = np.round(batch['cls_labels'])
  return batch


def _model_and_optimizer(config, *, abstract: bool):
  """(graphdef, initial train state, optimiser); abstract: shapes only, nothing built."""
  make = lambda: model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=_VOCAB_SIZE.value,
      feature_dim=_FEATURE_DIM.value,
      rngs=nnx.Rngs(config.seed))
  graphdef, variables = model_lib.split(nnx.eval_shape(make) if abstract else make())
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=1000)
  init = lambda: train_step_lib.init_state(variables, optimizer.tx)
  return graphdef, (jax.eval_shape(init) if abstract else init()), optimizer


def _per_device_bytes(compiled) -> int:
  """Arguments + outputs − donated (aliased) + temporaries, as XLA assigned them."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes)


def _compiled_bytes(config, batch_size: int, mesh) -> int:
  """Bytes per device of the step compiled from abstract inputs (nothing allocated)."""
  graphdef, state, optimizer = _model_and_optimizer(config, abstract=True)
  step = train_step_lib.make_train_step(
      graphdef, optimizer, common.step_spec(config), mesh)
  with_sharding = lambda tree, s: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree)
  compiled = step.lower(
      with_sharding(state, sharding_lib.replicated(mesh)),
      with_sharding(_batch_shapes(config, batch_size), sharding_lib.batch_sharded(mesh))
  ).compile()
  return _per_device_bytes(compiled)


def step_time_table(config, device_counts: list[int], steps: int) -> None:
  """Seconds per step and memory per device at the config's global batch."""
  print(f'global batch {config.batch_size}, score_block_size {config.score_block_size}')
  print(f'{"devices":>8} {"local batch":>12} {"s/step":>8} {"MiB/device":>11}')
  rng = np.random.default_rng(0)
  for n in device_counts:
    mesh = sharding_lib.make_mesh(jax.devices()[:n])
    graphdef, state, optimizer = _model_and_optimizer(config, abstract=False)
    step = train_step_lib.make_train_step(
        graphdef, optimizer, common.step_spec(config), mesh)
    state = sharding_lib.replicate(mesh, state)
    batch = sharding_lib.global_batch(
        mesh, _random_batch(_batch_shapes(config, config.batch_size), rng))
    compiled = step.lower(state, batch).compile()
    state, metrics = compiled(state, batch)  # warm-up
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / steps
    print(f'{n:>8} {config.batch_size // n:>12} {seconds:>8.3f} '
          f'{_per_device_bytes(compiled) / 2**20:>11.1f}', flush=True)


def _fitting_block(config, batch_size: int, mesh, blocks: list[int],
                   budget: float) -> tuple[int | None, int]:
  """The largest block whose step fits in `budget` bytes, and its bytes (or the last's)."""
  bytes_per_device = 0
  # The scorer clips a block to the batch: larger candidates are the same program.
  for block in sorted({min(b, batch_size) for b in blocks}, reverse=True):
    trial = config.copy_and_resolve_references()
    trial.score_block_size = block
    bytes_per_device = _compiled_bytes(trial, batch_size, mesh)
    if bytes_per_device < budget:
      return block, bytes_per_device
  return None, bytes_per_device


def memory_table(config, batches: list[int], device_counts: list[int],
                 blocks: list[int], budget_gib: float) -> None:
  """GiB per device (and the block size used) for each global batch × device count."""
  print(f'GiB per device, [score_block_size] under {budget_gib:g} GiB '
        '(-: local batch < 1; over: no block fits)')
  print(f'{"batch":>6} ' + ' '.join(f'{f"{n} dev":>13}' for n in device_counts))
  for batch_size in batches:
    cells = []
    for n in device_counts:
      if batch_size < n:
        cells.append(f'{"-":>13}')
        continue
      mesh = sharding_lib.make_mesh(jax.devices()[:n])
      block, used = _fitting_block(config, batch_size, mesh, blocks, budget_gib * GIB)
      cell = f'{used / GIB:.2f} [{block}]' if block else f'over ({used / GIB:.0f})'
      cells.append(f'{cell:>13}')
    print(f'{batch_size:>6} ' + ' '.join(cells), flush=True)


def main(argv):
  del argv
  to_ints = lambda values: [int(v) for v in values]
  counts = to_ints(_DEVICE_COUNTS.value if _MEMORY_TABLE.value else _DEVICES.value)
  jax.config.update('jax_platforms', 'cpu')
  jax.config.update('jax_num_cpu_devices', max(counts))
  config = _CONFIG.value
  if _MEMORY_TABLE.value:
    memory_table(config, to_ints(_BATCHES.value), counts, to_ints(_BLOCKS.value),
                 _BUDGET_GIB.value)
  else:
    step_time_table(config, counts, _STEPS.value)


if __name__ == '__main__':
  app.run(main)
