"""The compile groups of a sweep: members with equal ``model_fn`` arguments.

Members whose ``model_fn`` hyperparameters are equal build the same model graph, so
they share one compiled program; :func:`groups` collects them (in first-seen order, at
most ``size`` per group) and :func:`hashable` makes their values comparable.
Re-exported by :mod:`nnjax.train.sweep_space`.

Example:
  >>> [idx.tolist() for idx, _ in groups({"w": [4, 4, 4]}, ["w"], 3, 2)]
  [[0, 1], [2]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def groups(
    hp: Mapping[str, list], model_names: Sequence[str], m: int, size: int | None
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Member indices and shared ``model_fn`` arguments of each group, in first-seen order.

    Members with equal ``model_fn`` arguments share a group, split into groups of at
    most ``size`` members (``None``: no limit).

    Example:
      >>> [(idx.tolist(), s) for idx, s in groups({"w": [4, 8, 4]}, ["w"], 3, None)]
      [([0, 2], {'w': 4}), ([1], {'w': 8})]
    """
    by_key: dict[Any, list[int]] = {}
    for i in range(m):
        by_key.setdefault(hashable(tuple(hp[n][i] for n in model_names)), []).append(i)
    out = []
    for idx in by_key.values():
        structure = {n: hp[n][idx[0]] for n in model_names}
        step_ = size or len(idx)
        out += [(np.asarray(idx[s : s + step_]), structure) for s in range(0, len(idx), step_)]
    return out


def hashable(value: Any) -> Any:
    """A hashable stand-in for a model_fn value (lists become tuples), for grouping.

    Example:
      >>> hashable([64, [32]])
      (64, (32,))
    """
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return value
