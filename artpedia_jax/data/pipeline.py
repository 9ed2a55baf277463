"""Training input pipeline: `tfds.data_source` (array_record) → grain batches of fixed shapes.

Training order. The visual sentences of the split, as (record, sentence) pairs, form one
*global* stream: each epoch is a fresh permutation of all pairs (grain's index shuffle,
re-seeded per epoch by `repeat`), and global batch k is positions [k·B, (k+1)·B) of that
stream. Process p keeps rows [p·b, (p+1)·b) of every global batch (b = B / process_count).
So the global batch does not depend on the number of processes, every visual sentence is a
positive exactly once per epoch, the processes' shards are disjoint, and an iterator's
position is a global batch count that grain checkpoints as `{"next_index": k}`. Batches may
straddle epoch boundaries (drop-remainder happens once, on the infinite stream).

The classifier's sentences are drawn with an RNG seeded by (seed, global position), so they
too are independent of the process count, of the worker count and of restarts. The ranking
sentence of a row fills one of its painting's visual classifier slots (slot 0, when there
is a visual slot), so the train step encodes it once for both losses: `tokens` [b, T] holds
the ranking sentences, `cls_tokens` [b, K, T] the classifier's other sentences
(K = `extra_cls_sentences(C)`), and `cls_labels` / `cls_mask` [b, 1 + K] describe slot 0
(the ranking sentence) then the K others.

Sentence lengths. A global batch's sentences are padded only to the smallest of
`dataset.length_buckets` (clipped to `max_words`) that holds the longest sentence the
*global* batch draws, and packed for the train step's encoders (`sentence_packing`: one
layout per device, `packed_sentence` and `packed_position` [local devices, rows, T]). The
word counts and labels of every record's sentences come from a scan made once
(`sentence_table`), so every process draws every row's classifier sentences (the RNG is
seeded by position) and finds the same width and row count without talking to the others.

Sentences become `dataset.max_words` token ids with the run's tokenizer
(`tokenizer_lib.Tokenizer`): the training split's word vocabulary for the bi-GRU, or a BERT
folder's word-piece tokenizer (`[CLS] pieces [SEP]`, see `wordpiece`); longer sentences
are truncated, and their count logged.

Per-example transforms are plain numpy and Pillow: no jax here.
"""

from collections.abc import Sequence
import dataclasses
from typing import Any

from absl import logging
import grain
import numpy as np
import tensorflow_datasets as tfds

from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import sentence_packing
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.data import vocab as vocab_lib

Record = dict[str, Any]
# Threads per process that read records and build batches: enough to overlap reading with
# the train step; more mostly contend for the GIL (workers are the way to scale).
_READ_THREADS = 2


def open_source(spec: input_spec.InputSpec, split: str, *,
                decode_images: bool = False) -> Sequence[Record]:
  """The random-access source of one split (build it first: `ensure_built.prepare(config)`).

  Training and evaluation use region features only, so the JPEG stays undecoded bytes
  (`tfds.decode.SkipDecoding` works on the numpy path, without TensorFlow); pass
  `decode_images=True` for the report's thumbnails.
  """
  # Importing the builder module registers 'artpedia' with TFDS.
  # pylint: disable-next=g-import-not-at-top,unused-import
  from tfds_artpedia import tfds_artpedia_dataset_builder
  decoders = None if decode_images else {'image': tfds.decode.SkipDecoding()}
  return tfds.data_source(spec.dataset_name, split=split, data_dir=spec.data_dir,
                         download=False, decoders=decoders)


def visual_labels(record: Record) -> np.ndarray:
  """bool [sentences]: the record's visual/contextual labels."""
  return np.asarray(record['is_visual'], bool).reshape([-1])


def visual_pair_index(source: Sequence[Record]) -> np.ndarray:
  """int64 [N, 2] of (record index, sentence index) for every visual sentence of `source`
  that has a word.

  A sentence without any word (punctuation only) scores 0 against every painting, so
  as a ranking positive it would only push every other score below -margin; it is left
  out of the pairs (and counted in the log), not out of the classifier's sentences.
  """
  pairs, num_without_words = [], 0
  for i in range(len(source)):
    record = source[i]
    for j in np.flatnonzero(visual_labels(record)):
      if vocab_lib.tokenize(record['sentences'][j]):
        pairs.append((i, j))
      else:
        num_without_words += 1
  if num_without_words:
    logging.info('%d visual sentences without any word left out of the ranking pairs.',
                 num_without_words)
  return np.asarray(pairs, np.int64).reshape([-1, 2])


