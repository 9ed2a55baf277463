r"""Annotates a painting's text with a trained model.

  python -m artpedia_jax.annotate --workdir=W --image=P.jpg --text=T.txt [--out=DIR]
  python -m artpedia_jax.annotate --workdir=W --regions=P.npz [--image=P.jpg] --text=T.txt
  python -m artpedia_jax.annotate --workdir=W --split=test --id=ID [--text=T.txt]

Splits the text into sentences and prints, in reading order, visual or contextual with
p(visual), the alignment score S(v, s) and the words the model does not know; writes
DIR/annotation.html (the page's own view: the painting beside the sentences, each word's
best region outlined when pointed at) and DIR/annotation.json (what the API's
`POST /api/annotate` returns). A pixel model reads --image; a region model reads
--regions (an `<id>.npz` or a bottom-up TSV, `--row_id` picking its row) and shows
--image if given (whose size scales a region file that records none). A painting of a
built split (`--split --id`, its Artpedia id) comes with its image and regions, and
without --text its own sentences of the dataset are annotated.
"""

import os
import pathlib
import sys

from absl import app
from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import annotation_page
from artpedia_jax.inference import predictor as inference
from tfds_artpedia import cli
from tfds_artpedia import errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_IMAGE = flags.DEFINE_string('image', None, 'The painting as an image file.')
_REGIONS = flags.DEFINE_string('regions', None,
                               'The painting as detector regions: .npz or TSV.')
_ROW_ID = flags.DEFINE_string('row_id', None, 'The image_id of a TSV with several rows.')
_SPLIT = flags.DEFINE_string('split', None, 'With --id: take the painting from this '
                             'built split (and, without --text, its own sentences).')
_ID = flags.DEFINE_string('id', None, 'The painting of --split to annotate.')
_TEXT = flags.DEFINE_string('text', None, 'A UTF-8 text file (`-`: standard input).')
_OUT = flags.DEFINE_string('out', None,
                           'Output folder (default: W/annotations/<painting name>).')


def _read_text(path: str) -> str:
  if path == '-':
    return sys.stdin.read()
  try:
    return pathlib.Path(path).read_text(encoding='utf-8')
  except UnicodeDecodeError as error:
    raise inference.InferenceError(f'--text={path}: not UTF-8 text ({error}).') from error


def _split_painting(predictor: inference.Predictor, split: str, painting_id: str):
  """Painting `painting_id` of a built split, its image and its own sentences."""
  collection = predictor.open_split(split)
  index = collection.index_of(painting_id)
  if index is None:
    raise errors.UsageError(f'--id={painting_id}: no such painting in {collection.name} '
                            f'(ids such as {collection.ids[:5]}).')
  return (predictor.painting_of(collection, index), collection.image_bytes(index),
          collection.own_sentences(index))


def _image_bytes(path: str | None) -> bytes | None:
  return None if path is None else pathlib.Path(path).read_bytes()


def annotate(workdir: str, step: str, out: str | None) -> None:
  from_split = _SPLIT.value is not None or _ID.value is not None
  if from_split == (_IMAGE.value is not None or _REGIONS.value is not None):
    raise errors.UsageError('give the painting either as --image=FILE and/or '
                            '--regions=FILE, or as --split=SPLIT --id=ID.')
  if from_split and (_SPLIT.value is None or _ID.value is None):
    raise errors.UsageError('a painting of a split needs both --split and --id.')
  if not from_split and _TEXT.value is None:
    raise errors.UsageError('give the text to annotate: --text=FILE (`-`: stdin).')
  text = _read_text(_TEXT.value) if _TEXT.value is not None else None
  predictor = inference.Predictor.from_workdir(workdir, step)
  if from_split:
    painting, image, own = _split_painting(predictor, _SPLIT.value, _ID.value)
    name = _ID.value
    sentences = (predictor.annotate(painting, text) if text is not None
                 else predictor.annotate_sentences(painting, own))
  else:
    painting = predictor.read_painting(image=_IMAGE.value, regions=_REGIONS.value,
                                       painting_id=_ROW_ID.value)
    name = pathlib.Path(_IMAGE.value or _REGIONS.value).stem
    image = _image_bytes(_IMAGE.value)
    sentences = predictor.annotate(painting, text)
  print(annotation_page.table(sentences))
  out = out or os.path.join(workdir, 'annotations', name or 'painting')
  html_path, json_path = annotation_page.write(out, name, image, sentences, predictor.step)
  print(f'Annotation: {html_path}\nJSON:       {json_path}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  console.prepare_command(flags.FLAGS.verbose)
  annotate(_WORKDIR.value, _STEP.value, _OUT.value)


if __name__ == '__main__':
  cli.run(main)
