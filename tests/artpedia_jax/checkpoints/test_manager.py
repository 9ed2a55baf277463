"""Tests of artpedia_jax.checkpoints.manager on 8 fake CPU devices (tests/conftest.py)."""

import glob
import json
import logging
import os
import shutil

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from artpedia_jax.checkpoints import checksums as checkpoint_checksums
from artpedia_jax.checkpoints import manager as checkpoint

P = jax.sharding.PartitionSpec


def _mesh(num_devices: int) -> jax.sharding.Mesh:
  return jax.sharding.Mesh(np.asarray(jax.devices()[:num_devices]), ('data',))


def _shardings(mesh: jax.sharding.Mesh, tree):
  """Rows of `w` (and its Adam moments) split over `data`; everything else replicated."""
  def leaf_sharding(path, _):
    split = jax.tree_util.keystr(path).endswith("['w']")
    return jax.sharding.NamedSharding(mesh, P('data') if split else P())
  return jax.tree_util.tree_map_with_path(leaf_sharding, tree)


def _state(seed: float = 0.0, mesh=None):
  """A tiny training state (params, Adam state, step) laid out on `mesh` (default: 8)."""
  params = {'w': jnp.arange(16.0).reshape(8, 2) + seed,
            'b': jnp.full(3, seed, dtype=jnp.float32)}
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)
  _, opt_state = tx.update(params, opt_state, params)  # non-zero moments
  state = {'params': params, 'opt_state': opt_state, 'step': jnp.asarray(int(seed))}
  return jax.device_put(state, _shardings(mesh or _mesh(8), state))


def _abstract(tree, mesh):
  shardings = _shardings(mesh, tree)
  return jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def _config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 3
  c.model = ml_collections.ConfigDict({'score': 'align', 'embed_dim': 16})
  c.dataset = ml_collections.ConfigDict({'data_dir': None})
  return c


VOCAB = {'words': ['<pad>', '<unk>', 'red', 'circle'], 'min_count': 2}


def _save(ckpt, step, *, scores=None, metrics=None, data_iterator=None, seed=None,
          loop_state=None):
  saved = ckpt.save(step, state=_state(step if seed is None else seed),
                    config=_config(), vocab=VOCAB, data_iterator=data_iterator,
                    scores=scores, metrics=metrics, loop_state=loop_state)
  ckpt.wait_until_finished()
  return saved


def _assert_trees_equal(actual, expected):
  jax.tree.map(np.testing.assert_array_equal, actual, expected)


@pytest.fixture
def ckpt_dir(tmp_path):
  return str(tmp_path / 'checkpoints')


@pytest.mark.parametrize('num_devices', [1, 4])
def test_state_saved_on_8_devices_restores_onto_fewer(ckpt_dir, num_devices):
  saved = _state(2.0)
  with checkpoint.Checkpointer(ckpt_dir, keep=2) as ckpt:
    _save(ckpt, 2, seed=2.0)
  mesh = _mesh(num_devices)
  abstract = _abstract(saved, mesh)
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as ckpt:
    step, restored = ckpt.restore('latest', abstract_state=abstract)
  assert step == 2
  _assert_trees_equal(restored, saved)
  restored_shardings = jax.tree.map(lambda x: x.sharding, restored)
  wanted_shardings = jax.tree.map(lambda x: x.sharding, abstract)
  assert restored_shardings == wanted_shardings


def test_keeps_last_k_plus_best_by_the_criterion(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=2, criterion='rsum') as ckpt:
    for step, rsum in [(1, None), (2, 50.0), (3, None), (4, np.float32(30.0)), (5, None)]:
      _save(ckpt, step, scores=None if rsum is None else {'rsum': rsum},
            metrics=None if rsum is None else {'i2t': {'R@1': rsum / 6}})
    assert ckpt.all_steps() == [2, 4, 5]  # last two, plus the best (2)
    assert ckpt.best_step() == 2
    assert ckpt.scores(2) == {'rsum': 50.0} and ckpt.metrics(2) == {'i2t': {'R@1': 50 / 6}}
    assert ckpt.scores(5) == {} and ckpt.metrics(5) is None
    _save(ckpt, 6, scores={'rsum': 70.0})
    _save(ckpt, 7)
    assert ckpt.all_steps() == [6, 7]  # the new best is also among the last two
    assert ckpt.best_step() == 6
    assert ckpt.latest_step() == 7


