"""A BERT forward pass in float64 numpy, written independently of `bert.py`.

From the published BERT definition and the public tensor names (linear weights
[out, in], post-LN layers, exact GELU, additive attention mask): what the encoder is
checked against, on the tests' tiny checkpoints and on a real one.
"""

import math

import numpy as np


def _erf(x):
  return np.vectorize(math.erf)(x)


def _layer_norm(x, state, name, eps):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * state[f'{name}.weight'] + state[f'{name}.bias']


def _dense(x, state, name):
  return x @ state[f'{name}.weight'].T + state[f'{name}.bias']


def forward(ids, attention_mask, state, config):
  """Last hidden states [B, T, H] of a Hugging Face BERT state dict (bare keys), float64."""
  state = {k.removeprefix('bert.'): np.asarray(v, np.float64) for k, v in state.items()}
  eps, heads = config['layer_norm_eps'], config['num_attention_heads']
  batch, length = ids.shape
  x = (state['embeddings.word_embeddings.weight'][ids]
       + state['embeddings.position_embeddings.weight'][np.arange(length)][None]
       + state['embeddings.token_type_embeddings.weight'][np.zeros_like(ids)])
  x = _layer_norm(x, state, 'embeddings.LayerNorm', eps)
  additive = (1.0 - attention_mask[:, None, None, :]) * -1e9
  for i in range(config['num_hidden_layers']):
    p = f'encoder.layer.{i}'

    def split(t):
      return t.reshape(batch, length, heads, -1).transpose(0, 2, 1, 3)

    q, k, v = (split(_dense(x, state, f'{p}.attention.self.{n}'))
               for n in ('query', 'key', 'value'))
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + additive
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
    x = _layer_norm(x + _dense(context, state, f'{p}.attention.output.dense'), state,
                    f'{p}.attention.output.LayerNorm', eps)
    inner = _dense(x, state, f'{p}.intermediate.dense')
    inner = 0.5 * inner * (1.0 + _erf(inner / np.sqrt(2.0)))
    x = _layer_norm(x + _dense(inner, state, f'{p}.output.dense'), state,
                    f'{p}.output.LayerNorm', eps)
  return x
