"""How hard XLA optimises the tests' compiled code.

Most tests compile far longer than they run, so the test processes compile at LLVM's
lowest optimisation level, which halves compile time (a 20-step run's compilation: 21 s
to 12 s on 2 cores). Runs that compute more than they compile (a real MiniLM, a ResNet
on pixels) are slower that way, so they run in a child process at XLA's default level.
XLA reads its flags once per process, hence a child rather than a switch.
"""

import os

# No imports of jax here: conftest.py sets the flags before jax is first imported.
FAST_COMPILE = '--xla_backend_optimization_level=0'


def with_fast_compile(xla_flags: str) -> str:
  return ' '.join(filter(None, [xla_flags, FAST_COMPILE]))


def default_level_env() -> dict[str, str]:
  """This process's environment, minus the fast-compile flag: for a child process."""
  flags = [flag for flag in os.environ.get('XLA_FLAGS', '').split() if flag != FAST_COMPILE]
  return dict(os.environ, XLA_FLAGS=' '.join(flags))
