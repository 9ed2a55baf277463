"""Helpers the benchmarks share: compile-apart timing, a matmul FLOP/s probe, peak memory.

Run the benchmarks from the repository root as modules (`python -m bench.NAME`), so that
`bench` and `configs` import.
"""

import resource
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from artpedia_jax.data import input_spec
from artpedia_jax.data import length_buckets
from artpedia_jax.data import pipeline
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib
from artpedia_jax.train import optim
from artpedia_jax.train import step as train_step_lib


def compile_seconds(jitted: Any, *args) -> tuple[Any, float]:
  """(the compiled executable, seconds spent compiling) of a `jax.jit` function."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - start


def time_compiled(function: Callable, args: tuple, steps: int) -> tuple[float, float]:
  """(compile seconds, steady-state seconds per call) of a pure function.

  One untimed warm-up call absorbs first-call transfers and allocation; the timed calls
  are dispatched back to back and waited for once, as a training loop runs them.
  """
  compiled, compile_s = compile_seconds(jax.jit(function), *args)
  jax.block_until_ready(compiled(*args))
  start = time.perf_counter()
  for _ in range(steps):
    result = compiled(*args)
  jax.block_until_ready(result)
  return compile_s, (time.perf_counter() - start) / steps


def matmul_flops_per_s(m: int, k: int, n: int, repeats: int = 5,
                       dtype: str = 'float32') -> float:
  """FLOP/s of a jitted [m, k] @ [k, n] in `dtype` (the model's compute dtype) on the
  default device: the roofline the benchmarks compare their contractions with, measured
  in the same run. The best of `repeats` calls, so that a busy machine lowers it as
  little as possible."""
  a = jax.random.normal(jax.random.key(1), (m, k), dtype)
  b = jax.random.normal(jax.random.key(2), (k, n), dtype)
  dot, _ = compile_seconds(jax.jit(jnp.dot), a, b)
  jax.block_until_ready(dot(a, b))
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(dot(a, b))
    best = min(best, time.perf_counter() - start)
  return 2 * m * k * n / best


def peak_rss_mib() -> float:
  """High-water mark of this process's resident memory (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backend_line() -> str:
  device = jax.devices()[0]
  return f'backend {jax.default_backend()} ({device.device_kind}) x {jax.device_count()}'


def random_regions(rng: np.random.Generator, paintings: int, regions: int,
                   feature_dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(features [P, R, F], boxes [P, R, 4] with y0 < y1 and x0 < x1, mask [P, R] all True):
  every region real, as in bottom-up features with a fixed region count."""
  features = rng.standard_normal((paintings, regions, feature_dim), np.float32)
  corners = np.sort(rng.uniform(size=(paintings, regions, 2, 2)).astype(np.float32), axis=2)
  boxes = np.concatenate([corners[:, :, 0], corners[:, :, 1]], axis=-1)
  return features, boxes, np.ones((paintings, regions), bool)


# Real Artpedia sentence lengths in words: median 20, mean 22, 95th percentile 43, 99th
# 59. A log-normal with these parameters matches all four (median e^mu = 20; mean
# e^(mu + sigma^2 / 2) = 22.3; e^(mu + 1.645 sigma) = 43; e^(mu + 2.326 sigma) = 59).
ARTPEDIA_LOG_LENGTH_MEAN = float(np.log(20.0))
ARTPEDIA_LOG_LENGTH_STD = 0.465


def artpedia_lengths(rng: np.random.Generator, shape: tuple[int, ...],
                     max_words: int) -> np.ndarray:
  """Sentence lengths drawn from the real-Artpedia distribution, clipped to [1, max_words]."""
  lengths = np.rint(rng.lognormal(ARTPEDIA_LOG_LENGTH_MEAN, ARTPEDIA_LOG_LENGTH_STD, shape))
  return np.clip(lengths, 1, max_words).astype(np.int64)


def random_tokens(rng: np.random.Generator, shape: tuple[int, ...], max_words: int,
                  vocab_size: int) -> np.ndarray:
  """int32 [*shape, max_words] right-padded sentences of Artpedia-like lengths."""
  lengths = artpedia_lengths(rng, shape, max_words)
  words = rng.integers(2, vocab_size, size=(*shape, max_words), dtype=np.int32)
  return np.where(np.arange(max_words) < lengths[..., None], words, 0).astype(np.int32)


def with_bert_sentences(batch: dict[str, np.ndarray], config, rng: np.random.Generator,
                        vocab_size: int, pieces_per_word: float) -> dict[str, np.ndarray]:
  """`batch` with its sentences replaced by BERT's: [CLS] pieces [SEP] (random piece ids
  at least 1000, past the special tokens) of real-Artpedia word counts, at most
  max_words pieces, padded with 0 to their length bucket."""
  slots = 1 + pipeline.extra_cls_sentences(config.dataset.cls_sentences)
  t = config.dataset.max_words
  words = artpedia_lengths(rng, (config.batch_size, slots), t)
  pieces = np.minimum(np.rint(words * pieces_per_word).astype(np.int64) + 2, t)
  tokens = rng.integers(1000, vocab_size, (config.batch_size, slots, t), dtype=np.int32)
  tokens = np.where(np.arange(t) < pieces[..., None], tokens, 0).astype(np.int32)
  width = length_buckets.width_for(pieces.max(),
                                   input_spec.InputSpec.from_config(config).bucket_widths)
  tokens = length_buckets.trim(tokens, width)
  return batch | {'tokens': tokens[:, 0], 'cls_tokens': tokens[:, 1:]}


def random_sentence_fields(rng: np.random.Generator, config,
                           vocab_size: int) -> dict[str, np.ndarray]:
  """The sentence fields of a training batch (`tokens`, `cls_*`, in the pipeline's
  layout) with every classifier slot used, each batch padded to its length bucket."""
  b, data = config.batch_size, config.dataset
  slots = 1 + pipeline.extra_cls_sentences(data.cls_sentences)
  sentences = random_tokens(rng, (b, slots), data.max_words, vocab_size)
  width = length_buckets.width_for(length_buckets.num_words(sentences).max(),
                                   input_spec.InputSpec.from_config(config).bucket_widths)
  sentences = length_buckets.trim(sentences, width)
  labels = rng.integers(0, 2, (b, slots)).astype(np.float32)
  labels[:, 0] = 1.0  # slot 0: the ranking sentence, a visual one
  return {'tokens': sentences[:, 0], 'cls_tokens': sentences[:, 1:],
          'cls_labels': labels, 'cls_mask': np.ones((b, slots), bool)}


def step_spec(config) -> train_step_lib.StepSpec:
  """The step's settings on random data: `loss.cls_pos_weight=-1` has no split to weigh,
  so it is 1 (the weight's value does not change the step's cost)."""
  return train_step_lib.StepSpec.from_config(config, prior_pos_weight=1.0)


def time_train_step(config, mesh, model, batch, steps: int) -> tuple[float, float]:
  """(compile seconds, seconds per step) of the real train step on a global `batch`."""
  graphdef, variables = model_lib.split(model)
  variables = jax.tree.map(jnp.copy, variables)  # the step donates these, not the model's
  optimizer = optim.make_optimizer(optim.OptimizerSpec.from_config(config), total_steps=1000)
  state = sharding_lib.replicate(mesh, train_step_lib.init_state(variables, optimizer.tx))
  step, compile_s = compile_seconds(
      train_step_lib.make_train_step(
          graphdef, optimizer, step_spec(config), mesh),
      state, batch)
  state, metrics = step(state, batch)  # warm-up; the state is donated, so thread it
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return compile_s, (time.perf_counter() - start) / steps


def step_sentences(batch) -> jax.Array:
  """The step's sentences [B (1 + K), T], as the train step encodes them in one call."""
  sentences = jnp.concatenate([batch['tokens'][:, None], batch['cls_tokens']], axis=1)
  return sentences.reshape(-1, sentences.shape[-1])


def time_text_encoder(model, batch, steps: int) -> float:
  """Seconds per forward+backward of the step's sentence encoding (packed as the batch
  says, `train_step.step_packing`), gradient wrt params."""
  graphdef, variables = model_lib.split(model)
  sentences = step_sentences(batch)
  packing = train_step_lib.step_packing(batch)

  def encoder_vjp(params, packing):
    def total(params):
      encoder = model_lib.merge(graphdef, dict(variables, params=params))
      return jnp.sum(encoder.encode_sentences(sentences, packing=packing)[0])
    return jax.grad(total)(params)

  return time_compiled(encoder_vjp, (variables['params'], packing), steps)[1]


def synthetic_batch(config, rng: np.random.Generator, feature_dim: int,
                    vocab_size: int) -> dict[str, np.ndarray]:
  """A process-local training batch of distinct paintings with the config's shapes, its
  sentences padded to their bucket, without a packing layout (add one with
  `sentence_packing.with_layout`)."""
  b, data = config.batch_size, config.dataset
  regions, boxes, region_mask = random_regions(rng, b, data.max_regions, feature_dim)
  return {
      'regions': regions, 'boxes': boxes, 'region_mask': region_mask,
      'painting': np.arange(b, dtype=np.int32),
      **random_sentence_fields(rng, config, vocab_size),
  }
