"""Text inputs: the tokenizer a run uses, saved in its checkpoint and read back the same,
and a BERT folder whose tokenizer and config disagree refused with the reason."""

import dataclasses

import ml_collections
import pytest

from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.data import wordpiece
from artpedia_jax.model import bert_import
from artpedia_jax.model import text_inputs
from tests.helpers import bert_fixtures
from tests.helpers import train_fixtures

SENTENCES = ['A red circle left of a blue square.', 'The painting is in a museum.']


def _source():
  return [{'sentences': [s.encode() for s in SENTENCES]}]


def _bert_config(folder) -> ml_collections.ConfigDict:
  config = train_fixtures.tiny_config()
  config.model.text_encoder = 'bert'
  config.model.text_weights = str(folder)
  return config


def test_a_bigru_run_builds_its_vocabulary_from_the_training_split():
  config = train_fixtures.tiny_config()
  config.vocab.min_count = 1
  text = text_inputs.build(config, _source())
  assert isinstance(text.tokenizer, vocab_lib.Vocabulary) and text.bert_config is None
  assert 'circle' in text.tokenizer and 'museum' in text.tokenizer


def test_a_bigru_item_is_the_vocabulary_json_and_reads_back_equal():
  vocab = vocab_lib.build_from_source(_source(), min_count=1)
  saved = text_inputs.TextInputs(vocab).to_json()
  assert saved == vocab.to_json()  # as before BERT existed: old checkpoints still read
  restored = text_inputs.TextInputs.from_json(saved)
  assert restored.bert_config is None
  assert restored.tokenizer.batch_encode(SENTENCES, 12).tolist() == (
      vocab.batch_encode(SENTENCES, 12).tolist())


def test_a_bert_run_reads_the_folders_tokenizer_and_shape_and_reads_back_equal(tmp_path):
  folder = bert_fixtures.write_bert_folder(tmp_path / 'bert')
  text = text_inputs.build(_bert_config(folder), _source())
  assert isinstance(text.tokenizer, wordpiece.WordPieceTokenizer)
  assert text.bert_config == bert_import.read_config(folder)
  restored = text_inputs.TextInputs.from_json(text.to_json())
  assert restored.bert_config == text.bert_config
  assert restored.tokenizer.batch_encode(SENTENCES, 12).tolist() == (
      text.tokenizer.batch_encode(SENTENCES, 12).tolist())


def test_a_tokenizer_larger_than_the_models_embeddings_is_refused(tmp_path):
  folder = bert_fixtures.write_bert_folder(tmp_path / 'bert')
  text = text_inputs.build(_bert_config(folder), _source())
  small = dataclasses.replace(text.bert_config, vocab_size=len(text.tokenizer) - 1)
  with pytest.raises(ValueError, match='come from different models'):
    text_inputs.TextInputs(text.tokenizer, small)


def test_a_model_that_does_not_pad_with_id_0_is_refused(tmp_path):
  folder = bert_fixtures.write_bert_folder(tmp_path / 'bert')
  text = text_inputs.build(_bert_config(folder), _source())
  with pytest.raises(ValueError, match='pads with id 3'):
    text_inputs.TextInputs(text.tokenizer, dataclasses.replace(text.bert_config,
                                                               pad_token_id=3))
