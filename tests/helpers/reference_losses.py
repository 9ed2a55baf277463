"""The losses and the align scorer as plain numpy loops: the references the jax code is
tested against (one query, one pair at a time, nothing vectorised)."""

import numpy as np


def hinge(scores, same, *, margin, max_violation):
  """VSE++ hinge, both directions; `same[i, j]`: pair never used as a negative."""
  size = len(scores)
  total = 0.0
  for query in range(size):
    i2t = [max(0.0, margin + scores[query, j] - scores[query, query])
           for j in range(size) if not same[query, j]]
    t2i = [max(0.0, margin + scores[i, query] - scores[query, query])
           for i in range(size) if not same[i, query]]
    for costs in (i2t, t2i):
      total += (max(costs, default=0.0) if max_violation else sum(costs))
  return total / size


def infonce(scores, same, temperature):
  """Symmetric InfoNCE; other pairs of the same painting leave the denominators."""
  size = len(scores)
  total = 0.0
  for query in range(size):
    for candidates in (scores[query], scores[:, query]):
      kept = np.array([candidates[k] / temperature for k in range(size)
                       if k == query or not same[query, k]], np.float64)
      log_sum_exp = kept.max() + np.log(np.sum(np.exp(kept - kept.max())))
      total += log_sum_exp - candidates[query] / temperature
  return total / (2 * size)


def bce(logits, labels, mask, pos_weight):
  """(masked mean binary cross-entropy with weighted positives, masked accuracy)."""
  losses, correct = [], []
  for x, y, m in zip(logits.ravel(), labels.ravel(), mask.ravel()):
    if m:
      p = 1 / (1 + np.exp(-x))
      losses.append(-(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p)))
      correct.append((p > 0.5) == (y == 1))
  return np.mean(losses), np.mean(correct)


def align(v, rmask, w, wmask):
  """S(painting i, sentence j): mean over real words of the best real region's dot."""
  scores = np.zeros((len(v), len(w)))
  for i in range(len(v)):
    for j in range(len(w)):
      best = [max(float(v[i, r] @ w[j, t]) for r in range(v.shape[1]) if rmask[i, r])
              for t in range(w.shape[1]) if wmask[j, t]]
      scores[i, j] = np.mean(best)
  return scores
