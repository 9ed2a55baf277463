"""A whole evaluation split in memory: every painting's inputs and every sentence's tokens.

Artpedia's splits are small (hundreds of paintings, a few thousand sentences), so the
evaluator, training-time validation and the inference collections read a split once into
numpy arrays and score it in fixed-shape chunks on the devices.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np

from artpedia_jax.data import input_spec
from artpedia_jax.data import painting_inputs
from artpedia_jax.data import pipeline
from artpedia_jax.data import tokenizer as tokenizer_lib
from artpedia_jax.data import vocab as vocab_lib

Record = pipeline.Record


@dataclasses.dataclass(frozen=True)
class EvalSplit:
  """Every painting and every sentence of a split, as numpy arrays."""
  painting_ids: np.ndarray  # str [P]
  titles: np.ndarray  # str [P]
  paintings: dict[str, np.ndarray]  # the model's painting inputs, keyed as in a batch
  tokens: np.ndarray  # int32 [S, T]
  sentence_texts: np.ndarray  # str [S]
  sentence_painting: np.ndarray  # int32 [S], index into the paintings
  is_visual: np.ndarray  # bool [S]

  @property
  def has_words(self) -> np.ndarray:
    """bool [S]: sentences with at least one token; the others take no part in
    retrieval (their scores carry no information)."""
    return np.any(self.tokens != vocab_lib.Vocabulary.PAD, axis=1)


def load_eval_split(spec: input_spec.InputSpec, source: Sequence[Record],
                    tokenizer: tokenizer_lib.Tokenizer) -> EvalSplit:
  """Reads the whole split once into memory (Artpedia's splits are small).

  Logs how many sentences are cut to `max_words` tokens.
  """
  records = [source[i] for i in range(len(source))]
  if not records:
    raise ValueError('The evaluation split is empty: check the dataset split and data_dir.')
  transform = painting_inputs.painting_inputs(spec, train=False)
  paintings = [transform(r, rng=None) for r in records]
  texts = [vocab_lib.as_text(s) for r in records for s in r['sentences']]
  tokenizer_lib.log_truncated(tokenizer, texts, spec.max_words, 'Evaluation split')
  return EvalSplit(
      painting_ids=np.asarray([vocab_lib.as_text(r['id']) for r in records], str),
      titles=np.asarray([vocab_lib.as_text(r['title']) for r in records], str),
      paintings={key: np.stack([p[key] for p in paintings]) for key in paintings[0]},
      tokens=tokenizer.batch_encode(texts, spec.max_words),
      sentence_texts=np.asarray(texts, str),
      sentence_painting=np.asarray(
          [i for i, r in enumerate(records) for _ in r['sentences']], np.int32),
      is_visual=np.concatenate([pipeline.visual_labels(r) for r in records]),
  )


def sentences_and_labels(source: Sequence[Record]) -> tuple[list[str], np.ndarray]:
  """Every sentence of `source` as text, with its is_visual label (for text baselines)."""
  records = [source[i] for i in range(len(source))]
  texts = [vocab_lib.as_text(s) for r in records for s in r['sentences']]
  labels = np.concatenate([pipeline.visual_labels(r) for r in records]) if records else np.zeros(0, bool)
  return texts, labels
