"""The visual and contextual sentences of the sample corpus, and the other works they name."""

import re

from tests.helpers import sample_helpers
from tfds_artpedia.sample import scene as sample_scene
from tfds_artpedia.sample import sentences as sample_sentences
from tfds_artpedia.sample import statistics as sample_statistics

_WORD = re.compile(r"[a-z]+")
_ALL_COLOURS = {**sample_scene.COLOURS, **sample_scene.BACKGROUND_COLOURS}
_OTHER_WORK_KINDS = ('other_work', 'other_work_marked')


def _words(sentence):
  return set(_WORD.findall(sentence.lower()))


def _true_of_the_picture(painting):
  """Sentences that describe this painting: visual ones, their fragments, misfiled ones."""
  visual = [s for s, k in zip(painting.visual_sentences, painting.visual_kinds)
            if k in ('visual', 'fragment')]
  return visual + [s for s, k in zip(painting.contextual_sentences, painting.contextual_kinds)
                   if k == 'misfiled']


def test_visual_sentences_name_colours_that_are_painted(large_sample_corpus):
  checked = 0
  for p in large_sample_corpus:
    painted = sample_helpers.image_colours(p.image)
    for sentence in _true_of_the_picture(p):
      for word in _words(sentence) & set(_ALL_COLOURS):
        assert _ALL_COLOURS[word] in painted, (p.id, sentence)
        checked += 1
  assert checked > 300


def test_contextual_sentences_name_colours_and_shapes_of_other_works(sample_paintings):
  colours, shapes = set(sample_scene.COLOURS), set(sample_scene.SHAPES)
  in_picture = not_in_picture = 0
  for p in sample_paintings:
    painted = sample_helpers.image_colours(p.image)
    for sentence in p.contextual_sentences:
      words = _words(sentence)
      if words & shapes:
        for colour in words & colours:
          if sample_scene.COLOURS[colour] in painted:
            in_picture += 1
          else:
            not_in_picture += 1
  # Both kinds occur, so a colour word alone does not say whether a sentence is visual.
  assert in_picture >= 3 and not_in_picture >= 3


def _scene_template(sentence):
  """The sentence with its scene words masked: what a text-only classifier has to go on."""
  phrases = sorted({*sample_sentences.PLACEMENTS, *sample_scene.AREAS, 'to the left of',
                    'to the right of', 'above', 'below'}, key=len, reverse=True)
  words = sorted({*sample_scene.COLOURS, *sample_scene.SHAPES, *sample_scene.SIZES}, key=len,
                 reverse=True)
  masked = re.sub(r'\b(' + '|'.join(phrases) + r')\b', 'PLACE', sentence.lower())
  return re.sub(r'\b(' + '|'.join(words) + r')\b', 'WORD', masked)


def _other_work_sentences(painting):
  return [(s, k) for s, k in zip(painting.contextual_sentences, painting.contextual_kinds)
          if k in _OTHER_WORK_KINDS]


def test_one_contextual_sentence_in_eight_describes_another_work_in_visual_words(
    large_sample_corpus):
  kinds = sample_statistics.corpus_statistics(large_sample_corpus)['sentence_kinds']['contextual']
  unmarked, marked = kinds['other_work'], kinds['other_work_marked']
  assert 0.10 <= (unmarked + marked) / sum(kinds.values()) <= 0.15
  assert 0.4 <= unmarked / (unmarked + marked) <= 0.6
  visual_templates = {_scene_template(s) for p in large_sample_corpus
                      for s, k in zip(p.visual_sentences, p.visual_kinds) if k == 'visual'}
  for p in large_sample_corpus:
    for sentence, kind in _other_work_sentences(p):
      if kind == 'other_work_marked':  # "In its pendant, <a visual sentence>"
        marker, sentence = sentence.split(', ', 1)
        assert marker.startswith(('In ', 'On ')), marker
      assert _scene_template(sentence) in visual_templates, sentence


def _named_objects(sentence):
  """(shape, colour) pairs a sentence names: "red circle", or "the circle ... in red"."""
  words = _WORD.findall(sentence.lower())
  pairs = {(b, a) for a, b in zip(words, words[1:])
           if a in sample_scene.COLOURS and b in sample_scene.SHAPES}
  if not pairs:
    (colour,) = set(words) & set(sample_scene.COLOURS)
    (shape,) = set(words) & set(sample_scene.SHAPES)
    pairs = {(shape, colour)}
  return pairs


def test_other_works_name_objects_absent_from_the_painting(large_sample_corpus):
  checked = 0
  for p in large_sample_corpus:
    other_work = _other_work_sentences(p)
    if not other_work:
      continue
    painted = {(dict(a)['shape'], dict(a)['colour'])
               for a in sample_helpers.decoded_attributes(p.features)
               if dict(a)['region'] == 'object'}
    for sentence, _ in other_work:
      named = _named_objects(sentence)
      assert named and not named & painted, (p.id, sentence, painted)
      checked += 1
  assert checked > 100
