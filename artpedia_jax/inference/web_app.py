"""The local web page of a trained model (Flask): search, browse a painting, annotate.

Routes (all read-only on the server's side; nothing a request sends becomes a path):

* `/` — a search box; `?q=...` lists the collection's top paintings as thumbnails;
* `/painting/<n>` — painting n of the collection: its own sentences ranked by S(v, s),
  each predicted visual or contextual with p(visual) (and the dataset's label), the
  alignment of the chosen sentence (`?sentence=j`) drawn on it, and a box to annotate a
  pasted text for it;
* `/annotate` — paste a text, pick a painting of the collection or upload an image
  (pixel models), get the text annotated;
* `/thumbnail/<n>`, `/image/<n>`, `/alignment/<n>/<j>` — the pictures those pages show,
  made in memory.

Inputs are checked before any work: an upload larger than `max_upload_bytes` is refused
by Flask itself (413), a text longer than `max_text_chars` or empty, an image Pillow
cannot decode, an unknown painting or sentence number all come back as a page saying
what is wrong, never a traceback.
"""

import html
import io
import threading

import flask
from PIL import Image
from werkzeug import exceptions
from werkzeug import serving

from artpedia_jax.inference import annotation_page
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import predictor as inference

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_TEXT_CHARS = 20_000
THUMBNAIL_SIDE = 160
IMAGE_SIDE = 768
RESULTS = 12

_e = html.escape


class _BadRequest(exceptions.BadRequest):
  """A user's input we refuse; its description is shown on the page."""


def _nav() -> str:
  return ('<p><a href="/">Search</a> · <a href="/annotate">Annotate a text</a></p>')


def _search_form(query: str = '') -> str:
  return ('<form action="/" method="get"><input type="text" name="q" size="60" '
          f'id="query" value="{_e(query)}" placeholder="a woman holding a child">'
          '<button type="submit" id="search">Search</button></form>')


def _jpeg(image_bytes: bytes, max_side: int, where: str) -> bytes:
  pixels = painting_files.decode_image(image_bytes, where)
  picture = Image.fromarray(pixels)
  picture.thumbnail((max_side, max_side))
  buffer = io.BytesIO()
  picture.save(buffer, format='JPEG', quality=88)
  return buffer.getvalue()


def _png_response(data: bytes, mimetype: str = 'image/png') -> flask.Response:
  return flask.Response(data, mimetype=mimetype,
                        headers={'Cache-Control': 'private, max-age=3600'})


