"""Every reference to docs/design.md in the repository points at a section that exists.

Code, tests, benchmarks and READMEs cite the design as `docs/design.md §N` or `§N.M`
(several in a row, e.g. `docs/design.md §6.1, §6.2`), or as `docs/design.md#anchor`
(a GitHub heading anchor). Inside the design itself, bare `§N` and `](#anchor)` links are
checked too. A reference to a section that was renumbered or removed fails here.
"""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DESIGN = REPO / 'docs' / 'design.md'
_SKIPPED_DIRS = {'.git', '.venv', 'node_modules', '__pycache__', 'workdirs', 'build',
                 'dist'}

_HEADING = re.compile(r'^(#{1,6})\s+(.+?)\s*$', re.MULTILINE)
_SECTION_NUMBER = re.compile(r'^(\d+(?:\.\d+)*)\.?\s')
_SECTION = r'§\s?(\d+(?:\.\d+)*)'
# `docs/design.md` followed by one or more section signs: "§6.1", "§6.1–§6.3", "§5, §7".
_CITATION = re.compile(r'docs/design\.md((?:\s?(?:,|–|-|and|or)?\s?' + _SECTION + r')+)')
_ANCHOR_CITATION = re.compile(r'docs/design\.md#([\w-]+)')
_IN_DOC_LINK = re.compile(r'\]\(#([\w-]+)\)')
# Citations of design documents that do not ship with the repository.
_STALE = (re.compile(r'\bDESIGN §'), re.compile(r'\bARCHITECTURE\.md\b'))


def heading_slug(title: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
  text = re.sub(r'[^\w\- ]', '', title.strip().lower())
  return text.replace(' ', '-')


def sections_and_anchors(design_text: str) -> tuple[set[str], set[str]]:
  """The section numbers ('6', '6.13') and heading anchors that the design defines."""
  sections, anchors = set(), set()
  for _, title in _HEADING.findall(design_text):
    anchors.add(heading_slug(title))
    number = _SECTION_NUMBER.match(title)
    if number:
      sections.add(number.group(1))
  return sections, anchors


def cited_sections(text: str) -> list[str]:
  """Section numbers cited as `docs/design.md §N` (all of a run like `§6.1, §6.2`)."""
  return [number for run in _CITATION.findall(text)
          for number in re.findall(_SECTION, run[0])]


def dangling(text: str, design_text: str, *, in_design: bool = False) -> list[str]:
  """The references of `text` that the design does not define."""
  sections, anchors = sections_and_anchors(design_text)
  cited = cited_sections(text)
  links = _ANCHOR_CITATION.findall(text)
  if in_design:
    cited += re.findall(_SECTION, text)
    links += _IN_DOC_LINK.findall(text)
  return ([f'§{n}' for n in cited if n not in sections]
          + [f'#{a}' for a in links if a not in anchors])


def repository_files() -> list[pathlib.Path]:
  """The repository's .py and .md files, without virtual environments and outputs."""
  found = []
  for path in REPO.rglob('*'):
    relative = path.relative_to(REPO)
    if any(part in _SKIPPED_DIRS or part.startswith('.') for part in relative.parts[:-1]):
      continue
    if path.suffix in ('.py', '.md') and path.is_file():
      found.append(path)
  return sorted(found)


def test_design_defines_numbered_sections():
  sections, _ = sections_and_anchors(DESIGN.read_text(encoding='utf-8'))
  assert {str(n) for n in range(1, 10)} <= sections


def test_every_design_reference_resolves():
  design_text = DESIGN.read_text(encoding='utf-8')
  problems = {}
  for path in repository_files():
    if path == pathlib.Path(__file__).resolve():
      continue  # its examples cite a toy design on purpose
    found = dangling(path.read_text(encoding='utf-8'), design_text,
                     in_design=path == DESIGN)
    if found:
      problems[str(path.relative_to(REPO))] = found
  assert not problems, f'references to sections docs/design.md lacks: {problems}'


def test_repository_cites_the_design():
  """The check above must be checking something: the code does cite sections."""
  cited = [n for path in repository_files() if path != DESIGN
           for n in cited_sections(path.read_text(encoding='utf-8'))]
  assert len(cited) >= 10


def test_no_citation_of_design_files_outside_the_repository():
  stale = {}
  for path in repository_files():
    if path == pathlib.Path(__file__).resolve():
      continue
    text = path.read_text(encoding='utf-8')
    hits = [pattern.pattern for pattern in _STALE if pattern.search(text)]
    if hits:
      stale[str(path.relative_to(REPO))] = hits
  assert not stale, f'cite docs/design.md §N instead: {stale}'


_TOY_DESIGN = """# Title
## 1. Data
### 1.2 Splits
## 2. Model: `align`
"""


@pytest.mark.parametrize('text, expected', [
    ('see docs/design.md §1.2 and docs/design.md §2', []),
    ('see docs/design.md §1.3', ['§1.3']),
    ('see docs/design.md §3', ['§3']),
    ('docs/design.md §1.2, §4', ['§4']),
    ('docs/design.md §1–§5', ['§5']),
    ('docs/design.md#2-model-align and docs/design.md#1-data', []),
    ('docs/design.md#2-model', ['#2-model']),
    ('plain §9 outside the design is prose, not a citation', []),
])
def test_dangling_references_are_found(text, expected):
  assert dangling(text, _TOY_DESIGN) == expected


def test_in_design_references_are_checked():
  assert dangling('as in §1.2 and [there](#1-data); see §7 and [x](#gone)',
                  _TOY_DESIGN, in_design=True) == ['§7', '#gone']
