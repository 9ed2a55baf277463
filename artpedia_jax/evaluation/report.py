"""Human-readable evaluation report: Markdown beside the metrics JSON, with PNG figures.

The report shows the metrics against their chance levels, a precision-recall curve of
visual vs contextual sentences, recall@K curves of both retrieval directions, and for a
few paintings what the model retrieves and which region each word of a visual sentence
aligns to. Plots use matplotlib's `Figure` directly (the Agg canvas, no pyplot state), so
writing a report never opens a window or touches a global backend.
"""

from collections.abc import Sequence
import dataclasses
import math
import re

from etils import epath
from matplotlib.figure import Figure
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from artpedia_jax.data import vocab as vocab_lib
from artpedia_jax.evaluation import alignment as alignment_lib
from artpedia_jax.evaluation import metrics as metrics_lib

OWN_VISUAL = 'own visual'
OWN_CONTEXTUAL = 'own contextual'
OTHER_PAINTING = "another painting's"
RECALL_CURVE_KS = np.arange(1, 101)
MIN_PICTURE_SIDE = 384  # small images are enlarged (integer factor) so labels stay legible
_FONT_SIZE = 13
# Word-region alignment lives in `alignment` (no plotting imports, for the inference
# commands); these names stay for the report's callers.
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40))


@dataclasses.dataclass(frozen=True)
class RetrievedSentence:
  text: str
  score: float
  mark: str  # OWN_VISUAL, OWN_CONTEXTUAL or OTHER_PAINTING


@dataclasses.dataclass(frozen=True)
class Example:
  """One painting shown in the report."""
  painting_id: str
  title: str
  image: np.ndarray | None  # uint8 [H, W, 3]; None when the image is not available
  top_sentences: list[RetrievedSentence]
  aligned_sentence: str  # the visual sentence whose words `alignment` lists
  alignment: list[alignment_lib.AlignedWord]


def retrieved_sentences(scores_row: np.ndarray, painting: int,
                        sentences: Sequence[str | bytes], sentence_painting: np.ndarray,
                        is_visual: np.ndarray, k: int = 5) -> list[RetrievedSentence]:
  """The k best-scored sentences of the split for `painting`, each marked by provenance.

  Candidates are all sentences (as in `i2t_all`), so own contextual sentences can appear.
  """
  scores_row = np.asarray(scores_row)
  best = np.argsort(-scores_row, kind='stable')[:k]

  def mark(j):
    if sentence_painting[j] != painting:
      return OTHER_PAINTING
    return OWN_VISUAL if is_visual[j] else OWN_CONTEXTUAL

  return [RetrievedSentence(vocab_lib.as_text(sentences[j]), float(scores_row[j]),
                            mark(j))
          for j in best]


def draw_alignment(image: np.ndarray,
                   alignment: Sequence[alignment_lib.AlignedWord]) -> Image.Image:
  """The painting with each word's best box drawn and labelled "word score".

  The picture is the image enlarged by the smallest integer factor that brings its longer
  side to MIN_PICTURE_SIDE (factor 1 for larger images). Labels of words sharing a box
  are stacked.
  """
  height, width = image.shape[:2]
  factor = max(1, math.ceil(MIN_PICTURE_SIDE / max(height, width)))
  picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert('RGB')
  picture = picture.resize((width * factor, height * factor), Image.Resampling.NEAREST)
  draw = ImageDraw.Draw(picture)
  font = ImageFont.load_default(size=_FONT_SIZE)
  labels_at_box = {}
  for i, aligned in enumerate(alignment):
    colour = PALETTE[i % len(PALETTE)]
    y0, x0, y1, x1 = aligned.box  # detector boxes can come with corners swapped
    corners = (min(x0, x1) * picture.width, min(y0, y1) * picture.height,
               max(x0, x1) * picture.width, max(y0, y1) * picture.height)
    draw.rectangle(corners, outline=colour, width=2)
    stacked = labels_at_box.get(aligned.box, 0)
    labels_at_box[aligned.box] = stacked + 1
    origin = (corners[0] + 3, corners[1] + 3 + stacked * (_FONT_SIZE + 4))
    label = f'{aligned.word} {aligned.score:.2f}'
    draw.rectangle(draw.textbbox(origin, label, font=font), fill=colour)
    draw.text(origin, label, fill=(255, 255, 255), font=font)
  return picture


def _save_figure(fig: Figure, path: epath.Path) -> None:
  with path.open('wb') as f:
    fig.savefig(f, format='png')


def _save_precision_recall(path: epath.Path, probs, is_visual, visual_id: dict) -> None:
  precision, recall, _ = metrics_lib.precision_recall_curve(probs, is_visual)
  fig = Figure(figsize=(5, 4), dpi=100, layout='constrained')
  ax = fig.add_subplot()
  ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where='pre',
          label=f"model (AP {format_metric(visual_id['ap'])})")
  ax.axhline(np.mean(is_visual), color='grey', linestyle='--',
             label='chance (fraction visual)')
  ax.plot(visual_id['recall'], visual_id['precision'], 'o', color='black',
          label='threshold 0.5')
  ax.set(xlabel='recall (visual)', ylabel='precision (visual)', xlim=(0, 1),
         ylim=(0, 1.02), title='Visual vs contextual sentences')
  ax.legend(loc='lower left')
  _save_figure(fig, path)


