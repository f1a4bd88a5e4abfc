"""The one checkpoint layout of nnjax: a folder with Orbax items and ``nnjax.json``.

::

    DIR/
      nnjax.json     {"format": "nnjax.checkpoint", "version": 1, "kind": ..., "crc32": ...}
      state/         nnx.to_pure_dict(nnx.state(model)) via Orbax, PRNG keys as key data
      opt_state/     (training checkpoints) the optimizer state, same form

``state/`` is exactly what Flax's checkpointing guide writes with
``ocp.StandardCheckpointer().save(path, nnx.to_pure_dict(state))``, so plain Flax code
restores it. A folder is written under a temporary name and renamed when complete, so
a crash mid-save never leaves a half-written checkpoint under the real name. With
several JAX processes the write is collective (each process writes its own shards) and
every process returns only once the folder is complete. ``nnjax.json`` records the
CRC32 of every host array (not of arrays sharded across processes); a load checks
them, so a bit flipped on disk is a :class:`CheckpointError`, not a wrong weight.

Example:
  >>> import tempfile, numpy as np
  >>> d = tempfile.mkdtemp() + "/ckpt"
  >>> _ = write(d, {"state": {"w": np.ones(2, np.float32)}}, {"kind": "state"})
  >>> read_meta(d)["version"]
  1
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from nnjax.io import _collective, _crc, _orbax
from nnjax.io._json import read_json, write_json
from nnjax.io.errors import CheckpointError, cannot_write

FORMAT = "nnjax.checkpoint"
VERSION = 1
META = "nnjax.json"

SIBLING = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.(?:tmp|old)")
"""A hidden sibling of a folder being written (``.NAME.1a2b3c4d.tmp``) or swapped out by
an overwrite (``.NAME.1a2b3c4d.old``)."""


def user_path(path: str | os.PathLike) -> Path:
    """``path`` as the user meant it: ``~`` expanded, made absolute.

    Example:
      >>> user_path("~/ckpt") == Path.home() / "ckpt"
      True
    """
    return Path(os.path.expanduser(os.fspath(path))).absolute()


def check_path(owner: str, name: str, value: Any) -> None:
    """Raises a ``TypeError`` naming ``value`` unless it is a path (``str`` or ``os.PathLike``).

    Example:
      >>> try:
      ...     check_path("nnjax.load", "directory", 3)
      ... except TypeError as err:
      ...     print(err)
      nnjax.load: `directory` must be a path (str or os.PathLike), got int 3
    """
    if not isinstance(value, (str, os.PathLike)):
        shown = repr(value)
        shown = "" if "\n" in shown or len(shown) > 60 else f" {shown}"
        raise TypeError(
            f"{owner}: `{name}` must be a path (str or os.PathLike), "
            f"got {type(value).__name__}{shown}"
        )


def check_not_template(owner: str, directory: str | os.PathLike) -> None:
    """Raises a ``ValueError`` for a Keras filepath template (``"ckpt-{epoch:02d}"``).

    Example:
      >>> check_not_template("ModelCheckpoint", "runs/ckpt")  # a folder: fine
    """
    if re.search(r"\{[A-Za-z_]\w*(:[^{}]*)?\}", os.fspath(directory)):  # Keras's {epoch}
        raise ValueError(
            f"{owner}: `directory` must be a folder (step folders 1, 2, ... go inside), got "
            f"the filepath template {os.fspath(directory)!r}"
        )


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder nnjax wrote: ``nnjax.json`` inside (or the first layout).

    Example:
      >>> is_checkpoint("/nonexistent")
      False
    """
    from nnjax.io import _legacy

    path = Path(path)
    return path.is_dir() and ((path / META).exists() or _legacy.is_legacy(path))


def siblings(final: Path) -> list[Path]:
    """The hidden siblings of ``final``: killed writes' ``.NAME.XXXXXXXX.tmp`` and ``.old``."""
    if not final.parent.is_dir():
        return []
    matches = ((path, SIBLING.fullmatch(path.name)) for path in final.parent.iterdir())
    return sorted(path for path, match in matches if match and match["name"] == final.name)


