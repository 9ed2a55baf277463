"""The inference API agrees with the evaluator, reads users' files, and caches collections."""

import shutil

import numpy as np
import pytest

from artpedia_jax.checkpoints import restore as restore_lib
from artpedia_jax.data import eval_split
from artpedia_jax.data import input_spec
from artpedia_jax.data import pipeline
from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import device_scorer
from artpedia_jax.evaluation import evaluator as evaluation
from artpedia_jax.inference import painting_files
from artpedia_jax.inference import predictor as inference
from tfds_artpedia import regions as regions_lib


def _inputs(config) -> input_spec.InputSpec:
  return input_spec.InputSpec.from_config(config)


def _eval_spec(config) -> device_scorer.EvalSpec:
  return device_scorer.EvalSpec.from_config(config)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]


@pytest.fixture(scope='module')
def region_predictor(region_workdir):
  return inference.Predictor.from_workdir(str(region_workdir), 'latest')


@pytest.fixture(scope='module')
def test_split(region_predictor):
  return region_predictor.open_split('test')


def _evaluator_scores(workdir):
  """The test split's scores as the eval binary computes them."""
  restored = restore_lib.restore_model(str(workdir), 'latest')
  source = pipeline.open_source(_inputs(restored.config), 'test')
  split = eval_split.load_eval_split(_inputs(restored.config), source, restored.tokenizer)
  scorer = device_scorer.DeviceScorer(restored.graphdef, _eval_spec(restored.config), restored.mesh)
  return evaluation.SplitEvaluator(scorer, split, split_name='test').run(
      restored.variables, step=restored.step).scores


@pytest.fixture(scope='module')
def evaluated(region_workdir):
  return _evaluator_scores(region_workdir)


def _record(predictor, index):
  return pipeline.open_source(predictor.inputs, 'test')[index]


def _own_texts(collection, painting):
  return collection.sentence_rows(painting), collection.own_sentences(painting)


@pytest.mark.parametrize('painting', [0, 5])
def test_annotation_of_own_sentences_matches_the_evaluator(region_predictor, test_split,
                                                          evaluated, painting):
  rows, texts = _own_texts(test_split, painting)
  annotated = region_predictor.annotate_sentences(test_split.painting(painting), texts)
  np.testing.assert_allclose([s.score for s in annotated],
                             evaluated.scores[painting, rows], atol=1e-5)
  np.testing.assert_allclose([s.p_visual for s in annotated], evaluated.probs[rows],
                             atol=1e-5)
  words = annotated[0].words
  assert [w.word for w in words] == vocab_lib.tokenize(texts[0])
  assert all(0 <= c <= 1 for w in words for c in w.box)


def test_search_ranks_paintings_as_the_evaluator_score_column(region_predictor,
                                                             test_split, evaluated):
  for sentence in (0, 7):
    query = test_split.sentence_texts[sentence]
    hits = region_predictor.search(query, test_split, k=len(test_split)).hits
    column = evaluated.scores[:, sentence]
    assert [h.index for h in hits] == list(np.argsort(-column, kind='stable'))
    np.testing.assert_allclose([h.score for h in hits], np.sort(column)[::-1], atol=1e-5)
    assert hits[0].painting_id == test_split.ids[hits[0].index]


def test_describe_ranks_sentences_as_the_evaluator_score_row(region_predictor, test_split,
                                                            evaluated):
  texts = test_split.sentence_texts
  ranked = region_predictor.describe(test_split.painting(3), texts, k=10)
  assert [s.index for s in ranked] == list(np.argsort(-evaluated.scores[3],
                                                      kind='stable')[:10])


def _regions_file(predictor, index, path, *, with_size: bool = True):
  """Test painting `index` as a user's `.npz` (pixel boxes), with or without its size;
  returns the record."""
  record = _record(predictor, index)
  height, width = painting_files.decode_image(record['image'], 'test').shape[:2]
  size = {'image_w': width, 'image_h': height} if with_size else {}
  np.savez(path, features=record['regions']['features'],
           boxes=regions_lib.pixel_boxes(record['regions']['boxes'], width, height), **size)
  return record


