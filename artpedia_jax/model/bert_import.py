"""Import BERT-family checkpoints in the Hugging Face folder layout into `bert.BertEncoder`.

A model folder (as downloaded from the Hugging Face hub) holds `config.json` (the
sizes), `model.safetensors` (the weights, read with safetensors' numpy API: no torch)
and `tokenizer.json` (read by `wordpiece`, with the `tokenizers` library). `resolve`
takes such a folder or a hub id (`sentence-transformers/all-MiniLM-L6-v2`), which
`huggingface_hub` fetches into its cache (or finds there: `HF_HUB_OFFLINE=1` reads the
cache only), and records where the files came from and their SHA-256.

Weight keys follow the public BERT layout, with or without the `bert.` prefix that the
pre-training checkpoints carry (`bert.encoder.layer.3.attention.self.query.weight` or
`encoder.layer.3.attention.self.query.weight`); older checkpoints name LayerNorm
parameters `gamma`/`beta` instead of `weight`/`bias`, and both are accepted. Everything is
checked before anything is written: unknown keys, missing keys and shape mismatches are
one error that lists them all. The pooler, the pre-training heads (masked-LM
`cls.predictions`, next-sentence `cls.seq_relationship`) and the `position_ids` buffer
have no counterpart in the encoder: they are skipped and returned.
"""

from collections.abc import Mapping
import dataclasses
import hashlib
import json
import os
import pathlib
import re
from typing import Any

from absl import logging
from flax import nnx
import huggingface_hub
from huggingface_hub import errors as hub_errors
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from artpedia_jax.model import bert
from artpedia_jax.model import weights_import
from tfds_artpedia import errors

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
TOKENIZER_FILE = 'tokenizer.json'
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE)
# A hub id: `name` or `owner/name`, letters, digits and `-_.` (no path syntax).
_HUB_ID = re.compile(r'[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?')
_PREFIX = 'bert.'
_SKIPPED_PREFIXES = ('pooler.', 'cls.')
_SKIPPED_KEYS = ('embeddings.position_ids',)
_LEGACY_LEAF_NAMES = {'gamma': 'weight', 'beta': 'bias'}
# Public name of each encoder submodule (embeddings, then per layer).
_EMBEDDING_NAMES = {
    'word': 'embeddings.word_embeddings',
    'position': 'embeddings.position_embeddings',
    'token_type': 'embeddings.token_type_embeddings',
    'norm': 'embeddings.LayerNorm',
}
_LAYER_NAMES = {
    'query': 'attention.self.query',
    'key': 'attention.self.key',
    'value': 'attention.self.value',
    'attention_output': 'attention.output.dense',
    'attention_norm': 'attention.output.LayerNorm',
    'intermediate': 'intermediate.dense',
    'output': 'output.dense',
    'output_norm': 'output.LayerNorm',
}
# NNX parameter name → public tensor name.
_LEAF_NAMES = {'embedding': 'weight', 'kernel': 'weight', 'scale': 'weight', 'bias': 'bias'}
_SUPPORTED_ACTIVATIONS = ('gelu',)
_HUB_DEFAULT_DROPOUT = 0.1  # transformers' BertConfig default for both rates


class BertImportError(errors.UserError, ValueError):
  """A model folder that cannot be loaded into the encoder (what is wrong, and where)."""


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
  """Where `config.model.text_weights` was found, and what its files were."""
  folder: str  # a folder holding MODEL_FILES
  source: dict[str, Any]  # what the checkpoint records: name, revision, sha256 per file


def is_hub_id(name: str) -> bool:
  """Whether `name` can only be a hub id: shaped like one and not an existing path."""
  return bool(_HUB_ID.fullmatch(name)) and not os.path.exists(name)


def _sha256(path: pathlib.Path) -> str:
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


