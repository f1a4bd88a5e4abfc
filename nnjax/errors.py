"""Errors that nnjax raises for bad input.

User errors keep Python's usual types: ``TypeError`` for a wrong type, ``ValueError`` for
a wrong value, ``KeyError`` only for a missing mapping key (:class:`MissingKeyError`, a
``ValueError`` too, for a parameter dict without a key the op reads). Wrong array
shapes raise :class:`ShapeError`, which is both a ``ValueError`` (what ``fit`` and other
entry points raise for bad data) and an ``AssertionError`` (what chex's shape assertions
raise), so code written against either keeps working.
"""

from __future__ import annotations

__all__ = ["MissingKeyError", "ShapeError"]


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


class MissingKeyError(KeyError, ValueError):
    """A parameter dict lacks a key that the op reads.

    Both a ``KeyError`` (what a missing mapping key raises, and what nnjax raised
    before: code that catches it keeps working) and a ``ValueError`` (a bad argument,
    as every other error for a bad parameter dict), as :class:`nnjax.errors.ShapeError`
    is both a ``ValueError`` and an ``AssertionError``. Its message reads as written
    (a plain ``KeyError`` shows its message quoted).

    Example:
      >>> import jax.numpy as jnp
      >>> import nnjax.functional as F
      >>> try:
      ...     F.prelu({}, jnp.ones((2, 3)))
      ... except ValueError as err:
      ...     print(type(err).__name__, isinstance(err, KeyError))
      ...     print(err)
      MissingKeyError True
      prelu: `params` has no key 'negative_slope' (it has []); expected keys: 'negative_slope'
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
