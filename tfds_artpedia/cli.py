"""The entry point of every command: a user's mistake ends in one `error:` line.

  if __name__ == '__main__':
    cli.run(main)                     # absl flags (and ml_collections config flags)
    cli.run(main, parser=_parser())   # argparse (a `cli.ArgumentParser`): main(args)

A mistake the user can fix is printed as `error: <what, where, what to do>` on stderr,
and the command exits with status 2 for a bad command line or configuration, 1 for bad
data or a run-time condition. Such mistakes are: `errors.UserError` and its subclasses,
absl flag errors, a config file that fails to load, a `--config.*` override of a key
that does not exist (keeping ml_collections' "did you mean" hint) or with a bad value,
and OS errors about a path (a missing file, a read-only folder). `--verbose` adds the
traceback. Any other exception is a bug: it propagates with its traceback.
"""

import argparse
from collections.abc import Callable, Sequence
import errno
import os
import re
import sys
import traceback
from typing import Any, NoReturn

from absl import app
from absl import flags

from tfds_artpedia import errors

VERBOSE = '--verbose'
_VERBOSE_HELP = 'On an error, also print the traceback.'
_CONFIG_FLAG_TYPE = 'config object'  # ml_collections' config-file flags
_SUGGESTION = re.compile(r'Did you mean "([^"]+)" instead of "([^"]+)"\?')


def run(main: Callable[[Any], int | None], *,
        parser: 'ArgumentParser | None' = None) -> NoReturn:
  """Runs `main` and exits with its status, reporting a user's mistake in one line.

  Without `parser`, flags are absl's (`main(argv)` as for `absl.app.run`); with it,
  `main(parser.parse_args())`. Both accept `--verbose`.
  """
  verbose = VERBOSE in sys.argv[1:]
  try:
    if parser is None:
      _run_absl(main)
    else:
      sys.exit(main(parser.parse_args()))
  except Exception as error:  # pylint: disable=broad-except
    status = exit_status(error)
    if status is None:
      raise
    if verbose:
      traceback.print_exc()
    print(f'error: {describe(error)}', file=sys.stderr)
    sys.exit(status)


def exit_status(error: BaseException) -> int | None:
  """2 for a usage or config mistake, 1 for a data or run-time one, None for a bug."""
  if isinstance(error, errors.UserError):
    return error.exit_code
  if isinstance(error, (flags.Error, app.UsageError)):
    return errors.UsageError.exit_code
  if isinstance(error, OSError) and error.filename is not None:
    return errors.UserError.exit_code
  return None


def describe(error: BaseException) -> str:
  """The error's message on one line (a list of problems joined with '; ')."""
  if isinstance(error, OSError) and not isinstance(error, errors.UserError):
    reason = error.strerror or str(error)
    path = error.filename if error.filename2 is None else (
        f'{error.filename} -> {error.filename2}')
    return f'{path}: {reason}; {_OS_ADVICE.get(error.errno, _DEFAULT_OS_ADVICE)}'
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  head, rest = lines[0], lines[1:]
  return ' '.join([head, '; '.join(rest)]) if rest else head


_DEFAULT_OS_ADVICE = 'check the path and its permissions.'
_OS_ADVICE = {
    errno.ENOENT: 'check the path.',
    errno.EROFS: 'the file system is read-only: pass a path on a writable one.',
    errno.EACCES: 'pass a path you may write to, or fix its permissions.',
    errno.EPERM: 'pass a path you may write to, or fix its permissions.',
    errno.ENOSPC: 'the disk is full: free space or pass a path on another disk.',
    errno.ENOTDIR: 'a file stands where a folder is needed: pass a folder path.',
    errno.EEXIST: 'a file stands where a folder is needed: pass a folder path.',
}


class ArgumentParser(argparse.ArgumentParser):
  """An argparse parser whose mistakes are `errors.UsageError`s, reported by `run`.

  It (and each of its sub-command parsers) accepts `--verbose`.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.add_argument(VERBOSE, action='store_true', help=_VERBOSE_HELP)

  def error(self, message: str) -> NoReturn:
    raise errors.UsageError(f'{self.prog}: {message} (see --help).')


def writable_folder(path: str, flag: str) -> str:
  """Creates folder `path` if needed and checks it is writable; returns it.

  Catches a workdir or output folder that is a file, or on a read-only file system,
  before any work starts. Paths with a scheme (gs://...) are left to their library.
  """
  if '://' in path:
    return path
  if os.path.exists(path) and not os.path.isdir(path):
    raise errors.UsageError(f'{flag}={path} is a file, not a folder: pass a folder path '
                            '(it is created if missing).')
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f'.write-probe-{os.getpid()}')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    raise errors.UsageError(
        f'{flag}={path} cannot be written ({e.strerror}): pass a folder on a writable '
        'file system.') from e
  return path


def _run_absl(main: Callable[[list[str]], int | None]) -> NoReturn:
  if 'verbose' not in flags.FLAGS:
    flags.DEFINE_bool('verbose', False, _VERBOSE_HELP)

  def main_with_usage_errors(argv: list[str]) -> int | None:
    try:
      return main(argv)
    except app.UsageError as e:  # absl would print the whole help text
      raise errors.UsageError(f'{e} (see --help).') from e

  app.run(main_with_usage_errors, flags_parser=_parse_absl_flags)
  raise AssertionError('absl.app.run returned')  # it always exits


def _parse_absl_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing, with config-file and override mistakes as UsageErrors."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    raise errors.UsageError(f'{e} (see --help).') from e
  except Exception as e:  # pylint: disable=broad-except
    # ml_collections applies `--config.*` overrides while parsing.
    raise errors.UsageError(_config_flag_message(e, argv)) from e
  for name in _config_flag_names():
    try:
      hasattr(flags.FLAGS[name].value, 'lock')  # a config that failed to load raises
    except OSError as e:
      raise errors.UsageError(_config_flag_message(e, argv)) from e
  return rest


def _config_flag_names() -> list[str]:
  """The config-file flags (ml_collections) given on the command line."""
  return [name for name in flags.FLAGS if flags.FLAGS[name].present
          and flags.FLAGS[name].parser.flag_type() == _CONFIG_FLAG_TYPE]


def _config_flag_message(error: Exception, argv: Sequence[str]) -> str:
  """Names the config file or the `--config.*` override that failed, and the fix."""
  for name in _config_flag_names() or ['config']:
    for arg in argv[1:]:
      if arg.startswith(f'--{name}='):
        path = arg.split('=', 1)[1].split(':', 1)[0]
        if not os.path.isfile(path):
          return (f'--{name}={path}: no such config file; pass a file such as '
                  'configs/align.py.')
  text = str(error).replace('\\n', '\n')
  suggestion = _SUGGESTION.search(text)
  if suggestion:
    wrong = suggestion.group(2)
    override = next((arg.split('=', 1)[0] for arg in argv[1:]
                     if re.match(rf'--\w+\.(.*\.)?{re.escape(wrong)}(=|\.|$)', arg)),
                    wrong)
    return (f'{override}: no such config key {wrong!r}; did you mean '
            f'{suggestion.group(1)!r}? (every key is in configs/base.py)')
  if isinstance(error, (KeyError, AttributeError)):
    return (f'unknown config key {text.splitlines()[0]} in the command line; every key '
            'is in configs/base.py.')
  return f'bad config: {describe(error)}'
