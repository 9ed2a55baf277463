"""ArtpediaModel: shapes, unit norms, padding invariance, the classifier's inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artpedia_jax.model import model as model_lib
from artpedia_jax.model import scoring
from artpedia_jax.train import losses
from configs import test as test_config

VOCAB = 30
FEATURES = 12


def _model(**model_overrides):
  config = test_config.get_config()
  config.model.update(model_overrides)
  return model_lib.ArtpediaModel(
      model_lib.ModelSpec.from_config(config), vocab_size=VOCAB, feature_dim=FEATURES,
      rngs=nnx.Rngs(0))


def _paintings(seed, num_paintings=3, regions=5):
  rng = np.random.default_rng(seed)
  features = rng.normal(size=(num_paintings, regions, FEATURES)).astype(np.float32)
  corners = np.sort(rng.uniform(size=(num_paintings, regions, 2, 2)), axis=2)
  boxes = corners.transpose(0, 1, 3, 2).reshape(num_paintings, regions, 4)
  num_regions = np.array([regions, 2, 3])[:num_paintings]
  region_mask = np.arange(regions)[None] < num_regions[:, None]
  return features, boxes.astype(np.float32), region_mask


def _tokens(lengths, max_words, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(1, VOCAB, (len(lengths), max_words)).astype(np.int32)
  return np.where(np.arange(max_words)[None] < np.array(lengths)[:, None], tokens, 0)


def _pad(x, extra, axis, value=0):
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return np.pad(x, widths, constant_values=value)


def test_shapes_and_unit_norms():
  model = _model()
  features, boxes, region_mask = _paintings(seed=0)
  tokens = _tokens([4, 1, 6], max_words=6)
  v = model.encode_paintings(features, boxes, region_mask)
  w, word_mask = model.encode_sentences(tokens)
  dim = model.embed_dim
  assert v.shape == (3, 5, dim) and w.shape == (3, 6, dim)
  np.testing.assert_array_equal(word_mask, tokens != 0)
  np.testing.assert_allclose(np.linalg.norm(v, axis=-1), region_mask.astype(float),
                             atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(w, axis=-1), word_mask.astype(float),
                             atol=1e-5)
  assert model.pairwise_scores(v, region_mask, w, word_mask, block_size=2).shape == (3, 3)
  assert model.paired_scores(v, region_mask, w, word_mask).shape == (3,)
  assert model.classify(v, region_mask, w, word_mask).shape == (3,)


def test_encode_sentences_ignores_padding():
  model = _model()
  tokens = _tokens([4, 1, 6], max_words=6)
  w, _ = model.encode_sentences(tokens)
  more_w, more_mask = model.encode_sentences(_pad(tokens, 5, axis=1))
  np.testing.assert_allclose(more_w[:, :6], w, atol=1e-5)
  assert np.all(more_w[:, 6:] == 0) and not np.any(more_mask[:, 6:])


def test_word_vectors_average_forward_and_backward_from_the_last_real_word():
  """A plain per-word GRU loop over the real words only: the backward direction must
  start at the sentence's last real word, not at the end of the padding."""
  model = _model()
  tokens = _tokens([3], max_words=7)
  w, _ = model.encode_sentences(tokens)
  embedded = model.word_embedding(tokens[0, :3])
  zero = jnp.zeros((model.embed_dim,))

  def run(cell, inputs):
    carry, outputs = zero, []
    for x in inputs:
      carry, y = cell(carry, x)
      outputs.append(y)
    return jnp.stack(outputs)

  forward = run(model.text_rnn.forward_rnn.cell, embedded)
  backward = run(model.text_rnn.backward_rnn.cell, embedded[::-1])[::-1]
  np.testing.assert_allclose(
      w[0, :3], scoring.l2_normalize(forward + backward), atol=1e-5)


def test_encode_paintings_ignores_padding():
  model = _model()
  features, boxes, region_mask = _paintings(seed=1)
  v = model.encode_paintings(features, boxes, region_mask)
  garbage = 7.0  # padded regions hold garbage: it must neither show nor leak
  more_v = model.encode_paintings(
      _pad(features, 3, 1, garbage), _pad(boxes, 3, 1, garbage), _pad(region_mask, 3, 1))
  np.testing.assert_allclose(more_v[:, :5], v, atol=1e-6)
  assert np.all(more_v[:, 5:] == 0) and np.all(np.asarray(v)[~region_mask] == 0)


@pytest.mark.parametrize('use_boxes', [True, False])
def test_boxes_matter_only_when_used(use_boxes):
  model = _model(use_boxes=use_boxes)
  features, boxes, region_mask = _paintings(seed=2)
  v = model.encode_paintings(features, boxes, region_mask)
  moved = model.encode_paintings(features, boxes[:, ::-1], region_mask)
  assert (not np.allclose(v, moved, atol=1e-4)) == use_boxes


def _encoded_pairs(model, seed, extra_regions=0, extra_words=0):
  features, boxes, region_mask = _paintings(seed)
  tokens = _tokens([4, 2, 6], max_words=6, seed=seed)
  v = model.encode_paintings(
      _pad(features, extra_regions, 1, 3.0), _pad(boxes, extra_regions, 1),
      _pad(region_mask, extra_regions, 1))
  w, word_mask = model.encode_sentences(_pad(tokens, extra_words, 1))
  return v, _pad(region_mask, extra_regions, 1), w, word_mask


