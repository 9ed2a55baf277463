"""Input pipeline: `tfds.data_source` (array_record) → grain batches of fixed shapes.

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

Painting inputs. With region features (`config.model.backbone` empty) a batch carries
`regions`, `boxes` and `region_mask`; with a pixel backbone it carries `images` instead,
uint8 [b, S, S, 3] with S = `dataset.image_size`: decoded JPEG, for training a random
crop (area ≥ `dataset.crop_min_scale` of the image, aspect ratio in [3/4, 4/3]) and an
optional mirror drawn with the same (seed, position) RNG; for evaluation the whole image.
Either is resized to S x S without keeping the aspect, so that the backbone's grid cells
tile the whole (cropped) painting. Normalisation is the model's (`resnet.normalize`, the
statistics of the ImageNet weights it imports), so the images stay uint8 here.

Sentences become `dataset.max_words` token ids with the run's tokenizer
(`tokenizer_lib.Tokenizer`): the training split's word vocabulary for the bi-GRU, or a BERT
folder's word-piece tokenizer (`[CLS] pieces [SEP]`, see `wordpiece`); longer sentences
are truncated, and their count logged.

Per-example transforms are plain numpy and Pillow: no jax here.
"""

from collections.abc import Sequence
import dataclasses
import io
import math
from typing import Any

from absl import logging
import grain
import ml_collections
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from artpedia_jax.data import length_buckets
from artpedia_jax.data import sentence_packing
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.data import vocab as vocab_lib

Record = dict[str, Any]
# Threads per process that read records and build batches: enough to overlap reading with
# the train step; more mostly contend for the GIL (workers are the way to scale).
_READ_THREADS = 2
_CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
_CROP_ATTEMPTS = 10  # random crops tried before falling back to the whole image


def open_source(config: ml_collections.ConfigDict, split: str, *,
                decode_images: bool = False) -> Sequence[Record]:
  """The random-access source of one split (build it first: `dataset.prepare(config)`).

  Training and evaluation use region features only, so the JPEG stays undecoded bytes
  (`tfds.decode.SkipDecoding` works on the numpy path, without TensorFlow); pass
  `decode_images=True` for the report's thumbnails.
  """
  # Importing the builder module registers 'artpedia' with TFDS.
  # pylint: disable-next=g-import-not-at-top,unused-import
  from tfds_artpedia import tfds_artpedia_dataset_builder
  decoders = None if decode_images else {'image': tfds.decode.SkipDecoding()}
  return tfds.data_source(config.dataset.name, split=split, data_dir=config.dataset.data_dir,
                         download=False, decoders=decoders)


def _is_visual(record: Record) -> np.ndarray:
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
    for j in np.flatnonzero(_is_visual(record)):
      if vocab_lib.tokenize(record['sentences'][j]):
        pairs.append((i, j))
      else:
        num_without_words += 1
  if num_without_words:
    logging.info('%d visual sentences without any word left out of the ranking pairs.',
                 num_without_words)
  return np.asarray(pairs, np.int64).reshape([-1, 2])


def feature_dim(source: Sequence[Record]) -> int:
  """The region feature size F of the dataset (the model's input size)."""
  if not len(source):
    raise ValueError('The split is empty: check the dataset split and data_dir.')
  return _padded_regions(source[0], max_regions=0)['regions'].shape[-1]


def uses_pixels(config: ml_collections.ConfigDict) -> bool:
  """Whether paintings enter the model as images (a backbone) or as region features."""
  return bool(config.model.backbone)


def region_feature_dim(config: ml_collections.ConfigDict,
                       source: Sequence[Record]) -> int | None:
  """The model's `feature_dim`: F of the dataset's regions, None when a backbone sets it."""
  return None if uses_pixels(config) else feature_dim(source)


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


