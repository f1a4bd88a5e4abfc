"""Group, instance and RMS normalisation, and the parametric ReLU, as Flax NNX modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import _checks
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, check_dtypes, compute_dtype


class _Norm(FunctionalModule):
    """Shared constructor and call; subclasses set ``_init`` and ``_op``."""

    scale: nnx.Param
    bias: nnx.Param | None  # None for RMSNorm

    _init: Callable[..., dict] = staticmethod(F.group_norm_init)
    _op: Callable[..., jax.Array] = staticmethod(F.group_norm)

    def _setup(self, num_features, epsilon, param_dtype, dtype, rngs, **op_kwargs: Any):
        name = type(self).__name__
        self.num_features = _validate.positive_int(name, "num_features", num_features)
        self.epsilon = _validate.epsilon(name, epsilon)
        check_dtypes(name, param_dtype, dtype)
        self.dtype = dtype
        self._op_kwargs = op_kwargs
        self._set_params(
            self._init(rngs.params(), num_features, dtype=param_dtype), optional=("bias",)
        )

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Normalises channels-last ``x`` ``(B, ..., C)``; returns its shape.

        The result has ``x``'s dtype, or the layer's ``dtype`` when one is set.
        """
        x = compute_dtype(x, self.dtype)
        return self._op(self.params(), x, epsilon=self.epsilon, **self._op_kwargs)


class GroupNorm(_Norm):
    """Group normalisation of channels-last inputs, calling :func:`F.group_norm`.

    Args:
      num_features: channels ``C`` (the last axis).
      num_groups: groups of channels; must divide ``C`` (Flax's default 32).
      epsilon: added to the variance.
      param_dtype: dtype of ``scale``/``bias`` (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` (the initialisation is deterministic; required, as in Flax).

    Raises:
      ValueError: ``num_features`` or ``num_groups`` is not a positive int,
        ``num_groups`` does not divide ``num_features``, or ``epsilon`` is not ``> 0``.
      TypeError: a dtype is not floating, or ``rngs`` is not an ``nnx.Rngs``. Calls
        raise as :func:`F.group_norm` (e.g. ``nnjax.ShapeError`` for an ``x`` whose last axis
        is not ``num_features``).

    Example:
      >>> from flax import nnx
      >>> GroupNorm(8, num_groups=4, rngs=nnx.Rngs(0))(jnp.ones((2, 5, 5, 8))).shape
      (2, 5, 5, 8)
    """

    def __init__(self, num_features: int, *, num_groups: int = 32, epsilon: float = 1e-5,
                 param_dtype: jnp.dtype = jnp.float32, dtype: jnp.dtype | None = None,
                 rngs: nnx.Rngs):  # fmt: skip
        num_features = _validate.positive_int("GroupNorm", "num_features", num_features)
        num_groups = _validate.positive_int("GroupNorm", "num_groups", num_groups)
        if num_features % num_groups:
            raise ValueError(
                f"GroupNorm: `num_groups`={num_groups} does not divide "
                f"`num_features`={num_features}"
            )
        self.num_groups = num_groups
        self._setup(num_features, epsilon, param_dtype, dtype, rngs, num_groups=num_groups)


class InstanceNorm(_Norm):
    """Instance normalisation (per example and channel), calling :func:`F.instance_norm`.

    Args:
      num_features: channels ``C``.
      epsilon: added to the variance.
      param_dtype: dtype of ``scale``/``bias`` (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` (required, as in Flax).

    Raises:
      ValueError: ``num_features`` is not a positive int, or ``epsilon`` is not ``> 0``.
      TypeError: a dtype is not floating, or ``rngs`` is not an ``nnx.Rngs``. Calls
        raise as :func:`F.instance_norm` (e.g. ``nnjax.ShapeError`` for an ``x`` whose last axis
        is not ``num_features``).

    Example:
      >>> from flax import nnx
      >>> InstanceNorm(3, rngs=nnx.Rngs(0))(jnp.ones((2, 7, 3))).shape
      (2, 7, 3)
    """

    _init = staticmethod(F.instance_norm_init)
    _op = staticmethod(F.instance_norm)

    def __init__(self, num_features: int, *, epsilon: float = 1e-5,
                 param_dtype: jnp.dtype = jnp.float32, dtype: jnp.dtype | None = None,
                 rngs: nnx.Rngs):  # fmt: skip
        self._setup(num_features, epsilon, param_dtype, dtype, rngs)


class RMSNorm(_Norm):
    """RMS normalisation of the last axis (scale only), calling :func:`F.rms_norm`.

    Args:
      num_features: size ``F`` of the last axis.
      epsilon: added to the mean square (Flax's 1e-6).
      param_dtype: dtype of ``scale`` (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` (required, as in Flax).

    Raises:
      ValueError: ``num_features`` is not a positive int, or ``epsilon`` is not ``> 0``.
      TypeError: a dtype is not floating, or ``rngs`` is not an ``nnx.Rngs``. Calls
        raise as :func:`F.rms_norm` (e.g. ``nnjax.ShapeError`` for an ``x`` whose last axis
        is not ``num_features``).

    Example:
      >>> from flax import nnx
      >>> RMSNorm(4, rngs=nnx.Rngs(0))(jnp.full((2, 4), 3.0)).round(4)
      Array([[1., 1., 1., 1.],
             [1., 1., 1., 1.]], dtype=float32)
    """

    _init = staticmethod(F.rms_norm_init)
    _op = staticmethod(F.rms_norm)

    def __init__(self, num_features: int, *, epsilon: float = 1e-6,
                 param_dtype: jnp.dtype = jnp.float32, dtype: jnp.dtype | None = None,
                 rngs: nnx.Rngs):  # fmt: skip
        self._setup(num_features, epsilon, param_dtype, dtype, rngs)


class PReLU(FunctionalModule):
    """The parametric ReLU with a learnt slope per channel, calling :func:`F.prelu`.

    Args:
      num_parameters: ``1`` (one shared slope) or the channels ``C`` (last axis).
      init: the initial slope (PyTorch's 0.25).
      param_dtype: dtype of the slope (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` (required, as in Flax).

    Raises:
      ValueError: ``num_parameters`` is not a positive int.
      TypeError: ``init`` is not a real number, a dtype is not floating, or ``rngs``
        is not an ``nnx.Rngs``. Calls raise as :func:`F.prelu` (e.g.
        ``nnjax.ShapeError`` for an ``x`` whose last axis is not ``num_parameters``).

    Example:
      >>> from flax import nnx
      >>> PReLU(rngs=nnx.Rngs(0))(jnp.array([[-2.0, 4.0]]))
      Array([[-0.5,  4. ]], dtype=float32)
    """

    negative_slope: nnx.Param

    def __init__(self, num_parameters: int = 1, *, init: float = 0.25,
                 param_dtype: jnp.dtype = jnp.float32, dtype: jnp.dtype | None = None,
                 rngs: nnx.Rngs):  # fmt: skip
        self.num_parameters = _validate.positive_int("PReLU", "num_parameters", num_parameters)
        _checks.check_real("PReLU", "init", init, "the initial slope")
        check_dtypes("PReLU", param_dtype, dtype)
        self.dtype = dtype
        self._set_params(F.prelu_init(rngs.params(), num_parameters, init=init, dtype=param_dtype))

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Applies the activation to ``(..., C)``."""
        return F.prelu(self.params(), compute_dtype(x, self.dtype))
