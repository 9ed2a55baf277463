"""One run per workdir: the lock file, its staleness rules and its heartbeat."""

import json
import logging
import os
import socket
import subprocess
import time

import pytest

from artpedia_jax.train import workdir_lock
from tests.helpers import fake_gcs


def _write_lock(workdir, *, host, pid, heartbeat):
  os.makedirs(workdir, exist_ok=True)
  (workdir / workdir_lock.LOCK_FILE).write_text(json.dumps(
      {'host': host, 'pid': pid, 'started': heartbeat, 'heartbeat': heartbeat,
       'token': 'earlier-run'}))


def _dead_pid() -> int:
  process = subprocess.Popen(['true'])
  process.wait()
  return process.pid


def test_a_held_workdir_refuses_a_second_lock_until_released(tmp_path):
  first = workdir_lock.WorkdirLock(tmp_path / 'w')
  first.acquire()
  record = json.loads((tmp_path / 'w' / workdir_lock.LOCK_FILE).read_text())
  assert (record['host'], record['pid']) == (socket.gethostname(), os.getpid())
  with pytest.raises(workdir_lock.WorkdirLockedError,
                     match=rf'in use by another run \(process {os.getpid()} on host '):
    workdir_lock.WorkdirLock(tmp_path / 'w').acquire()
  first.release()
  assert not (tmp_path / 'w' / workdir_lock.LOCK_FILE).exists()
  second = workdir_lock.WorkdirLock(tmp_path / 'w')
  second.acquire()
  second.release()


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(tmp_path, caplog):
  dead = _dead_pid()
  _write_lock(tmp_path, host=socket.gethostname(), pid=dead, heartbeat=time.time())
  lock = workdir_lock.WorkdirLock(tmp_path)
  with caplog.at_level(logging.WARNING):
    lock.acquire()
  (warning,) = [r.getMessage() for r in caplog.records if 'Taking over' in r.getMessage()]
  assert f'left by process {dead} on host {socket.gethostname()}' in warning
  assert warning.endswith('that process is gone.')
  assert json.loads((tmp_path / workdir_lock.LOCK_FILE).read_text())['pid'] == os.getpid()
  lock.release()


def test_another_hosts_lock_is_stale_only_without_a_recent_heartbeat(tmp_path, caplog):
  _write_lock(tmp_path, host='elsewhere', pid=1, heartbeat=time.time() - 30)
  with pytest.raises(workdir_lock.WorkdirLockedError, match='process 1 on host elsewhere'):
    workdir_lock.WorkdirLock(tmp_path, stale_after_s=60).acquire()
  _write_lock(tmp_path, host='elsewhere', pid=1, heartbeat=time.time() - 90)
  lock = workdir_lock.WorkdirLock(tmp_path, stale_after_s=60)
  with caplog.at_level(logging.WARNING):
    lock.acquire()
  assert any('no heartbeat for' in r.getMessage() for r in caplog.records)
  lock.release()


def test_the_holder_refreshes_its_heartbeat(tmp_path):
  lock = workdir_lock.WorkdirLock(tmp_path, heartbeat_s=0.01)
  lock.acquire()
  path = tmp_path / workdir_lock.LOCK_FILE
  first = json.loads(path.read_text())
  for _ in range(500):
    current = json.loads(path.read_text())
    if current['heartbeat'] > first['heartbeat']:
      break
    time.sleep(0.01)
  lock.release()
  assert current['heartbeat'] > first['heartbeat']
  assert current['started'] == first['started'] and current['token'] == first['token']


def test_hold_releases_the_lock_when_the_run_fails(tmp_path):
  with pytest.raises(RuntimeError, match='the run failed'):
    with workdir_lock.hold(str(tmp_path / 'w')):
      assert (tmp_path / 'w' / workdir_lock.LOCK_FILE).exists()
      raise RuntimeError('the run failed')
  assert not (tmp_path / 'w' / workdir_lock.LOCK_FILE).exists()


def test_a_gs_workdir_is_locked_through_epath(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  fake = fake_gcs.fake_gcs(tmp_path / 'bucket_root', monkeypatch)
  lock = workdir_lock.WorkdirLock('gs://bucket/w')
  lock.acquire()
  assert fake.written == ['gs://bucket/w/run.lock']
  assert os.path.isfile(fake.local('gs://bucket/w/run.lock'))
  with pytest.raises(workdir_lock.WorkdirLockedError, match='in use by another run'):
    workdir_lock.WorkdirLock('gs://bucket/w').acquire()
  lock.release()
  assert not os.path.exists(fake.local('gs://bucket/w/run.lock'))
  assert not (tmp_path / 'gs:').exists()  # nothing went to the local disk by name


def test_an_unreadable_lock_counts_as_live_until_it_is_old(tmp_path):
  """A lock file another run is writing at this moment must not be taken over."""
  path = tmp_path / workdir_lock.LOCK_FILE
  path.write_text('{"host": "elsewh')
  with pytest.raises(workdir_lock.WorkdirLockedError,
                     match='in use by another run \\(a run whose lock file does not parse'):
    workdir_lock.WorkdirLock(tmp_path, stale_after_s=60).acquire()
  old = time.time() - 120
  os.utime(path, (old, old))
  lock = workdir_lock.WorkdirLock(tmp_path, stale_after_s=60)
  lock.acquire()
  lock.release()
