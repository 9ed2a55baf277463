"""The pretrained-text recipe sized for a CPU: all-MiniLM-L6-v2 (6 layers, hidden 384)
fine-tuned on the realistic sample corpus, with `sample.py`'s painting side.

`model.text_weights` is a hub id (fetched into the Hugging Face cache on first use) or
the model folder. Text only (no usable region features), as the README shows:
`--config.model.classifier_inputs=text --config.loss.rank_weight=0
--config.best_metric=visual_ap`.
"""

from configs import sample_realistic


def get_config():
  c = sample_realistic.get_config()
  c.model.text_encoder = 'bert'
  c.model.text_weights = 'sentence-transformers/all-MiniLM-L6-v2'
  # Word pieces, [CLS] and [SEP] included: real Artpedia sentences run 1.30 pieces a
  # word (median 25, p99 77); 64 truncates 2.7% of them. The step packs its sentences
  # end to end into rows, so the cost follows the sentences, not this bound.
  c.dataset.max_words = 64
  # 250 steps of 16 pairs: 12.5 minutes on 2 idle CPU cores. On the realistic corpus 250
  # steps beat 150 (test AUC 0.901 vs 0.886) and 300 add little (0.904) for 19 minutes;
  # one validation, at the end, leaves the time to the steps (real Artpedia's validation
  # split has 3,000 sentences). README, "The CPU recipe, measured".
  c.batch_size = 16
  c.num_train_steps = 250
  c.eval_every_steps = 250
  c.checkpoint_every_steps = 125
  c.log_every_steps = 10
  # BERT's usual fine-tuning schedule: warm-up over 10% of the steps, then linear decay;
  # the pretrained encoder at 1e-4 (a small model, few steps), the new heads at 1e-3.
  c.optimizer.learning_rate = 1e-3
  c.optimizer.text_learning_rate = 1e-4
  c.optimizer.warmup_steps = 25
  c.optimizer.decay = 'linear'
  c.loss.max_violation_warmup_steps = 50
  # MiniLM was trained as a sentence encoder by the mean of its token states.
  c.model.sentence_pooling = 'mean'
  return c
