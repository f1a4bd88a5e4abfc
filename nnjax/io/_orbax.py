"""The only place that talks to Orbax: lazy import, reads, writes, short errors (private).

Orbax (``orbax-checkpoint``, a core dependency) is imported on first use, so ``import
nnjax`` stays light; its absence is one line naming the package. Its errors
(multi-kilobyte specs, event loop tracebacks) become one
:class:`~nnjax.io.errors.CheckpointError` line naming the folder and the problem; the
reads a failed call leaves in flight print nothing when they end
(:mod:`nnjax.io._loops`). A failed write (full disk, no permission) becomes an
``OSError`` naming the user's folder (:func:`failures_named`), and what Orbax cannot
store is refused before anything is written (:func:`check_storable`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nnjax.io import _collective, _loops
from nnjax.io.errors import CheckpointError


def orbax() -> Any:
    """The ``orbax.checkpoint`` module, or an ``ImportError`` naming the package to install."""
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        raise ImportError("nnjax checkpoints need Orbax: pip install orbax-checkpoint") from None
    return ocp


def _checkpointer(tag: str | None = None) -> Any:
    """An Orbax checkpointer; with several processes, one that reads alone or writes with all.

    ``tag`` marks a collective write (every process saves, each its own shards; process
    0 writes host arrays and metadata; barriers named after ``tag`` through JAX's
    coordination service, each bounded by Orbax's timeout). A write that fails on some
    process fails on every process within moments (:func:`_agreeing`), not after
    Orbax's 300 s barrier timeout, except when process 0 fails in Orbax's own steps
    around the handler (creating its temporary folder, finalizing, renaming): the
    others then wait out that timeout. A process that dies is caught sooner, by JAX's
    heartbeat timeout (``initialize(heartbeat_timeout_s=...)``). Without ``tag``, a
    read: each process reads alone, so no process waits for the others.
    """
    import jax

    ocp = orbax()
    if jax.process_count() == 1:
        return ocp.Checkpointer(ocp.StandardCheckpointHandler())
    if tag is None:
        options = ocp.options.MultiprocessingOptions(
            primary_host=jax.process_index(), active_processes={jax.process_index()}
        )
        return ocp.Checkpointer(ocp.StandardCheckpointHandler(), multiprocessing_options=options)
    options = ocp.options.MultiprocessingOptions(
        primary_host=0,
        active_processes=set(range(jax.process_count())),
        barrier_sync_key_prefix=tag,
    )
    handler = ocp.StandardCheckpointHandler(multiprocessing_options=options)
    handler.save = _agreeing(handler.save)
    return ocp.Checkpointer(handler, multiprocessing_options=options)


def _agreeing(save: Callable[..., None]) -> Callable[..., None]:
    """``save`` (a handler's: each process writes its shards), then every process's outcome.

    Orbax's ``Checkpointer.save`` runs the handler's ``save`` on every process between
    two of its barriers (each waits up to Orbax's fixed 300 s: no option of Orbax 0.12
    changes it; ``AsyncOptions(timeout_secs=...)`` bounds only an
    ``AsyncCheckpointer``'s background commit). Had a process left with an error
    there, the others would wait out that timeout at the next barrier; with the
    outcomes exchanged first (:func:`nnjax.io._collective.everywhere`), every process
    raises at once instead.
    The handler's class stays Orbax's own (Orbax looks its arguments up by exact type).
    """

    def agreeing(directory: Any, *args: Any, **kwargs: Any) -> None:
        _collective.everywhere(_collective.next_tag(), lambda: save(directory, *args, **kwargs))

    return agreeing


def _quiet() -> Any:
    """Silences absl's warnings while Orbax runs (restored afterwards)."""

    class Quiet:
        def __enter__(self):
            self.logger = logging.getLogger("absl")
            self.level = self.logger.level
            self.logger.setLevel(max(self.level, logging.ERROR))

        def __exit__(self, *exc):
            self.logger.setLevel(self.level)

    return Quiet()


def short(err: BaseException, limit: int = 160) -> str:
    """The first line of ``err``'s message, cut at ``limit`` characters."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write(path: Path, tree: Any) -> None:
    """Writes a nested dict of arrays to ``path`` as Flax's guide does (sync).

    ``tree`` holds NumPy arrays and, with several processes, ``jax.Array`` leaves
    sharded across processes. With several processes this is collective: every
    process calls it with the same ``path`` (a fresh one: Orbax's barriers are named
    after it), in the same order.
    """
    import jax

    ocp = orbax()
    path = Path(path).absolute()
    tag = f"nnjax_orbax:{path}" if jax.process_count() > 1 else None
    with _quiet(), _loops.guard():
        _checkpointer(tag).save(path, args=ocp.args.StandardSave(tree))


def check_storable(tree: dict[str, Any], where: Path, item: str) -> None:
    """Raises a ``ValueError`` naming the key path of an array Orbax cannot store right.

    Orbax names each array by its keys joined with ``"."``, so ``{"a.b": x}`` and
    ``{"a": {"b": y}}`` would share one array on disk (Orbax raises for other shapes and
    silently keeps one of the two for equal ones); and it refuses arrays of zero size.

    Raises:
      ValueError: ``"cannot save <where>: its state arrays d/a.b and d/a/b would both be
        stored as Orbax's array 'd.a.b' ..."``, or ``"... its state array z has zero size
        (shape (0, 3)) ..."``.

    Example:
      >>> import numpy as np
      >>> check_storable({"a.b": np.ones(2), "a": {"b": np.ones(3)}}, Path("ck"), "state")
      Traceback (most recent call last):
      ...
      ValueError: cannot save ck: its state arrays a.b and a/b would both be stored as ...
    """
    seen: dict[str, tuple[str, ...]] = {}

    def walk(node: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key, value in node.items():
            here = (*keys, str(key))
            if isinstance(value, dict):
                walk(value, here)
                continue
            if getattr(value, "size", 1) == 0:
                raise ValueError(
                    f"cannot save {where}: its {item} array {'/'.join(here)} has zero size "
                    f"(shape {tuple(value.shape)}) and Orbax cannot store an empty array; "
                    "give it a nonzero size or leave it out of the model's state"
                )
            name = ".".join(here)
            if name in seen:
                raise ValueError(
                    f"cannot save {where}: its {item} arrays {'/'.join(seen[name])} and "
                    f"{'/'.join(here)} would both be stored as Orbax's array {name!r} (Orbax "
                    "joins the keys with '.'); rename one of them"
                )
            seen[name] = here

    walk(tree, ())


_IO_STATUS = ("OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "DATA_LOSS")


def write_failure(err: BaseException, where: Path) -> OSError | None:
    """``err`` (raised writing the checkpoint ``where``) as an ``OSError`` naming ``where``.

    ``None`` unless ``err`` or its cause is a failed write: an ``OSError``, or a
    TensorStore error (a ``ValueError`` such as ``"OUT_OF_RANGE: Error writing ...
    [os_error_code='27']"``). Its errno is kept where the error gives one.

    Example:
      >>> err = ValueError("OUT_OF_RANGE: Error writing ... [os_error_code='28']")
      >>> str(write_failure(err, Path("/ck")))
      '[Errno 28] cannot write /ck: No space left on device'
      >>> write_failure(TypeError("unsupported leaf"), Path("/ck")) is None
      True
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError):
            message = f"cannot write {where}: {cause.strerror or short(cause)}"
            return OSError(cause.errno, message) if cause.errno else OSError(message)
        text = str(cause)
        code = re.search(r"os_error_code='?(\d+)", text)
        if code:
            return OSError(int(code[1]), f"cannot write {where}: {os.strerror(int(code[1]))}")
        if text.startswith(_IO_STATUS):
            return OSError(f"cannot write {where}: {short(ValueError(text.split(' [', 1)[0]))}")
        cause = cause.__cause__
    return None


@contextlib.contextmanager
def failures_named(where: Path) -> Iterator[None]:
    """Raises a failed write inside it as an ``OSError`` naming ``where`` (:func:`write_failure`).

    Orbax's own errors name its hidden temporary folder (TensorStore's are ``ValueError``s
    a caller catching ``OSError`` misses); the original is chained (``from``).
    """
    try:
        yield
    except Exception as err:
        failure = write_failure(err, where)
        if failure is None:
            raise
        raise failure from err


def _reason(err: BaseException, path: Path) -> str:
    """One line from an Orbax/TensorStore error: the damaged file and what is wrong."""
    text = str(err).split(" [tensorstore_spec", 1)[0]
    files = re.findall(r'local file "([^"]+)"', text)
    if files:  # '... of local file "<path>": <reason>'
        return f"{files[-1]}: damaged array file ({text.rsplit(': ', 1)[-1].strip()})"
    return f"{path}: unreadable array data ({short(err)})"


def shapes(path: Path) -> dict[tuple[str, ...], tuple[tuple[int, ...], str]]:
    """``{path: (shape, dtype)}`` of the arrays stored at ``path``, without reading them.

    Raises:
      CheckpointError: the folder is missing or damaged (one line naming the file).
    """
    path = Path(path).absolute()
    if not path.is_dir():
        raise CheckpointError(f"{path}: missing (no array folder)")
    if not (path / "_METADATA").is_file():
        raise CheckpointError(f"{path / '_METADATA'}: missing (an incomplete Orbax folder)")
    try:
        with _quiet(), _loops.guard():
            meta = _checkpointer().metadata(path).item_metadata
            # Damaged array metadata reads as None: reading the arrays names the file.
            tree = meta.tree if meta is not None else _checkpointer().restore(path)
    except Exception as err:  # Orbax raises many types; the message is what matters
        raise CheckpointError(_reason(err, path)) from None
    out: dict[tuple[str, ...], tuple[tuple[int, ...], str]] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*prefix, str(key)))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, (*prefix, str(i)))
        elif node is not None:
            out[prefix] = (tuple(node.shape), str(node.dtype))

    walk(tree, ())
    return out


def read(path: Path, target: Any) -> Any:
    """Reads the arrays at ``path`` into ``target``'s structure.

    NumPy leaves of ``target`` give NumPy arrays; ``jax.ShapeDtypeStruct`` leaves with a
    sharding give ``jax.Array``s laid out so (each process reads only its shards).

    Raises:
      CheckpointError: a damaged, truncated or missing array file (one line).
    """
    ocp = orbax()
    path = Path(path).absolute()
    try:
        with _quiet(), _loops.guard():
            return _checkpointer().restore(path, args=ocp.args.StandardRestore(target))
    except Exception as err:
        raise CheckpointError(_reason(err, path)) from None
