r"""Searches a collection with a trained model, in either direction.

  python -m artpedia_jax.search --workdir=W --split=test "a red cross" [--json]
  python -m artpedia_jax.search --workdir=W --folder=DIR "a red cross"
  python -m artpedia_jax.search --workdir=W --split=test --id=PAINTING_ID
  python -m artpedia_jax.search --workdir=W --split=test --image=P.jpg | --regions=P.npz

With a query, prints the words of it the model read (and those it did not, with a
warning when they are most of its content words), then the top-k paintings of the
collection (a built split, or a folder of images / `<id>.npz` files) with Artpedia id,
score, title and year; `--json` prints what the API's `/api/search` returns. With a
painting (`--id`, its Artpedia id in the split, or a file) instead, prints the split's
top-k sentences for it, each with the painting it belongs to and its p(visual) with the
given painting. The collection's
paintings are encoded on first use (progress on stderr) and cached in W/inference_cache,
which then also answers for the split's catalogue, so the dataset is not read again.
"""

import json

from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import answers
from artpedia_jax.inference import predictor as inference
from tfds_artpedia import cli
from tfds_artpedia import errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'The built split to search.')
_FOLDER = flags.DEFINE_string('folder', None, 'Search this folder instead of --split.')
_K = flags.DEFINE_integer('k', 10, 'How many results to print.', lower_bound=1)
_ID = flags.DEFINE_string('id', None, 'Rank sentences for this painting of the split '
                          '(its Artpedia id).')
_IMAGE = flags.DEFINE_string('image', None, 'Rank sentences for this image file.')
_REGIONS = flags.DEFINE_string('regions', None,
                               'Rank sentences for these regions (.npz or TSV).')
_JSON = flags.DEFINE_bool('json', False, 'Print JSON (for a query: what the API\'s '
                          '/api/search returns) instead of a table.')


def _open(predictor: inference.Predictor):
  if _FOLDER.value:
    return predictor.open_folder(_FOLDER.value)
  return predictor.open_split(_SPLIT.value)


def _progress(predictor, collection):
  if predictor.is_cached(collection):
    return None
  return console.progress_line(
      f'Encoding the {len(collection)} paintings of {collection.name} (once; cached)')


def _print_json(answer: dict) -> None:
  print(json.dumps(answer, indent=2, ensure_ascii=False))


def _print_words(result: inference.SearchResult) -> None:
  print(f'Words read: {", ".join(result.words.known)}')
  if result.words.unknown:
    print(f'Unknown words (ignored): {", ".join(result.words.unknown)}')
  if result.unreliable:
    print('Unreliable: the model does not know most of the words that carry this '
          'query\'s meaning, so the ranking below says little.')


def search_paintings(query: str) -> None:
  predictor = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  predictor.check_query(query)
  collection = _open(predictor)
  result = predictor.search(query, collection, _K.value,
                            progress=_progress(predictor, collection))
  if _JSON.value:
    _print_json(answers.search_json(result))
    return
  _print_words(result)
  print(f'{"rank":>4}  {"score":>7}  {"id":<12} title')
  for rank, hit in enumerate(result.hits, start=1):
    year = f' ({hit.year})' if hit.year is not None and str(hit.year) not in hit.title else ''
    print(f'{rank:>4}  {hit.score:>7.3f}  {hit.painting_id:<12} {hit.title}{year}')


def rank_sentences() -> None:
  predictor = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  if _FOLDER.value:
    raise errors.UsageError(
        'ranking sentences needs a split (its sentences are the candidates): drop '
        '--folder and pass --split.')
  collection = predictor.open_split(_SPLIT.value)
  if _ID.value is not None:
    index = collection.index_of(_ID.value)
    if index is None:
      raise inference.InferenceError(
          f'--id={_ID.value}: no such painting in {collection.name} (ids such as '
          f'{collection.ids[:5]}).')
    painting = predictor.painting_of(collection, index)
  else:
    painting = predictor.read_painting(image=_IMAGE.value, regions=_REGIONS.value)
  owner = collection.sentence_painting
  ranked = predictor.describe(painting, collection.sentence_texts, _K.value)
  if _JSON.value:
    _print_json({'painting': _ID.value or _IMAGE.value or _REGIONS.value, 'sentences': [
        {'text': s.text, 'id': collection.ids[owner[s.index]], 'kind': s.kind,
         'p_visual': s.p_visual, 'score': s.score} for s in ranked]})
    return
  print(f'{"rank":>4}  {"score":>7}  {"p(vis)":>6}  {"painting":<12} sentence')
  for rank, s in enumerate(ranked, start=1):
    print(f'{rank:>4}  {s.score:>7.3f}  {s.p_visual:>6.3f}  '
          f'{collection.ids[owner[s.index]]:<12} {s.text}')


def main(argv):
  query = ' '.join(argv[1:])
  given = [name for name, value in (('a query', query), ('--id', _ID.value),
                                    ('--image', _IMAGE.value),
                                    ('--regions', _REGIONS.value)) if value]
  if len(given) != 1 and set(given) != {'--image', '--regions'}:
    raise errors.UsageError(
        f'give either a query (to find paintings) or a painting (--id, --image or '
        f'--regions, to rank sentences); got {" and ".join(given) or "neither"}.')
  console.prepare_command(flags.FLAGS.verbose)
  if query:
    search_paintings(query)
  else:
    rank_sentences()


if __name__ == '__main__':
  cli.run(main)
