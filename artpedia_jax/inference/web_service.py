"""What the web page and its JSON API ask of the model, checked the same way for both.

`Service` validates a request's fields (lengths, ids, uploads) before any model work,
runs one model call at a time (the devices are shared between the server's threads)
and answers with the predictor's own results, or a `RequestError` carrying the HTTP
status, a message for a person and, for a query the model cannot read, its words.
Paintings are named by their Artpedia id. An uploaded image (pixel models) is kept,
downscaled, among the last few so the result page can show it by URL.
"""

import collections
import dataclasses
import secrets
import threading

from artpedia_jax.inference import painting_files
from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import words as words_lib

IMAGE_SIDE = 768
THUMBNAIL_SIDE = 240
KEPT_UPLOADS = 16
EXAMPLE_QUERIES = 4
_EXAMPLE_WORDS = (3, 9)  # the shortest and longest example query, in words


class RequestError(Exception):
  """A request refused: `status` is its HTTP status, the message says what to do."""

  def __init__(self, status: int, message: str,
               words: words_lib.WordsRead | None = None):
    super().__init__(message)
    self.status = status
    self.words = words


@dataclasses.dataclass(frozen=True)
class PaintingView:
  index: int
  ranked: list[inference.RankedSentence]  # its own sentences, best first
  chosen: inference.AnnotatedSentence | None  # the sentence whose alignment is shown
  chosen_index: int | None  # into its own sentences
  labels: list[str]  # the dataset's label of each own sentence


@dataclasses.dataclass(frozen=True)
class AnnotationView:
  painting_id: str  # an Artpedia id, or 'the uploaded image'
  image_url: str | None
  sentences: list[inference.AnnotatedSentence]


def example_queries(predictor: inference.Predictor, collection,
                    count: int = EXAMPLE_QUERIES) -> list[str]:
  """Short visual sentences of the collection whose words the model all knows, spread
  over the collection: queries that show what the model can read."""
  is_visual = getattr(collection, 'is_visual', ())
  shortest, longest = _EXAMPLE_WORDS
  candidates = []
  for text, visual in zip(collection.sentence_texts, is_visual):
    words = predictor.read_words(text)
    if visual and not words.unknown and shortest <= len(words.known) <= longest:
      candidates.append(text.strip().rstrip('.'))
  candidates = list(dict.fromkeys(candidates))
  step = max(1, len(candidates) // count)
  return candidates[::step][:count]


class Service:
  """The model behind the page, for one collection."""

  def __init__(self, predictor: inference.Predictor, collection, max_text_chars: int):
    self.predictor = predictor
    self.collection = collection
    self.max_text_chars = max_text_chars
    self.examples = example_queries(predictor, collection)
    self._lock = threading.Lock()
    self._uploads: collections.OrderedDict[str, bytes] = collections.OrderedDict()

  def _checked_text(self, text: str, what: str) -> str:
    if not text.strip():
      raise RequestError(400, f'The {what} is empty: type the words to look for.'
                         if what == 'query' else
                         f'The {what} is empty: paste the sentences to annotate.')
    if len(text) > self.max_text_chars:
      raise RequestError(400, f'The {what} has {len(text)} characters; at most '
                         f'{self.max_text_chars} are accepted.')
    return text

  def index_of(self, painting_id: str) -> int:
    index = self.collection.index_of(painting_id)
    if index is None:
      raise RequestError(404, f'There is no painting with id {painting_id!r} in '
                         f'{self.collection.name} ({len(self.collection)} paintings, '
                         f'ids such as {", ".join(self.collection.ids[:3])}).')
    return index

  def search(self, query: str, k: int) -> inference.SearchResult:
    query = self._checked_text(query, 'query').strip()
    try:
      with self._lock:
        return self.predictor.search(query, self.collection, k)
    except inference.UnreadableQuery as error:
      raise RequestError(400, str(error), error.words) from error

  def image(self, painting_id: str, max_side: int) -> bytes:
    data = self.collection.image_bytes(self.index_of(painting_id))
    if data is None:
      raise RequestError(404, f'Painting {painting_id} has no image.')
    return painting_files.downscaled_jpeg(data, max_side, f'painting {painting_id}')

  def painting(self, painting_id: str, chosen: int | None = None, *,
               align: bool = True) -> PaintingView:
    """A painting's own sentences ranked; with `align`, the alignment of sentence
    `chosen` (default: the best ranked)."""
    index = self.index_of(painting_id)
    texts = self.collection.own_sentences(index)
    if chosen is not None and not 0 <= chosen < len(texts):
      raise RequestError(404, f'Painting {painting_id} has {len(texts)} sentences; there '
                         f'is no sentence {chosen}.')
    labels = ['visual' if self.collection.is_visual[j] else 'contextual'
              for j in self.collection.sentence_rows(index)]
    if not texts:
      return PaintingView(index, [], None, None, labels)
    with self._lock:
      painting = self.predictor.painting_of(self.collection, index)
      ranked = self.predictor.describe(painting, texts)
      if not align:
        return PaintingView(index, ranked, None, None, labels)
      chosen = ranked[0].index if chosen is None else chosen
      aligned = self.predictor.annotate_sentences(painting, [texts[chosen]])[0]
    return PaintingView(index, ranked, aligned, chosen, labels)

  def annotate(self, text: str, painting_id: str,
               upload: bytes | None = None) -> AnnotationView:
    text = self._checked_text(text, 'text')
    painting_id = painting_id.strip()
    if upload is not None:
      painting = self._uploaded_painting(upload)
      image_url, name = f'upload/{self._keep_upload(upload)}', 'the uploaded image'
    elif painting_id:
      index = self.index_of(painting_id)
      painting = self.predictor.painting_of(self.collection, index)
      has_image = self.collection.image_bytes(index) is not None
      image_url, name = (f'image/{painting_id}' if has_image else None), painting_id
    else:
      raise RequestError(400, 'Give the Artpedia id of a painting of the collection'
                         + (' or upload an image.' if self.predictor.reader.uses_pixels
                            else '.'))
    with self._lock:
      sentences = self.predictor.annotate(painting, text)
    return AnnotationView(name, image_url, sentences)

  def _uploaded_painting(self, data: bytes) -> painting_files.Painting:
    if not data:
      raise RequestError(400, 'The uploaded image is empty.')
    try:
      return self.predictor.reader.read(image=data, name='the uploaded image')
    except painting_files.PaintingInputError as error:
      raise RequestError(400, str(error)) from error

  def _keep_upload(self, data: bytes) -> str:
    token = secrets.token_urlsafe(12)
    self._uploads[token] = painting_files.downscaled_jpeg(data, IMAGE_SIDE, 'the uploaded image')
    while len(self._uploads) > KEPT_UPLOADS:
      self._uploads.popitem(last=False)
    return token

  def upload(self, token: str) -> bytes:
    if token not in self._uploads:
      raise RequestError(404, 'This uploaded image is no longer kept: upload it again.')
    return self._uploads[token]
