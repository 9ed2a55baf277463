"""BERT encoder, Hugging Face weight import and word-piece tokenizer.

The encoder is checked against `bert_reference`, a float64 numpy forward written
independently of `bert.py`.
"""

import dataclasses
import json
import pickle

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.data import wordpiece
from artpedia_jax.evaluation import alignment
from artpedia_jax.model import bert
from artpedia_jax.model import bert_import
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step
from tests.helpers import bert_fixtures
from tests.helpers import bert_reference
from tests.helpers import train_fixtures


@pytest.fixture
def bert_folder(tmp_path):
  return bert_fixtures.write_bert_folder(tmp_path / 'tiny-bert')


def _loaded_encoder(folder, dtype=jnp.float32):
  encoder = bert.abstract_encoder(bert_import.read_config(folder), dtype)
  skipped = bert_import.import_bert_weights(encoder, bert_import.load_state_dict(folder))
  return encoder, skipped


def test_imported_encoder_matches_numpy_reference_with_padding(bert_folder):
  encoder, skipped = _loaded_encoder(bert_folder)
  tokenizer = wordpiece.WordPieceTokenizer.from_file(bert_folder / 'tokenizer.json')
  texts = ['The red circle, left of a blue square.', 'A painting.', 'Blue circles']
  ids = tokenizer.batch_encode(texts, max_len=14)
  mask = ids != tokenizer.pad_id
  assert not mask.all() and mask.sum(1).min() >= 3  # rows of several padded lengths

  actual = np.asarray(encoder(jnp.asarray(ids)))
  state = bert_import.load_state_dict(bert_folder)
  config = json.loads((bert_folder / 'config.json').read_text())
  expected = bert_reference.forward(ids, mask.astype(np.float64), state, config)

  np.testing.assert_allclose(actual[mask], expected[mask], atol=1e-5, rtol=1e-5)
  # Padding never reaches a real token: each sentence alone gives the same states.
  for row, text in enumerate(texts):
    alone = tokenizer.encode(text, max_len=int(mask[row].sum()))
    np.testing.assert_allclose(np.asarray(encoder(jnp.asarray(alone[None])))[0],
                               actual[row, mask[row]], atol=1e-5)
  assert 'bert.pooler.dense.weight' in skipped
  assert 'cls.predictions.bias' in skipped and 'cls.seq_relationship.weight' in skipped


