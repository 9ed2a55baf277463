"""Checkpoints: an Orbax `CheckpointManager` wrapper with the project's policy.

One checkpoint step holds five items, each in its own sub-directory:

  state      the training state pytree (params, opt_state, step), saved sharded as it is
             and restored onto whatever shardings the caller asks for, so a run saved on
             8 devices resumes on 1 or 4;
  data_iter  the grain iterator's position, so a restarted run sees the same data order;
  config     the ConfigDict as JSON, and
  vocab      the vocabulary as JSON: both readable without knowing the state's structure,
             which is what the eval binary needs before it can build a model;
  metrics    (written by Orbax) the validation metrics of that step, when it had any.

Retention keeps the last `keep` steps plus the one with the best validation `rsum`;
steps saved without metrics compete only for the "last `keep`" places.

Integrity: Orbax writes a step into `<step>.orbax-checkpoint-tmp-*` and renames it when
complete (on GCS, a `commit_success.txt` marker plays that role), so a save cut short by a
crash is never listed, hence never restored; a writing `Checkpointer` deletes such
leftovers when it opens. A committed step that later fails to read (a truncated or
removed file) is skipped by `restore('latest')`, which falls back to the previous step.

Every method must be called on all processes of a multi-host run (Orbax synchronises).
"""

from collections.abc import Mapping
import json
import os
from typing import Any, Literal

from absl import logging
import grain
import grain.checkpoint
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

StepSpec = int | Literal['latest', 'best']
BEST_METRIC = 'rsum'  # docs/design.md §6.13; higher is better
_STEP_NAMES = ocp.path.step.standard_name_format()  # step directories: <dir>/<step>


def _best_metric(metrics: Mapping[str, Any]) -> float:
  return metrics[BEST_METRIC]


def _json_ready(tree: Mapping[str, Any]) -> dict[str, Any]:
  """Numpy / jax scalars and arrays → plain Python, so the tree can be written as JSON."""
  return json.loads(json.dumps(tree, default=lambda x: np.asarray(x).tolist()))


def _retention_policy(keep: int) -> checkpoint_managers.PreservationPolicy:
  """Keep the newest `keep` steps, and the single step with the highest `rsum`."""
  return checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=keep),
      checkpoint_managers.BestN(
          get_metric_fn=_best_metric, n=1, keep_checkpoints_without_metrics=False),
  ])


