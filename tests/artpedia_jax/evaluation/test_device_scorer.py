"""Device scoring against the model: scoring a split in padded, sharded chunks gives the
model's own all-pairs scores and visual probabilities of the whole split at once."""

from flax import nnx
import jax
import numpy as np
import pytest

from artpedia_jax.data import ensure_built as dataset
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import device_scorer
from artpedia_jax.evaluation import evaluator as evaluation
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding
from tests.helpers import e2e_helpers
from tests.helpers import train_fixtures


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)


def _eval_spec(config) -> device_scorer.EvalSpec:
  return device_scorer.EvalSpec.from_config(config)

CHUNK = 8  # eval_batch_size, one row per device
NUM_PAINTINGS = 30  # 4 chunks, the last with 6 paintings and 2 padding rows
NUM_SENTENCES = 45  # 6 chunks, the last with 5 sentences


def _split(config, seed: int = 0) -> eval_split.EvalSplit:
  rng = np.random.default_rng(seed)
  r = config.dataset.max_regions
  region_mask = np.arange(r) < rng.integers(1, r + 1, size=(NUM_PAINTINGS, 1))
  return eval_split.EvalSplit(
      painting_ids=np.array([f'p{i}' for i in range(NUM_PAINTINGS)]),
      titles=np.array([f'Painting {i}' for i in range(NUM_PAINTINGS)]),
      paintings={
          'regions': rng.normal(size=(NUM_PAINTINGS, r, train_fixtures.FEATURE_DIM)
                                ).astype(np.float32),
          'boxes': np.sort(rng.uniform(size=(NUM_PAINTINGS, r, 4)), -1).astype(np.float32),
          'region_mask': region_mask},
      tokens=train_fixtures.random_tokens(rng, (NUM_SENTENCES,), config.dataset.max_words),
      sentence_texts=np.array([f's{j}' for j in range(NUM_SENTENCES)]),
      sentence_painting=rng.integers(0, NUM_PAINTINGS, NUM_SENTENCES).astype(np.int32),
      is_visual=rng.uniform(size=NUM_SENTENCES) < 0.6)


@pytest.mark.parametrize('length_buckets,chunk', [((), CHUNK), ((4, 8, 12), CHUNK),
                                                  ((), 3 * CHUNK)])
def test_chunked_scores_and_probabilities_equal_the_model_on_the_whole_split(
    length_buckets, chunk):
  """With buckets, chunks of sentences sorted by length run at 4 to 16 words; with
  chunks of 24, the 30 paintings score as two chunks of 16 rows."""
  config = train_fixtures.tiny_config()
  config.dataset.length_buckets = length_buckets
  config.eval_batch_size = chunk
  config.score_block_size = 3  # partial blocks inside each chunk too
  model = train_fixtures.tiny_model(config)
  graphdef, variables = model_lib.split(model)
  split = _split(config)

  scorer = device_scorer.DeviceScorer(graphdef, _eval_spec(config), sharding.make_mesh())
  scored = evaluation.SplitEvaluator(scorer, split, split_name='test').run(
      variables, step=0).scores

  v, rmask, _ = model.encode_painting_inputs(split.paintings)
  w, wmask = model.encode_sentences(split.tokens)
  scores = model.pairwise_scores(v, rmask, w, wmask, block_size=NUM_SENTENCES)
  own = split.sentence_painting
  probs = jax.nn.sigmoid(model.classify(v[own], rmask[own], w, wmask))
  assert scored.scores.shape == (NUM_PAINTINGS, NUM_SENTENCES)
  np.testing.assert_allclose(scored.scores, scores, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(scored.probs, probs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('paintings,chunk,devices,rows', [
    (340, 256, 1, 192),  # two chunks of 170, rounded up to 32s
    (100, 256, 1, 128),
    (256, 256, 1, 256),
    (257, 256, 1, 160),  # two chunks of 129
    (1, 256, 1, 32),
    (5, 256, 8, 32),
    (30, 24, 8, 16),  # the granule is at least the device count
    (3000, 256, 8, 256),
])
def test_painting_chunks_split_evenly_with_little_padding(paintings, chunk, devices, rows):
  got = device_scorer.painting_chunk_rows(paintings, chunk, devices)
  assert got == rows
  chunks = -(-paintings // got)
  assert chunks == -(-paintings // chunk)  # no more chunks than full ones would take
  assert got % devices == 0 and got <= chunk
  assert chunks * got - paintings < chunks * max(devices, chunk // 8)


def test_word_region_scores_are_the_dot_products_of_words_and_regions():
  config = train_fixtures.tiny_config()
  config.eval_batch_size = CHUNK
  model = train_fixtures.tiny_model(config)
  graphdef, variables = model_lib.split(model)
  split = _split(config)
  scorer = device_scorer.DeviceScorer(graphdef, _eval_spec(config), sharding.make_mesh())
  painting = scorer.encode_paintings(variables, split.paintings).take(np.array([3]))
  word_region = scorer.word_region_scores(variables, painting, split.tokens[:11])
  v, _, _ = model.encode_painting_inputs(
      {name: x[3:4] for name, x in split.paintings.items()})
  w, _ = model.encode_sentences(split.tokens[:11])
  np.testing.assert_allclose(word_region, np.einsum('std,rd->str', w, v[0]),
                             rtol=1e-5, atol=1e-6)


def _flat(tree, prefix=''):
  """Every number of a nested metrics dict, keyed by its path."""
  if isinstance(tree, dict):
    return {k: v for key, value in tree.items()
            for k, v in _flat(value, f'{prefix}{key}/').items()}
  return {prefix: tree} if isinstance(tree, (int, float)) else {}


@pytest.mark.slow
def test_metrics_with_and_without_length_buckets_agree_on_the_sample_corpus(tmp_path):
  config = e2e_helpers.e2e_config(tmp_path, eval_batch_size=32)
  config.dataset.max_words = 40
  dataset.prepare(config)
  source = pipeline.open_source(_inputs(config), 'validation')
  vocab = vocab_lib.build_from_source(pipeline.open_source(_inputs(config), 'train'), min_count=1)
  split = eval_split.load_eval_split(_inputs(config), source, vocab)
  model = model_lib.ArtpediaModel(model_lib.ModelSpec.from_config(config),
                                  vocab_size=len(vocab),
                                  feature_dim=painting_inputs.feature_dim(source),
                                  rngs=nnx.Rngs(0))
  graphdef, variables = model_lib.split(model)
  runs = []
  for buckets in [(), (8, 16, 24, 32)]:
    config.dataset.length_buckets = buckets
    scorer = device_scorer.DeviceScorer(graphdef, _eval_spec(config), sharding.make_mesh())
    runs.append(evaluation.SplitEvaluator(scorer, split, split_name='validation').run(
        variables, step=0))
  plain, bucketed = runs
  np.testing.assert_allclose(bucketed.scores.scores, plain.scores.scores, atol=1e-5)
  np.testing.assert_allclose(bucketed.scores.probs, plain.scores.probs, atol=1e-5)
  flat_plain, flat_bucketed = _flat(plain.metrics), _flat(bucketed.metrics)
  assert flat_plain and flat_plain.keys() == flat_bucketed.keys()
  for key, value in flat_plain.items():
    assert flat_bucketed[key] == pytest.approx(value, abs=1e-5), key
