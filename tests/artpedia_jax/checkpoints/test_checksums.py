"""Checksum manifests of checkpoint steps: every kind of change to a file is caught."""

import pytest

from artpedia_jax.checkpoints import checksums as checkpoint_checksums


@pytest.fixture
def step_dir(tmp_path):
  (tmp_path / 'state' / 'd').mkdir(parents=True)
  (tmp_path / 'state' / 'd' / 'chunk').write_bytes(bytes(range(256)) * 4)
  (tmp_path / '_CHECKPOINT_METADATA').write_text('{}')
  checkpoint_checksums.write_manifest(tmp_path)
  return tmp_path


def test_an_untouched_step_matches(step_dir):
  assert checkpoint_checksums.has_manifest(step_dir)
  assert checkpoint_checksums.problem(step_dir) is None


def test_a_step_without_manifest_is_trusted(tmp_path):
  (tmp_path / 'f').write_text('x')
  assert checkpoint_checksums.problem(tmp_path) is None


@pytest.mark.parametrize('damage, message', [
    (lambda d: (d / 'state' / 'd' / 'chunk').unlink(), 'state/d/chunk is missing'),
    (lambda d: (d / 'state' / 'd' / 'chunk').write_bytes(b'0123456789'),
     'state/d/chunk has 10 bytes, 1024 were written'),
    (lambda d: (d / 'state' / 'd' / 'chunk').write_bytes(bytes(range(256))[::-1] * 4),
     'state/d/chunk has changed since it was written (checksum mismatch)'),
    (lambda d: (d / '_CHECKPOINT_METADATA').unlink(), '_CHECKPOINT_METADATA is missing'),
])
def test_each_damage_is_named(step_dir, damage, message):
  damage(step_dir)
  assert checkpoint_checksums.problem(step_dir) == message
