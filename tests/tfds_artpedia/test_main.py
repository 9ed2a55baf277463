"""Both build commands: the same records, no TensorFlow for ours, nothing left on failure."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_artpedia import __main__ as build_command
from tfds_artpedia import regions
from tfds_artpedia import tfds_artpedia_dataset_builder as builder_lib
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder

REPO = pathlib.Path(__file__).resolve().parents[2]
NUM_PAINTINGS = 12  # 10 train, 1 validation, 1 test
SPLITS = builder_lib.SPLITS


def _run(command, env=None):
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, 'PYTHONPATH': str(REPO), **(env or {})})
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _records(name, data_dir):
  """Every record of every split, images left encoded (compared byte for byte)."""
  return {split: list(tfds.data_source(name, split=split, data_dir=data_dir,
                                       decoders={'image': tfds.decode.SkipDecoding()}))
          for split in SPLITS}


def _assert_same_records(a, b):
  assert {s: len(r) for s, r in a.items()} == {s: len(r) for s, r in b.items()}
  for split in SPLITS:
    for x, y in zip(a[split], b[split]):
      assert x.keys() == y.keys()
      for key in x:
        if key == 'regions':
          for part in ('features', 'boxes'):
            np.testing.assert_array_equal(x[key][part], y[key][part])
        else:
          assert np.array_equal(x[key], y[key]), (split, key)


def _manual_folder(path, region_format='npz', realistic=False):
  sample_folder.write_folder(
      str(path), sample_corpus.generate(NUM_PAINTINGS, seed=0, realistic=realistic),
      region_format)
  return path


def _leftovers(data_dir):
  """Dataset folders or TFDS temporary folders under `data_dir`."""
  return [p for p in pathlib.Path(data_dir).rglob('*')
          if p.name == '1.0.0' or 'incomplete' in p.name]


def test_cli_builds_and_data_source_reads_without_tensorflow(tmp_path):
  fake = tmp_path / 'no_tf' / 'tensorflow'
  fake.mkdir(parents=True)
  (fake / '__init__.py').write_text("raise ImportError('TensorFlow is blocked here')\n")
  script = textwrap.dedent(f"""
      import json, runpy, sys
      sys.argv = ['tfds_artpedia', 'build', '--config=sample',
                  '--num_paintings={NUM_PAINTINGS}', '--data_dir={tmp_path / 'data'}',
                  '--max_image_side=128']
      try:
        runpy.run_module('tfds_artpedia', run_name='__main__')
      except SystemExit as e:
        assert e.code == 0, e.code
      import tensorflow_datasets as tfds
      record = tfds.data_source('artpedia/sample', split='train',
                                data_dir='{tmp_path / 'data'}')[0]
      regions = record.pop('regions')
      print(json.dumps({{
          'tensorflow_imported': 'tensorflow' in sys.modules,
          'types': {{k: type(v).__name__ for k, v in record.items()}},
          'sentence_type': type(record['sentences'][0]).__name__,
          'is_visual': [bool(v) for v in record['is_visual']],
          'num_sentences': len(record['sentences']),
          'image': [str(record['image'].dtype), list(record['image'].shape)],
          'features': [str(regions['features'].dtype), list(regions['features'].shape)],
          'boxes': [str(regions['boxes'].dtype), list(regions['boxes'].shape),
                    float(regions['boxes'].min()), float(regions['boxes'].max())],
      }}))
      """)
  result = _run([sys.executable, '-c', script],
                env={'PYTHONPATH': f'{fake.parent}{os.pathsep}{REPO}'})
  assert 'Built artpedia/sample/1.0.0' in result.stdout
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert not report['tensorflow_imported']
  assert report['types'] == {'id': 'bytes', 'title': 'bytes', 'year': 'int',
                             'sentences': 'list', 'is_visual': 'list', 'image': 'ndarray'}
  assert report['sentence_type'] == 'bytes'
  assert len(report['is_visual']) == report['num_sentences']
  assert report['is_visual'][0] and report['is_visual'] == sorted(report['is_visual'],
                                                                   reverse=True)
  assert report['image'][0] == 'uint8' and max(report['image'][1][:2]) <= 128
  assert report['image'][1][2] == 3
  assert report['features'][0] == 'float32' and report['features'][1][1] == 2048
  num_regions = report['features'][1][0]
  assert report['boxes'][:2] == ['float32', [num_regions, 4]]
  assert 0 <= report['boxes'][2] <= report['boxes'][3] <= 1


def test_stock_tfds_build_and_ours_give_identical_records(tmp_path):
  _run([str(pathlib.Path(sys.executable).parent / 'tfds'), 'build',
        '--imports=tfds_artpedia.tfds_artpedia_dataset_builder',
        f'artpedia/sample/num_paintings={NUM_PAINTINGS}',
        f'--data_dir={tmp_path / "stock"}'])
  build_command.build('sample', data_dir=str(tmp_path / 'ours'), num_paintings=NUM_PAINTINGS)
  stock = _records('artpedia/sample', tmp_path / 'stock')
  assert {s: len(r) for s, r in stock.items()} == {'train': 10, 'validation': 1, 'test': 1}
  _assert_same_records(stock, _records('artpedia/sample', tmp_path / 'ours'))


@pytest.mark.slow
def test_stock_tfds_build_of_the_package_folder(tmp_path):
  _run([str(pathlib.Path(sys.executable).parent / 'tfds'), 'build', 'tfds_artpedia',
        '--config=sample', f'--data_dir={tmp_path}'])
  builder = tfds.builder('artpedia/sample', data_dir=tmp_path)
  assert {s: v.num_examples for s, v in builder.info.splits.items()} == {
      'train': 800, 'validation': 100, 'test': 100}
  assert builder.info.file_format.value == 'array_record'


@pytest.mark.parametrize('config', ['sample', 'sample_realistic'])
def test_regions_config_reads_the_sample_folder_as_the_sample_config_generates_it(
    tmp_path, config):
  manual_dir = _manual_folder(tmp_path / 'manual', region_format='tsv',
                              realistic=config == 'sample_realistic')
  build_command.build('regions', data_dir=str(tmp_path / 'data'), manual_dir=str(manual_dir))
  build_command.build(config, data_dir=str(tmp_path / 'data'), num_paintings=NUM_PAINTINGS)
  from_folder = _records('artpedia/regions', tmp_path / 'data')
  generated = _records(f'artpedia/{config}', tmp_path / 'data')
  for split in SPLITS:
    for x, y in zip(from_folder[split], generated[split]):
      for key in ('id', 'title', 'year', 'sentences', 'is_visual'):
        assert x[key] == y[key]
      np.testing.assert_array_equal(x['regions']['features'], y['regions']['features'])
      np.testing.assert_allclose(x['regions']['boxes'], y['regions']['boxes'], atol=1e-5)


def test_cli_builds_the_realistic_corpus(tmp_path):
  result = _run([sys.executable, '-m', 'tfds_artpedia', 'build', '--config=sample_realistic',
                 f'--num_paintings={NUM_PAINTINGS}', f'--data_dir={tmp_path}'])
  assert 'Built artpedia/sample_realistic/1.0.0' in result.stdout
  generated = _records('artpedia/sample_realistic', tmp_path)
  assert {s: len(r) for s, r in generated.items()} == {'train': 10, 'validation': 1, 'test': 1}
  lengths = [len(s.split()) for r in generated['train'] for s in r['sentences']]
  assert np.mean(lengths) > 16  # the realistic corpus's sentences, not the sample's 12.5


def test_images_config_skips_and_counts_bad_paintings(tmp_path, caplog):
  manual_dir = _manual_folder(tmp_path / 'manual')
  (manual_dir / 'images' / '3.jpg').unlink()
  (manual_dir / 'images' / '4.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
  annotations = json.loads((manual_dir / 'artpedia.json').read_text())
  annotations['0']['contextual_sentences'] += ['', ' \n ']
  (manual_dir / 'artpedia.json').write_text(json.dumps(annotations))

  builder = build_command.build('images', data_dir=str(tmp_path / 'data'),
                      manual_dir=str(manual_dir), max_image_side=64)
  metadata = tfds.builder('artpedia/images', data_dir=tmp_path / 'data').info.metadata
  assert metadata['num_skipped'] == {'missing_image': 1, 'unreadable_image': 1}
  assert metadata['skipped_ids'] == {'missing_image': ['3'], 'unreadable_image': ['4']}
  assert metadata['num_empty_sentences_dropped'] == 2
  assert metadata['num_paintings_annotated'] == NUM_PAINTINGS
  assert metadata['build_options']['max_image_side'] == 64
  assert sum(s.num_examples for s in builder.info.splits.values()) == NUM_PAINTINGS - 2
  assert "painting '3': missing image" in caplog.text
  assert "painting '4': unreadable image" in caplog.text
  records = [r for split in SPLITS
             for r in tfds.data_source('artpedia/images', split=split,
                                       data_dir=tmp_path / 'data')]
  assert {r['id'] for r in records}.isdisjoint({b'3', b'4'})
  assert all(max(r['image'].shape[:2]) <= 64 and 'regions' not in r for r in records)


def _remove_image(manual_dir):
  (manual_dir / 'images' / '3.jpg').unlink()


def _poison_regions(manual_dir):
  with np.load(manual_dir / 'regions' / '2.npz') as npz:
    arrays = dict(npz)
  arrays['features'][0, 0] = np.nan
  np.savez(manual_dir / 'regions' / '2.npz', **arrays)


def _break_json(manual_dir):
  (manual_dir / 'artpedia.json').write_text('{"1": ')


@pytest.mark.parametrize('config, damage, options, error, message', [
    ('images', _remove_image, {'strict': True}, builder_lib.SkippedPaintingError,
     "painting '3': missing image"),
    ('regions', _poison_regions, {}, regions.RegionError, "2.npz: image_id '2'"),
    ('images', _break_json, {}, ValueError, 'malformed JSON at line 1'),
])
def test_a_failed_build_leaves_no_dataset_behind(tmp_path, config, damage, options,
                                                 error, message):
  manual_dir = _manual_folder(tmp_path / 'manual')
  damage(manual_dir)
  with pytest.raises(error, match=message):
    build_command.build(config, data_dir=str(tmp_path / 'data'), manual_dir=str(manual_dir),
              **options)
  assert not _leftovers(tmp_path / 'data')
  assert not tfds.builder(f'artpedia/{config}', data_dir=tmp_path / 'data').is_prepared()


def test_cli_reports_missing_manual_files_and_how_to_get_them(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'tfds_artpedia', 'build', '--config=images',
       f'--data_dir={tmp_path / "data"}', f'--manual_dir={tmp_path}'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'PYTHONPATH': str(REPO)})
  assert result.returncode == 1
  assert result.stderr.splitlines()[-1] == (
      f'error: {tmp_path / "artpedia.json"} not found: the manual folder holds '
      'artpedia.json (from the Artpedia page) and images/ (python -m '
      'tfds_artpedia.download --json=artpedia.json --out=DIR fetches them).')
  assert not list((tmp_path / 'data').rglob('*'))


def test_regions_config_skips_paintings_without_regions(tmp_path):
  manual_dir = _manual_folder(tmp_path / 'manual')
  (manual_dir / 'regions' / '5.npz').unlink()
  builder = build_command.build('regions', data_dir=str(tmp_path / 'data'), manual_dir=str(manual_dir))
  assert builder.info.metadata['skipped_ids'] == {'missing_regions': ['5']}
  assert sum(s.num_examples for s in builder.info.splits.values()) == NUM_PAINTINGS - 1


def test_split_dispatcher_serves_splits_in_any_order_from_one_pass():
  consumed = []

  def stream():
    for item in [('train', 1), ('test', 2), ('train', 3), ('validation', 4)]:
      consumed.append(item)
      yield item

  dispatcher = builder_lib.SplitDispatcher(stream())
  assert list(dispatcher('test')) == [2]
  assert list(dispatcher('train')) == [1, 3]
  assert list(dispatcher('validation')) == [4]
  assert len(consumed) == 4
