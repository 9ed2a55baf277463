"""`sample.py` from pixels: a small ResNet-18, from random init, on the sample corpus.

Sized for a laptop CPU (a few minutes): 96 px inputs give a 3 x 3 grid of regions, the
whole network is trained at the head's rate (random init has nothing to preserve).

  python run.py --config=configs/sample_pixels.py --workdir=W
  python -m artpedia_jax.eval --workdir=W
"""

from configs import sample


def get_config():
  c = sample.get_config()
  c.model.backbone = 'resnet18'
  c.model.backbone_frozen = False
  c.dataset.image_size = 96
  c.dataset.crop_min_scale = 0.6
  c.batch_size = 32
  c.eval_batch_size = 64
  c.num_train_steps = 400
  c.log_every_steps = 25
  c.eval_every_steps = 200
  c.checkpoint_every_steps = 200
  c.optimizer.learning_rate = 1e-3
  c.optimizer.backbone_learning_rate = 1e-3
  c.optimizer.warmup_steps = 50
  c.loss.max_violation_warmup_steps = 150
  return c
