r"""Serves a trained model's local web page: search, browse a painting, annotate a text.

  python -m artpedia_jax.serve --workdir=W [--split=test | --folder=DIR] [--port=8080]

Binds 127.0.0.1 unless --host says otherwise (the page has no authentication: expose it
only on a network you trust). The collection is encoded before the server starts, so
the first search is as fast as the others. Beside the pages, a JSON API answers
`GET /api/search?q=TEXT&k=N`, `GET /api/paintings/<id>` and `POST /api/annotate`
(see `artpedia_jax.inference.web_api`).
"""

from absl import app
from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import web_app as web
from tfds_artpedia import cli
from tfds_artpedia import errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'The built split to serve.')
_FOLDER = flags.DEFINE_string('folder', None, 'Serve this folder instead of --split.')
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'The address to listen on.')
_PORT = flags.DEFINE_integer('port', 8080, 'The port (0: any free one).', lower_bound=0,
                             upper_bound=65535)
_MAX_UPLOAD_MB = flags.DEFINE_integer('max_upload_mb', web.MAX_UPLOAD_BYTES >> 20,
                                      'Largest accepted upload, in MB.', lower_bound=1)


def serve() -> None:
  predictor = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  collection = (predictor.open_folder(_FOLDER.value) if _FOLDER.value
                else predictor.open_split(_SPLIT.value))
  progress = None if predictor.is_cached(collection) else console.progress_line(
      f'Encoding the {len(collection)} paintings of {collection.name} (once; cached)')
  predictor.encode_collection(collection, progress)
  page = web.create_app(predictor, collection,
                        max_upload_bytes=_MAX_UPLOAD_MB.value << 20)
  try:
    server = web.make_server(page, _HOST.value, _PORT.value)
  except OSError as error:  # the port is taken, or not ours to bind
    raise errors.UserError(f'cannot listen on {_HOST.value}:{_PORT.value} '
                           f'({error.strerror}); pick another --port.') from error
  print(f'Serving {collection.name} on http://{_HOST.value}:{server.port}/ '
        '(Ctrl-C stops)', flush=True)
  server.serve_forever()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.prepare_command(flags.FLAGS.verbose)
  serve()


if __name__ == '__main__':
  cli.run(main)
