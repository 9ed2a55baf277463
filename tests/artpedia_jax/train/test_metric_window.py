"""Device-side metric windows: means without the skipped steps, runs of skips."""

import jax.numpy as jnp
import numpy as np

from artpedia_jax.train import metric_window


def _metrics(loss: float, skipped: bool) -> dict:
  return {'loss': jnp.float32(np.nan if skipped else loss), 'skipped': jnp.int32(skipped)}


def _run(window, steps):
  """steps: (step, loss, skipped) triples."""
  for step, loss, skipped in steps:
    window = metric_window.add(window, _metrics(loss, skipped), jnp.int32(step))
  return metric_window.read(window)


def test_means_leave_skipped_steps_out():
  first = _metrics(1.0, False)
  summary = _run(metric_window.empty(first),
                 [(1, 1.0, False), (2, 0.0, True), (3, 3.0, False)])
  assert summary.means == {'loss': 2.0}
  assert (summary.steps, summary.skipped, summary.last_skipped_step) == (3, 1, 2)
  assert summary.consecutive == 0 and summary.step_reaching(2) is None


def test_a_run_of_skips_carried_over_windows_reaches_the_limit_at_its_step():
  first = _metrics(1.0, False)
  summary = _run(metric_window.empty(first), [(1, 1.0, False), (2, 0.0, True)])
  assert summary.consecutive == 1 and summary.step_reaching(2) is None
  summary = _run(metric_window.empty(first, summary.consecutive),
                 [(3, 0.0, True), (4, 0.0, True), (5, 0.0, True)])
  assert np.isnan(summary.means['loss'])
  assert summary.consecutive == 4 and summary.worst_run == 4
  assert summary.step_reaching(2) == 3 and summary.step_reaching(4) == 5
  assert summary.step_reaching(5) is None
