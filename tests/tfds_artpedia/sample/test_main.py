"""`python -m tfds_artpedia.sample`: the folder writer's command line."""

import json
import pathlib
import subprocess
import sys

import pytest


def _sample_command(*flags, check=True):
  return subprocess.run([sys.executable, '-m', 'tfds_artpedia.sample', *flags],
                        capture_output=True, text=True, check=check,
                        cwd=pathlib.Path(__file__).resolve().parents[3])


def _printed_statistics(result):
  return json.loads(result.stdout[result.stdout.index('{'):])


def test_command_line_writes_folder_and_prints_statistics(tmp_path):
  result = _sample_command(f'--out={tmp_path}', '--num_paintings=4', '--seed=2',
                           '--region_format=tsv')
  statistics = _printed_statistics(result)
  assert statistics['num_paintings'] == 4
  assert len(json.loads((tmp_path / 'artpedia.json').read_text(encoding='utf-8'))) == 4
  assert (tmp_path / 'regions' / 'features.tsv').exists()


def test_command_line_writes_the_realistic_corpus(tmp_path):
  result = _sample_command(f'--out={tmp_path}', '--num_paintings=6', '--seed=1',
                           '--realistic')
  kinds = _printed_statistics(result)['sentence_kinds']
  assert kinds['visual'].get('metadata', 0) + kinds['visual'].get('unseen_object', 0) > 0
  annotations = json.loads((tmp_path / 'artpedia.json').read_text(encoding='utf-8'))
  assert len(annotations) == 6 and len(list((tmp_path / 'regions').glob('*.npz'))) == 6


@pytest.mark.parametrize('flag, message', [
    ('--num_paintings=-3', 'num_paintings and seed must be >= 0'),
    (None, 'is not empty: write the sample corpus into a new or empty folder'),
])
def test_a_user_mistake_is_one_error_line(tmp_path, flag, message):
  out = tmp_path / 'out'
  out.mkdir()
  if flag is None:
    (out / 'artpedia.json').write_text('{}')
  result = _sample_command(f'--out={out}', '--num_paintings=2', *([flag] if flag else []),
                           check=False)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert result.stderr.startswith('error: ') and message in result.stderr
