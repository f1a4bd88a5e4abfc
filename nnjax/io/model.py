"""``save``/``load`` of ``nnjax.nn`` models and ``save_state``/``load_state`` of any module.

Example:
  >>> import tempfile
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
  >>> path = save(model, tempfile.mkdtemp() + "/mlp")
  >>> type(load(path)).__name__
  'MLP'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax.io import _legacy, config, layout, restore, steps, trees
from nnjax.io.errors import CheckpointError
from nnjax.nn._validate import check_module


def save(model: nnx.Module, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Saves an ``nnjax.nn`` model: its state and, as JSON, its constructor arguments.

    Args:
      model: any ``nnjax.nn`` layer or model (built by its constructor).
      directory: the folder to create (``state/`` via Orbax and ``nnjax.json``).
      overwrite: replace an existing checkpoint (or empty) folder, once the new one is
        complete; a file or a folder of other files is refused, never deleted.

    ``nnjax.json`` records the constructor call, each layer's train/eval mode, and the
    settings changed since the model was built (``model.dropouts[0].rate = 0.0``: plain
    values, dtypes, named functions), which :func:`load` sets again.

    With several JAX processes call it in every process: the write is collective, each
    process writing the shards it holds of arrays sharded across processes.

    Returns:
      The folder's absolute path; :func:`load` rebuilds the model from it.

    Raises:
      TypeError: the model (or an argument, e.g. a lambda) has no JSON form; use
        :func:`save_state` then.
      FileExistsError: ``directory`` exists and ``overwrite`` is false, or it is not an
        nnjax checkpoint (a file, or a folder holding other files): nothing is deleted.
      OSError: the write failed (full disk, no permission): the message names
        ``directory`` and the cause (errno kept); an existing checkpoint is unchanged
        and nothing is left under a temporary name.
      ValueError: the state holds an array Orbax cannot store, named by its key path
        (zero size, or keys such as ``"a.b"`` beside ``a/b``, which Orbax would store
        as one array), before anything is written.

    Example:
      >>> import tempfile
      >>> import nnjax
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     folder = nnjax.save(model, f"{tmp}/mlp")
      ...     _ = nnjax.save(model, folder, overwrite=True)  # replaces the checkpoint
      ...     type(nnjax.load(folder)).__name__
      'MLP'
    """
    _check_model_and_folder("nnjax.save", model, directory)
    meta = {"kind": "model", **config.describe(model)}
    return layout.write(
        directory, {"state": trees.to_nested(nnx.state(model))}, meta, overwrite=overwrite
    )


