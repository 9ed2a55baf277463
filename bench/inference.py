r"""How fast a trained model answers a person: the command line and the local page.

  python -m bench.inference --workdir=W [--step=best] [--split=train+validation+test]

Measured on a collection of the model's dataset (Artpedia's size: build the sample with
`num_paintings=3000` and search all its splits, the default), with every cache in a
temporary folder so the workdir's own are neither used nor changed:

* `first_query_cli` — `python -m artpedia_jax.search` in a new process with no cache
  at all: reading the split, encoding and caching its paintings, compiling;
* `warm_cli` — the same command again, a new process with every cache on disk (the
  median of --runs): interpreter start, imports, restoring the checkpoint, the split's
  catalogue and encodings from the inference cache, compiled code from JAX's cache;
  `warm_cli_cpu` its CPU time (user + system), which other jobs on the machine inflate
  far less than its wall time;
* `server_query` — `GET /?q=...` on a running server (median of --queries visual
  sentences of the collection, after one warm-up), and `api_query` the same through
  `/api/search`;
* `painting_page` — `GET /painting/<id>` (median over --queries paintings);
* `annotation_page` — `POST /annotate` of a 20,000-character text: time and page weight.

Each figure is printed beside its target (2-core CPU) and their ratio.
"""

import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from absl import app
from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import web_app

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'train+validation+test', 'The split searched.')
_RUNS = flags.DEFINE_integer('runs', 3, 'Warm command-line calls timed.', lower_bound=1)
_QUERIES = flags.DEFINE_integer('queries', 10, 'Server requests timed.', lower_bound=1)

# (seconds or bytes) the targets on a 2-core CPU.
TARGETS = {'warm_cli': 3.0, 'server_query': 0.150, 'painting_page': 0.300,
           'annotation_page_bytes': 1_000_000}
TEXT_CHARS = 20_000


def _timed(function):
  start = time.perf_counter()
  result = function()
  return time.perf_counter() - start, result


def _children_cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def _search_command(workdir: pathlib.Path, query: str, env: dict) -> tuple[float, float]:
  """(wall, CPU) seconds of one `search` command in a new process."""
  cpu = _children_cpu_s()
  seconds, result = _timed(lambda: subprocess.run(
      [sys.executable, '-m', 'artpedia_jax.search', f'--workdir={workdir}',
       f'--step={_STEP.value}', f'--split={_SPLIT.value}', query],
      capture_output=True, text=True, env=env, check=False))
  if result.returncode:
    raise RuntimeError(result.stderr[-2000:])
  return seconds, _children_cpu_s() - cpu


def _get(url: str, data: bytes | None = None) -> tuple[float, bytes]:
  def fetch():
    with urllib.request.urlopen(url, data=data, timeout=600) as response:
      return response.read()
  return _timed(fetch)


def _text(collection) -> str:
  """TEXT_CHARS characters of the collection's own sentences, in order."""
  text, j = '', 0
  while len(text) < TEXT_CHARS:
    text += collection.sentence_texts[j % len(collection.sentence_texts)] + ' '
    j += 1
  return text[:TEXT_CHARS]


def _report(name: str, value: float, unit: str, note: str) -> None:
  target = TARGETS.get(name)
  versus = f'  target {target:g} {unit}: {value / target:.2f}x' if target else ''
  shown = f'{value:>12,.0f}' if unit == 'bytes' else f'{value:>12.3f}'
  print(f'{name:<22}{shown} {unit:<5}{versus}  ({note})')


def main(argv):
  del argv
  console.prepare_command()
  with tempfile.TemporaryDirectory() as scratch:
    scratch = pathlib.Path(scratch)
    workdir = scratch / 'workdir'  # the model's checkpoints, a cache of its own
    workdir.mkdir()
    (workdir / 'checkpoints').symlink_to(pathlib.Path(_WORKDIR.value).resolve() /
                                         'checkpoints')
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(scratch / 'jax'))
    query = 'a large blue cross'
    first = _search_command(workdir, query, env)
    warm = [_search_command(workdir, query, env) for _ in range(_RUNS.value)]

    os.environ.update(env)
    console.enable_compilation_cache()
    predictor = inference.Predictor.from_workdir(str(workdir), _STEP.value)
    collection = predictor.open_split(_SPLIT.value)
    predictor.encode_collection(collection)
    server = web_app.make_server(web_app.create_app(predictor, collection), '127.0.0.1', 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{server.port}'
    queries = [text for text, visual in zip(collection.sentence_texts,
                                            collection.is_visual) if visual]
    step = max(1, len(queries) // (_QUERIES.value + 1))
    queries = queries[::step][:_QUERIES.value + 1]
    _get(f'{base}/?q={urllib.parse.quote(queries[0])}')
    page = [_get(f'{base}/?q={urllib.parse.quote(q)}')[0] for q in queries[1:]]
    api = [_get(f'{base}/api/search?q={urllib.parse.quote(q)}')[0] for q in queries[1:]]
    ids = collection.ids[::max(1, len(collection) // (_QUERIES.value + 1))]
    _get(f'{base}/painting/{ids[0]}')
    paintings = [_get(f'{base}/painting/{urllib.parse.quote(i)}')[0]
                 for i in ids[1:_QUERIES.value + 1]]
    form = urllib.parse.urlencode({'text': _text(collection), 'id': ids[0]}).encode()
    annotate_s, annotation = _get(f'{base}/annotate', form)
    server.shutdown()

  print(f'collection {collection.name}: {len(collection)} paintings, '
        f'{len(collection.sentence_texts)} sentences; checkpoint step {predictor.step}; '
        f'{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}')
  _report('first_query_cli', first[0], 's', 'new process, no cache')
  _report('warm_cli', statistics.median(w for w, _ in warm), 's',
          f'new process, caches on disk; median of {len(warm)}')
  _report('warm_cli_cpu', statistics.median(c for _, c in warm), 's',
          'its user + system CPU time: what a shared machine inflates least')
  _report('server_query', statistics.median(page), 's',
          f'GET /?q=, median of {len(page)}')
  _report('api_query', statistics.median(api), 's',
          f'GET /api/search, median of {len(api)}')
  _report('painting_page', statistics.median(paintings), 's',
          f'GET /painting/<id>, median of {len(paintings)}')
  _report('annotation_page', annotate_s, 's', f'POST /annotate, {TEXT_CHARS:,} characters')
  sentences = annotation.count(b'<li class="sentence')
  _report('annotation_page_bytes', len(annotation), 'bytes', f'{sentences} sentences')


if __name__ == '__main__':
  app.run(main)
