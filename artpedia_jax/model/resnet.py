"""ResNet backbone (Flax NNX, NHWC) and the grid of regions it yields (docs/design.md §5.2).

The pixel encoder turns a painting into the same kind of input the detector path gives:
the last feature map [B, h, w, C] is read as R = h * w regions, each with the box of its
grid cell, so the region projection downstream is shared by both paths.

The layer layout is torchvision's (v1.5: in a Bottleneck the stride sits on the 3x3 conv),
with the same explicit paddings, so that imported ImageNet weights
(`weights_import.py`) reproduce torchvision's outputs. Attribute names mirror
torchvision's state-dict keys (`layer2[0].downsample[1]` is `layer2.0.downsample.1`).

Batch norm: `train=True` normalises with batch statistics and updates the running ones;
`train=False` (inference, or a frozen backbone) uses the running ones. Flax's `momentum`
is the decay of the running average, so torchvision's momentum 0.1 is 0.9 here. Unlike
torch, the running variance is updated with the biased batch variance.
"""

from flax import nnx
import jax
import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Blocks per stage, and whether the stage uses Bottleneck blocks.
ARCHITECTURES = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
STAGE_WIDTHS = (64, 128, 256, 512)
BN_MOMENTUM = 0.9  # torchvision's momentum=0.1 in Flax's convention
BN_EPSILON = 1e-5
BOTTLENECK_EXPANSION = 4

_KERNEL_INIT = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def normalize(images: jax.Array) -> jax.Array:
  """uint8 RGB [..., 3] → float32 normalised with the ImageNet statistics."""
  if images.dtype != jnp.uint8:
    raise TypeError(
        f'normalize expects uint8 RGB images, got dtype {images.dtype}; pass the raw '
        'pixels (already normalised images must not be normalised twice).')
  scaled = jnp.asarray(images, jnp.float32) / 255.0
  return (scaled - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


def grid_regions(feature_map: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B, h, w, C] → (features [B, h*w, C], boxes [B, h*w, 4] (y0, x0, y1, x1) in [0, 1]).

  Regions are in row-major order; each box is its cell of an h x w grid over the image.
  """
  batch, height, width, channels = feature_map.shape
  features = feature_map.reshape(batch, height * width, channels)
  rows, cols = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing='ij')
  rows, cols = rows.reshape(-1), cols.reshape(-1)
  boxes = jnp.stack(
      [rows / height, cols / width, (rows + 1) / height, (cols + 1) / width],
      axis=-1).astype(jnp.float32)
  return features, jnp.broadcast_to(boxes, (batch, height * width, 4))


def _conv(in_features: int, out_features: int, kernel_size: int, stride: int,
          dtype, rngs: nnx.Rngs) -> nnx.Conv:
  """Bias-free conv with torchvision's symmetric padding (kernel_size // 2)."""
  pad = kernel_size // 2
  return nnx.Conv(
      in_features, out_features, (kernel_size, kernel_size), (stride, stride),
      padding=((pad, pad), (pad, pad)), use_bias=False, dtype=dtype,
      kernel_init=_KERNEL_INIT, rngs=rngs)


def _batch_norm(num_features: int, dtype, rngs: nnx.Rngs) -> nnx.BatchNorm:
  return nnx.BatchNorm(
      num_features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype, rngs=rngs)


def _downsample(in_features: int, out_features: int, stride: int, dtype,
                rngs: nnx.Rngs) -> nnx.List | None:
  """The 1x1 projection shortcut, or None where the identity already fits."""
  if stride == 1 and in_features == out_features:
    return None
  return nnx.List([_conv(in_features, out_features, 1, stride, dtype, rngs),
                   _batch_norm(out_features, dtype, rngs)])


class _Block(nnx.Module):
  """Residual wrapper shared by both block kinds: relu(body(x) + shortcut(x))."""

  def _body(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    raise NotImplementedError

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    use_running_average = not train
    shortcut = x
    if self.downsample is not None:
      conv, bn = self.downsample
      shortcut = bn(conv(x), use_running_average=use_running_average)
    return jax.nn.relu(self._body(x, use_running_average) + shortcut)


class BasicBlock(_Block):
  """Two 3x3 convs (ResNet-18/34)."""

  def __init__(self, in_features: int, width: int, stride: int, *, dtype=None,
               rngs: nnx.Rngs):
    self.out_features = width
    self.conv1 = _conv(in_features, width, 3, stride, dtype, rngs)
    self.bn1 = _batch_norm(width, dtype, rngs)
    self.conv2 = _conv(width, width, 3, 1, dtype, rngs)
    self.bn2 = _batch_norm(width, dtype, rngs)
    self.downsample = _downsample(in_features, width, stride, dtype, rngs)

  def _body(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=use_running_average))
    return self.bn2(self.conv2(x), use_running_average=use_running_average)


class Bottleneck(_Block):
  """1x1 reduce, 3x3 (strided), 1x1 expand x4 (ResNet-50/101/152, torchvision v1.5)."""

  def __init__(self, in_features: int, width: int, stride: int, *, dtype=None,
               rngs: nnx.Rngs):
    self.out_features = width * BOTTLENECK_EXPANSION
    self.conv1 = _conv(in_features, width, 1, 1, dtype, rngs)
    self.bn1 = _batch_norm(width, dtype, rngs)
    self.conv2 = _conv(width, width, 3, stride, dtype, rngs)
    self.bn2 = _batch_norm(width, dtype, rngs)
    self.conv3 = _conv(width, self.out_features, 1, 1, dtype, rngs)
    self.bn3 = _batch_norm(self.out_features, dtype, rngs)
    self.downsample = _downsample(in_features, self.out_features, stride, dtype, rngs)

  def _body(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    x = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=use_running_average))
    x = jax.nn.relu(self.bn2(self.conv2(x), use_running_average=use_running_average))
    return self.bn3(self.conv3(x), use_running_average=use_running_average)


