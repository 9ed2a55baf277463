"""Running a command module as a user would, and checking its one-line errors."""

import subprocess
import sys

from tests.helpers import e2e_helpers


def run_module(module: str, *args: str, stdin: str | None = None
               ) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', module, *map(str, args)],
                        cwd=e2e_helpers.REPO, capture_output=True, text=True,
                        input=stdin, timeout=600)


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
  """The command failed with one `error:` line (its last), no traceback; returns it."""
  assert result.returncode != 0, result.stdout
  assert 'Traceback' not in result.stderr, result.stderr
  lines = result.stderr.strip().splitlines()
  errors = [line for line in lines if line.startswith('error:')]
  assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
  for fragment in fragments:
    assert fragment in errors[0], errors[0]
  return errors[0]
