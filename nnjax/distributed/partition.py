"""Partition specs for pytrees of parameters: FSDP and rules per parameter path.

Two ways to say how each leaf of a parameter pytree is laid out on a mesh:

* :func:`fsdp_specs` (ZeRO-3 / FSDP): every leaf is split along one dimension over an
  axis (``'data'``). The rule: the **largest** dimension whose size the axis size
  divides (the first such on ties); a leaf with no such dimension (a scalar, a bias
  of odd length) stays replicated. The rule looks only at shapes, so an optimizer's
  moments (the same shapes) get the same layout as their parameters.
* :func:`rule_specs` (tensor parallelism): a sequence of ``(regex, PartitionSpec)``;
  a leaf takes the spec of the first rule whose pattern :func:`re.search` es its path
  (``"layers/0/kernel"``: keys joined by ``/``); unmatched leaves are replicated.

:func:`follow_specs` gives another pytree (an optimizer state) the specs of the
parameters its leaves mirror (same path suffix, same shape). Nothing here knows
models or training.

Example:
  >>> import numpy as np
  >>> params = {"kernel": np.zeros((8, 3)), "bias": np.zeros(3)}
  >>> fsdp_specs(params, 4)
  {'bias': P(), 'kernel': P('data', None)}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

__all__ = [
    "Rules",
    "check_rules",
    "follow_specs",
    "fsdp_spec",
    "fsdp_specs",
    "path_of",
    "rule_specs",
]

Rules = Sequence[tuple[str, P]]
"""Partition rules: ``(regex over the parameter path, PartitionSpec)`` pairs, first match wins."""


def path_of(path: Sequence[Any]) -> str:
    """A key path as ``"layers/0/kernel"`` (the ``.value`` of an ``nnx.Variable`` left out).

    Example:
      >>> from jax.tree_util import DictKey, GetAttrKey, SequenceKey
      >>> path_of((DictKey("layers"), SequenceKey(0), GetAttrKey("value")))
      'layers/0'
    """
    keys = tuple(path)
    if keys and keys[-1] == jax.tree_util.GetAttrKey("value"):
        keys = keys[:-1]
    return jax.tree_util.keystr(keys, simple=True, separator="/")


def fsdp_spec(shape: Sequence[int], axis_size: int, axis: str = "data") -> P:
    """The FSDP spec of one leaf: its largest dimension that ``axis_size`` divides.

    Ties go to the first such dimension; a leaf with none (or ``axis_size <= 1``) is
    replicated.

    Args:
      shape: the leaf's shape.
      axis_size: the number of devices along ``axis``.
      axis: the mesh axis to shard over.

    Returns:
      A ``PartitionSpec`` of ``len(shape)`` entries (``axis`` once, else ``None``), or
      ``P()`` (replicated).

    Example:
      >>> fsdp_spec((3, 8), 4), fsdp_spec((3,), 4), fsdp_spec((), 4)
      (P(None, 'data'), P(), P())
    """
    fits = [d for d, size in enumerate(shape) if size >= axis_size and size % axis_size == 0]
    if axis_size <= 1 or not fits:
        return P()
    dim = max(fits, key=lambda d: (shape[d], -d))
    return P(*(axis if d == dim else None for d in range(len(shape))))


def fsdp_specs(tree: Any, axis_size: int, axis: str = "data") -> Any:
    """:func:`fsdp_spec` of every leaf of ``tree`` (arrays or shape-dtype structs)."""
    return jax.tree.map(lambda leaf: fsdp_spec(np.shape(leaf), axis_size, axis), tree)


def check_rules(rules: Any, axis_sizes: Mapping[str, int]) -> list[tuple[re.Pattern, P]]:
    """Compiled ``(pattern, spec)`` rules; names a bad rule or an axis not in the mesh.

    Example:
      >>> check_rules([("kernel", P(None, "model"))], {"data": 2, "model": 2})[0][1]
      P(None, 'model')
    """
    if isinstance(rules, str | bytes) or not isinstance(rules, Sequence):
        raise TypeError(
            f"partition rules must be a sequence of (regex, PartitionSpec) pairs, got {rules!r}"
        )
    out = []
    for rule in rules:
        if not (isinstance(rule, tuple | list) and len(rule) == 2 and isinstance(rule[1], P)):
            raise TypeError(f"a partition rule must be a (regex, PartitionSpec) pair, got {rule!r}")
        pattern, spec = rule
        for entry in spec:
            for name in entry if isinstance(entry, tuple) else (entry,):
                if name is not None and name not in axis_sizes:
                    raise ValueError(
                        f"partition rule {pattern!r}: axis {name!r} of {spec} is not an axis of "
                        f"the mesh, whose axes are {tuple(axis_sizes)}"
                    )
        try:
            out.append((re.compile(pattern), spec))
        except (re.error, TypeError) as err:
            raise ValueError(f"partition rule pattern {pattern!r} is not a regex: {err}") from None
    return out


def _axis_size(entry: Any, axis_sizes: Mapping[str, int]) -> int:
    names = entry if isinstance(entry, tuple) else (entry,)
    return int(np.prod([axis_sizes[n] for n in names if n is not None]))


def _check_fits(path: str, shape: Sequence[int], spec: P, axis_sizes: Mapping[str, int]) -> None:
    if len(spec) > len(shape):
        raise ValueError(
            f"partition spec {spec} for {path!r} has {len(spec)} entries, but the leaf has "
            f"shape {tuple(shape)}"
        )
    for dim, entry in enumerate(spec):
        size = _axis_size(entry, axis_sizes)
        if shape[dim] % size:
            raise ValueError(
                f"partition spec {spec} for {path!r}: dimension {dim} of shape {tuple(shape)} "
                f"is not divisible by the {entry!r} axis size {size}"
            )


def rule_specs(tree: Any, rules: Rules, axis_sizes: Mapping[str, int]) -> Any:
    """The spec of each leaf from the first matching rule (unmatched: replicated).

    Args:
      tree: the parameter pytree (arrays or shape-dtype structs); each leaf's path is
        matched as ``"layers/0/kernel"`` (:func:`path_of`).
      rules: :data:`Rules`, ``(regex, PartitionSpec)`` pairs searched in order.
      axis_sizes: the mesh's axis sizes, e.g. ``{"data": 2, "model": 2}``.

    Returns:
      A pytree of ``PartitionSpec`` with the structure of ``tree`` (``P()`` where no rule
      matches).

    Raises:
      TypeError: ``rules`` is not a sequence of ``(regex, PartitionSpec)`` pairs.
      ValueError: a rule that matches no leaf (listing the paths), an axis not in
        ``axis_sizes``, a spec longer than its leaf's rank or not dividing its shape.

    Example:
      >>> params = {"layers": [{"kernel": np.zeros((4, 8))}]}
      >>> rule_specs(params, [(r"kernel$", P(None, "model"))], {"data": 2, "model": 2})
      {'layers': [{'kernel': P(None, 'model')}]}
    """
    compiled = check_rules(rules, axis_sizes)
    used = [False] * len(compiled)

    def spec_of(path: Any, leaf: Any) -> P:
        name = path_of(path)
        for i, (pattern, spec) in enumerate(compiled):
            if pattern.search(name):
                used[i] = True
                _check_fits(name, np.shape(leaf), spec, axis_sizes)
                return spec
        return P()

    specs = jax.tree_util.tree_map_with_path(spec_of, tree)
    unused = [compiled[i][0].pattern for i, hit in enumerate(used) if not hit]
    if unused:
        paths = [path_of(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
        raise ValueError(
            f"partition rules {unused} match no parameter; the parameter paths are: "
            f"{', '.join(paths)}"
        )
    return specs


def follow_specs(tree: Any, reference: Any, specs: Any) -> Any:
    """Specs for ``tree`` whose leaves mirror leaves of ``reference`` (an optimizer state).

    A leaf of ``tree`` takes the spec of the ``reference`` leaf whose path is the
    longest suffix of its own among those whose shape equals its own (Adam's
    ``mu/sub/kernel`` follows ``sub/kernel``, not a root-level ``kernel`` of the same
    shape); any other leaf (step counts, hyperparameters) is replicated.

    Example:
      >>> params = {"w": np.zeros((4, 2))}
      >>> opt = ({"count": np.zeros(())}, {"mu": {"w": np.zeros((4, 2))}})
      >>> follow_specs(opt, params, {"w": P("data")})
      ({'count': P()}, {'mu': {'w': P('data',)}})
    """
    flat_ref = jax.tree_util.tree_flatten_with_path(reference)[0]
    flat_specs = jax.tree.leaves(specs, is_leaf=lambda s: isinstance(s, P))
    table = [
        (tuple(path), np.shape(leaf), spec) for (path, leaf), spec in zip(flat_ref, flat_specs)
    ]

    def spec_of(path: Any, leaf: Any) -> P:
        path, shape = tuple(path), np.shape(leaf)
        found, longest = P(), -1
        for ref_path, ref_shape, spec in table:
            fits = len(ref_path) <= len(path) and path[len(path) - len(ref_path) :] == ref_path
            if fits and shape == ref_shape and len(ref_path) > longest:
                found, longest = spec, len(ref_path)
        return found

    return jax.tree_util.tree_map_with_path(spec_of, tree)
