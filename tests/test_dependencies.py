"""pyproject.toml declares exactly what the packages import, and the extras scripts use."""

import ast
import importlib.metadata
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

REPO = pathlib.Path(__file__).resolve().parents[1]
SOURCES = [*sorted((REPO / 'artpedia_jax').rglob('*.py')),
           *sorted((REPO / 'tfds_artpedia').rglob('*.py')), REPO / 'run.py']
LOCAL = {'artpedia_jax', 'tfds_artpedia', 'configs'}
# Declared without being imported here: what our dependencies need at run time but do
# not declare themselves (see the comment in pyproject.toml).
RUNTIME_ONLY = {'importlib-resources', 'array-record'}


def _project() -> dict:
  return tomllib.loads((REPO / 'pyproject.toml').read_text())['project']


def _name(requirement: str) -> str:
  return re.split(r'[\s\[<>=!~;]', requirement, maxsplit=1)[0].lower().replace('_', '-')


def _imports(module_level: bool) -> dict[str, set[str]]:
  """{top-level module: files}, of imports at module level or inside functions."""
  found: dict[str, set[str]] = {}
  for path in SOURCES:
    if path.name.endswith('_test.py'):
      continue
    tree = ast.parse(path.read_text(encoding='utf-8'))
    nested = {id(node) for function in ast.walk(tree)
              if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(function)}
    for node in ast.walk(tree):
      if (id(node) in nested) == module_level:
        continue
      if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names = [node.module]
      else:
        continue
      for name in names:
        top = name.split('.')[0]
        if top not in sys.stdlib_module_names and top not in LOCAL:
          found.setdefault(top, set()).add(str(path.relative_to(REPO)))
  return found


def _distribution(module: str) -> str:
  distributions = importlib.metadata.packages_distributions().get(module)
  assert distributions, f'{module} is imported but no installed distribution provides it'
  return distributions[0].lower().replace('_', '-')


def test_core_dependencies_are_exactly_the_module_level_imports():
  imported = {_distribution(m): files for m, files in _imports(module_level=True).items()}
  declared = {_name(r) for r in _project()['dependencies']}
  undeclared = {d: sorted(files) for d, files in imported.items() if d not in declared}
  assert not undeclared, f'imported but not declared: {undeclared}'
  unused = declared - set(imported) - RUNTIME_ONLY
  assert not unused, f'declared but never imported: {sorted(unused)}'


def test_imports_inside_functions_are_declared_in_core_or_an_extra():
  declared = {_name(r) for r in _project()['dependencies']}
  for requirements in _project()['optional-dependencies'].values():
    declared |= {_name(r) for r in requirements}
  for module, files in _imports(module_level=False).items():
    distribution = (importlib.metadata.packages_distributions().get(module, [module])[0]
                    .lower().replace('_', '-'))
    assert distribution in declared, (module, sorted(files))


def test_accelerator_extras_map_to_jax_extras():
  extras = _project()['optional-dependencies']
  assert [_name(r) for r in extras['cuda12']] == ['jax']
  assert extras['cuda12'][0].startswith('jax[cuda12]')
  assert extras['tpu'][0].startswith('jax[tpu]')


def test_setup_script_refuses_an_unknown_extra(tmp_path):
  # A copy, so that a broken check could not reinstall the project's environment.
  (tmp_path / 'scripts').mkdir()
  shutil.copy(REPO / 'scripts' / 'setup.sh', tmp_path / 'scripts')
  shutil.copy(REPO / 'pyproject.toml', tmp_path)
  result = subprocess.run(['bash', 'scripts/setup.sh', 'cuda12,gpu'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 2
  assert result.stderr.strip() == (
      "error: unknown extra 'gpu'; the extras are: test, cuda12, tpu, torch, tfds-cli")
