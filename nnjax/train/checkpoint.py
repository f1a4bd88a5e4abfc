"""Orbax checkpoints of a training run, and the :class:`ModelCheckpoint` callback.

A checkpoint holds everything needed to resume: the parameters, the optimizer state,
the other model state (batch statistics, dropout RNG keys and counts), and as JSON the
epoch, the seed (which fixes every epoch's data order), the update count and the history
so far. Each part is stored as a flat dict of NumPy arrays in the order of
:func:`jax.tree.leaves` (typed PRNG keys as their raw key data), with the leaf paths
in the JSON for error messages.

Saves are atomic: Orbax writes into a temporary folder and renames it only when every
part is written, so a crash mid-save leaves the previous checkpoints intact and
loadable.

Example:
  >>> cb = ModelCheckpoint("/tmp/run", monitor="val_loss", save_best_only=True)
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nnjax.train.callbacks import Callback, Monitor

_PARTS = ("params", "opt_state", "rest")


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def flatten_for_save(tree: Any) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({"00000": leaf, ...}, paths)``: host copies of the leaves, PRNG keys as key data.

    Example:
      >>> arrays, paths = flatten_for_save({"w": np.ones(2)})
      >>> list(arrays), paths
      (['00000'], ["['w']"])
    """
    with_path = jax.tree_util.tree_flatten_with_path(tree)[0]
    leaves = [jax.random.key_data(leaf) if _is_key(leaf) else leaf for _, leaf in with_path]
    host = jax.device_get(leaves)
    arrays = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(host)}
    return arrays, [jax.tree_util.keystr(path) for path, _ in with_path]


def unflatten_like(template: Any, arrays: dict[str, np.ndarray], paths: list[str]) -> Any:
    """Rebuilds ``template``'s structure from :func:`flatten_for_save` output.

    Raises:
      ValueError: the checkpoint does not match ``template`` (names the first leaf).
    """
    leaves, treedef = jax.tree.flatten(template)
    if len(leaves) != len(arrays):
        raise ValueError(
            f"checkpoint has {len(arrays)} arrays but the model/optimizer state has "
            f"{len(leaves)}; was it saved from a different model or optimizer?"
        )
    out = []
    for i, leaf in enumerate(leaves):
        saved = arrays[f"{i:05d}"]
        if _is_key(leaf):
            out.append(jax.random.wrap_key_data(saved, impl=jax.random.key_impl(leaf)))
            continue
        if tuple(saved.shape) != tuple(np.shape(leaf)):
            raise ValueError(
                f"checkpoint array {paths[i]} has shape {saved.shape}, but the model "
                f"expects {np.shape(leaf)}"
            )
        out.append(saved)
    return jax.tree.unflatten(treedef, out)


def _manager(directory: str | os.PathLike, **options: Any) -> ocp.CheckpointManager:
    options.setdefault("enable_async_checkpointing", False)
    if options.get("read_only"):
        # What Orbax would otherwise set itself, logging a warning for each.
        options.update(save_interval_steps=0, create=False)
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(max(level, logging.ERROR))  # "Given directory is read only"
    try:
        return ocp.CheckpointManager(
            os.path.abspath(os.fspath(directory)),
            options=ocp.CheckpointManagerOptions(**options),
        )
    finally:
        absl_logger.setLevel(level)


def save_checkpoint(
    manager: ocp.CheckpointManager, epoch: int, state: Any, meta: dict[str, Any]
) -> None:
    """Saves ``state`` (a ``TrainState``) and the JSON ``meta`` as step ``epoch``, atomically."""
    items, meta = {}, {**meta, "epoch": int(epoch), "paths": {}}
    for part in _PARTS:
        arrays, meta["paths"][part] = flatten_for_save(getattr(state, part))
        if arrays:  # Orbax refuses empty items (e.g. a model without extra state)
            items[part] = ocp.args.StandardSave(arrays)
    manager.save(epoch, args=ocp.args.Composite(meta=ocp.args.JsonSave(meta), **items), force=True)
    manager.wait_until_finished()