def recover(final: str | os.PathLike) -> bool:
    """Puts back ``final`` when an overwrite was killed between its two renames.

    Such a kill leaves no ``final``, only hidden siblings: ``.NAME.XXXXXXXX.old`` (the
    previous checkpoint) and ``.NAME.XXXXXXXX.tmp`` (the new one, complete once it holds
    ``nnjax.json``, which is written last). The newest complete one (the ``.tmp``
    first) is renamed to ``final``. Incomplete siblings are left alone (a write may be
    under way); :func:`write` removes them before it writes ``final`` again.

    Returns:
      Whether a sibling was renamed to ``final``.

    Raises:
      CheckpointError: the rename failed; the message names the hidden folder that
        holds the checkpoint.

    Example:
      >>> recover("/nonexistent/ckpt")
      False
    """
    final = Path(final)
    if final.exists() or final.is_symlink():
        return False
    complete = [p for p in siblings(final) if p.is_dir() and (p / META).is_file()]
    if not complete:
        return False
    newest = max(complete, key=lambda p: (p.suffix == ".tmp", (p / META).stat().st_mtime_ns))
    try:
        os.rename(newest, final)
    except OSError as err:
        if final.exists():  # another process recovered it first
            return True
        raise CheckpointError(
            f"{final}: missing after an interrupted overwrite; the checkpoint is in {newest} "
            f"(rename it to {final.name}): {err.strerror or err}"
        ) from None
    return True


def tidy(final: Path) -> None:
    """Before writing ``final``: recovers it (:func:`recover`), then removes its stale siblings.

    The siblings are what killed runs left behind: half-written ``.tmp`` folders and
    swapped-out ``.old`` ones (each up to a whole checkpoint). Run by process 0.
    """
    recover(final)
    for path in siblings(final):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def check_replaceable(final: Path, also: Callable[[Path], bool] | None = None) -> None:
    """Raises unless ``overwrite=True`` may replace ``final``: a checkpoint or an empty folder.

    Called before ``overwrite`` is looked at, so that a path no overwrite can replace
    is never answered with "pass overwrite=True".

    Raises:
      FileExistsError: ``final`` is a file, or a folder that holds something other
        than an nnjax checkpoint (the user's files are never deleted).
    """
    if final.is_dir():
        if is_checkpoint(final) or not any(final.iterdir()) or (also and also(final)):
            return
        raise FileExistsError(
            f"{final} is a folder with other files, not an nnjax checkpoint (it has no "
            f"{META}): choose another path, or empty it yourself (overwrite=True replaces "
            "only a checkpoint or an empty folder)"
        )
    raise FileExistsError(
        f"{final} is a file, not an nnjax checkpoint: choose another path, or delete the "
        "file yourself (overwrite=True replaces only a checkpoint or an empty folder)"
    )


