"""The device mesh and how arrays are laid out on it.

Classic data parallelism: one mesh axis `data`; the batch is split along it, parameters
and optimiser state are replicated. The axis type is `Auto` so that XLA's partitioner
places the (all-gathered) negatives of the global batch on every device by itself.
"""

import jax
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