def test_best_survives_reopening_and_restores(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=1, criterion='rsum') as ckpt:
    _save(ckpt, 1, scores={'rsum': 90.0})
    _save(ckpt, 2, scores={'rsum': 10.0})
  with checkpoint.Checkpointer(ckpt_dir, keep=1, criterion='rsum') as ckpt:
    _save(ckpt, 3)
    assert ckpt.all_steps() == [1, 3]
    step, restored = ckpt.restore('best', abstract_state=_abstract(_state(), _mesh(8)))
  assert step == 1
  _assert_trees_equal(restored, _state(1.0))


def test_data_iterator_resumes_at_the_saved_position(ckpt_dir):
  def make_iterator():
    return iter(grain.MapDataset.range(100).shuffle(seed=0).batch(4).to_iter_dataset())
  iterator = make_iterator()
  for _ in range(3):
    next(iterator)
  with checkpoint.Checkpointer(ckpt_dir, keep=1) as ckpt:
    _save(ckpt, 3, data_iterator=iterator)
    expected = [next(iterator) for _ in range(2)]
    resumed = make_iterator()
    ckpt.restore(3, abstract_state=_abstract(_state(), _mesh(8)), data_iterator=resumed)
  _assert_trees_equal([next(resumed) for _ in range(2)], expected)
  assert not np.array_equal(expected[0], next(make_iterator()))  # not just a fresh start


def test_config_and_vocab_load_without_the_state_structure(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=1) as ckpt:
    _save(ckpt, 4)
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as ckpt:
    config = ckpt.load_config('latest')
    vocab = ckpt.load_vocab(4)
  assert config.to_dict() == _config().to_dict()
  assert config.model.embed_dim == 16
  assert vocab == VOCAB


@pytest.mark.parametrize('by_the_writer', [False, True])
def test_restore_subset_onto_one_device(ckpt_dir, by_the_writer):
  params = _state(5.0)['params']
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract_params = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), params)
  writer = checkpoint.Checkpointer(ckpt_dir, keep=1)
  _save(writer, 5)
  if by_the_writer:  # whose Orbax manager has bound `state` to full saves
    reader = writer
  else:  # the eval binary
    writer.close()
    reader = checkpoint.Checkpointer(ckpt_dir, read_only=True)
  with reader:
    step, restored = reader.restore_subset('latest', {'params': abstract_params})
    restored = restored['params']
  assert step == 5
  assert set(restored) == {'w', 'b'}
  _assert_trees_equal(restored, params)
  assert all(x.sharding == device for x in jax.tree.leaves(restored))


def test_save_cut_short_by_a_crash_is_never_restored(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2)
  # What a crash during the save of step 3 leaves: Orbax's uncommitted temporary
  # directory, partly written (no commit marker, array data missing).
  half_written = os.path.join(ckpt_dir, '3.orbax-checkpoint-tmp-1700000000')
  shutil.copytree(os.path.join(ckpt_dir, '2'), half_written)
  os.remove(os.path.join(half_written, 'commit_success.txt'))
  shutil.rmtree(os.path.join(half_written, 'state'))
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as reader:
    assert reader.all_steps() == [1, 2]
    step, restored = reader.restore('latest', abstract_state=_abstract(_state(), _mesh(8)))
  assert step == 2
  _assert_trees_equal(restored, _state(2.0))
  assert os.path.isdir(half_written)  # a reader deletes nothing
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as writer:
    assert writer.latest_step() == 2
    _save(writer, 3)  # the resumed run saves step 3 again
    assert writer.all_steps() == [1, 2, 3]
  assert not os.path.exists(half_written)  # a writer clears the leftover


def _largest_data_file(step_dir) -> str:
  files = glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'), recursive=True)
  return max(files, key=os.path.getsize)


def _delete_data_file(step_dir):
  os.remove(_largest_data_file(step_dir))


def _truncate_data_file(step_dir):
  with open(_largest_data_file(step_dir), 'r+b') as f:
    f.truncate(10)


