"""Errors that nnjax raises for bad input.

User errors keep Python's usual types: ``TypeError`` for a wrong type, ``ValueError`` for
a wrong value, ``KeyError`` only for a missing mapping key. Wrong array shapes raise
:class:`ShapeError`, which is both a ``ValueError`` (what ``fit`` and other entry points
raise for bad data) and an ``AssertionError`` (what chex's shape assertions raise), so
code written against either keeps working.
"""

from __future__ import annotations

__all__ = ["ShapeError"]


class ShapeError(ValueError, AssertionError):
    """An array has the wrong shape or rank.

    The message names the op, the argument, the expected and the actual shape.

    Example:
      >>> import jax.numpy as jnp
      >>> import nnjax.functional as F
      >>> params = {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros((2,))}
      >>> try:
      ...     F.dense(params, jnp.zeros((4, 5)))
      ... except ShapeError as err:
      ...     print(type(err).__name__, isinstance(err, ValueError))
      ShapeError True
    """
