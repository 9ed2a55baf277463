"""Use a trained model: annotate a painting's text, search a collection, rank sentences.

`Predictor.from_workdir(W)` restores a checkpoint (parameters, saved config and
vocabulary) onto the devices present and scores with the evaluator's device code
(`device_scorer.DeviceScorer`), so a sentence gets here exactly the S(v, s) and
p(visual) that evaluation reports for it. Paintings come from `painting_files` (a user's
image or regions file) or from a `painting_collection` (a built split, a folder). A
collection's encoded paintings are cached on disk under `W/inference_cache/`
(`encoding_cache`: keyed by the checkpoint's content, the model's settings and the
collection's content), so only its first query pays for encoding it, and a cached split
opens without reading the dataset. Every answer says which words the model read
(`words.WordsRead`).
"""

import dataclasses
import os
from typing import Callable

from etils import epath
import numpy as np

from artpedia_jax.checkpoints import restore as restore_lib
from artpedia_jax.data import input_spec
from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.evaluation import metrics as metrics_lib
from artpedia_jax.inference import collection_scorer
from artpedia_jax.inference import encoding_cache
from artpedia_jax.inference import painting_collection
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import sentences as sentences_lib
from artpedia_jax.inference import words as words_lib
from tfds_artpedia import errors

Progress = Callable[[int, int], None]  # (paintings encoded so far, total)
# Sentences per chunk when scoring one painting (rounded up to the device count).
ONE_PAINTING_CHUNK = 32


class InferenceError(errors.UserError, ValueError):
  """A request the model cannot answer as asked; the message says what to do."""


class UnreadableQuery(InferenceError):
  """A query without any word the model knows; `words` says which it read."""

  def __init__(self, message: str, words: words_lib.WordsRead):
    super().__init__(message)
    self.words = words


class _Classified:
  """A sentence is called visual as the metrics' threshold metrics call it."""
  p_visual: float

  @property
  def is_visual(self) -> bool:
    return self.p_visual >= metrics_lib.DECISION_THRESHOLD

  @property
  def kind(self) -> str:
    return 'visual' if self.is_visual else 'contextual'


@dataclasses.dataclass(frozen=True)
class AnnotatedSentence(_Classified):
  text: str
  p_visual: float  # p(visual | sentence, this painting)
  score: float  # S(painting, sentence)
  words: list[alignment_lib.AlignedWord]  # each real word's best region and its score
  words_read: words_lib.WordsRead  # which of its words the model knows


@dataclasses.dataclass(frozen=True)
class RankedSentence(_Classified):
  index: int  # into the candidate sentences
  text: str
  score: float  # S(painting, sentence)
  p_visual: float  # p(visual | sentence, the painting)


@dataclasses.dataclass(frozen=True)
class Hit:
  index: int  # row of the collection
  painting_id: str  # the Artpedia id
  title: str
  year: int | None
  score: float


@dataclasses.dataclass(frozen=True)
class SearchResult:
  query: str
  hits: list[Hit]  # best first
  words: words_lib.WordsRead

  @property
  def unreliable(self) -> bool:
    return self.words.unreliable


def _device_scorer(restored: restore_lib.RestoredModel, spec: device_scoring.EvalSpec,
                   chunk_size: int) -> device_scoring.DeviceScorer:
  """The evaluator's scorer, in chunks of `chunk_size`."""
  return device_scoring.DeviceScorer(
      restored.graphdef, dataclasses.replace(spec, chunk_size=chunk_size), restored.mesh)


