"""Scores every (painting, sentence) pair of a split and turns the scores into metrics.

Each painting and each sentence is encoded once. The all-pairs scores are computed in
fixed-shape chunks (paintings split across the devices × a chunk of sentences seen by
every device), so one compilation serves the whole split and memory is bounded by the
chunk and block sizes, not by the split. The same `Evaluator` runs inside training (on
validation) and in the eval binary, so both report the same numbers for a checkpoint.

Multi-process: every process holds the whole split and runs the same calls; chunks become
global arrays with `sharding.shard_full` and results come back whole with
`sharding.to_host`, so every process computes the same metrics.
"""

import dataclasses
import json
import os

from flax import nnx
import jax
import ml_collections
import numpy as np

from artpedia_jax import metrics as metrics_lib
from artpedia_jax import model as model_lib
from artpedia_jax import pipeline
from artpedia_jax import sharding as sharding_lib


@dataclasses.dataclass(frozen=True)
class SplitScores:
  """Everything the metrics and the report need from one pass over a split."""
  scores: np.ndarray  # [P, S] S(painting, sentence)
  probs: np.ndarray  # [S] p(visual | sentence, its own painting)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  pad = rows - x.shape[0]
  return np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x


def _chunks(n: int, size: int):
  for start in range(0, n, size):
    yield start, min(start + size, n)


class Evaluator:
  """Jit-compiled encoders and scorers for one model architecture and mesh."""

  def __init__(self, graphdef: nnx.GraphDef, config: ml_collections.ConfigDict,
               mesh: jax.sharding.Mesh):
    self._mesh = mesh
    size = config.eval_batch_size
    self._chunk = -(-size // mesh.size) * mesh.size  # a multiple of the device count
    block = config.score_block_size
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
            v, rmask, w, wmask, block_size=block),
        in_shardings=(rep, data, data, rep, rep), out_shardings=data)
    self._visual_probs = jax.jit(
        lambda p, v, rmask, w, wmask: jax.nn.sigmoid(
            merge(p).classify(v, rmask, w, wmask)),
        in_shardings=(rep, data, data, data, data), out_shardings=data)

  def _padded(self, x: np.ndarray) -> np.ndarray:
    return _pad_rows(x, -(-x.shape[0] // self._chunk) * self._chunk)

  def _put(self, *chunks: np.ndarray) -> list[jax.Array]:
    return [sharding_lib.shard_full(self._mesh, x) for x in chunks]

  def _encode_painting_rows(self, variables, inputs: dict[str, np.ndarray], start: int,
                            stop: int) -> model_lib.EncodedPaintings:
    """Rows [start, stop) of the split's painting inputs (regions or images), encoded."""
    rows = self._put(*(x[start:stop] for x in inputs.values()))
    return self._encode_paintings(variables, dict(zip(inputs, rows)))

  def score(self, variables, split: pipeline.EvalSplit) -> SplitScores:
    """All-pairs scores and own-painting visual probabilities of a split.

    Paintings are encoded once and kept (P × R × D); sentences are encoded one chunk at
    a time, scored against every painting chunk and dropped, so memory does not grow
    with the number of sentences.
    """
    inputs = {name: self._padded(x) for name, x in split.painting_inputs().items()}
    num_rows = len(next(iter(inputs.values())))
    paintings = [self._encode_painting_rows(variables, inputs, a, b)
                 for a, b in _chunks(num_rows, self._chunk)]
    v_host = np.concatenate([sharding_lib.to_host(part.v) for part in paintings])
    rmask_host = np.concatenate(
        [sharding_lib.to_host(part.region_mask) for part in paintings])
    own = self._padded(split.sentence_painting)
    tokens = self._padded(split.tokens)
    columns, probs = [], []
    for a, b in _chunks(len(tokens), self._chunk):
      w, wmask = self._encode_sentences(variables, *self._put(tokens[a:b]))
      probs.append(sharding_lib.to_host(self._visual_probs(
          variables, *self._put(v_host[own[a:b]], rmask_host[own[a:b]]), w, wmask)))
      w, wmask = jax.device_put((w, wmask), self._replicated)
      columns.append(np.concatenate(
          [sharding_lib.to_host(self._pairwise(variables, part.v, part.region_mask, w,
                                               wmask))
           for part in paintings], axis=0))
    num_p, num_s = len(split.painting_ids), len(split.sentence_texts)
    return SplitScores(scores=np.concatenate(columns, axis=1)[:num_p, :num_s],
                       probs=np.concatenate(probs)[:num_s])

  def word_region_scores(self, variables, split: pipeline.EvalSplit, painting: int,
                         sentence: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[T, R] scores ⟨v_r, w_t⟩ of one sentence's words with one painting's regions,
    with those regions' boxes [R, 4] and mask [R] (detector boxes or backbone grid)."""
    take = lambda x, i: self._padded(x[i:i + 1])
    inputs = {name: take(x, painting) for name, x in split.painting_inputs().items()}
    v, rmask, boxes = (sharding_lib.to_host(x)[0] for x in
                       self._encode_painting_rows(variables, inputs, 0, self._chunk))
    w, _ = self._encode_sentences(variables, *self._put(take(split.tokens, sentence)))
    return sharding_lib.to_host(w)[0] @ v.T, boxes, rmask

  def evaluate(self, variables, split: pipeline.EvalSplit, *, split_name: str,
               step: int) -> dict:
    """The docs/design.md §7 metrics of `variables` on `split`."""
    return self.evaluate_with_scores(variables, split, split_name=split_name,
                                     step=step)[0]

  def evaluate_with_scores(self, variables, split: pipeline.EvalSplit, *,
                           split_name: str, step: int) -> tuple[dict, SplitScores]:
    scored = self.score(variables, split)
    result = metrics_lib.evaluation_metrics(
        scored.scores, scored.probs, split.sentence_painting, split.is_visual,
        split=split_name, step=step)
    return result, scored


def metrics_path(workdir: str, split: str, step: int) -> str:
  return os.path.join(workdir, 'eval', f'{split}_step{step}.json')


def write_metrics(workdir: str, result: dict) -> str:
  """Writes `W/eval/<split>_step<N>.json` atomically; returns its path."""
  path = metrics_path(workdir, result['split'], result['step'])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(result, f, indent=2, sort_keys=False)
  os.replace(tmp, path)
  return path


def flatten(result: dict, prefix: str = '') -> dict[str, float]:
  """Nested metrics → {'i2t/R_at_1': ...} scalars for TensorBoard."""
  flat = {}
  for key, value in result.items():
    name = f'{prefix}{key}'.replace('@', '_at_')  # TensorBoard tag characters
    if isinstance(value, dict):
      flat.update(flatten(value, name + '/'))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      flat[name] = float(value)
  return flat
