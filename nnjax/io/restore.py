"""Reading the parts of one checkpoint folder into templates: the one restore path.

A template is ``{"state": nnx.state(model)}`` for a model, or a training state's
``{"params": ..., "opt_state": ..., "rest": ...}`` (``params`` and ``rest`` both live in
the ``state`` item). Besides nnjax's own folders this reads a bare Orbax folder written
by Flax's guide (``nnx.to_pure_dict(state)`` or the ``nnx.State`` itself) and the first
nnjax layout. Every mismatch is checked before any array is read.

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
    """Whether ``path`` is an Orbax folder written without nnjax (e.g. by Flax's guide)."""
    path = Path(path)
    return not (path / layout.META).exists() and (path / "_CHECKPOINT_METADATA").is_file()


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
            f"{str(err).split(': ', 1)[1]}"
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
        restored = _read_item(folder, "" if bare else item, parts, meta)
        out.update({part: trees.fill(tree, restored) for part, tree in parts.items()})
    return out, meta


__all__ = ["is_bare_orbax", "read_parts", "state_types"]