def test_bfloat16_compute_stays_close_with_float32_params(bert_folder):
  full, _ = _loaded_encoder(bert_folder)
  half, _ = _loaded_encoder(bert_folder, jnp.bfloat16)
  ids = jnp.asarray([[2, 7, 8, 10, 3, 0]])

  reduced = half(ids)

  assert reduced.dtype == jnp.float32
  assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(half, nnx.Param))} == {
      jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(reduced, full(ids), atol=0.1)
  assert not np.allclose(reduced, full(ids), atol=1e-6)  # it did compute in bfloat16


def test_bare_keys_and_legacy_layer_norm_names_are_accepted(bert_folder):
  config = json.loads((bert_folder / 'config.json').read_text())
  state = bert_fixtures.random_state_dict(config, seed=3, prefix='', with_heads=False)
  legacy = {key.replace('LayerNorm.weight', 'LayerNorm.gamma')
            .replace('LayerNorm.bias', 'LayerNorm.beta'): value
            for key, value in state.items()}
  encoder = bert.abstract_encoder(bert_import.read_config(bert_folder))

  assert bert_import.import_bert_weights(encoder, legacy) == []

  np.testing.assert_array_equal(encoder.embeddings.norm.scale[...],
                                state['embeddings.LayerNorm.weight'])
  np.testing.assert_array_equal(encoder.layers[1].query.kernel[...],
                                state['encoder.layer.1.attention.self.query.weight'].T)


def test_import_lists_unknown_missing_and_mismatched_keys_together(bert_folder):
  state = bert_import.load_state_dict(bert_folder)
  del state['bert.encoder.layer.1.output.dense.bias']
  state['bert.encoder.layer.0.attention.self.key.weight'] = np.zeros((16, 8), np.float32)
  state['bert.encoder.layer.7.output.dense.bias'] = np.zeros(16, np.float32)
  state['encoder.layer.0.intermediate.dense.bias'] = np.zeros(24, np.float32)
  encoder = bert.abstract_encoder(bert_import.read_config(bert_folder))

  with pytest.raises(bert_import.BertImportError) as error:
    bert_import.import_bert_weights(encoder, state)

  message = str(error.value)
  assert 'unknown keys (1): bert.encoder.layer.7.output.dense.bias' in message
  assert 'missing keys (1): encoder.layer.1.output.dense.bias' in message
  assert ('keys given twice (1): bert.encoder.layer.0.intermediate.dense.bias and '
          'encoder.layer.0.intermediate.dense.bias') in message
  assert ('shape mismatches (1): bert.encoder.layer.0.attention.self.key.weight: '
          'checkpoint (16, 8), model expects (16, 16)') in message


@pytest.mark.parametrize('change, expected', [
    ({'model_type': 'roberta'}, "model_type 'roberta' is not a BERT layout"),
    ({'hidden_act': 'relu'}, "hidden_act 'relu' is not supported"),
    ({'position_embedding_type': 'relative_key'}, 'only "absolute"'),
    ({'num_hidden_layers': None}, 'lacks num_hidden_layers'),
])
def test_unsupported_configs_are_rejected(tmp_path, change, expected):
  config = {k: v for k, v in bert_fixtures.TINY_CONFIG.items()}
  config['vocab_size'] = 21
  config.update(change)
  config = {k: v for k, v in config.items() if v is not None}
  (tmp_path / 'config.json').write_text(json.dumps(config))

  with pytest.raises(bert_import.BertImportError, match=expected):
    bert_import.read_config(tmp_path)


def test_missing_and_unreadable_files_are_named(tmp_path, bert_folder):
  with pytest.raises(bert_import.BertImportError, match='has no config.json'):
    bert_import.read_config(tmp_path)
  (bert_folder / 'model.safetensors').write_bytes(b'not safetensors')
  with pytest.raises(bert_import.BertImportError, match='could not be read as safetensors'):
    bert_import.load_state_dict(bert_folder)


def test_parameter_count_at_bert_base_size_is_the_public_figure():
  encoder = bert.abstract_encoder(bert.BERT_BASE)
  hidden, inner, vocab, positions = 768, 3072, 30522, 512
  embeddings = (vocab + positions + 2) * hidden + 2 * hidden
  per_layer = 4 * (hidden * hidden + hidden) + (hidden * inner + inner) \
      + (inner * hidden + hidden) + 2 * 2 * hidden
  pooler = hidden * hidden + hidden

  assert bert.parameter_count(encoder) == embeddings + 12 * per_layer == 108_891_648
  # With the pooler (not part of the encoder): bert-base-uncased's published 109.48M.
  assert bert.parameter_count(encoder) + pooler == 109_482_240


def test_tokenizer_wraps_pieces_in_markers_truncates_and_keeps_sep(bert_folder):
  tokenizer = wordpiece.WordPieceTokenizer.from_file(bert_folder / 'tokenizer.json')
  vocab = json.loads((bert_folder / 'tokenizer.json').read_text())['model']['vocab']

  ids = tokenizer.encode('The RED Circles.', max_len=8)
  pieces = ['[CLS]', 'the', 'red', 'circle', '##s', '.', '[SEP]', '[PAD]']
  np.testing.assert_array_equal(ids, [vocab[p] for p in pieces])
  truncated = tokenizer.encode('The RED Circles.', max_len=5)
  np.testing.assert_array_equal(truncated, [vocab[p] for p in
                                            ['[CLS]', 'the', 'red', 'circle', '[SEP]']])
  assert tokenizer.count_truncated(['The RED Circles.', 'a'], max_len=5) == 1
  np.testing.assert_array_equal(tokenizer.batch_encode(['The RED Circles.'], 8)[0], ids)
  assert tokenizer.alignment_words('The RED Circles.', max_len=8) == [
      ('The', [1]), ('RED', [2]), ('Circles', [3, 4]), ('.', [5])]
  assert tokenizer.alignment_words('The RED Circles.', max_len=5) == [
      ('The', [1]), ('RED', [2]), ('Circle', [3])]  # the kept pieces' text
  # what inference reports as unknown: a word with no pieces, or an [UNK] piece
  assert 'Circles' in tokenizer and 'painting' in tokenizer
  assert 'zebra' not in tokenizer and '' not in tokenizer


def test_tokenizer_survives_pickling_and_checkpoint_json(bert_folder):
  tokenizer = wordpiece.WordPieceTokenizer.from_file(bert_folder / 'tokenizer.json')
  saved = json.loads(json.dumps(tokenizer.to_json()))

  assert wordpiece.WordPieceTokenizer.is_saved_json(saved)
  for copy in (pickle.loads(pickle.dumps(tokenizer)),
               wordpiece.WordPieceTokenizer.from_json(saved)):
    np.testing.assert_array_equal(copy.encode('a red painting', 9),
                                  tokenizer.encode('a red painting', 9))


def test_word_piece_mask_drops_the_markers():
  ids = jnp.asarray([[2, 9, 10, 3, 0, 0], [2, 9, 3, 0, 0, 0]])
  np.testing.assert_array_equal(bert.word_piece_mask(ids != 0),
                                [[0, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]])


def _bert_model(bert_folder, **model_overrides):
  config = train_fixtures.tiny_config(text_encoder='bert', text_weights=str(bert_folder),
                                      **model_overrides)
  return config, model_lib.init_model(
      model_lib.ModelSpec.from_config(config), vocab_size=0,
      feature_dim=train_fixtures.FEATURE_DIM, rngs=nnx.Rngs(0),
      bert_config=bert_import.read_config(bert_folder), text_weights=str(bert_folder))


def test_model_word_vectors_are_unit_pieces_without_markers(bert_folder):
  _, model = _bert_model(bert_folder)
  tokenizer = wordpiece.WordPieceTokenizer.from_file(bert_folder / 'tokenizer.json')
  tokens = tokenizer.batch_encode(['a red circle', 'the blue squares left'], 8)

  w, word_mask = model.encode_sentences(jnp.asarray(tokens))

  np.testing.assert_array_equal(word_mask, [[0, 1, 1, 1, 0, 0, 0, 0],
                                            [0, 1, 1, 1, 1, 1, 0, 0]])
  np.testing.assert_allclose(np.linalg.norm(w, axis=-1), word_mask, atol=1e-6)
  state = bert_import.load_state_dict(bert_folder)  # the imported weights are in use
  np.testing.assert_array_equal(model.bert.embeddings.word.embedding[...],
                                state['bert.embeddings.word_embeddings.weight'])


def test_bert_parameters_get_the_text_rate_and_lower_layers_freeze(bert_folder):
  config, model = _bert_model(bert_folder, text_frozen_layers=1)
  params = model_lib.split(model)[1]['params']

  labels = optim.parameter_labels(params, text_frozen_layers=1)

  bert_labels = labels.pop(model_lib.BERT_ENCODER)
  assert set(jax.tree.leaves(bert_labels['embeddings'])) == {optim.FROZEN}
  assert set(jax.tree.leaves(bert_labels['layers'][0])) == {optim.FROZEN}
  assert set(jax.tree.leaves(bert_labels['layers'][1])) == {optim.TEXT}
  assert set(jax.tree.leaves(labels)) == {optim.HEAD}  # the projection included
  config.optimizer.warmup_steps = 0  # a non-zero rate at the first update
  tx = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=10).tx
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  frozen = updates[model_lib.BERT_ENCODER]['embeddings']['word']['embedding']
  assert not np.any(frozen)
  assert np.any(updates[model_lib.BERT_ENCODER]['layers'][1]['query']['kernel'])


