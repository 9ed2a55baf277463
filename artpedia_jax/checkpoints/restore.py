"""Restores a trained model from a workdir: for the eval binary and the inference API.

Only the model's variables are read (no optimiser state, no data iterator), with the
config and text inputs (the bi-GRU's vocabulary, or a BERT's tokenizer and shape) saved
beside them, onto the devices present now, whatever their
count at training time. Nothing here needs the dataset: the region feature size is read
from the saved parameters' shapes.

Evaluation may change how it runs, not what the model is: `EVALUATION_KEYS` lists the
config keys a user may override (where the data lives, batch and block sizes); any other
override is refused, since it would build another model than the one trained.
"""

from collections.abc import Mapping
import dataclasses
import hashlib
import os
from typing import Any

from etils import epath
from flax import nnx
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from artpedia_jax.checkpoints import checksums
from artpedia_jax.checkpoints import manager as checkpoint_lib
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.model import model as model_lib
from artpedia_jax.model import text_inputs
from artpedia_jax.parallel import sharding as sharding_lib
from tfds_artpedia import errors

# The config keys evaluation may override, with their types.
EVALUATION_KEYS = {'eval_batch_size': int, 'score_block_size': int,
                   'dataset.data_dir': str, 'dataset.manual_dir': str,
                   'dataset.num_workers': int}


class RestoreError(errors.UserError, RuntimeError):
  """The workdir or step cannot give a model; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class RestoredModel:
  """A trained model ready for the devices: structure, variables and what built it."""
  step: int
  config: ml_collections.ConfigDict
  text: text_inputs.TextInputs
  graphdef: nnx.GraphDef
  variables: model_lib.Variables
  mesh: jax.sharding.Mesh
  feature_dim: int | None  # region feature size; None for a pixel-backbone model
  # {'name', 'value'} of the run's criterion when `step` is the run's best step by it.
  chosen_as_best_by: dict | None = None
  # SHA-256 naming the checkpoint's content (see `checkpoint_digest`).
  digest: str = ''

  @property
  def tokenizer(self) -> tokenizer_lib.Tokenizer:
    """What turns sentences into the model's token ids."""
    return self.text.tokenizer


# Config sections, so that an override of a model key parses and is refused by name.
_SECTIONS = ('dataset', 'vocab', 'model', 'loss', 'optimizer')


def overridable_config() -> ml_collections.ConfigDict:
  """`EVALUATION_KEYS` as unset typed fields, in open sections (for `--config.*` flags):
  any key parses, and `check_overrides` refuses those that shape the model by name."""
  tree = {section: {} for section in _SECTIONS}
  for key, field_type in EVALUATION_KEYS.items():
    *parents, leaf = key.split('.')
    node = tree
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = ml_collections.FieldReference(None, field_type=field_type)
  return ml_collections.ConfigDict(tree)


def check_overrides(overrides: Mapping[str, Any]) -> None:
  """Refuses, by name, overrides of keys that would change the model."""
  refused = sorted(set(overrides) - set(EVALUATION_KEYS))
  if refused:
    raise errors.UsageError(
        f'Cannot override {", ".join(refused)} at evaluation: it would build another '
        'model than the checkpoint was trained as (retrain instead). Evaluation may '
        f'override: {", ".join(EVALUATION_KEYS)}.')


def _apply_overrides(config: ml_collections.ConfigDict,
                     overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A copy of the saved `config` with (checked) `overrides` ({'a.b': value})."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.update_from_flattened_dict(dict(overrides))
  return config


def _feature_dim(checkpointer: checkpoint_lib.Checkpointer, step: int,
                 config: ml_collections.ConfigDict) -> int | None:
  if config.model.backbone:
    return None
  shapes = checkpointer.state_shapes(step)
  return int(shapes['params']['region_projection']['kernel'][0])


def _abstract_model(config: ml_collections.ConfigDict, text: text_inputs.TextInputs,
                    feature_dim: int | None) -> model_lib.ArtpediaModel:
  """The model `config` builds, with shapes and dtypes only (nothing allocated)."""
  return nnx.eval_shape(lambda: model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=len(text.tokenizer),
      feature_dim=feature_dim, rngs=nnx.Rngs(0), bert_config=text.bert_config))