@pytest.mark.parametrize('score', ['align', 'scan_t2i', 'pooled'])
def test_classify_ignores_padding(score):
  model = _model(score=score)
  logits = model.classify(*_encoded_pairs(model, seed=3))
  more_logits = model.classify(*_encoded_pairs(model, seed=3, extra_regions=4,
                                               extra_words=3))
  np.testing.assert_allclose(more_logits, logits, atol=1e-5)


@pytest.mark.parametrize('inputs', ['text', 'text_image'])
def test_only_the_text_image_classifier_looks_at_the_painting(inputs):
  model = _model(classifier_inputs=inputs)
  v, region_mask, w, word_mask = _encoded_pairs(model, seed=4)
  other_v = model.encode_paintings(*_paintings(seed=5)[:2], region_mask)
  logits = model.classify(v, region_mask, w, word_mask)
  other_logits = model.classify(other_v, region_mask, w, word_mask)
  assert np.allclose(logits, other_logits, atol=1e-6) == (inputs == 'text')


def test_word_embeddings_initialise_the_table_and_must_fit():
  config = test_config.get_config()
  table = np.random.default_rng(0).normal(
      size=(VOCAB, config.model.word_dim)).astype(np.float32)
  spec = model_lib.ModelSpec.from_config(config)
  model = model_lib.ArtpediaModel(spec, vocab_size=VOCAB, feature_dim=FEATURES,
                                  rngs=nnx.Rngs(0), word_embeddings=table)
  np.testing.assert_array_equal(model.word_embedding.embedding[...], table)
  with pytest.raises(ValueError, match='word_dim'):
    model_lib.ArtpediaModel(spec, vocab_size=VOCAB + 1, feature_dim=FEATURES,
                            rngs=nnx.Rngs(0), word_embeddings=table)


def test_log_temperature_starts_at_the_configured_temperature():
  model = _model()
  np.testing.assert_allclose(jnp.exp(model.log_temperature[...]), 0.07, rtol=1e-6)


def test_jitted_loss_gives_finite_gradients_to_every_parameter():
  """Only nnx.Param state, all of it trained by ranking + classification."""
  model = _model(score='scan_t2i')
  features, boxes, region_mask = _paintings(seed=6)
  tokens = _tokens([4, 2, 6], max_words=8)
  same_painting = np.eye(3, dtype=bool)

  @nnx.jit
  def grads(model):
    def loss_fn(model):
      v = model.encode_paintings(features, boxes, region_mask)
      w, word_mask = model.encode_sentences(tokens)
      scores = model.pairwise_scores(v, region_mask, w, word_mask, block_size=2)
      rank = losses.infonce_loss(scores, same_painting, model.log_temperature[...])
      logits = model.classify(v, region_mask, w, word_mask)
      cls, _ = losses.classification_loss(
          logits, jnp.array([1.0, 0.0, 1.0]), jnp.ones(3, bool), pos_weight=1.0)
      return rank + cls
    return nnx.grad(loss_fn)(model)

  leaves = jax.tree.leaves(grads(model))
  assert len(leaves) == len(jax.tree.leaves(nnx.state(model)))
  assert len(leaves) == len(jax.tree.leaves(nnx.state(model, nnx.Param)))
  for leaf in leaves:
    assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


def test_spec_from_config_carries_every_model_key():
  config = test_config.get_config()
  config.model.update(embed_dim=48, score='scan_t2i', classifier_inputs='text',
                      dropout=0.3, word_dropout=0.2)
  config.loss.init_temperature = 0.05
  spec = model_lib.ModelSpec.from_config(config)
  assert (spec.embed_dim, spec.score, spec.classifier_inputs) == (48, 'scan_t2i', 'text')
  assert (spec.dropout, spec.word_dropout, spec.init_temperature) == (0.3, 0.2, 0.05)
  assert spec.backbone is None
  model = model_lib.ArtpediaModel(spec, vocab_size=VOCAB, feature_dim=FEATURES,
                                  rngs=nnx.Rngs(0))
  assert model.embed_dim == 48 and model.classifier_hidden.in_features == 48


def test_word_dropout_turns_only_real_words_into_unk():
  tokens = _tokens([9, 3, 12], max_words=12, seed=1)
  dropped = np.asarray(model_lib.word_dropout(tokens, 0.5, jax.random.key(0)))
  real = tokens != 0
  np.testing.assert_array_equal(dropped[~real], 0)
  changed = dropped != tokens
  assert np.all(dropped[changed] == 1) and 0 < changed.sum() < real.sum()
  np.testing.assert_array_equal(model_lib.word_dropout(tokens, 0.5, None), tokens)


def test_dropout_acts_with_a_key_only():
  """Training (a key): the encoding depends on the key; evaluation (no key): it is
  deterministic and equal to the same parameters without dropout."""
  regularised = _model(dropout=0.5, word_dropout=0.25)
  plain = _model()
  tokens = _tokens([5, 2, 6], max_words=6)
  w1, _ = regularised.encode_sentences(tokens, dropout_key=jax.random.key(1))
  w1_again, _ = regularised.encode_sentences(tokens, dropout_key=jax.random.key(1))
  w2, _ = regularised.encode_sentences(tokens, dropout_key=jax.random.key(2))
  np.testing.assert_array_equal(w1, w1_again)
  assert not np.allclose(w1, w2, atol=1e-3)
  w_eval, _ = regularised.encode_sentences(tokens)
  np.testing.assert_array_equal(w_eval, plain.encode_sentences(tokens)[0])
  w_no_rate, _ = plain.encode_sentences(tokens, dropout_key=jax.random.key(1))
  np.testing.assert_array_equal(w_no_rate, w_eval)
