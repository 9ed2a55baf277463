"""Errors a user can fix, which the commands report as one `error:` line, not a traceback.

Raise `UsageError` for a bad command line or configuration value (exit status 2) and
`UserError` for bad input data or a run-time condition of the user's making (exit
status 1). The message says what is wrong, where, and what to do. Library error types
derive from these (alongside the built-in type callers already catch, e.g. ValueError),
so that `tfds_artpedia.cli.run` knows them without a list to keep in sync.
"""


class UserError(Exception):
  """A problem with the user's data or environment that they can fix: exit status 1."""

  exit_code = 1


class UsageError(UserError, ValueError):
  """A bad command line or configuration value: exit status 2."""

  exit_code = 2