def _download(hub_id: str) -> str:
  """The cached snapshot folder of `hub_id`'s model files, fetched if needed."""
  fetch_hint = (f'on a machine with network, run `hf download {hub_id} '
                f'{" ".join(MODEL_FILES)} --local-dir DIR` and pass '
                'config.model.text_weights=DIR (or fill this machine\'s Hugging Face cache)')
  try:
    return huggingface_hub.snapshot_download(hub_id, allow_patterns=list(MODEL_FILES))
  except hub_errors.LocalEntryNotFoundError as error:
    raise BertImportError(
        f'config.model.text_weights={hub_id!r} is not in the Hugging Face cache and cannot '
        f'be downloaded (offline, or HF_HUB_OFFLINE=1): {fetch_hint}.') from error
  except hub_errors.RepositoryNotFoundError as error:
    raise BertImportError(
        f'config.model.text_weights={hub_id!r} is neither a folder nor a model on the '
        'Hugging Face hub (a private or gated one needs `hf auth login`): pass a model '
        'folder or a hub id such as sentence-transformers/all-MiniLM-L6-v2.') from error
  except (hub_errors.HFValidationError, hub_errors.HfHubHTTPError, OSError) as error:
    raise BertImportError(f'config.model.text_weights={hub_id!r} could not be fetched '
                          f'from the Hugging Face hub ({error}): {fetch_hint}.') from error


def resolve(name: str) -> ResolvedWeights:
  """The model folder `name`, or the hub id `name` fetched (or found) in the hub cache.

  Raises BertImportError (one line: what, and how to get the folder) when a hub id
  cannot be had, or when the folder lacks one of MODEL_FILES.
  """
  if is_hub_id(name):
    folder = pathlib.Path(_download(name))
    source = {'hub_id': name, 'revision': folder.name}  # snapshots/<commit hash>
  else:
    folder = pathlib.Path(name)
    source = {'folder': os.path.abspath(name)}
  for file in MODEL_FILES:
    _require_file(folder, file)
  source['sha256'] = {file: _sha256(folder / file) for file in MODEL_FILES}
  logging.info('BERT model files of %s: %s.', name, source)
  return ResolvedWeights(str(folder), source)


def _require_file(folder: pathlib.Path, name: str) -> pathlib.Path:
  path = folder / name
  if not path.is_file():
    raise BertImportError(
        f'{folder} has no {name}: config.model.text_weights must be a Hugging Face '
        f'BERT model folder (or hub id) with {", ".join(MODEL_FILES)}.')
  return path


def read_config(folder: str | os.PathLike) -> bert.BertConfig:
  """The architecture in `folder/config.json` (a BERT `model_type`, exact GELU)."""
  path = _require_file(pathlib.Path(folder), CONFIG_FILE)
  try:
    data = json.loads(path.read_text(encoding='utf-8'))
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise BertImportError(f'{path} is not valid JSON: {error}') from error
  return config_from_json(data, where=str(path))


def config_from_json(data: Mapping, where: str = CONFIG_FILE) -> bert.BertConfig:
  """`bert.BertConfig` from the fields of a Hugging Face BERT config.json."""
  model_type = data.get('model_type', 'bert')
  if model_type != 'bert':
    raise BertImportError(f'{where}: model_type {model_type!r} is not a BERT layout; '
                          'use a BERT-family checkpoint (model_type "bert").')
  activation = data.get('hidden_act', 'gelu')
  if activation not in _SUPPORTED_ACTIVATIONS:
    raise BertImportError(f'{where}: hidden_act {activation!r} is not supported '
                          f'(supported: {", ".join(_SUPPORTED_ACTIVATIONS)}).')
  position_type = data.get('position_embedding_type', 'absolute')
  if position_type != 'absolute':
    raise BertImportError(f'{where}: position_embedding_type {position_type!r} is not '
                          'supported (only "absolute").')
  fields = {'vocab_size': 'vocab_size', 'hidden_size': 'hidden_size',
            'num_layers': 'num_hidden_layers', 'num_heads': 'num_attention_heads',
            'intermediate_size': 'intermediate_size',
            'max_positions': 'max_position_embeddings'}
  missing = [name for name in fields.values() if name not in data]
  if missing:
    raise BertImportError(f'{where} lacks {", ".join(missing)}: is it a BERT config?')
  optional = {'type_vocab_size': 'type_vocab_size', 'layer_norm_eps': 'layer_norm_eps',
              'pad_token_id': 'pad_token_id'}
  # BERT was pre-trained with dropout: the file's rates, or Hugging Face's default 0.1.
  dropouts = {'hidden_dropout': 'hidden_dropout_prob',
              'attention_dropout': 'attention_probs_dropout_prob'}
  return bert.BertConfig(
      **{ours: data[theirs] for ours, theirs in fields.items()},
      **{ours: data[theirs] for ours, theirs in optional.items()
         if data.get(theirs) is not None},
      **{ours: float(data.get(theirs, _HUB_DEFAULT_DROPOUT))
         for ours, theirs in dropouts.items()})


