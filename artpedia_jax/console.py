"""Console output and start-up policy for the binaries: our lines, not others' chatter.

Orbax, grain and TFDS log every save, restore and file open at INFO level through absl,
which buries the training progress; some third-party warnings carry no news for a user
either (no TPU library on a CPU machine, a checkpoint opened read-only, Orbax's metadata
and metric notices), so they are hidden unless `--verbose`. Other warnings and errors
still come through.

Every command also turns on JAX's persistent compilation cache (`compilation_cache_dir`),
so a command run again loads its compiled functions instead of compiling them.
"""

from collections.abc import Callable
import logging as std_logging
import os
import pathlib
import re
import sys

from absl import logging
import jax

_OWN_PACKAGES = ('/artpedia_jax/', '/tfds_artpedia/')
# Third-party warnings that say nothing a user can act on.
NOISE = re.compile('|'.join([
    r'[Uu]nable to initialize backend',  # jax probing for TPU/GPU plugins
    r'libtpu',
    r'read[-_ ]only',  # Orbax: a checkpoint manager opened to read
    r'[Mm]etadata file does not exist',  # Orbax: its step metadata, not ours
    r'tracked_metric',  # Orbax: a best-checkpoint policy given no metrics at a save
]))
# Where the compiled functions are kept, unless JAX_COMPILATION_CACHE_DIR says.
CACHE_ENV = 'JAX_COMPILATION_CACHE_DIR'


def _is_own(record: std_logging.LogRecord) -> bool:
  path = record.pathname.replace('\\', '/')
  return any(package in path for package in _OWN_PACKAGES)


def _is_shown(record: std_logging.LogRecord) -> bool:
  if _is_own(record):
    return True
  return record.levelno >= std_logging.WARNING and not NOISE.search(record.getMessage())


def quiet_third_party_info() -> None:
  """Hides INFO lines that do not come from this project's packages, and the
  third-party warnings that carry no news for a user."""
  # The absl handler prints every logger's records (jax's come through the root logger).
  logging.get_absl_handler().addFilter(_is_shown)


def compilation_cache_dir() -> pathlib.Path:
  """JAX_COMPILATION_CACHE_DIR, or artpedia-jax/jax under the user's cache folder."""
  if os.environ.get(CACHE_ENV):
    return pathlib.Path(os.environ[CACHE_ENV])
  base = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
  return pathlib.Path(base) / 'artpedia-jax' / 'jax'


def enable_compilation_cache() -> None:
  """Keeps every compiled function on disk (even quick ones), for the next run."""
  jax.config.update('jax_compilation_cache_dir', str(compilation_cache_dir()))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def prepare_command(verbose: bool = False) -> None:
  """What every command does first: a quiet console (unless `verbose`) and the
  compilation cache."""
  if not verbose:
    quiet_third_party_info()
  enable_compilation_cache()


def progress_line(what: str) -> Callable[[int, int], None]:
  """A callback printing `what: done/total` on one stderr line, rewritten in place."""
  def show(done: int, total: int) -> None:
    print(f'\r{what}: {done}/{total}', end='\n' if done >= total else '', file=sys.stderr,
          flush=True)
  return show