def _stage(in_features: int, width: int, num_blocks: int, stride: int, bottleneck: bool,
           dtype, rngs: nnx.Rngs) -> nnx.List:
  block_class = Bottleneck if bottleneck else BasicBlock
  blocks = []
  for index in range(num_blocks):
    block = block_class(in_features, width, stride if index == 0 else 1, dtype=dtype,
                        rngs=rngs)
    blocks.append(block)
    in_features = block.out_features
  return nnx.List(blocks)


class ResNet(nnx.Module):
  """ResNet-{18,34,50,101,152} without its classifier: normalised images → last feature map.

  `dtype` is the computation dtype (e.g. bfloat16 on accelerators); parameters stay
  float32. Output stride is 32: a 224 px image gives a 7 x 7 map of `num_features`
  channels (512 for 18/34, 2048 for 50+).
  """

  def __init__(self, depth: int, *, dtype=None, rngs: nnx.Rngs):
    if depth not in ARCHITECTURES:
      raise ValueError(f'ResNet depth {depth} is not one of {sorted(ARCHITECTURES)}.')
    self.depth = depth
    blocks_per_stage, bottleneck = ARCHITECTURES[depth]
    self.conv1 = _conv(3, 64, 7, 2, dtype, rngs)
    self.bn1 = _batch_norm(64, dtype, rngs)
    in_features = 64
    for index, (width, num_blocks) in enumerate(zip(STAGE_WIDTHS, blocks_per_stage)):
      stage = _stage(in_features, width, num_blocks, 1 if index == 0 else 2, bottleneck,
                     dtype, rngs)
      setattr(self, f'layer{index + 1}', stage)
      in_features = stage[-1].out_features
    self.num_features = in_features

  def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
    """[B, H, W, 3] normalised float → [B, ceil(H/32), ceil(W/32), num_features]."""
    x = self.bn1(self.conv1(images), use_running_average=not train)
    x = nnx.max_pool(jax.nn.relu(x), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
      for block in stage:
        x = block(x, train=train)
    return x


class PixelRegionEncoder(nnx.Module):
  """uint8 images → grid regions shaped like detector regions (features, boxes, mask).

  Takes a built backbone, so a pretrained one (`weights_import`) plugs in unchanged.
  `frozen=True` keeps batch norm in inference mode and stops gradients at the feature
  map, so training does not pay for the backbone's backward pass. (Weight decay would
  still move its parameters: `optim.make_optimizer` leaves a frozen backbone out.)
  """

  def __init__(self, backbone: ResNet, *, frozen: bool = False):
    self.backbone = backbone
    self.frozen = frozen
    self.feature_dim = backbone.num_features

  def __call__(self, images: jax.Array, *, train: bool
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """[B, H, W, 3] uint8 → features [B, R, C] f32, boxes [B, R, 4], region_mask [B, R]."""
    feature_map = self.backbone(normalize(images), train=train and not self.frozen)
    if self.frozen:
      feature_map = jax.lax.stop_gradient(feature_map)
    features, boxes = grid_regions(feature_map.astype(jnp.float32))
    return features, boxes, jnp.ones(features.shape[:2], jnp.bool_)
