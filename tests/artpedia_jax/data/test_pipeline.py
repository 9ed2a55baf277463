"""Training iterator and eval split loader, on an in-memory source of dataset records."""

import collections
import itertools
import json

import numpy as np
import pytest

from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import sentence_packing
from artpedia_jax.data import vocab as vocab_lib
from configs import test as test_config
from tfds_artpedia import tfds_artpedia_dataset_builder as builder_lib


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)

FEATURE_DIM = 5
NUM_RECORDS = 12
# Visual sentences per record cycle 1..4 (30 in all); contextual ones include none at all.
NUM_VISUAL = [1, 2, 3, 4] * 3
NUM_CONTEXTUAL = [0, 3, 1, 6] * 3
NUM_REGIONS = [0, 3, 8, 11] * 3
NUM_PAIRS = sum(NUM_VISUAL)


def _record(i: int) -> dict:
  """A record as `tfds.data_source` returns it: text as bytes, numpy arrays."""
  visual = [f'visual {i} {j} red circle'.encode() for j in range(NUM_VISUAL[i])]
  contextual = [f'painted in {1500 + j} by painter {i}'.encode()
                for j in range(NUM_CONTEXTUAL[i])]
  regions = np.arange(NUM_REGIONS[i], dtype=np.float32)[:, None] + 100 * i
  return {
      'id': str(1000 + i).encode(), 'title': f'Painting {i}'.encode(), 'year': np.int32(-1),
      'sentences': np.asarray(visual + contextual, object),
      'is_visual': np.asarray([True] * len(visual) + [False] * len(contextual)),
      'image': b'undecoded jpeg',
      'regions': {'features': np.repeat(regions, FEATURE_DIM, axis=1),
                  'boxes': np.tile([0.0, 0.0, 0.5, 0.5], [NUM_REGIONS[i], 1]).astype(np.float32)},
  }


@pytest.fixture(name='source', scope='module')
def _source():
  return [_record(i) for i in range(NUM_RECORDS)]


@pytest.fixture(name='vocab', scope='module')
def _vocab(source):
  return vocab_lib.build_from_source(source, min_count=1)


def _config(batch_size: int = 6, num_workers: int = 0):
  config = test_config.get_config()
  config.batch_size = batch_size
  config.dataset.num_workers = num_workers
  config.dataset.prefetch_batches = 2
  return config


def _batches(config, source, vocab, steps, *, process_index=0, process_count=1, seed=0):
  iterator = pipeline.train_iterator(_inputs(config), source, vocab, process_index=process_index,
                                     process_count=process_count, seed=seed)
  return [next(iterator) for _ in range(steps)]


def _pairs_seen(batches, source, vocab, config):
  """(record, sentence index) of every batch row, recovered from painting and tokens."""
  seen = []
  for batch in batches:
    for painting, tokens in zip(batch['painting'], batch['tokens']):
      sentences = vocab.batch_encode(source[painting]['sentences'], config.dataset.max_words)
      (match,) = np.flatnonzero((sentences == tokens).all(axis=1))
      seen.append((int(painting), int(match)))
  return seen


def test_visual_pair_index(source):
  pairs = pipeline.visual_pair_index(source)
  assert pairs.shape == (NUM_PAIRS, 2)
  assert collections.Counter(pairs[:, 0].tolist()) == dict(enumerate(NUM_VISUAL))
  assert all(source[i]['is_visual'][j] for i, j in pairs)


def test_steps_per_epoch():
  assert pipeline.steps_per_epoch(30, 6) == 5
  assert pipeline.steps_per_epoch(31, 6) == 5
  assert pipeline.steps_per_epoch(4, 6) == 1
  with pytest.raises(ValueError, match='no visual sentence'):
    pipeline.steps_per_epoch(0, 6)