def save_state(model: nnx.Module, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Saves the state of any NNX module (parameters, batch statistics, RNG state).

    ``directory/state`` is ``nnx.to_pure_dict(nnx.state(model))`` written with Orbax as
    Flax's checkpointing guide writes it (PRNG keys as key data).

    Returns:
      The folder's absolute path; :func:`load_state` reads it into a model you build.

    Raises:
      FileExistsError, OSError, ValueError: as :func:`save`.

    Example:
      >>> import tempfile
      >>> import nnjax
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     _ = nnjax.save_state(model, f"{tmp}/weights")
      ...     same = nnjax.load_state(nnx.Linear(2, 3, rngs=nnx.Rngs(1)), f"{tmp}/weights")
      >>> bool((same.kernel.get_value() == model.kernel.get_value()).all())
      True
    """
    _check_model_and_folder("nnjax.save_state", model, directory)
    items = {"state": trees.to_nested(nnx.state(model))}
    return layout.write(directory, items, {"kind": "state"}, overwrite=overwrite)


def _check_model_and_folder(owner: str, model: Any, directory: Any) -> None:
    """``TypeError`` unless ``model`` is an NNX module and ``directory`` a path."""
    check_module(model, owner=owner, usage=f"{owner}(model, directory)")
    layout.check_path(owner, "directory", directory)


def open_checkpoint(
    directory: str | os.PathLike,
    open_step: Any,
    *,
    fallback: bool = False,
    epoch: int | None = None,
) -> Any:
    """``open_step(folder)`` on a checkpoint folder, or on a step of a folder of them.

    Args:
      directory: a checkpoint folder, a folder of step folders, or a run folder.
      open_step: reads one checkpoint folder.
      fallback: skip damaged step folders (newest first), warning which was loaded.
      epoch: the 0-based epoch of the step folder to open instead of the newest.

    A checkpoint folder lost to a kill between an overwrite's two renames is put back
    from its hidden sibling first (:func:`nnjax.io.layout.recover`).
    """
    path = layout.user_path(directory)
    from nnjax.io import run

    layout.recover(path)
    if path.is_file():
        raise CheckpointError(f"{path} is a file, not a checkpoint folder")
    if run.is_run_folder(path):
        path = path / "checkpoint"  # a run folder of `nnjax train`
    single = (path / layout.META).exists() or _legacy.is_legacy(path)
    if epoch is None and (single or restore.is_bare_orbax(path)):
        return open_step(path)
    if steps.epochs(path) or epoch is not None:
        return steps.open_newest(path, open_step, epoch=epoch, fallback=fallback)
    numbered = [p for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    if numbered:  # not checkpoints (a user's, or damaged): name the newest
        layout.read_meta(max(numbered, key=lambda p: int(p.name)))
    layout.read_meta(path)  # raises the right one-line error (missing, empty, ...)
    raise CheckpointError(f"{path}: not a checkpoint folder")


def read_into(model: nnx.Module, folder: Path) -> dict[str, Any]:
    """Restores the checkpoint ``folder`` into ``model`` (nothing changes on error).

    Each array keeps the sharding of the model's array it replaces (:func:`_placed`).
    """
    # nnx.split's return type ends in a variadic tuple that mypy cannot unpack.
    _, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    template = {"params": params, "rest": rest}
    parts, meta = restore.read_parts(folder, template)
    on_device = jax.tree.map(_placed, parts, template)
    nnx.update(model, on_device["params"], on_device["rest"])
    return meta


def _placed(value: Any, like: Any) -> Any:
    """``value`` (restored) on the devices of ``like`` (the model's array it replaces).

    A ``like`` laid out over several devices, or committed to one, gives its sharding;
    other values go to the default device, as ``jnp.asarray`` puts them. Arrays sharded
    across processes were read laid out as ``like`` already (:func:`trees.placement`).
    """
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return value
    if isinstance(like, jax.Array) and (len(like.sharding.device_set) > 1 or like.committed):
        return jax.device_put(value, like.sharding)
    return value if trees.is_key(value) else jnp.asarray(value)


_M = TypeVar("_M", bound=nnx.Module)


def load_state(model: _M, directory: str | os.PathLike[str], *, fallback: bool = False) -> _M:
    """Loads a checkpoint's state into ``model`` (in place) and returns it.

    Args:
      model: a module of the saved architecture (any NNX module).
      directory: a folder written by :func:`save`/:func:`save_state`, a
        ``ModelCheckpoint`` folder (its newest epoch), a run folder of ``nnjax train``,
        or an Orbax folder written by Flax's guide.
      fallback: if the newest checkpoint of a folder is damaged, load the newest
        intact one and warn which.

    Arrays of ``model`` keep their sharding: those sharded across processes are read
    by each process as its own shards, those laid out over several local devices (or
    committed to one) are placed so again (whatever process or device count wrote the
    checkpoint).

    Raises:
      CheckpointError: the checkpoint does not fit ``model`` (the first mismatching
        path and both shapes), or a file is damaged or missing (one line).

    Example:
      >>> import tempfile
      >>> import nnjax
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     _ = nnjax.save(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), f"{tmp}/mlp")
      ...     model = nnjax.load_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1)), f"{tmp}/mlp")
      >>> type(model).__name__
      'MLP'
    """
    _check_model_and_folder("nnjax.load_state", model, directory)
    open_checkpoint(directory, lambda folder: read_into(model, folder), fallback=fallback)
    return model


def _load_model(folder: Path) -> tuple[nnx.Module, dict[str, Any]]:
    if restore.is_bare_orbax(folder) and not _legacy.is_legacy(folder):
        raise CheckpointError(
            f"{folder}: an Orbax checkpoint written without nnjax records no model; build "
            "the model and call nnjax.load_state(model, folder)"
        )
    meta = {} if _legacy.is_legacy(folder) else layout.read_meta(folder)
    if "model" not in meta:
        raise CheckpointError(
            f"{folder}: records no model (written by save_state or an older nnjax); build "
            "the model and call nnjax.load_state"
        )
    try:
        model = config.rebuild(meta)
    except CheckpointError as err:
        raise CheckpointError(f"{folder / layout.META}: {err}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # e.g. a newer nnjax's option
        raise CheckpointError(
            f"{folder / layout.META}: cannot rebuild the recorded model ({_short(err)}); "
            "written by a newer nnjax? Build the model and call nnjax.load_state"
        ) from None  # model.eval() survives the trip
    read_into(model, folder)
    return model, meta


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def load_with_meta(
    directory: str | os.PathLike, *, fallback: bool = False
) -> tuple[nnx.Module, dict[str, Any]]:
    """``(model, metadata)`` of the checkpoint :func:`load` reads (``meta["epoch"]``...)."""
    return open_checkpoint(directory, _load_model, fallback=fallback)


def load(directory: str | os.PathLike, *, fallback: bool = False) -> Any:
    """Rebuilds a model saved by :func:`save` (or ``ModelCheckpoint``), with no user code.

    Args:
      directory: a :func:`save` folder, a ``ModelCheckpoint`` folder (its newest
        epoch), or a run folder of ``nnjax train``.
      fallback: if the newest checkpoint is damaged, load the newest intact one and warn.

    Returns:
      The model; for a run folder, ``Run(model, preprocessing)`` (a named tuple).

    Raises:
      CheckpointError: damaged or missing files, a future format, or no recorded model.

    A run folder's result unpacks as ``model, preprocessing = nnjax.load(run_folder)``.

    Example:
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> import nnjax
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     loaded = nnjax.load(nnjax.save(model, f"{tmp}/mlp"))
      >>> bool((loaded(jnp.ones((1, 4))) == model(jnp.ones((1, 4)))).all())
      True
    """
    from nnjax.io import run

    layout.check_path("nnjax.load", "directory", directory)
    directory = layout.user_path(directory)
    model, _ = load_with_meta(directory, fallback=fallback)
    if run.is_run_folder(directory):
        return run.Run(model, run.read_preprocessing(directory))
    return model


__all__ = [
    "load",
    "load_state",
    "load_with_meta",
    "open_checkpoint",
    "read_into",
    "save",
    "save_state",
]
