"""The Markdown report: files, links, tables, example marks and the alignment picture."""

import json
import os
import re

from etils import epath
import numpy as np
from PIL import Image

from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.evaluation import evaluator
from artpedia_jax.evaluation import metrics
from artpedia_jax.evaluation import report
from tests.helpers import fake_gcs

# Painting 0: visual 0, 1 and contextual 2; painting 1: visual 3 and contextual 4;
# painting 2: visual 5.
PAINTING = np.array([0, 0, 0, 1, 1, 2])
VISUAL = np.array([True, True, False, True, False, True])
SENTENCES = [b'a red circle', b'two blue squares', b'painted in 1890 | Paris',
             b'a green tree', b'kept in the Louvre', b'a yellow sun']
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _example(image):
  scores_row = np.array([0.9, 0.2, 0.8, 0.7, 0.1, 0.5])
  words = ['a', 'red', 'circle']
  word_region_scores = np.array([[0.1, 0.2], [0.9, 0.3], [0.4, 0.8]])
  boxes = np.array([[0.1, 0.5, 0.3, 0.9], [0.5, 0.1, 0.9, 0.4]], np.float32)
  return report.Example(
      painting_id='0042', title='Still life', image=image,
      top_sentences=report.retrieved_sentences(scores_row, 0, SENTENCES, PAINTING, VISUAL),
      aligned_sentence='a red circle',
      alignment=alignment_lib.word_alignment(words, word_region_scores, boxes))


def _write(tmp_path, examples):
  rng = np.random.default_rng(0)
  scores, probs = rng.random((3, 6)), rng.random(6)
  result = metrics.evaluation_metrics(scores, probs, PAINTING, VISUAL, split='test',
                                      step=7)
  chance = metrics.chance_levels(PAINTING, VISUAL)
  ranks = metrics.retrieval_ranks(scores, PAINTING, VISUAL)
  path = report.write_report(tmp_path / 'eval', result, chance, examples=examples,
                             probs=probs, is_visual=VISUAL, i2t_ranks=ranks.i2t,
                             t2i_ranks=ranks.t2i, basename='test_step7')
  return path, result, chance


def test_report_links_valid_pngs(tmp_path):
  image = np.zeros((48, 64, 3), np.uint8)
  path, _, _ = _write(tmp_path, [_example(image), _example(None)])
  assert path == tmp_path / 'eval' / 'test_step7.md'
  links = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', path.read_text())
  assert sorted(links) == ['test_step7_align_0042.png', 'test_step7_pr.png',
                           'test_step7_recall.png']
  for link in links:
    picture = path.parent / link
    assert picture.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(picture) as opened:
      opened.verify()


def test_tables_hold_metric_and_chance_values(tmp_path):
  path, result, chance = _write(tmp_path, [])
  rows = {line.split('|')[1].strip(): line for line in path.read_text().splitlines()
          if line.startswith('| ')}
  r1_cells = [c.strip() for c in rows['R@1'].split('|')[2:-1]]
  assert r1_cells == [report.format_metric(d[key]['R@1'])
                      for key in ('i2t', 't2i', 'i2t_all') for d in (result, chance)]
  for key in ('mAP', 'accuracy', 'f1', 'auc', 'ap'):
    assert rows[key] == (f"| {key} | {report.format_metric(result['visual_id'][key])} | "
                         f"{report.format_metric(chance['visual_id'][key])} |")
  assert f"| rsum | {report.format_metric(result['rsum'])} |" in rows['rsum']


def test_example_marks_and_order():
  top = _example(None).top_sentences
  assert [s.text for s in top] == ['a red circle', 'painted in 1890 | Paris',
                                   'a green tree', 'a yellow sun', 'two blue squares']
  assert [s.mark for s in top] == [report.OWN_VISUAL, report.OWN_CONTEXTUAL,
                                   report.OTHER_PAINTING, report.OTHER_PAINTING,
                                   report.OWN_VISUAL]


def test_example_table_escapes_and_marks(tmp_path):
  path, _, _ = _write(tmp_path, [_example(None)])
  text = path.read_text()
  assert "| 2 | 0.800 | own contextual | painted in 1890 \\| Paris |" in text
  assert "| 3 | 0.700 | another painting's | a green tree |" in text
  assert '(image not available)' in text


def test_word_alignment_picks_best_real_region():
  alignment = alignment_lib.word_alignment(['a', 'b'], np.array([[0.9, 0.1], [0.2, 0.3]]),
                                    np.array([[0, 0, 1, 1], [0, 0, .5, .5]]),
                                    region_mask=np.array([False, True]))
  assert [a.box for a in alignment] == [(0, 0, .5, .5), (0, 0, .5, .5)]
  assert [a.score for a in alignment] == [0.1, 0.3]


def test_alignment_picture_size_and_box_placement():
  small = report.draw_alignment(np.zeros((48, 64, 3), np.uint8), _example(None).alignment)
  assert small.size == (384, 288)  # enlarged 6 times: longer side reaches 384
  large = np.zeros((400, 500, 3), np.uint8)
  picture = np.asarray(report.draw_alignment(large, _example(None).alignment))
  assert picture.shape == (400, 500, 3)
  # 'red' aligns to box (y0, x0, y1, x1) = (0.1, 0.5, 0.3, 0.9): its left edge is at
  # x = 250 between y = 40 and y = 120, drawn in the second palette colour.
  assert tuple(picture[100, 250]) == report.PALETTE[1]
  assert tuple(picture[250, 100]) == (0, 0, 0)  # y and x are not swapped
  swapped = [alignment_lib.AlignedWord('sun', (0.9, 0.8, 0.1, 0.2), 0.5)]
  assert report.draw_alignment(large, swapped).size == (500, 400)


def test_a_gs_report_and_metrics_file_go_through_epath(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  fake = fake_gcs.fake_gcs(tmp_path / 'bucket_root', monkeypatch)
  path, result, _ = _write(epath.Path('gs://bucket/w'), [_example(np.zeros((48, 64, 3),
                                                                          np.uint8))])
  metrics_path = evaluator.write_metrics('gs://bucket/w', result)
  assert os.fspath(path) == 'gs://bucket/w/eval/test_step7.md'
  assert os.fspath(metrics_path) == 'gs://bucket/w/eval/test_step7.json'
  assert json.loads(metrics_path.read_text()) == json.loads(json.dumps(result))
  assert sorted(os.listdir(fake.local('gs://bucket/w/eval'))) == [
      'test_step7.json', 'test_step7.md', 'test_step7_align_0042.png', 'test_step7_pr.png',
      'test_step7_recall.png']
  for name in ('test_step7_pr.png', 'test_step7_align_0042.png'):
    with Image.open(fake.local(f'gs://bucket/w/eval/{name}')) as opened:
      opened.verify()
  assert not (tmp_path / 'gs:').exists()  # nothing went to the local disk by name
