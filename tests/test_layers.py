"""The package's stages import only downwards, and no module imports itself in a cycle.

docs/design.md §9.1 orders the stages; a module may import its own stage and the stages
below it, never one above. The order follows what each stage runs: evaluation restores
checkpoints; the training loop writes checkpoints and runs validation; inference uses
the evaluation's scorer and report; the commands at the package root use everything.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('artpedia_jax', 'tfds_artpedia')
# Lowest first; a module's stage is the longest prefix of its dotted name listed here.
LAYERS = (
    ('tfds_artpedia',),
    ('artpedia_jax.data', 'artpedia_jax.parallel'),
    ('artpedia_jax.model',),
    ('artpedia_jax.checkpoints',),
    ('artpedia_jax.evaluation',),
    ('artpedia_jax.train',),
    ('artpedia_jax.inference',),
    ('artpedia_jax',),  # the commands, their console policy and the config checks
)


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def project_imports(source: str, package_modules: set[str]) -> set[str]:
  """The project modules `source` imports (`from a.b import c` names a.b.c if a module)."""
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [f'{node.module}.{alias.name}' for alias in node.names]
      if not any(name in package_modules for name in names):  # names taken from a module
        names = [node.module]
    else:
      continue
    found.update(name for name in names
                 if name.split('.')[0] in PACKAGES and name in package_modules)
  return found


def layer_of(module: str) -> int:
  matches = [(len(prefix), index) for index, prefixes in enumerate(LAYERS)
             for prefix in prefixes if module == prefix or module.startswith(prefix + '.')]
  return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
  """'a imports b' for every import of a higher stage."""
  return sorted(f'{module} imports {target}' for module, targets in graph.items()
                for target in targets if layer_of(target) > layer_of(module))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """One cycle per strongly connected group of modules that import each other."""
  found, state = [], {}

  def visit(module, stack):
    state[module] = 'open'
    stack.append(module)
    for target in sorted(graph.get(module, ())):
      if state.get(target) == 'open':
        found.append(stack[stack.index(target):] + [target])
      elif target not in state:
        visit(target, stack)
    stack.pop()
    state[module] = 'done'

  for module in sorted(graph):
    if module not in state:
      visit(module, [])
  return found


def _graph() -> dict[str, set[str]]:
  paths = [path for package in PACKAGES for path in sorted((REPO / package).rglob('*.py'))
           if not path.name.endswith('_test.py')]
  modules = {module_name(path) for path in paths}
  return {module_name(path): project_imports(path.read_text(encoding='utf-8'), modules)
                              - {module_name(path)} for path in paths}


def test_every_module_belongs_to_a_stage():
  assert all(module.split('.')[0] in PACKAGES for module in _graph())
  assert {layer_of(module) for module in _graph()} == set(range(len(LAYERS)))


def test_no_stage_imports_a_higher_one():
  assert upward_imports(_graph()) == []


def test_no_import_cycles():
  assert cycles(_graph()) == []


@pytest.mark.parametrize('graph, expected', [
    ({'artpedia_jax.model.model': {'artpedia_jax.train.step'}},
     ['artpedia_jax.model.model imports artpedia_jax.train.step']),
    ({'tfds_artpedia.regions': {'artpedia_jax.data.pipeline'}},
     ['tfds_artpedia.regions imports artpedia_jax.data.pipeline']),
    ({'artpedia_jax.train.loop': {'artpedia_jax.evaluation.evaluator'}}, []),
    ({'artpedia_jax.eval': {'artpedia_jax.inference.predictor'}}, []),
])
def test_an_upward_import_is_found(graph, expected):
  assert upward_imports(graph) == expected


def test_a_cycle_is_found():
  graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
  assert cycles(graph) == [['a', 'b', 'c', 'a']]


def test_from_imports_name_the_module_they_bring():
  source = ('from artpedia_jax.model import model as model_lib\n'
            'from artpedia_jax.data.vocab import Vocabulary\n'
            'import numpy as np\n')
  modules = {'artpedia_jax.model', 'artpedia_jax.model.model', 'artpedia_jax.data.vocab'}
  assert project_imports(source, modules) == {
      'artpedia_jax.model.model', 'artpedia_jax.data.vocab'}
