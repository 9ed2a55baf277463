"""`bert_import.resolve`: a model folder or a Hugging Face hub id, and what is recorded.

Hub ids are resolved through `huggingface_hub` in a child process whose cache is a
folder the test fills (the hub's own cache layout) and whose network is off
(`HF_HUB_OFFLINE=1`): the cached snapshot is found, and an id that is not cached is one
error naming how to get the folder.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from artpedia_jax.data import wordpiece
from artpedia_jax.model import bert_import
from artpedia_jax.model import text_inputs
from tests.helpers import bert_fixtures
from tests.helpers import e2e_helpers

_REVISION = 'c0ffee' * 6 + 'c0ff'  # a commit hash, as the hub names snapshots
_RESOLVE = ('import json, sys; from artpedia_jax.model import bert_import; '
            'resolved = bert_import.resolve(sys.argv[1]); '
            'print(json.dumps({"folder": resolved.folder, **resolved.source}))')


def _digests(folder):
  return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
          for name in bert_import.MODEL_FILES}


def _resolve_offline(name, cache):
  return subprocess.run(
      [sys.executable, '-c', _RESOLVE, name], cwd=e2e_helpers.REPO, capture_output=True,
      text=True, timeout=120,
      env=dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE='1'))


def test_a_folder_resolves_to_itself_with_its_files_digests(tmp_path):
  folder = bert_fixtures.write_bert_folder(tmp_path / 'tiny-bert')

  resolved = bert_import.resolve(str(folder))

  assert resolved.folder == str(folder)
  assert resolved.source == {'folder': str(folder), 'sha256': _digests(folder)}


def test_a_cached_hub_id_resolves_offline_to_its_snapshot(tmp_path):
  repo = tmp_path / 'cache' / 'models--acme--tiny-bert'
  snapshot = bert_fixtures.write_bert_folder(repo / 'snapshots' / _REVISION)
  (repo / 'refs').mkdir()
  (repo / 'refs' / 'main').write_text(_REVISION)

  result = _resolve_offline('acme/tiny-bert', tmp_path / 'cache')

  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout) == {
      'folder': str(snapshot), 'hub_id': 'acme/tiny-bert', 'revision': _REVISION,
      'sha256': _digests(snapshot)}


def test_an_uncached_hub_id_offline_says_how_to_get_the_folder(tmp_path):
  result = _resolve_offline('acme/tiny-bert', tmp_path / 'empty-cache')

  assert result.returncode != 0
  message = result.stderr.strip().splitlines()[-1]
  assert "config.model.text_weights='acme/tiny-bert' is not in the Hugging Face cache" in (
      message)
  assert ('hf download acme/tiny-bert config.json model.safetensors tokenizer.json '
          '--local-dir DIR') in message


def test_paths_are_not_hub_ids(tmp_path):
  assert bert_import.is_hub_id('sentence-transformers/all-MiniLM-L6-v2')
  assert bert_import.is_hub_id('bert-base-uncased')
  assert not bert_import.is_hub_id(str(tmp_path))  # absolute, and exists
  assert not bert_import.is_hub_id('./models/minilm')
  assert not bert_import.is_hub_id('a/b/c')


def test_the_checkpoint_item_keeps_the_source_and_digests(tmp_path):
  folder = bert_fixtures.write_bert_folder(tmp_path / 'tiny-bert')
  resolved = bert_import.resolve(str(folder))
  inputs = text_inputs.TextInputs(
      wordpiece.WordPieceTokenizer.from_file(folder / 'tokenizer.json'),
      bert_import.read_config(folder), resolved.source, resolved.folder)

  saved = json.loads(json.dumps(inputs.to_json()))
  restored = text_inputs.TextInputs.from_json(saved)

  assert saved['bert_weights']['sha256'] == _digests(folder)
  assert restored.weights_source == inputs.weights_source
  assert restored.bert_config == inputs.bert_config
  assert restored.weights_folder is None  # a resumed run does not load the folder again


@pytest.mark.parametrize('config_json, expected', [
    ({}, (0.1, 0.1)),  # Hugging Face's defaults
    ({'hidden_dropout_prob': 0.2, 'attention_probs_dropout_prob': 0.0}, (0.2, 0.0)),
])
def test_dropout_rates_come_from_config_json(config_json, expected):
  data = {k: v for k, v in bert_fixtures.TINY_CONFIG.items() if 'dropout' not in k}
  config = bert_import.config_from_json(dict(data, vocab_size=21, **config_json))
  assert (config.hidden_dropout, config.attention_dropout) == expected
