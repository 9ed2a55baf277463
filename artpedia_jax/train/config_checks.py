"""Rejects a bad configuration before any data is read or anything is compiled.

Every problem found is reported at once, each with the key, the bad value and what is
allowed, so that a user fixes a command line in one go. The allowed values live in the
modules that use them (scorers in `scoring`, backbones in `model`, ...); this is the one
place that checks them, before anything runs.
"""

import ast
import difflib
import os

import ml_collections

from artpedia_jax.model import bert_import
from artpedia_jax.model import model
from artpedia_jax.model import scoring
from artpedia_jax.train import losses
from artpedia_jax.train import model_selection
from artpedia_jax.train import optim
from tfds_artpedia import errors
from tfds_artpedia import tfds_artpedia_dataset_builder as builder_lib

BACKBONES = ('',) + tuple(model.BACKBONES)  # '': precomputed region features


class ConfigError(errors.UsageError):
  """A configuration value that cannot work."""


def _choice(key, value, allowed):
  if value not in allowed:
    return f'{key}={value!r}: must be one of {", ".join(allowed)}'
  return None


def _positive(key, value):
  if not isinstance(value, (int, float)) or value <= 0:
    return f'{key}={value!r}: must be > 0'
  return None


def _rate(key, value):
  if not isinstance(value, (int, float)) or not 0 <= value < 1:
    return f'{key}={value!r}: must be in [0, 1) (0: off)'
  return None


def _backbone_problems(config: ml_collections.ConfigDict) -> list[str]:
  """The pixel path's keys, checked only when a backbone is configured."""
  found = [
      _choice('model.backbone', config.model.backbone, BACKBONES),
      _choice('model.backbone_dtype', config.model.backbone_dtype,
              model.BACKBONE_DTYPES),
      _positive('dataset.image_size', config.dataset.image_size),
  ]
  if not 0 < config.dataset.crop_min_scale <= 1:
    found.append(f'dataset.crop_min_scale={config.dataset.crop_min_scale!r}: must be in '
                 '(0, 1]')
  if config.optimizer.backbone_learning_rate < 0:
    found.append('optimizer.backbone_learning_rate='
                 f'{config.optimizer.backbone_learning_rate!r}: must be >= 0')
  weights = config.model.backbone_weights
  if weights and not os.path.isfile(weights):
    found.append(f'model.backbone_weights={weights!r}: no such file (a torchvision '
                 '.safetensors or .pth checkpoint)')
  return found


def _text_problems(config: ml_collections.ConfigDict) -> list[str]:
  """The BERT text encoder's keys, checked only when it is selected."""
  settings = config.model
  found = []
  if config.optimizer.text_learning_rate < 0:
    found.append('optimizer.text_learning_rate='
                 f'{config.optimizer.text_learning_rate!r}: must be >= 0')
  frozen = settings.text_frozen_layers
  if not isinstance(frozen, int) or frozen < 0:
    found.append(f'model.text_frozen_layers={frozen!r}: must be an integer >= 0')
  if config.vocab.glove_path:
    found.append(f'vocab.glove_path={config.vocab.glove_path!r}: GloVe initialises the '
                 "bi-GRU's word embeddings only; unset it with model.text_encoder=bert")
  if config.dataset.max_words < 3:
    found.append(f'dataset.max_words={config.dataset.max_words!r}: BERT needs >= 3 '
                 '([CLS], a word piece, [SEP])')
  dropout = settings.text_dropout
  if dropout != -1 and _rate('model.text_dropout', dropout):
    found.append(f'model.text_dropout={dropout!r}: must be in [0, 1), or -1 for the '
                 "rates of the model's config.json")
  folder = settings.text_weights
  required = bert_import.MODEL_FILES
  if not folder:
    found.append("model.text_weights='': model.text_encoder=bert needs a Hugging Face "
                 f'model folder ({", ".join(required)}) or hub id')
  elif bert_import.is_hub_id(folder):
    pass  # fetched (or found in the hub's cache) when the run starts
  elif not os.path.isdir(folder):
    found.append(f'model.text_weights={folder!r}: no such folder (a Hugging Face model '
                 f'folder with {", ".join(required)}, or a hub id such as '
                 'sentence-transformers/all-MiniLM-L6-v2)')
  else:
    absent = [name for name in required if not os.path.isfile(os.path.join(folder, name))]
    if absent:
      found.append(f'model.text_weights={folder!r}: the folder has no '
                   f'{", ".join(absent)} (download them with the model)')
  return found


def _dataset_name_problems(name: str) -> list[str]:
  """`artpedia/<config>[/<option>=<value>,...]`, with options the builder takes."""
  key = f'dataset.name={name!r}'
  parts = name.split('/')
  builder_config = parts[1].split(':')[0] if len(parts) > 1 else ''
  if parts[0].split(':')[0] != 'artpedia' or builder_config not in builder_lib.CONFIGS:
    return [f'{key}: must be artpedia/<config> (optionally followed by /<builder '
            f'option>=<value>,...) with <config> one of {", ".join(builder_lib.CONFIGS)}']
  found = []
  for option in filter(None, ','.join(parts[2:]).split(',')):
    option_name, _, value = option.partition('=')
    if option_name not in builder_lib.OPTIONS:
      close = difflib.get_close_matches(option_name, builder_lib.OPTIONS, n=1)
      hint = f'did you mean {close[0]!r}? ' if close else ''
      found.append(f'{key}: unknown builder option {option_name!r}; {hint}the options are '
                   f'{", ".join(builder_lib.OPTIONS)}')
      continue
    try:
      ast.literal_eval(value)
    except (ValueError, SyntaxError):
      found.append(f'{key}: {option_name}={value!r} is not a number or True/False')
  return found


