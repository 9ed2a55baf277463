"""`align.py` with a pretrained BERT-family text encoder: the recipe for real Artpedia.

Paper-sized painting side (36 regions x 2048, joint space 1024); sentences through
all-MiniLM-L6-v2 (`model.text_weights`: a hub id or a model folder; for a base-size
model, `bert-base-uncased`, lower `optimizer.text_learning_rate` to 2e-5).
"""

from configs import align


def get_config():
  c = align.get_config()
  c.model.text_encoder = 'bert'
  c.model.text_weights = 'sentence-transformers/all-MiniLM-L6-v2'
  # Word pieces, [CLS] and [SEP] included: real Artpedia sentences run 1.30 pieces a
  # word (median 25, p95 55, p99 77); 64 truncates 2.7% of them, 48 would cut 10%.
  c.dataset.max_words = 64
  c.num_epochs = 10  # a pretrained encoder converges in fewer epochs than the bi-GRU
  # BERT's fine-tuning schedule: warm-up, then linear decay; the encoder at its own rate.
  c.optimizer.text_learning_rate = 5e-5
  c.optimizer.warmup_steps = 300
  c.optimizer.decay = 'linear'
  c.model.sentence_pooling = 'mean'  # how MiniLM was trained to embed sentences
  return c
