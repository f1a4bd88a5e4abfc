"""Max/average pooling (1-D, 3-D; 2-D in :mod:`nnjax.nn.pooling`) and global pooling."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

import nnjax.functional as F
from nnjax import _checks
from nnjax.functional._pool_padding import Padding, pool_padding
from nnjax.nn import _validate
from nnjax.nn._base import recorded

Size = int | tuple[int, ...]
Rngs = nnx.Rngs | nnx.RngStream | None


class _Pool(nnx.Module):
    """Window pooling; subclasses set ``_op`` (an ``F.*_pool{1,2,3}d``)."""

    _op: Callable[..., jax.Array] = staticmethod(F.max_pool1d)
    _nd: int = 1  # spatial axes

    def __init__(self, window_shape: Size = 2, stride: Size | None = None,
                 padding: Padding = "VALID", *, ceil_mode: bool = False,
                 rngs: Rngs = None):  # fmt: skip
        del rngs  # accepted for a uniform layer signature (DESIGN: every layer takes rngs)
        name = type(self).__name__
        self.window_shape = _validate.positive_ints(
            name, "window_shape", window_shape, allow_empty=False
        )
        self.stride = stride if stride is None else _validate.positive_ints(name, "stride", stride)
        for arg, value in (("window_shape", self.window_shape), ("stride", self.stride)):
            if value is not None and len(value) not in (1, self._nd):
                raise ValueError(
                    f"{name}: `{arg}` must be an int or {self._nd} ints (one per spatial "
                    f"axis), got {value!r}"
                )
        window = self.window_shape * (self._nd if len(self.window_shape) == 1 else 1)
        # "SAME", "VALID" or (lo, hi) per axis: checked now, so a bad layer is never built
        self.padding = pool_padding(name, self._nd, padding, window)
        self.ceil_mode = _checks.check_static_bool(name, "ceil_mode", ceil_mode)

    def _kwargs(self) -> dict:
        """The functional op's keywords: Flax's ``window_shape`` is its ``window``."""
        unwrap = lambda v: v[0] if v is not None and len(v) == 1 else v
        return {
            "window": unwrap(self.window_shape),
            "stride": unwrap(self.stride),
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
        }

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Pools channels-last ``x``: ``(B, *spatial, C) -> (B, *pooled, C)``, same dtype.

        Each pooled size is ``floor((n + lo + hi - window) / stride) + 1`` (``ceil`` with
        ``ceil_mode``) for padding ``(lo, hi)`` (``"VALID"``: none) and ``ceil(n /
        stride)`` with ``"SAME"``; ``C`` is unchanged.
        """
        return self._op(x, **self._kwargs())


_POOL_ARGS = """
    Args:
      window_shape: an int or one size per spatial axis (the functional op's ``window``).
      stride: step between windows; ``None`` means ``window_shape``.
      padding: ``"VALID"``, ``"SAME"``, an int (both sides of every spatial axis, as
        PyTorch's), one int per spatial axis, or one ``(lo, hi)`` pair per axis (Flax's);
        at most ``window // 2`` per side, as in PyTorch.
      ceil_mode: PyTorch's (``ceil`` in the output size; see the functional op).
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.
"""

_POOL_RAISES = """
    Raises:
      ValueError: ``window_shape`` or ``stride`` is not a positive int (or one per
        spatial axis), or a bad ``padding`` (as the functional op's).
      TypeError: ``ceil_mode`` is not a bool, or ``rngs`` is none of ``nnx.Rngs``,
        ``nnx.RngStream``, ``None``. Calls raise as the functional op
        (``nnjax.ShapeError`` for an input of another rank).
"""
_AVG_POOL_RAISES = _POOL_RAISES.replace(
    "TypeError: ``ceil_mode``", "TypeError: ``count_include_pad`` or ``ceil_mode``"
)


@recorded
class MaxPool1D(_Pool):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Max pooling over ``(B, T, C)``, calling :func:`F.max_pool1d`.\n"
        + _POOL_ARGS
        + _POOL_RAISES
        + """
    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool1D(2)(jnp.ones((1, 8, 3))).shape
      (1, 4, 3)
"""
    )


