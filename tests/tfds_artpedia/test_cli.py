"""The shared entry point: which exceptions are a user's mistake, and how they read."""

import errno
import subprocess
import sys

from absl import flags
import pytest

from tfds_artpedia import cli
from tfds_artpedia import errors


@pytest.mark.parametrize('error, status', [
    (errors.UserError('bad data'), 1),
    (errors.UsageError('bad flag'), 2),
    (flags.IllegalFlagValueError('flag --x=y: no'), 2),
    (FileNotFoundError(errno.ENOENT, 'No such file or directory', 'a.json'), 1),
    (FileNotFoundError('no file named'), None),  # raised by code, not by the OS: a bug
    (ZeroDivisionError('a bug'), None),
])
def test_exit_status(error, status):
  assert cli.exit_status(error) == status


def test_a_list_of_problems_reads_as_one_line():
  error = errors.UsageError('Invalid configuration:\n  a=1: must be > 1\n  b=x: unknown')
  assert cli.describe(error) == 'Invalid configuration: a=1: must be > 1; b=x: unknown'


def test_an_os_error_names_the_path_and_what_to_do():
  error = OSError(errno.EROFS, 'Read-only file system', '/mnt/ro/w')
  assert cli.describe(error) == ('/mnt/ro/w: Read-only file system; the file system is '
                                 'read-only: pass a path on a writable one.')


def test_a_bug_keeps_its_traceback():
  result = subprocess.run(
      [sys.executable, '-c', 'from tfds_artpedia import cli\n'
       'def main(argv):\n  return 1 / 0\n'
       'cli.run(main)'], capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert 'Traceback' in result.stderr and 'ZeroDivisionError' in result.stderr
  assert not any(line.startswith('error:') for line in result.stderr.splitlines())
