"""The train step's sentences packed end to end into rows, so its encoders see words.

At batch 128 the longest of the step's sentences nearly always reaches the top length
bucket, so padding every sentence to it leaves ~45% of the encoder's positions empty
(real Artpedia lengths: mean 22 words, 99th percentile 59). Packing puts several
sentences in one row of the batch's width `T` (first-fit decreasing), each keeping its own
positions 0.. inside its segment, and the encoders reset at segment boundaries (the
bi-GRU's carries, BERT's attention and position ids), so each sentence is encoded exactly
as if it were alone in a padded row.

A *layout* says where each sentence went: `sentence` [shards, rows, T] gives, for every
packed position, which of its shard's sentences it holds (the shard's sentence count
`N` where it is padding) and `position` [shards, rows, T] the word's index in that
sentence. A shard is one device's share of the step's sentences (contiguous in the
step's row-major (painting, slot) order), so packing and unpacking never cross devices.

Compiled shapes: the width is a length bucket and the row count is rounded up to a
multiple of max(ceil(N / ROW_STEPS), MIN_ROW_STEP) (capped at N), so a train step
compiles for at most ROW_STEPS row counts per bucket, and small shards (tests, many
devices), whose fullest packing varies most between batches, for at most N / MIN_ROW_STEP;
at batch 128 on one device the packed rows vary by a few percent between batches, so in
practice one or two.
"""

import numpy as np

# Row counts in use per width: multiples of ceil(N / ROW_STEPS).
ROW_STEPS = 16
MIN_ROW_STEP = 4
# The batch keys of a layout: `sentence` and `position`.
KEYS = ('packed_sentence', 'packed_position')


def _first_fit_decreasing(lengths: np.ndarray, width: int) -> tuple[np.ndarray, int]:
  """(the row of each sentence [N], -1 for empty ones; the number of rows used)."""
  row_of = np.full(len(lengths), -1, np.int64)
  room = np.zeros(len(lengths), np.int64)  # free positions of each row opened so far
  opened = 0
  for n in np.argsort(-lengths, kind='stable'):
    if lengths[n] == 0:
      break
    fits = np.flatnonzero(room[:opened] >= lengths[n])
    row = fits[0] if fits.size else opened
    if row == opened:
      room[opened], opened = width, opened + 1
    row_of[n] = row
    room[row] -= lengths[n]
  return row_of, opened


def row_count(needed: int, num_sentences: int) -> int:
  """`needed` rounded up to the next multiple of the row step, at most `num_sentences`."""
  step = max(MIN_ROW_STEP, -(-num_sentences // ROW_STEPS))
  return max(1, min(-(-needed // step) * step, num_sentences))


def pack(lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
  """The layout (`sentence`, `position`), each int32 [shards, rows, width], of sentences
  with word counts `lengths` [shards, N] (see the module docstring); every shard gets the
  `row_count` of the fullest one."""
  lengths = np.asarray(lengths, np.int64)
  shards, num_sentences = lengths.shape
  if lengths.size and lengths.max() > width:
    raise ValueError(f'A sentence of {lengths.max()} words does not fit a row of {width}.')
  plans = [_first_fit_decreasing(shard_lengths, width) for shard_lengths in lengths]
  rows = row_count(max(opened for _, opened in plans), num_sentences)
  sentence = np.full((shards, rows, width), num_sentences, np.int32)
  position = np.zeros((shards, rows, width), np.int32)
  for shard, (row_of, _) in enumerate(plans):
    fill = np.zeros(rows, np.int64)
    for n in np.flatnonzero(row_of >= 0):  # in sentence order: deterministic
      row, length = row_of[n], lengths[shard, n]
      start = fill[row]
      sentence[shard, row, start:start + length] = n
      position[shard, row, start:start + length] = np.arange(length)
      fill[row] += length
  return sentence, position


def batch_fields(lengths: np.ndarray, shards: int, width: int) -> dict[str, np.ndarray]:
  """The layout of a global batch's sentences as batch fields (`KEYS`), [shards, rows,
  width] each: `lengths` [B, 1 + K] are the word counts of its rows' slots, in order, and
  shard s packs rows [s B / shards, (s + 1) B / shards)."""
  if len(lengths) % shards:
    raise ValueError(f'{len(lengths)} rows do not split into {shards} shards.')
  return dict(zip(KEYS, pack(np.reshape(lengths, (shards, -1)), width)))


def step_lengths(batch: dict[str, np.ndarray]) -> np.ndarray:
  """Word counts [B, 1 + K] of a host batch's slots: `tokens`, then `cls_tokens`."""
  return np.concatenate([np.count_nonzero(batch['tokens'], axis=-1)[:, None],
                         np.count_nonzero(batch['cls_tokens'], axis=-1)], axis=1)


def with_layout(batch: dict[str, np.ndarray], shards: int) -> dict[str, np.ndarray]:
  """A host batch made without the pipeline (benchmarks, tests) with its layout added."""
  return batch | batch_fields(step_lengths(batch), shards, batch['tokens'].shape[-1])


def real_fraction(batch: dict[str, np.ndarray]) -> float:
  """Share of the encoder's positions that hold words: of the packed rows if `batch`
  has a layout, else of one padded row per sentence."""
  words = step_lengths(batch).sum()
  if KEYS[0] in batch:
    return float(words) / np.size(batch[KEYS[0]])
  return float(words) / (step_lengths(batch).size * batch['tokens'].shape[-1])