def test_batch_shapes_padding_and_truncation(source, vocab):
  config = _config()
  r, t = config.dataset.max_regions, config.dataset.max_words
  k = config.dataset.cls_sentences - 1
  (batch,) = _batches(config, source, vocab, steps=1)
  expected = {
      'regions': ((6, r, FEATURE_DIM), np.float32), 'boxes': ((6, r, 4), np.float32),
      'region_mask': ((6, r), np.bool_), 'tokens': ((6, t), np.int32),
      'painting': ((6,), np.int32), 'cls_tokens': ((6, k, t), np.int32),
      'cls_labels': ((6, 1 + k), np.float32), 'cls_mask': ((6, 1 + k), np.bool_),
  }
  rows = batch['packed_sentence'].shape[1]  # one device: one layout
  expected |= {key: ((1, rows, t), np.int32) for key in sentence_packing.KEYS}
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
  assert rows < 6 * (1 + k)  # several sentences share a row
  for i, painting in enumerate(batch['painting']):
    num = min(NUM_REGIONS[painting], r)
    np.testing.assert_array_equal(batch['region_mask'][i], np.arange(r) < num)
    # Truncation keeps the first regions; padding is zero.
    np.testing.assert_array_equal(batch['regions'][i, :, 0],
                                  np.where(np.arange(r) < num, np.arange(r) + 100 * painting, 0))
    np.testing.assert_array_equal(batch['boxes'][i, num:], 0.0)
  assert (batch['tokens'] != 0).any(axis=1).all()


def test_every_visual_sentence_once_per_epoch_on_one_process(source, vocab):
  config = _config()
  steps = NUM_PAIRS // config.batch_size
  batches = _batches(config, source, vocab, steps=2 * steps)
  seen = _pairs_seen(batches, source, vocab, config)
  all_pairs = sorted(map(tuple, pipeline.visual_pair_index(source).tolist()))
  first, second = seen[:NUM_PAIRS], seen[NUM_PAIRS:]
  assert sorted(first) == all_pairs and sorted(second) == all_pairs
  assert first != second  # each epoch is reshuffled


@pytest.mark.parametrize('process_count', [2, 3])
def test_processes_get_disjoint_shards_of_the_global_batches(source, vocab, process_count):
  config = _config()
  steps = NUM_PAIRS // config.batch_size
  single = _batches(config, source, vocab, steps=steps)
  shards = [_batches(config, source, vocab, steps=steps, process_index=p,
                     process_count=process_count) for p in range(process_count)]
  for step in range(steps):
    for key, value in single[step].items():
      if key in sentence_packing.KEYS:  # per device: see the packing test
        continue
      joined = np.concatenate([shard[step][key] for shard in shards])
      np.testing.assert_array_equal(joined, value, err_msg=key)
  seen = [_pairs_seen(shard, source, vocab, config) for shard in shards]
  for a, b in itertools.combinations(seen, 2):
    assert not set(a) & set(b)
  union = sorted(pair for shard in seen for pair in shard)
  assert union == sorted(map(tuple, pipeline.visual_pair_index(source).tolist()))


def test_same_seed_same_batches_other_seed_other_order(source, vocab):
  config = _config()
  first = _batches(config, source, vocab, steps=3, seed=7)
  again = _batches(config, source, vocab, steps=3, seed=7)
  other = _batches(config, source, vocab, steps=3, seed=8)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert any((a['painting'] != b['painting']).any() for a, b in zip(first, other))


def _classifier_tokens(batch, i):
  """Row i's classifier sentences: slot 0 the ranking sentence, then `cls_tokens`."""
  return np.concatenate([batch['tokens'][i][None], batch['cls_tokens'][i]])