def model_graphdef(restored: RestoredModel, *, score: str) -> nnx.GraphDef:
  """The structure of `restored`'s model with another scorer (scorers hold no
  variables, so `restored.variables` fit it)."""
  config = ml_collections.ConfigDict(restored.config.to_dict())
  config.model.score = score
  return model_lib.split(_abstract_model(config, restored.text,
                                         restored.feature_dim))[0]


def _restore_variables(checkpointer, step, config, text, feature_dim, mesh):
  """The model's structure, and its variables restored replicated on `mesh`."""
  graphdef, abstract_variables = model_lib.split(
      _abstract_model(config, text, feature_dim))
  abstract_variables = sharding_lib.abstract_like(
      {name: tree for name, tree in abstract_variables.items() if tree},
      sharding_lib.replicated(mesh))
  try:
    step, variables = checkpointer.restore_subset(step, abstract_variables)
  except (ValueError, KeyError) as error:
    raise RestoreError(
        f'The parameters of step {step} in {checkpointer.directory} do not fit the model '
        f'that its saved config builds (features of size {feature_dim}, '
        f'{len(text.tokenizer)} tokens): {error}. Was it written by another version of the code?') from error
  return graphdef, dict({'model_state': {}}, **variables), step


def checkpoint_digest(directory: str, step: int, variables: model_lib.Variables) -> str:
  """A SHA-256 that changes whenever the step's content does: that of its checksum
  manifest (sizes and SHA-256 of every file), or, for a step without one, that of the
  restored variables themselves."""
  name = ocp.path.step.standard_name_format().build_name(step)
  manifest = epath.Path(directory) / name / checksums.MANIFEST
  if manifest.exists():
    return hashlib.sha256(manifest.read_bytes()).hexdigest()
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
    digest.update(jax.tree_util.keystr(path).encode('utf-8'))
    digest.update(np.ascontiguousarray(jax.device_get(leaf)).tobytes())
  return digest.hexdigest()


def restore_model(workdir: str, step: str | int = 'best', *,
                  overrides: Mapping[str, Any] | None = None) -> RestoredModel:
  """Restores checkpoint `step` ('latest', 'best' or a number) of `workdir`.

  `overrides` ({'dataset.data_dir': ...}) change evaluation-only keys of the saved
  config (`EVALUATION_KEYS`).
  """
  overrides = overrides or {}
  check_overrides(overrides)
  directory = os.path.join(workdir, 'checkpoints')
  try:
    with checkpoint_lib.Checkpointer(directory, read_only=True) as checkpointer:
      criterion = _run_criterion(checkpointer)
      step = checkpointer.resolve_step(step, criterion)
      config = _apply_overrides(checkpointer.load_config(step), overrides)
      text = text_inputs.TextInputs.from_json(checkpointer.load_vocab(step))
      feature_dim = _feature_dim(checkpointer, step, config)
      mesh = sharding_lib.make_mesh()
      graphdef, variables, step = _restore_variables(checkpointer, step, config, text,
                                                     feature_dim, mesh)
      chosen = None
      if step == checkpointer.best_step(criterion):
        chosen = {'name': criterion, 'value': checkpointer.scores(step)[criterion]}
  except (FileNotFoundError, ValueError) as error:
    raise RestoreError(str(error)) from error
  return RestoredModel(step, config, text, graphdef, variables, mesh, feature_dim,
                       chosen_as_best_by=chosen,
                       digest=checkpoint_digest(directory, step, variables))


def _run_criterion(checkpointer: checkpoint_lib.Checkpointer) -> str:
  """What ranks the run's steps: the `best_metric` of its latest config (a run resumed
  with another criterion ranks by the new one, docs/design.md §6.13)."""
  return checkpointer.load_config('latest').best_metric
