"""Console output policy for the binaries: our progress lines, others' warnings.

Orbax, grain and TFDS log every save, restore and file open at INFO level through absl,
which buries the training progress; their warnings and errors still come through.
"""

from collections.abc import Callable
import logging as std_logging
import sys

from absl import logging

_OWN_PACKAGES = ('/artpedia_jax/', '/tfds_artpedia/')


def _is_shown(record: std_logging.LogRecord) -> bool:
  path = record.pathname.replace('\\', '/')
  return (record.levelno >= std_logging.WARNING
          or any(package in path for package in _OWN_PACKAGES))


def quiet_third_party_info() -> None:
  """Hides INFO lines that do not come from this project's packages."""
  logging.get_absl_logger().addFilter(_is_shown)


def progress_line(what: str) -> Callable[[int, int], None]:
  """A callback printing `what: done/total` on one stderr line, rewritten in place."""
  def show(done: int, total: int) -> None:
    print(f'\r{what}: {done}/{total}', end='\n' if done >= total else '', file=sys.stderr,
          flush=True)
  return show
