"""Reads checkpoints of nnjax 0.1's first layout, for migration only (private).

That layout (before :mod:`nnjax.io`) wrote each training-state part (``params``,
``opt_state``, ``rest``) as its own Orbax item, the leaves flattened in
:func:`jax.tree.leaves` order under the keys ``"00000", "00001", ...``, and the leaf
paths plus the run's metadata as JSON in ``meta/metadata``. Its step folders are named
by the 0-based epoch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np

from nnjax.io import _orbax, trees
from nnjax.io.errors import CheckpointError


def is_legacy(step: Path) -> bool:
    """Whether ``step`` is a step folder of the first layout."""
    return (Path(step) / "meta" / "metadata").is_file() and not (Path(step) / "nnjax.json").exists()


def read_meta(step: Path) -> dict[str, Any]:
    """The JSON metadata of a first-layout step folder."""
    path = Path(step).absolute() / "meta" / "metadata"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({_orbax.short(err)})") from None


def _slashed(keystr: str) -> str:
    """``"['layers'][0]['bias'].value"`` -> ``"layers/0/bias"``."""
    text = keystr.removesuffix(".value").replace(".", "/")
    return re.sub(r"\[['\"]?([^\]'\"]+)['\"]?\]", r"/\1", text).lstrip("/")


def restore(step: Path, template: dict[str, Any]) -> dict[str, Any]:
    """The parts named in ``template`` (``params``/``opt_state``/``rest``), host arrays.

    Raises:
      CheckpointError: a part does not fit its template (names the path and shapes).
    """
    step = Path(step).absolute()
    meta = read_meta(step)
    out = {}
    for part, tree in template.items():
        pairs, treedef = trees.flatten(tree)
        paths = meta["paths"].get(part, [])
        if len(paths) != len(pairs):
            raise CheckpointError(
                f"{step / part}: {len(paths)} arrays in the checkpoint but {len(pairs)} in the "
                f"model ({'another optimizer?' if part == 'opt_state' else 'another model?'})"
            )
        if not pairs:
            out[part] = tree
            continue
        target = {f"{i:05d}": np.zeros(*trees.spec(leaf)) for i, (_, leaf) in enumerate(pairs)}
        stored = _orbax.shapes(step / part)
        for i, (_, leaf) in enumerate(pairs):
            have, want = stored.get((f"{i:05d}",), ((), "")), trees.spec(leaf)
            if tuple(have[0]) != tuple(want[0]):
                raise CheckpointError(
                    f"{step / part}: {_slashed(paths[i])} has shape {have[0]} in the "
                    f"checkpoint but {want[0]} in the model"
                )
        arrays = _orbax.read(step / part, target)
        leaves = []
        for i, (_, leaf) in enumerate(pairs):
            value = np.asarray(arrays[f"{i:05d}"])
            if trees.is_key(leaf):
                # wrap_key_data takes host key data too; its annotation says jax.Array.
                value = jax.random.wrap_key_data(
                    value,  # type: ignore[arg-type]
                    impl=jax.random.key_impl(leaf),
                )
            leaves.append(value)
        out[part] = jax.tree.unflatten(treedef, leaves)
    return out


__all__ = ["is_legacy", "read_meta", "restore"]
