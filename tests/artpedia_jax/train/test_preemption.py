"""A SIGTERM becomes a stop request (one process; two processes: tests/e2e/test_multihost.py)."""

import os
import signal

from artpedia_jax.train import preemption


def test_sigterm_asks_to_stop_after_the_current_step_and_the_handler_is_restored():
  def previous(signum, frame):
    del signum, frame
  signal.signal(signal.SIGTERM, previous)
  stop = preemption.StopRequest()
  try:
    assert not stop.reached(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.reached(2)
  finally:
    stop.restore()
  assert signal.getsignal(signal.SIGTERM) is previous
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
