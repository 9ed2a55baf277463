"""torchvision ResNet weights → NNX ResNet, checked against a plain numpy forward.

The reference below is written from torchvision's definition (NCHW, OIHW kernels, conv1
7x7/2 pad 3, max pool 3x3/2 pad 1, v1.5 Bottleneck with the stride on the 3x3 conv),
independently of `resnet.py`, so a layout or padding error on either side shows up.
"""

import sys

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pytest
import safetensors.numpy

from artpedia_jax.model import resnet
from artpedia_jax.model import weights_import

# torchvision: blocks per stage and whether blocks are Bottlenecks.
TORCHVISION_LAYOUT = {18: ((2, 2, 2, 2), False), 50: ((3, 4, 6, 3), True)}
EPSILON = 1e-5


def _random_batch_norm(rng, prefix, channels):
  return {
      f'{prefix}.weight': rng.uniform(0.5, 1.5, channels),
      f'{prefix}.bias': rng.normal(0.0, 0.1, channels),
      f'{prefix}.running_mean': rng.normal(0.0, 0.1, channels),
      f'{prefix}.running_var': rng.uniform(0.5, 2.0, channels),
      f'{prefix}.num_batches_tracked': np.array(7, np.int64),
  }


def _random_conv(rng, key, out_channels, in_channels, size):
  std = np.sqrt(2.0 / (in_channels * size * size))
  return {key: rng.normal(0.0, std, (out_channels, in_channels, size, size))}


def _block_convs(bottleneck, in_channels, width):
  """(name, out, in, kernel size) of each conv of a block, in torchvision's naming."""
  if bottleneck:
    return [('conv1', width, in_channels, 1), ('conv2', width, width, 3),
            ('conv3', 4 * width, width, 1)]
  return [('conv1', width, in_channels, 3), ('conv2', width, width, 3)]


def random_torchvision_state_dict(depth, seed=0):
  """A state dict with torchvision's keys and shapes (float32), random values."""
  rng = np.random.default_rng(seed)
  blocks_per_stage, bottleneck = TORCHVISION_LAYOUT[depth]
  state = {**_random_conv(rng, 'conv1.weight', 64, 3, 7), **_random_batch_norm(rng, 'bn1', 64)}
  in_channels = 64
  for stage, (width, num_blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage)):
    for index in range(num_blocks):
      prefix = f'layer{stage + 1}.{index}'
      for name, out_c, in_c, size in _block_convs(bottleneck, in_channels, width):
        state |= _random_conv(rng, f'{prefix}.{name}.weight', out_c, in_c, size)
        state |= _random_batch_norm(rng, f'{prefix}.bn{name[-1]}', out_c)
      out_channels = 4 * width if bottleneck else width
      if index == 0 and (stage > 0 or in_channels != out_channels):
        state |= _random_conv(rng, f'{prefix}.downsample.0.weight', out_channels,
                              in_channels, 1)
        state |= _random_batch_norm(rng, f'{prefix}.downsample.1', out_channels)
      in_channels = out_channels
  state['fc.weight'] = rng.normal(0.0, 0.01, (1000, in_channels))
  state['fc.bias'] = np.zeros(1000)
  return {key: value.astype(np.float32) if value.dtype == np.float64 else value
          for key, value in state.items()}


def _conv(x, weight, stride, pad):
  """NCHW conv by im2col: windows [N, C, Ho, Wo, kh, kw] contracted with OIHW weights."""
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  windows = sliding_window_view(x, weight.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
  return np.einsum('nchwij,ocij->nohw', windows, weight, optimize=True)


def _batch_norm(x, state, prefix):
  def channel(name):
    return state[f'{prefix}.{name}'][None, :, None, None]
  scale = channel('weight') / np.sqrt(channel('running_var') + EPSILON)
  return (x - channel('running_mean')) * scale + channel('bias')


def _max_pool_3x3_stride2_pad1(x):
  x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
  return sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-2, -1))


def _relu(x):
  return np.maximum(x, 0.0)