class Checkpointer:
  """Saves and restores training checkpoints in one directory (e.g. `workdir/checkpoints`).

  Usage (trainer): `save` every step it wants (steps that `save_interval_steps` excludes
  are skipped), `restore('latest', ...)` on start-up when `latest_step()` is not None,
  `close()` at the end. Usage (eval): `Checkpointer(dir, read_only=True)`, then
  `resolve_step`, `load_config`, `load_vocab`, `restore_subset`.
  """

  def __init__(self, directory: str | os.PathLike, *, keep: int = 1,
               save_interval_steps: int = 1, read_only: bool = False):
    """`keep`: how many recent steps survive (the best step survives in addition).

    `read_only` opens a directory another process may be writing: it creates nothing
    and deletes nothing (not even leftovers of an interrupted save).
    """
    if keep < 1:
      raise ValueError(f'keep must be >= 1 (recent checkpoints to keep), got {keep}.')
    self.directory = os.path.abspath(os.fspath(directory))
    if read_only and not os.path.isdir(self.directory):
      raise FileNotFoundError(self._no_checkpoint_message())
    options = ocp.CheckpointManagerOptions(
        step_name_format=_STEP_NAMES,
        save_interval_steps=save_interval_steps,
        best_fn=_best_metric,
        best_mode='max',
        preservation_policy=_retention_policy(keep),
        create=not read_only,
        cleanup_tmp_directories=not read_only,
        read_only=read_only,
        enable_async_checkpointing=True,
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def __enter__(self) -> 'Checkpointer':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  # ---- saving ----

  def save(self, step: int, *, state: Any,
           config: ml_collections.ConfigDict,
           vocab: Mapping[str, Any],
           data_iterator: grain.DatasetIterator | None = None,
           metrics: Mapping[str, Any] | None = None,
           force: bool = False) -> bool:
    """Starts saving `step` in the background; returns whether a save was started.

    The arrays are copied off the devices before this returns, so the caller may update
    (or donate) `state` right away. `metrics` are the validation metrics of this step
    (they must contain `rsum`), or None on a step without evaluation. `force` saves even
    when `save_interval_steps` would skip the step (e.g. the last step of a run).
    """
    if metrics is not None and BEST_METRIC not in metrics:
      raise ValueError(
          f'metrics for step {step} have no {BEST_METRIC!r} (keys: {sorted(metrics)}): '
          'pass the evaluator\'s metrics dict, or None on a step without evaluation.')
    items = dict(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(json.loads(config.to_json())),
        vocab=ocp.args.JsonSave(_json_ready(vocab)),
    )
    if data_iterator is not None:
      items['data_iter'] = grain.checkpoint.CheckpointSave(data_iterator)
    return self._manager.save(
        step, args=ocp.args.Composite(**items),
        metrics=None if metrics is None else _json_ready(metrics), force=force)

  def wait_until_finished(self) -> None:
    """Blocks until background saves are written and committed (and old steps deleted)."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves, then releases Orbax's threads."""
    self._manager.close()

  # ---- which steps exist ----

  def all_steps(self) -> list[int]:
    """Committed steps, oldest first."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """The step with the highest validation `rsum`; None if no step has metrics."""
    return self._manager.best_step()

  def resolve_step(self, step: StepSpec) -> int:
    """'latest' | 'best' | a step number → a step that exists, or a clear error."""
    steps = self.all_steps()
    if not steps:
      raise FileNotFoundError(self._no_checkpoint_message())
    if step == 'latest':
      return steps[-1]
    if step == 'best':
      best = self.best_step()
      if best is None:
        raise ValueError(
            f'No checkpoint in {self.directory} has validation metrics, so none is '
            f'"best" (steps: {steps}): evaluate during training (eval_every_steps) or '
            'ask for step "latest".')
      return best
    if isinstance(step, str) and step.isdigit():
      step = int(step)
    if step not in steps:
      raise ValueError(
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
    if step != 'latest':
      step = self.resolve_step(step)
      return step, self._manager.restore(step, args=args)['state']
    return self._restore_newest_readable(args)

  def _restore_newest_readable(self, args: ocp.args.Composite) -> tuple[int, Any]:
    """Newest step first; a step that fails to read is logged and the previous tried."""
    candidates = self.all_steps()[::-1]
    if not candidates:
      raise FileNotFoundError(self._no_checkpoint_message())
    first_error = None
    for step in candidates:
      try:
        return step, self._manager.restore(step, args=args)['state']
      except (OSError, ValueError) as error:  # what tensorstore / JSON raise on bad files
        logging.warning('Checkpoint step %d in %s could not be read (%s); trying the '
                        'previous step.', step, self.directory, error)
        first_error = first_error or error
    first_error.add_note(
        f'No checkpoint in {self.directory} could be restored (tried steps '
        f'{candidates}); if every step fails the same way, abstract_state probably '
        'does not match the saved state (a different model config?).')
    raise first_error

  def restore_subset(self, step: StepSpec, abstract_subset: Mapping[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
    """Restores only the top-level state entries that `abstract_subset` names.

    For the eval binary: it needs the model's variables (`params`, and `model_state`
    where the model has any), not the optimiser state (nor its structure) or the data
    iterator. Returns `(step, {name: restored subtree})` on the given shardings.
    """
    step = self.resolve_step(step)
    target = dict(abstract_subset)
    # The manager binds the `state` item to the handler of full saves and restores;
    # a partial restore needs the PyTree handler, hence its own checkpointer.
    state_dir = ocp.path.step.build_step_path(self.directory, _STEP_NAMES, step) / 'state'
    with ocp.PyTreeCheckpointer() as checkpointer:
      restored = checkpointer.restore(state_dir, args=ocp.args.PyTreeRestore(
          item=target,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target),
          partial_restore=True))
    return step, {name: restored[name] for name in target}

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

  def _load_json(self, item: str, step: StepSpec) -> Any:
    step = self.resolve_step(step)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()}))
    return restored[item]
