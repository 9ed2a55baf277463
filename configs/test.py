"""Tiny: for tests. Trains in seconds on the CPU."""

from configs import base


def get_config():
  c = base.base_config()
  c.dataset.name = 'artpedia/sample'
  c.dataset.max_regions = 8
  c.dataset.max_words = 16
  c.dataset.cls_sentences = 4
  c.dataset.num_workers = 0
  c.vocab.min_count = 1
  c.batch_size = 16
  c.num_train_steps = 40
  c.log_every_steps = 10
  c.eval_every_steps = 20
  c.checkpoint_every_steps = 20
  c.score_block_size = 8
  c.eval_batch_size = 64
  c.model.embed_dim = 32
  c.model.word_dim = 16
  c.model.classifier_hidden = 16
  c.model.dropout = 0.0  # off, whatever base.py chooses: tests compare exact values
  c.model.word_dropout = 0.0
  c.optimizer.learning_rate = 3e-3
  c.optimizer.warmup_steps = 5
  return c