def test_annotate_splits_the_text_and_a_regions_file_gives_the_split_painting(
    region_predictor, test_split, tmp_path):
  npz = tmp_path / 'p.npz'
  _regions_file(region_predictor, 2, npz)
  _, texts = _own_texts(test_split, 2)
  from_file = region_predictor.annotate(region_predictor.read_painting(regions=npz),
                                        '\n\n'.join(texts))
  from_split = region_predictor.annotate_sentences(test_split.painting(2), texts)
  assert [s.text for s in from_file] == texts
  np.testing.assert_allclose([s.score for s in from_file],
                             [s.score for s in from_split], atol=1e-5)


def test_wrong_input_kind_and_bad_files_are_explained(region_predictor, tmp_path):
  image = tmp_path / 'p.png'
  painting_files.Image.new('RGB', (32, 24)).save(image)
  with pytest.raises(painting_files.PaintingInputError, match='trained on detector regions'):
    region_predictor.read_painting(image=image)
  not_image = tmp_path / 'q.jpg'
  not_image.write_bytes(b'not a jpeg')
  with pytest.raises(painting_files.PaintingInputError, match='not an image'):
    region_predictor.read_painting(image=not_image, regions=tmp_path / 'x.npz')
  wrong = tmp_path / 'w.npz'
  np.savez(wrong, features=np.zeros([3, 7], np.float32), boxes=np.zeros([3, 4]),
           image_w=10, image_h=10)
  with pytest.raises(painting_files.PaintingInputError, match=r'expected \[num_regions'):
    region_predictor.read_painting(regions=wrong)


def test_queries_the_model_cannot_read_are_refused(region_predictor, test_split):
  with pytest.raises(inference.InferenceError, match='matches nothing'):
    region_predictor.search('xyzzy plugh', test_split)
  with pytest.raises(inference.InferenceError, match='no words'):
    region_predictor.search('?!', test_split)
  with pytest.raises(inference.InferenceError, match='empty'):
    region_predictor.annotate(test_split.painting(0), ' \n ')


def test_collection_encodings_are_cached_on_disk_by_model_and_content(
    region_workdir, test_split, tmp_path):
  cache = str(tmp_path / 'cache')
  predictor = inference.Predictor.from_workdir(str(region_workdir), 'latest',
                                               cache_dir=cache)
  calls = []
  query = test_split.sentence_texts[0]
  split = predictor.open_split('test')
  first = predictor.search(query, split, progress=lambda *a: calls.append(a))
  assert calls and calls[-1] == (len(split), len(split))
  again = inference.Predictor.from_workdir(str(region_workdir), 'latest', cache_dir=cache)
  cached_split = again.open_split('test')  # from the cache: the dataset is not read
  assert again.is_cached(cached_split) and cached_split._source is None
  assert cached_split.ids == split.ids and cached_split.titles == split.titles
  assert cached_split.sentence_texts == split.sentence_texts
  calls.clear()
  assert again.search(query, cached_split, progress=lambda *a: calls.append(a)) == first
  assert not calls
  painting = again.painting_of(cached_split, 3)  # the cached encoding, not the dataset's
  assert painting.encoded is not None and cached_split._source is None
  np.testing.assert_allclose(
      [s.score for s in again.describe(painting, cached_split.own_sentences(3))],
      [s.score for s in predictor.describe(split.painting(3), split.own_sentences(3))],
      atol=1e-6)
  folder = tmp_path / 'folder'
  folder.mkdir()
  for i in (0, 1):
    record = _record(predictor, i)
    np.savez(folder / f'{split.ids[i]}.npz', features=record['regions']['features'],
             boxes=regions_lib.pixel_boxes(record['regions']['boxes'], 100, 100),
             image_w=100, image_h=100)
  collection = predictor.open_folder(folder)
  assert collection.ids == sorted(split.ids[:2])
  assert not predictor.is_cached(collection)
  predictor.search(query, collection)
  (folder / f'{split.ids[0]}.npz').write_bytes((folder / f'{split.ids[1]}.npz').read_bytes())
  assert not predictor.is_cached(predictor.open_folder(folder))


