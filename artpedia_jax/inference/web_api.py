"""The JSON API beside the page: the same questions, checks and limits, as data.

* `GET /api/search?q=TEXT&k=N` — `answers.search_json`: the best `k` paintings (id,
  title, year, score) and the words the model read and did not;
* `GET /api/paintings/<id>` — `answers.painting_json`: the painting's own sentences
  ranked, each with kind, p_visual, score and the dataset's label;
* `POST /api/annotate` (form or JSON fields `text` and `id`) —
  `answers.annotation_json`: the sentences in reading order.

A refused request is `{"error": message}` (with `words` for an unreadable query) and
its HTTP status.
"""

import flask
from werkzeug import exceptions

from artpedia_jax.inference import answers
from artpedia_jax.inference import web_service

MAX_RESULTS = 100


def _fields() -> dict:
  """A POST's fields, from a JSON body or a form."""
  if flask.request.is_json:
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
      raise web_service.RequestError(400, 'The JSON body must be an object with the '
                                     'fields "text" and "id".')
    return {key: str(value) for key, value in body.items() if value is not None}
  return flask.request.form


def blueprint(service: web_service.Service, too_large: str) -> flask.Blueprint:
  """The API's routes under /api for `service`."""
  api = flask.Blueprint('api', __name__, url_prefix='/api')

  @api.errorhandler(web_service.RequestError)
  def refused(error: web_service.RequestError):
    body = {'error': str(error)}
    if error.words is not None:
      body['words'] = answers.words_json(error.words)
    return flask.jsonify(body), error.status

  @api.errorhandler(exceptions.HTTPException)
  def http_error(error: exceptions.HTTPException):
    message = (too_large if isinstance(error, exceptions.RequestEntityTooLarge)
               else error.description or error.name)
    return flask.jsonify({'error': message}), error.code

  @api.get('/search')
  def search():
    k = flask.request.args.get('k', '10')
    if not k.isdigit() or not 1 <= int(k) <= MAX_RESULTS:
      raise web_service.RequestError(400, f'k={k!r}: give a number of results from 1 to '
                                     f'{MAX_RESULTS}.')
    result = service.search(flask.request.args.get('q', ''), int(k))
    return flask.jsonify(answers.search_json(result))

  @api.get('/paintings/<painting_id>')
  def painting(painting_id: str):
    view = service.painting(painting_id, align=False)
    return flask.jsonify(answers.painting_json(service.collection, view.index,
                                               view.ranked))

  @api.post('/annotate')
  def annotate():
    fields = _fields()
    view = service.annotate(fields.get('text', ''), fields.get('id', ''))
    return flask.jsonify(answers.annotation_json(view.painting_id, view.sentences,
                                                 service.predictor.step))

  return api
