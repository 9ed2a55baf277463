"""Use a trained model: annotate a painting's text, search a collection, rank sentences.

`Predictor.from_workdir(W)` restores a checkpoint (parameters, saved config and
vocabulary) onto the devices present and scores with the evaluator's device code
(`device_scoring.DeviceScorer`), so a sentence gets here exactly the S(v, s) and p(visual) that evaluation
reports for it. Paintings come from `painting_files` (a user's image or regions file)
or from a `painting_collection` (a built split, a folder). A collection's encoded
paintings are cached on disk under `W/inference_cache/`, keyed by the checkpoint step
and the collection's fingerprint, so only its first query pays for encoding it.
"""

import dataclasses
import os
import pathlib
from typing import Callable

import numpy as np

from artpedia_jax.checkpoints import restore as restore_lib
from artpedia_jax.data import input_spec
from artpedia_jax.evaluation import device_scorer as device_scoring
from artpedia_jax.evaluation import metrics as metrics_lib
from artpedia_jax.evaluation import report as report_lib
from artpedia_jax.inference import painting_collection
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import sentences as sentences_lib
from tfds_artpedia import errors

CACHE_DIR = 'inference_cache'
Progress = Callable[[int, int], None]  # (paintings encoded so far, total)


class InferenceError(errors.UserError, ValueError):
  """A request the model cannot answer as asked; the message says what to do."""


class _Classified:
  """A sentence is called visual as the metrics' threshold metrics call it."""
  p_visual: float

  @property
  def is_visual(self) -> bool:
    return self.p_visual >= metrics_lib.DECISION_THRESHOLD


@dataclasses.dataclass(frozen=True)
class AnnotatedSentence(_Classified):
  text: str
  p_visual: float  # p(visual | sentence, this painting)
  score: float  # S(painting, sentence)
  words: list[report_lib.AlignedWord]  # each real word's best region and its score
  unknown_words: list[str]  # words the model cannot read (<unk>, or a BERT's [UNK])


@dataclasses.dataclass(frozen=True)
class RankedSentence(_Classified):
  index: int  # into the candidate sentences
  text: str
  score: float  # S(painting, sentence)
  p_visual: float  # p(visual | sentence, the painting)


@dataclasses.dataclass(frozen=True)
class Hit:
  index: int  # row of the collection
  painting_id: str
  title: str
  score: float


