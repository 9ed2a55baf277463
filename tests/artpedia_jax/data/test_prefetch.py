"""DevicePrefetcher: batches in order, one read ahead, the checkpointed position is the
loop's (not the read-ahead's)."""

import json

import grain
import numpy as np

from artpedia_jax.data import prefetch


def _iterator():
  return iter(grain.MapDataset.range(20).batch(2).to_iter_dataset())


def test_batches_come_in_order_with_their_local_copy():
  batches = prefetch.DevicePrefetcher(_iterator(), put=lambda local: local * 10)
  for k in range(3):
    device, local = next(batches)
    np.testing.assert_array_equal(local, [2 * k, 2 * k + 1])
    np.testing.assert_array_equal(device, local * 10)


def test_saved_position_resumes_at_the_next_batch_the_loop_takes():
  iterator = _iterator()
  batches = prefetch.DevicePrefetcher(iterator, put=lambda local: local)
  next(batches), next(batches)
  # The read-ahead consumed batch 2 already; the saved position must still point at it.
  state = json.loads(batches.get_state().decode())
  resumed = _iterator()
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed), [4, 5])
  np.testing.assert_array_equal(next(batches)[1], [4, 5])
