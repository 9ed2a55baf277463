"""A fake gs:// file system for etils.epath: objects live in a local folder.

`fake_gcs(root, monkeypatch)` makes every `epath.Path('gs://bucket/a/b')` read and write
`root/bucket/a/b` through a backend that records each call, so a test can run code on a
gs:// workdir and check that it went through epath: a plain `open()` or `os.makedirs`
of a gs:// string would instead create a folder named `gs:` in the current directory.
"""

import os

from etils.epath import backend as backend_lib
from etils.epath import gpath

PREFIX = 'gs://'


class FakeGcsBackend(backend_lib.Backend):
  """The os backend on `root`, for gs:// paths; `written` lists the paths written."""

  def __init__(self, root: str):
    self.root = os.fspath(root)
    self.written: list[str] = []
    self._os = backend_lib.os_backend

  def local(self, path) -> str:
    path = os.fspath(path)
    assert path.startswith(PREFIX), path
    return os.path.join(self.root, path[len(PREFIX):])

  def _remote(self, local: str) -> str:
    return PREFIX + os.path.relpath(local, self.root)

  def open(self, path, mode):
    if any(flag in mode for flag in 'wax+'):
      self.written.append(os.fspath(path))
    return self._os.open(self.local(path), mode)

  def exists(self, path):
    return self._os.exists(self.local(path))

  def isdir(self, path):
    return self._os.isdir(self.local(path))

  def listdir(self, path):
    return self._os.listdir(self.local(path))

  def glob(self, path):
    return [self._remote(p) for p in self._os.glob(self.local(path))]

  def walk(self, top, *, top_down=True, on_error=None):
    for root, dirs, files in self._os.walk(self.local(top), top_down=top_down,
                                          on_error=on_error):
      yield self._remote(root), dirs, files

  def makedirs(self, path, *, exist_ok=False, mode=None):
    return self._os.makedirs(self.local(path), exist_ok=exist_ok, mode=mode)

  def mkdir(self, path, *, exist_ok=False, mode=None):
    return self._os.mkdir(self.local(path), exist_ok=exist_ok, mode=mode)

  def rmtree(self, path):
    return self._os.rmtree(self.local(path))

  def remove(self, path):
    return self._os.remove(self.local(path))

  def rename(self, path, dst):
    return self._os.rename(self.local(path), self.local(dst))

  def replace(self, path, dst):
    self.written.append(os.fspath(dst))
    return self._os.replace(self.local(path), self.local(dst))

  def copy(self, path, dst, overwrite):
    return self._os.copy(self.local(path), self.local(dst), overwrite)

  def stat(self, path):
    return self._os.stat(self.local(path))


def fake_gcs(root, monkeypatch) -> FakeGcsBackend:
  """Routes epath's gs:// paths to a `FakeGcsBackend` on `root` for the test."""
  fake = FakeGcsBackend(root)
  monkeypatch.setitem(gpath._PREFIX_TO_BACKEND, 'gs', fake)  # pylint: disable=protected-access
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)  # else tf.io.gfile
  return fake