class Predictor:
  """A restored model with its vocabulary, painting reader and scoring functions."""

  def __init__(self, restored: restore_lib.RestoredModel, cache_dir: str | None):
    self.step = restored.step
    self.inputs = input_spec.InputSpec.from_config(restored.config)
    self.vocab = restored.vocab
    self._variables = restored.variables
    self._eval_spec = device_scoring.EvalSpec.from_config(restored.config)
    self._scorer = device_scoring.DeviceScorer(restored.graphdef, self._eval_spec,
                                               restored.mesh)
    self.reader = painting_files.PaintingReader(self.inputs, restored.feature_dim)
    self._cache_dir = cache_dir
    self._encoded: dict[str, device_scoring.EncodedPaintings] = {}

  @classmethod
  def from_workdir(cls, workdir: str, step: str | int = 'best', *,
                   cache_dir: str | None = '') -> 'Predictor':
    """Checkpoint `step` ('best', 'latest' or a number) of a training workdir.

    Encoded collections are cached in `cache_dir` (default W/inference_cache; None:
    in memory only).
    """
    return cls(restore_lib.restore_model(workdir, step), os.path.join(workdir, CACHE_DIR) if cache_dir == '' else cache_dir)

  # Inputs.

  def read_painting(self, *, image: str | os.PathLike | None = None,
                    regions: str | os.PathLike | None = None,
                    painting_id: str | None = None) -> painting_files.Painting:
    """A painting from an image file and/or a regions file (.npz / TSV)."""
    data = None
    if image is not None:
      try:
        data = pathlib.Path(image).read_bytes()
      except OSError as error:
        raise painting_files.PaintingInputError(f'{image}: {error.strerror}.') from error
    return self.reader.read(image=data, regions=regions, painting_id=painting_id,
                            name=str(image or regions))

  def open_split(self, split_name: str) -> painting_collection.SplitCollection:
    return painting_collection.open_split(self.inputs, split_name, self.vocab, self.reader)

  def open_folder(self, folder: str | os.PathLike) -> painting_collection.FolderCollection:
    return painting_collection.FolderCollection(folder, self.reader)

  def _tokens(self, texts: list[str]) -> np.ndarray:
    return self.vocab.batch_encode(texts, self.inputs.max_words)

  def _words(self, text: str) -> list[tuple[str, list[int]]]:
    """The words the model reads in `text`, each with its token positions (several for a
    word that BERT splits into word pieces)."""
    return self.vocab.alignment_words(text, self.inputs.max_words)

  # Encoding.

  def encode_painting(self, painting: painting_files.Painting
                      ) -> device_scoring.EncodedPaintings:
    """One painting's region vectors, mask and boxes (a leading axis of 1)."""
    return self._scorer.encode_paintings(
        self._variables, {key: x[None] for key, x in painting.inputs.items()})

  def _cache_path(self, collection) -> str | None:
    if self._cache_dir is None:
      return None
    return os.path.join(self._cache_dir,
                        f'step{self.step}_{collection.fingerprint}.npz')

  def is_cached(self, collection) -> bool:
    path = self._cache_path(collection)
    return collection.fingerprint in self._encoded or bool(path and os.path.exists(path))

  def encode_collection(self, collection, progress: Progress | None = None
                        ) -> device_scoring.EncodedPaintings:
    """Every painting of `collection`, encoded once then read from memory or disk."""
    if collection.fingerprint in self._encoded:
      return self._encoded[collection.fingerprint]
    path = self._cache_path(collection)
    if path and os.path.exists(path):
      with np.load(path) as cached:
        encoded = device_scoring.EncodedPaintings(**{
            field.name: cached[field.name]
            for field in dataclasses.fields(device_scoring.EncodedPaintings)})
    else:
      encoded = self._encode_rows(collection, progress)
      if path:
        _save_atomically(path, encoded)
    self._encoded[collection.fingerprint] = encoded
    return encoded

  def _encode_rows(self, collection, progress: Progress | None
                   ) -> device_scoring.EncodedPaintings:
    chunk = self._eval_spec.chunk_size
    parts = []
    for start in range(0, len(collection), chunk):
      stop = min(start + chunk, len(collection))
      parts.append(dataclasses.asdict(self._scorer.encode_paintings(
          self._variables, collection.inputs(start, stop))))
      if progress is not None:
        progress(stop, len(collection))
    return device_scoring.EncodedPaintings(
        **{name: np.concatenate([part[name] for part in parts]) for name in parts[0]})

  # Questions.

  def annotate(self, painting: painting_files.Painting, text: str
               ) -> list[AnnotatedSentence]:
    """`text` split into sentences, each with p(visual), S(painting, sentence) and the
    best region of each of its words."""
    sentences = sentences_lib.split_sentences(text)
    if not sentences:
      raise InferenceError('the text is empty: give the sentences to annotate.')
    return self.annotate_sentences(painting, sentences)

  def annotate_sentences(self, painting: painting_files.Painting,
                         sentences: list[str]) -> list[AnnotatedSentence]:
    """`annotate` for sentences already split."""
    encoded = self.encode_painting(painting)
    tokens = self._tokens(sentences)
    scored = self._scorer.score_sentences(
        self._variables, encoded, tokens,
        own_painting=np.zeros(len(sentences), np.int32))
    word_region = self._scorer.word_region_scores(self._variables, encoded, tokens)
    result = []
    for j, text in enumerate(sentences):
      words, scores = report_lib.merge_pieces(self._words(text), word_region[j])
      alignment = report_lib.word_alignment(words, scores, encoded.boxes[0],
                                            encoded.region_mask[0])
      result.append(AnnotatedSentence(
          text, float(scored.probs[j]), float(scored.scores[0, j]), alignment,
          [word for word in words if word not in self.vocab]))
    return result

  def describe(self, painting: painting_files.Painting, candidates: list[str],
               k: int | None = None) -> list[RankedSentence]:
    """The `k` best of `candidates` for `painting` (all when k is None), best first."""
    if not candidates:
      raise InferenceError('no candidate sentences to rank.')
    scored = self._scorer.score_sentences(
        self._variables, self.encode_painting(painting), self._tokens(candidates),
        own_painting=np.zeros(len(candidates), np.int32))
    order = np.argsort(-scored.scores[0], kind='stable')[:k]
    return [RankedSentence(int(j), candidates[j], float(scored.scores[0, j]),
                           float(scored.probs[j])) for j in order]

  def check_query(self, query: str) -> None:
    """Refuses a query the model cannot read: no words, or none it knows."""
    words = [word for word, _ in self._words(query)]
    if not words:
      raise InferenceError(f'the query {query!r} has no words to search for.')
    if not any(word in self.vocab for word in words):
      raise InferenceError(
          f'no word of the query {query!r} is in the model\'s vocabulary of '
          f'{len(self.vocab)} words, so it matches nothing; try other words.')

  def search(self, query: str, collection, k: int = 10,
             progress: Progress | None = None) -> list[Hit]:
    """The `k` paintings of `collection` that score highest for `query`, best first."""
    self.check_query(query)
    encoded = self.encode_collection(collection, progress)
    scores = self._scorer.score_sentences(self._variables, encoded,
                                          self._tokens([query])).scores[:, 0]
    order = np.argsort(-scores, kind='stable')[:k]
    return [Hit(int(i), collection.ids[i], collection.titles[i], float(scores[i]))
            for i in order]


def _save_atomically(path: str, encoded: device_scoring.EncodedPaintings) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez(tmp, **dataclasses.asdict(encoded))
  os.replace(tmp, path)
