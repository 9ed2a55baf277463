"""A PyTorch peer of SCAN text-to-image (Lee et al. 2018), for `bench/scan_vs_ours.py`.

Written from the paper's formulas and the facts of the official code (github
kuanghuei/SCAN), so that its cost structure is the official one:

- regions: a linear layer from the precomputed features to D (Xavier-uniform weights,
  zero bias), then L2 per region;
- sentences: word embeddings (uniform in ±0.1), a 1-layer bidirectional GRU of hidden D
  over packed sequences (lengths sorted longest first, as the official loader sorts its
  batches), the two directions averaged, then L2 per word;
- the score loops over captions: each caption's words are repeated over all images and
  attend over each image's regions with batched matrix products; the raw scores are
  `clipped_l2norm`ed (leaky ReLU 0.1, then L2 over the words), the attention is a softmax
  over regions of λ_softmax times them, each word's context is the attention-weighted sum
  of the region vectors (materialised, [images, words, D]) and its relevance the cosine of
  word and context; words are averaged (AVG, the paper's t2i setting) or, with
  `lambda_lse`, pooled by LogSumExp;
- the loss is the hinge of margin α in both directions with the hardest negative of each
  query, summed; Adam, gradients clipped at global norm 2.

torch is not a project dependency: import this module only where torch is installed.
"""

import torch
from torch import nn
from torch.nn.utils import rnn as rnn_utils

_EPS = 1e-8


def l2_normalize(x: torch.Tensor, dim: int) -> torch.Tensor:
  """x / (‖x‖ + ε) along `dim`, the official normalisation (ε added, not a floor)."""
  return x / (x.pow(2).sum(dim=dim, keepdim=True).sqrt() + _EPS)


class RegionEncoder(nn.Module):
  """Precomputed region features [N, R, F] -> unit region vectors [N, R, D]."""

  def __init__(self, feature_dim: int, embed_dim: int):
    super().__init__()
    self.fc = nn.Linear(feature_dim, embed_dim)
    nn.init.xavier_uniform_(self.fc.weight)
    nn.init.zeros_(self.fc.bias)

  def forward(self, regions: torch.Tensor) -> torch.Tensor:
    return l2_normalize(self.fc(regions), dim=-1)


class SentenceEncoder(nn.Module):
  """Token ids [N, T] and lengths (longest first) -> unit word vectors [N, T', D], T' the
  longest length, zero past each sentence's end before normalisation."""

  def __init__(self, vocab_size: int, word_dim: int, embed_dim: int):
    super().__init__()
    self.embed = nn.Embedding(vocab_size, word_dim)
    nn.init.uniform_(self.embed.weight, -0.1, 0.1)
    self.gru = nn.GRU(word_dim, embed_dim, num_layers=1, batch_first=True,
                      bidirectional=True)
    self.embed_dim = embed_dim

  def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = rnn_utils.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True)
    states, _ = rnn_utils.pad_packed_sequence(self.gru(packed)[0], batch_first=True)
    forward, backward = states.split(self.embed_dim, dim=-1)
    return l2_normalize((forward + backward) / 2, dim=-1)


def attended_context(words: torch.Tensor, regions: torch.Tensor,
                     lambda_softmax: float) -> torch.Tensor:
  """Context of each word [N, T, D]: words [N, T, D] attending over regions [N, R, D]."""
  raw = torch.bmm(regions, words.transpose(1, 2))  # [N, R, T]
  normalised = l2_normalize(nn.functional.leaky_relu(raw, 0.1), dim=2)  # over words
  attention = torch.softmax(lambda_softmax * normalised.transpose(1, 2), dim=-1)  # [N, T, R]
  return torch.bmm(attention, regions)


def _cosine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
  """Cosine along the last axis, the denominator clamped at ε (the official form)."""
  return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1)).clamp(min=_EPS)


def t2i_scores(regions: torch.Tensor, words: torch.Tensor, lengths: torch.Tensor, *,
               lambda_softmax: float, lambda_lse: float | None = None) -> torch.Tensor:
  """Scores [images, captions] of unit regions [I, R, D] and unit words [C, T, D], one
  caption at a time (its first `lengths[c]` words repeated over the I images)."""
  columns = []
  for caption, length in zip(words, lengths.tolist()):
    repeated = caption[:length].unsqueeze(0).repeat(regions.shape[0], 1, 1)
    relevance = _cosine(repeated, attended_context(repeated, regions, lambda_softmax))
    if lambda_lse is None:
      pooled = relevance.mean(dim=1)
    else:
      pooled = torch.logsumexp(lambda_lse * relevance, dim=1) / lambda_lse
    columns.append(pooled)
  return torch.stack(columns, dim=1)


def hardest_negative_hinge(scores: torch.Tensor, margin: float) -> torch.Tensor:
  """Σ over queries of the hinge of their hardest negative, both directions; pair i is
  image i with caption i."""
  positives = scores.diagonal()
  others = ~torch.eye(scores.shape[0], dtype=torch.bool)
  caption_cost = (margin + scores - positives[:, None]).clamp(min=0) * others
  image_cost = (margin + scores - positives[None, :]).clamp(min=0) * others
  return caption_cost.max(dim=1).values.sum() + image_cost.max(dim=0).values.sum()


class ScanT2I(nn.Module):
  """The two encoders; `train_step` is one optimisation step on a batch of pairs."""

  def __init__(self, *, vocab_size: int, feature_dim: int, word_dim: int, embed_dim: int,
               lambda_softmax: float = 9.0, margin: float = 0.2,
               learning_rate: float = 2e-4, grad_clip: float = 2.0):
    super().__init__()
    self.regions = RegionEncoder(feature_dim, embed_dim)
    self.sentences = SentenceEncoder(vocab_size, word_dim, embed_dim)
    self.lambda_softmax, self.margin, self.grad_clip = lambda_softmax, margin, grad_clip
    self.optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate)

  def train_step(self, features: torch.Tensor, tokens: torch.Tensor,
                 lengths: torch.Tensor) -> float:
    """One step on pairs (features[i], tokens[i]), lengths longest first; the loss."""
    self.train()
    self.optimizer.zero_grad()
    scores = t2i_scores(self.regions(features), self.sentences(tokens, lengths), lengths,
                        lambda_softmax=self.lambda_softmax)
    loss = hardest_negative_hinge(scores, self.margin)
    loss.backward()
    nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
    self.optimizer.step()
    return float(loss.detach())

  @torch.no_grad()
  def sharded_scores(self, regions: torch.Tensor, words: torch.Tensor,
                     lengths: torch.Tensor, shard: int) -> torch.Tensor:
    """Scores [I, C] of encoded regions and words, in blocks of `shard` images x `shard`
    captions, as the official evaluation scores a split."""
    self.eval()
    scores = torch.empty(regions.shape[0], words.shape[0])
    for i in range(0, regions.shape[0], shard):
      for c in range(0, words.shape[0], shard):
        scores[i:i + shard, c:c + shard] = t2i_scores(
            regions[i:i + shard], words[c:c + shard], lengths[c:c + shard],
            lambda_softmax=self.lambda_softmax)
    return scores
