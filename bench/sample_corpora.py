"""The two sample corpora side by side: the statistics and TF-IDF baseline of the README.

  python bench/sample_corpora.py [--num_paintings=1000] [--seed=0]

For `sample` and `sample_realistic`: sentence counts, lengths (mean, median, 95th and
99th percentiles, in words), vocabulary size and words seen at least twice, the
visual:contextual ratio, and the lexical baseline (`artpedia_jax.evaluation.text_baseline`) fit on
the training split and scored on the test split (accuracy at p >= 0.5, F1 of the visual
class, ROC AUC) — the figures real Artpedia is compared with.
"""

import argparse
import json

import numpy as np
from sklearn import metrics as sklearn_metrics

from artpedia_jax.evaluation import text_baseline
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import statistics as sample_statistics


def _labelled(paintings, split):
  texts, labels = [], []
  for painting in paintings:
    if painting.split == split:
      texts += painting.visual_sentences + painting.contextual_sentences
      labels += ([True] * len(painting.visual_sentences)
                 + [False] * len(painting.contextual_sentences))
  return texts, np.array(labels)


def corpus_figures(num_paintings: int, seed: int, realistic: bool) -> dict:
  paintings = list(sample_corpus.generate(num_paintings, seed, realistic=realistic))
  statistics = sample_statistics.corpus_statistics(paintings)
  baseline = text_baseline.TextBaseline.fit(*_labelled(paintings, 'train'))
  texts, labels = _labelled(paintings, 'test')
  p_visual = baseline.predict_proba(texts)
  return {
      'sentences': statistics['visual_sentences'] + statistics['contextual_sentences'],
      'length_mean_median_p95_p99': [round(statistics['mean_sentence_length'], 1),
                                     statistics['median_sentence_length'],
                                     statistics['p95_sentence_length'],
                                     statistics['p99_sentence_length']],
      'vocabulary_size': statistics['vocabulary_size'],
      'words_seen_at_least_twice': statistics['words_seen_at_least_twice'],
      'contextual_per_visual': round(
          statistics['contextual_sentences'] / statistics['visual_sentences'], 2),
      'baseline_test_accuracy': round(
          sklearn_metrics.accuracy_score(labels, p_visual >= 0.5), 3),
      'baseline_test_f1': round(sklearn_metrics.f1_score(labels, p_visual >= 0.5), 3),
      'baseline_test_auc': round(sklearn_metrics.roc_auc_score(labels, p_visual), 3),
      'test_sentences': len(labels),
      'sentence_kinds': statistics['sentence_kinds'],
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num_paintings', type=int, default=1000)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  for name, realistic in (('sample', False), ('sample_realistic', True)):
    print(name, json.dumps(corpus_figures(args.num_paintings, args.seed, realistic)))


if __name__ == '__main__':
  main()
