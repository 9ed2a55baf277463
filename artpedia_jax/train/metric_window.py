"""The logged train metrics and the skip counters, kept on the device between log steps.

Reading any device value makes the host wait for the step that produced it, so a loop
that reads a metric every step can never queue the next step while the current one runs.
Instead each step's metrics are added into device-side window sums by a small jitted
update, dispatched asynchronously like the step itself; the loop reads the window only at
log steps and logs its means. The consecutive-skip counter lives here too, so the run
still stops after `max_consecutive_skips` non-finite steps in a row (noticed at the next
log step).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

Window = dict[str, jax.Array]
_COUNTERS = ('steps', 'skipped', 'consecutive', 'worst_run', 'worst_run_step',
             'last_skipped_step')


def empty(metrics: dict[str, jax.Array], consecutive: jax.Array | int = 0) -> Window:
  """A window with zero sums for every metric the step reports (except `skipped`).

  `consecutive` carries the skip run of the previous window over.
  """
  window = {name: jnp.zeros((), jnp.float32) for name in metrics if name != 'skipped'}
  window.update({name: jnp.zeros((), jnp.int32) for name in _COUNTERS})
  window['consecutive'] = jnp.asarray(consecutive, jnp.int32)
  window['worst_run'] = window['consecutive']
  return window


@jax.jit
def add(window: Window, metrics: dict[str, jax.Array], step: jax.Array) -> Window:
  """The window with one more step's metrics; a skipped step adds to no mean."""
  skipped = metrics['skipped'] > 0
  new = {name: window[name] + jnp.where(skipped, 0.0, metrics[name].astype(jnp.float32))
         for name in window if name not in _COUNTERS}
  consecutive = jnp.where(skipped, window['consecutive'] + 1, 0)
  longer = consecutive > window['worst_run']
  new.update(
      steps=window['steps'] + 1,
      skipped=window['skipped'] + skipped.astype(jnp.int32),
      consecutive=consecutive,
      worst_run=jnp.maximum(window['worst_run'], consecutive),
      worst_run_step=jnp.where(longer, step, window['worst_run_step']),
      last_skipped_step=jnp.where(skipped, step, window['last_skipped_step']))
  return new


@dataclasses.dataclass(frozen=True)
class Summary:
  """A window read back on the host."""
  means: dict[str, float]  # over the window's steps that were not skipped (nan if none)
  steps: int
  skipped: int
  last_skipped_step: int
  consecutive: int  # skipped steps in a row at the window's end
  worst_run: int  # the longest run of skipped steps in a row (counting the carried one)
  worst_run_step: int  # the step that made it that long

  def step_reaching(self, run_length: int) -> int | None:
    """The step at which `run_length` skips in a row were first reached in this window
    (None if they were not)."""
    if self.worst_run < run_length:
      return None
    return self.worst_run_step - (self.worst_run - run_length)


def read(window: Window) -> Summary:
  """The window on the host: the one place the loop waits for the device."""
  host = {name: np.asarray(value) for name, value in jax.device_get(window).items()}
  kept = int(host['steps']) - int(host['skipped'])
  means = {name: float(host[name]) / kept if kept else float('nan')
           for name in host if name not in _COUNTERS}
  return Summary(means=means, **{name: int(host[name]) for name in _COUNTERS})
