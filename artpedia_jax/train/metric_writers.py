"""Where the training loop's scalars go: TensorBoard, and a JSON-lines file of the log steps.

Both live in the workdir, which may be on any file system etils.epath reaches (gs://,
s3://, ...). The JSON lines go through epath. tensorboardX writes local paths itself and
has its own writer only for s3:// and gs:// (which needs google-cloud-storage); for a
workdir with a scheme, its writer registry gets an event file written through epath
instead. Such an object store cannot append, so that event file is buffered and
written whole at each flush (the loop flushes at log and validation steps): a few
hundred bytes per log step, rewritten, against a file TensorBoard can read as the run
goes.
"""

import io
import json
import uuid
from typing import Any

from etils import epath
import tensorboardX
from tensorboardX import record_writer

TRAIN_METRICS_FILE = 'train_metrics.jsonl'  # in the workdir: one JSON object per log step
TENSORBOARD_DIR = 'tensorboard'


class _EpathEventFile:
  """An event file written whole, through epath, at each flush."""

  def __init__(self, path: str):
    self._path = epath.Path(path)
    self._buffer = io.BytesIO()

  def write(self, data: bytes) -> None:
    self._buffer.write(data)

  def flush(self) -> None:
    self._path.write_bytes(self._buffer.getvalue())

  def close(self) -> None:
    self.flush()


class _EpathEventFiles:
  """tensorboardX's writer factory interface (`open`, `directory_check`)."""

  def open(self, path: str) -> _EpathEventFile:
    return _EpathEventFile(path)

  def directory_check(self, path: str) -> None:
    epath.Path(path).mkdir(parents=True, exist_ok=True)


def _scheme(path: str) -> str | None:
  return path.split('://', 1)[0] if '://' in path else None


def _flatten(result: dict, prefix: str = '') -> dict[str, float]:
  """Nested metrics → {'i2t/R_at_1': ...} scalars for TensorBoard."""
  flat = {}
  for key, value in result.items():
    name = f'{prefix}{key}'.replace('@', '_at_')  # TensorBoard tag characters
    if isinstance(value, dict):
      flat.update(_flatten(value, name + '/'))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      flat[name] = float(value)
  return flat


class MetricWriter:
  """Writes scalars to `workdir` (process 0 of a run; the others make a silent one)."""

  def __init__(self, workdir: epath.PathLike, *, enabled: bool = True):
    self._workdir = epath.Path(workdir)
    self._tensorboard = None
    if enabled:
      logdir = str(self._workdir / TENSORBOARD_DIR)
      scheme = _scheme(logdir)
      if scheme:
        record_writer.register_writer_factory(scheme, _EpathEventFiles())
      # The default name (time in seconds, host) is not unique to a writer: a resumed
      # run starting within the same second would overwrite the previous events.
      self._tensorboard = tensorboardX.SummaryWriter(
          logdir, filename_suffix=f'.{uuid.uuid4().hex[:8]}')

  def write_train(self, step: int, scalars: dict[str, Any]) -> None:
    """A log step: TensorBoard `train/*`, and a line of the JSON-lines file (full
    precision, where TensorBoard rounds to float32; a resumed run appends)."""
    if self._tensorboard is None:
      return
    self._write_scalars('train', scalars, step)
    with (self._workdir / TRAIN_METRICS_FILE).open('a') as f:
      f.write(json.dumps(dict(scalars, step=step)) + '\n')

  def write_validation(self, step: int, metrics: dict[str, Any]) -> None:
    """A validation: its numeric metrics as TensorBoard `validation/*`."""
    if self._tensorboard is not None:
      self._write_scalars('validation', _flatten(metrics), step)

  def _write_scalars(self, prefix: str, scalars: dict[str, Any], step: int) -> None:
    for name, value in scalars.items():
      self._tensorboard.add_scalar(f'{prefix}/{name}', value, step)
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()
