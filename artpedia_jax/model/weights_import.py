"""Import torchvision ResNet checkpoints into `resnet.ResNet` (docs/design.md §5.2).

ImageNet-trained ResNets are distributed as PyTorch state dicts (`.pth`) or as
`.safetensors`. Reading `.safetensors` needs no torch; `.pth` is a pickle that only torch
can read, so torch is imported lazily, for that format only.

`resnet.ResNet` names its submodules as torchvision does, so a parameter's key is its
NNX path with the leaf renamed (`layer1.0.downsample.1.running_mean` is
`model.layer1[0].downsample[1].mean`). Everything is checked before anything is written:
unknown keys, missing keys and shape mismatches are one error that lists them all.
The classifier (`fc.*`) and `num_batches_tracked` have no counterpart and are skipped.

The model may be abstract (`nnx.eval_shape(lambda: ResNet(50, rngs=...))`): importing
fills every parameter and batch statistic, so a pretrained backbone skips random init.
"""

import os
import pathlib

from flax import nnx
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from artpedia_jax.model import resnet

# NNX variable name → torchvision tensor name.
_TORCH_LEAF_NAMES = {
    'kernel': 'weight',  # conv
    'scale': 'weight',  # batch norm
    'bias': 'bias',
    'mean': 'running_mean',
    'var': 'running_var',
}
_CLASSIFIER_PREFIX = 'fc.'
_BATCH_COUNTER_SUFFIX = '.num_batches_tracked'
_MAX_LISTED_KEYS = 20


def load_torchvision_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a state dict from `.safetensors` (no torch needed) or `.pth`/`.pt` (torch)."""
  path = pathlib.Path(path)
  if path.suffix == '.safetensors':
    return safetensors.numpy.load_file(path)
  if path.suffix in ('.pth', '.pt'):
    return _load_torch_pickle(path)
  raise ValueError(
      f'{path}: unknown checkpoint format {path.suffix!r}; expected .safetensors, .pth '
      'or .pt.')


def _load_torch_pickle(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError(
        f'Reading {path} needs PyTorch (a .pth file is a torch pickle): install torch, '
        'or convert the file once to .safetensors where torch is available '
        '(safetensors.torch.save_file) and pass that instead.') from error
  state_dict = torch.load(path, map_location='cpu', weights_only=True)
  return {key: tensor.detach().cpu().numpy() for key, tensor in state_dict.items()}


def import_resnet_weights(model: resnet.ResNet,
                          state_dict: dict[str, np.ndarray]) -> list[str]:
  """Writes a torchvision ResNet state dict into `model`; returns the skipped keys.

  Raises ValueError naming every unknown key, missing key and shape mismatch (in
  torchvision's layout) when the checkpoint does not fit the model's depth.
  """
  targets = _torch_named_variables(model)
  skipped = sorted(key for key in state_dict if _has_no_counterpart(key))
  unknown = sorted(set(state_dict) - set(targets) - set(skipped))
  missing = sorted(set(targets) - set(state_dict))
  mismatched = [
      f'{key}: checkpoint {tuple(np.shape(state_dict[key]))}, model expects '
      f'{_torch_shape(name, variable)}'
      for key, (name, variable) in sorted(targets.items())
      if key in state_dict and np.shape(state_dict[key]) != _torch_shape(name, variable)
  ]
  problems = [
      listing(title, items) for title, items in
      (('unknown keys', unknown), ('missing keys', missing), ('shape mismatches', mismatched))
      if items
  ]
  if problems:
    raise ValueError(
        f'The state dict does not fit ResNet-{model.depth} (is it a torchvision '
        f'resnet{model.depth} checkpoint?):\n' + '\n'.join(problems))
  for key, (name, variable) in targets.items():
    variable.set_value(jnp.asarray(_to_flax_layout(name, state_dict[key]), variable.dtype))
  return skipped


def _torch_named_variables(model: resnet.ResNet
                           ) -> dict[str, tuple[str, nnx.Variable]]:
  """torchvision key → (NNX variable name, the model's live variable)."""
  named = {}
  for path, node in nnx.iter_graph(model):
    if isinstance(node, (nnx.Param, nnx.BatchStat)):
      name = path[-1]
      key = '.'.join(str(part) for part in path[:-1]) + '.' + _TORCH_LEAF_NAMES[name]
      named[key] = (name, node)
  return named


def _has_no_counterpart(key: str) -> bool:
  return key.startswith(_CLASSIFIER_PREFIX) or key.endswith(_BATCH_COUNTER_SUFFIX)


def _torch_shape(name: str, variable: nnx.Variable) -> tuple[int, ...]:
  """The variable's shape as torchvision stores it (conv kernels OIHW, not HWIO)."""
  shape = tuple(variable.shape)
  if name == 'kernel':
    height, width, in_features, out_features = shape
    return (out_features, in_features, height, width)
  return shape


def _to_flax_layout(name: str, array: np.ndarray) -> np.ndarray:
  return np.transpose(array, (2, 3, 1, 0)) if name == 'kernel' else array


def listing(title: str, items: list[str]) -> str:
  shown = ', '.join(items[:_MAX_LISTED_KEYS])
  more = len(items) - _MAX_LISTED_KEYS
  return f'  {title} ({len(items)}): {shown}' + (f', ... and {more} more' if more > 0 else '')
