"""The model's forward passes on the devices, for evaluation and inference.

Paintings and sentences are encoded once each; all-pairs scores are computed in chunks
(paintings split across the devices × a chunk of sentences seen by every device) of a
few fixed shapes, so a handful of compilations serve any number of paintings and
sentences, and memory is bounded by the chunk and block sizes, not by the collection.
The evaluator (on a split) and the inference API (on a user's painting and text) both go
through `DeviceScorer`, so they compute the same numbers with the same code.

Multi-process: every process holds all the inputs and runs the same calls; chunks become
global arrays with `sharding.shard_full` and results come back whole with
`sharding.to_host`, so every process gets the same results.
"""

from collections.abc import Mapping
import dataclasses

from flax import nnx
import jax
import ml_collections
import numpy as np

from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib


@dataclasses.dataclass(frozen=True)
class EvalSpec:
  """How evaluation and inference run the model on the devices: `chunk_size` rows
  encoded or scored at once (`config.eval_batch_size`, rounded up to a multiple of the
  device count), `block_size` sentences per block of the pairwise scoring, and the padded
  sentence lengths a chunk may be cut to (`length_buckets`; empty: the tokens' width)."""
  chunk_size: int
  block_size: int
  bucket_widths: tuple[int, ...]

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'EvalSpec':
    return cls(config.eval_batch_size, config.score_block_size,
               input_spec.InputSpec.from_config(config).bucket_widths)


@dataclasses.dataclass(frozen=True)
class HostEncodedPaintings:
  """Region vectors on the host, with the mask and boxes of the regions they stand for."""
  v: np.ndarray  # [P, R, D], unit norm, zero at padding
  region_mask: np.ndarray  # [P, R] bool
  boxes: np.ndarray  # [P, R, 4] (y0, x0, y1, x1) in [0, 1]

  def __len__(self) -> int:
    return self.v.shape[0]

  def take(self, rows: np.ndarray) -> 'HostEncodedPaintings':
    return HostEncodedPaintings(self.v[rows], self.region_mask[rows], self.boxes[rows])


@dataclasses.dataclass(frozen=True)
class SentenceScores:
  """What one pass over a set of sentences gives against a set of paintings."""
  scores: np.ndarray  # [P, S] S(painting, sentence)
  probs: np.ndarray | None  # [S] p(visual | sentence, its own painting), if asked


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  """`x` with zero rows appended up to `rows`."""
  pad = rows - x.shape[0]
  return np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x


def _chunks(n: int, size: int):
  for start in range(0, n, size):
    yield start, min(start + size, n)


_SHAPES_PER_CHUNK = 8  # painting chunks of scoring come in at most this many sizes


