"""A painting's annotated text as JSON, a console table, and HTML with pictures.

Visual sentences (p(visual) at or above the metrics' threshold, 0.5) come first, each with its word–region alignment
drawn on the painting by `report.draw_alignment`; contextual sentences are listed apart.
The HTML fragment is shared by `artpedia_jax.annotate` (a file) and the local web page
(`artpedia_jax.inference.web_app`); every text is escaped, pictures are given as URLs by the caller.
"""

import base64
from collections.abc import Callable, Sequence
import html
import io
import json
import pathlib

import numpy as np

from artpedia_jax.evaluation import report as report_lib
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import predictor as inference

_BLANK_SIDE = 384
_BLANK_GREY = 200


def canvas(painting: painting_files.Painting) -> np.ndarray:
  """The painting's image, or a grey square when only its regions are known."""
  if painting.image is not None:
    return painting.image
  return np.full([_BLANK_SIDE, _BLANK_SIDE, 3], _BLANK_GREY, np.uint8)


def alignment_png(painting: painting_files.Painting,
                  sentence: inference.AnnotatedSentence) -> bytes:
  """PNG bytes of the sentence's words drawn on their best regions."""
  buffer = io.BytesIO()
  report_lib.draw_alignment(canvas(painting), sentence.words).save(buffer, format='PNG')
  return buffer.getvalue()


def data_url(png: bytes) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def to_json(painting: painting_files.Painting,
            sentences: Sequence[inference.AnnotatedSentence], step: int) -> dict:
  return {
      'painting': painting.name,
      'checkpoint_step': step,
      'sentences': [{
          'text': s.text,
          'kind': 'visual' if s.is_visual else 'contextual',
          'p_visual': s.p_visual,
          'score': s.score,
          'words': [{'word': w.word, 'box_y0_x0_y1_x1': list(w.box), 'score': w.score}
                    for w in s.words],
          'unknown_words': s.unknown_words,
      } for s in sentences],
  }


def table(sentences: Sequence[inference.AnnotatedSentence], width: int = 72) -> str:
  """One console line per sentence: kind, probability, score, the sentence."""
  lines = [f'{"kind":<11}{"p(visual)":>10}{"S(v,s)":>8}  sentence']
  for s in sentences:
    text = s.text if len(s.text) <= width else s.text[:width - 1] + '…'
    lines.append(f'{"visual" if s.is_visual else "contextual":<11}{s.p_visual:>10.3f}'
                 f'{s.score:>8.3f}  {text}')
  return '\n'.join(lines)


def fragment(sentences: Sequence[inference.AnnotatedSentence],
             picture_url: Callable[[int], str]) -> str:
  """HTML: visual sentences with their alignment picture, then contextual ones.

  `picture_url(i)` is the URL of sentence i's picture (a file name or a data URL).
  """
  e = html.escape
  visual = [(i, s) for i, s in enumerate(sentences) if s.is_visual]
  contextual = [(i, s) for i, s in enumerate(sentences) if not s.is_visual]
  parts = [f'<h2>Visual sentences ({len(visual)})</h2>']
  for i, s in visual:
    words = ', '.join(f'{e(w.word)} {w.score:.2f}' for w in s.words)
    unknown = (f'<p class="unknown">not in the vocabulary: {e(", ".join(s.unknown_words))}'
               '</p>' if s.unknown_words else '')
    parts.append(
        f'<figure class="sentence visual"><figcaption><b>{e(s.text)}</b><br>'
        f'p(visual) {s.p_visual:.3f}, S(v, s) {s.score:.3f}<br><small>{words}</small>'
        f'{unknown}</figcaption>'
        f'<img class="alignment" src="{e(picture_url(i))}" alt="word-region alignment '
        f'of sentence {i + 1}"></figure>')
  parts.append(f'<h2>Contextual sentences ({len(contextual)})</h2><ul>')
  parts += [f'<li class="sentence contextual">{e(s.text)} <small>p(visual) '
            f'{s.p_visual:.3f}, S(v, s) {s.score:.3f}</small></li>' for _, s in contextual]
  parts.append('</ul>')
  return '\n'.join(parts)


STYLE = ('body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}'
         'figure{border-top:1px solid #ccc;margin:0;padding:1em 0}'
         'img.alignment{max-width:100%}.unknown{color:#a00}'
         '.thumbs a{display:inline-block;margin:.3em;text-align:center;width:160px}'
         '.thumbs img{max-width:150px;max-height:150px}.error{color:#a00;font-weight:bold}')


def page(title: str, body: str) -> str:
  e = html.escape
  return (f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
          f'<style>{STYLE}</style></head><body>{body}</body></html>')


def write(out_dir: str | pathlib.Path, painting: painting_files.Painting,
          sentences: Sequence[inference.AnnotatedSentence], step: int
          ) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes DIR/annotation.html (with one PNG per visual sentence) and .json."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for i, s in enumerate(sentences):
    if s.is_visual:
      (out_dir / f'annotation_{i + 1}.png').write_bytes(alignment_png(painting, s))
  title = f'Annotation of {painting.name} (checkpoint step {step})'
  html_path = out_dir / 'annotation.html'
  html_path.write_text(page(title, f'<h1>{html.escape(title)}</h1>' + fragment(
      sentences, lambda i: f'annotation_{i + 1}.png')), encoding='utf-8')
  json_path = out_dir / 'annotation.json'
  json_path.write_text(json.dumps(to_json(painting, sentences, step), indent=2,
                                  ensure_ascii=False), encoding='utf-8')
  return html_path, json_path