def bucket_widths(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The padded sentence lengths of `config` (`length_buckets` clipped to `max_words`)."""
  return length_buckets.widths(config.dataset.length_buckets, config.dataset.max_words)


@dataclasses.dataclass(frozen=True)
class SentenceTable:
  """Each record's sentences as word counts (after truncation) and is_visual labels: what
  laying out a global batch needs, without reading its records (see the module docstring)."""
  lengths: tuple[np.ndarray, ...]  # int [sentences] per record
  is_visual: tuple[np.ndarray, ...]  # bool [sentences] per record


def sentence_table(source: Sequence[Record], vocab: tokenizer_lib.Tokenizer,
                   max_words: int) -> SentenceTable:
  """Reads every record of `source` once."""
  records = [source[i] for i in range(len(source))]
  return SentenceTable(
      lengths=tuple(length_buckets.num_words(vocab.batch_encode(r['sentences'], max_words))
                    for r in records),
      is_visual=tuple(_is_visual(r) for r in records))


@dataclasses.dataclass(frozen=True)
class _Shapes:
  """The fixed sizes that every batch is padded or truncated to."""
  max_regions: int
  max_words: int
  cls_sentences: int
  bucket_widths: tuple[int, ...]

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> '_Shapes':
    return cls(config.dataset.max_regions, config.dataset.max_words,
               config.dataset.cls_sentences, bucket_widths(config))


def _padded_regions(record: Record, max_regions: int) -> dict[str, np.ndarray]:
  """Regions, boxes and mask padded to `max_regions`; extra regions beyond it are dropped."""
  if 'regions' not in record:
    raise ValueError(f'Record {vocab_lib.as_text(record["id"])!r} has no region features:'
                     ' use a dataset config that has them (artpedia/regions, artpedia/sample or'
                     ' artpedia/sample_realistic).')
  features = np.asarray(record['regions']['features'], np.float32)[:max_regions]
  boxes = np.asarray(record['regions']['boxes'], np.float32).reshape([-1, 4])[:max_regions]
  num = len(features)
  padded = {
      'regions': np.zeros([max_regions, features.shape[-1]], np.float32),
      'boxes': np.zeros([max_regions, 4], np.float32),
      'region_mask': np.arange(max_regions) < num,
  }
  padded['regions'][:num] = features
  padded['boxes'][:num] = boxes
  return padded


@dataclasses.dataclass(frozen=True)
class _RegionInputs:
  """Detector regions, padded to `max_regions` (picklable for grain workers)."""
  max_regions: int

  def __call__(self, record: Record, rng: np.random.Generator | None
               ) -> dict[str, np.ndarray]:
    del rng  # Region features are not augmented.
    return _padded_regions(record, self.max_regions)


def _decode_rgb(record: Record) -> Image.Image:
  """JPEG bytes (`open_source` skips TFDS decoding) or an already decoded array."""
  image = record['image']
  if isinstance(image, bytes):
    return Image.open(io.BytesIO(image)).convert('RGB')
  return Image.fromarray(np.asarray(image, np.uint8)).convert('RGB')


def random_crop_box(width: int, height: int, min_scale: float,
                    rng: np.random.Generator) -> tuple[int, int, int, int]:
  """(x0, y0, x1, y1): a random area fraction in [min_scale, 1] and aspect ratio in
  [3/4, 4/3] (as Inception's crops), or the whole image if none fits in a few tries."""
  for _ in range(_CROP_ATTEMPTS):
    area = width * height * rng.uniform(min_scale, 1.0)
    aspect = math.exp(rng.uniform(*np.log(_CROP_ASPECT_RANGE)))
    crop_w = int(round(math.sqrt(area * aspect)))
    crop_h = int(round(math.sqrt(area / aspect)))
    if 0 < crop_w <= width and 0 < crop_h <= height:
      x0 = int(rng.integers(0, width - crop_w + 1))
      y0 = int(rng.integers(0, height - crop_h + 1))
      return x0, y0, x0 + crop_w, y0 + crop_h
  return 0, 0, width, height


@dataclasses.dataclass(frozen=True)
class _ImageInputs:
  """Square uint8 images; `augment` draws a crop and flip from the example's RNG."""
  image_size: int
  augment: bool
  crop_min_scale: float = 1.0
  random_flip: bool = False

  def __call__(self, record: Record, rng: np.random.Generator | None
               ) -> dict[str, np.ndarray]:
    image = _decode_rgb(record)
    box = (0, 0) + image.size
    if self.augment and self.crop_min_scale < 1.0:
      box = random_crop_box(*image.size, self.crop_min_scale, rng)
    image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR,
                         box=box)
    if self.augment and self.random_flip and rng.random() < 0.5:
      image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {'images': np.asarray(image, np.uint8)}


def painting_inputs(config: ml_collections.ConfigDict, *,
                    train: bool) -> _RegionInputs | _ImageInputs:
  """The per-record transform giving the model's painting inputs (see module docstring)."""
  if not uses_pixels(config):
    return _RegionInputs(config.dataset.max_regions)
  data = config.dataset
  return _ImageInputs(data.image_size, augment=train, crop_min_scale=data.crop_min_scale,
                      random_flip=data.random_flip)


def _sample_cls_sentences(is_visual: np.ndarray, count: int, ranked: int,
                          rng: np.random.Generator) -> tuple[bool, np.ndarray]:
  """Up to `count` sentences, half of each class when the painting has both.

  The visual sentence `ranked` is one of them whenever a visual one is drawn; returns
  (whether it is, the indices of the others).
  """
  visual, contextual = np.flatnonzero(is_visual), np.flatnonzero(~is_visual)
  num_visual = min(len(visual), max(count // 2, count - len(contextual)))
  num_contextual = min(len(contextual), count - num_visual)
  others = np.concatenate([
      rng.choice(visual[visual != ranked], max(num_visual - 1, 0), replace=False),
      rng.choice(contextual, num_contextual, replace=False)])
  return num_visual > 0, rng.permutation(others)


@dataclasses.dataclass(frozen=True)
class _RowSentences:
  """The sentences of one row: its ranking sentence and its classifier draw."""
  record: int
  ranked: int  # the ranking sentence, classifier slot 0
  has_ranked: bool  # whether slot 0 takes part in the classifier
  others: np.ndarray  # the classifier's other sentences, slots 1..
  rng: np.random.Generator  # the row's RNG, after the draw (augmentation continues it)


def _cls_fields(record: Record, row: _RowSentences, vocab: tokenizer_lib.Tokenizer,
                shapes: _Shapes) -> dict[str, np.ndarray]:
  """The classifier's sentences of one painting: slot 0 the ranking sentence, then the
  others (`cls_tokens`), padded with mask False (see the module docstring)."""
  is_visual = _is_visual(record)
  has_ranked, others = row.has_ranked, row.others
  extra, num = extra_cls_sentences(shapes.cls_sentences), len(others)
  fields = {
      'cls_tokens': np.zeros([extra, shapes.max_words], np.int32),
      'cls_labels': np.zeros([1 + extra], np.float32),
      'cls_mask': np.zeros([1 + extra], bool),
  }
  fields['cls_tokens'][:num] = vocab.batch_encode(
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
  vocab: tokenizer_lib.Tokenizer
  shapes: _Shapes
  seed: int
  paintings: _RegionInputs | _ImageInputs
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
    cls_fields = _cls_fields(record, row, self.vocab, self.shapes)
    return {
        **self.paintings(record, row.rng),
        'tokens': self.vocab.encode(record['sentences'][row.ranked], self.shapes.max_words),
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


def train_iterator(config: ml_collections.ConfigDict, source: Sequence[Record],
                   vocab: tokenizer_lib.Tokenizer, *, process_index: int, process_count: int,
                   seed: int, pairs: np.ndarray | None = None,
                   table: SentenceTable | None = None,
                   local_devices: int = 1) -> grain.DatasetIterator:
  """Endless iterator of this process's training batches (see the module docstring).

  `pairs` is `visual_pair_index(source)` and `table` is
  `sentence_table(source, vocab, max_words)` when the caller already has them (each
  scan reads every record once). `local_devices`: the devices this process feeds (the
  sentences are packed per device). `iterator.get_state()` / `set_state()` (or
  grain.checkpoint.CheckpointSave/Restore with Orbax) save and restore its position: the
  following batches are identical.
  """
  if not 0 <= seed < 2**32:
    raise ValueError(f'seed={seed}: grain shuffles with a seed in [0, 2**32), pick one there.')
  local_batch = _local_batch_size(config.batch_size, process_count)
  if pairs is None:
    pairs = visual_pair_index(source)
  if table is None:
    table = sentence_table(source, vocab, config.dataset.max_words)
  if local_batch % local_devices:
    raise ValueError(f'The {local_batch} rows of a process do not split over its '
                     f'{local_devices} devices: make config.batch_size a multiple of the '
                     'device count.')
  logging.info('Training on %d visual sentences of %d paintings: %d steps per epoch.',
               len(pairs), len(source), steps_per_epoch(len(pairs), config.batch_size))
  start = process_index * local_batch
  dataset = (
      grain.MapDataset.range(len(pairs)).shuffle(seed=seed).repeat()
      .map_with_index(_with_position)
      .batch(config.batch_size)
      .map(_TrainBatchBuilder(source, pairs, table, vocab,
                              _Shapes.from_config(config), seed,
                              painting_inputs(config, train=True),
                              start=start, stop=start + local_batch,
                              local_devices=local_devices, process_count=process_count))
      .to_iter_dataset(grain.ReadOptions(
          num_threads=_READ_THREADS, prefetch_buffer_size=config.dataset.prefetch_batches)))
  if config.dataset.num_workers > 0:
    dataset = dataset.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=config.dataset.num_workers))
  return iter(dataset)


@dataclasses.dataclass(frozen=True)
class EvalSplit:
  """Every painting and every sentence of a split, as numpy arrays."""
  painting_ids: np.ndarray  # str [P]
  titles: np.ndarray  # str [P]
  paintings: dict[str, np.ndarray]  # the model's painting inputs, keyed as in a batch
  tokens: np.ndarray  # int32 [S, T]
  sentence_texts: np.ndarray  # str [S]
  sentence_painting: np.ndarray  # int32 [S], index into the paintings
  is_visual: np.ndarray  # bool [S]

  @property
  def has_words(self) -> np.ndarray:
    """bool [S]: sentences with at least one token; the others take no part in
    retrieval (their scores carry no information)."""
    return np.any(self.tokens != vocab_lib.Vocabulary.PAD, axis=1)


def load_eval_split(config: ml_collections.ConfigDict, source: Sequence[Record],
                    vocab: tokenizer_lib.Tokenizer) -> EvalSplit:
  """Reads the whole split once into memory (Artpedia's splits are small).

  Logs how many sentences are cut to `dataset.max_words` tokens.
  """
  records = [source[i] for i in range(len(source))]
  if not records:
    raise ValueError('The evaluation split is empty: check the dataset split and data_dir.')
  transform = painting_inputs(config, train=False)
  paintings = [transform(r, rng=None) for r in records]
  texts = [vocab_lib.as_text(s) for r in records for s in r['sentences']]
  tokenizer_lib.log_truncated(vocab, texts, config.dataset.max_words, 'Evaluation split')
  return EvalSplit(
      painting_ids=np.asarray([vocab_lib.as_text(r['id']) for r in records], str),
      titles=np.asarray([vocab_lib.as_text(r['title']) for r in records], str),
      paintings={key: np.stack([p[key] for p in paintings]) for key in paintings[0]},
      tokens=vocab.batch_encode(texts, config.dataset.max_words),
      sentence_texts=np.asarray(texts, str),
      sentence_painting=np.asarray(
          [i for i, r in enumerate(records) for _ in r['sentences']], np.int32),
      is_visual=np.concatenate([_is_visual(r) for r in records]),
  )


def sentences_and_labels(source: Sequence[Record]) -> tuple[list[str], np.ndarray]:
  """Every sentence of `source` as text, with its is_visual label (for text baselines)."""
  records = [source[i] for i in range(len(source))]
  texts = [vocab_lib.as_text(s) for r in records for s in r['sentences']]
  labels = np.concatenate([_is_visual(r) for r in records]) if records else np.zeros(0, bool)
  return texts, labels