def steps_per_epoch(num_pairs: int, batch_size: int) -> int:
  """Global batches per epoch of `num_pairs` positives (at least 1: tiny splits repeat)."""
  if num_pairs <= 0:
    raise ValueError('The training split has no visual sentence: nothing to train on.'
                     ' Check the dataset split (config.dataset.name, data_dir).')
  return max(1, num_pairs // batch_size)


def extra_cls_sentences(cls_sentences: int) -> int:
  """K, the classifier sentences a row carries besides its ranking sentence.

  With C >= 2 the ranking sentence is one of the C (a visual slot), so K = C - 1; with
  C = 1 the one classifier sentence is drawn like the others (a contextual one when the
  painting has one) and the ranking sentence takes part only if it is the one drawn.
  """
  return max(cls_sentences - 1, 1)


@dataclasses.dataclass(frozen=True)
class SentenceTable:
  """Each record's sentences as word counts (after truncation) and is_visual labels: what
  laying out a global batch needs, without reading its records (see the module docstring)."""
  lengths: tuple[np.ndarray, ...]  # int [sentences] per record
  is_visual: tuple[np.ndarray, ...]  # bool [sentences] per record


def sentence_table(source: Sequence[Record], tokenizer: tokenizer_lib.Tokenizer,
                   max_words: int) -> SentenceTable:
  """Reads every record of `source` once."""
  records = [source[i] for i in range(len(source))]
  return SentenceTable(
      lengths=tuple(length_buckets.num_words(tokenizer.batch_encode(r['sentences'], max_words))
                    for r in records),
      is_visual=tuple(visual_labels(r) for r in records))


def _draw_counts(num_visual, num_contextual, count: int):
  """(visual, contextual) sentences a classifier draw of `count` takes from a painting
  with these many of each kind: half of each where it has both (numpy arrays or ints)."""
  visual = np.minimum(num_visual, np.maximum(count // 2, count - num_contextual))
  return visual, np.minimum(num_contextual, count - visual)


def _sample_cls_sentences(is_visual: np.ndarray, count: int, ranked: int,
                          rng: np.random.Generator) -> tuple[bool, np.ndarray]:
  """Up to `count` sentences, half of each class when the painting has both.

  The visual sentence `ranked` is one of them whenever a visual one is drawn; returns
  (whether it is, the indices of the others).
  """
  visual, contextual = np.flatnonzero(is_visual), np.flatnonzero(~is_visual)
  num_visual, num_contextual = _draw_counts(len(visual), len(contextual), count)
  others = np.concatenate([
      rng.choice(visual[visual != ranked], max(num_visual - 1, 0), replace=False),
      rng.choice(contextual, num_contextual, replace=False)])
  return num_visual > 0, rng.permutation(others)


def classifier_visual_shares(table: SentenceTable, pairs: np.ndarray,
                             cls_sentences: int) -> tuple[float, float]:
  """(visual share of the split's sentences, expected visual share of the classifier's
  training draws).

  The draws differ from the split: every visual sentence starts a row of its painting
  (`pairs`), and each row takes half of each class where the painting has both
  (`_sample_cls_sentences`), so with two sentences or more visual ones are
  over-represented and a classifier trained on the draws calls too many sentences visual
  (with one, contextual ones); `losses.prior_pos_weight` corrects for it.
  """
  visual = np.array([v.sum() for v in table.is_visual])
  contextual = np.array([v.size for v in table.is_visual]) - visual
  rows = np.bincount(np.asarray(pairs)[:, 0], minlength=visual.size)
  drawn_visual, drawn_contextual = _draw_counts(visual, contextual, cls_sentences)
  drawn = np.sum(rows * (drawn_visual + drawn_contextual))
  return (float(visual.sum() / max(visual.sum() + contextual.sum(), 1)),
          float(np.sum(rows * drawn_visual) / max(drawn, 1)))


@dataclasses.dataclass(frozen=True)
class _RowSentences:
  """The sentences of one row: its ranking sentence and its classifier draw."""
  record: int
  ranked: int  # the ranking sentence, classifier slot 0
  has_ranked: bool  # whether slot 0 takes part in the classifier
  others: np.ndarray  # the classifier's other sentences, slots 1..
  rng: np.random.Generator  # the row's RNG, after the draw (augmentation continues it)


def _cls_fields(record: Record, row: _RowSentences, tokenizer: tokenizer_lib.Tokenizer,
                shapes: input_spec.InputSpec) -> dict[str, np.ndarray]:
  """The classifier's sentences of one painting: slot 0 the ranking sentence, then the
  others (`cls_tokens`), padded with mask False (see the module docstring)."""
  is_visual = visual_labels(record)
  has_ranked, others = row.has_ranked, row.others
  extra, num = extra_cls_sentences(shapes.cls_sentences), len(others)
  fields = {
      'cls_tokens': np.zeros([extra, shapes.max_words], np.int32),
      'cls_labels': np.zeros([1 + extra], np.float32),
      'cls_mask': np.zeros([1 + extra], bool),
  }
  fields['cls_tokens'][:num] = tokenizer.batch_encode(
      [record['sentences'][j] for j in others], shapes.max_words)
  fields['cls_labels'][0] = fields['cls_mask'][0] = has_ranked
  fields['cls_labels'][1:1 + num] = is_visual[others]
  fields['cls_mask'][1:1 + num] = True
  return fields


@dataclasses.dataclass(frozen=True, eq=False)
class _TrainBatchBuilder:
  """Turns a global batch of stream positions into this process's batch dict (rows
  [start, stop)), its sentences padded to the global batch's bucket and packed per device
  (`local_devices` of this process, `process_count` processes).

  A picklable callable (not a closure) so that grain worker processes can run it.
  """
  source: Sequence[Record]
  pairs: np.ndarray
  table: SentenceTable
  tokenizer: tokenizer_lib.Tokenizer
  shapes: input_spec.InputSpec
  seed: int
  paintings: painting_inputs.RegionInputs | painting_inputs.ImageInputs
  start: int
  stop: int
  local_devices: int
  process_count: int

  def row_sentences(self, position: int, pair: int) -> _RowSentences:
    record, ranked = (int(x) for x in self.pairs[pair])
    rng = np.random.default_rng([self.seed, int(position)])
    has_ranked, others = _sample_cls_sentences(
        self.table.is_visual[record], self.shapes.cls_sentences, ranked, rng)
    return _RowSentences(record, ranked, has_ranked, others, rng)

  def lengths(self, row: _RowSentences) -> np.ndarray:
    """Word counts of the row's slots (0 for an unused one), [1 + K]."""
    lengths = np.zeros(1 + extra_cls_sentences(self.shapes.cls_sentences), np.int64)
    record_lengths = self.table.lengths[row.record]
    lengths[0] = record_lengths[row.ranked]
    lengths[1:1 + len(row.others)] = record_lengths[row.others]
    return lengths

  def example(self, row: _RowSentences) -> dict[str, np.ndarray]:
    record = self.source[row.record]
    cls_fields = _cls_fields(record, row, self.tokenizer, self.shapes)
    return {
        **self.paintings(record, row.rng),
        'tokens': self.tokenizer.encode(record['sentences'][row.ranked], self.shapes.max_words),
        'painting': np.int32(row.record),
        **cls_fields,
    }

  def __call__(self, global_batch: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    rows = [self.row_sentences(pos, pair) for pos, pair in zip(*global_batch)]
    lengths = np.stack([self.lengths(row) for row in rows])  # [B, 1 + K]
    width = length_buckets.width_for(lengths.max(), self.shapes.bucket_widths)
    examples = [self.example(row) for row in rows[self.start:self.stop]]
    batch = {key: np.stack([e[key] for e in examples]) for key in examples[0]}
    for key in ('tokens', 'cls_tokens'):
      batch[key] = length_buckets.trim(batch[key], width)
    packing = sentence_packing.batch_fields(
        lengths, self.local_devices * self.process_count, width)
    process = self.start // (self.stop - self.start)
    own = slice(process * self.local_devices, (process + 1) * self.local_devices)
    return batch | {key: layout[own] for key, layout in packing.items()}


def _with_position(position: int, pair: int) -> tuple[int, int]:
  return position, pair


def _local_batch_size(batch_size: int, process_count: int) -> int:
  if batch_size % process_count:
    raise ValueError(f'config.batch_size={batch_size} is not divisible by the'
                     f' {process_count} processes: choose a multiple of {process_count}.')
  return batch_size // process_count


def train_iterator(spec: input_spec.InputSpec, source: Sequence[Record],
                   tokenizer: tokenizer_lib.Tokenizer, *, process_index: int, process_count: int,
                   seed: int, pairs: np.ndarray | None = None,
                   table: SentenceTable | None = None,
                   local_devices: int = 1) -> grain.DatasetIterator:
  """Endless iterator of this process's training batches (see the module docstring).

  `pairs` is `visual_pair_index(source)` and `table` is
  `sentence_table(source, tokenizer, max_words)` when the caller already has them (each
  scan reads every record once). `local_devices`: the devices this process feeds (the
  sentences are packed per device). `iterator.get_state()` / `set_state()` (or
  grain.checkpoint.CheckpointSave/Restore with Orbax) save and restore its position: the
  following batches are identical.
  """
  if not 0 <= seed < 2**32:
    raise ValueError(f'seed={seed}: grain shuffles with a seed in [0, 2**32), pick one there.')
  local_batch = _local_batch_size(spec.batch_size, process_count)
  if pairs is None:
    pairs = visual_pair_index(source)
  if table is None:
    table = sentence_table(source, tokenizer, spec.max_words)
  if local_batch % local_devices:
    raise ValueError(f'The {local_batch} rows of a process do not split over its '
                     f'{local_devices} devices: make config.batch_size a multiple of the '
                     'device count.')
  logging.info('Training on %d visual sentences of %d paintings: %d steps per epoch.',
               len(pairs), len(source), steps_per_epoch(len(pairs), spec.batch_size))
  start = process_index * local_batch
  dataset = (
      grain.MapDataset.range(len(pairs)).shuffle(seed=seed).repeat()
      .map_with_index(_with_position)
      .batch(spec.batch_size)
      .map(_TrainBatchBuilder(source, pairs, table, tokenizer, spec, seed,
                              painting_inputs.painting_inputs(spec, train=True),
                              start=start, stop=start + local_batch,
                              local_devices=local_devices, process_count=process_count))
      .to_iter_dataset(grain.ReadOptions(
          num_threads=_READ_THREADS, prefetch_buffer_size=spec.prefetch_batches)))
  if spec.num_workers > 0:
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=spec.num_workers))
  return iter(dataset)