def _uncached_ranking(workdir, query):
  predictor = inference.Predictor.from_workdir(str(workdir), 'latest', cache_dir=None)
  result = predictor.search(query, predictor.open_split('test'), k=12)
  return [(h.painting_id, round(h.score, 5)) for h in result.hits]


def _ranking(predictor, query):
  result = predictor.search(query, predictor.open_split('test'), k=12)
  return [(h.painting_id, round(h.score, 5)) for h in result.hits]


def test_two_models_at_the_same_step_share_a_cache_folder_without_mixing(
    region_workdir, other_seed_workdir, test_split, tmp_path):
  query = test_split.sentence_texts[1]
  expected = {w: _uncached_ranking(w, query) for w in (region_workdir, other_seed_workdir)}
  assert expected[region_workdir] != expected[other_seed_workdir]
  for workdir in (region_workdir, other_seed_workdir, region_workdir):
    predictor = inference.Predictor.from_workdir(str(workdir), 'latest',
                                                 cache_dir=tmp_path / 'shared')
    assert predictor.step == 20
    assert _ranking(predictor, query) == expected[workdir]
  assert len(list((tmp_path / 'shared').glob('*.npz'))) == 2


def test_a_retrained_workdir_does_not_reuse_the_old_models_encodings(
    region_workdir, other_seed_workdir, test_split, tmp_path):
  query = test_split.sentence_texts[1]
  workdir = tmp_path / 'run'
  shutil.copytree(region_workdir, workdir)
  before = _ranking(inference.Predictor.from_workdir(str(workdir), 'latest'), query)
  assert list((workdir / 'inference_cache').glob('*.npz'))
  shutil.rmtree(workdir / 'checkpoints')  # retrained: new checkpoints, the cache stays
  shutil.copytree(other_seed_workdir / 'checkpoints', workdir / 'checkpoints')
  after = _ranking(inference.Predictor.from_workdir(str(workdir), 'latest'), query)
  assert after == _uncached_ranking(other_seed_workdir, query) != before


def test_a_regions_file_without_image_size_takes_it_from_the_image(
    region_predictor, test_split, tmp_path):
  npz = tmp_path / 'p.npz'
  record = _regions_file(region_predictor, 2, npz, with_size=False)
  jpeg = tmp_path / 'p.jpg'
  jpeg.write_bytes(record['image'])
  with pytest.raises(painting_files.PaintingInputError, match='image size is unknown'):
    region_predictor.read_painting(regions=npz)
  texts = test_split.own_sentences(2)
  from_files = region_predictor.annotate_sentences(
      region_predictor.read_painting(regions=npz, image=jpeg), texts)
  np.testing.assert_allclose(
      [s.score for s in from_files],
      [s.score for s in region_predictor.annotate_sentences(test_split.painting(2), texts)],
      atol=1e-5)


def test_pixel_model_annotates_an_image_file_as_the_evaluator(pixel_workdir, tmp_path):
  predictor = inference.Predictor.from_workdir(str(pixel_workdir), 'latest')
  split = predictor.open_split('test')
  path = tmp_path / 'painting.jpg'
  path.write_bytes(split.image_bytes(1))
  rows, texts = _own_texts(split, 1)
  annotated = predictor.annotate_sentences(predictor.read_painting(image=path), texts)
  evaluated = _evaluator_scores(pixel_workdir)
  np.testing.assert_allclose([s.score for s in annotated], evaluated.scores[1, rows],
                             atol=1e-5)
  np.testing.assert_allclose([s.p_visual for s in annotated], evaluated.probs[rows],
                             atol=1e-5)
  with pytest.raises(painting_files.PaintingInputError, match='reads pixels'):
    predictor.read_painting(regions=tmp_path / 'p.npz')