@recorded
class MaxPool3D(_Pool):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Max pooling over ``(B, D, H, W, C)``, calling :func:`F.max_pool3d`.\n"
        + _POOL_ARGS
        + _POOL_RAISES
        + """
    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool3D(2)(jnp.ones((1, 4, 4, 4, 3))).shape
      (1, 2, 2, 2, 3)
"""
    )
    _op = staticmethod(F.max_pool3d)
    _nd = 3


class _AvgPool(_Pool):
    """Average pooling: window pooling with ``count_include_pad``."""

    def __init__(self, window_shape: Size = 2, stride: Size | None = None,
                 padding: Padding = "VALID", *, ceil_mode: bool = False,
                 count_include_pad: bool = False, rngs: Rngs = None):  # fmt: skip
        super().__init__(window_shape, stride, padding, ceil_mode=ceil_mode)
        self.count_include_pad = _checks.check_static_bool(
            type(self).__name__, "count_include_pad", count_include_pad
        )

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Pools channels-last ``x``: ``(B, *spatial, C) -> (B, *pooled, C)``, same dtype.

        Pooled sizes as for max pooling; floating inputs only (the mean of a window).
        """
        return self._op(x, **self._kwargs(), count_include_pad=self.count_include_pad)


@recorded
class AvgPool1D(_AvgPool):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Average pooling over ``(B, T, C)``, calling :func:`F.avg_pool1d`.\n"
        + _POOL_ARGS
        + """      count_include_pad: whether padding counts in a window's divisor
        (``False``; PyTorch's default is ``True``).
"""
        + _AVG_POOL_RAISES
        + """
    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool1D(3, 1, "SAME")(jnp.ones((1, 8, 3))).shape
      (1, 8, 3)
"""
    )
    _op = staticmethod(F.avg_pool1d)


@recorded
class AvgPool3D(_AvgPool):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Average pooling over ``(B, D, H, W, C)``, calling :func:`F.avg_pool3d`.\n"
        + _POOL_ARGS
        + """      count_include_pad: whether padding counts in a window's divisor
        (``False``; PyTorch's default is ``True``).
"""
        + _AVG_POOL_RAISES
        + """
    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool3D((2, 2, 1))(jnp.ones((1, 4, 4, 4, 3))).shape
      (1, 2, 2, 4, 3)
"""
    )
    _op = staticmethod(F.avg_pool3d)
    _nd = 3


class _GlobalPool(nnx.Module):
    _op: Callable[..., jax.Array] = staticmethod(F.global_avg_pool)

    def __init__(self, *, keepdims: bool = False, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature
        self.keepdims = _checks.check_static_bool(type(self).__name__, "keepdims", keepdims)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, ..., C)`` to ``(B, C)`` (or keeps size-1 spatial axes)."""
        return self._op(x, keepdims=self.keepdims)


@recorded
class GlobalAvgPool(_GlobalPool):
    """Averages over every spatial axis, calling :func:`F.global_avg_pool`.

    Args:
      keepdims: keep the spatial axes as size 1.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      TypeError: ``keepdims`` is not a bool, or ``rngs`` is none of ``nnx.Rngs``,
        ``nnx.RngStream``, ``None``. Calls raise as the functional op
        (``nnjax.ShapeError`` for an input of rank < 3).

    Example:
      >>> import jax.numpy as jnp
      >>> GlobalAvgPool()(jnp.ones((2, 5, 5, 3))).shape
      (2, 3)
    """


@recorded
class GlobalMaxPool(_GlobalPool):
    """Takes the maximum over every spatial axis, calling :func:`F.global_max_pool`.

    Args:
      keepdims: keep the spatial axes as size 1.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      TypeError: ``keepdims`` is not a bool, or ``rngs`` is none of ``nnx.Rngs``,
        ``nnx.RngStream``, ``None``. Calls raise as the functional op
        (``nnjax.ShapeError`` for an input of rank < 3).

    Example:
      >>> import jax.numpy as jnp
      >>> GlobalMaxPool(keepdims=True)(jnp.ones((2, 6, 3))).shape
      (2, 1, 3)
    """

    _op = staticmethod(F.global_max_pool)
