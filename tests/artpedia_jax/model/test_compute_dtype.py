"""config.model.dtype=bfloat16: scores agree with float32 within bfloat16 rounding.

Both models hold the same float32 parameters (one seed); only the computation differs.
Scores are means of cosines in [-1, 1]; bfloat16 keeps 8 significant bits, and the
contractions accumulate in float32, so 1e-2 absolute is about four times the largest
difference measured on these shapes (3e-3 to 4e-3).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from artpedia_jax.model import model as model_lib
from tests.helpers import train_fixtures

TOLERANCE = 1e-2


def _scores(score: str, dtype: str):
  config = train_fixtures.tiny_config(score=score, dtype=dtype)
  model = train_fixtures.tiny_model(config)
  batch = train_fixtures.synthetic_batch(config, batch_size=16)
  v, rmask, _ = model.encode_painting_inputs(batch)
  w, wmask = model.encode_sentences(batch['tokens'])
  scores = model.pairwise_scores(v, rmask, w, wmask, block_size=8)
  logits = model.classify(v, rmask, w, wmask)
  return (v, w), scores, logits


@pytest.mark.parametrize('score', ['align', 'scan_t2i', 'pooled'])
def test_bfloat16_scores_agree_with_float32(score):
  (v32, w32), scores32, logits32 = _scores(score, 'float32')
  (v16, w16), scores16, logits16 = _scores(score, 'bfloat16')
  assert v16.dtype == w16.dtype == jnp.bfloat16 and v32.dtype == jnp.float32
  assert scores16.dtype == logits16.dtype == jnp.float32  # losses see float32
  np.testing.assert_allclose(scores16, scores32, atol=TOLERANCE)
  np.testing.assert_allclose(logits16, logits32, atol=TOLERANCE)


def test_unknown_dtype_is_refused():
  with pytest.raises(ValueError, match='model.dtype'):
    model_lib.compute_dtype('float16')
