"""Group normalisation and instance normalisation over channels-last inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax.functional import _utils
from nnjax.functional.normalization import layer_norm_init

Params = dict[str, jax.Array]


def group_norm_init(key: jax.Array, num_features: int, *, dtype: jnp.dtype = jnp.float32) -> Params:
    """Initialises :func:`group_norm`: ``{"scale": ones (C,), "bias": zeros (C,)}``.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic).
      num_features: channels ``C`` (the last axis).
      dtype: parameter dtype.

    Returns:
      ``{"scale": (C,), "bias": (C,)}``.

    Raises:
      ValueError: if ``num_features`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``).

    Example:
      >>> jax.tree.map(jnp.shape, group_norm_init(jax.random.key(0), 6))
      {'bias': (6,), 'scale': (6,)}
    """
    num_features = _utils.positive_int("group_norm_init", "num_features", num_features)
    dtype = _checks.float_dtype("group_norm_init", dtype)
    return layer_norm_init(key, num_features, dtype=dtype)


def instance_norm_init(
    key: jax.Array, num_features: int, *, dtype: jnp.dtype = jnp.float32
) -> Params:
    """Initialises :func:`instance_norm`: ``{"scale": ones (C,), "bias": zeros (C,)}``.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic).
      num_features: the number ``C`` of channels (last axis).
      dtype: parameter dtype (float32 by default).

    Returns:
      ``{"scale": (C,), "bias": (C,)}`` in ``dtype``.

    Raises:
      ValueError: if ``num_features`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``).

    Example:
      >>> instance_norm_init(jax.random.key(0), 2)["scale"]
      Array([1., 1.], dtype=float32)
    """
    num_features = _utils.positive_int("instance_norm_init", "num_features", num_features)
    dtype = _checks.float_dtype("instance_norm_init", dtype)
    return layer_norm_init(key, num_features, dtype=dtype)


def _check_num_groups(op: str, num_groups: int, channels: int) -> int:
    num_groups = _utils.positive_int(op, "num_groups", num_groups)
    if channels % num_groups:
        raise ValueError(
            f"{op}: `num_groups`={num_groups} does not divide the {channels} channels of `x`"
        )
    return num_groups


def _group_normalize(op: str, params, x: jax.Array, num_groups: int, epsilon: float) -> jax.Array:
    """Normalises ``(B, ..., C)`` over the spatial axes and each group of channels.

    Then scales and shifts; eagerly one program (``_utils.normalize``).

    Checks ``x`` against ``params`` first, so that a channels-first ``x`` is named.
    """
    _checks.check_min_rank(op, "x", x, 2)
    params = _utils.check_affine(op, params, x)
    _utils.check_epsilon(op, epsilon)
    channels = x.shape[-1]
    num_groups = _check_num_groups(op, num_groups, channels)
    axes = (*range(1, x.ndim - 1), x.ndim)  # of x seen as (..., groups, C // groups)
    return _utils.normalize(params, x, epsilon, axes, num_groups)


def group_norm(
    params: Params, x: jax.typing.ArrayLike, *, num_groups: int, epsilon: float = 1e-5
) -> jax.Array:
    """Normalises each example over its spatial axes and groups of channels.

    The ``C`` channels (last axis) are split into ``num_groups`` consecutive groups; each
    group of each example is standardised over its channels and every axis between the
    batch and the channels, then scaled and shifted per channel. Equal to PyTorch's
    ``GroupNorm`` on the channels-first layout. Statistics are computed in float32 at
    least.

    Args:
      params: ``{"scale": (C,), "bias": (C,)}``.
      x: ``(B, ..., C)``, e.g. ``(B, T, C)`` or NHWC ``(B, H, W, C)``; floating.
      num_groups: number of groups; must divide ``C``. ``1`` normalises over all of an
        example (a layer norm over every axis); ``C`` is :func:`instance_norm`.
      epsilon: added to the variance.

    Returns:
      The shape and dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` has rank < 2, or its last axis is not the size ``C`` of
        ``params['scale']`` (e.g. a channels-first ``x``; the message shows its shape).
      ValueError: if ``num_groups`` is not a positive divisor of ``C`` (or is traced:
        it must be static under ``jax.jit``), a concrete ``epsilon`` is not ``> 0``, or
        ``params`` has a key other than ``"scale"`` and ``"bias"`` or lacks one of them
        (that error is a ``KeyError`` too).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).

    Example:
      >>> params = group_norm_init(jax.random.key(0), 4)
      >>> x = jnp.arange(16.0).reshape(1, 2, 2, 4)
      >>> group_norm(params, x, num_groups=2).std().round(3)
      Array(1., dtype=float32)
    """
    x = _utils.as_compute("group_norm", x)
    return _group_normalize("group_norm", params, x, num_groups, epsilon)


def instance_norm(params: Params, x: jax.typing.ArrayLike, *, epsilon: float = 1e-5) -> jax.Array:
    """Normalises each channel of each example over its spatial axes.

    :func:`group_norm` with one group per channel; equal to PyTorch's
    ``InstanceNorm{1,2,3}d(affine=True)`` (no running statistics).

    Args:
      params: ``{"scale": (C,), "bias": (C,)}``.
      x: ``(B, ..., C)`` with at least one spatial axis, floating.
      epsilon: added to the variance.

    Returns:
      The shape and dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` has rank < 3, or its last axis is not the size ``C`` of
        ``params['scale']`` (the message shows ``x``'s shape).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: if a concrete ``epsilon`` is not ``> 0``, or ``params`` has a key
        other than ``"scale"`` and ``"bias"`` or lacks one of them (that error is a
        ``KeyError`` too).

    Example:
      >>> params = instance_norm_init(jax.random.key(0), 2)
      >>> y = instance_norm(params, jnp.arange(12.0).reshape(1, 6, 2))
      >>> y.mean(axis=1).round(3)
      Array([[0., 0.]], dtype=float32)
    """
    x = _utils.as_compute("instance_norm", x)
    _checks.check_min_rank("instance_norm", "x", x, 3)
    return _group_normalize("instance_norm", params, x, x.shape[-1], epsilon)