@pytest.mark.parametrize('cls_sentences', [1, 2, 4])
def test_classifier_sentences_are_balanced_and_labelled(source, vocab, cls_sentences):
  config = _config()
  config.dataset.cls_sentences = c = cls_sentences
  t = config.dataset.max_words
  batches = _batches(config, source, vocab, steps=NUM_PAIRS // config.batch_size)
  for batch in batches:
    assert batch['cls_tokens'].shape[1] == pipeline.extra_cls_sentences(c)
    for i, painting in enumerate(batch['painting']):
      record = source[painting]
      mask, labels = batch['cls_mask'][i], batch['cls_labels'][i]
      classifier = _classifier_tokens(batch, i)
      num_visual, num_contextual = NUM_VISUAL[painting], NUM_CONTEXTUAL[painting]
      assert mask.sum() == min(c, num_visual + num_contextual)
      assert labels[mask].sum() == min(num_visual, max(c // 2, c - num_contextual))
      assert (labels[~mask] == 0).all() and (classifier[1:][~mask[1:]] == 0).all()
      # The ranking sentence is a classifier sentence whenever a visual one is drawn.
      assert mask[0] == (labels[mask].sum() > 0)
      if num_visual and num_contextual and c > 1:
        assert 0 < labels[mask].sum() < mask.sum()
      sentences = vocab.batch_encode(record['sentences'], t)
      for tokens, label in zip(classifier[mask], labels[mask]):
        (j,) = np.flatnonzero((sentences == tokens).all(axis=1))
        assert label == record['is_visual'][j]
      # No sentence drawn twice.
      assert len({tuple(x) for x in classifier[mask]}) == mask.sum()


@pytest.mark.parametrize('cls_sentences', [1, 2, 4])
def test_classifier_visual_shares_are_the_splits_and_what_an_epochs_draws_hold(
    source, vocab, cls_sentences):
  config = _config()
  config.dataset.cls_sentences = cls_sentences
  epoch = _batches(config, source, vocab, steps=NUM_PAIRS // config.batch_size)
  drawn = np.concatenate([b['cls_labels'][b['cls_mask']] for b in epoch])
  table = pipeline.sentence_table(source, vocab, config.dataset.max_words)
  split_share, sampled_share = pipeline.classifier_visual_shares(
      table, pipeline.visual_pair_index(source), cls_sentences)
  assert split_share == sum(NUM_VISUAL) / (sum(NUM_VISUAL) + sum(NUM_CONTEXTUAL))
  np.testing.assert_allclose(sampled_share, drawn.astype(np.float64).mean(), rtol=1e-12)
  if cls_sentences > 1:  # visual sentences are over-represented (one alone: contextual)
    assert sampled_share > split_share


def test_batches_are_padded_to_the_global_batch_bucket(source, vocab):
  """Sentences of 5 and 6 words: buckets (4, 8) pad to 8 words on every process, and
  cutting removes padding only."""
  config = _config()
  full = _batches(config, source, vocab, steps=3)
  config.dataset.length_buckets = (4, 8)
  for process_index in range(2):
    shards = _batches(config, source, vocab, steps=3, process_index=process_index,
                      process_count=2)
    for whole, shard in zip(full, shards):
      rows = slice(3 * process_index, 3 * process_index + 3)
      for key in ('tokens', 'cls_tokens'):
        assert shard[key].shape[-1] == 8
        np.testing.assert_array_equal(shard[key], whole[key][rows, ..., :8])
        assert (whole[key][..., 8:] == 0).all()


def _matching_sentence(source, vocab, config, painting, tokens) -> int:
  """The index of the record's sentence whose every word `tokens` holds (one is)."""
  full = vocab.batch_encode(source[painting]['sentences'], config.dataset.max_words)
  width = tokens.shape[-1]
  (match,) = np.flatnonzero((full[:, :width] == tokens).all(axis=1)
                            & (full[:, width:] == 0).all(axis=1))
  return int(match)


def test_a_sentence_one_word_longer_than_a_bucket_keeps_every_word(source, vocab):
  """Visual sentences have 5 words and contextual ones 6: with buckets (5, 8) a batch
  drawing a 6-word sentence is padded to 8 and every sentence keeps all its words."""
  config = _config()
  config.dataset.length_buckets = (5, 8)
  widths = set()
  for batch in _batches(config, source, vocab, steps=6):
    sentences = np.concatenate([batch['tokens'][:, None], batch['cls_tokens']], axis=1)
    lengths = length_buckets.num_words(sentences)
    widths.add(sentences.shape[-1])
    assert sentences.shape[-1] == (5 if lengths.max() <= 5 else 8)
    for painting, row, used in zip(batch['painting'], sentences, lengths > 0):
      for tokens in row[used]:
        _matching_sentence(source, vocab, config, painting, tokens)
  assert widths == {5, 8} or widths == {8}


@pytest.mark.parametrize('process_count, local_devices', [(1, 1), (1, 3), (3, 1)])
def test_packing_holds_every_word_once_in_place_and_agrees_across_processes(
    source, vocab, process_count, local_devices):
  """Each device's layout puts every word of its sentences exactly once, contiguous and
  in order; the processes' layouts are slices of the one-process layout."""
  config = _config()
  (whole,) = _batches(config, source, vocab, steps=1)
  shards = process_count * local_devices
  layouts = []
  for process_index in range(process_count):
    iterator = pipeline.train_iterator(_inputs(config), source, vocab,
                                       process_index=process_index,
                                       process_count=process_count, seed=0,
                                       local_devices=local_devices)
    batch = next(iterator)
    layouts.append(batch)
    sentences = np.concatenate([batch['tokens'][:, None], batch['cls_tokens']], axis=1)
    per_shard = sentences.reshape(local_devices, -1, sentences.shape[-1])
    for tokens, sentence, position in zip(per_shard, batch['packed_sentence'],
                                          batch['packed_position']):
      for n, words in enumerate(length_buckets.num_words(tokens)):
        rows, columns = np.nonzero(sentence == n)
        assert len(set(rows)) <= 1 and np.all(np.diff(columns) == 1)
        np.testing.assert_array_equal(position[rows, columns], np.arange(words))
      assert np.all(position[sentence == len(tokens)] == 0)
  rows = {layout['packed_sentence'].shape[1] for layout in layouts}
  assert len(rows) == 1  # every process agrees on the global row count
  if shards == 1:
    for key in sentence_packing.KEYS:
      np.testing.assert_array_equal(layouts[0][key], whole[key])


def test_pairs_of_one_record_share_the_painting_value(source, vocab):
  config = _config()
  batches = _batches(config, source, vocab, steps=NUM_PAIRS // config.batch_size)
  seen = _pairs_seen(batches, source, vocab, config)
  by_painting = collections.Counter(painting for painting, _ in seen)
  assert by_painting == dict(enumerate(NUM_VISUAL))
  for batch in batches:
    for i, j in itertools.combinations(range(len(batch['painting'])), 2):
      if batch['painting'][i] == batch['painting'][j]:
        np.testing.assert_array_equal(batch['regions'][i], batch['regions'][j])


def _assert_same_batches(expected, actual):
  assert len(expected) == len(actual)
  for a, b in zip(expected, actual):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_restored_iterator_continues_like_the_uninterrupted_one(source, vocab):
  config = _config()
  iterator = pipeline.train_iterator(_inputs(config), source, vocab, process_index=1,
                                     process_count=2, seed=3)
  for _ in range(4):
    next(iterator)
  state = json.loads(json.dumps(iterator.get_state()))  # as the checkpoint stores it
  expected = [next(iterator) for _ in range(7)]  # crosses an epoch boundary
  restored = pipeline.train_iterator(_inputs(config), source, vocab, process_index=1,
                                     process_count=2, seed=3)
  restored.set_state(state)
  _assert_same_batches(expected, [next(restored) for _ in range(7)])


def test_worker_processes_give_the_same_batches_and_restore(source, vocab):
  in_process = _batches(_config(), source, vocab, steps=9)
  iterator = pipeline.train_iterator(_inputs(_config(num_workers=2)), source, vocab,
                                     process_index=0, process_count=1, seed=0)
  try:
    _assert_same_batches(in_process[:3], [next(iterator) for _ in range(3)])
    state = iterator.get_state()
    _assert_same_batches(in_process[3:9], [next(iterator) for _ in range(6)])
    iterator.set_state(state)
    _assert_same_batches(in_process[3:9], [next(iterator) for _ in range(6)])
  finally:
    iterator.close()


def test_rejects_batch_not_divisible_by_processes(source, vocab):
  with pytest.raises(ValueError, match='not divisible'):
    pipeline.train_iterator(_inputs(_config(batch_size=7)), source, vocab, process_index=0,
                            process_count=2, seed=0)


def test_load_eval_split(source, vocab):
  config = _config()
  split = eval_split.load_eval_split(_inputs(config), source, vocab)
  r, t = config.dataset.max_regions, config.dataset.max_words
  num_sentences = sum(NUM_VISUAL) + sum(NUM_CONTEXTUAL)
  assert split.paintings['regions'].shape == (NUM_RECORDS, r, FEATURE_DIM)
  assert split.paintings['boxes'].shape == (NUM_RECORDS, r, 4)
  np.testing.assert_array_equal(split.paintings['region_mask'].sum(1), np.minimum(NUM_REGIONS, r))
  assert split.tokens.shape == (num_sentences, t) and split.tokens.dtype == np.int32
  assert split.painting_ids[3] == '1003' and split.titles[3] == 'Painting 3'
  assert split.sentence_texts[0] == 'visual 0 0 red circle'
  np.testing.assert_array_equal(np.bincount(split.sentence_painting),
                                np.add(NUM_VISUAL, NUM_CONTEXTUAL))
  assert split.is_visual.sum() == NUM_PAIRS
  for s in range(num_sentences):
    record = source[split.sentence_painting[s]]
    j = list(record['sentences']).index(split.sentence_texts[s].encode())
    assert split.is_visual[s] == record['is_visual'][j]
  np.testing.assert_array_equal(split.tokens[0], vocab.encode('visual 0 0 red circle', t))


def test_feature_dim(source):
  assert painting_inputs.feature_dim(source) == FEATURE_DIM


def test_open_source_reads_the_built_dataset_without_decoding_images(tmp_path_factory):
  """The real builder, tiny: records match the in-memory ones the other tests use."""
  data_dir = tmp_path_factory.mktemp('tfds')
  builder_lib.Artpedia(config='sample', data_dir=data_dir, num_paintings=10,
                          file_format='array_record').download_and_prepare()
  config = _config()
  config.dataset.data_dir = str(data_dir)
  source = pipeline.open_source(_inputs(config), 'train')
  assert isinstance(source[0]['image'], bytes)
  assert pipeline.open_source(_inputs(config), 'train', decode_images=True)[0]['image'].ndim == 3
  vocab = vocab_lib.build_from_source(source, min_count=1)
  (batch,) = _batches(config, source, vocab, steps=1)
  assert batch['regions'].shape == (6, config.dataset.max_regions,
                                    painting_inputs.feature_dim(source))
  assert batch['region_mask'].any(axis=1).all() and (batch['tokens'] != 0).any(axis=1).all()
  split = eval_split.load_eval_split(_inputs(config), source, vocab)
  assert split.is_visual.sum() == len(pipeline.visual_pair_index(source))



def test_sentences_without_words_leave_the_pairs_and_retrieval_only(source, vocab):
  record = dict(source[1])
  record['sentences'] = np.asarray([b'?!', *source[1]['sentences'][1:], b'...'], object)
  record['is_visual'] = np.asarray([True, *source[1]['is_visual'][1:], False])
  with_empty = [source[0], record]
  pairs = pipeline.visual_pair_index(with_empty)
  assert (1, 0) not in {tuple(p) for p in pairs}  # punctuation only: no ranking positive
  assert len(pairs) == NUM_VISUAL[0] + NUM_VISUAL[1] - 1
  split = eval_split.load_eval_split(_inputs(_config()), with_empty, vocab)
  empty = np.flatnonzero(~split.has_words)
  np.testing.assert_array_equal(split.sentence_texts[empty], ['?!', '...'])
  assert split.is_visual.size == len(source[0]['sentences']) + len(record['sentences'])