def test_report_merges_word_pieces_by_the_mean_of_their_scores():
  token_scores = np.array([[9.0, 9.0], [0.1, 0.5], [0.9, 0.1], [0.4, 0.5], [9.0, 9.0]])
  words, scores = alignment.merge_pieces([('Red', [1]), ('circles', [2, 3])], token_scores)

  assert words == ['Red', 'circles']
  np.testing.assert_allclose(scores, [[0.1, 0.5], [0.65, 0.3]])
  aligned = alignment.word_alignment(words, scores, np.eye(2, 4))
  assert [a.box for a in aligned] == [(0.0, 1.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)]


def _tiny_batch(config, bert_folder):
  """A training batch whose tokens are the tiny BERT's ids ([CLS] pieces [SEP] [PAD]...)."""
  batch = train_fixtures.synthetic_batch(config, batch_size=8)
  vocab_size = bert_import.read_config(bert_folder).vocab_size
  pieces = len(bert_fixtures.SPECIAL_TOKENS)
  for key in ('tokens', 'cls_tokens'):
    tokens = batch[key]
    batch[key] = np.where(tokens > 0, tokens % (vocab_size - pieces) + pieces, 0)
  return batch


def test_dropout_is_bert_own_on_only_with_a_key_and_keyed(bert_folder):
  config = bert_import.read_config(bert_folder)
  assert (config.hidden_dropout, config.attention_dropout) == (0.1, 0.1)  # config.json's
  ids = jnp.asarray(wordpiece.WordPieceTokenizer.from_file(
      bert_folder / 'tokenizer.json').batch_encode(['a red circle', 'the blue square'], 8))

  def encode(key=None, **rates):
    encoder = bert.abstract_encoder(dataclasses.replace(config, **rates))
    bert_import.import_bert_weights(encoder, bert_import.load_state_dict(bert_folder))
    return np.asarray(encoder(ids, dropout_key=key))

  plain = encode()
  np.testing.assert_array_equal(encode(hidden_dropout=0.0, attention_dropout=0.0), plain)
  key, other = jax.random.key(0), jax.random.key(1)
  dropped = encode(key)
  np.testing.assert_array_equal(encode(key), dropped)  # a function of the key only
  assert not np.allclose(dropped, plain) and not np.allclose(encode(other), dropped)
  np.testing.assert_array_equal(encode(key, hidden_dropout=0.0, attention_dropout=0.0),
                                plain)  # rate 0: no effect even in training
  for rates in ({'hidden_dropout': 0.0}, {'attention_dropout': 0.0}):
    assert not np.allclose(encode(key, **rates), plain), rates  # each rate acts alone