def flip_bytes_in_the_middle(step_dir):
  path = _largest_data_file(step_dir)
  middle = os.path.getsize(path) // 2
  with open(path, 'r+b') as f:
    f.seek(middle)
    original = f.read(16)
    f.seek(middle)
    f.write(bytes(b ^ 0xFF for b in original))


def _remove_checkpoint_metadata(step_dir):
  os.remove(os.path.join(step_dir, '_CHECKPOINT_METADATA'))


DAMAGES = [_delete_data_file, _truncate_data_file, flip_bytes_in_the_middle,
           _remove_checkpoint_metadata]


@pytest.fixture
def damaged_latest(ckpt_dir, request):
  """Steps 1 and 2 saved; step 2 damaged by `request.param`."""
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2)
  request.param(os.path.join(ckpt_dir, '2'))
  return ckpt_dir


def _warnings(caplog) -> list[str]:
  """Our warnings (Orbax adds its own when _CHECKPOINT_METADATA is missing)."""
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING and 'artpedia_jax' in r.pathname]


# Orbax leaves an asyncio callback behind when tensorstore fails to read a file.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('damaged_latest', DAMAGES, indirect=True)
def test_damaged_latest_falls_back_to_the_previous_step_with_one_warning(
    damaged_latest, caplog):
  with caplog.at_level(logging.WARNING), \
      checkpoint.Checkpointer(damaged_latest, keep=3) as ckpt:
    step, restored = ckpt.restore('latest', abstract_state=_abstract(_state(), _mesh(8)))
  assert step == 1
  _assert_trees_equal(restored, _state(1.0))
  (warning,) = _warnings(caplog)
  assert warning.startswith(f'Checkpoint step(s) 2 in {damaged_latest} cannot be read (')
  assert warning.endswith('); using step 1 instead (the damaged ones are kept as '
                          '<step>.damaged).')
  # The resumed run saves step 2 again; the damaged one is kept aside.
  with checkpoint.Checkpointer(damaged_latest, keep=3) as ckpt:
    assert ckpt.all_steps() == [1]
    _save(ckpt, 2)
    assert ckpt.restore('latest', abstract_state=_abstract(_state(), _mesh(8)))[0] == 2
  assert os.path.isdir(os.path.join(damaged_latest, '2.damaged'))


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('damaged_latest', DAMAGES, indirect=True)
def test_eval_reads_fall_back_from_latest_and_refuse_the_damaged_step_by_number(
    damaged_latest, caplog):
  subset = {'params': _abstract(_state(), _mesh(1))['params']}
  with caplog.at_level(logging.WARNING), \
      checkpoint.Checkpointer(damaged_latest, read_only=True) as ckpt:
    assert ckpt.load_config('latest').seed == 3
    step, restored = ckpt.restore_subset('latest', subset)
    assert step == ckpt.resolve_step('latest') == 1
    _assert_trees_equal(restored['params'], _state(1.0)['params'])
    with pytest.raises(checkpoint.DamagedCheckpointError,
                       match=r'step 2 in .* cannot be read \(.*\); steps that read: \[1\]'):
      ckpt.restore_subset(2, subset)
  assert len(_warnings(caplog)) == 1


def test_every_step_damaged_is_one_error(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2)
  for step in ('1', '2'):
    flip_bytes_in_the_middle(os.path.join(ckpt_dir, step))
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as ckpt:
    with pytest.raises(checkpoint.DamagedCheckpointError,
                       match=r'Every checkpoint in .* is damaged \(step 2: state/'):
      ckpt.resolve_step('latest')


def test_each_saved_step_gets_a_checksum_manifest(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2)
  for step in ('1', '2'):
    assert checkpoint_checksums.has_manifest(os.path.join(ckpt_dir, step))
    assert checkpoint_checksums.problem(os.path.join(ckpt_dir, step)) is None


def test_mismatched_abstract_state_fails_after_trying_every_step(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=2) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2)
    wrong = {'params': {'w': jax.ShapeDtypeStruct((8, 2), jnp.float32)}}
    with pytest.raises(ValueError) as error:
      ckpt.restore('latest', abstract_state=wrong)
  assert 'tried steps [2, 1]' in '\n'.join(getattr(error.value, '__notes__', []))


