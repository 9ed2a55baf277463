"""Checkpoints: an Orbax `CheckpointManager` wrapper with the project's policy.

One checkpoint step holds up to six items, each in its own sub-directory:

  state      the training state pytree (params, opt_state, step), saved sharded as it is
             and restored onto whatever shardings the caller asks for, so a run saved on
             8 devices resumes on 1 or 4;
  data_iter  the grain iterator's position, so a restarted run sees the same data order;
  config     the ConfigDict as JSON, and
  vocab      the vocabulary as JSON: both readable without knowing the state's structure,
             which is what the eval binary needs before it can build a model;
  loop       JSON the caller wants back on resume besides the state (the training loop:
             early stopping's count), when given;
  metrics    (written by Orbax) what the caller scored the step with, when it did:
             `{'scores': {criterion: value}, 'metrics': {...}}`.

Ranking knows no metric: the caller gives each scored step its value under every
criterion it may rank by (higher is better), and names the criterion in use
(`criterion`). Retention keeps the last `keep` steps plus the best one by that
criterion; steps without a value for it (unscored, or scored before the criterion was
chosen and not re-scorable) compete only for the "last `keep`" places, and 'best' is
never one of them.

Integrity: Orbax writes a step into `<step>.orbax-checkpoint-tmp-*` and renames it when
complete (on GCS, a `commit_success.txt` marker plays that role), so a save cut short by a
crash is never listed, hence never restored; a writing `Checkpointer` deletes such
leftovers when it opens. Once a step is committed, its writer records the checksum of
every file in it (`checkpoint_checksums`): Orbax has none, and flipped bytes in a
compressed chunk can decode silently to wrong numbers. A committed step that later
fails to read (a file removed, truncated or changed: Orbax and TensorStore raise
assorted exception types, the checksums catch the rest) is skipped when asking for
'latest': every read (`restore`, `restore_subset`,
`load_config`, `load_vocab`) then falls back to the newest step that reads, with one
warning naming both steps. Asking for a damaged step by number is a
`DamagedCheckpointError` listing the steps that do read.

Every method must be called on all processes of a multi-host run (Orbax synchronises).
"""

from collections.abc import Callable, Mapping
import json
import math
import os
from typing import Any, Literal, TypeVar

from absl import logging
import grain
import grain.checkpoint
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from artpedia_jax.checkpoints import checksums as checkpoint_checksums
from tfds_artpedia import errors

StepSpec = int | Literal['latest', 'best']
_LEGACY_SELECTION = 'best_metric'  # {'name', 'value'}: how steps were ranked before scores
_STEP_NAMES = ocp.path.step.standard_name_format()  # step directories: <dir>/<step>


_T = TypeVar('_T')
_LOOP_ITEM = 'loop'
_DAMAGED_SUFFIX = '.damaged'
_MAX_REASON_CHARS = 200


class DamagedCheckpointError(errors.UserError):
  """A checkpoint step asked for by number cannot be read."""


class DamagedFilesError(Exception):
  """A step's files differ from the checksums recorded when it was written."""


class NoCheckpointError(errors.UserError, FileNotFoundError):
  """The directory holds no checkpoint (yet)."""


def _reason(error: BaseException) -> str:
  """The innermost cause's first line: TensorStore's words, not Orbax's wrapper."""
  while error.__cause__ is not None:
    error = error.__cause__
  lines = str(error).strip().splitlines() or [type(error).__name__]
  return lines[0][:_MAX_REASON_CHARS]


def _stored_scores(stored: Mapping[str, Any]) -> dict[str, float]:
  """The scores of Orbax's metrics item; a step saved before scores existed has only the
  {'name', 'value'} record of the criterion it was ranked by."""
  if 'scores' in stored:
    return dict(stored['scores'])
  legacy = stored.get(_LEGACY_SELECTION)
  return {legacy['name']: legacy['value']} if legacy else {}


