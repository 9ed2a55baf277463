"""Training batches placed on the devices one step ahead, with a checkpointable position.

The loop takes batch k + 1 from here right after dispatching step k, so reading,
assembling and transferring it overlap with step k on the device (jax dispatch is
asynchronous). The iterator position saved with a checkpoint must be that of the next
batch the *loop* will train on, not that of the batch read ahead, so `get_state` reports
the position from before the read-ahead: a resumed run trains on exactly the batches the
interrupted one would have.
"""

import json
from typing import Any, Callable

import grain


class DevicePrefetcher:
  """Iterates `put(local batch)` of a grain iterator, one batch ahead.

  `next()` returns (the device batch, its process-local host batch). `get_state()` is
  what `grain.checkpoint.CheckpointSave` stores (JSON bytes, the same content it writes
  for the grain iterator itself, so `CheckpointRestore` into a fresh grain iterator
  resumes at the right batch).
  """

  def __init__(self, iterator: grain.DatasetIterator, put: Callable[[dict], Any]):
    self._iterator, self._put = iterator, put
    self._ahead = self._read()

  def _read(self) -> tuple[dict, Any, dict]:
    state = self._iterator.get_state()
    local = next(self._iterator)
    return state, self._put(local), local

  def __iter__(self) -> 'DevicePrefetcher':
    return self

  def __next__(self) -> tuple[Any, dict]:
    _, device_batch, local = self._ahead
    self._ahead = self._read()
    return device_batch, local

  def get_state(self) -> bytes:
    """The position of the next batch `next()` returns."""
    return json.dumps(self._ahead[0], indent=4).encode()
