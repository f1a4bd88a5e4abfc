"""Checkpoints of a training run, and the :class:`ModelCheckpoint` callback.

A checkpoint holds everything needed to resume, in nnjax's one layout
(:mod:`nnjax.io.layout`): ``state/`` is the model's whole ``nnx.state`` as a pure dict
(parameters, batch statistics, dropout RNG keys as key data) written with Orbax
exactly as Flax's checkpointing guide writes it, ``opt_state/`` the optimizer state,
and ``nnjax.json`` the epoch, the seed (which fixes every epoch's data order), the
update count, the history so far and the model's constructor arguments, so
``nnjax.load(directory)`` rebuilds the model.

Step folder ``N`` holds the state after ``N`` epochs, as the console counts them; the
``epoch`` arguments and results here are fit's 0-based epoch index (``N - 1``), as in
``History.epoch`` and the callbacks. Saves are atomic: a step folder is written under
a temporary name and renamed when complete, so a crash mid-save leaves the previous
checkpoints intact and loadable. Folders of nnjax's first layout still load.

With several JAX processes, saving is collective: every process runs the callback, and
each writes the shards of the (possibly sharded) state that it holds, with no gather
on one host; a checkpoint restores onto any process or device count.

Example:
  >>> cb = ModelCheckpoint("/tmp/run", monitor="val_loss", save_best_only=True)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from nnjax._checks import check_static_bool
from nnjax.io import config, layout, restore, steps, trees
from nnjax.io import model as io_model
from nnjax.io.errors import CheckpointError, cannot_write
from nnjax.train.callbacks import Callback, Logs, Monitor
from nnjax.train.history import saved_dict
from nnjax.train.monitor import check_mode


def _model_record(model: Any) -> dict[str, Any]:
    try:
        return config.describe(model)
    except TypeError:  # not an nnjax.nn model: load_checkpoint/load_state still work
        return {}


def save_checkpoint(
    directory: str | os.PathLike,
    epoch: int,
    state: Any,
    meta: dict[str, Any],
    *,
    model: nnx.Module | None = None,
    max_to_keep: int | None = None,
) -> Path:
    """Saves ``state`` (a ``TrainState``) and the JSON ``meta`` as step folder ``epoch + 1``.

    Args:
      directory: the checkpoint folder (one step folder per saved epoch).
      epoch: fit's 0-based epoch index.
      state: ``TrainState(params, opt_state, rest)``.
      meta: JSON-able metadata (``seed``, ``global_step``, ``history``, ...).
      model: the model, to record its constructor arguments (``nnjax.load`` then
        rebuilds it); optional.
      max_to_keep: delete the oldest step folders beyond this many (``None``: keep all).

    Returns:
      The step folder written.

    Example:
      >>> import tempfile
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> from nnjax.train.state import TrainState
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> _, params, rest = nnx.split(model, nnx.Param, ...)
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     step = save_checkpoint(tmp, 0, TrainState(params, (), rest), {"seed": 0}, model=model)
      ...     step.name, latest_epoch(tmp)
      ('1', 0)
    """
    items = {
        "state": trees.to_nested(state.params, state.rest),
        "opt_state": trees.to_nested(state.opt_state),
    }
    meta = {**meta, "kind": "train", "optimizer_state": restore.state_types(state.opt_state)}
    if model is not None:
        meta.update(_model_record(model))
    return steps.write_epoch(directory, epoch, items, meta, max_to_keep=max_to_keep)


def latest_epoch(directory: str | os.PathLike) -> int | None:
    """The newest checkpoint's 0-based epoch in ``directory``, or ``None`` if there is none.

    Example:
      >>> latest_epoch("/nonexistent/run") is None
      True
    """
    found = steps.epochs(directory)
    return found[-1][0] if found else None


def restore_checkpoint(
    directory: str | os.PathLike,
    template: dict[str, Any],
    *,
    epoch: int | None = None,
    fallback: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restores the parts named in ``template`` (a subset of params/opt_state/rest).

    Args:
      directory: a folder written by :class:`ModelCheckpoint` (or one step folder).
      template: ``{"params": ..., "rest": ...}``: pytrees with the expected structure.
      epoch: which checkpoint (0-based epoch); the newest by default.
      fallback: if the newest is damaged, restore the newest intact one and warn which.

    Leaves of ``template`` that are ``jax.ShapeDtypeStruct``s with a sharding, or arrays
    sharded across processes, are restored laid out so (each process reads only its
    shards); the others to the host.

    Returns:
      ``(parts, meta)``: the restored pytrees (NumPy leaves or ``jax.Array``s as just
      said, PRNG keys typed) and the JSON.

    Raises:
      FileNotFoundError: no checkpoint (for ``epoch``) in ``directory``.
      nnjax.io.CheckpointError: a damaged file, a future format, or a part that does
        not fit (the first mismatching path and both shapes; another optimizer).

    Example:
      >>> import tempfile
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> from nnjax.train.state import TrainState
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> _, params, rest = nnx.split(model, nnx.Param, ...)
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     _ = save_checkpoint(tmp, 0, TrainState(params, (), rest), {"seed": 7})
      ...     parts, meta = restore_checkpoint(tmp, {"params": params})
      >>> meta["seed"], meta["epoch"], sorted(parts)
      (7, 0, ['params'])
    """
    return io_model.open_checkpoint(
        directory,
        lambda folder: restore.read_parts(folder, template),
        epoch=epoch,
        fallback=fallback,
    )


