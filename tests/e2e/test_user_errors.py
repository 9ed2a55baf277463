"""Every mistake a user can make, through the real commands: one `error:` line, no traceback.

Each row runs a command in a child process on a bad input and checks the exit status
(2 for a bad command line or configuration, 1 for bad data), that stderr holds exactly
one line starting with `error:` and naming the cause, no traceback, and that nothing on
disk was lost, left half-written or silently reused.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest
import tensorflow_datasets as tfds

from tfds_artpedia import tfds_artpedia_dataset_builder as builder_lib
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder

REPO = pathlib.Path(__file__).resolve().parents[2]
NUM_PAINTINGS = 12
RUN = [sys.executable, 'run.py', '--config=configs/test.py']
BUILD = [sys.executable, '-m', 'tfds_artpedia', 'build']
DOWNLOAD = [sys.executable, '-m', 'tfds_artpedia.download']
EXTRACT = [sys.executable, '-m', 'artpedia_jax.extract_features']
SAMPLE = [sys.executable, '-m', 'tfds_artpedia.sample']


@dataclasses.dataclass
class Place:
  """The files a case works on: fresh per test, except the shared built dataset."""
  tmp: pathlib.Path
  manual: pathlib.Path  # a valid manual folder (copy per test)
  built: pathlib.Path  # data_dir holding artpedia/sample/num_paintings=12

  @property
  def workdir(self) -> pathlib.Path:
    return self.tmp / 'workdir'

  @property
  def data_dir(self) -> pathlib.Path:
    return self.tmp / 'tfds'


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  command: Callable[[Place], list[str]]
  status: int
  message: str  # the whole error line, with {tmp}, {manual}, {built} filled in
  check: Callable[[Place], None] = lambda place: None
  setup: Callable[[Place], None] = lambda place: None


def _files(folder: pathlib.Path) -> list[str]:
  return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')) if folder.exists() else []


def _nothing_in(folder_of: Callable[[Place], pathlib.Path]):
  def check(place):
    assert _files(folder_of(place)) == []
  return check


def _workdir_file(place):
  place.workdir.write_text('not a folder')


def _workdir_file_kept(place):
  assert place.workdir.read_text() == 'not a folder'


def _latin1_json(place):
  (place.manual / 'artpedia.json').write_bytes('{"1": {"title": "Café"}}'.encode('latin-1'))


def _duplicate_ids(place):
  (place.manual / 'artpedia.json').write_text(
      '{"7": {"img_url": "http://h/a.jpg"}, "7": {"img_url": "http://h/b.jpg"}}')


def _touch_image(place):
  image = sorted((place.manual / 'images').iterdir())[0]
  image.write_bytes(image.read_bytes() + b'\0')


def _build_images(place):
  builder = builder_lib.Artpedia(config='images', data_dir=place.data_dir)
  builder_lib.prepare(builder, str(place.manual))


def _images_dataset_kept(place):
  builder = tfds.builder('artpedia/images', data_dir=place.data_dir)
  assert builder.is_prepared()
  assert sum(s.num_examples for s in builder.info.splits.values()) == NUM_PAINTINGS


def _built_sample_kept(place):
  builder = tfds.builder(f'artpedia/sample/num_paintings={NUM_PAINTINGS}',
                         data_dir=place.built)
  assert builder.is_prepared()
  assert builder.info.metadata['build_options']['num_paintings'] == NUM_PAINTINGS
  assert not list(place.built.rglob('*.replaced'))


def _not_empty_out(place):
  (place.tmp / 'out').mkdir()
  (place.tmp / 'out' / 'keep.txt').write_text('mine')


def _out_kept(place):
  assert _files(place.tmp / 'out') == ['keep.txt']


CASES = [
    # ---- run.py: the command line and the config
    Case('run: config file missing', lambda p: [
        sys.executable, 'run.py', '--config=configs/nope.py', f'--workdir={p.workdir}'],
         2, 'error: --config=configs/nope.py: no such config file; pass a file such as '
         'configs/align.py.', _nothing_in(lambda p: p.workdir)),
    Case('run: unknown config key', lambda p: [
        *RUN, '--config.model.scorer=align', f'--workdir={p.workdir}'],
         2, "error: --config.model.scorer: no such config key 'scorer'; did you mean "
         "'score'? (every key is in configs/base.py)", _nothing_in(lambda p: p.workdir)),
    Case('run: unknown config section', lambda p: [
        *RUN, '--config.modle.score=align', f'--workdir={p.workdir}'],
         2, "error: --config.modle.score: no such config key 'modle'; did you mean "
         "'model'? (every key is in configs/base.py)", _nothing_in(lambda p: p.workdir)),
    Case('run: value of the wrong type', lambda p: [
        *RUN, '--config.batch_size=abc', f'--workdir={p.workdir}'],
         2, "error: flag --config.batch_size=abc: invalid literal for int() with base 10: "
         "'abc' (see --help).", _nothing_in(lambda p: p.workdir)),
    Case('run: bad value', lambda p: [
        *RUN, '--config.model.score=bogus', f'--workdir={p.workdir}',
        f'--config.dataset.data_dir={p.data_dir}'],
         2, "error: Invalid configuration: model.score='bogus': must be one of align, "
         'scan_t2i, pooled', _nothing_in(lambda p: p.data_dir)),
    Case('run: builder option typo', lambda p: [
        *RUN, '--config.dataset.name=artpedia/sample/num_paintingz=30',
        f'--workdir={p.workdir}', f'--config.dataset.data_dir={p.data_dir}'],
         2, "error: Invalid configuration: dataset.name='artpedia/sample/num_paintingz=30': "
         "unknown builder option 'num_paintingz'; did you mean 'num_paintings'? the options "
         'are num_paintings, seed, max_image_side, strict', _nothing_in(lambda p: p.data_dir)),
    Case('run: workdir is a file', lambda p: [*RUN, f'--workdir={p.workdir}'],
         2, 'error: --workdir={tmp}/workdir is a file, not a folder: pass a folder path (it '
         'is created if missing).', _workdir_file_kept, _workdir_file),
    Case('run: workdir on a read-only file system', lambda p: [
        *RUN, '--workdir=/sys/artpedia-workdir'],
         2, 'error: --workdir=/sys/artpedia-workdir cannot be written (Operation not '
         'permitted): pass a folder on a writable file system.'),
    Case('run: unexpected argument', lambda p: [*RUN, f'--workdir={p.workdir}', 'extra'],
         2, "error: Unexpected arguments: ['extra'] (see --help)."),
    Case('run: regions not built, no manual_dir', lambda p: [
        *RUN, '--config.dataset.name=artpedia/regions', f'--workdir={p.workdir}',
        f'--config.dataset.data_dir={p.data_dir}'],
         2, 'error: Dataset artpedia/regions is not built in {tmp}/tfds/artpedia/regions/'
         '1.0.0 and config.dataset.manual_dir is not set. Build it first with `python -m '
         'tfds_artpedia build --config=regions --manual_dir=DIR` (DIR holding '
         'artpedia.json, images/ and regions/), or pass --config.dataset.manual_dir=DIR.',
         _nothing_in(lambda p: p.data_dir)),
    Case('run: dataset built from other options', lambda p: [
        *RUN, f'--config.dataset.name=artpedia/sample/num_paintings={NUM_PAINTINGS},seed=1',
        f'--workdir={p.workdir}', f'--config.dataset.data_dir={p.built}'],
         2, 'error: artpedia/sample/1.0.0 in {built} was built from other inputs: seed was '
         '0, now 1. Rebuild it with --config.dataset.overwrite=True, or pass another '
         'data_dir to keep both.', _built_sample_kept),
    # ---- python -m tfds_artpedia build
    Case('build: manual_dir does not exist', lambda p: [
        *BUILD, '--config=images', f'--manual_dir={p.tmp}/absent',
        f'--data_dir={p.data_dir}'],
         2, 'error: manual_dir {tmp}/absent is not a folder: pass the folder holding '
         'artpedia.json and images/ (python -m tfds_artpedia.download --out=DIR writes '
         'one).', _nothing_in(lambda p: p.data_dir)),
    Case('build: no artpedia.json', lambda p: [
        *BUILD, '--config=images', f'--manual_dir={p.manual}/images',
        f'--data_dir={p.data_dir}'],
         1, 'error: {manual}/images/artpedia.json not found: the manual folder holds '
         'artpedia.json (from the Artpedia page) and images/ (python -m '
         'tfds_artpedia.download --json=artpedia.json --out=DIR fetches them).',
         _nothing_in(lambda p: p.data_dir)),
    Case('build: artpedia.json not UTF-8', lambda p: [
        *BUILD, '--config=images', f'--manual_dir={p.manual}', f'--data_dir={p.data_dir}'],
         1, "error: {manual}/artpedia.json: not UTF-8 text (byte b'\\xe9' at offset 20); "
         'save the file as UTF-8, or download it again.', _nothing_in(lambda p: p.data_dir),
         _latin1_json),
    Case('build: unknown config', lambda p: [*BUILD, '--config=imagse'],
         2, "error: python -m tfds_artpedia build: argument --config: invalid choice: "
         "'imagse' (choose from 'sample', 'sample_realistic', 'images', 'regions') "
         '(see --help).'),
    Case('build: other num_paintings than on disk', lambda p: [
        *BUILD, '--config=sample', f'--num_paintings={NUM_PAINTINGS + 1}',
        f'--data_dir={p.built}'],
         2, 'error: artpedia/sample/1.0.0 in {built} was built from other inputs: '
         f'num_paintings was {NUM_PAINTINGS}, now {NUM_PAINTINGS + 1}. Rebuild it with '
         '--overwrite, or pass another data_dir to keep both.', _built_sample_kept),
    Case('build: an image changed since the build', lambda p: [
        *BUILD, '--config=images', f'--manual_dir={p.manual}', f'--data_dir={p.data_dir}'],
         2, 'error: artpedia/images/1.0.0 in {tmp}/tfds was built from other inputs: '
         f'images/ changed since the build ({NUM_PAINTINGS} files then, {NUM_PAINTINGS} '
         'files now). Rebuild it with --overwrite, or pass another data_dir to keep both.',
         _images_dataset_kept, lambda p: (_build_images(p), _touch_image(p))),
    # ---- python -m tfds_artpedia.download
    Case('download: --json missing', lambda p: [
        *DOWNLOAD, f'--json={p.tmp}/artpedia.json', f'--out={p.tmp}/out'],
         2, 'error: --json={tmp}/artpedia.json: no such file; pass the path of '
         'artpedia.json (from the Artpedia page of AImageLab).',
         _nothing_in(lambda p: p.tmp / 'out')),
    Case('download: duplicate ids', lambda p: [
        *DOWNLOAD, f'--json={p.manual}/artpedia.json', f'--out={p.tmp}/out'],
         1, "error: {manual}/artpedia.json: duplicate painting ids ['7']: each id may "
         'appear once.', _nothing_in(lambda p: p.tmp / 'out'), _duplicate_ids),
    Case('download: --out is a file', lambda p: [
        *DOWNLOAD, f'--json={p.manual}/artpedia.json', f'--out={p.manual}/artpedia.json'],
         2, 'error: --out={manual}/artpedia.json is a file, not a folder: pass a folder path '
         '(it is created if missing).'),
    # ---- python -m tfds_artpedia.sample
    Case('sample: --out not empty', lambda p: [*SAMPLE, f'--out={p.tmp}/out'],
         2, 'error: {tmp}/out is not empty: write the sample corpus into a new or empty '
         'folder.', _out_kept, _not_empty_out),
    # ---- python -m artpedia_jax.extract_features
    Case('extract_features: config file missing', lambda p: [
        *EXTRACT, '--config=configs/nope.py', f'--out={p.tmp}/out'],
         2, 'error: --config=configs/nope.py: no such config file; pass a file such as '
         'configs/align.py.', _nothing_in(lambda p: p.tmp / 'out')),
    Case('extract_features: no backbone configured', lambda p: [
        *EXTRACT, '--config=configs/test.py', f'--out={p.tmp}/out'],
         2, 'error: config.model.backbone is empty: set it (e.g. '
         '--config.model.backbone=resnet50) to say which backbone extracts the features.',
         _nothing_in(lambda p: p.tmp / 'out')),
]


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
  """A manual folder and a built sample dataset, made once for every case."""
  root = tmp_path_factory.mktemp('shared')
  sample_folder.write_folder(str(root / 'manual'),
                             sample_corpus.generate(NUM_PAINTINGS, seed=0), 'npz')
  builder = builder_lib.Artpedia(config='sample', data_dir=root / 'built',
                                 num_paintings=NUM_PAINTINGS)
  builder_lib.prepare(builder, None)
  return root


@pytest.fixture
def place(shared, tmp_path):
  manual = tmp_path / 'manual'
  subprocess.run(['cp', '-r', str(shared / 'manual'), str(manual)], check=True)
  return Place(tmp=tmp_path, manual=manual, built=shared / 'built')


def _run(command: list[str]) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                        env={**os.environ, 'PYTHONPATH': str(REPO)})


@pytest.mark.parametrize('case', CASES, ids=[case.name for case in CASES])
def test_a_user_mistake_is_one_error_line(case, place):
  case.setup(place)
  result = _run(case.command(place))
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  assert errors == [case.message.format(tmp=place.tmp, manual=place.manual,
                                        built=place.built)], result.stderr[-3000:]
  assert result.returncode == case.status
  case.check(place)


def test_verbose_adds_the_traceback(place):
  result = _run([*BUILD, '--config=images', f'--manual_dir={place.tmp}/absent',
                 f'--data_dir={place.data_dir}', '--verbose'])
  assert result.returncode == 2
  assert 'Traceback' in result.stderr
  assert result.stderr.splitlines()[-1].startswith('error: manual_dir ')


def test_overwrite_rebuilds_a_dataset_built_from_other_inputs(place):
  _build_images(place)
  _touch_image(place)
  result = _run([*BUILD, '--config=images', f'--manual_dir={place.manual}',
                 f'--data_dir={place.data_dir}', '--overwrite', '--max_image_side=64'])
  assert result.returncode == 0, result.stderr[-3000:]
  metadata = json.loads(
      (place.data_dir / 'artpedia' / 'images' / '1.0.0' / 'metadata.json').read_text())
  assert metadata['build_options']['max_image_side'] == 64
  assert not list(place.data_dir.rglob('*.replaced'))
  # The same inputs again: reused without a word.
  result = _run([*BUILD, '--config=images', f'--manual_dir={place.manual}',
                 f'--data_dir={place.data_dir}', '--max_image_side=64'])
  assert result.returncode == 0 and 'error' not in result.stderr


def test_a_failed_overwrite_keeps_the_old_dataset(place):
  _build_images(place)
  (place.manual / 'artpedia.json').write_text('{"1": ')
  result = _run([*BUILD, '--config=images', f'--manual_dir={place.manual}',
                 f'--data_dir={place.data_dir}', '--overwrite'])
  assert result.returncode == 1
  assert 'malformed JSON at line 1' in result.stderr.splitlines()[-1]
  _images_dataset_kept(place)
  assert not list(place.data_dir.rglob('*.replaced'))


def test_a_dataset_built_from_a_folder_missing_here_is_used_with_a_warning(place, caplog):
  _build_images(place)
  builder = builder_lib.Artpedia(config='images', data_dir=place.data_dir)
  with caplog.at_level('WARNING'):
    assert builder_lib.prepare(builder, str(place.tmp / 'elsewhere')).is_prepared()
  assert 'is not a folder here' in caplog.text
  _images_dataset_kept(place)