def _stored_metrics(stored: Mapping[str, Any]) -> dict[str, Any]:
  return dict(stored['metrics']) if 'scores' in stored else dict(stored)


def _json_ready(tree: Mapping[str, Any]) -> dict[str, Any]:
  """Numpy / jax scalars and arrays → plain Python, so the tree can be written as JSON."""
  return json.loads(json.dumps(tree, default=lambda x: np.asarray(x).tolist()))


def _ranking(criterion: str | None) -> Callable[[Mapping[str, Any]], float]:
  """Orbax's ranking function: the step's score under `criterion`, -inf without one."""
  def score(stored: Mapping[str, Any]) -> float:
    return _stored_scores(stored).get(criterion, -math.inf)
  return score


def _retention_policy(keep: int, criterion: str | None
                      ) -> checkpoint_managers.PreservationPolicy:
  """Keep the newest `keep` steps, and the single best step by `criterion`."""
  return checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=keep),
      checkpoint_managers.BestN(
          get_metric_fn=_ranking(criterion), n=1, keep_checkpoints_without_metrics=False),
  ])


class Checkpointer:
  """Saves and restores training checkpoints in one directory (e.g. `workdir/checkpoints`).

  Usage (trainer): `Checkpointer(dir, keep=k, criterion=name)`, `save` every step it
  wants (steps that `save_interval_steps` excludes are skipped), `restore('latest', ...)`
  and `load_loop_state` on start-up when `latest_step()` is not None, `close()` at the
  end. Usage (eval): `Checkpointer(dir, read_only=True)`, then `resolve_step(step,
  criterion)`, `load_config`, `load_vocab`, `restore_subset`.
  """

  def __init__(self, directory: str | os.PathLike, *, keep: int = 1,
               criterion: str | None = None, save_interval_steps: int = 1,
               read_only: bool = False):
    """`keep`: how many recent steps survive (the best step by `criterion`, a key of the
    scores given to `save`, survives in addition).

    `read_only` opens a directory another process may be writing: it creates nothing
    and deletes nothing (not even leftovers of an interrupted save).
    """
    if keep < 1:
      raise ValueError(f'keep must be >= 1 (recent checkpoints to keep), got {keep}.')
    self.directory = os.path.abspath(os.fspath(directory))
    if read_only and not os.path.isdir(self.directory):
      raise NoCheckpointError(self._no_checkpoint_message())
    options = ocp.CheckpointManagerOptions(
        step_name_format=_STEP_NAMES,
        save_interval_steps=save_interval_steps,
        best_fn=_ranking(criterion),
        best_mode='max',
        preservation_policy=_retention_policy(keep, criterion),
        create=not read_only,
        cleanup_tmp_directories=not read_only,
        read_only=read_only,
        enable_async_checkpointing=True,
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)
    self.criterion = criterion
    self._unrecorded: list[int] = []  # saved here, no checksum manifest yet
    self._verified: set[int] = set()
    self._damaged: dict[int, str] = {}  # step → how its files differ from the manifest
    self._read_only = read_only
    self._fallbacks_told: set[tuple[int, ...]] = set()  # one warning per fallback

  def __enter__(self) -> 'Checkpointer':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  # ---- saving ----

  def save(self, step: int, *, state: Any,
           config: ml_collections.ConfigDict,
           vocab: Mapping[str, Any],
           data_iterator: Any = None,
           scores: Mapping[str, float] | None = None,
           metrics: Mapping[str, Any] | None = None,
           loop_state: Mapping[str, Any] | None = None,
           force: bool = False) -> bool:
    """Starts saving `step` in the background; returns whether a save was started.

    `data_iterator` is a grain iterator or anything whose `get_state()` returns its
    position as JSON bytes (e.g. `prefetch.DevicePrefetcher`); either restores into a
    grain iterator.

    The arrays are copied off the devices before this returns, so the caller may update
    (or donate) `state` right away. `scores` ({criterion: value}, higher is better)
    rank a scored step, `metrics` (any JSON tree, e.g. the validation metrics) are kept
    beside them; both None on a step without evaluation. `loop_state` (JSON) comes
    back from `load_loop_state`. `force` saves even when `save_interval_steps` would
    skip the step (e.g. the last step of a run).
    """
    if metrics is not None and scores is None:
      raise ValueError(f'Step {step} has metrics but no scores: pass its scores '
                       '({criterion: value}) too, so that it can be ranked.')
    items = dict(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(json.loads(config.to_json())),
        vocab=ocp.args.JsonSave(_json_ready(vocab)),
    )
    if data_iterator is not None:
      items['data_iter'] = grain.checkpoint.CheckpointSave(data_iterator)
    if loop_state is not None:
      items[_LOOP_ITEM] = ocp.args.JsonSave(_json_ready(loop_state))
    stored = None if scores is None else _json_ready(
        {'scores': scores, 'metrics': metrics or {}})
    self.wait_until_finished()  # Orbax would wait for the previous save anyway
    started = self._manager.save(step, args=ocp.args.Composite(**items), metrics=stored,
                                 force=force)
    if started:
      self._unrecorded.append(step)
    return started

  def wait_until_finished(self) -> None:
    """Blocks until background saves are written and committed (and old steps deleted)."""
    self._manager.wait_until_finished()
    self._record_checksums()

  def close(self) -> None:
    """Waits for pending saves, then releases Orbax's threads."""
    self.wait_until_finished()
    self._manager.close()

  def _record_checksums(self) -> None:
    """Writes the manifests of the committed steps saved by this Checkpointer."""
    if jax.process_index() == 0:
      for step in self._unrecorded:
        if os.path.isdir(self._step_dir(step)):  # not yet deleted by retention
          checkpoint_checksums.write_manifest(self._step_dir(step))
    self._unrecorded.clear()

  def _step_dir(self, step: int) -> str:
    return os.fspath(ocp.path.step.build_step_path(self.directory, _STEP_NAMES, step))

  # ---- which steps exist ----

  def all_steps(self) -> list[int]:
    """Committed steps, oldest first."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def scores(self, step: int) -> dict[str, float]:
    """The scores saved with `step` ({criterion: value}; empty for an unscored step)."""
    stored = self._manager.metrics(step)
    return {} if stored is None else _stored_scores(stored)

  def metrics(self, step: int) -> dict[str, Any] | None:
    """The metrics saved with `step` (None for an unscored step)."""
    stored = self._manager.metrics(step)
    return None if stored is None else _stored_metrics(stored)

  def best_step(self, criterion: str | None = None) -> int | None:
    """The step with the highest score under `criterion` (default: the one given at
    construction), the newest among equals; None if no step has such a score."""
    criterion = criterion or self.criterion
    ranked = [(score, step) for step in self.all_steps()
              if (score := self.scores(step).get(criterion)) is not None]
    return max(ranked)[1] if ranked else None

  def resolve_step(self, step: StepSpec, criterion: str | None = None) -> int:
    """'latest' | 'best' | a step number → a step that exists, or a clear error.

    'latest' is the newest step whose files match their checksums (a fallback is
    logged once, see the module docstring); 'best' is `best_step(criterion)`.
    """
    steps = self.all_steps()
    if not steps:
      raise NoCheckpointError(self._no_checkpoint_message())
    if step == 'latest':
      return self._read('latest', lambda s: s)[0]
    if step == 'best':
      best = self.best_step(criterion)
      if best is None:
        raise errors.UsageError(
            f'No checkpoint in {self.directory} was scored by '
            f'{criterion or self.criterion!r}, so none is "best" (steps: {steps}): '
            'evaluate during training (eval_every_steps) or ask for step "latest".')
      return best
    if isinstance(step, str) and step.isdigit():
      step = int(step)
    if step not in steps:
      raise errors.UsageError(
          f'No checkpoint for step {step!r} in {self.directory}; available steps: '
          f'{steps} (or "latest", "best").')
    return step

  def _no_checkpoint_message(self) -> str:
    return (f'No checkpoint in {self.directory}: train first (python run.py '
            '--config=... --workdir=W) or pass the --workdir of a trained run.')

  # ---- restoring ----

  def restore(self, step: StepSpec, *, abstract_state: Any,
              data_iterator: grain.DatasetIterator | None = None) -> tuple[int, Any]:
    """Restores `(step, state)` onto the shardings of `abstract_state`.

    `abstract_state`: the state's pytree of `jax.ShapeDtypeStruct` with `.sharding`
    (e.g. `jax.eval_shape` of the init, with shardings of the current mesh). Given a
    `data_iterator`, its position is restored in place. With 'latest', a step that
    fails to read is skipped with a warning for the previous one.
    """
    items = dict(state=ocp.args.StandardRestore(abstract_state))
    if data_iterator is not None:
      items['data_iter'] = grain.checkpoint.CheckpointRestore(data_iterator)
    args = ocp.args.Composite(**items)
    return self._read(step, lambda s: self._manager.restore(s, args=args)['state'])

  def _read(self, step: StepSpec, read: Callable[[int], _T]) -> tuple[int, _T]:
    """`(step, read(step))`; for 'latest', of the newest step that reads.

    A step that fails to read is damaged (Orbax raises assorted types for missing,
    truncated or corrupted files, even plain `Exception`), unless every step fails the
    same way: then the caller's arguments are the likely cause and the first error is
    raised with a note.
    """
    if step != 'latest':
      step = self.resolve_step(step)
      try:
        return step, self._read_verified(step, read)
      except Exception as error:  # pylint: disable=broad-except
        if not self._is_damage(step, error):
          raise  # intact files that do not fit the caller's target (another model)
        readable = [s for s in self.all_steps() if s != step and self._reads(read, s)]
        raise DamagedCheckpointError(
            f'Checkpoint step {step} in {self.directory} cannot be read '
            f'({_reason(error)}); steps that read: {readable or "none"}. Ask for one of '
            'them, or "latest" for the newest one that reads.') from error
    candidates = self.all_steps()[::-1]
    if not candidates:
      raise NoCheckpointError(self._no_checkpoint_message())
    failures = []
    for candidate in candidates:
      try:
        value = self._read_verified(candidate, read)
      except Exception as error:  # pylint: disable=broad-except
        failures.append((candidate, error))
        continue
      if failures:
        self._tell_fallback(failures, candidate)
      return candidate, value
    first_error = failures[0][1]
    if all(isinstance(error, DamagedFilesError) for _, error in failures):
      raise DamagedCheckpointError(
          f'Every checkpoint in {self.directory} is damaged (step {candidates[0]}: '
          f'{first_error}): train again, or restore the folder from a copy.')
    first_error.add_note(
        f'No checkpoint in {self.directory} could be read (tried steps {candidates}); '
        'if every step fails the same way, the abstract state probably does not match '
        'the saved state (a different model config?).')
    raise first_error

  def _tell_fallback(self, failures: list[tuple[int, Exception]], used: int) -> None:
    """One warning per fallback (eval reads config, vocab and state of one step)."""
    told = tuple(step for step, _ in failures) + (used,)
    if told in self._fallbacks_told:
      return
    self._fallbacks_told.add(told)
    logging.warning(
        'Checkpoint step(s) %s in %s cannot be read (%s); using step %d instead%s.',
        ', '.join(str(step) for step, _ in failures), self.directory,
        _reason(failures[0][1]), used, self._set_aside([step for step, _ in failures]))

  def _set_aside(self, steps: list[int]) -> str:
    """A writer renames damaged steps `<step>.damaged`, so that training can save those
    step numbers again; returns what it did, for the warning."""
    if self._read_only:
      return ''
    if jax.process_index() == 0:
      for step in steps:
        os.replace(self._step_dir(step), self._step_dir(step) + _DAMAGED_SUFFIX)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('artpedia damaged checkpoints set aside')
    self._manager.reload()
    return f' (the damaged ones are kept as <step>{_DAMAGED_SUFFIX})'

  def _is_damage(self, step: int, error: Exception) -> bool:
    """Whether a failed read means damaged files: certainly when the checksums say so;
    presumably when the step has no checksums to tell (written by an older version)."""
    return (isinstance(error, DamagedFilesError)
            or not checkpoint_checksums.has_manifest(self._step_dir(step)))

  def _reads(self, read: Callable[[int], Any], step: int) -> bool:
    try:
      self._read_verified(step, read)
    except Exception:  # pylint: disable=broad-except
      return False
    return True

  def _read_verified(self, step: int, read: Callable[[int], _T]) -> _T:
    """`read(step)` after checking the step's files against their checksums (once)."""
    if step not in self._verified:
      problem = self._damaged.get(step) or checkpoint_checksums.problem(self._step_dir(step))
      if problem:
        self._damaged[step] = problem
        raise DamagedFilesError(problem)
      self._verified.add(step)
    return read(step)

  def restore_subset(self, step: StepSpec, abstract_subset: Mapping[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
    """Restores only the top-level state entries that `abstract_subset` names.

    For the eval binary: it needs the model's variables (`params`, and `model_state`
    where the model has any), not the optimiser state (nor its structure) or the data
    iterator. Returns `(step, {name: restored subtree})` on the given shardings; with
    'latest', `step` is the newest step that reads (see the module docstring).
    """
    target = dict(abstract_subset)

    def read(step: int) -> dict[str, Any]:
      # The manager binds the `state` item to the handler of full saves and restores;
      # a partial restore needs the PyTree handler, hence its own checkpointer.
      state_dir = os.path.join(self._step_dir(step), 'state')
      with ocp.PyTreeCheckpointer() as checkpointer:
        restored = checkpointer.restore(state_dir, args=ocp.args.PyTreeRestore(
            item=target,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True))
      return {name: restored[name] for name in target}

    return self._read(step, read)

  def state_shapes(self, step: StepSpec) -> Any:
    """The saved state's pytree with each array's shape (a tuple) as its leaf: what a
    model must look like to take these variables, read without reading the arrays."""
    state_dir = ocp.path.step.build_step_path(
        self.directory, _STEP_NAMES, self.resolve_step(step)) / 'state'
    with ocp.PyTreeCheckpointer() as checkpointer:
      metadata = checkpointer.metadata(state_dir).item_metadata
    return jax.tree.map(lambda leaf: tuple(leaf.shape), dict(metadata),
                        is_leaf=lambda leaf: hasattr(leaf, 'shape'))

  def load_config(self, step: StepSpec) -> ml_collections.ConfigDict:
    """The config saved with `step`."""
    return ml_collections.ConfigDict(self._load_json('config', step))

  def load_vocab(self, step: StepSpec) -> dict[str, Any]:
    """The vocabulary (as given to `save`) saved with `step`."""
    return self._load_json('vocab', step)

  def load_loop_state(self, step: int) -> dict[str, Any] | None:
    """The `loop_state` saved with `step`; None if it was saved without one."""
    if not (ocp.path.step.build_step_path(self.directory, _STEP_NAMES, step)
            / _LOOP_ITEM).exists():
      return None
    return self._load_json(_LOOP_ITEM, step)

  def _load_json(self, item: str, step: StepSpec) -> Any:
    args = ocp.args.Composite(**{item: ocp.args.JsonRestore()})
    return self._read(step, lambda s: self._manager.restore(s, args=args)[item])[1]
