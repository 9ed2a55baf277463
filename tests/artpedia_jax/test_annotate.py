"""`python -m artpedia_jax.annotate`: the table, the HTML and JSON files, the errors."""

import json

import numpy as np
import pytest

from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from tests.helpers import cli_helpers
from tests.helpers import e2e_helpers
from tfds_artpedia import regions as regions_lib


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]

TEXT = ('The purple hexagon stands out against the cream sky. It was bought by St. John '
        'Smith, c. 1903, for an 18th-century collection.')


@pytest.fixture(scope='module')
def painting_files_of_a_test_painting(sample_data_dir, tmp_path_factory):
  """(image, regions npz, text file) of the first test painting."""
  folder = tmp_path_factory.mktemp('painting')
  record = pipeline.open_source(_inputs(e2e_helpers.e2e_config(sample_data_dir)), 'test')[0]
  image = folder / 'painting.jpg'
  image.write_bytes(record['image'])
  width, height = pipeline.Image.open(image).size
  npz = folder / 'painting.npz'
  np.savez(npz, features=record['regions']['features'],
           boxes=regions_lib.pixel_boxes(record['regions']['boxes'], width, height),
           image_w=width, image_h=height)
  text = folder / 'text.txt'
  text.write_text(TEXT, encoding='utf-8')
  return image, npz, text


def test_annotates_a_text_and_writes_html_and_json(region_workdir,
                                                  painting_files_of_a_test_painting,
                                                  tmp_path):
  image, npz, text = painting_files_of_a_test_painting
  result = cli_helpers.run_module(
      'artpedia_jax.annotate', f'--workdir={region_workdir}', '--step=latest',
      f'--regions={npz}', f'--image={image}', f'--text={text}', f'--out={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'p(visual)' in result.stdout and 'St. John Smith' in result.stdout
  saved = json.loads((tmp_path / 'annotation.json').read_text())
  assert [s['text'] for s in saved['sentences']] == [
      'The purple hexagon stands out against the cream sky.',
      'It was bought by St. John Smith, c. 1903, for an 18th-century collection.']
  page = (tmp_path / 'annotation.html').read_text()
  for i, sentence in enumerate(saved['sentences'], start=1):
    assert sentence['kind'] in ('visual', 'contextual')
    assert len(sentence['words']) == len(sentence['text'].split()) + (i == 2)  # 18th-century
    picture = tmp_path / f'annotation_{i}.png'
    assert picture.exists() == (sentence['kind'] == 'visual')
    if picture.exists():
      assert picture.read_bytes().startswith(b'\x89PNG') and picture.name in page


def test_user_mistakes_are_one_error_line(region_workdir,
                                          painting_files_of_a_test_painting, tmp_path):
  image, npz, text = painting_files_of_a_test_painting
  common = [f'--workdir={region_workdir}', '--step=latest']
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.annotate', *common, f'--regions={npz}', f'--text={tmp_path}/none.txt'),
      'none.txt', 'No such file')
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.annotate', *common, f'--image={image}', f'--text={text}'),
      'trained on detector regions', '--regions')
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.annotate', *common, f'--text={text}'), '--image', '--regions')
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.annotate', f'--workdir={tmp_path}', f'--regions={npz}',
      f'--text={text}'), 'train first')


def test_a_split_painting_is_annotated_with_its_own_sentences(region_workdir,
                                                             sample_data_dir, tmp_path):
  record = pipeline.open_source(_inputs(e2e_helpers.e2e_config(sample_data_dir)), 'test')[0]
  painting_id = record['id'].decode()
  result = cli_helpers.run_module(
      'artpedia_jax.annotate', f'--workdir={region_workdir}', '--step=latest',
      '--split=test', f'--id={painting_id}', f'--out={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads((tmp_path / 'annotation.json').read_text())
  assert saved['painting'] == painting_id
  assert [s['text'] for s in saved['sentences']] == [s.decode() for s in record['sentences']]
  cli_helpers.assert_one_error_line(cli_helpers.run_module(
      'artpedia_jax.annotate', f'--workdir={region_workdir}', '--step=latest',
      '--split=test', '--id=nope'), '--id=nope')
