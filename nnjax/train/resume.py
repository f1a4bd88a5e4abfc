"""Resuming ``fit`` from a :class:`~nnjax.train.checkpoint.ModelCheckpoint` folder.

The checkpoint carries parameters, optimizer state, the other model state (batch
statistics, dropout RNG streams), the history and the data-order seed, so a resumed
run ends bitwise where the uninterrupted one ends (CPU, same shapes and devices). A
checkpoint restores onto any process or device count: as host arrays, or, given the
run's shardings, straight onto the devices, each process reading only its shards.

A changed ``learning_rate`` argument of the resumed ``fit`` is applied; an unchanged
one keeps the checkpoint's (possibly scheduled or reduced) rate (:func:`resume_state`).

Example:
  >>> # state, history, initial_epoch, global_step = resume_state("run/ckpt", state, seed=0)
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from nnjax.io import layout, trees
from nnjax.io.errors import CheckpointError
from nnjax.io.layout import META
from nnjax.train import checkpoint, optimizers
from nnjax.train.history import History
from nnjax.train.state import TrainState


def abstract(state: TrainState, shardings: TrainState) -> TrainState:
    """``state`` as abstract arrays laid out by ``shardings`` (a restore template).

    PRNG keys stay as they are (restored to the host, then placed by ``fit``).

    Example:
      >>> import jax, numpy as np
      >>> from jax.sharding import SingleDeviceSharding
      >>> s = SingleDeviceSharding(jax.devices()[0])
      >>> template = abstract(TrainState({"w": np.zeros(2)}, (), {}), TrainState({"w": s}, (), {}))
      >>> template.params["w"].shape, template.params["w"].sharding == s
      ((2,), True)
    """

    def one(leaf: Any, sharding: Any) -> Any:
        if trees.is_key(leaf):
            return leaf
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)
        return jax.ShapeDtypeStruct(np.shape(leaf), dtype, sharding=sharding)

    return jax.tree.map(one, state, shardings)


def restore_state(
    directory: str | os.PathLike,
    state: TrainState,
    *,
    fallback: bool = False,
    shardings: TrainState | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restores the newest checkpoint's parts shaped like ``state``, and its metadata.

    A checkpoint written with the optimizer's own state (no injected hyperparameters)
    restores into an injected ``state`` too.

    Args:
      directory: a :class:`~nnjax.train.checkpoint.ModelCheckpoint` folder.
      state: the fresh training state, the template of what is restored.
      fallback: when the newest checkpoint is damaged, restore the newest intact one
        and say which with a :class:`~nnjax.io.CheckpointFallbackWarning`.
      shardings: a ``TrainState`` of shardings (``StateLayout.shardings()``) to
        restore the arrays onto directly, each process reading only its shards (any
        process or device count, whatever wrote the checkpoint); ``None``: host
        arrays.

    Returns:
      ``(parts, meta)``: ``params``, ``opt_state`` and ``rest`` (host arrays, or laid
      out by ``shardings``), and the checkpoint's JSON metadata.

    Raises:
      nnjax.io.CheckpointError: damaged, or written for another model or optimizer.
    """
    template = (state if shardings is None else abstract(state, shardings))._asdict()
    try:
        return checkpoint.restore_checkpoint(directory, template, fallback=fallback)
    except CheckpointError:
        plain = optimizers.uninjected(state.opt_state)
        if plain is None:
            raise
        template = {**template, "opt_state": plain[0]}  # the plain state: to the host
        try:
            parts, meta = checkpoint.restore_checkpoint(directory, template, fallback=fallback)
        except CheckpointError:
            pass
        else:
            return {**parts, "opt_state": plain[1](parts["opt_state"])}, meta
        raise


def check_run_folder(directory: str | os.PathLike) -> None:
    """Raises unless ``directory`` can be a ModelCheckpoint run folder (or does not exist yet).

    A run folder holds one step folder per saved epoch (``1/``, ``2/``...); ``fit``
    resumes from its newest. A missing or empty folder is a run not started yet.

    Raises:
      ValueError: ``directory`` is a file, or a single checkpoint (a step folder, a
        model written by :func:`nnjax.save`: it holds ``nnjax.json``; or a folder Orbax
        wrote, such as a ``CheckpointManager`` step).

    Example:
      >>> check_run_folder("/nonexistent/run")  # not started yet: fine
    """
    path = layout.user_path(directory)
    if path.is_file():
        raise ValueError(
            f"resume_from={os.fspath(directory)!r} is a file; pass the folder a "
            "ModelCheckpoint writes (one folder per saved epoch inside)"
        )
    if any((path / name).is_file() for name in (META, "_CHECKPOINT_METADATA", "_METADATA")):
        raise ValueError(
            f"resume_from={os.fspath(directory)!r} is one checkpoint, not a run folder: "
            f"pass the ModelCheckpoint folder that holds it ({path.parent}, if it is one of "
            "its epochs), and fit resumes from its newest; to start from a saved model's "
            "weights, load it (nnjax.load / nnjax.load_state) and fit without resume_from"
        )


