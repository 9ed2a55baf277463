"""Defaults shared by every config: the full set of keys, sized for real Artpedia.

`align.py`, `sample.py` and `test.py` start from `base_config()` and override sizes only,
so that every key exists in every config and a command-line override of an unknown key is
an error (ml_collections refuses new keys on a locked ConfigDict).
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 128  # global batch of (painting, visual sentence) pairs
  c.num_train_steps = -1  # -1: derived from num_epochs
  c.num_epochs = 30
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 3  # the last K, plus the best by validation best_metric
  # Which validation evaluation is best: rsum (retrieval) | visual_ap (the classifier's
  # AP over all sentences) | rsum_and_ap (both, as normalised gains over chance).
  c.best_metric = 'rsum'
  # Stop after this many evaluations in a row without a new best (0: never stop early).
  c.early_stopping_patience = 0
  c.max_consecutive_skips = 20  # non-finite steps in a row before the run stops
  c.score_block_size = 32  # sentences per block of the pairwise scoring
  c.eval_batch_size = 256  # paintings / sentences encoded at once in evaluation

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = 'artpedia/regions'
  c.dataset.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.dataset.manual_dir = ml_collections.FieldReference(None, field_type=str)
  # A dataset on disk built from other inputs (builder options, manual_dir, or files
  # changed since) is refused with the differences named; True rebuilds it instead.
  c.dataset.overwrite = False
  c.dataset.max_regions = 36
  c.dataset.max_words = 60
  # Sentences per painting sampled for the classifier (one is the pair's own). 2: at equal
  # wall-clock on the sample corpus it classified as well as 4 or 8 (README, Training).
  c.dataset.cls_sentences = 2
  # Padded sentence lengths (clipped to max_words; (): always max_words). A training batch
  # is padded to the smallest holding its longest sentence, evaluation sorts sentences by
  # length and pads each chunk to its own; one compilation per length in use.
  c.dataset.length_buckets = (16, 24, 32, 48, 64)
  c.dataset.num_workers = 2  # grain worker processes (0: in the main process)
  c.dataset.prefetch_batches = 4
  # Pixel path only (model.backbone set): square backbone input side; training takes a
  # random crop of at least `crop_min_scale` of the image's area (1.0: the whole image)
  # and mirrors it when `random_flip` (off: it swaps "left" and "right" of the sentences).
  c.dataset.image_size = 224
  c.dataset.crop_min_scale = 0.5
  c.dataset.random_flip = False

  c.vocab = ml_collections.ConfigDict()
  c.vocab.min_count = 2
  c.vocab.glove_path = ml_collections.FieldReference(None, field_type=str)

  c.model = ml_collections.ConfigDict()
  c.model.score = 'align'  # align | scan_t2i | pooled
  c.model.embed_dim = 1024
  c.model.word_dim = 300
  c.model.use_boxes = True
  c.model.lambda_softmax = 9.0  # scan_t2i attention sharpness
  c.model.lambda_lse = 6.0  # scan_t2i LogSumExp pooling over words
  c.model.classifier_inputs = 'text_image'  # text_image | text
  c.model.classifier_hidden = 512
  # Regularisation of the text encoder, in training only (evaluation is deterministic):
  # dropout rate on the word embeddings and on the encoder's word vectors, and the
  # probability of replacing a real word by <unk> (word dropout). Chosen on the realistic
  # sample corpus, where they lift the text classifier's test AUC from 0.84 to 0.90
  # (README, "Regularisation").
  c.model.dropout = 0.5
  c.model.word_dropout = 0.25
  c.model.backbone = ''  # '': precomputed region features; resnet18|34|50|101|152: pixels
  c.model.backbone_frozen = False  # frozen: batch norm in inference mode, no updates
  c.model.backbone_weights = ''  # torchvision .safetensors / .pth; '': random init
  # float32 | bfloat16: computation of the text encoder, region projections and scoring
  # contractions (parameters, optimiser state, scores and losses stay float32).
  c.model.dtype = 'float32'
  c.model.backbone_dtype = 'float32'  # float32 | bfloat16 (computation; params stay f32)
  # Sentences: 'bigru' over a word vocabulary of the training split, or 'bert': a
  # BERT-family encoder from `text_weights`, a Hugging Face model folder (config.json,
  # model.safetensors, tokenizer.json) or a Hugging Face hub id (fetched into the hub's
  # cache); its word pieces are the alignment words.
  c.model.text_encoder = 'bigru'  # bigru | bert
  c.model.text_weights = ''  # bert only (required): a model folder or a hub id
  c.model.text_frozen_layers = 0  # bert: k > 0 freezes the embeddings and layers 1..k
  # bert: training-only dropout of its hidden states and attention probabilities; -1:
  # the rates of its config.json (hidden_dropout_prob, attention_probs_dropout_prob).
  c.model.text_dropout = -1.0
  # The classifier's sentence vector: mean (of the word vectors) | cls (bert: [CLS]).
  c.model.sentence_pooling = 'mean'

  c.loss = ml_collections.ConfigDict()
  c.loss.rank = 'hinge'  # hinge | infonce
  c.loss.margin = 0.2
  c.loss.max_violation = True
  c.loss.max_violation_warmup_steps = 0  # summed hinges before this step
  c.loss.init_temperature = 0.07  # infonce, learned
  # total = rank_weight * rank + cls_weight * cls; either may be 0 (not both): rank_weight
  # 0 trains the classifier alone (no pairwise scoring is computed), e.g. for text
  # without usable image features.
  c.loss.rank_weight = 1.0
  c.loss.cls_weight = 1.0
  # The classifier's weight on visual sentences. Its draws hold more visual sentences than
  # the split (half of each kind a row); -1 weighs them back to the split's balance, so
  # that p(visual) >= 0.5 calls what a classifier at the split's prior would
  # (docs/design.md §6.3). A number > 0 is used as it is.
  c.loss.cls_pos_weight = -1.0

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adamw'  # adam | adamw
  c.optimizer.learning_rate = 2e-4
  c.optimizer.backbone_learning_rate = 2e-5  # peak rate of a fine-tuned pixel backbone
  c.optimizer.text_learning_rate = 2e-5  # peak rate of a fine-tuned BERT text encoder
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_steps = 500
  c.optimizer.decay = 'cosine'  # cosine | linear | constant
  c.optimizer.grad_clip_norm = 2.0
  return c