def write(
    directory: str | os.PathLike,
    items: dict[str, Any],
    meta: dict[str, Any],
    *,
    overwrite: bool = False,
    replaceable: Callable[[Path], bool] | None = None,
) -> Path:
    """Writes ``items`` (nested dicts of arrays, see :mod:`nnjax.io.trees`) and ``meta``.

    Args:
      directory: the checkpoint folder to create.
      items: item name -> nested dict of arrays; empty items are skipped.
      meta: JSON-able metadata; ``format``, ``version`` and ``items`` are added.
      overwrite: replace an existing checkpoint folder (or an empty folder), only once
        the new one is complete; anything else (a file, a folder of other files) is
        refused, never deleted. ``~`` is expanded.
      replaceable: with ``overwrite``, also replaces a folder for which this is true
        (:func:`nnjax.io.steps.lost_meta`: a step folder that lost its ``nnjax.json``).

    With several JAX processes this is collective: every process calls it with the
    same folder and items, in the same order. Each process writes the shards of the
    arrays sharded across processes that it holds (Orbax's multi-process save: no
    process gathers the whole arrays); process 0 writes the host arrays and
    ``nnjax.json`` and commits the folder; every process returns once the folder is
    complete, or raises the same error.

    Returns:
      The folder's absolute path.

    Before writing, a ``directory`` lost to a kill between an earlier overwrite's two
    renames is recovered (:func:`recover`) and the hidden temporary folders that
    killed writes of ``directory`` left beside it are removed.

    Raises:
      FileExistsError: ``directory`` exists and ``overwrite`` is false, or it is not a
        checkpoint (a file, a folder of other files): the message names it.
      OSError: a write failed (full disk, no permission) on some process, or a
        process did not report in time; nothing is left under a temporary name and
        an existing ``directory`` is unchanged. A failed Orbax write names
        ``directory`` and the cause (errno kept), chained from Orbax's error.
      ValueError: an array Orbax cannot store (zero size, or two key paths Orbax
        would store as one array), named before anything is written.
    """
    final = user_path(directory)
    stored = [name for name, tree in items.items() if tree]
    for name in stored:  # before any folder is made
        _orbax.check_storable(items[name], final, name)
    meta = {"format": FORMAT, "version": VERSION, **meta, "items": stored}
    if jax.process_index() == 0:  # it writes nnjax.json; sharded arrays are not recorded
        meta.update(_crc.records({name: items[name] for name in stored}))
    tag = _collective.next_tag() if jax.process_count() > 1 else None
    tmp = Path(
        _collective.on_main(f"{tag}/prepare", lambda: str(_prepare(final, overwrite, replaceable)))
    )
    try:

        def arrays() -> None:
            with _orbax.failures_named(final):  # not Orbax's hidden temporary folder
                for name in stored:
                    _orbax.write(tmp / name, items[name])

        _collective.everywhere(f"{tag}/arrays", arrays)
        _collective.on_main(f"{tag}/commit", lambda: _commit(tmp, final, meta))
    finally:
        if jax.process_index() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _prepare(final: Path, overwrite: bool, replaceable: Callable[[Path], bool] | None) -> Path:
    """Creates and returns the empty temporary folder beside ``final``."""
    tidy(final)
    if final.exists() or final.is_symlink():
        check_replaceable(final, replaceable)  # first: "overwrite=True" only where it works
        if not overwrite:
            raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it")
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as err:  # it would name a parent or the hidden temporary folder
        raise cannot_write(final, err) from err
    return tmp


def _commit(tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    """Writes ``nnjax.json`` into ``tmp``, renames it to ``final``: errors name ``final``."""
    try:
        _commit_named(tmp, final, meta)
    except OSError as err:
        cause = err.__cause__ if isinstance(err.__cause__, OSError) else err
        raise cannot_write(final, cause) from err


def _commit_named(tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    write_json(tmp / META, meta)
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
        os.rename(final, old)
        try:
            _rename_into(tmp, final)
        except OSError:
            os.rename(old, final)  # put the previous one back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        _rename_into(tmp, final)


def _rename_into(tmp: Path, final: Path) -> None:
    """``os.rename(tmp, final)``; done already if a reader recovered ``tmp`` (:func:`recover`)."""
    try:
        os.rename(tmp, final)
    except FileNotFoundError:
        if tmp.exists() or not (final / META).is_file():
            raise


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``nnjax.json``, checked for format and version.

    Raises:
      CheckpointError: the folder or the file is missing, empty or garbled, or the
        format version is newer than this nnjax reads.
    """
    directory = user_path(directory)
    path = directory / META
    recover(directory)
    if directory.is_file():
        raise CheckpointError(f"{directory} is a file, not a checkpoint folder")
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint folder")
    if not path.is_file():
        what = "empty checkpoint folder" if not any(directory.iterdir()) else "missing"
        item = directory / "state"  # Flax's guide: checkpointer.save(ckpt_dir / "state", ...)
        flax = (item / "_CHECKPOINT_METADATA").is_file()
        hint = f"; a checkpoint of Flax's guide is read from its item: {item}" if flax else ""
        raise CheckpointError(f"{path}: {what} (not a complete nnjax checkpoint){hint}")
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nnjax checkpoint metadata file")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this nnjax reads "
            f"({VERSION}); upgrade nnjax to load it"
        )
    return meta


def has_item(directory: str | os.PathLike, meta: dict[str, Any], name: str) -> bool:
    """Whether the checkpoint stores item ``name`` (listed in its metadata)."""
    return name in meta.get("items", ())


__all__ = [
    "FORMAT",
    "META",
    "SIBLING",
    "VERSION",
    "check_not_template",
    "check_replaceable",
    "has_item",
    "is_checkpoint",
    "read_json",
    "read_meta",
    "recover",
    "siblings",
    "tidy",
    "user_path",
    "write",
    "write_json",
]
