"""Freezing parameters by path: :func:`freeze` and the prefix selector :func:`by_prefix`.

Split from :mod:`nnjax.train.regularization`, whose path selection they use
(:func:`~nnjax.train.regularization.path_names`, :func:`~nnjax.train.regularization.select`).

Example:
  >>> import optax
  >>> tx = freeze(optax.adam(1e-3), "layers/0")  # fine-tune all but the first layer
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import optax

from nnjax import _checks
from nnjax.train.regularization import Path, PyTree, Where, path_names, select


class _Selector(NamedTuple):
    prefixes: tuple[Path, ...]

    def __call__(self, path: Path, leaf: jax.Array) -> bool:
        del leaf
        return any(path[: len(p)] == p for p in self.prefixes)

    def check_matches(self, op: str, params: PyTree) -> None:
        """Raises ``ValueError`` for a prefix that no leaf of ``params`` lies under."""
        paths = [path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
        for p in self.prefixes:
            if not any(path[: len(p)] == p for path in paths):
                shown = ", ".join("/".join(q) for q in paths[:6]) + ", ..." * (len(paths) > 6)
                raise ValueError(f"{op}: prefix {'/'.join(p)!r} matches no parameter ({shown})")


def _prefix(op: str, name: str, prefix: Any) -> Path:
    """One prefix: a ``"/"``-separated string, or a tuple or list of str or int names."""
    parts = prefix.split("/") if isinstance(prefix, str) else prefix
    if not isinstance(parts, tuple | list) or not all(
        isinstance(n, str) or _checks.is_int(n) for n in parts
    ):
        raise TypeError(
            f"{op}: `{name}` must be a path prefix: a str such as 'layers/0' or a tuple of "
            f"str or int names such as ('layers', 0); got {prefix!r}"
        )
    return tuple(map(str, parts))


def by_prefix(*prefixes: str | Sequence[str | int]) -> Where:
    """A selector for the leaves under any of ``prefixes``.

    Args:
      *prefixes: path prefixes, each a ``"/"``-separated string (``"layers/0"``) or a
        tuple (or list) of names (``("layers", 0)``: ints converted with ``str``), one
        prefix per argument. A prefix matches whole names (``"layers/1"`` selects
        ``layers/1/kernel``, not ``layers/10/...``); with no prefixes nothing is selected.

    Returns:
      ``where(path, leaf) -> bool`` for :func:`select`, :func:`freeze`...: whether
      ``path`` (:func:`path_names`) starts with a prefix (``leaf`` is ignored).

    Raises:
      TypeError: a prefix of another kind (bytes, an int, names that are not str or int).

    Example:
      >>> sel = by_prefix("layers/0")
      >>> sel(("layers", "0", "kernel"), None), sel(("layers", "1", "kernel"), None)
      (True, False)
      >>> select({"body": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}, by_prefix("head"))
      {'body': {'w': False}, 'head': {'w': True}}
    """
    parsed = tuple(_prefix("by_prefix", "prefixes", p) for p in prefixes)
    # mypy does not see a NamedTuple's __call__ when matching it against a Callable.
    return _Selector(parsed)  # type: ignore[return-value]


def freeze(
    tx: optax.GradientTransformation,
    frozen: Where | str | tuple[str | int, ...] | list[str | tuple[str | int, ...]],
) -> optax.GradientTransformation:
    """``tx`` on the trainable leaves; the frozen ones get zero updates (and no state).

    Built from ``optax.multi_transform`` with ``optax.set_to_zero()`` for the label
    ``"frozen"``, as when fine-tuning on top of a pretrained network: the frozen leaves
    stay bit-for-bit unchanged and carry no optimizer state.

    Args:
      tx: the optimizer for the trainable leaves.
      frozen: which leaves to freeze: a predicate ``(path, leaf) -> bool``; one path
        prefix, as one argument of :func:`by_prefix` (``"layers/0"`` or
        ``("layers", 0)``); or a list of such prefixes (``["layers/0", "layers/1"]``).

    Returns:
      An ``optax.GradientTransformation``; labels are computed from the params' paths.

    Raises:
      TypeError: ``frozen`` is none of these (bytes, an int).
      ValueError: from ``init``/``update``: a prefix that matches no parameter (a typo,
        a leading or trailing ``"/"``); the message lists parameter paths.

    Example:
      >>> tx = freeze(optax.sgd(1.0), "body")
      >>> params = {"body": {"kernel": jnp.ones(2)}, "head": {"kernel": jnp.ones(2)}}
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates["body"]["kernel"], updates["head"]["kernel"]
      (Array([0., 0.], dtype=float32), Array([-1., -1.], dtype=float32))
    """
    where: Where | _Selector
    if callable(frozen):
        where = frozen
    else:
        prefixes = frozen if isinstance(frozen, list) else [frozen]
        where = _Selector(tuple(_prefix("freeze", "frozen", p) for p in prefixes))

    def labels(params):
        if isinstance(where, _Selector):  # by_prefix's too
            where.check_matches("freeze", params)
        mask = select(params, where)
        return jax.tree.map(lambda m: "frozen" if m else "trainable", mask)

    return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)


__all__ = ["by_prefix", "freeze"]
