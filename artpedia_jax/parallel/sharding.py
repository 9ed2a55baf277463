"""The device mesh and how arrays are laid out on it.

Classic data parallelism: one mesh axis `data`; the batch is split along it, parameters
and optimiser state are replicated. The axis type is `Auto` so that XLA's partitioner
places the (all-gathered) negatives of the global batch on every device by itself.

With several processes a global array is not wholly on any one host: build it from host
data with `global_batch` (each process holds its own rows) or `shard_full` (each process
holds all of it), and bring it back with `to_host`, never with `np.asarray`.
"""

import jax
from jax.experimental import multihost_utils
import numpy as np

DATA_AXIS = 'data'


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D `data` mesh over `devices` (default: every device of every process)."""
  devices = list(jax.devices() if devices is None else devices)
  return jax.sharding.Mesh(
      np.asarray(devices), (DATA_AXIS,),
      axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def batch_sharded(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """Leading axis split over `data`, the rest whole."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def global_batch(mesh: jax.sharding.Mesh, local_batch: dict) -> dict:
  """Process-local numpy batch → global jax arrays sharded over `data`.

  Each process contributes its own rows; on one process this is a plain device_put.
  """
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      local_batch)


def replicate(mesh: jax.sharding.Mesh, tree):
  """Places a pytree of arrays whole on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))


def shard_full(mesh: jax.sharding.Mesh, x: np.ndarray) -> jax.Array:
  """A host array that every process holds whole → a global array sharded over `data`.

  Each device takes its rows straight from `x`; nothing crosses processes.
  """
  return jax.make_array_from_callback(x.shape, batch_sharded(mesh), lambda index: x[index])


def to_host(x: jax.Array) -> np.ndarray:
  """The whole of a (possibly multi-process) global array, as numpy on every process."""
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def abstract_like(tree, sharding: jax.sharding.Sharding | None = None):
  """Shape-and-dtype stand-ins of `tree`'s arrays (a restore target), on `sharding`
  (default: each array's own sharding)."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=sharding or x.sharding), tree)
