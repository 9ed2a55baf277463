"""Training with a BERT text encoder end to end: learning, resuming bitwise, evaluating.

The BERT folder is mostly written by the test (random weights, a word-piece vocabulary
made from the sample corpus's training words, long words split into two pieces); one
test fine-tunes the real all-MiniLM-L6-v2 (`minilm_folder`) on the realistic corpus.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from artpedia_jax.checkpoints import restore
from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.inference import predictor as inference
from artpedia_jax.train import loop as train
from tests.helpers import bert_fixtures
from tests.helpers import e2e_helpers


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)

pytestmark = pytest.mark.slow
_PUNCTUATION = ('.', ',', ';', ':', "'", '-', '(', ')')
_SPLIT_LONGER_THAN = 7  # such words are two pieces: word[:4], ##word[4:]
_STD = 0.02  # BERT's init scale: a random BERT that fine-tunes in a few steps
_REALISTIC = 'artpedia/sample_realistic/num_paintings=120'


def _word_pieces(train_source) -> list[str]:
  words = vocab_lib.build_from_source(train_source, min_count=1).words[2:]
  pieces = set(_PUNCTUATION)
  for word in words:
    if len(word) > _SPLIT_LONGER_THAN:
      pieces |= {word[:4], '##' + word[4:]}
    else:
      pieces.add(word)
  return sorted(pieces)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tfds')
  dataset.prepare(e2e_helpers.e2e_config(path))
  return path


@pytest.fixture(scope='module')
def bert_dir(tmp_path_factory, data_dir):
  source = pipeline.open_source(_inputs(e2e_helpers.e2e_config(data_dir)), 'train')
  return bert_fixtures.write_bert_folder(tmp_path_factory.mktemp('bert') / 'tiny-bert',
                                         word_pieces=_word_pieces(source), std=_STD)


def _overrides(bert_dir, **extra):
  return {'model.text_encoder': 'bert', 'model.text_weights': str(bert_dir),
          'optimizer.text_learning_rate': 3e-3, **extra}


def _params(workdir):
  restored = restore.restore_model(str(workdir), 'latest')
  return restored.step, jax.tree.map(np.asarray, restored.variables)


def test_bert_training_learns_and_evaluates_without_the_model_folder(
    data_dir, bert_dir, tmp_path):
  folder = tmp_path / 'bert-copy'
  shutil.copytree(bert_dir, folder)
  config = e2e_helpers.e2e_config(data_dir, **_overrides(folder))
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))

  losses = [entry['loss'] for entry in result.train_log]
  assert losses[-1] < 0.8 * losses[0], losses
  _, params = _params(tmp_path / 'run')
  assert 'bert' in params['params'] and 'text_rnn' not in params['params']
  source = restore.restore_model(str(tmp_path / 'run'), 'latest').text.weights_source
  assert source == {'folder': str(folder), 'sha256': {  # where the weights came from
      name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
      for name in ('config.json', 'model.safetensors', 'tokenizer.json')}}

  metrics_files = sorted((tmp_path / 'run' / 'eval').glob('validation_step*.json'))
  logged = {path: json.loads(path.read_text()) for path in metrics_files}
  shutil.rmtree(folder)  # the checkpoint holds the tokenizer and the architecture
  evaluated = subprocess.run(  # the best step, whichever validation chose
      [sys.executable, '-m', 'artpedia_jax.eval', f'--workdir={tmp_path / "run"}',
       '--split=validation'],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=300)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  rewritten = {path: json.loads(path.read_text()) for path in metrics_files}
  [best] = [path for path in metrics_files if 'chosen_as_best_by' in rewritten[path]]
  # training names the selection 'best_metric', the eval binary 'chosen_as_best_by'
  assert rewritten[best].pop('chosen_as_best_by') == logged[best].pop('best_metric')
  assert rewritten[best] == logged[best]
  assert 'Word-region alignment' in best.with_suffix('.md').read_text()

  # Inference reads a BERT checkpoint too: whole words, their pieces' scores merged.
  predictor = inference.Predictor.from_workdir(str(tmp_path / 'run'), 'latest',
                                               cache_dir=None)
  long_word = next(  # a word of two pieces, neither [UNK]
      word for word in vocab_lib.build_from_source(
          pipeline.open_source(_inputs(config), 'train'), min_count=1).words[2:]
      if word.isalpha() and len(predictor.tokenizer.pieces(word).ids) == 2
      and word in predictor.tokenizer)
  painting = predictor.open_split('validation').painting(0)
  [annotated] = predictor.annotate_sentences(painting, [f'the {long_word} qxzqxz'])
  assert [word.word for word in annotated.words] == ['the', long_word, 'qxzqxz']
  assert annotated.words_read.unknown == ['qxzqxz']
  assert annotated.words_read.known == ['the', long_word]


def test_bert_run_killed_then_resumed_gives_bitwise_equal_params(data_dir, bert_dir,
                                                                 tmp_path):
  overrides = _overrides(bert_dir, log_every_steps=1, checkpoint_every_steps=5,
                         num_train_steps=20, **{'model.text_frozen_layers': 1,
                                                'model.dtype': 'bfloat16'})
  reference = tmp_path / 'uninterrupted'
  train.train_and_evaluate(e2e_helpers.e2e_config(data_dir, **overrides), str(reference))

  interrupted = tmp_path / 'interrupted'
  run = e2e_helpers.start_run(interrupted, data_dir, **overrides)
  for line in run.stderr:
    if 'step 12/' in line:
      run.send_signal(signal.SIGKILL)
      break
  assert run.wait(timeout=300) == -signal.SIGKILL, 'never reached step 12'

  train.train_and_evaluate(e2e_helpers.e2e_config(data_dir, **overrides),
                           str(interrupted))
  (step_a, params_a), (step_b, params_b) = _params(reference), _params(interrupted)
  assert step_a == step_b == 20
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b)
  # Frozen: the embeddings and the first layer kept the imported weights.
  imported = bert_fixtures.random_state_dict(
      json.loads((bert_dir / 'config.json').read_text()), std=_STD)
  bert_params = params_a['params']['bert']
  np.testing.assert_array_equal(
      bert_params['embeddings']['word']['embedding'],
      imported['bert.embeddings.word_embeddings.weight'])
  np.testing.assert_array_equal(
      bert_params['layers'][0]['query']['kernel'],
      imported['bert.encoder.layer.0.attention.self.query.weight'].T)
  assert not np.array_equal(
      bert_params['layers'][1]['query']['kernel'],
      imported['bert.encoder.layer.1.attention.self.query.weight'].T)


def test_bert_without_weights_folder_is_a_config_error(tmp_path):
  result = subprocess.run(
      [sys.executable, 'run.py', '--config=configs/test.py', f'--workdir={tmp_path}',
       '--config.model.text_encoder=bert',
       f'--config.model.text_weights={tmp_path / "nowhere"}'],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert 'model.text_weights' in result.stderr and 'no such folder' in result.stderr
  assert not (tmp_path / 'checkpoints').exists()


def test_a_hub_id_offline_and_not_cached_is_one_error_line(data_dir, tmp_path):
  result = subprocess.run(
      [sys.executable, 'run.py', f'--workdir={tmp_path / "run"}',
       *e2e_helpers.config_flags(data_dir, **_overrides('acme/tiny-bert'))],
      cwd=e2e_helpers.REPO, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'cache')))
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  [error] = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert ("config.model.text_weights='acme/tiny-bert' is not in the Hugging Face cache "
          'and cannot be downloaded (offline, or HF_HUB_OFFLINE=1)') in error
  assert '--local-dir DIR' in error
  assert not list((tmp_path / 'run').glob('checkpoints/[0-9]*'))  # nothing trained


def test_minilm_fine_tunes_on_the_realistic_corpus(minilm_folder, tmp_path):
  """A short text-only fine-tune of the real checkpoint identifies visual sentences."""
  config = e2e_helpers.e2e_config(tmp_path / 'tfds', **{
      'dataset.name': _REALISTIC, 'dataset.max_words': 48, 'dataset.cls_sentences': 2,
      'model.classifier_inputs': 'text', 'loss.rank_weight': 0.0,
      'best_metric': 'visual_ap', 'num_train_steps': 30, 'eval_every_steps': 30,
      'log_every_steps': 5,
      'checkpoint_every_steps': 30, 'optimizer.learning_rate': 1e-3,
      **_overrides(minilm_folder, **{'optimizer.text_learning_rate': 1e-4})})

  result = train.train_and_evaluate(config, str(tmp_path / 'run'))

  losses = [entry['cls_loss'] for entry in result.train_log]
  assert np.mean(losses[-2:]) < 0.9 * losses[0], losses
  auc = result.validation[-1]['visual_id']['auc']
  chance = e2e_helpers.chance_levels(config, 'validation')['visual_id']['auc']
  assert auc >= chance + e2e_helpers.AUC_ABOVE_CHANCE, (auc, chance)
