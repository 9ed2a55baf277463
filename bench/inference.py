r"""Latency of the inference API on a trained workdir: restoring, a collection's first
query (which encodes and caches its paintings) and the queries after it.

  python -m bench.inference --workdir=W [--step=best] [--split=test] [--queries=5]

Prints, in seconds: `restore` (Predictor.from_workdir), `open_split` (reading the
split, tokenising its sentences, fingerprinting its paintings), `first_query` (search on the
split with an empty cache: loading the split, encoding every painting, writing the
cache, compiling and scoring), `cached_query_new_process` (a fresh Predictor answering
from the disk cache: loading the split, reading the cache, compiling, scoring) and
`cached_query` (the median of --queries further searches in the same process), plus
`annotate` (one painting's own sentences, compiled) and the sizes involved. The cache
goes to a temporary folder, so the workdir's own cache is neither used nor changed.
"""

import statistics
import tempfile
import time

from absl import app
from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import predictor as inference

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'The split searched.')
_QUERIES = flags.DEFINE_integer('queries', 5, 'Cached queries timed.', lower_bound=1)


def _timed(function):
  start = time.perf_counter()
  result = function()
  return time.perf_counter() - start, result


def main(argv):
  del argv
  console.quiet_third_party_info()
  with tempfile.TemporaryDirectory() as cache:
    restore_s, predictor = _timed(lambda: inference.Predictor.from_workdir(
        _WORKDIR.value, _STEP.value, cache_dir=cache))
    open_s, collection = _timed(lambda: predictor.open_split(_SPLIT.value))
    texts = [str(t) for t in collection.split.sentence_texts]
    queries = texts[:_QUERIES.value + 1]
    first_s, _ = _timed(lambda: predictor.search(
        queries[0], predictor.open_split(_SPLIT.value), k=10))
    fresh = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value, cache_dir=cache)
    new_process_s, _ = _timed(lambda: fresh.search(
        queries[0], fresh.open_split(_SPLIT.value), k=10))
    cached = [_timed(lambda q=q: predictor.search(q, collection, k=10))[0]
              for q in queries[1:]]
    own = [texts[j] for j in collection.sentence_rows(0)]
    annotate_s, _ = _timed(lambda: predictor.annotate_sentences(collection.painting(0),
                                                                own))
  print(f'collection {collection.name}: {len(collection)} paintings, '
        f'{len(texts)} sentences; checkpoint step {predictor.step}')
  print(f'restore                  {restore_s:8.3f} s')
  print(f'open_split               {open_s:8.3f} s  (read, tokenise, fingerprint)')
  print(f'first_query              {first_s:8.3f} s  (encodes and caches the paintings)')
  print(f'cached_query_new_process {new_process_s:8.3f} s  (split loaded, cache read)')
  print(f'cached_query             {statistics.median(cached):8.3f} s  (median of '
        f'{len(cached)})')
  print(f'annotate                 {annotate_s:8.3f} s  ({len(own)} sentences of one '
        'painting)')


if __name__ == '__main__':
  app.run(main)
