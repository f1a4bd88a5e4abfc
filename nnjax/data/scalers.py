"""Feature scaling fitted on training data and applied to any data: min-max and z-score.

Both scalers are affine maps ``x -> (x - center) / scale + shift`` whose statistics are
computed per feature over ``axis`` (the examples axis, 0, by default). A constant
feature gets ``scale = 1`` so it never divides by zero, as in scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nnjax.data._checks import finite_number, is_int


def _nonzero(spread: np.ndarray, center: np.ndarray) -> np.ndarray:
    """``spread`` with (numerically) zero entries replaced by 1: constant features."""
    tiny = np.finfo(np.float64).eps * np.maximum(1.0, np.abs(center))
    return np.where(spread > tiny, spread, 1.0)


def _feature_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without the reduced ``axes``."""
    return tuple(int(d) for i, d in enumerate(shape) if i not in axes)


def _as_float(x: ArrayLike, op: str) -> np.ndarray:
    """``x`` as an array, integers and bools promoted to float32, floats kept.

    Raises:
      TypeError: complex, string, object or other non-real data (the dtype is named).
      ValueError: ``x`` is ragged (not a regular array).
    """
    try:
        x = np.asarray(x)
    except ValueError as err:  # a ragged nested list
        raise ValueError(f"{op}: data is not a regular array: {err}") from None
    kind = x.dtype.kind
    if kind not in "biuf":
        what = "complex" if kind == "c" else "non-numeric"
        raise TypeError(
            f"{op}: data must be real numbers (integer or float), got {what} dtype {x.dtype}"
        )
    if kind != "f":
        x = x.astype(np.float32)
    return x


def _check_axis(op: str, axis: Any) -> int | tuple[int, ...]:
    """``axis`` as an int or a tuple of ints (NumPy ints allowed, bools not)."""
    if is_int(axis):
        return int(axis)
    if isinstance(axis, tuple | list) and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(f"{op}: `axis` must be an int or a tuple of ints, got {axis!r}")


