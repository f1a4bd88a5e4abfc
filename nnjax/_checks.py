"""Trace-time argument checks shared by the functional ops.

Every check runs on static shapes, so it costs nothing under ``jax.jit``. Shape failures
come from chex's assertions and are raised as :class:`nnjax.errors.ShapeError` (a
``ValueError`` and an ``AssertionError``), with a message that names the op and the
argument, and the expected and actual shapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import chex
import jax
import jax.numpy as jnp

from nnjax.errors import ShapeError

#: An expected shape: sizes, ``None`` for any size, and a leading ``...`` for any number
#: of leading axes.
Shape = Sequence[Any]


def check_shape(op: str, name: str, x: jax.typing.ArrayLike, expected: Shape) -> None:
    """Asserts that ``x`` has shape ``expected`` (``None`` matches any size).

    Args:
      op: the public name of the op doing the check, e.g. ``"dense"``.
      name: the argument's name, e.g. ``"params['kernel']"``.
      x: the array to check.
      expected: the expected shape; ``None`` entries match any size and a leading
        ``...`` matches any number of leading axes.

    Raises:
      ShapeError: naming ``op``, ``name``, the expected and the actual shape.
    """
    shape = jnp.shape(x)
    expected = tuple(expected)
    msg = f"{op}: argument `{name}` has shape {shape}, expected {_fmt(expected)}"
    with _as_shape_error(msg):
        chex.assert_shape(x, expected, custom_message=msg)


def check_rank(op: str, name: str, x: jax.typing.ArrayLike, rank: int | set[int]) -> None:
    """Asserts that ``x`` has rank ``rank`` (an int or a set of allowed ranks)."""
    shape = jnp.shape(x)
    msg = f"{op}: argument `{name}` has shape {shape} (rank {len(shape)}), expected rank {rank}"
    with _as_shape_error(msg):
        chex.assert_rank(x, rank, custom_message=msg)


def check_min_rank(op: str, name: str, x: jax.typing.ArrayLike, rank: int) -> None:
    """Asserts that ``x`` has at least ``rank`` axes."""
    shape = jnp.shape(x)
    if len(shape) < rank:
        raise ShapeError(
            f"{op}: argument `{name}` has shape {shape} (rank {len(shape)}), "
            f"expected rank >= {rank}"
        )


def check_floating(op: str, name: str, x: jax.typing.ArrayLike) -> None:
    """Asserts that ``x`` has a floating dtype."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{op}: argument `{name}` has dtype {dtype}, expected a floating dtype")


def check_window_fits(
    op: str,
    x: jax.typing.ArrayLike,
    window: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
) -> None:
    """Raises unless a sliding window fits the (padded) spatial axes of NHWC ``x``.

    Args:
      op: the public name of the op doing the check.
      x: ``(B, H, W, C)``.
      window: the effective window ``(wh, ww)`` (for a dilated kernel ``(k - 1) * d + 1``).
      padding: ``"SAME"`` (always fits), ``"VALID"`` or ``((top, bottom), (left, right))``.

    Raises:
      ValueError: naming ``op``, the shape of ``x``, the padding and the window.
    """
    if isinstance(padding, str) and padding.upper() == "SAME":
        return
    pads = ((0, 0), (0, 0)) if isinstance(padding, str) else tuple(padding)
    shape = jnp.shape(x)
    for size, w, (lo, hi) in zip(shape[1:3], window, pads):
        if size + lo + hi < w:
            raise ValueError(
                f"{op}: argument `x` has shape {shape}, whose spatial axes (H, W) = "
                f"{tuple(shape[1:3])} with padding {padding!r} are smaller than the window "
                f"{tuple(window)}"
            )


def _fmt(expected: tuple) -> str:
    parts = ["..." if e is ... else "*" if e is None else str(e) for e in expected]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


@contextmanager
def _as_shape_error(msg: str) -> Iterator[None]:
    """Re-raises chex's ``AssertionError`` as :class:`ShapeError` with the message ``msg``."""
    try:
        yield
    except AssertionError as err:
        raise ShapeError(msg) from err