def latest_epoch(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint's epoch in ``directory``, or ``None`` if there is none.

    Example:
      >>> latest_epoch("/nonexistent/run") is None
      True
    """
    if not os.path.isdir(directory):
        return None
    return _manager(directory, read_only=True).latest_step()


def restore_checkpoint(
    directory: str | os.PathLike,
    template: dict[str, Any],
    *,
    epoch: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restores the parts named in ``template`` (a subset of params/opt_state/rest).

    Args:
      directory: the checkpoint folder.
      template: ``{"params": ..., "rest": ...}``: pytrees with the expected structure.
      epoch: which checkpoint; the newest by default.

    Returns:
      ``(parts, meta)``: the restored pytrees (NumPy leaves, PRNG keys typed) and the JSON.

    Raises:
      FileNotFoundError: no complete checkpoint in ``directory``.
    """
    manager = _manager(directory, read_only=True)
    epoch = manager.latest_step() if epoch is None else epoch
    if epoch is None or epoch not in manager.all_steps():
        raise FileNotFoundError(
            f"no checkpoint{'' if epoch is None else f' for epoch {epoch}'} in {directory}"
        )
    meta = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    args = {}
    for part, tree in template.items():
        if not jax.tree.leaves(tree):
            continue
        shapes = [
            np.asarray(jax.random.key_data(x) if _is_key(x) else x) for x in jax.tree.leaves(tree)
        ]
        args[part] = ocp.args.StandardRestore({f"{i:05d}": s for i, s in enumerate(shapes)})
    restored = manager.restore(epoch, args=ocp.args.Composite(**args)) if args else {}
    parts = {
        part: unflatten_like(tree, dict(restored.get(part, {})), meta["paths"][part])
        for part, tree in template.items()
    }
    return parts, meta


def load_checkpoint(
    directory: str | os.PathLike, model: nnx.Module, *, epoch: int | None = None
) -> dict[str, Any]:
    """Loads the parameters and model state of a checkpoint into ``model``.

    Args:
      directory: a folder written by :class:`ModelCheckpoint`.
      model: a model of the same architecture; updated in place.
      epoch: which checkpoint; the newest by default.

    Returns:
      The checkpoint's metadata (``epoch``, ``seed``, ``history``, ...).

    Example:
      >>> # meta = load_checkpoint("/tmp/run", model); meta["epoch"]
    """
    _, params, rest = nnx.split(model, nnx.Param, ...)
    parts, meta = restore_checkpoint(directory, {"params": params, "rest": rest}, epoch=epoch)
    nnx.update(model, parts["params"], parts["rest"])
    return meta


class ModelCheckpoint(Callback):
    """Saves the training state after each epoch with Orbax (atomically).

    Args:
      directory: the checkpoint folder (one sub-folder per saved epoch).
      monitor: the metric deciding "best" (``"val_loss"``); needed for
        ``save_best_only``.
      mode: ``"min"``, ``"max"`` or ``"auto"`` for ``monitor``.
      save_best_only: save only when ``monitor`` improves (so the newest checkpoint is
        the best one); otherwise every epoch.
      max_to_keep: how many checkpoints to keep (oldest deleted first); ``None`` keeps
        all, and the default is 1 with ``save_best_only``, else 3.

    Resume a run with ``fit(..., resume_from=directory)``: it continues from the newest
    checkpoint here.

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
    ) -> None:
        if save_best_only and monitor is None:
            raise ValueError("save_best_only=True needs a metric to `monitor`")
        self.directory = os.path.abspath(os.fspath(directory))
        self.monitor = None if monitor is None else Monitor(monitor, mode)
        self.save_best_only = save_best_only
        self.max_to_keep = (1 if save_best_only else 3) if max_to_keep == -1 else max_to_keep
        self.manager: ocp.CheckpointManager | None = None

    def on_train_begin(self, logs=None):
        self.manager = _manager(self.directory, max_to_keep=self.max_to_keep)
        if self.monitor is not None:
            self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best

    def on_epoch_end(self, epoch, logs=None):
        improved = self.monitor.update(logs) if self.monitor is not None else True
        if self.save_best_only and not improved:
            return
        loop = self.loop
        meta = {"seed": loop.seed, "global_step": loop.global_step}
        meta["history"] = loop.history.to_dict()
        save_checkpoint(self.manager, epoch, loop.state, meta)

    def on_train_end(self, logs=None):
        if self.manager is not None:
            self.manager.close()
            self.manager = None


__all__ = [
    "ModelCheckpoint",
    "latest_epoch",
    "load_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
]