def test_bert_dropout_follows_the_training_step(bert_folder):
  config, model = _bert_model(bert_folder)
  batch = _tiny_batch(config, bert_folder)
  loss = lambda step: float(train_step.objective(
      model, batch, train_fixtures.step_spec(config), step=step)[0])
  assert loss(3) == loss(3) and loss(3) != loss(4)


def test_frozen_layers_get_zero_gradients_and_stay_out_of_the_clip_norm(bert_folder):
  config, frozen_model = _bert_model(bert_folder, text_frozen_layers=1)
  _, free_model = _bert_model(bert_folder)  # the same parameters, nothing frozen
  batch = _tiny_batch(config, bert_folder)
  graphdef, variables = model_lib.split(frozen_model)
  params = variables['params']
  labels = optim.parameter_labels(params, text_frozen_layers=1)

  def gradients(model):
    graph, state = model_lib.split(model)
    return jax.jit(jax.grad(lambda p: train_step.objective(
        model_lib.merge(graph, {'params': p, 'model_state': {}}), batch,
        train_fixtures.step_spec(config), step=0)[0]))(state['params'])

  def norm(grads, keep):
    return np.sqrt(sum(np.sum(np.square(g)) for g, label in
                       zip(jax.tree.leaves(grads), jax.tree.leaves(labels)) if keep(label)))

  frozen_grads, free_grads = gradients(frozen_model), gradients(free_model)
  is_frozen = lambda label: label == optim.FROZEN
  assert norm(frozen_grads, is_frozen) == 0  # exactly: no gradient reaches them
  assert norm(free_grads, is_frozen) > 0  # what they would get without the boundary
  for got, expected, label in zip(jax.tree.leaves(frozen_grads),
                                  jax.tree.leaves(free_grads), jax.tree.leaves(labels)):
    if not is_frozen(label):  # the trainable parameters' gradients are unchanged
      np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)

  # The step clips (and logs) the norm of the trainable gradients alone.
  config.optimizer.grad_clip_norm = 1e-3
  mesh = sharding.make_mesh(jax.devices()[:1])
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=10)
  step = train_step.make_train_step(graphdef, optimizer,
                                    train_fixtures.step_spec(config), mesh)
  state = sharding.replicate(mesh, train_step.init_state(variables, optimizer.tx))
  _, metrics = step(state, sharding.global_batch(mesh, batch))
  np.testing.assert_allclose(float(metrics['grad_norm']),
                             norm(free_grads, lambda label: not is_frozen(label)),
                             rtol=1e-4)


