"""A folder of checkpoints, one step folder per saved epoch (``ModelCheckpoint``'s layout).

::

    DIR/1/  DIR/2/  ...     each a checkpoint folder (see :mod:`nnjax.io.layout`)

Step folder ``N`` holds the state after ``N`` epochs, the number the console shows
("Epoch N/..."); the functions here take and return fit's 0-based epoch index
(``N - 1``), as ``History.epoch`` and callbacks do. Folders of the first layout are
named by the 0-based epoch and still read.

Only folders that are checkpoints count as step folders (:func:`is_step`): an
all-digit name *and* checkpoint content. Anything else the user keeps in the folder
(``2024/``, ``0/notes``, ``data/``) is never listed, so never overwritten or pruned.

Example:
  >>> epochs("/nonexistent")
  []
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jax

from nnjax.io import _legacy, layout, restore
from nnjax.io.errors import CheckpointError, CheckpointFallbackWarning

T = TypeVar("T")


def is_step(path: Path) -> bool:
    """Whether ``path`` is a step folder: an all-digit name and a checkpoint inside.

    A checkpoint is a folder with ``nnjax.json`` (even a damaged one), one of the first
    layout (``meta/metadata``), a bare Orbax folder (``_CHECKPOINT_METADATA``), or an
    nnjax folder whose ``nnjax.json`` was lost (an Orbax ``state/`` item inside).

    Example:
      >>> is_step(Path("/nonexistent/3"))
      False
    """
    if not (path.name.isdigit() and path.is_dir()):
        return False
    state = path / "state"
    return (
        (path / layout.META).exists()
        or _legacy.is_legacy(path)
        or (path / "_CHECKPOINT_METADATA").is_file()
        or (state / "_METADATA").is_file()
        or (state / "_CHECKPOINT_METADATA").is_file()
    )


def recover_steps(directory: str | os.PathLike) -> None:
    """Puts back the step folders that a kill between an overwrite's two renames hid.

    See :func:`nnjax.io.layout.recover`; a no-op unless such a kill happened.
    """
    directory = layout.user_path(directory)
    for path in directory.iterdir():
        match = layout.SIBLING.fullmatch(path.name)
        if match and match["name"].isdigit() and not (directory / match["name"]).exists():
            layout.recover(directory / match["name"])


def tidy_steps(directory: str | os.PathLike) -> None:
    """Recovers hidden step folders, then removes what killed saves left beside them.

    Run by process 0 before a run writes into ``directory`` (``ModelCheckpoint``).
    """
    directory = layout.user_path(directory)
    if not directory.is_dir():
        return
    recover_steps(directory)
    for path in directory.iterdir():
        match = layout.SIBLING.fullmatch(path.name)
        if match and match["name"].isdigit():
            layout.tidy(directory / match["name"])


def epochs(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(epoch, step folder), ...]`` in ``directory``, oldest first (0-based epochs).

    Only checkpoints count (:func:`is_step`); a step folder hidden by a kill during an
    overwrite is put back first (:func:`recover_steps`).
    """
    directory = layout.user_path(directory)
    if not directory.is_dir():
        return []
    recover_steps(directory)
    found = []
    for path in directory.iterdir():
        if is_step(path):
            number = int(path.name)
            found.append((number if _legacy.is_legacy(path) else number - 1, path))
    return sorted(found)


def step_folder(directory: str | os.PathLike, epoch: int) -> Path:
    """The folder that holds (or will hold) the checkpoint after 0-based ``epoch``."""
    for number, path in epochs(directory):
        if number == epoch:
            return path
    return layout.user_path(directory) / str(epoch + 1)


ITEMS = ("state", "opt_state")
"""The Orbax items of nnjax's training checkpoints (``fit``'s and a sweep group's)."""


def lost_meta(path: Path) -> bool:
    """Whether ``path`` is a checkpoint nnjax wrote that lost its ``nnjax.json``.

    Nothing but nnjax's items inside (:data:`ITEMS`, each a complete Orbax item
    folder): not an Orbax ``CheckpointManager``'s step (its ``_CHECKPOINT_METADATA``
    beside the items), not a Flax guide's folder holding files of yours too.

    Example:
      >>> lost_meta(Path("/nonexistent/3"))
      False
    """
    entries = list(path.iterdir()) if path.is_dir() else []
    return bool(entries) and all(
        p.name in ITEMS and p.is_dir() and (p / "_METADATA").is_file() for p in entries
    )


def write_epoch(
    directory: str | os.PathLike,
    epoch: int,
    items: dict[str, Any],
    meta: dict[str, Any],
    *,
    max_to_keep: int | None = None,
) -> Path:
    """Writes step folder ``epoch + 1`` atomically; deletes the oldest beyond ``max_to_keep``.

    The older folders are deleted only once the new one is complete, so a failed save
    (full disk, no permission) leaves every earlier checkpoint in place.
    """
    path = layout.write(
        layout.user_path(directory) / str(epoch + 1),
        items,
        {**meta, "epoch": epoch},
        overwrite=True,
        replaceable=lost_meta,  # a resumed run falls back past it, then saves that epoch
    )
    prune(directory, max_to_keep)
    return path


def prune(directory: str | os.PathLike, max_to_keep: int | None) -> None:
    """Deletes the oldest step folders beyond ``max_to_keep`` (process 0; ``None`` keeps all)."""
    if max_to_keep is not None and jax.process_index() == 0:
        for _, old in epochs(directory)[:-max_to_keep]:
            shutil.rmtree(old, ignore_errors=True)


def open_newest(
    directory: str | os.PathLike,
    open_step: Callable[[Path], T],
    *,
    epoch: int | None = None,
    fallback: bool = False,
) -> T:
    """``open_step(folder)`` for the newest step folder (or the one of ``epoch``).

    Args:
      directory: a folder of step folders.
      open_step: reads one step folder; raises :class:`CheckpointError` when damaged.
      epoch: a 0-based epoch to open instead of the newest.
      fallback: when the newest is damaged, open the newest intact one instead and say
        which with a :class:`CheckpointFallbackWarning`.

    Raises:
      FileNotFoundError: no step folder (for ``epoch``) in ``directory``.
      CheckpointError: the step folder is damaged (and, with ``fallback``, every one),
        or ``directory`` is an Orbax ``CheckpointManager``'s folder, not nnjax's.
    """
    found = epochs(directory)
    if found and all(restore.is_manager_step(path) for _, path in found):
        raise restore.manager_error(layout.user_path(directory), [path for _, path in found])
    if epoch is not None:
        found = [(e, p) for e, p in found if e == epoch]
    if not found:
        which = "" if epoch is None else f" for epoch {epoch + 1}"
        raise FileNotFoundError(f"no checkpoint{which} in {layout.user_path(directory)}")
    skipped: list[str] = []
    for _, path in reversed(found):
        try:
            result = open_step(path)
        except CheckpointError as err:
            if not fallback:
                raise
            skipped.append(str(err))
            continue
        if skipped:
            warnings.warn(
                f"loaded {path} instead: skipped {len(skipped)} damaged checkpoint(s): "
                + "; ".join(skipped),
                CheckpointFallbackWarning,
                stacklevel=3,
            )
        return result
    raise CheckpointError(f"no intact checkpoint in {directory}: " + "; ".join(skipped))


__all__ = [
    "ITEMS",
    "epochs",
    "is_step",
    "lost_meta",
    "open_newest",
    "prune",
    "recover_steps",
    "step_folder",
    "tidy_steps",
    "write_epoch",
]
