"""The figures the README reports for a corpus, next to real Artpedia's own.

Any objects with Artpedia's text fields are accepted (`split`, `visual_sentences`,
`contextual_sentences`), so the figures of real annotations are computed the same way.
"""

from collections.abc import Iterable
import collections
import itertools
import re
from typing import Any

import numpy as np

from tfds_artpedia.sample import noise as sample_noise
from tfds_artpedia.sample import sentences as sample_sentences
from tfds_artpedia.sample.corpus import SamplePainting, SPLITS


def words(sentence: str) -> list[str]:
  """Lower-cased words, apostrophes inside a word kept ("artist's")."""
  return re.findall(r"[^\W_]+(?:'[^\W_]+)?", sentence.lower())


def corpus_statistics(paintings: Iterable[Any]) -> dict[str, Any]:
  """Counts of paintings, sentences and words, the sentence length distribution (in words:
  mean, median, 95th and 99th percentiles) and the vocabulary's tail (words seen at least
  twice, once). `sentence_kinds` (sentences of each kind, per list: SENTENCE_KINDS and
  the realistic corpus's own) counts only generated paintings, the only ones that know
  why a sentence is where."""
  per_split = dict.fromkeys(SPLITS, 0)
  num_paintings = num_visual = num_contextual = without_contextual = num_words = 0
  without_words = long_sentences = 0
  vocabulary = collections.Counter()
  lengths = []
  kinds = {'visual': dict.fromkeys(sample_sentences.SENTENCE_KINDS, 0),
           'contextual': dict.fromkeys(sample_sentences.SENTENCE_KINDS, 0)}
  for painting in paintings:
    num_paintings += 1
    per_split[painting.split] = per_split.get(painting.split, 0) + 1
    num_visual += len(painting.visual_sentences)
    num_contextual += len(painting.contextual_sentences)
    without_contextual += not painting.contextual_sentences
    if isinstance(painting, SamplePainting):
      for kind in painting.visual_kinds:
        kinds['visual'][kind] = kinds['visual'].get(kind, 0) + 1
      for kind in painting.contextual_kinds:
        kinds['contextual'][kind] = kinds['contextual'].get(kind, 0) + 1
    for sentence in itertools.chain(painting.visual_sentences, painting.contextual_sentences):
      sentence_words = words(sentence)
      num_words += len(sentence_words)
      lengths.append(len(sentence_words))
      without_words += not sentence_words
      long_sentences += len(sentence_words) > sample_noise.LONG_WORDS
      vocabulary.update(sentence_words)
  num_sentences = num_visual + num_contextual
  lengths = np.array(lengths or [0])
  return {
      'num_paintings': num_paintings,
      'paintings_per_split': per_split,
      'visual_sentences': num_visual,
      'contextual_sentences': num_contextual,
      'visual_per_painting': num_visual / max(num_paintings, 1),
      'contextual_per_painting': num_contextual / max(num_paintings, 1),
      'paintings_without_contextual': without_contextual,
      'vocabulary_size': len(vocabulary),
      'words_seen_at_least_twice': sum(count >= 2 for count in vocabulary.values()),
      'words_seen_once': sum(count == 1 for count in vocabulary.values()),
      'mean_sentence_length': num_words / max(num_sentences, 1),
      'median_sentence_length': float(np.median(lengths)),
      'p95_sentence_length': float(np.percentile(lengths, 95)),
      'p99_sentence_length': float(np.percentile(lengths, 99)),
      f'sentences_over_{sample_noise.LONG_WORDS}_words': long_sentences,
      'sentences_without_words': without_words,
      'sentence_kinds': kinds,
  }
