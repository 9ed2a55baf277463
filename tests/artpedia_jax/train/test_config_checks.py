"""Bad configurations fail before anything is compiled, naming every bad key."""

import pathlib
import subprocess
import sys

import pytest

from artpedia_jax.train import config_checks
from configs import align, align_bert, align_pixels, sample, sample_bert, sample_pixels
from configs import sample_realistic
from configs import test as test_config


@pytest.mark.parametrize('get_config', [
    align.get_config, align_pixels.get_config, sample.get_config,
    sample_pixels.get_config, sample_realistic.get_config, test_config.get_config])
def test_shipped_configs_are_valid_on_8_devices(get_config):
  assert config_checks.problems(get_config(), num_devices=8) == []


@pytest.mark.parametrize('key, value, expected', [
    ('batch_size', 12, 'not divisible by the 8 devices'),
    ('model.score', 'bilinear', 'model.score='),
    ('loss.margin', -0.1, 'loss.margin=-0.1'),
    ('loss.rank', 'triplet', 'loss.rank='),
    ('optimizer.name', 'sgd', 'optimizer.name='),
    ('num_train_steps', 0, 'num_train_steps=0'),
    ('dataset.name', 'coco/regions', 'dataset.name='),
    ('score_block_size', 0, 'score_block_size=0'),
    ('model.backbone', 'vgg16', 'model.backbone='),
    ('model.classifier_inputs', 'image', 'model.classifier_inputs='),
    ('dataset.name', 'artpedia/sample/num_paintingz=30',
     "unknown builder option 'num_paintingz'; did you mean 'num_paintings'?"),
    ('dataset.name', 'artpedia/sample/seed=x', "seed='x' is not a number"),
    ('model.dropout', 1.0, 'model.dropout=1.0: must be in'),
    ('model.word_dropout', -0.1, 'model.word_dropout=-0.1'),
    ('loss.rank_weight', -1.0, 'loss.rank_weight=-1.0'),
    ('loss.cls_pos_weight', 0.0, 'loss.cls_pos_weight=0.0: must be > 0, or -1'),
    ('best_metric', 'loss', "best_metric='loss'"),
    ('early_stopping_patience', -1, 'early_stopping_patience=-1'),
    ('model.dtype', 'float16', 'model.dtype='),
    ('dataset.length_buckets', (16, 0), 'dataset.length_buckets='),
])
def test_bad_value_is_named(key, value, expected):
  config = test_config.get_config()
  section, _, field = key.rpartition('.')
  setattr(config[section] if section else config, field, value)
  with pytest.raises(config_checks.ConfigError, match=expected.replace('.', r'\.')):
    config_checks.validate(config, num_devices=8)


def test_choices_are_those_of_the_modules_that_use_them():
  from artpedia_jax.model import model, scoring
  from artpedia_jax.train import losses, optim
  config = test_config.get_config()
  for scorer in scoring.SCORERS:
    config.model.score = scorer
    assert config_checks.problems(config, num_devices=8) == []
    scoring.get_score_function(scorer)
  for key, values in [('loss.rank', losses.RANK_LOSSES), ('optimizer.name', optim.OPTIMIZERS),
                      ('optimizer.decay', optim.DECAYS),
                      ('model.classifier_inputs', model.CLASSIFIER_INPUTS)]:
    for value in values:
      config = test_config.get_config()
      section, field = key.split('.')
      config[section][field] = value
      assert config_checks.problems(config, num_devices=8) == [], (key, value)
      optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=10)


def test_every_problem_is_reported_at_once():
  config = test_config.get_config()
  config.loss.margin = -1.0
  config.model.score = 'nope'
  assert len(config_checks.problems(config, num_devices=1)) == 2


def test_unknown_config_key_on_the_command_line_is_rejected(tmp_path):
  result = subprocess.run(
      [sys.executable, 'run.py', '--config=configs/test.py', f'--workdir={tmp_path}',
       '--config.model.no_such_key=1'],
      capture_output=True, text=True, timeout=120,
      cwd=pathlib.Path(__file__).resolve().parents[3])
  assert result.returncode != 0
  assert 'no_such_key' in result.stderr
  assert not (tmp_path / 'checkpoints').exists()


def test_pixel_keys_are_checked_when_a_backbone_is_configured(tmp_path):
  config = sample_pixels.get_config()
  config.dataset.crop_min_scale = 1.5
  config.model.backbone_weights = str(tmp_path / 'missing.safetensors')
  found = '\n'.join(config_checks.problems(config, num_devices=1))
  assert 'crop_min_scale=1.5' in found and 'missing.safetensors' in found


def test_zero_weights_for_both_tasks_stop_run_py_before_training(tmp_path):
  config = test_config.get_config()
  config.loss.rank_weight = config.loss.cls_weight = 0.0
  assert any('nothing to train' in p for p in config_checks.problems(config, 1))
  config.loss.cls_weight = 1.0  # the classifier alone, chosen by retrieval: refused
  assert config_checks.problems(config, 1) == [
      "best_metric='rsum' selects by a task that loss.rank_weight=0 does not train: set "
      "best_metric='visual_ap'"]
  config.best_metric = 'visual_ap'
  assert config_checks.problems(config, 1) == []
  result = subprocess.run(
      [sys.executable, 'run.py', '--config=configs/test.py', f'--workdir={tmp_path}',
       '--config.loss.rank_weight=0', '--config.loss.cls_weight=0'],
      capture_output=True, text=True, timeout=300,
      cwd=pathlib.Path(__file__).resolve().parents[3])
  assert result.returncode != 0
  assert 'loss.rank_weight=0 and loss.cls_weight=0' in result.stderr
  assert not (tmp_path / 'checkpoints').exists()


@pytest.mark.parametrize('overrides, expected', [
    ({'sentence_pooling': 'max'}, "model.sentence_pooling='max': must be one of mean, cls"),
    ({'sentence_pooling': 'cls'}, "model.sentence_pooling='cls': only BERT has a [CLS]"),
    ({'text_encoder': 'bert', 'text_dropout': 1.0},
     'model.text_dropout=1.0: must be in [0, 1), or -1'),
    ({'text_encoder': 'bert', 'text_weights': './no/such/model'},
     "model.text_weights='./no/such/model': no such folder"),
])
def test_bert_recipe_keys_are_checked(overrides, expected):
  config = test_config.get_config()
  config.model.update({'text_weights': 'sentence-transformers/all-MiniLM-L6-v2',
                       **overrides})
  assert any(expected in problem for problem in config_checks.problems(config, 8)), (
      config_checks.problems(config, 8))


@pytest.mark.parametrize('get_config', [align_bert.get_config, sample_bert.get_config])
def test_bert_recipes_are_valid_and_name_a_hub_id(get_config):
  config = get_config()
  assert config_checks.problems(config, num_devices=8) == []
  assert config.model.text_weights == 'sentence-transformers/all-MiniLM-L6-v2'
