"""Batch normalisation and layer normalisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax._deprecation import renamed_args
from nnjax.functional import _utils

Params = dict[str, jax.Array]


@renamed_args(features="num_features")
def layer_norm_init(key: jax.Array, num_features: int, *, dtype: jnp.dtype = jnp.float32) -> Params:
    """Initialises :func:`layer_norm`: ``{"scale": ones (F,), "bias": zeros (F,)}``.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic), kept for the
        uniform ``F.<op>_init(key, ...)`` signature.
      num_features: size ``F`` of the normalised last axis.
      dtype: parameter dtype.

    Returns:
      ``{"scale": (F,), "bias": (F,)}``.

    Raises:
      ValueError: if ``num_features`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``).

    Example:
      >>> layer_norm_init(jax.random.key(0), 4)["scale"]
      Array([1., 1., 1., 1.], dtype=float32)
    """
    del key
    n = _utils.positive_int("layer_norm_init", "num_features", num_features)
    dtype = _checks.float_dtype("layer_norm_init", dtype)
    return {"scale": jnp.ones((n,), dtype), "bias": jnp.zeros((n,), dtype)}


def layer_norm(params: Params, x: jax.typing.ArrayLike, *, epsilon: float = 1e-5) -> jax.Array:
    """Normalises the last axis of ``x`` to zero mean and unit variance, then scales and shifts.

    Statistics are computed in float32 at least, so bfloat16 inputs stay accurate.

    Args:
      params: ``{"scale": (F,), "bias": (F,)}``.
      x: ``(..., F)``, floating.
      epsilon: added to the variance for numerical stability.

    Returns:
      ``(..., F)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` is a scalar, its last axis is not the size ``F`` of
        ``params['scale']`` (the message shows ``x``'s shape) or ``params['bias']`` is
        not ``(F,)``.
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: ``params`` lacks ``"scale"`` or ``"bias"`` (that error is a
        ``KeyError`` too) or has another key (a misspelling such as ``"bais"``).
      ValueError: if a concrete ``epsilon`` is not ``> 0``.

    Example:
      >>> params = layer_norm_init(jax.random.key(0), 3)
      >>> layer_norm(params, jnp.array([[1.0, 2.0, 3.0]])).round(3)
      Array([[-1.225,  0.   ,  1.225]], dtype=float32)
    """
    x = _utils.as_compute("layer_norm", x)
    _checks.check_min_rank("layer_norm", "x", x, 1)
    params = _utils.check_affine("layer_norm", params, x)
    _utils.check_epsilon("layer_norm", epsilon)
    return _utils.normalize(params, x, epsilon, (-1,))


def _batch_moments(
    xf: jax.Array, axis_name: str | None, mask: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per-feature mean and biased variance over every axis but the last (two passes).

    With ``axis_name``, both are averaged over the mapped axis too (equal shard sizes);
    with ``mask (B,)``, over the rows where it is nonzero (weighted; shards of any
    size).
    """
    axes = tuple(range(xf.ndim - 1))
    if mask is None:
        mean = jnp.mean(xf, axis=axes)
        if axis_name is not None:
            mean = jax.lax.pmean(mean, axis_name)
        var = jnp.mean(jnp.square(xf - _utils.expand_to(mean, xf.ndim)), axis=axes)
        if axis_name is not None:
            var = jax.lax.pmean(var, axis_name)
        return mean, var
    w = jnp.reshape(mask.astype(xf.dtype), (-1,) + (1,) * (xf.ndim - 1))
    total = lambda v: v if axis_name is None else jax.lax.psum(v, axis_name)
    count = jnp.maximum(total(jnp.sum(w) * (xf[0].size // xf.shape[-1])), 1.0)
    mean = total(jnp.sum(xf * w, axis=axes)) / count
    var = total(jnp.sum(jnp.square(xf - _utils.expand_to(mean, xf.ndim)) * w, axis=axes)) / count
    return mean, var


@renamed_args(features="num_features")
def batch_norm_init(
    key: jax.Array, num_features: int, *, dtype: jnp.dtype = jnp.float32
) -> tuple[Params, Params]:
    """Initialises :func:`batch_norm`: trainable params and running statistics.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic).
      num_features: size ``F`` of the normalised last axis.
      dtype: dtype of the parameters and statistics.

    Returns:
      ``(params, stats)``: ``params = {"scale": ones (F,), "bias": zeros (F,)}``,
      ``stats = {"mean": zeros (F,), "var": ones (F,)}``.

    Raises:
      ValueError: if ``num_features`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``).

    Example:
      >>> params, stats = batch_norm_init(jax.random.key(0), 8)
      >>> stats["var"].shape
      (8,)
    """
    n = _utils.positive_int("batch_norm_init", "num_features", num_features)
    dtype = _checks.float_dtype("batch_norm_init", dtype)
    params = layer_norm_init(key, n, dtype=dtype)
    stats = {"mean": jnp.zeros((n,), dtype), "var": jnp.ones((n,), dtype)}
    return params, stats


def batch_norm(
    params: Params,
    stats: Params,
    x: jax.typing.ArrayLike,
    *,
    training: bool,
    momentum: float = 0.99,
    epsilon: float = 1e-5,
    axis_name: str | None = None,
    mask: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, Params]:
    """Normalises ``x`` per feature (last axis) over every other axis.

    In training the batch statistics normalise ``x`` and the running statistics are
    updated as ``new = momentum * old + (1 - momentum) * batch`` (the Keras/Flax
    convention; PyTorch's ``momentum=0.1`` is ``momentum=0.9`` here), with the biased
    batch variance. In inference the running statistics normalise ``x`` and are returned
    unchanged.

    Args:
      params: ``{"scale": (F,), "bias": (F,)}``.
      stats: running statistics ``{"mean": (F,), "var": (F,)}``.
      x: ``(..., F)``, e.g. ``(B, F)`` or NHWC ``(B, H, W, F)``, floating (statistics
        in float32 at least).
      training: use batch statistics and update the running ones (a Python bool:
        each value compiles its own program under ``jax.jit``, mark it static, e.g.
        ``jax.jit(batch_norm, static_argnames="training")``).
      momentum: decay of the running statistics, in ``[0, 1]``.
      epsilon: added to the variance, ``> 0``.
      axis_name: a mapped axis (``jax.vmap``/``shard_map``) over which to average the
        batch statistics too (synchronised batch norm).
      mask: in training, ``(B,)`` weights of the rows of ``x`` (first axis): the batch
        statistics count only the rows where it is nonzero (padding left out, as
        ``fit`` pads a partial batch: :func:`batch_mask`); every row is still
        normalised. ``None``: every row counts. Ignored in inference.

    Returns:
      ``(y, new_stats)``: ``y`` of the shape and dtype of ``x``; ``new_stats`` of the
      structure and dtypes of ``stats``.

    Raises:
      nnjax.ShapeError: if ``x`` has rank < 2, its last axis is not the size ``F`` of
        ``params['scale']`` (the message shows ``x``'s shape), another parameter or
        statistic is not ``(F,)``, or ``mask`` is not ``(B,)`` for ``x (B, ..., F)``.
      TypeError: if ``x`` is not floating, a statistic holds no numbers (a string, an
        object array: the message names it) or, in training, is not floating (its
        update would be rounded), or ``training`` is not a Python bool (also when it
        is traced under ``jax.jit``: mark it static), or ``params`` is not a dict
        (e.g. a layer: pass ``layer.params()``) or one of its values holds no numbers
        (``None``, a string: the message names ``params['<key>']``; lists and NumPy
        arrays are read as arrays).
      ValueError: ``params`` or ``stats`` lacks a key (that error is a ``KeyError``
        too) or has a key the op does not read (a misspelling such as ``"bais"``).
      ValueError: ``training=True`` with an empty batch (no statistics to compute), or
        a concrete ``momentum`` outside ``[0, 1]`` or ``epsilon`` not ``> 0``.

    Example:
      >>> params, stats = batch_norm_init(jax.random.key(0), 2)
      >>> y, stats = batch_norm(params, stats, jnp.ones((4, 2)), training=True)
      >>> y.shape
      (4, 2)
    """
    op = "batch_norm"
    x = _utils.as_compute(op, x)
    training = _checks.check_static_bool(op, "training", training)
    _checks.check_interval(op, "momentum", momentum, 0, 1)
    _utils.check_epsilon(op, epsilon)
    _checks.check_min_rank(op, "x", x, 2)
    _utils.check_params(op, stats, ("mean", "var"), name="stats")
    stats = jax.tree_util.tree_map_with_path(  # each statistic read whole (a list too)
        lambda path, v: _utils.as_array(op, v, f"stats{jax.tree_util.keystr(path)}"),
        stats,
        is_leaf=lambda v: v is not stats,
    )
    named_stats = {f"stats[{name!r}]": stats[name] for name in ("mean", "var")}
    if training:  # integer statistics would round their update to integers
        for name, value in named_stats.items():
            _checks.check_floating(op, name, value)
    params = _utils.check_affine(op, params, x, others=named_stats)
    # Symbolic (exported) batch sizes are >= 1: only a concrete 0 is an empty batch.
    if training and any(isinstance(n, int) and n == 0 for n in x.shape[:-1]):
        raise ValueError(
            f"batch_norm: argument `x` has shape {tuple(x.shape)}, an empty batch; training "
            "mode needs at least one example to compute the batch statistics (an empty "
            "batch would make the running statistics NaN): skip empty batches or pass "
            "training=False"
        )
    if mask is not None:
        _checks.check_shape(op, "mask", mask, (x.shape[0],))
    stat_dtype = _utils.stat_dtype(x)
    xf = x.astype(stat_dtype)
    if training:
        rows = None if mask is None else _utils.as_array(op, mask, "mask", numbers="bool_")
        mean, var = _batch_moments(xf, axis_name, rows)
        new_stats = {
            "mean": (momentum * stats["mean"] + (1.0 - momentum) * mean).astype(
                stats["mean"].dtype
            ),
            "var": (momentum * stats["var"] + (1.0 - momentum) * var).astype(stats["var"].dtype),
        }
    else:
        mean = stats["mean"].astype(stat_dtype)
        var = stats["var"].astype(stat_dtype)
        new_stats = stats
    inv = jax.lax.rsqrt(var + epsilon)
    y = ((xf - _utils.expand_to(mean, x.ndim)) * _utils.expand_to(inv, x.ndim)).astype(x.dtype)
    return _utils.affine(params, y), new_stats
