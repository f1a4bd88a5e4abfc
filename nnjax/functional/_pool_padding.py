"""The padding and ``ceil_mode`` of window pooling: what the pools' formulations receive.

A pooling's ``padding`` is ``"SAME"``, ``"VALID"``, an int (that many on both sides of
every spatial axis, PyTorch's), one int per spatial axis (PyTorch's tuple), or one
``(lo, hi)`` pair per spatial axis (Flax's). :func:`pool_padding` checks it and
normalises it to ``"SAME"``, ``"VALID"`` or a tuple of pairs; :func:`plan` adds
``ceil_mode`` (PyTorch's: the last window may hang past the end) and gives the
formulations (:mod:`nnjax.functional._pool_formulations`) their padding.

Explicit padding is at most half the window per side (``lo, hi <= window // 2``), as
PyTorch requires: then every window holds an element of the input, so no max pool
output is the padding's ``-inf`` and no average excluding the padding divides by zero.
(``"SAME"`` pads satisfy it by construction; Flax does not check it.)

Example:
  >>> pool_padding("max_pool2d", 2, 1, (3, 3))
  ((1, 1), (1, 1))
  >>> pool_padding("max_pool2d", 2, ((0, 1), (1, 0)), (2, 2))
  ((0, 1), (1, 0))
  >>> plan("max_pool1d", (1, 6, 1), (3,), (2,), ((1, 1),), ceil_mode=True)
  PoolPads(padding=((1, 2),), ceil_extra=(1,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from nnjax.functional import _padding

Padding = _padding.Padding
"""The padding of a pool: a mode, an int, one int per spatial axis, or ``(lo, hi)`` pairs."""

Pads = str | tuple[tuple[int, int], ...]
"""What the formulations take: ``"SAME"``, ``"VALID"`` or one ``(lo, hi)`` per spatial axis."""


class PoolPads(NamedTuple):
    """A pool's padding as the formulations take it, with ``ceil_mode``'s extension.

    Attributes:
      padding: ``"SAME"``, ``"VALID"``, or ``(lo, hi)`` per spatial axis, ``hi``
        including ``ceil_extra``.
      ceil_extra: per spatial axis, the positions past the end of the declared padding
        that ``ceil_mode``'s last window covers (zeros without ``ceil_mode``). Average
        pooling never counts them in a window's divisor, as PyTorch.
    """

    padding: Pads
    ceil_extra: tuple[int, ...]


def pool_padding(op: str, nd: int, padding: Any, window: Sequence[int]) -> Pads:
    """``padding`` checked and normalised: ``"SAME"``, ``"VALID"`` or ``nd`` pairs.

    Args:
      op: the public name of the op or layer (errors start with it).
      nd: the number of spatial axes.
      padding: ``"SAME"`` or ``"VALID"`` (any case); an int ``p >= 0`` (``(p, p)`` on
        every axis); ``nd`` ints (``(p, p)`` on each axis); or ``nd`` ``(lo, hi)``
        pairs (an axis may also be one int). Lists, as a saved layer's JSON gives them
        back, are taken as tuples.
      window: the window per spatial axis (``nd`` positive ints).

    Returns:
      ``"SAME"``, ``"VALID"`` or a tuple of ``nd`` ``(lo, hi)`` tuples of ints.

    Raises:
      ValueError: naming ``op``, ``padding`` and the value: an unknown string, a
        negative or non-int size, the wrong number of axes, or a side larger than half
        its window (``window // 2``, PyTorch's limit).

    Example:
      >>> pool_padding("avg_pool3d", 3, (1, 0, 2), (3, 3, 4))
      ((1, 1), (0, 0), (2, 2))
      >>> try:
      ...     pool_padding("max_pool2d", 2, 2, (3, 3))
      ... except ValueError as err:
      ...     print(err)
      max_pool2d: `padding`=2 pads axis 0 by (2, 2), more than half its window 3 (at
      most 1 per side, PyTorch's limit: a window could then cover padding alone)
    """
    pads = _padding.parse(op, nd, padding)
    if isinstance(pads, str):
        return pads
    for axis, ((lo, hi), w) in enumerate(zip(pads, window)):
        if max(lo, hi) > w // 2:
            raise ValueError(
                f"{op}: `padding`={padding!r} pads axis {axis} by {(lo, hi)}, more than half "
                f"its window {w} (at most {w // 2} per side, PyTorch's limit: a window could "
                "then cover padding alone)"
            )
    return pads


def plan(
    op: str,
    x_shape: Sequence[int],
    window: Sequence[int],
    stride: Sequence[int],
    padding: Pads,
    *,
    ceil_mode: bool,
) -> PoolPads:
    """The padding the formulations take, with ``ceil_mode`` applied as PyTorch does.

    Without ``ceil_mode`` an axis of size ``n`` padded ``(lo, hi)`` gives
    ``floor((n + lo + hi - w) / s) + 1`` windows. With it, ``ceil(...)`` instead, less
    one if that last window would start in the high padding (it must start inside the
    input or the low padding); the part of the last window past the padding is
    clipped: it is padded too (``ceil_extra``), never counted in an average.
    ``"SAME"`` (its output is already ``ceil(n / s)``) is unchanged by ``ceil_mode``;
    all-zero explicit padding is ``"VALID"``.

    Args:
      op: the public name of the op (errors start with it).
      x_shape: the input's shape, ``(B, *spatial, C)``.
      window: the window per spatial axis.
      stride: the stride per spatial axis.
      padding: from :func:`pool_padding`.
      ceil_mode: as PyTorch's pooling.

    Returns:
      A :class:`PoolPads`.

    Raises:
      ValueError: if no window fits a padded axis, naming ``op``, the shape, the
        padding and the window.

    Example:
      >>> plan("max_pool1d", (1, 5, 1), (2,), (2,), "VALID", ceil_mode=True)
      PoolPads(padding=((0, 1),), ceil_extra=(1,))
      >>> plan("avg_pool1d", (1, 5, 1), (3,), (2,), ((1, 1),), ceil_mode=True)  # 3 windows fit
      PoolPads(padding=((1, 1),), ceil_extra=(0,))
    """
    spatial = tuple(x_shape[1:-1])
    nd = len(spatial)
    if padding == "SAME":
        return PoolPads("SAME", (0,) * nd)
    pads = ((0, 0),) * nd if isinstance(padding, str) else padding
    # ceil_mode: a window that starts inside the input or the low padding counts
    reach = [n + lo + (s - 1 if ceil_mode else 0) for n, (lo, _), s in zip(spatial, pads, stride)]
    if any(r + hi < w or n == 0 for r, (_, hi), w, n in zip(reach, pads, window, spatial)):
        raise ValueError(
            f"{op}: argument `x` has shape {tuple(x_shape)}, whose spatial axes {spatial} "
            f"with padding {padding!r} are smaller than the window {tuple(window)}"
            + (" (with ceil_mode)" if ceil_mode else "")
        )
    extra = (0,) * nd
    if ceil_mode:
        extra = tuple(
            _ceil_extra(n, lo, hi, w, s) for n, (lo, hi), w, s in zip(spatial, pads, window, stride)
        )
    if not any(extra) and not any(lo or hi for lo, hi in pads):
        return PoolPads("VALID", extra)
    return PoolPads(tuple((lo, hi + e) for (lo, hi), e in zip(pads, extra)), extra)


def _ceil_extra(n: int, lo: int, hi: int, w: int, s: int) -> int:
    """Positions past ``hi`` that ``ceil_mode``'s last window covers on one axis."""
    out = -(-(n + lo + hi - w) // s) + 1  # ceil
    if (out - 1) * s >= n + lo:  # the last window would start in the high padding
        out -= 1
    return max(0, (out - 1) * s + w - (n + lo + hi))


__all__ = ["Padding", "Pads", "PoolPads", "plan", "pool_padding"]