class Predictor:
  """A restored model with its vocabulary, painting reader and scoring functions."""

  def __init__(self, restored: restore_lib.RestoredModel,
               cache_dir: str | os.PathLike | None):
    self.step = restored.step
    self.inputs = input_spec.InputSpec.from_config(restored.config)
    self.tokenizer = restored.tokenizer
    self._variables = restored.variables
    # Collections in the evaluator's chunks; one painting's sentences in small ones
    # (most of an evaluation chunk would be padding); queries against resident paintings.
    eval_spec = device_scoring.EvalSpec.from_config(restored.config)
    self._chunk_size = eval_spec.chunk_size
    self._scorer = _device_scorer(restored, eval_spec, eval_spec.chunk_size)
    self._one_painting_scorer = _device_scorer(restored, eval_spec, ONE_PAINTING_CHUNK)
    self._query_scorer = collection_scorer.CollectionScorer(
        restored.graphdef, restored.mesh, eval_spec.block_size)
    self._resident = {}  # collection key -> its paintings on the devices
    self.reader = painting_files.PaintingReader(self.inputs, restored.feature_dim)
    self._cache = encoding_cache.EncodingCache(
        cache_dir, encoding_cache.model_key(restored.digest, restored.config))
    self._encoded: dict[str, device_scoring.HostEncodedPaintings] = {}

  @classmethod
  def from_workdir(cls, workdir: str, step: str | int = 'best', *,
                   cache_dir: str | os.PathLike | None = '') -> 'Predictor':
    """Checkpoint `step` ('best', 'latest' or a number) of a training workdir.

    Encoded collections are cached in `cache_dir` (default W/inference_cache; None:
    in memory only).
    """
    if cache_dir == '':
      cache_dir = epath.Path(workdir) / encoding_cache.FOLDER_NAME
    return cls(restore_lib.restore_model(workdir, step), cache_dir)

  # Inputs.

  def read_painting(self, *, image: str | os.PathLike | None = None,
                    regions: str | os.PathLike | None = None,
                    painting_id: str | None = None) -> painting_files.Painting:
    """A painting from an image file and/or a regions file (.npz / TSV)."""
    data = None
    if image is not None:
      try:
        data = epath.Path(image).read_bytes()
      except OSError as error:
        raise painting_files.PaintingInputError(f'{image}: {error.strerror}.') from error
    return self.reader.read(image=data, regions=regions, painting_id=painting_id,
                            name=str(image or regions))

  def open_split(self, split_name: str) -> painting_collection.SplitCollection:
    """A built split; from the encodings' cache, without reading the dataset, when
    this model has encoded it before."""
    key = painting_collection.split_key(self.inputs, split_name)
    entry = self._cache.load(key) if key not in self._encoded else None
    if entry is not None:
      self._encoded[key] = entry.encoded
    return painting_collection.open_split(
        self.inputs, split_name, self.tokenizer, self.reader, key,
        catalogue=None if entry is None else entry.catalogue)

  def open_folder(self, folder: str | os.PathLike) -> painting_collection.FolderCollection:
    return painting_collection.FolderCollection(folder, self.reader)

  def painting_of(self, collection, index: int) -> painting_files.Painting:
    """Painting `index` of `collection`; its encoding comes from the collection's when
    that is at hand, so nothing is read or encoded again."""
    encoded = self._encoded.get(collection.key)
    if encoded is None:
      return collection.painting(index)
    return painting_files.Painting(collection.ids[index], None,
                                   encoded.take(np.asarray([index])))

  def _tokens(self, texts: list[str]) -> np.ndarray:
    return self.tokenizer.batch_encode(texts, self.inputs.max_words)

  def _words(self, text: str) -> list[tuple[str, list[int]]]:
    """The words the model reads in `text`, each with its token positions (several for a
    word that BERT splits into word pieces)."""
    return self.tokenizer.alignment_words(text, self.inputs.max_words)

  def read_words(self, text: str) -> words_lib.WordsRead:
    """The words of `text` the model reads, split into those it knows and not."""
    return words_lib.WordsRead.of([word for word, _ in self._words(text)], self.tokenizer)

  # Encoding.

  def encode_painting(self, painting: painting_files.Painting
                      ) -> device_scoring.HostEncodedPaintings:
    """One painting's region vectors, mask and boxes (a leading axis of 1)."""
    if painting.encoded is not None:
      return painting.encoded
    return self._one_painting_scorer.encode_paintings(
        self._variables, {key: x[None] for key, x in painting.inputs.items()})

  def is_cached(self, collection) -> bool:
    return collection.key in self._encoded or self._cache.has(collection.key)

  def encode_collection(self, collection, progress: Progress | None = None
                        ) -> device_scoring.HostEncodedPaintings:
    """Every painting of `collection`, encoded once then read from memory or disk."""
    if collection.key in self._encoded:
      return self._encoded[collection.key]
    entry = self._cache.load(collection.key)
    if entry is None:
      entry = encoding_cache.Entry(self._encode_rows(collection, progress),
                                   collection.catalogue())
      self._cache.save(collection.key, entry)
    self._encoded[collection.key] = entry.encoded
    return entry.encoded

  def _encode_rows(self, collection, progress: Progress | None
                   ) -> device_scoring.HostEncodedPaintings:
    chunk = self._chunk_size
    parts = []
    for start in range(0, len(collection), chunk):
      stop = min(start + chunk, len(collection))
      parts.append(dataclasses.asdict(self._scorer.encode_paintings(
          self._variables, collection.inputs(start, stop))))
      if progress is not None:
        progress(stop, len(collection))
    return device_scoring.HostEncodedPaintings(
        **{name: np.concatenate([part[name] for part in parts]) for name in parts[0]})

  # Questions.

  def annotate(self, painting: painting_files.Painting, text: str
               ) -> list[AnnotatedSentence]:
    """`text` split into sentences, each with p(visual), S(painting, sentence), the
    best region of each of its words and the words the model knows."""
    sentences = sentences_lib.split_sentences(text)
    if not sentences:
      raise InferenceError('the text is empty: give the sentences to annotate.')
    return self.annotate_sentences(painting, sentences)

  def annotate_sentences(self, painting: painting_files.Painting,
                         sentences: list[str]) -> list[AnnotatedSentence]:
    """`annotate` for sentences already split."""
    encoded = self.encode_painting(painting)
    tokens = self._tokens(sentences)
    scored = self._one_painting_scorer.score_sentences(
        self._variables, encoded, tokens,
        own_painting=np.zeros(len(sentences), np.int32))
    word_region = self._one_painting_scorer.word_region_scores(self._variables, encoded,
                                                              tokens)
    result = []
    for j, text in enumerate(sentences):
      words, scores = alignment_lib.merge_pieces(self._words(text), word_region[j])
      alignment = alignment_lib.word_alignment(words, scores, encoded.boxes[0],
                                            encoded.region_mask[0])
      result.append(AnnotatedSentence(
          text, float(scored.probs[j]), float(scored.scores[0, j]), alignment,
          words_lib.WordsRead.of(words, self.tokenizer)))
    return result

  def describe(self, painting: painting_files.Painting, candidates: list[str],
               k: int | None = None) -> list[RankedSentence]:
    """The `k` best of `candidates` for `painting` (all when k is None), best first."""
    if not candidates:
      raise InferenceError('no candidate sentences to rank.')
    scored = self._one_painting_scorer.score_sentences(
        self._variables, self.encode_painting(painting), self._tokens(candidates),
        own_painting=np.zeros(len(candidates), np.int32))
    order = np.argsort(-scored.scores[0], kind='stable')[:k]
    return [RankedSentence(int(j), candidates[j], float(scored.scores[0, j]),
                           float(scored.probs[j])) for j in order]

  def check_query(self, query: str) -> words_lib.WordsRead:
    """The query's words; refuses a query the model cannot read: no words, or none it
    knows (`UnreadableQuery`)."""
    words = self.read_words(query)
    if not words.known and not words.unknown:
      raise UnreadableQuery(f'the query {query!r} has no words to search for.', words)
    if not words.known:
      raise UnreadableQuery(
          f'no word of the query {query!r} is in the model\'s vocabulary of '
          f'{len(self.tokenizer)} words ({", ".join(words.unknown)} unknown), so it matches '
          'nothing; try other words.', words)
    return words

  def search(self, query: str, collection, k: int = 10,
             progress: Progress | None = None) -> SearchResult:
    """The `k` paintings of `collection` that score highest for `query`, best first,
    with the words of the query the model read."""
    words = self.check_query(query)
    if collection.key not in self._resident:
      self._resident[collection.key] = self._query_scorer.put(
          self.encode_collection(collection, progress))
    scores = self._query_scorer.scores(self._variables, self._resident[collection.key],
                                       len(collection), self._tokens([query]))
    order = np.argsort(-scores, kind='stable')[:k]
    hits = [Hit(int(i), collection.ids[i], collection.titles[i], collection.year(i),
                float(scores[i])) for i in order]
    return SearchResult(query, hits, words)
