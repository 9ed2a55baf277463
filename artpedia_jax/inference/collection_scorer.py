"""One query against every painting of a collection, in one call on the devices.

The evaluator's `DeviceScorer` scores fixed-size chunks of sentences against chunks of
paintings, which suits a split's thousands of sentences; a search has one sentence, so
there most of each chunk would be padding. Here a collection's encoded paintings are put
on the devices once (split over the `data` axis) and stay there, and a query is encoded
and scored against all of them by one compiled function, the model's own
`encode_sentences` and `pairwise_scores`, so the scores equal the evaluator's. Queries
are padded to the model's `max_words`, so one compilation serves every query (and JAX's
persistent cache keeps it for the next process).
"""

from flax import nnx
import jax
import numpy as np

from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.model import model as model_lib
from artpedia_jax.parallel import sharding as sharding_lib


class CollectionScorer:
  """Scores a query against paintings kept on the devices of `mesh`."""

  def __init__(self, graphdef: nnx.GraphDef, mesh: jax.sharding.Mesh, block_size: int):
    self._mesh = mesh
    data = sharding_lib.batch_sharded(mesh)
    rep = sharding_lib.replicated(mesh)

    def scores(variables, v, region_mask, tokens):
      model = model_lib.merge(graphdef, variables)
      w, word_mask = model.encode_sentences(tokens)
      return model.pairwise_scores(v, region_mask, w, word_mask,
                                   block_size=block_size)[:, 0]

    self._scores = jax.jit(scores, in_shardings=(rep, data, data, rep),
                           out_shardings=data)

  def put(self, encoded: device_scoring.HostEncodedPaintings) -> tuple[jax.Array, jax.Array]:
    """The paintings' region vectors and masks on the devices, padded to a multiple of
    the device count with paintings without regions."""
    rows = -(-len(encoded) // self._mesh.size) * self._mesh.size
    pad = lambda x: np.concatenate([x, np.zeros((rows - len(x),) + x.shape[1:], x.dtype)])
    return (sharding_lib.shard_full(self._mesh, pad(encoded.v)),
            sharding_lib.shard_full(self._mesh, pad(encoded.region_mask)))

  def scores(self, variables, paintings: tuple[jax.Array, jax.Array], num_paintings: int,
             tokens: np.ndarray) -> np.ndarray:
    """float32 [num_paintings]: S(painting, query) for the query's tokens [1, T]."""
    v, region_mask = paintings
    tokens = jax.make_array_from_callback(
        tokens.shape, sharding_lib.replicated(self._mesh), lambda index: tokens[index])
    scores = self._scores(variables, v, region_mask, tokens)
    return sharding_lib.to_host(scores)[:num_paintings]
