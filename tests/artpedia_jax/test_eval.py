"""The eval binary on saved checkpoints: the table, the files, and clear errors."""

import json
import os
import subprocess
import sys

import pytest

from artpedia_jax.checkpoints import checksums as checkpoint_checksums
from artpedia_jax.checkpoints import restore
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.evaluation import checkpoint_eval
from artpedia_jax.train import loop as train
from tests.helpers import e2e_helpers

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, data_dir) of a finished 40-step run (checkpoints at 20 and 40)."""
  data_dir = tmp_path_factory.mktemp('tfds')
  workdir = tmp_path_factory.mktemp('run')
  config = e2e_helpers.e2e_config(data_dir, num_train_steps=40)
  dataset.prepare(config)
  train.train_and_evaluate(config, str(workdir))
  return workdir, data_dir


def test_binary_prints_the_table_and_writes_metrics_and_report(trained):
  workdir, data_dir = trained
  result = subprocess.run(
      [sys.executable, '-m', 'artpedia_jax.eval', f'--workdir={workdir}',
       '--step=latest', '--split=test'],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'rsum' in result.stdout and 'chance' in result.stdout
  metrics = json.loads((workdir / 'eval' / 'test_step40.json').read_text())
  # The step's selection note appears when the latest step is also the best one.
  assert set(metrics) - {'chosen_as_best_by'} == {
      'split', 'step', 'num_paintings', 'num_sentences', 'num_sentences_not_retrievable',
      'i2t', 't2i', 'i2t_all', 'rsum', 'visual_id', 'visual_id_baseline'}
  assert metrics['split'] == 'test' and metrics['step'] == 40
  e2e_helpers.assert_beats_chance(
      metrics, e2e_helpers.chance_levels(e2e_helpers.e2e_config(data_dir), 'test'))
  assert set(metrics['visual_id_baseline']) == set(metrics['visual_id'])
  assert metrics['visual_id_baseline']['auc'] > 0.6  # the lexical baseline has learnt
  report = (workdir / 'eval' / 'test_step40.md').read_text()
  assert 'TF-IDF + LR baseline' in report
  for png in ('test_step40_pr.png', 'test_step40_recall.png'):
    assert png in report
    assert (workdir / 'eval' / png).read_bytes().startswith(b'\x89PNG')


def test_no_checkpoint_says_to_train_first(tmp_path):
  with pytest.raises(restore.RestoreError, match='train first'):
    checkpoint_eval.evaluate_checkpoint(str(tmp_path), 'latest', 'test')


def test_missing_step_lists_the_available_ones(trained):
  workdir, _ = trained
  with pytest.raises(restore.RestoreError, match=r'available steps: \[.*20'):
    checkpoint_eval.evaluate_checkpoint(str(workdir), '7', 'test')


def test_split_never_built_says_how_to_build(trained):
  workdir, _ = trained
  with pytest.raises(checkpoint_eval.EvalError, match='Cannot open split'):
    checkpoint_eval.evaluate_checkpoint(str(workdir), 'latest', 'dev')


def test_checkpoint_from_an_incompatible_config_is_explained(trained, tmp_path):
  workdir, _ = trained
  copy = tmp_path / 'run'
  subprocess.run(['cp', '-r', str(workdir), str(copy)], check=True)
  step_dir = copy / 'checkpoints' / '20'
  config_file = step_dir / 'config' / 'metadata'
  saved = json.loads(config_file.read_text())
  saved['model']['embed_dim'] *= 2
  config_file.write_text(json.dumps(saved))
  checkpoint_checksums.write_manifest(step_dir)  # intact files, another model's config
  with pytest.raises(restore.RestoreError, match='do not fit the model'):
    checkpoint_eval.evaluate_checkpoint(str(copy), '20', 'test', write_report=False)


def _eval(*flags):
  return subprocess.run([sys.executable, '-m', 'artpedia_jax.eval', *flags],
                        cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=300)


def test_data_dir_and_evaluation_overrides_change_where_and_how_not_what(trained,
                                                                          tmp_path):
  workdir, data_dir = trained
  reference = checkpoint_eval.evaluate_checkpoint(str(workdir), 'latest', 'validation',
                                             write_report=False).metrics
  moved = tmp_path / 'moved'
  os.rename(data_dir, moved)  # the dataset now lives elsewhere
  try:
    result = _eval(f'--workdir={workdir}', '--step=latest', '--split=validation',
                   '--noreport', f'--data_dir={moved}', '--config.eval_batch_size=24',
                   '--config.score_block_size=4')
  finally:
    os.rename(moved, data_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  again = json.loads((workdir / 'eval' / 'validation_step40.json').read_text())
  for key in ('i2t', 't2i', 'i2t_all', 'visual_id'):
    for name, value in reference[key].items():
      assert again[key][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, name)


def test_overriding_a_model_key_at_evaluation_is_refused(trained):
  workdir, _ = trained
  result = _eval(f'--workdir={workdir}', '--step=latest', '--config.model.embed_dim=8')
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and 'model.embed_dim' in errors[0], result.stderr[-2000:]
  assert 'eval_batch_size' in errors[0]  # says what may be overridden


def test_baselines_flag_adds_pooled_retrieval_of_the_same_encoders(trained):
  workdir, _ = trained
  result = checkpoint_eval.evaluate_checkpoint(str(workdir), 'latest', 'test',
                                          pooled_baseline=True)
  pooled = result.metrics['retrieval_pooled']
  assert set(pooled) == {'i2t', 't2i', 'i2t_all', 'rsum'}
  assert pooled['rsum'] != result.metrics['rsum']  # another scorer, other scores
  assert 'pooled scoring' in open(result.report_path).read()


def test_checkpoint_trained_on_8_devices_evaluates_on_1(trained):
  workdir, _ = trained
  on_8 = checkpoint_eval.evaluate_checkpoint(str(workdir), 'latest', 'validation',
                                        write_report=False).metrics
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  result = subprocess.run(
      [sys.executable, '-c', 'import jax; assert jax.device_count() == 1; '
       'from artpedia_jax.evaluation import checkpoint_eval as e; import json; '
       f'print(json.dumps(e.evaluate_checkpoint({str(workdir)!r}, "latest", "validation", '
       'write_report=False).metrics))'],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  on_1 = json.loads(result.stdout.strip().splitlines()[-1])
  assert on_1['num_sentences'] == on_8['num_sentences']
  for direction in ('i2t', 't2i', 'i2t_all'):
    for key, value in on_8[direction].items():
      assert on_1[direction][key] == pytest.approx(value, rel=1e-6), (direction, key)
  for key, value in on_8['visual_id'].items():
    assert on_1['visual_id'][key] == pytest.approx(value, rel=1e-6), key