def _block(x, state, prefix, stride):
  bottleneck = f'{prefix}.conv3.weight' in state
  convs = ['conv1', 'conv2', 'conv3'] if bottleneck else ['conv1', 'conv2']
  strided = 'conv2' if bottleneck else 'conv1'
  out = x
  for position, name in enumerate(convs):
    weight = state[f'{prefix}.{name}.weight']
    out = _conv(out, weight, stride if name == strided else 1, weight.shape[-1] // 2)
    out = _batch_norm(out, state, f'{prefix}.bn{name[-1]}')
    if position < len(convs) - 1:
      out = _relu(out)
  shortcut = x
  if f'{prefix}.downsample.0.weight' in state:
    shortcut = _conv(x, state[f'{prefix}.downsample.0.weight'], stride, 0)
    shortcut = _batch_norm(shortcut, state, f'{prefix}.downsample.1')
  return _relu(out + shortcut)


def reference_forward(images_nchw, state):
  """torchvision ResNet forward up to layer4 (inference mode), in float64."""
  state = {key: np.asarray(value, np.float64) for key, value in state.items()}
  x = _relu(_batch_norm(_conv(images_nchw, state['conv1.weight'], 2, 3), state, 'bn1'))
  x = _max_pool_3x3_stride2_pad1(x)
  for stage in range(1, 5):
    index = 0
    while f'layer{stage}.{index}.conv1.weight' in state:
      stride = 2 if stage > 1 and index == 0 else 1
      x = _block(x, state, f'layer{stage}.{index}', stride)
      index += 1
  return x


def _abstract_resnet(depth):
  return nnx.eval_shape(lambda: resnet.ResNet(depth, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize('depth', [18, 50])
def test_imported_weights_reproduce_torchvision_forward(tmp_path, depth):
  state = random_torchvision_state_dict(depth)
  path = tmp_path / f'resnet{depth}.safetensors'
  safetensors.numpy.save_file(state, str(path))
  model = _abstract_resnet(depth)  # importing fills every variable

  skipped = weights_import.import_resnet_weights(
      model, weights_import.load_torchvision_state_dict(path))

  assert 'fc.weight' in skipped and 'bn1.num_batches_tracked' in skipped
  images = np.random.default_rng(1).normal(size=(2, 3, 64, 64))
  expected = reference_forward(images, state)
  actual = model(jnp.asarray(images.transpose(0, 2, 3, 1), jnp.float32), train=False)
  np.testing.assert_allclose(
      np.asarray(actual).transpose(0, 3, 1, 2), expected,
      rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_unknown_and_missing_keys_are_listed():
  state = random_torchvision_state_dict(18)
  state['layer5.0.conv1.weight'] = state.pop('layer4.1.conv2.weight')
  del state['bn1.running_var']

  with pytest.raises(ValueError) as error:
    weights_import.import_resnet_weights(_abstract_resnet(18), state)

  message = str(error.value)
  assert 'unknown keys (1): layer5.0.conv1.weight' in message
  assert 'missing keys (2): bn1.running_var, layer4.1.conv2.weight' in message


def test_shape_mismatch_is_listed_in_torchvision_layout_and_nothing_is_written():
  state = random_torchvision_state_dict(18)
  state['layer1.0.conv1.weight'] = state['layer1.0.conv1.weight'][:, :32]
  model = _abstract_resnet(18)

  with pytest.raises(ValueError, match=r'shape mismatches \(1\): layer1\.0\.conv1\.weight: '
                     r'checkpoint \(64, 32, 3, 3\), model expects \(64, 64, 3, 3\)'):
    weights_import.import_resnet_weights(model, state)
  assert isinstance(model.conv1.kernel.get_value(), jax.ShapeDtypeStruct)


def test_depth_mismatch_is_refused():
  with pytest.raises(ValueError, match='does not fit ResNet-50'):
    weights_import.import_resnet_weights(
        _abstract_resnet(50), random_torchvision_state_dict(18))


def test_pth_without_torch_says_torch_is_needed(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # makes `import torch` fail
  with pytest.raises(ImportError, match='needs PyTorch'):
    weights_import.load_torchvision_state_dict(tmp_path / 'resnet18.pth')


def test_unknown_checkpoint_format_is_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown checkpoint format '.npz'"):
    weights_import.load_torchvision_state_dict(tmp_path / 'resnet18.npz')