def load_checkpoint(
    directory: str | os.PathLike,
    model: nnx.Module,
    *,
    epoch: int | None = None,
    fallback: bool = False,
) -> dict[str, Any]:
    """Loads the parameters and model state of a checkpoint into ``model``.

    Args:
      directory: a folder written by :class:`ModelCheckpoint` (or one step folder).
      model: a model of the same architecture; updated in place, and left unchanged
        when the checkpoint does not fit or is damaged.
      epoch: which checkpoint (0-based epoch); the newest by default.
      fallback: if the newest is damaged, load the newest intact one and warn which.

    Returns:
      The checkpoint's metadata (``epoch``, ``seed``, ``history``, ...).

    Example:
      >>> import tempfile
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> from nnjax.train.state import TrainState
      >>> trained = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> _, params, rest = nnx.split(trained, nnx.Param, ...)
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1))  # same architecture, other weights
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     _ = save_checkpoint(tmp, 2, TrainState(params, (), rest), {"seed": 0})
      ...     meta = load_checkpoint(tmp, model)
      >>> meta["epoch"]
      2
      >>> bool((model.layers[0].kernel.get_value() == trained.layers[0].kernel.get_value()).all())
      True
    """
    return io_model.open_checkpoint(
        directory,
        lambda folder: io_model.read_into(model, folder),
        fallback=fallback,
        epoch=epoch,
    )