def test_empty_directory_says_train_first(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=1) as ckpt:
    with pytest.raises(FileNotFoundError, match='train first') as error:
      ckpt.restore('latest', abstract_state=_abstract(_state(), _mesh(8)))
    assert ckpt_dir in str(error.value)
    with pytest.raises(FileNotFoundError, match='--workdir'):
      ckpt.load_config('latest')
  with pytest.raises(FileNotFoundError, match='train first'):
    checkpoint.Checkpointer(os.path.join(ckpt_dir, 'absent'), read_only=True)


def test_unknown_step_lists_available_steps(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 10)
    _save(ckpt, 20)
    with pytest.raises(ValueError, match=r'step 15 .*available steps: \[10, 20\]'):
      ckpt.restore(15, abstract_state=_abstract(_state(), _mesh(8)))
    with pytest.raises(ValueError, match="scored by 'rsum'"):
      ckpt.resolve_step('best', 'rsum')
    assert ckpt.resolve_step('20') == 20


def test_save_interval_and_metrics_validation(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=5, save_interval_steps=10) as ckpt:
    assert _save(ckpt, 10)
    assert not _save(ckpt, 15)
    with pytest.raises(ValueError, match='metrics but no scores'):
      ckpt.save(20, state=_state(), config=_config(), vocab=VOCAB, metrics={'R@1': 1.0})
    assert ckpt.save(25, state=_state(), config=_config(), vocab=VOCAB, force=True)
    ckpt.wait_until_finished()
    assert ckpt.all_steps() == [10, 25]


def _all_criteria(rsum, ap):
  return {'rsum': rsum, 'visual_ap': ap}


def test_best_ranks_only_steps_scored_by_the_criterion_in_use(ckpt_dir):
  """A run resumed with another criterion: an old high rsum does not outrank visual AP."""
  with checkpoint.Checkpointer(ckpt_dir, keep=1, criterion='rsum') as ckpt:
    _save(ckpt, 1, scores={'rsum': 300.0})  # scored by rsum alone
    _save(ckpt, 2, scores=_all_criteria(250.0, 0.81))
    _save(ckpt, 3, scores=_all_criteria(200.0, 0.95))
    assert ckpt.best_step() == 1 and ckpt.all_steps() == [1, 3]
  with checkpoint.Checkpointer(ckpt_dir, keep=1, criterion='visual_ap') as ckpt:
    assert ckpt.best_step() == 3  # step 1 has no visual_ap: it does not compete
    _save(ckpt, 4, scores=_all_criteria(100.0, 0.9))
    assert ckpt.all_steps() == [3, 4]  # step 1 is no longer kept as a best
    assert ckpt.resolve_step('best') == 3
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as reader:
    assert reader.best_step('visual_ap') == 3
    assert reader.resolve_step('best', 'rsum') == 3  # what is left: 200 beats 100


def test_a_step_ranked_before_scores_existed_keeps_its_criterion(ckpt_dir):
  """Steps written by the previous version stored only {'name', 'value'} of their
  criterion inside the metrics."""
  with checkpoint.Checkpointer(ckpt_dir, keep=3, criterion='visual_ap') as ckpt:
    _save(ckpt, 1, scores={'visual_ap': 0.5})
  metrics_file = os.path.join(ckpt_dir, '1', 'metrics', 'metrics')
  with open(metrics_file, 'w') as f:
    json.dump({'rsum': 90.0, 'best_metric': {'name': 'visual_ap', 'value': 0.7}}, f)
  checkpoint_checksums.write_manifest(os.path.join(ckpt_dir, '1'))
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as reader:
    assert reader.scores(1) == {'visual_ap': 0.7}
    assert reader.metrics(1)['rsum'] == 90.0
    assert reader.best_step('visual_ap') == 1 and reader.best_step('rsum') is None


def test_loop_state_comes_back_and_is_none_where_none_was_saved(ckpt_dir):
  with checkpoint.Checkpointer(ckpt_dir, keep=3) as ckpt:
    _save(ckpt, 1)
    _save(ckpt, 2, loop_state={'early_stopping': {'best': np.float32(0.5), 'count': 2}})
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as reader:
    assert reader.load_loop_state(1) is None
    assert reader.load_loop_state(2) == {'early_stopping': {'best': 0.5, 'count': 2}}