def resume_state(
    directory: str | os.PathLike,
    state: TrainState,
    seed: int,
    *,
    fallback: bool = False,
    shardings: TrainState | None = None,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> tuple[TrainState, History, int, int]:
    """The state, history, next epoch and global step of the newest checkpoint.

    Args:
      directory: a :class:`~nnjax.train.checkpoint.ModelCheckpoint` folder that holds
        at least one checkpoint.
      state: the fresh training state, the template of what is restored.
      seed: ``fit``'s seed; it must equal the checkpoint's (the same data order).
      fallback: when the newest checkpoint is damaged (a crash of the disk, not of
        nnjax: saves are atomic), resume from the newest intact one and warn which
        (:class:`~nnjax.io.CheckpointFallbackWarning`); otherwise the damage is an error.
      shardings: restore the arrays laid out so (see :func:`restore_state`).
      epochs: the run's epoch count: a checkpoint of more epochs is an error (one of
        exactly ``epochs``, a finished run, resumes with nothing left to train).
      learning_rate: ``fit``'s learning rate argument (as injected; ``None`` for an
        Optax transformation). The checkpoint records the argument of the run that
        wrote it: if this one differs, it is applied (the caller asked for it); if it
        is the same, the checkpoint's learning rate is kept, as a schedule or
        ``ReduceLROnPlateau`` left it. A checkpoint without the record keeps its own.

    Returns:
      ``(state, history, initial_epoch, global_step)``.

    Raises:
      ValueError: the checkpoint was trained with another seed, or holds more than
        ``epochs`` epochs.
      nnjax.io.CheckpointError: damaged, or written for another model or optimizer.
    """
    parts, meta = restore_state(directory, state, fallback=fallback, shardings=shardings)
    if meta.get("seed") != seed:
        raise ValueError(
            f"checkpoint in {directory} was trained with seed={meta.get('seed')}, but fit got "
            f"seed={seed}; pass the same seed to resume the same data order"
        )
    done = meta["epoch"] + 1
    if epochs is not None and done > epochs:
        raise ValueError(
            f"the checkpoint in {directory} already holds {done} epochs, more than "
            f"epochs={epochs}; pass epochs >= {done} (it counts the resumed epochs)"
        )
    history = History.from_dict(meta["history"])
    state = TrainState(**parts)
    recorded = meta.get("learning_rate_argument")
    if _changed(recorded, learning_rate):
        state = state._replace(opt_state=_with_rate(state.opt_state, learning_rate))
    return state, history, done, meta["global_step"]


def start(
    resume_from: str | os.PathLike | None,
    state: TrainState,
    seed: int,
    state_layout: Any,
    *,
    initial_epoch: int,
    fallback: bool = False,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> tuple[TrainState, History, int, int]:
    """``fit``'s starting point: the newest checkpoint of ``resume_from``, or ``state``.

    Without ``resume_from``, or with a folder that holds no checkpoint yet, the run
    starts fresh: ``(state, History(), initial_epoch, 0)``. Otherwise it is
    :func:`resume_state`'s result; with several processes each reads only its shards
    of ``state_layout`` (a :class:`~nnjax.train.sharding.StateLayout`).

    Example:
      >>> state, history, epoch, step = start(None, "fresh", 0, None, initial_epoch=2)
      >>> state, history.epoch, epoch, step
      ('fresh', [], 2, 0)
    """
    if resume_from is None or checkpoint.latest_epoch(resume_from) is None:
        return state, History(), initial_epoch, 0
    shardings = state_layout.shardings() if jax.process_count() > 1 else None
    return resume_state(
        resume_from, state, seed, fallback=fallback, shardings=shardings, epochs=epochs,
        learning_rate=learning_rate,
    )  # fmt: skip


def _with_rate(opt_state: Any, learning_rate: Any) -> Any:
    """``opt_state`` with its injected learning rate set (a host array stays a host array)."""
    old = optimizers.get_hyperparameter(opt_state, "learning_rate")
    if isinstance(old, jax.Array):
        return optimizers.set_hyperparameter(opt_state, "learning_rate", learning_rate)
    rate = optimizers.check_learning_rate(learning_rate, zero_ok=True)
    return optimizers._replaced(opt_state, "learning_rate", np.asarray(rate, old.dtype))


def _changed(recorded: Any, learning_rate: float | None) -> bool:
    """Whether fit's ``learning_rate`` differs from the one the checkpoint records.

    Example:
      >>> _changed(0.001, 0.01), _changed(0.001, 0.001), _changed(None, 0.01)
      (True, False, False)
    """
    if learning_rate is None or isinstance(recorded, bool):
        return False
    if not isinstance(recorded, (int, float)):
        return False  # not recorded (an older checkpoint), or an Optax transformation's
    return float(recorded) != float(learning_rate)


__all__ = ["abstract", "check_run_folder", "restore_state", "resume_state", "start"]