class _AffineScaler:
    """Shared fit/transform logic; subclasses define :meth:`_statistics`."""

    def __init__(self, axis: int | tuple[int, ...] = 0) -> None:
        self.axis = _check_axis(type(self).__name__, axis)
        self.center_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.shift_: float = 0.0
        self._fitted_shape: tuple[int, ...] = ()

    def _statistics(self, x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(center, scale)`` of ``x`` reduced over ``axes``."""
        raise NotImplementedError

    def _axes(self, ndim: int) -> tuple[int, ...]:
        axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
        if any(not -ndim <= a < ndim for a in axes) or len(set(a % ndim for a in axes)) != len(
            axes
        ):
            raise ValueError(
                f"{type(self).__name__}: axis {self.axis} is invalid for data of rank {ndim}"
            )
        return tuple(sorted(a % ndim for a in axes))

    def fit(self, x: ArrayLike) -> _AffineScaler:
        """Computes the per-feature statistics of ``x`` (the training data).

        Args:
          x: an array with at least one example along ``axis``.

        Returns:
          ``self``, fitted.

        Raises:
          ValueError: ``x`` is empty along ``axis``, ragged, contains NaN or infinity,
            or has values so large that the statistics overflow float64.
          TypeError: ``x`` is complex, strings or objects (the dtype is named).
        """
        op = f"{type(self).__name__}.fit"
        x = _as_float(x, op)
        axes = self._axes(x.ndim)
        if x.size == 0 or any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{op}: got empty data of shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{op}: data contains NaN or infinity")
        with np.errstate(over="ignore", invalid="ignore"):
            center, scale = self._statistics(x.astype(np.float64), axes)
        if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale))):
            raise ValueError(
                f"{op}: the statistics of the data overflow float64 (values up to "
                f"{np.abs(x).max():.3g}); rescale the data (e.g. divide by a power of 10) first"
            )
        self.center_, self.scale_ = center, scale
        self._fitted_shape = _feature_shape(x.shape, axes)
        return self

    def _broadcast(self, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        if self.center_ is None:
            raise RuntimeError(f"{type(self).__name__}.{name}: not fitted; call fit(train) first")
        axes = self._axes(x.ndim)
        shape = _feature_shape(x.shape, axes)
        if shape != self._fitted_shape:
            raise ValueError(
                f"{type(self).__name__}.{name}: data of shape {x.shape} has feature shape "
                f"{shape} (axis={self.axis} removed), expected {self._fitted_shape} as in fit"
            )
        assert self.center_ is not None and self.scale_ is not None  # checked above
        return (
            np.expand_dims(self.center_, axes).astype(x.dtype),
            np.expand_dims(self.scale_, axes).astype(x.dtype),
        )

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Scales ``x`` with the fitted statistics; same shape, float dtype.

        Raises:
          RuntimeError: not fitted.
          ValueError: the feature shape differs from ``fit``'s, or ``x`` is ragged.
          TypeError: ``x`` is complex, strings or objects.
        """
        x = _as_float(x, f"{type(self).__name__}.transform")
        center, scale = self._broadcast(x, "transform")
        return ((x - center) / scale + x.dtype.type(self.shift_)).astype(x.dtype)

    def fit_transform(self, x: ArrayLike) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        """Undoes :meth:`transform`; same shape, float dtype (raises as :meth:`transform`)."""
        x = _as_float(x, f"{type(self).__name__}.inverse_transform")
        center, scale = self._broadcast(x, "inverse_transform")
        return ((x - x.dtype.type(self.shift_)) * scale + center).astype(x.dtype)


class MinMaxScaler(_AffineScaler):
    """Maps each feature's training range onto ``feature_range`` (default ``[0, 1]``).

    Args:
      feature_range: the ``(low, high)`` target range, two finite numbers, ``low < high``.
      axis: the axis or axes statistics are taken over (the examples), default 0;
        e.g. ``axis=(0, 1, 2)`` for one range per channel of ``(N, H, W, C)`` images.

    Raises:
      ValueError: ``feature_range`` is not two finite numbers with ``low < high``.
      TypeError: ``axis`` is not an int or a tuple of ints.

    Attributes:
      data_min_, data_max_: the per-feature minimum and maximum seen in ``fit``.

    Example:
      >>> import numpy as np
      >>> s = MinMaxScaler().fit(np.array([[0.0, 10.0], [2.0, 30.0]]))
      >>> s.transform(np.array([[1.0, 20.0]]))
      array([[0.5, 0.5]])
    """

    def __init__(
        self, feature_range: tuple[float, float] = (0.0, 1.0), axis: int | tuple[int, ...] = 0
    ) -> None:
        try:
            low, high = feature_range
            low = finite_number("MinMaxScaler", "feature_range", low)
            high = finite_number("MinMaxScaler", "feature_range", high)
        except (TypeError, ValueError):
            low = high = math.nan
        if not (low < high and math.isfinite(high - low)):
            raise ValueError(
                "MinMaxScaler: `feature_range` must be two finite numbers (low, high) with "
                f"low < high, got {feature_range!r}"
            )
        super().__init__(axis)
        self.feature_range = (float(low), float(high))
        self.shift_ = float(low)

    def _statistics(self, x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        self.data_min_ = x.min(axis=axes)
        self.data_max_ = x.max(axis=axes)
        low, high = self.feature_range
        return self.data_min_, _nonzero(self.data_max_ - self.data_min_, self.data_min_) / (
            high - low
        )


class StandardScaler(_AffineScaler):
    """Standardises each feature to zero mean and unit variance (population std).

    Args:
      axis: the axis or axes statistics are taken over (the examples), default 0.

    Raises:
      TypeError: ``axis`` is not an int or a tuple of ints.

    Attributes:
      mean_, var_: the per-feature mean and variance seen in ``fit``.

    Example:
      >>> import numpy as np
      >>> s = StandardScaler().fit(np.array([[1.0], [3.0]]))
      >>> s.transform(np.array([[1.0], [5.0]]))
      array([[-1.],
             [ 3.]])
    """

    def _statistics(self, x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        self.mean_ = x.mean(axis=axes)
        self.var_ = x.var(axis=axes)
        return self.mean_, _nonzero(np.sqrt(self.var_), self.mean_)
