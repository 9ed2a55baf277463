"""`python -m artpedia_jax.annotate`: the table, the HTML and JSON files, the errors."""

import json
import re

import numpy as np
from PIL import Image
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
  width, height = Image.open(image).size
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
  assert saved['painting'] == 'painting'
  assert [s['text'] for s in saved['sentences']] == [
      'The purple hexagon stands out against the cream sky.',
      'It was bought by St. John Smith, c. 1903, for an 18th-century collection.']
  page = (tmp_path / 'annotation.html').read_text()
  assert '<html lang="en">' in page and 'name="viewport"' in page
  assert 'href="style.css"' in page and 'src="alignment.js"' in page
  assert 'src="painting.jpg"' in page and 'data:image' not in page
  for name in ('style.css', 'alignment.js'):
    assert (tmp_path / name).stat().st_size > 0
  assert (tmp_path / 'painting.jpg').read_bytes().startswith(b'\xff\xd8')
  for sentence in saved['sentences']:
    assert sentence['kind'] in ('visual', 'contextual')
    assert len(sentence['words']) == len(re.findall(r'[^\W_]+', sentence['text']))
    assert f'<li class="sentence {sentence["kind"]}">' in page
  unknown = [w for s in saved['sentences'] for w in s['unknown_words']]
  assert unknown and all(w in result.stdout for w in unknown)  # "smith" is not a sample word
  assert page.count('data-box=') == sum(len(s['words']) for s in saved['sentences'])


def test_a_regions_file_without_image_size_takes_it_from_the_image(
    region_workdir, painting_files_of_a_test_painting, tmp_path):
  image, npz, text = painting_files_of_a_test_painting
  with np.load(npz) as arrays:
    sizeless = tmp_path / 'sizeless.npz'
    np.savez(sizeless, features=arrays['features'], boxes=arrays['boxes'])
  common = ['artpedia_jax.annotate', f'--workdir={region_workdir}', '--step=latest',
            f'--text={text}']
  with_size = cli_helpers.run_module(*common, f'--regions={npz}', f'--out={tmp_path}/a')
  from_image = cli_helpers.run_module(*common, f'--regions={sizeless}', f'--image={image}',
                                      f'--out={tmp_path}/b')
  assert from_image.returncode == 0, from_image.stderr[-3000:]
  assert from_image.stdout.splitlines()[:-2] == with_size.stdout.splitlines()[:-2]
  cli_helpers.assert_one_error_line(cli_helpers.run_module(*common, f'--regions={sizeless}'),
                                    'sizeless.npz', 'image size is unknown')


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
