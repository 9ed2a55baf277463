r"""Searches a collection with a trained model, in either direction.

  python -m artpedia_jax.search --workdir=W --split=test "a woman holding a child"
  python -m artpedia_jax.search --workdir=W --folder=DIR "a woman holding a child"
  python -m artpedia_jax.search --workdir=W --split=test --id=PAINTING_ID
  python -m artpedia_jax.search --workdir=W --split=test --image=P.jpg | --regions=P.npz

With a query, prints the top-k paintings of the collection (a built split, or a folder
of images / `<id>.npz` files) with title, id and score. With a painting (`--id` of the
split, or a file) instead, prints the split's top-k sentences for it, each with the
painting it belongs to and its p(visual) with the given painting. The collection's
paintings are encoded on first use (progress on stderr) and cached in W/inference_cache.
"""

from absl import flags

from artpedia_jax import console
from artpedia_jax.inference import predictor as inference
from tfds_artpedia import cli
from tfds_artpedia import errors

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training workdir.', required=True)
_STEP = flags.DEFINE_string('step', 'best', 'A step number, `latest` or `best`.')
_SPLIT = flags.DEFINE_string('split', 'test', 'The built split to search.')
_FOLDER = flags.DEFINE_string('folder', None, 'Search this folder instead of --split.')
_K = flags.DEFINE_integer('k', 10, 'How many results to print.', lower_bound=1)
_ID = flags.DEFINE_string('id', None, 'Rank sentences for this painting of the split.')
_IMAGE = flags.DEFINE_string('image', None, 'Rank sentences for this image file.')
_REGIONS = flags.DEFINE_string('regions', None,
                               'Rank sentences for these regions (.npz or TSV).')


def _open(predictor: inference.Predictor):
  if _FOLDER.value:
    return predictor.open_folder(_FOLDER.value)
  return predictor.open_split(_SPLIT.value)


def _progress(predictor, collection):
  if predictor.is_cached(collection):
    return None
  return console.progress_line(
      f'Encoding the {len(collection)} paintings of {collection.name} (once; cached)')


def search_paintings(query: str) -> None:
  predictor = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  predictor.check_query(query)
  collection = _open(predictor)
  hits = predictor.search(query, collection, _K.value,
                          progress=_progress(predictor, collection))
  print(f'{"rank":>4}  {"score":>7}  {"id":<12} title')
  for rank, hit in enumerate(hits, start=1):
    print(f'{rank:>4}  {hit.score:>7.3f}  {hit.painting_id:<12} {hit.title}')


def rank_sentences() -> None:
  predictor = inference.Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  if _FOLDER.value:
    raise errors.UsageError(
        'ranking sentences needs a split (its sentences are the candidates): drop '
        '--folder and pass --split.')
  collection = predictor.open_split(_SPLIT.value)
  if _ID.value is not None:
    if _ID.value not in collection.ids:
      raise inference.InferenceError(
          f'--id={_ID.value}: no such painting in {collection.name} (ids such as '
          f'{collection.ids[:5]}).')
    painting = collection.painting(collection.ids.index(_ID.value))
  else:
    painting = predictor.read_painting(image=_IMAGE.value, regions=_REGIONS.value)
  texts = [str(t) for t in collection.split.sentence_texts]
  owner = collection.split.sentence_painting
  print(f'{"rank":>4}  {"score":>7}  {"p(vis)":>6}  {"painting":<12} sentence')
  for rank, s in enumerate(predictor.describe(painting, texts, _K.value), start=1):
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
  console.quiet_third_party_info()
  if query:
    search_paintings(query)
  else:
    rank_sentences()


if __name__ == '__main__':
  cli.run(main)
