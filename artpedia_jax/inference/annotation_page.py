"""A painting's annotated text as a console table and as a page in a folder.

The folder (`write`) holds annotation.html, rendered from the web page's own templates
(the painting, the sentences in reading order coloured by kind, each word's best region
drawn in the browser when pointed at), the stylesheet and script it links, the painting's
image when there is one, and annotation.json (`answers.annotation_json`, what the API's
`POST /api/annotate` returns).
"""

from collections.abc import Sequence
import json
import pathlib
import shutil

from artpedia_jax.inference import answers
from artpedia_jax.inference import page_helpers
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import predictor as inference

_ASSETS = ('style.css', 'alignment.js')
IMAGE_SIDE = 1024


def table(sentences: Sequence[inference.AnnotatedSentence], width: int = 72) -> str:
  """One console line per sentence in reading order: kind, probability, score, the
  sentence, and the words the model does not know."""
  lines = [f'{"kind":<11}{"p(visual)":>10}{"S(v,s)":>8}  sentence']
  for s in sentences:
    text = s.text if len(s.text) <= width else s.text[:width - 1] + '…'
    lines.append(f'{s.kind:<11}{s.p_visual:>10.3f}{s.score:>8.3f}  {text}')
    if s.words_read.unknown:
      flag = 'unreliable: ' if s.words_read.unreliable else ''
      lines.append(f'{"":<31}{flag}unknown words: {", ".join(s.words_read.unknown)}')
  return '\n'.join(lines)


def write(out_dir: str | pathlib.Path, painting_id: str, image: bytes | None,
          sentences: Sequence[inference.AnnotatedSentence], step: int
          ) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes DIR/annotation.html (with its stylesheet, script and image) and .json."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for name in _ASSETS:
    shutil.copyfile(page_helpers.STATIC / name, out_dir / name)
  image_name = None
  if image is not None:
    image_name = 'painting.jpg'
    (out_dir / image_name).write_bytes(painting_files.downscaled_jpeg(
        image, IMAGE_SIDE, painting_id))
  page = page_helpers.environment(lambda name: name).get_template('annotate.html').render(
      title=f'Annotation of {painting_id}', show_form=False, home=None, step=step,
      sentences=sentences, image_url=image_name, painting_caption=painting_id)
  html_path = out_dir / 'annotation.html'
  html_path.write_text(page, encoding='utf-8')
  json_path = out_dir / 'annotation.json'
  json_path.write_text(json.dumps(answers.annotation_json(painting_id, sentences, step),
                                  indent=2, ensure_ascii=False), encoding='utf-8')
  return html_path, json_path
