"""Small synthetic models and batches shared by the train-step and evaluator tests."""

from flax import nnx
import jax
import numpy as np

from artpedia_jax.data import pipeline
from artpedia_jax.model import model as model_lib
from artpedia_jax.train import step as train_step
from configs import test as test_config

FEATURE_DIM = 24
VOCAB_SIZE = 50


def tiny_config(**model_overrides):
  config = test_config.get_config()
  for key, value in model_overrides.items():
    setattr(config.model, key, value)
  return config


def tiny_model(config, seed: int = 0) -> model_lib.ArtpediaModel:
  return model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                 vocab_size=VOCAB_SIZE, feature_dim=FEATURE_DIM,
                                 rngs=nnx.Rngs(seed))


def step_spec(config) -> train_step.StepSpec:
  """The step's settings on synthetic batches: there is no training split for
  `loss.cls_pos_weight=-1` to weigh, so it stands for 1."""
  return train_step.StepSpec.from_config(config, prior_pos_weight=1.0)


def random_tokens(rng, shape, max_words):
  """Token ids [*shape, max_words] of 1 to max_words real words, right-padded with 0."""
  lengths = rng.integers(1, max_words + 1, size=shape)
  tokens = rng.integers(2, VOCAB_SIZE, size=shape + (max_words,))
  return np.where(np.arange(max_words) < lengths[..., None], tokens, 0).astype(np.int32)


def synthetic_batch(config, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """A training batch in the pipeline's layout, with two pairs of one painting."""
  rng = np.random.default_rng(seed)
  r, t = config.dataset.max_regions, config.dataset.max_words
  k = pipeline.extra_cls_sentences(config.dataset.cls_sentences)
  num_regions = rng.integers(1, r + 1, size=batch_size)
  region_mask = np.arange(r) < num_regions[:, None]
  painting = np.arange(batch_size, dtype=np.int32)
  painting[1] = painting[0]
  return {
      'regions': rng.normal(size=(batch_size, r, FEATURE_DIM)).astype(np.float32),
      'boxes': np.sort(rng.uniform(size=(batch_size, r, 4)), axis=-1).astype(np.float32),
      'region_mask': region_mask,
      'tokens': random_tokens(rng, (batch_size,), t),
      'painting': painting,
      'cls_tokens': random_tokens(rng, (batch_size, k), t),
      'cls_labels': rng.integers(0, 2, size=(batch_size, 1 + k)).astype(np.float32),
      'cls_mask': rng.uniform(size=(batch_size, 1 + k)) < 0.8,
  }


def assert_trees_equal(actual, expected) -> None:
  """Same structure and bitwise-equal leaves (host or device arrays)."""
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(e))
