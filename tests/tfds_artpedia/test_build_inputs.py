"""The build record: what differs between the dataset on disk and the request is named."""

import os

from tfds_artpedia import build_inputs

OPTIONS = {'num_paintings': 12, 'seed': 0, 'max_image_side': 512, 'strict': False}


def _folder(path):
  (path / 'images').mkdir(parents=True)
  (path / 'artpedia.json').write_text('{}')
  (path / 'images' / '1.jpg').write_bytes(b'jpeg')
  return path


def test_the_same_inputs_differ_in_nothing(tmp_path):
  folder = _folder(tmp_path / 'manual')
  built = build_inputs.record('images', OPTIONS, str(folder))
  assert build_inputs.differences(built, build_inputs.record('images', OPTIONS,
                                                             str(folder))) == []


def test_options_folder_and_files_are_named(tmp_path):
  folder = _folder(tmp_path / 'manual')
  built = build_inputs.record('images', OPTIONS, str(folder))
  asked = build_inputs.record('images', dict(OPTIONS, max_image_side=256), str(folder))
  assert build_inputs.differences(built, asked) == ['max_image_side was 512, now 256']
  (folder / 'artpedia.json').write_text('{"1": {}}')
  image = folder / 'images' / '1.jpg'
  os.utime(image, ns=(0, image.stat().st_mtime_ns + 1))
  assert build_inputs.differences(built, build_inputs.record('images', OPTIONS,
                                                             str(folder))) == [
      'artpedia.json changed since the build',
      'images/ changed since the build (1 files then, 1 files now)']
  other = _folder(tmp_path / 'other')
  assert build_inputs.differences(built, build_inputs.record('images', OPTIONS,
                                                             str(other))) == [
      f'manual_dir was {folder}, now {other}']


def test_without_a_folder_only_the_options_are_compared(tmp_path):
  built = build_inputs.record('images', OPTIONS, str(_folder(tmp_path / 'manual')))
  assert build_inputs.differences(built, build_inputs.record('images', OPTIONS, None)) == []


def test_a_dataset_built_before_records_existed_is_not_refused():
  assert build_inputs.differences(None, build_inputs.record('sample', OPTIONS, None)) == []
