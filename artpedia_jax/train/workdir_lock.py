"""One run per workdir: a lock file naming its holder, taken before anything is written.

Two runs on one workdir resume from each other's checkpoints and delete each other's
files (Orbax's retention and clean-up), so a run takes `W/run.lock` first: a JSON record
of the host, process id, start time and a heartbeat that the holder refreshes every
`HEARTBEAT_S` seconds. The lock is released when the run ends, whatever the reason.

A lock left by a run that died without releasing it (SIGKILL, power loss) is stale:
on the same host when its process is gone, on another host (a restarted pod lands on
new machines) when its heartbeat is older than `STALE_AFTER_S`. A stale lock is taken
over with a warning; a live one stops the new run with an error naming its holder.

Locally the lock file is created atomically (O_EXCL). Elsewhere (gs://, through
etils.epath) creation is check-then-write, confirmed by reading the record back: two
runs started within the same moment could both pass, which one run per workdir in
practice (a scheduler restarting a job) does not do.
"""

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
import uuid

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import numpy as np

from tfds_artpedia import errors

LOCK_FILE = 'run.lock'
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
_UNREADABLE = '?'  # the token of a lock file that does not parse


class WorkdirLockedError(errors.UserError):
  """Another live run holds the workdir."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """Who holds a lock, as its file records it."""
  host: str
  pid: int
  started: float  # seconds since the epoch
  heartbeat: float
  token: str  # tells this holder's file from a later one

  def describe(self) -> str:
    started = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.started))
    if self.token == _UNREADABLE:
      return f'a run whose lock file does not parse, written {started}'
    return f'process {self.pid} on host {self.host}, started {started}'


def _process_is_gone(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:  # alive, another user's
    return False
  return False


def _is_local(path: epath.Path) -> bool:
  return '://' not in os.fspath(path)


class WorkdirLock:
  """The lock of one workdir: `acquire()`, then `release()` (or use `hold`)."""

  def __init__(self, workdir: epath.PathLike, *, heartbeat_s: float = HEARTBEAT_S,
               stale_after_s: float = STALE_AFTER_S):
    self.path = epath.Path(workdir) / LOCK_FILE
    self._heartbeat_s = heartbeat_s
    self._stale_after_s = stale_after_s
    now = time.time()
    self._holder = Holder(socket.gethostname(), os.getpid(), now, now, uuid.uuid4().hex)
    self._stop = threading.Event()
    self._thread = None

  def acquire(self) -> None:
    """Takes the lock (creating the workdir), or raises `WorkdirLockedError`."""
    self.path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a stale lock taken over, or one released meanwhile
      if self._create():
        self._thread = threading.Thread(target=self._beat, name='workdir-lock-heartbeat',
                                        daemon=True)
        self._thread.start()
        return
      other = self._read()
      if other is None:
        continue
      why_stale = self._why_stale(other)
      if why_stale is None:
        raise WorkdirLockedError(
            f'{self.path.parent} is in use by another run ({other.describe()}; '
            f'{self.path} holds its lock): wait for it to end or pass another --workdir.')
      logging.warning('Taking over the lock of %s left by %s: %s.', self.path.parent,
                      other.describe(), why_stale)
      self.path.unlink(missing_ok=True)
    raise WorkdirLockedError(
        f'{self.path.parent}: another run took the lock {self.path} at the same time: '
        'pass another --workdir or start one run only.')

  def release(self) -> None:
    """Stops the heartbeat and removes the lock file, if it is still this run's."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    current = self._read()
    if current is not None and current.token == self._holder.token:
      self.path.unlink(missing_ok=True)

  def _record(self) -> str:
    return json.dumps(dataclasses.asdict(self._holder), indent=1)

  def _create(self) -> bool:
    """Writes the lock file if there is none; whether it is now this run's."""
    if _is_local(self.path):
      try:
        descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(descriptor, 'w') as f:
        f.write(self._record())
      return True
    if self.path.exists():
      return False
    self.path.write_text(self._record())
    current = self._read()
    return current is not None and current.token == self._holder.token

  def _read(self) -> Holder | None:
    """The holder the lock file names; None if there is no lock file any more."""
    try:
      text = self.path.read_text()
    except FileNotFoundError:
      return None
    try:
      return Holder(**json.loads(text))
    except (ValueError, TypeError):  # being written, or cut short: its age tells
      modified = float(self.path.stat().mtime)
      return Holder(host='?', pid=-1, started=modified, heartbeat=modified,
                    token=_UNREADABLE)

  def _why_stale(self, other: Holder) -> str | None:
    if other.host == self._holder.host and _process_is_gone(other.pid):
      return 'that process is gone'
    silent = time.time() - other.heartbeat
    if silent > self._stale_after_s:
      return f'no heartbeat for {silent:.0f} s (more than {self._stale_after_s:.0f} s)'
    return None

  def _beat(self) -> None:
    while not self._stop.wait(self._heartbeat_s):
      current = self._read()
      if current is None or current.token != self._holder.token:
        logging.warning('The lock %s is no longer this run\'s (now: %s).', self.path,
                        'none' if current is None else current.describe())
        return
      self._holder = dataclasses.replace(self._holder, heartbeat=time.time())
      if _is_local(self.path):
        temp = self.path.with_name(f'.{LOCK_FILE}.{self._holder.token}')
        temp.write_text(self._record())
        temp.replace(self.path)
      else:
        self.path.write_text(self._record())


@contextlib.contextmanager
def hold(workdir: epath.PathLike):
  """Holds the workdir's lock for the block, on behalf of every process of the run.

  Process 0 takes the lock; all processes learn whether it could, so that all stop
  together (with its error on process 0) instead of some waiting on the others.
  """
  lock = WorkdirLock(workdir) if jax.process_index() == 0 else None
  failure = None
  if lock is not None:
    try:
      lock.acquire()
    except (errors.UserError, OSError) as error:
      failure = error
  if jax.process_count() > 1:
    failed = multihost_utils.process_allgather(np.int32(failure is not None))
    if np.max(failed) and failure is None:
      raise WorkdirLockedError(f'Process 0 could not lock {workdir}: see its error.')
  if failure is not None:
    raise failure
  try:
    yield
  finally:
    if lock is not None:
      lock.release()