class ModelCheckpoint(Callback):
    """Saves the training state after each epoch (atomically), in nnjax's one layout.

    Args:
      directory: the checkpoint folder (step folder ``N`` after epoch ``N``, 1-based).
      monitor: the logged metric deciding "best" (``"val_loss"``); needed for
        ``save_best_only``; ``fit`` checks before training that it logs this name.
      mode: ``"min"``, ``"max"`` or ``"auto"`` for ``monitor`` (the rule:
        :class:`~nnjax.train.monitor.Monitor`).
      save_best_only: save only when ``monitor`` improves on the best so far (any
        improvement: no ``min_delta``), so the newest checkpoint is the best one;
        otherwise every epoch.
      max_to_keep: how many checkpoints to keep (oldest deleted first), ``>= 1``;
        ``None`` keeps all, and the default is 1 with ``save_best_only``, else 3.
      overwrite: a run that does not resume refuses (before training) a folder that
        already holds checkpoints, so an old run is never deleted by accident; with
        ``overwrite=True`` the old step folders are removed when the new run writes its
        first checkpoint (a run that fails before that loses nothing). A run resumed
        with ``fit(resume_from=other)`` from *another* folder is a fresh run for this
        one: a ``directory`` holding checkpoints is refused the same way (they belong
        to another run: pruning them, or replacing its step ``N`` with this run's,
        would mix two runs), unless ``overwrite=True``. Only folders that are
        checkpoints count (an all-digit name *and* ``nnjax.json`` inside, or an older
        layout): anything else in ``directory`` is never deleted, and a step folder
        name taken by a folder of other files is refused when that step is saved.

    The saved history holds the epoch's logs as the callbacks listed before this one
    left them (as Keras: each callback sees what the ones before it wrote); a value a
    later callback writes reaches ``fit``'s ``History`` but not this epoch's checkpoint.

    Raises:
      ValueError: ``save_best_only`` without ``monitor``, an unknown ``mode``,
        ``max_to_keep < 1``, or a Keras filepath template (``"ckpt-{epoch:02d}"``);
        from ``fit``, before training, a ``monitor`` that it does not log (the message
        lists the names it logs).
      FileExistsError: at the start of a run that does not resume (or resumes from
        another folder), when ``directory`` holds checkpoints and ``overwrite`` is
        false; when ``directory`` is a file.
      OSError: a save failed (full disk, no permission): one line naming the step folder
        and the cause; the previous checkpoints stay intact, the model keeps the
        trained state, and a later save can succeed.

    Resume a run with ``fit(..., resume_from=directory)`` (the best ``monitor`` value so
    far is restored from the newest checkpoint); rebuild the trained model anywhere
    with ``nnjax.load(directory)``. Before a run writes, what killed saves left in
    ``directory`` is tidied: a step folder hidden by a kill during its overwrite is
    put back, and hidden half-written temporaries are removed. ``~`` is expanded.

    Example:
      >>> cb = ModelCheckpoint("/tmp/run")
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        monitor: str | None = None,
        mode: str = "auto",
        save_best_only: bool = False,
        max_to_keep: int | None = -1,
        overwrite: bool = False,
    ) -> None:
        owner = "ModelCheckpoint"
        layout.check_path(owner, "directory", directory)
        layout.check_not_template(owner, directory)
        save_best_only = check_static_bool(owner, "save_best_only", save_best_only)
        overwrite = check_static_bool(owner, "overwrite", overwrite)
        if save_best_only and monitor is None:
            raise ValueError("save_best_only=True needs a metric to `monitor`")
        check_mode("ModelCheckpoint", mode)
        if max_to_keep is not None and max_to_keep != -1:
            if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1:
                raise ValueError(
                    f"ModelCheckpoint: `max_to_keep` must be an int >= 1 or None (keep all), "
                    f"got {max_to_keep!r}"
                )
        self.directory = os.fspath(layout.user_path(directory))
        self.monitor = None if monitor is None else Monitor(monitor, mode)
        self.save_best_only = save_best_only
        self.max_to_keep = (1 if save_best_only else 3) if max_to_keep == -1 else max_to_keep
        self.overwrite = overwrite
        self._stale: list[Path] = []  # an old run's step folders, removed at the first save
        self._fit: dict[str, Any] | None = None  # fit's arguments (bind_fit), if fit told

    def output_paths(self) -> tuple[str, ...]:
        """``(directory,)``: no other callback of the run may write this folder."""
        return (self.directory,)

    def bind_fit(self, *, resume_from: str | os.PathLike | None, learning_rate: Any) -> None:
        """Called by ``fit`` before training: where it resumes from and its learning rate.

        ``resume_from`` tells whether this folder continues the resumed run (the same
        folder) or starts fresh (another one); ``learning_rate`` (fit's argument, as
        injected) is recorded in every checkpoint, so a resumed ``fit`` can tell a
        changed argument from an unchanged one.
        """
        source = None if resume_from is None else os.fspath(layout.user_path(resume_from))
        self._fit = {"resume_from": source, "learning_rate": learning_rate}

    def _resumes_here(self) -> tuple[bool, str | None]:
        """``(this folder continues the resumed run, the folder it resumed from)``."""
        if not self.loop.history.epoch:
            return False, None
        if self._fit is None:  # not told by fit: every resume is this folder's
            return True, self.directory
        source = self._fit["resume_from"]
        if source is None:
            return False, None
        same = os.path.realpath(source) == os.path.realpath(self.directory)
        return same, source

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Refuses another run's folder (unless ``overwrite``); restores the best value.

        A folder that cannot be created fails here, before anything trains.
        """
        if Path(self.directory).is_file():
            raise FileExistsError(
                f"ModelCheckpoint: {self.directory} is a file, not a folder; pass a folder "
                "for the checkpoints"
            )
        found = steps.epochs(self.directory)
        foreign = [path for _, path in found if restore.is_manager_step(path)]
        if foreign:  # never nnjax's to replace, even with overwrite=True
            raise FileExistsError(
                f"ModelCheckpoint: {restore.manager_error(Path(self.directory), foreign)}; "
                "choose another folder for this run's checkpoints"
            )
        resumed, source = self._resumes_here()
        self._stale = [] if resumed else [path for _, path in found]
        if found and not resumed and not self.overwrite:
            whose = "of another run"
            if source is not None:
                whose = f"of another run (this one resumes from {source})"
            raise FileExistsError(
                f"ModelCheckpoint: {self.directory} already holds checkpoints (epochs "
                f"{found[0][0] + 1}..{found[-1][0] + 1}) {whose}; continue it with "
                "fit(..., resume_from=directory), choose another folder, or pass "
                "overwrite=True to replace it"
            )
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise cannot_write(Path(self.directory), err) from err
        if jax.process_index() == 0:
            steps.tidy_steps(self.directory)  # what killed saves left behind
        if self.monitor is None:
            return
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        resumed_steps = steps.epochs(source) if source is not None else []
        if resumed_steps:  # the best so far is on disk
            try:
                saved = layout.read_meta(resumed_steps[-1][1]).get("monitor") or {}
            except CheckpointError:
                saved = {}
            if saved.get("name") == self.monitor.monitor and saved.get("mode") == self.monitor.mode:
                self.monitor.best = float(saved["best"])

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Saves step folder ``epoch + 1`` (when ``monitor`` improved, with ``save_best_only``)."""
        improved = self.monitor.update(logs or {}) if self.monitor is not None else True
        if self.save_best_only and not improved:
            return
        loop = self.loop
        meta: dict[str, Any] = {"seed": loop.seed, "global_step": loop.global_step}
        meta["history"] = saved_dict(loop.history, epoch, logs)
        if self._fit is not None:  # fit's argument, not the (scheduled) value in opt_state
            meta["learning_rate_argument"] = self._fit["learning_rate"]
        if self.monitor is not None:
            meta["monitor"] = {
                "name": self.monitor.monitor,
                "mode": self.monitor.mode,
                "best": self.monitor.best,
            }
        try:
            written = save_checkpoint(self.directory, epoch, loop.state, meta, model=loop.model)
        except OSError as err:
            target = steps.step_folder(self.directory, epoch)
            message = (
                f"ModelCheckpoint: could not save epoch {epoch + 1} to {target}: "
                f"{err.strerror or err}; the earlier checkpoints are intact and the model "
                "keeps its trained weights (save them elsewhere with nnjax.save)"
            )  # with the cause's errno where it has one ("[Errno None]" otherwise)
            args = (message,) if err.errno is None else (err.errno, message)
            raise OSError(*args) from err
        # overwrite=True: the old run goes only once the new one has saved (process 0)
        for path in self._stale:
            if path != written and jax.process_index() == 0:
                shutil.rmtree(path, ignore_errors=True)
        self._stale = []
        steps.prune(self.directory, self.max_to_keep)


__all__ = [
    "ModelCheckpoint",
    "latest_epoch",
    "load_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
]
