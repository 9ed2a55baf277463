"""`align.py` from pixels: real Artpedia images through an ImageNet ResNet-152.

Needs only the `images` dataset config (artpedia.json + images/, no detector features):

  python run.py --config=configs/align_pixels.py --workdir=W \
      --config.dataset.manual_dir=DIR \
      --config.model.backbone_weights=resnet152.safetensors

The weights are torchvision's `resnet152` state dict (.safetensors, or .pth with torch
installed); without them the backbone starts from random init. A 320 px input gives a
10 x 10 grid, i.e. 100 regions of 2048 floats, as many as bottom-up attention's upper
bound (`dataset.max_regions` applies to region features only). The backbone is fine-tuned at a tenth of the head's rate; add
`--config.model.backbone_frozen=True` to keep it fixed (faster, no batch-norm updates),
and `--config.model.backbone_dtype=bfloat16` on accelerators.
"""

from configs import align


def get_config():
  c = align.get_config()
  c.dataset.name = 'artpedia/images'
  c.dataset.image_size = 320
  c.dataset.crop_min_scale = 0.5
  c.model.backbone = 'resnet152'
  c.model.backbone_frozen = False
  c.optimizer.backbone_learning_rate = 2e-5
  return c