def load_state_dict(folder: str | os.PathLike) -> dict[str, np.ndarray]:
  """The tensors of `folder/model.safetensors` as numpy arrays."""
  path = _require_file(pathlib.Path(folder), WEIGHTS_FILE)
  try:
    return safetensors.numpy.load_file(path)
  except Exception as error:  # safetensors raises its own error types for bad headers
    raise BertImportError(f'{path} could not be read as safetensors: {error}') from error


def _public_key(key: str) -> str:
  """Bare key with the current leaf names (`bert.` prefix and gamma/beta removed)."""
  key = key.removeprefix(_PREFIX)
  head, _, leaf = key.rpartition('.')
  return f'{head}.{_LEGACY_LEAF_NAMES.get(leaf, leaf)}' if head else key


def _is_skipped(key: str) -> bool:
  return key.startswith(_SKIPPED_PREFIXES) or key in _SKIPPED_KEYS


def _named_parameters(encoder: bert.BertEncoder) -> dict[str, tuple[str, nnx.Param]]:
  """Public key → (NNX parameter name, the encoder's live parameter)."""
  named = {}
  for path, node in nnx.iter_graph(encoder):
    if not isinstance(node, nnx.Param):
      continue
    *modules, leaf = (str(part) for part in path)
    if modules[0] == 'embeddings':
      module = _EMBEDDING_NAMES[modules[1]]
    else:  # ('layers', index, submodule)
      module = f'encoder.layer.{modules[1]}.{_LAYER_NAMES[modules[2]]}'
    named[f'{module}.{_LEAF_NAMES[leaf]}'] = (leaf, node)
  return named


def _public_shape(leaf: str, parameter: nnx.Param) -> tuple[int, ...]:
  """The shape as the checkpoint stores it (linear weights [out, in], not [in, out])."""
  shape = tuple(parameter.shape)
  return shape[::-1] if leaf == 'kernel' else shape


def import_bert_weights(encoder: bert.BertEncoder,
                        state_dict: Mapping[str, np.ndarray]) -> list[str]:
  """Writes a BERT state dict into `encoder`; returns the skipped keys (as given).

  Raises BertImportError naming every unknown key, missing key, duplicated key (one
  tensor given both with and without `bert.`) and shape mismatch.
  """
  targets = _named_parameters(encoder)
  skipped = sorted(key for key in state_dict if _is_skipped(_public_key(key)))
  by_public, duplicated = {}, []
  for key in sorted(set(state_dict) - set(skipped)):
    public = _public_key(key)
    if public in by_public:
      duplicated.append(f'{by_public[public]} and {key}')
    by_public[public] = key
  unknown = sorted(by_public[k] for k in set(by_public) - set(targets))
  missing = sorted(set(targets) - set(by_public))
  mismatched = [
      f'{by_public[key]}: checkpoint {tuple(np.shape(state_dict[by_public[key]]))}, '
      f'model expects {_public_shape(leaf, parameter)}'
      for key, (leaf, parameter) in sorted(targets.items())
      if key in by_public
      and np.shape(state_dict[by_public[key]]) != _public_shape(leaf, parameter)
  ]
  problems = [
      weights_import.listing(title, items) for title, items in
      (('unknown keys', unknown), ('missing keys', missing),
       ('keys given twice', duplicated), ('shape mismatches', mismatched))
      if items
  ]
  if problems:
    raise BertImportError(
        f'The weights do not fit the BERT encoder ({encoder.config.num_layers} layers, '
        f'hidden size {encoder.config.hidden_size}; is config.json from the same '
        'model?):\n' + '\n'.join(problems))
  for key, (leaf, parameter) in targets.items():
    array = np.asarray(state_dict[by_public[key]])
    parameter.set_value(jnp.asarray(array.T if leaf == 'kernel' else array,
                                    parameter.dtype))
  return skipped


def load_weights(encoder: bert.BertEncoder, folder: str | os.PathLike) -> None:
  """Overwrites `encoder` with `folder/model.safetensors`, logging what was skipped."""
  skipped = import_bert_weights(encoder, load_state_dict(folder))
  heads = sorted({key.removeprefix(_PREFIX).split('.')[0] for key in skipped})
  logging.info('BERT weights loaded from %s; %d tensors without counterpart skipped '
               '(%s).', folder, len(skipped), ', '.join(heads) or 'none')