def _save_recall_curves(path: epath.Path, i2t_ranks, t2i_ranks, chance: dict) -> None:
  fig = Figure(figsize=(5, 4), dpi=100, layout='constrained')
  ax = fig.add_subplot()
  for name, ranks in (('i2t', i2t_ranks), ('t2i', t2i_ranks)):
    line, = ax.plot(RECALL_CURVE_KS, metrics_lib.recall_at_k(ranks, RECALL_CURVE_KS),
                    label=name)
    ax.plot(metrics_lib.RECALL_KS,
            [chance[name][f'R@{k}'] for k in metrics_lib.RECALL_KS], 'x',
            color=line.get_color(), label=f'{name} chance')
  ax.set(xlabel='K', ylabel='recall@K (%)', xscale='log', ylim=(0, 101),
         title='Retrieval recall@K')
  ax.legend(loc='lower right')
  _save_figure(fig, path)


def format_metric(value) -> str:
  """Ints as they are, floats with 2 decimals (3 below 1), undefined (None) as n/a."""
  if value is None:
    return 'n/a'
  if isinstance(value, (int, np.integer)):
    return str(value)
  return f'{value:.2f}' if abs(value) >= 1 or value == 0 else f'{value:.3f}'


def _cell(text: str) -> str:
  """Sentences are free text: keep them from breaking a Markdown table row."""
  return text.replace('|', '\\|').replace('\n', ' ')


def _retrieval_table(metrics: dict, chance: dict) -> list[str]:
  directions = ('i2t', 't2i', 'i2t_all')
  header = '| metric | ' + ' | '.join(f'{d} | {d} chance' for d in directions) + ' |'
  rows = [header, '|---' * (1 + 2 * len(directions)) + '|']
  for key in ('R@1', 'R@5', 'R@10', 'medr', 'meanr', 'num_queries'):
    cells = [f'{format_metric(metrics[d][key])} | {format_metric(chance[d][key])}'
             for d in directions]
    rows.append(f'| {key} | ' + ' | '.join(cells) + ' |')
  rsum_cells = f"{format_metric(metrics['rsum'])} | {format_metric(chance['rsum'])}"
  rows.append(f'| rsum | {rsum_cells} | | | | |')
  return rows


VISUAL_ID_KEYS = ('mAP', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'ap')
BASELINE = 'visual_id_baseline'  # the TF-IDF + logistic regression figures
POOLED = 'retrieval_pooled'  # the same encoders under the pooled scorer


def _visual_id_table(metrics: dict, chance: dict) -> list[str]:
  """Model, the lexical baseline (when the metrics have it) and chance, side by side."""
  columns = [('model', metrics['visual_id'])]
  if BASELINE in metrics:
    columns.append(('TF-IDF + LR baseline', metrics[BASELINE]))
  columns.append(('chance', chance['visual_id']))
  rows = ['| metric | ' + ' | '.join(name for name, _ in columns) + ' |',
          '|---' * (1 + len(columns)) + '|']
  for key in VISUAL_ID_KEYS:
    rows.append(f'| {key} | ' + ' | '.join(format_metric(values[key])
                                           for _, values in columns) + ' |')
  return rows


def _pooled_table(metrics: dict) -> list[str]:
  """Alignment scoring against pooled scoring of the same encoders."""
  pooled = metrics[POOLED]
  rows = ['| metric | model | pooled scoring, same encoders |', '|---|---|---|']
  for direction in ('i2t', 't2i'):
    for key in ('R@1', 'R@5', 'R@10'):
      rows.append(f'| {direction} {key} | {format_metric(metrics[direction][key])} | '
                  f'{format_metric(pooled[direction][key])} |')
  rows.append(f"| rsum | {format_metric(metrics['rsum'])} | "
              f"{format_metric(pooled['rsum'])} |")
  return rows


def _lookup(tree: dict, *path: str) -> str:
  """The formatted figure at `path` in `tree`, or '' where the tree has none."""
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return ''
    tree = tree[key]
  return format_metric(tree)


def format_table(metrics: dict, chance: dict) -> str:
  """The headline metrics beside the baselines (if any) and chance, for the console."""
  pooled, baseline = metrics.get(POOLED, {}), metrics.get(BASELINE, {})
  rows = [(f'{direction} {key}', (direction, key), _lookup(pooled, direction, key))
          for direction in ('i2t', 't2i', 'i2t_all')
          for key in ('R@1', 'R@5', 'R@10', 'medr', 'meanr')]
  rows.append(('rsum', ('rsum',), _lookup(pooled, 'rsum')))
  rows += [(f'visual_id {key}', ('visual_id', key), _lookup(baseline, key))
           for key in VISUAL_ID_KEYS]
  lines = [f"split {metrics['split']}, step {metrics['step']}: "
           f"{metrics['num_paintings']} paintings, {metrics['num_sentences']} sentences",
           f"{'metric':<22}{'model':>10}{'baseline':>10}{'chance':>10}"]
  lines += [f'{name:<22}{_lookup(metrics, *path):>10}{base:>10}'
            f'{_lookup(chance, *path):>10}' for name, path, base in rows]
  if baseline:
    lines.append('baseline: visual_id = TF-IDF + logistic regression fit on the '
                 'training split' + ('; retrieval = pooled scoring of the same encoders.'
                                     if pooled else '.'))
  return '\n'.join(lines)


