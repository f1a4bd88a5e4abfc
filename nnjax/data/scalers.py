"""Feature scaling fitted on training data and applied to any data: min-max and z-score.

Both scalers are affine maps ``x -> (x - center_) / scale_ + shift_`` whose statistics
are computed per feature over ``axis`` (the examples axis, 0, by default), in float64. A
constant feature gets ``scale_ = 1`` so it never divides by zero, as in scikit-learn:
for :class:`MinMaxScaler` a feature whose minimum equals its maximum, for
:class:`StandardScaler` one whose variance is within rounding error of zero
(scikit-learn's test, relative to the mean, so tiny-valued features still scale).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nnjax.data._checks import finite_number, is_int

_EPS = np.finfo(np.float64).eps


def _nonzero(spread: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """``spread`` with the entries of ``constant`` features replaced by 1."""
    return np.where(constant, 1.0, spread)


def _feature_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without the reduced ``axes``."""
    return tuple(int(d) for i, d in enumerate(shape) if i not in axes)


def _as_real(x: ArrayLike, op: str) -> np.ndarray:
    """``x`` as an array of real numbers (bool, integer or float), its dtype kept.

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
    return x


def _work_dtypes(dtype: np.dtype) -> tuple[np.dtype, np.dtype]:
    """``(arithmetic, output)`` dtypes of a transform of ``dtype`` data.

    Floats keep their dtype, computed in float32 at least (float16 would round the
    statistics, and overflow beyond 65504). Integers and bools become float32, computed
    in float64: float32 would round large integers (timestamps ~1.7e9) before the
    centre is subtracted.
    """
    if dtype.kind == "f":
        return np.promote_types(dtype, np.float32), dtype
    return np.dtype(np.float64), np.dtype(np.float32)


def _check_axis(op: str, axis: Any) -> int | tuple[int, ...]:
    """``axis`` as an int or a non-empty tuple of ints (NumPy ints allowed, bools not)."""
    if is_int(axis):
        return int(axis)
    if isinstance(axis, tuple | list) and all(is_int(a) for a in axis):
        if not axis:
            raise ValueError(
                f"{op}: `axis` must name at least one axis (the examples), got {axis!r}"
            )
        return tuple(int(a) for a in axis)
    raise TypeError(f"{op}: `axis` must be an int or a tuple of ints, got {axis!r}")


def _affine(
    x: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    shift: float,
    inverse: bool,
    dtype: np.dtype,
) -> np.ndarray:
    """``(x - center) / scale + shift`` (or its inverse) computed in ``dtype``."""
    x, center, scale = x.astype(dtype, copy=False), center.astype(dtype), scale.astype(dtype)
    if inverse:
        return (x - dtype.type(shift)) * scale + center
    return (x - center) / scale + dtype.type(shift)


class _AffineScaler:
    """Shared fit/transform logic; subclasses define :meth:`_statistics`."""

    def __init__(self, axis: int | tuple[int, ...] = 0) -> None:
        self.axis = _check_axis(type(self).__name__, axis)
        self.center_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.shift_: float = 0.0
        self._fitted_shape: tuple[int, ...] = ()

    def _statistics(
        self, x: np.ndarray, axes: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(center, scale, other)`` of float64 ``x`` reduced over ``axes``.

        ``other`` is the subclass's second statistic (the maximum, the variance), kept
        with ``center`` by :meth:`_keep`.
        """
        raise NotImplementedError

    def _keep(self, center: np.ndarray, other: np.ndarray) -> None:
        """Sets the subclass's public statistics (``data_min_``, ``mean_``...)."""
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
          ``self``, fitted. A failed ``fit`` leaves the scaler as it was.

        Raises:
          ValueError: ``x`` is empty along ``axis``, ragged, contains NaN or infinity,
            has values so large that the statistics overflow float64, or has too few
            dimensions for ``axis``.
          TypeError: ``x`` is complex, strings or objects (the dtype is named).
        """
        op = f"{type(self).__name__}.fit"
        x = _as_real(x, op)
        axes = self._axes(x.ndim)
        if x.size == 0 or any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{op}: got empty data of shape {x.shape}")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise ValueError(f"{op}: data contains NaN or infinity")
        with np.errstate(over="ignore", invalid="ignore"):
            center, scale, other = self._statistics(x.astype(np.float64), axes)
        if not all(np.all(np.isfinite(v)) for v in (center, scale, other)):
            raise ValueError(
                f"{op}: the statistics of the data overflow float64 (values up to "
                f"{np.abs(x).max():.3g}); rescale the data (e.g. divide by a power of 10) first"
            )
        self.center_, self.scale_ = center, scale
        self._keep(center, other)
        self._fitted_shape = _feature_shape(x.shape, axes)
        return self

    def _apply(self, data: ArrayLike, name: str, *, inverse: bool) -> np.ndarray:
        """:meth:`transform` (or its inverse) of ``data``, in the float dtype of ``data``.

        The arithmetic runs in the first dtype of :func:`_work_dtypes`, and again in
        float64 when float32 overflows (a feature whose range exceeds float32's).
        """
        op = f"{type(self).__name__}.{name}"
        x = _as_real(data, op)
        if self.center_ is None or self.scale_ is None:
            raise RuntimeError(f"{op}: not fitted; call fit(train) first")
        axes = self._axes(x.ndim)
        shape = _feature_shape(x.shape, axes)
        if shape != self._fitted_shape:
            raise ValueError(
                f"{op}: data of shape {x.shape} has feature shape {shape} (axis={self.axis} "
                f"removed), expected {self._fitted_shape} as in fit"
            )
        center = np.expand_dims(self.center_, axes)
        scale = np.expand_dims(self.scale_, axes)
        work, dtype = _work_dtypes(x.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            out = _affine(x, center, scale, self.shift_, inverse, work)
            if work.itemsize < 8 and not np.all(np.isfinite(out)):
                out = _affine(x, center, scale, self.shift_, inverse, np.dtype(np.float64))
            return out.astype(dtype, copy=False)

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Scales ``x`` with the fitted statistics; same shape, float dtype.

        Float data keeps its dtype; integer and bool data becomes float32 (computed in
        float64 from the exact values). NaN passes through as NaN, as in scikit-learn.

        Raises:
          RuntimeError: not fitted.
          ValueError: the feature shape differs from ``fit``'s, or ``x`` is ragged.
          TypeError: ``x`` is complex, strings or objects.
        """
        return self._apply(x, "transform", inverse=False)

    def fit_transform(self, x: ArrayLike) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        """Undoes :meth:`transform`; same shape, float dtype (raises as :meth:`transform`)."""
        return self._apply(x, "inverse_transform", inverse=True)


class MinMaxScaler(_AffineScaler):
    """Maps each feature's training range onto ``feature_range`` (default ``[0, 1]``).

    A feature whose training minimum equals its maximum maps to ``feature_range[0]``.

    Args:
      feature_range: the ``(low, high)`` target range, two finite numbers, ``low < high``.
      axis: the axis or axes statistics are taken over (the examples), default 0;
        e.g. ``axis=(0, 1, 2)`` for one range per channel of ``(N, H, W, C)`` images.

    Raises:
      ValueError: ``feature_range`` is not two finite numbers with ``low < high``, or
        ``axis`` is an empty tuple.
      TypeError: ``axis`` is not an int or a tuple of ints.

    Attributes:
      data_min_, data_max_: the per-feature minimum and maximum seen in ``fit``.
      center_, scale_, shift_: the map ``(x - center_) / scale_ + shift_``:
        ``center_`` is ``data_min_``, ``scale_`` is ``(data_max_ - data_min_) /
        (high - low)`` (the reciprocal of scikit-learn's ``scale_``) and ``shift_`` is
        ``low``.

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
        self.data_min_: np.ndarray | None = None
        self.data_max_: np.ndarray | None = None

    def _statistics(
        self, x: np.ndarray, axes: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        data_min, data_max = x.min(axis=axes), x.max(axis=axes)
        spread = data_max - data_min  # exact: zero only for a constant feature
        low, high = self.feature_range
        return data_min, _nonzero(spread, spread == 0) / (high - low), data_max

    def _keep(self, center: np.ndarray, other: np.ndarray) -> None:
        self.data_min_, self.data_max_ = center, other


class StandardScaler(_AffineScaler):
    """Standardises each feature to zero mean and unit variance (population std).

    A feature whose variance is within rounding error of zero (scikit-learn's test,
    ``var <= n * eps * var + (n * eps * mean)**2`` for ``n`` examples) is constant: it
    maps to 0.

    Args:
      axis: the axis or axes statistics are taken over (the examples), default 0.

    Raises:
      ValueError: ``axis`` is an empty tuple.
      TypeError: ``axis`` is not an int or a tuple of ints.

    Attributes:
      mean_, var_: the per-feature mean and variance (``ddof=0``) seen in ``fit``.
      center_, scale_: ``mean_`` and the standard deviation (1 for a constant
        feature), as scikit-learn's ``mean_`` and ``scale_``.

    Example:
      >>> import numpy as np
      >>> s = StandardScaler().fit(np.array([[1.0], [3.0]]))
      >>> s.transform(np.array([[1.0], [5.0]]))
      array([[-1.],
             [ 3.]])
    """

    def __init__(self, axis: int | tuple[int, ...] = 0) -> None:
        super().__init__(axis)
        self.mean_: np.ndarray | None = None
        self.var_: np.ndarray | None = None

    def _statistics(
        self, x: np.ndarray, axes: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        n = math.prod(x.shape[a] for a in axes)
        constant = var <= n * _EPS * var + (n * _EPS * mean) ** 2
        return mean, _nonzero(np.sqrt(var), constant), var

    def _keep(self, center: np.ndarray, other: np.ndarray) -> None:
        self.mean_, self.var_ = center, other
