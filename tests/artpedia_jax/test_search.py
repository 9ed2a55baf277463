"""`python -m artpedia_jax.search`: both directions, progress once, one-line errors."""

import json
import re

import pytest

from artpedia_jax import console
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from tests.helpers import cli_helpers
from tests.helpers import e2e_helpers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]


def _search(workdir, *args):
  return cli_helpers.run_module('artpedia_jax.search', f'--workdir={workdir}',
                                '--step=latest', *args)


def test_query_prints_top_paintings_and_encodes_the_split_once(region_workdir):
  cache = region_workdir / 'inference_cache'  # other tests may have filled it
  for path in cache.glob('*') if cache.exists() else ():
    path.unlink()
  first = _search(region_workdir, '--k=3', 'a large blue cross')
  assert first.returncode == 0, first.stderr[-2000:]
  rows = re.findall(r'^\s+(\d)\s+(-?\d\.\d{3})\s+(\S+)\s+(.+)$', first.stdout, re.M)
  assert [int(r[0]) for r in rows] == [1, 2, 3]
  assert [float(r[1]) for r in rows] == sorted((float(r[1]) for r in rows), reverse=True)
  assert 'Encoding the 12 paintings' in first.stderr
  assert 'Words read: a, large, blue, cross' in first.stdout
  again = _search(region_workdir, '--k=3', 'a large blue cross')
  assert again.stdout == first.stdout and 'Encoding' not in again.stderr
  assert not [line for line in first.stderr.splitlines() + again.stderr.splitlines()
              if console.NOISE.search(line)]
  verbose = _search(region_workdir, '--k=3', '--verbose', 'a large blue cross')
  assert verbose.stdout == first.stdout and 'read only' in verbose.stderr


def test_a_bfloat16_models_cached_encodings_serve_the_next_process(bfloat16_workdir):
  first = _search(bfloat16_workdir, '--k=5', 'a large blue cross')
  assert first.returncode == 0 and 'Encoding' in first.stderr, first.stderr[-2000:]
  again = _search(bfloat16_workdir, '--k=5', 'a large blue cross')
  assert again.returncode == 0, again.stderr[-2000:]
  assert again.stdout == first.stdout and 'Encoding' not in again.stderr


def test_unknown_words_are_named_and_a_query_of_them_is_unreliable(region_workdir):
  result = _search(region_workdir, '--k=3', 'the xyzzy of a plugh')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'Words read: the, of, a' in result.stdout
  assert 'Unknown words (ignored): xyzzy, plugh' in result.stdout
  assert 'Unreliable' in result.stdout
  answer = json.loads(_search(region_workdir, '--k=3', '--json', 'the xyzzy of a plugh').stdout)
  assert answer['words'] == {'known': ['the', 'of', 'a'], 'unknown': ['xyzzy', 'plugh']}
  assert answer['unreliable'] is True and len(answer['results']) == 3


def _first_test_id(data_dir) -> str:
  config = e2e_helpers.e2e_config(data_dir)
  return pipeline.open_source(input_spec.InputSpec.from_config(config), 'test')[0]['id'].decode()


def test_a_painting_id_prints_the_best_sentences_of_the_split(region_workdir,
                                                             sample_data_dir):
  result = _search(region_workdir, '--k=4', f'--id={_first_test_id(sample_data_dir)}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert len(re.findall(r'^\s+\d\s+-?\d\.\d{3}\s+\d\.\d{3}\s+\S+\s+\S', result.stdout,
                        re.M)) == 4


def test_user_mistakes_are_one_error_line(region_workdir, sample_data_dir):
  cli_helpers.assert_one_error_line(_search(region_workdir, 'xyzzy plugh'),
                                    'matches nothing', 'xyzzy, plugh unknown')
  cli_helpers.assert_one_error_line(_search(region_workdir, '--id=nope'),
                                    '--id=nope', 'no such painting')
  cli_helpers.assert_one_error_line(_search(region_workdir, '--split=dev', 'a cross'),
                                    "split 'dev'")
  painting_id = _first_test_id(sample_data_dir)
  cli_helpers.assert_one_error_line(_search(region_workdir, f'--id={painting_id}', 'a cross'),
                                    'either a query')