def create_app(predictor: inference.Predictor, collection, *,
               max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_text_chars: int = MAX_TEXT_CHARS) -> flask.Flask:
  """The page for `predictor` over `collection` (a split or folder collection)."""
  app = flask.Flask(__name__)
  app.config['MAX_CONTENT_LENGTH'] = max_upload_bytes
  lock = threading.Lock()  # one model call at a time: the devices are shared

  def page(title: str, body: str, status: int = 200) -> flask.Response:
    heading = f'<h1>{_e(title)}</h1>' + _nav()
    return flask.Response(annotation_page.page(title, heading + body), status=status,
                          mimetype='text/html')

  def painting_index(index: int) -> int:
    if not 0 <= index < len(collection):
      raise exceptions.NotFound(f'There is no painting {index}: the collection has '
                                f'{len(collection)} (0 to {len(collection) - 1}).')
    return index

  def own_sentences(index: int) -> list[str]:
    split = collection.split
    return [] if split is None else [str(split.sentence_texts[j])
                                     for j in collection.sentence_rows(index)]

  @app.errorhandler(exceptions.HTTPException)
  def http_error(error: exceptions.HTTPException):
    message = error.description or error.name
    if isinstance(error, exceptions.RequestEntityTooLarge):
      message = (f'The upload is larger than the {max_upload_bytes // 1024 // 1024} MB '
                 'accepted: send a smaller image.')
    return page(f'{error.code} {error.name}', f'<p class="error">{_e(message)}</p>',
                error.code)

  @app.errorhandler(Exception)
  def unexpected(error: Exception):
    app.logger.exception('Unexpected error')
    return page('500 Internal error', '<p class="error">The server failed on this '
                f'request ({_e(type(error).__name__)}); see its console.</p>', 500)

  @app.get('/')
  def search():
    query = flask.request.args.get('q', '').strip()
    body = (f'<p>{len(collection)} paintings in {_e(collection.name)}, checkpoint step '
            f'{predictor.step}.</p>' + _search_form(query))
    if not query:
      return page('Search paintings', body)
    if len(query) > max_text_chars:
      raise _BadRequest(f'The query has {len(query)} characters; at most '
                        f'{max_text_chars} are accepted.')
    try:
      with lock:
        hits = predictor.search(query, collection, RESULTS)
    except inference.InferenceError as error:
      return page('Search paintings', body + f'<p class="error">{_e(str(error))}</p>', 400)
    thumbs = ''.join(
        f'<a class="hit" href="/painting/{h.index}"><img src="/thumbnail/{h.index}" '
        f'alt="{_e(h.title)}"><br>{_e(h.title)}<br><small>{_e(h.painting_id)} · '
        f'{h.score:.3f}</small></a>' for h in hits)
    return page('Search paintings', body + f'<div class="thumbs">{thumbs}</div>')

  def image_of(index: int) -> bytes:
    data = collection.image_bytes(painting_index(index))
    if data is None:
      raise exceptions.NotFound(f'Painting {index} has no image.')
    return data

  @app.get('/thumbnail/<int:index>')
  def thumbnail(index: int):
    return _png_response(_jpeg(image_of(index), THUMBNAIL_SIDE, f'painting {index}'),
                         'image/jpeg')

  @app.get('/image/<int:index>')
  def image(index: int):
    return _png_response(_jpeg(image_of(index), IMAGE_SIDE, f'painting {index}'),
                         'image/jpeg')

  @app.get('/alignment/<int:index>/<int:sentence>')
  def alignment(index: int, sentence: int):
    texts = own_sentences(painting_index(index))
    if not 0 <= sentence < len(texts):
      raise exceptions.NotFound(f'Painting {index} has {len(texts)} sentences; there is '
                                f'no sentence {sentence}.')
    painting = collection.painting(index)
    with lock:
      annotated = predictor.annotate_sentences(painting, [texts[sentence]])[0]
    return _png_response(annotation_page.alignment_png(painting, annotated))

  def annotate_form(index: int | None) -> str:
    choice = (f'<input type="hidden" name="painting" value="{index}">' if index is not None
              else '<label>Painting of the collection: <select name="painting" '
                   'id="painting"><option value="">(choose)</option>' + ''.join(
                       f'<option value="{n}">{_e(collection.titles[n])} '
                       f'({_e(collection.ids[n])})</option>'
                       for n in range(len(collection))) + '</select></label> ')
    upload = ('<label>or an image: <input type="file" name="image" accept="image/*">'
              '</label>' if predictor.reader.uses_pixels and index is None else '')
    return ('<form action="/annotate" method="post" enctype="multipart/form-data">'
            f'{choice}{upload}<br><textarea name="text" id="text" rows="8" cols="90" '
            f'maxlength="{max_text_chars}" placeholder="Paste the text about the '
            'painting"></textarea><br><button type="submit" id="annotate">Annotate'
            '</button></form>')

  @app.get('/painting/<int:index>')
  def painting_page(index: int):
    painting_index(index)
    title = f'{collection.titles[index]} ({collection.ids[index]})'
    texts = own_sentences(index)
    body = ''
    if texts:
      chosen = flask.request.args.get('sentence', type=int)
      with lock:
        ranked = predictor.describe(collection.painting(index), texts)
      if chosen is None:
        chosen = ranked[0].index
      if not 0 <= chosen < len(texts):
        raise exceptions.NotFound(f'Painting {index} has {len(texts)} sentences; there '
                                  f'is no sentence {chosen}.')
      labels = collection.split.is_visual[collection.sentence_rows(index)]
      rows = ''.join(
          f'<tr{" class=chosen" if s.index == chosen else ""}><td>{rank}</td>'
          f'<td>{s.score:.3f}</td><td>{"visual" if s.is_visual else "contextual"}'
          f'</td><td>{s.p_visual:.3f}</td><td>{"visual" if labels[s.index] else "contextual"}'
          f'</td><td><a class="sentence" href="/painting/{index}?sentence={s.index}">'
          f'{_e(s.text)}</a></td></tr>' for rank, s in enumerate(ranked, start=1))
      body += ('<h2>Its sentences, ranked by S(v, s)</h2><table><tr><th>rank</th>'
               '<th>S(v, s)</th><th>predicted</th><th>p(visual)</th><th>dataset label'
               f'</th><th>sentence (click: its alignment)</th></tr>{rows}</table>'
               f'<h2>Alignment of: {_e(texts[chosen])}</h2><img id="alignment" '
               f'src="/alignment/{index}/{chosen}" alt="word-region alignment">')
    elif collection.image_bytes(index) is not None:
      body += f'<img src="/image/{index}" alt="{_e(title)}">'
    body += '<h2>Annotate a text for this painting</h2>' + annotate_form(index)
    return page(title, body)

  @app.get('/annotate')
  def annotate_page():
    return page('Annotate a text', annotate_form(None))

  def posted_painting() -> painting_files.Painting:
    upload = flask.request.files.get('image')
    if upload is not None and upload.filename:
      data = upload.read()
      if not data:
        raise _BadRequest('The uploaded image is empty.')
      try:
        return predictor.reader.read(image=data, name='the uploaded image')
      except painting_files.PaintingInputError as error:
        raise _BadRequest(str(error)) from error
    number = flask.request.form.get('painting', '').strip()
    if not number.isdigit():
      raise _BadRequest('Choose a painting of the collection by its number'
                        + (' or upload an image.' if predictor.reader.uses_pixels
                           else '.'))
    return collection.painting(painting_index(int(number)))

  @app.post('/annotate')
  def annotate():
    text = flask.request.form.get('text', '')
    if not text.strip():
      raise _BadRequest('The text is empty: paste the sentences to annotate.')
    if len(text) > max_text_chars:
      raise _BadRequest(f'The text has {len(text)} characters; at most {max_text_chars} '
                        'are accepted.')
    painting = posted_painting()
    with lock:
      sentences = predictor.annotate(painting, text)
    pictures = {i: annotation_page.data_url(annotation_page.alignment_png(painting, s))
                for i, s in enumerate(sentences) if s.is_visual}
    return page(f'Annotation of {painting.name}',
                annotation_page.fragment(sentences, pictures.__getitem__))

  return app


def make_server(page: flask.Flask, host: str, port: int):
  """A threaded WSGI server for `page` (port 0: a free one, read back as `.port`)."""
  return serving.make_server(host, port, page, threaded=True)