def _selection_problems(config: ml_collections.ConfigDict) -> list[str]:
  """`best_metric` must exist and measure a task that the loss trains."""
  found = [_choice('best_metric', config.best_metric, model_selection.CRITERIA)]
  untrained = {'rsum': 'rank_weight', 'visual_ap': 'cls_weight'}.get(config.best_metric)
  if untrained and config.loss[untrained] == 0:
    other = 'visual_ap' if config.best_metric == 'rsum' else 'rsum'
    found.append(f'best_metric={config.best_metric!r} selects by a task that '
                 f'loss.{untrained}=0 does not train: set best_metric={other!r}')
  patience = config.early_stopping_patience
  if not isinstance(patience, int) or patience < 0:
    found.append(f'early_stopping_patience={patience!r}: must be an integer >= 0 '
                 '(0: never stop early)')
  return found


def problems(config: ml_collections.ConfigDict, num_devices: int) -> list[str]:
  """All the reasons `config` cannot run on `num_devices` devices (empty if none)."""
  found = [
      _choice('model.score', config.model.score, scoring.SCORERS),
      _choice('loss.rank', config.loss.rank, losses.RANK_LOSSES),
      _choice('optimizer.name', config.optimizer.name, optim.OPTIMIZERS),
      _choice('optimizer.decay', config.optimizer.decay, optim.DECAYS),
      _choice('model.dtype', config.model.dtype, model.COMPUTE_DTYPES),
      _choice('model.classifier_inputs', config.model.classifier_inputs,
              model.CLASSIFIER_INPUTS),
      _choice('model.text_encoder', config.model.text_encoder, model.TEXT_ENCODERS),
      _choice('model.sentence_pooling', config.model.sentence_pooling,
              model.SENTENCE_POOLINGS),
      _positive('batch_size', config.batch_size),
      _positive('score_block_size', config.score_block_size),
      _positive('eval_batch_size', config.eval_batch_size),
      _positive('log_every_steps', config.log_every_steps),
      _positive('eval_every_steps', config.eval_every_steps),
      _positive('checkpoint_every_steps', config.checkpoint_every_steps),
      _positive('keep_checkpoints', config.keep_checkpoints),
      _positive('dataset.max_regions', config.dataset.max_regions),
      _positive('dataset.max_words', config.dataset.max_words),
      _positive('dataset.cls_sentences', config.dataset.cls_sentences),
      _positive('model.embed_dim', config.model.embed_dim),
      _positive('model.word_dim', config.model.word_dim),
      _positive('optimizer.learning_rate', config.optimizer.learning_rate),
      _positive('loss.init_temperature', config.loss.init_temperature),
      _rate('model.dropout', config.model.dropout),
      _rate('model.word_dropout', config.model.word_dropout),
  ]
  if config.model.backbone:
    found += _backbone_problems(config)
  if config.model.text_encoder == 'bert':
    found += _text_problems(config)
  elif config.model.sentence_pooling == 'cls':
    found.append("model.sentence_pooling='cls': only BERT has a [CLS] token; use 'mean' "
                 'or model.text_encoder=bert')
  if config.loss.margin < 0:
    found.append(f'loss.margin={config.loss.margin!r}: must be >= 0')
  for key in ('rank_weight', 'cls_weight'):
    if config.loss[key] < 0:
      found.append(f'loss.{key}={config.loss[key]!r}: must be >= 0')
  if config.loss.cls_pos_weight != -1 and not config.loss.cls_pos_weight > 0:
    found.append(f'loss.cls_pos_weight={config.loss.cls_pos_weight!r}: must be > 0, or -1 '
                 "to correct the classifier's draws to the training split's balance")
  if config.loss.rank_weight == 0 and config.loss.cls_weight == 0:
    found.append('loss.rank_weight=0 and loss.cls_weight=0: nothing to train, set '
                 'either above 0')
  if config.num_train_steps == -1:
    found.append(_positive('num_epochs (used since num_train_steps=-1)',
                           config.num_epochs))
  elif config.num_train_steps <= 0:
    found.append(f'num_train_steps={config.num_train_steps!r}: must be > 0, '
                 'or -1 to derive it from num_epochs')
  if isinstance(config.batch_size, int) and config.batch_size % num_devices:
    found.append(f'batch_size={config.batch_size} is not divisible by the '
                 f'{num_devices} devices: use a multiple of {num_devices}')
  found += _dataset_name_problems(config.dataset.name)
  buckets = tuple(config.dataset.length_buckets)
  if not all(isinstance(b, int) and b > 0 for b in buckets):
    found.append(f'dataset.length_buckets={buckets!r}: must be positive word counts '
                 '(or () for none)')
  found += _selection_problems(config)
  if config.max_consecutive_skips < 1:
    found.append(f'max_consecutive_skips={config.max_consecutive_skips!r}: must be >= 1')
  return [p for p in found if p]


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ConfigError listing every problem of `config`."""
  found = problems(config, num_devices)
  if found:
    raise ConfigError('Invalid configuration:\n  ' + '\n  '.join(found))
