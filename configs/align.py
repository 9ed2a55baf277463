"""Paper-sized setting on real Artpedia region features (36 x 2048), joint space 1024."""

from configs import base


def get_config():
  c = base.base_config()
  c.dataset.name = 'artpedia/regions'
  c.batch_size = 128
  c.num_epochs = 30
  return c