def painting_chunk_rows(num_paintings: int, chunk: int, devices: int) -> int:
  """Rows of each painting chunk of the all-pairs scoring: the paintings split evenly
  over the fewest chunks of at most `chunk` rows, rounded up to a granule of `chunk` / 8
  (a multiple of `devices`). Scoring is the evaluation's cost, so padding rows matter:
  340 paintings in chunks of 256 were 512 rows (34% padding), now 2 x 192 (11%); a
  100-painting split was 256 rows, now 128. At most 8 sizes compile per sentence bucket.
  """
  granule = max(devices, -(-chunk // _SHAPES_PER_CHUNK // devices) * devices)
  per_chunk = -(-num_paintings // -(-num_paintings // chunk))
  return min(chunk, -(-per_chunk // granule) * granule)


class DeviceScorer:
  """Jit-compiled encoders and scorers for one model architecture, `EvalSpec` and mesh."""

  def __init__(self, graphdef: nnx.GraphDef, spec: EvalSpec, mesh: jax.sharding.Mesh):
    self._mesh = mesh
    self._widths = spec.bucket_widths
    self._chunk = -(-spec.chunk_size // mesh.size) * mesh.size
    block_size = spec.block_size
    data = sharding_lib.batch_sharded(mesh)
    rep = self._replicated = sharding_lib.replicated(mesh)
    merge = lambda variables: model_lib.merge(graphdef, variables)

    self._encode_paintings = jax.jit(
        lambda p, inputs: merge(p).encode_painting_inputs(inputs),
        in_shardings=(rep, data), out_shardings=data)
    self._encode_sentences = jax.jit(
        lambda p, tokens: merge(p).encode_sentences(tokens),
        in_shardings=(rep, data), out_shardings=(data, data))
    self._pairwise = jax.jit(
        lambda p, v, rmask, w, wmask: merge(p).pairwise_scores(
            v, rmask, w, wmask, block_size=block_size),
        in_shardings=(rep, data, data, rep, rep), out_shardings=data)
    self._visual_probs = jax.jit(
        lambda p, v, rmask, w, wmask: jax.nn.sigmoid(
            merge(p).classify(v, rmask, w, wmask)),
        in_shardings=(rep, data, data, data, data), out_shardings=data)

  def _padded(self, x: np.ndarray) -> np.ndarray:
    return pad_rows(x, -(-x.shape[0] // self._chunk) * self._chunk)

  def _put(self, *chunks: np.ndarray) -> list[jax.Array]:
    return [sharding_lib.shard_full(self._mesh, x) for x in chunks]

  def encode_paintings(self, variables, inputs: Mapping[str, np.ndarray]
                       ) -> HostEncodedPaintings:
    """Every painting of `inputs` (the model's painting inputs, e.g. regions or images)."""
    num_rows = len(next(iter(inputs.values())))
    padded = {name: self._padded(np.asarray(x)) for name, x in inputs.items()}
    parts = []
    for a, b in _chunks(len(next(iter(padded.values()))), self._chunk):
      rows = self._put(*(x[a:b] for x in padded.values()))
      encoded = self._encode_paintings(variables, dict(zip(padded, rows)))
      parts.append([sharding_lib.to_host(x) for x in encoded])
    v, region_mask, boxes = (np.concatenate(column)[:num_rows] for column in zip(*parts))
    return HostEncodedPaintings(v, region_mask, boxes)

  def score_sentences(self, variables, paintings: HostEncodedPaintings, tokens: np.ndarray,
                      own_painting: np.ndarray | None = None) -> SentenceScores:
    """Scores of every (painting, sentence) pair, and p(visual) of each sentence against
    its own painting (`own_painting[s]`, an index into `paintings`) when given.

    Sentences are encoded one chunk at a time, used for both and dropped, so memory does
    not grow with their number. They go in order of length, each chunk cut to the
    bucket of its longest sentence (one compilation per bucket), and the results are put
    back in the given order.
    """
    num_paintings, num_sentences = len(paintings), len(tokens)
    rows = painting_chunk_rows(num_paintings, self._chunk, self._mesh.size)
    painting_chunks = [self._put(pad_rows(paintings.v[a:b], rows),
                                 pad_rows(paintings.region_mask[a:b], rows))
                       for a, b in _chunks(num_paintings, rows)]
    order = np.argsort(length_buckets.num_words(np.asarray(tokens)), kind='stable')
    tokens = self._padded(np.asarray(tokens)[order])
    own = None if own_painting is None else self._padded(np.asarray(own_painting)[order])
    columns, probs = [], []
    for a, b in _chunks(len(tokens), self._chunk):
      w, wmask = self._encode_sentences(variables, *self._put(self._cut(tokens[a:b])))
      if own is not None:
        probs.append(sharding_lib.to_host(self._visual_probs(
            variables, *self._put(paintings.v[own[a:b]],
                                  paintings.region_mask[own[a:b]]), w, wmask)))
      w, wmask = jax.device_put((w, wmask), self._replicated)
      columns.append(np.concatenate(
          [sharding_lib.to_host(self._pairwise(variables, v, rmask, w, wmask))
           for v, rmask in painting_chunks], axis=0)[:num_paintings])
    scores = np.empty((num_paintings, num_sentences), np.float32)
    scores[:, order] = np.concatenate(columns, axis=1)[:, :num_sentences]
    visual_probs = None
    if probs:
      visual_probs = np.empty(num_sentences, np.float32)
      visual_probs[order] = np.concatenate(probs)[:num_sentences]
    return SentenceScores(scores=scores, probs=visual_probs)

  def _cut(self, tokens: np.ndarray) -> np.ndarray:
    """A chunk of tokens cut to the smallest bucket holding its longest sentence."""
    if not self._widths:
      return tokens
    longest = length_buckets.num_words(tokens).max()
    return length_buckets.trim(tokens, length_buckets.width_for(longest, self._widths))

  def word_region_scores(self, variables, painting: HostEncodedPaintings,
                         tokens: np.ndarray) -> np.ndarray:
    """[S, T, R] scores ⟨w_t, v_r⟩ of each sentence's words with ONE painting's regions
    (`painting` holds a single row); padding words and regions are left to the caller's
    masks."""
    w = [sharding_lib.to_host(self._encode_sentences(
        variables, *self._put(self._padded(tokens[a:b])))[0])[:b - a]
         for a, b in _chunks(len(tokens), self._chunk)]
    return np.einsum('std,rd->str', np.concatenate(w).astype(np.float32),
                     painting.v[0].astype(np.float32))
