"""`python -m artpedia_jax.serve`: starts on 127.0.0.1 and answers; mistakes are one line."""

import json
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.helpers import cli_helpers
from tests.helpers import e2e_helpers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]


def test_serves_the_split_on_an_ephemeral_local_port(region_workdir):
  server = subprocess.Popen(
      [sys.executable, '-m', 'artpedia_jax.serve', f'--workdir={region_workdir}',
       '--step=latest', '--port=0'], cwd=e2e_helpers.REPO, stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL, text=True)
  try:
    line = server.stdout.readline()
    port = re.search(r'on http://127\.0\.0\.1:(\d+)/', line)
    assert port, line
    base = f'http://127.0.0.1:{port.group(1)}'
    with urllib.request.urlopen(f'{base}/?q=a+red+ring', timeout=300) as response:
      assert response.status == 200 and b'/thumbnail/' in response.read()
    with urllib.request.urlopen(f'{base}/api/search?q=a+red+ring&k=2', timeout=300) as response:
      answer = json.loads(response.read())
    assert len(answer['results']) == 2
    assert sorted(answer['words']['known'] + answer['words']['unknown']) == ['a', 'red', 'ring']
  finally:
    server.terminate()
    server.wait(timeout=60)


def test_user_mistakes_are_one_error_line(region_workdir, tmp_path):
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.serve', f'--workdir={region_workdir}', '--step=latest',
      f'--folder={tmp_path}'), str(tmp_path), 'npz')
