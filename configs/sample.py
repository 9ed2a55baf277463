"""The same system sized for a laptop CPU on the embedded sample corpus (about 4 minutes for
scripts/sample.sh on 2 CPU cores: build, train, evaluate, report)."""

from configs import base


def get_config():
  c = base.base_config()
  c.dataset.name = 'artpedia/sample'
  c.dataset.max_regions = 12
  c.dataset.max_words = 24
  c.dataset.num_workers = 0  # 2 cores: a worker process would take one from XLA
  c.vocab.min_count = 1
  c.batch_size = 64
  c.num_train_steps = 1200
  c.log_every_steps = 50
  c.eval_every_steps = 400
  c.checkpoint_every_steps = 400
  c.score_block_size = 16
  c.model.embed_dim = 128
  c.model.word_dim = 96
  c.model.classifier_hidden = 128
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_steps = 100
  c.loss.max_violation_warmup_steps = 300
  return c
