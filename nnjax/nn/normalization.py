"""Batch and layer normalisation as Flax NNX modules."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import nnjax.functional as F
from nnjax import _checks
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, check_dtypes, compute_dtype


class BatchNorm(FunctionalModule):
    """Batch normalisation over the last axis, calling :func:`F.batch_norm`.

    ``scale``/``bias`` are ``nnx.Param``; the running ``mean``/``var`` are
    ``nnx.BatchStat``, updated in place while ``use_running_average`` is ``False``
    (``model.train()``) and used as-is once it is ``True`` (``model.eval()``).

    The running statistics follow ``flax.nnx.BatchNorm`` exactly: ``new = momentum *
    old + (1 - momentum) * batch``, with the **biased** batch variance (divided by
    ``N``). PyTorch's ``BatchNorm`` differs in two ways: its ``momentum=0.1`` is
    ``momentum=0.9`` here (``1 - momentum``), and it averages the *unbiased* variance
    (divided by ``N - 1``) into ``running_var``, which therefore settles about a
    factor ``N / (N - 1)`` higher for batches of ``N`` values per feature (the
    normalised training outputs, which use the biased variance in both, agree).

    Args:
      num_features: size ``F`` of the last axis.
      use_running_average: start in inference mode (a Python bool).
      momentum: decay of the running statistics in ``[0, 1]`` (Keras/Flax convention,
        0.99; ``1.0`` freezes them).
      epsilon: added to the variance.
      axis_name: mapped axis over which to average the batch statistics.
      param_dtype: dtype of ``scale``/``bias`` (float32); the running statistics are
        held in float32 at least, as in Flax (bfloat16 ones would stall).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` uses the input's.
      rngs: ``nnx.Rngs``, required as in Flax (the initialisation itself is deterministic).

    Raises:
      ValueError: ``num_features`` is not a positive int, ``momentum`` not in ``[0, 1]``
        or ``epsilon`` not ``> 0``.
      TypeError: ``use_running_average`` is not a bool, or a dtype is not floating.

    Example:
      >>> from flax import nnx
      >>> bn = BatchNorm(3, rngs=nnx.Rngs(0))
      >>> bn(jnp.arange(6.0).reshape(2, 3)).shape
      (2, 3)
      >>> bn.mean[...].round(3)  # 0.99 * 0 + 0.01 * [1.5, 2.5, 3.5]
      Array([0.015, 0.025, 0.035], dtype=float32)
    """

    scale: nnx.Param
    bias: nnx.Param
    mean: nnx.BatchStat
    var: nnx.BatchStat

    def __init__(
        self,
        num_features: int,
        *,
        use_running_average: bool = False,
        momentum: float = 0.99,
        epsilon: float = 1e-5,
        axis_name: str | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_features = _validate.positive_int("BatchNorm", "num_features", num_features)
        self.use_running_average = _checks.check_static_bool(
            "BatchNorm", "use_running_average", use_running_average
        )
        self.momentum = _momentum(momentum)
        self.epsilon = _validate.epsilon("BatchNorm", epsilon)
        self.axis_name = axis_name
        check_dtypes("BatchNorm", param_dtype, dtype)
        self.dtype = dtype
        params, stats = F.batch_norm_init(rngs.params(), num_features, dtype=param_dtype)
        # as in Flax, the running statistics stay in float32 (at least): in bfloat16 an
        # update of (1 - momentum) * (batch - old) below half a unit in the last place
        # (1/256 relative) would be lost, so the average would stall far from the data's
        stat_dtype = jnp.promote_types(param_dtype, jnp.float32)
        self._set_params(params)
        self._set_stats({name: value.astype(stat_dtype) for name, value in stats.items()})

    def __call__(
        self,
        x: jax.typing.ArrayLike,
        *,
        use_running_average: bool | None = None,
        mask: jax.typing.ArrayLike | None = None,
    ) -> jax.Array:
        """Normalises ``(..., num_features)``; updates the running statistics in training.

        ``use_running_average`` (a Python bool) overrides the attribute for this call.
        ``mask (B,)`` leaves padded rows out of the batch statistics (as Flax's
        ``mask``); by default the mask of an enclosing :func:`F.batch_mask` block (set
        by ``fit``) when ``x``'s first axis has its length, else every row counts.
        """
        if use_running_average is None:
            use_running_average = self.use_running_average
        use_running_average = _checks.check_static_bool(
            "BatchNorm", "use_running_average", use_running_average
        )
        y, stats = F.batch_norm(
            self.params(),
            self.stats(),
            compute_dtype(x, self.dtype),
            training=not use_running_average,
            momentum=self.momentum,
            epsilon=self.epsilon,
            axis_name=self.axis_name,
            mask=_row_mask(mask, x),
        )
        if not use_running_average:
            self._store_stats(stats)
        return y

    def set_view(self, use_running_average: bool | None = None):
        """Sets ``use_running_average`` in views made by ``nnx.view``.

        Args:
          use_running_average: ``True`` normalizes with the running statistics
            (inference), ``False`` with the batch's (training); ``None`` leaves it.
        """
        if use_running_average is not None:
            self.use_running_average = use_running_average


def _row_mask(mask: jax.typing.ArrayLike | None, x: jax.typing.ArrayLike) -> Any:
    """``mask``, else the enclosing :func:`F.batch_mask` block's if it fits ``x``'s rows."""
    if mask is not None:
        return mask
    rows = F.current_batch_mask()
    if rows is None or jnp.ndim(x) < 1 or jnp.shape(rows) != jnp.shape(x)[:1]:
        return None  # no block, or x is not batch-major (reshaped inside the model)
    return rows


def _momentum(momentum: object) -> float:
    """``momentum`` as a float after checking it is a real number in ``[0, 1]``."""
    value = _checks.concrete_number(momentum)
    if value is None or isinstance(momentum, bool | np.bool_) or not 0 <= value <= 1:
        raise ValueError(f"BatchNorm: `momentum` must be a float in [0, 1], got {momentum!r}")
    return value


class LayerNorm(FunctionalModule):
    """Layer normalisation over the last axis, calling :func:`F.layer_norm`.

    Args:
      num_features: size ``F`` of the last axis.
      epsilon: added to the variance.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs``, required as in Flax (the initialisation itself is deterministic).

    Raises:
      ValueError: ``num_features`` is not a positive int, or ``epsilon`` is not ``> 0``.
      TypeError: a dtype is not floating, or ``rngs`` is not an ``nnx.Rngs``. Calls
        raise as :func:`F.layer_norm` (e.g. ``nnjax.ShapeError`` for an ``x`` whose last axis
        is not ``num_features``).

    Example:
      >>> LayerNorm(3, rngs=nnx.Rngs(0))(jnp.array([[1.0, 2.0, 3.0]])).round(3)
      Array([[-1.225,  0.   ,  1.225]], dtype=float32)
    """

    scale: nnx.Param
    bias: nnx.Param

    def __init__(
        self,
        num_features: int,
        *,
        epsilon: float = 1e-5,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_features = _validate.positive_int("LayerNorm", "num_features", num_features)
        self.epsilon = _validate.epsilon("LayerNorm", epsilon)
        check_dtypes("LayerNorm", param_dtype, dtype)
        self.dtype = dtype
        self._set_params(F.layer_norm_init(rngs.params(), num_features, dtype=param_dtype))

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(..., num_features)`` to the same shape."""
        return F.layer_norm(self.params(), compute_dtype(x, self.dtype), epsilon=self.epsilon)
