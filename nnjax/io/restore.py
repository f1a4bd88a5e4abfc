"""Reading the parts of one checkpoint folder into templates: the one restore path.

A template is ``{"state": nnx.state(model)}`` for a model, or a training state's
``{"params": ..., "opt_state": ..., "rest": ...}`` (``params`` and ``rest`` both live in
the ``state`` item). Besides nnjax's own folders this reads a bare Orbax folder written
by Flax's guide (``nnx.to_pure_dict(state)`` or the ``nnx.State`` itself), one step
folder of an Orbax ``CheckpointManager`` (its one item: ``STEP/default/`` or
``STEP/state/``) or that item's folder, and the first nnjax layout. Every mismatch is
checked before any array is read. A ``CheckpointManager``'s own folder (``0/``, ``1/``,
... inside) is not a folder of nnjax step folders: :func:`manager_error` says what to
pass instead.

Example:
  >>> # parts, meta = read_parts("run/checkpoint/3", {"state": nnx.state(model)})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnjax.io import _crc, _legacy, _orbax, layout, trees
from nnjax.io.errors import CheckpointError

_ITEM = {"state": "state", "params": "state", "rest": "state", "opt_state": "opt_state"}


def is_bare_orbax(path: Path) -> bool:
    """Whether ``path`` is an Orbax folder written without nnjax (e.g. by Flax's guide).

    That is a checkpoint of ``ocp.StandardCheckpointer``, a step folder of an
    ``ocp.CheckpointManager`` (:func:`is_manager_step`), or one item folder of it.
    """
    path = Path(path)
    return not (path / layout.META).exists() and (
        (path / "_CHECKPOINT_METADATA").is_file() or (path / "_METADATA").is_file()
    )


def manager_items(step: Path) -> list[str]:
    """The items of an Orbax ``CheckpointManager`` step folder that hold arrays (sorted)."""
    step = Path(step)
    if not step.is_dir():
        return []
    return sorted(p.name for p in step.iterdir() if (p / "_METADATA").is_file())


def is_manager_step(path: Path) -> bool:
    """Whether ``path`` is a step folder of an Orbax ``CheckpointManager`` (not of nnjax).

    Such a folder has ``_CHECKPOINT_METADATA`` and its items in subfolders
    (``default/`` for one unnamed item), each with Orbax's ``_METADATA``; a folder of
    ``ocp.StandardCheckpointer`` has its ``_METADATA`` at the top, nnjax's have
    ``nnjax.json``, and those of nnjax's first layout ``meta/metadata``.

    Example:
      >>> is_manager_step(Path("/nonexistent/3"))
      False
    """
    path = Path(path)
    return (
        (path / "_CHECKPOINT_METADATA").is_file()
        and not (path / "_METADATA").exists()
        and not (path / layout.META).exists()
        and not _legacy.is_legacy(path)  # nnjax 0.1 wrote with a CheckpointManager too
        and bool(manager_items(path))
    )


def manager_error(directory: Path, step_folders: list[Path]) -> CheckpointError:
    """The error for a ``CheckpointManager`` folder passed where nnjax wants its own.

    Example:
      >>> print(manager_error(Path("/run"), [Path("/run/0"), Path("/run/5")]))  # doctest: +ELLIPSIS
      /run looks like an Orbax CheckpointManager folder (steps 0, 5), not one nnjax wrote: ...
    """
    numbers = sorted(int(p.name) for p in step_folders)
    shown = ", ".join(map(str, numbers[-3:]))
    newest = Path(directory) / str(numbers[-1])
    return CheckpointError(
        f"{directory} looks like an Orbax CheckpointManager folder (steps "
        f"{'..., ' if len(numbers) > 3 else ''}{shown}), not one nnjax wrote: to load its "
        f"weights, build the model and pass one step folder to nnjax.load_state (e.g. "
        f"{newest}, the newest), or restore it with orbax.checkpoint.CheckpointManager; "
        "nnjax cannot resume training from it"
    )


def _bare_item(folder: Path) -> str:
    """The item of a bare Orbax folder that holds the arrays: ``""`` (the folder itself)."""
    if not is_manager_step(folder):
        return ""
    names = manager_items(folder)
    if len(names) > 1:
        raise CheckpointError(
            f"{folder}: a step folder of an Orbax CheckpointManager with items {names}: pass "
            f"the item folder that holds the model's state (e.g. {folder / names[0]})"
        )
    return names[0]


def state_types(tree: Any) -> list[str]:
    """Names of the named-tuple nodes of an optimizer state (``["ScaleByAdamState", ...]``)."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, tuple):
            if hasattr(node, "_fields"):
                names.append(type(node).__name__)
            for child in node:
                walk(child)

    walk(tree)
    return names


def _loss_scale_hint(saved: str, mine: str) -> str:
    """Why one optimizer state holds a ``LossScaleState`` and the other not, if so."""
    if ("LossScaleState" in saved) == ("LossScaleState" in mine):
        return ""
    return (
        " (a LossScaleState is the dynamic loss scaling that precision='float16' adds: "
        "resume with the precision the run was saved with)"
    )


def _strip_value(flat: dict) -> dict:
    return {p[:-1] if p and p[-1] == "value" else p: v for p, v in flat.items()}


def _read_item(folder: Path, item: str, parts: dict[str, Any], meta: dict[str, Any]) -> dict:
    where = folder / item if item else folder
    stored = _orbax.shapes(where)
    wanted = trees.wanted(*parts.values())
    value_form = bool(stored) and all(p[-1] == "value" for p in stored)
    value_form = value_form and not all(p[-1] == "value" for p in wanted)
    if value_form:  # nnx.State saved as is (the guide's first form): .../kernel/value
        stored = _strip_value(stored)
    try:
        trees.check_fits(stored, wanted, str(where))
    except CheckpointError as err:
        if item != "opt_state":
            raise
        saved = "/".join(meta.get("optimizer_state", [])) or "unknown"
        mine = "/".join(state_types(parts["opt_state"])) or "none"
        raise CheckpointError(
            f"{where}: saved with another optimizer (state {saved}, this one has {mine}): "
            f"{str(err).split(': ', 1)[1]}{_loss_scale_hint(saved, mine)}"
        ) from None
    target = _union_target(parts)
    if value_form:
        target = trees.nest({(*p, "value"): v for p, v in _flat(target).items()})
    restored = _orbax.read(where, target)
    _crc.verify(restored, meta, item, str(where))
    if value_form:
        restored = trees.nest(_strip_value(_flat(restored)))
    return restored


def _flat(nested: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            out.update(_flat(value, (*prefix, str(key))))
        else:
            out[(*prefix, str(key))] = value
    return out


def _union_target(parts: dict[str, Any]) -> dict:
    return trees.nest(
        {p: v for tree in parts.values() for p, v in _flat(trees.target(tree)).items()}
    )


def read_parts(folder: str | Path, template: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Restores the parts named in ``template`` from the checkpoint ``folder``.

    Returns:
      ``(parts, meta)``: pytrees shaped like the template (host arrays, PRNG keys typed)
      and the folder's metadata (``{}`` for a bare Orbax folder).

    Raises:
      CheckpointError: a damaged or missing file, a future format, or a part that does
        not fit its template (the first mismatching path and both shapes).
    """
    folder = Path(folder).absolute()
    if _legacy.is_legacy(folder):
        if "state" in template:
            raise CheckpointError(f"{folder}: first layout; pass params and rest apart")
        return _legacy.restore(folder, template), _legacy.read_meta(folder)
    bare = is_bare_orbax(folder)
    meta = {} if bare else layout.read_meta(folder)
    by_item: dict[str, dict[str, Any]] = {}
    for part, tree in template.items():
        by_item.setdefault(_ITEM[part], {})[part] = tree
    out = {}
    for item, parts in by_item.items():
        empty = not any(trees.flatten(t)[0] for t in parts.values())
        present = bare or layout.has_item(folder, meta, item)
        if empty and not present:
            out.update(parts)
            continue
        if not present:
            raise CheckpointError(f"{folder}: has no {item!r} item (it holds {meta['items']})")
        restored = _read_item(folder, _bare_item(folder) if bare else item, parts, meta)
        out.update({part: trees.fill(tree, restored) for part, tree in parts.items()})
    return out, meta


__all__ = [
    "is_bare_orbax",
    "is_manager_step",
    "manager_error",
    "manager_items",
    "read_parts",
    "state_types",
]
