"""The local web page of a trained model (Flask): search, browse a painting, annotate.

Pages (Jinja templates in `templates/`, one stylesheet and one small script in
`static/`), every painting named by its Artpedia id:

* `/` — a search box with example queries; `?q=...` lists the best paintings, with the
  words the model read and a warning when it knows too few of them;
* `/painting/<id>` — the painting with its title and year, its own sentences ranked by
  S(v, s) with predicted kind, p(visual) and the dataset's label, the chosen sentence's
  (`?sentence=j`) words aligned with the painting's regions in the browser, and a box to
  annotate a text for it;
* `/annotate` — paste a text for a painting of the collection (its id) or an uploaded
  image (pixel models): the sentences in reading order, coloured by kind;
* `/thumbnail/<id>`, `/image/<id>`, `/upload/<token>` — the pictures, as JPEG by URL.

The JSON API (`web_api`) answers the same questions. Inputs are checked before any work
(`web_service`): an upload larger than `max_upload_bytes` is refused by Flask itself
(413), a text longer than `max_text_chars` or empty, an unknown id, an image Pillow
cannot decode come back beside the form that sent them (the text kept), never a
traceback.
"""

import flask
from werkzeug import exceptions
from werkzeug import serving

from artpedia_jax.inference import page_helpers
from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import web_api
from artpedia_jax.inference import web_service

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_TEXT_CHARS = 20_000
RESULTS = 12
_CACHED = {'Cache-Control': 'private, max-age=3600'}


def _jpeg_response(data: bytes) -> flask.Response:
  return flask.Response(data, mimetype='image/jpeg', headers=_CACHED)


def _too_large(max_upload_bytes: int) -> str:
  return (f'The upload is larger than the {max_upload_bytes / 2**20:g} MB accepted: send '
          'a smaller image.')


def create_app(predictor: inference.Predictor, collection, *,
               max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_text_chars: int = MAX_TEXT_CHARS) -> flask.Flask:
  """The page for `predictor` over `collection` (a split or folder collection)."""
  app = flask.Flask(__name__)
  app.config['MAX_CONTENT_LENGTH'] = max_upload_bytes
  app.json.sort_keys = False  # answers keep their documented order
  page_helpers.register(app.jinja_env)
  service = web_service.Service(predictor, collection, max_text_chars)
  app.register_blueprint(web_api.blueprint(service, _too_large(max_upload_bytes)))

  @app.context_processor
  def common():
    return {'home': flask.url_for('search'), 'step': predictor.step,
            'collection_name': collection.name, 'collection_size': len(collection),
            'max_chars': max_text_chars,
            'asset': lambda name: flask.url_for('static', filename=name)}

  def render(template: str, status: int = 200, **context) -> flask.Response:
    return flask.Response(flask.render_template(template, **context), status=status,
                          mimetype='text/html')

  def error_page(status: int, message: str) -> flask.Response:
    return render('error.html', status, title=_TITLES.get(status, f'Error {status}'),
                  error=message)

  @app.errorhandler(web_service.RequestError)
  def refused(error: web_service.RequestError):
    return error_page(error.status, str(error))

  @app.errorhandler(exceptions.HTTPException)
  def http_error(error: exceptions.HTTPException):
    if isinstance(error, exceptions.RequestEntityTooLarge):
      return annotate_page(413, error=_too_large(max_upload_bytes))
    return error_page(error.code, error.description or error.name)

  @app.errorhandler(Exception)
  def unexpected(error: Exception):
    app.logger.exception('Unexpected error')
    return error_page(500, f'The server failed on this request ({type(error).__name__}); '
                      'see its console.')

  @app.get('/')
  def search():
    query = flask.request.args.get('q', '')
    context = {'title': 'Search the paintings', 'query': query,
               'examples': service.examples}
    if not query:
      return render('search.html', **context)
    try:
      result = service.search(query, RESULTS)
    except web_service.RequestError as error:
      return render('search.html', error.status, error=str(error), words=error.words,
                    unreliable=error.words is not None, **context)
    return render('search.html', hits=result.hits, words=result.words,
                  unreliable=result.unreliable, **context)

  @app.get('/painting/<painting_id>')
  def painting(painting_id: str):
    view = service.painting(painting_id, flask.request.args.get('sentence', type=int))
    has_image = collection.image_bytes(view.index) is not None
    return render(
        'painting.html', title=collection.titles[view.index],
        year=collection.year(view.index), painting_id=painting_id,
        image_url=flask.url_for('image', painting_id=painting_id) if has_image else None,
        ranked=view.ranked, chosen=view.chosen, chosen_index=view.chosen_index,
        labels=view.labels)

  def annotate_page(status: int = 200, **context) -> flask.Response:
    return render('annotate.html', status, title='Annotate a text', show_form=True,
                  upload=predictor.reader.uses_pixels, **context)

  @app.get('/annotate')
  def annotate_form():
    return annotate_page(painting_id=flask.request.args.get('id', ''))

  @app.post('/annotate')
  def annotate():
    text = flask.request.form.get('text', '')
    painting_id = flask.request.form.get('id', '')
    file = flask.request.files.get('image')
    upload = file.read() if file is not None and file.filename else None
    try:
      view = service.annotate(text, painting_id, upload)
    except web_service.RequestError as error:
      return annotate_page(error.status, text=text, painting_id=painting_id,
                           error=str(error))
    caption = (collection.titles[collection.index_of(view.painting_id)]
               if upload is None else view.painting_id)
    return annotate_page(
        text=text, painting_id=painting_id, sentences=view.sentences,
        image_url=flask.url_for('search') + view.image_url if view.image_url else None,
        painting_caption=caption)

  @app.get('/thumbnail/<painting_id>')
  def thumbnail(painting_id: str):
    return _jpeg_response(service.image(painting_id, web_service.THUMBNAIL_SIDE))

  @app.get('/image/<painting_id>')
  def image(painting_id: str):
    return _jpeg_response(service.image(painting_id, web_service.IMAGE_SIDE))

  @app.get('/upload/<token>')
  def uploaded(token: str):
    return _jpeg_response(service.upload(token))

  return app


_TITLES = {400: 'Not understood', 404: 'Not found', 413: 'Too large',
           500: 'Internal error'}


def make_server(page: flask.Flask, host: str, port: int):
  """A threaded WSGI server for `page` (port 0: a free one, read back as `.port`)."""
  return serving.make_server(host, port, page, threaded=True)