def test_cls_pooling_feeds_the_cls_vector_to_the_classifier_only(bert_folder):
  _, mean_model = _bert_model(bert_folder, classifier_inputs='text')
  _, cls_model = _bert_model(bert_folder, classifier_inputs='text', sentence_pooling='cls')
  tokenizer = wordpiece.WordPieceTokenizer.from_file(bert_folder / 'tokenizer.json')
  tokens = jnp.asarray(tokenizer.batch_encode(['a red circle', 'the blue squares'], 8))

  w_mean, mask = mean_model.encode_sentences(tokens)
  w_cls, cls_mask = cls_model.encode_sentences(tokens)

  np.testing.assert_array_equal(cls_mask, mask)  # [CLS] is still not a word
  np.testing.assert_array_equal(w_cls[:, 1:], w_mean[:, 1:])
  assert not np.any(w_mean[:, 0])
  projected = cls_model.text_projection(cls_model.bert(tokens))[:, 0]
  cls_vector = projected / jnp.linalg.norm(projected, axis=-1, keepdims=True)
  np.testing.assert_allclose(w_cls[:, 0], cls_vector, atol=1e-6)

  v = jnp.ones((2, 3, cls_model.embed_dim)) / np.sqrt(cls_model.embed_dim)
  rmask = jnp.ones((2, 3), bool)
  hidden = jax.nn.relu(cls_model.classifier_hidden(cls_vector))
  np.testing.assert_allclose(cls_model.classify(v, rmask, w_cls, mask),
                             cls_model.classifier_out(hidden)[:, 0], atol=1e-6)
  assert not np.allclose(cls_model.classify(v, rmask, w_cls, mask),
                         mean_model.classify(v, rmask, w_mean, mask))
  np.testing.assert_array_equal(  # the scorers read the words only
      cls_model.pairwise_scores(v, rmask, w_cls, mask, block_size=2),
      mean_model.pairwise_scores(v, rmask, w_mean, mask, block_size=2))


def test_real_minilm_matches_the_numpy_reference_on_a_padded_batch(minilm_folder):
  encoder, _ = _loaded_encoder(minilm_folder)
  tokenizer = wordpiece.WordPieceTokenizer.from_file(minilm_folder / 'tokenizer.json')
  texts = ['The Virgin, in a blue mantle, holds the Child on her lap before a landscape.',
           'Commissioned in 1503 by the Duke of Milan.',
           'St. Jerome reads by candlelight, his lion asleep at his feet, while a skull '
           'and an hourglass rest on the table beside the open book.']
  ids = tokenizer.batch_encode(texts, max_len=40)
  mask = ids != tokenizer.pad_id
  assert len(set(mask.sum(1))) == 3 and not mask.all()  # three padded lengths

  actual = np.asarray(encoder(jnp.asarray(ids)))
  expected = bert_reference.forward(
      ids, mask.astype(np.float64), bert_import.load_state_dict(minilm_folder),
      json.loads((minilm_folder / 'config.json').read_text()))

  np.testing.assert_allclose(actual[mask], expected[mask], atol=1e-5, rtol=1e-5)