def _selection_note(metrics: dict) -> list[str]:
  """Which validation criterion made this step the run's best checkpoint, if it is."""
  chosen = metrics.get('chosen_as_best_by')
  if not chosen:
    return []
  return [f"Step {metrics['step']} is the run's best checkpoint by validation "
          f"`{chosen['name']}` = {format_metric(chosen['value'])} (config.best_metric).",
          '']


def _not_retrievable_note(metrics: dict) -> str:
  count = metrics.get('num_sentences_not_retrievable', 0)
  return f' ({count} without any word, left out of retrieval)' if count else ''


def _safe_name(painting_id: str) -> str:
  return re.sub(r'[^A-Za-z0-9_-]', '_', painting_id)


def _example_section(out_dir: epath.Path, basename: str, example: Example) -> list[str]:
  lines = [f'### {_cell(example.title)} (`{example.painting_id}`)', '',
           'Top retrieved sentences among all sentences of the split:', '',
           '| rank | score | provenance | sentence |', '|---|---|---|---|']
  lines += [f'| {i} | {s.score:.3f} | {s.mark} | {_cell(s.text)} |'
            for i, s in enumerate(example.top_sentences, start=1)]
  lines += ['', f'Word-region alignment of: *{_cell(example.aligned_sentence)}*', '']
  if example.image is None:
    words = ', '.join(f'{a.word} → ({", ".join(f"{c:.2f}" for c in a.box)})'
                      for a in example.alignment)
    return lines + ['(image not available) ' + words, '']
  picture_name = f'{basename}_align_{_safe_name(example.painting_id)}.png'
  with (out_dir / picture_name).open('wb') as f:
    draw_alignment(example.image, example.alignment).save(f, format='PNG')
  return lines + [f'![alignment of {example.painting_id}]({picture_name})', '']


def write_report(out_dir, metrics: dict, chance: dict, *, examples: Sequence[Example],
                 probs: np.ndarray, is_visual: np.ndarray, i2t_ranks: np.ndarray,
                 t2i_ranks: np.ndarray, basename: str) -> epath.Path:
  """Writes `<out_dir>/<basename>.md` and its PNGs (through epath: `out_dir` may be
  gs://...); returns the Markdown file's path.

  `metrics`/`chance` are `metrics.evaluation_metrics` / `metrics.chance_levels` dicts;
  the ranks are `metrics.retrieval_ranks(...).i2t` / `.t2i` of the same split.
  """
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  pr_name, recall_name = f'{basename}_pr.png', f'{basename}_recall.png'
  _save_precision_recall(out_dir / pr_name, probs, is_visual, metrics['visual_id'])
  _save_recall_curves(out_dir / recall_name, i2t_ranks, t2i_ranks, chance)
  ours = metrics['visual_id']
  lines = [
      f"# Evaluation: split `{metrics['split']}`, step {metrics['step']}", '',
      f"{metrics['num_paintings']} paintings, {metrics['num_sentences']} sentences"
      f"{_not_retrievable_note(metrics)}. Chance: the expected value under random "
      'scores (see `artpedia_jax.evaluation.metrics`). A rank counts the negatives scoring '
      'at least as high as the best positive: ties count against the model.', '',
      *_selection_note(metrics),
      '## Retrieval', '', *_retrieval_table(metrics, chance), '',
      f'![recall@K]({recall_name})', '',
      *(['Region–word alignment against pooled scoring (the mean region vector against '
         'the mean word vector) of the same trained encoders:', '',
         *_pooled_table(metrics), ''] if POOLED in metrics else []),
      '## Visual-sentence identification', '', *_visual_id_table(metrics, chance), '',
      *(['The baseline is TF-IDF (word 1–2-grams) + logistic regression fit on the '
         "training split's sentences: a model that does not beat it has learnt no more "
         'than word statistics.', ''] if BASELINE in metrics else []),
      f"mAP over {ours['num_paintings_mAP']} paintings having both kinds of sentence "
      f"({ours['num_paintings_left_out_mAP']} left out); threshold metrics at "
      'p(visual) >= 0.5.', '',
      f'![precision-recall]({pr_name})', '',
      '## Examples', '',
  ]
  for example in examples:
    lines += _example_section(out_dir, basename, example)
  path = out_dir / f'{basename}.md'
  path.write_text('\n'.join(lines), encoding='utf-8')
  return path
