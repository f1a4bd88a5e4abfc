"""The parametric ReLU with its learnt slope: ``prelu_init`` and ``prelu``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks, activations
from nnjax.functional import _utils

Params = dict[str, jax.Array]


def prelu_init(
    key: jax.Array,
    num_parameters: int = 1,
    *,
    init: float = 0.25,
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    """Initialises :func:`prelu`: ``{"negative_slope": (num_parameters,)}`` filled with ``init``.

    Args:
      key: a PRNG key; unused (the initialisation is deterministic).
      num_parameters: ``1`` (one slope shared by every channel) or the channels ``C``.
      init: the initial slope (PyTorch's 0.25).
      dtype: parameter dtype.

    Returns:
      ``{"negative_slope": (num_parameters,)}``.

    Raises:
      ValueError: if ``num_parameters`` is not a positive int.
      TypeError: if ``dtype`` is not a floating dtype (e.g. ``jnp.int32``), or ``init``
        is not a real number.

    Example:
      >>> prelu_init(jax.random.key(0), 3)["negative_slope"]
      Array([0.25, 0.25, 0.25], dtype=float32)
    """
    del key
    num_parameters = _utils.positive_int("prelu_init", "num_parameters", num_parameters)
    _checks.check_real("prelu_init", "init", init, "the initial slope")
    dtype = _checks.float_dtype("prelu_init", dtype)
    return {"negative_slope": jnp.full((num_parameters,), init, dtype)}


def prelu(params: Params, x: jax.typing.ArrayLike) -> jax.Array:
    """``x`` where ``x >= 0``, else ``negative_slope * x``, per channel (last axis).

    Args:
      params: ``{"negative_slope": (1,) or (C,)}``.
      x: ``(..., C)``, floating.

    Returns:
      The shape and dtype of ``x``.

    Raises:
      nnjax.ShapeError: if the slope is neither ``(1,)`` nor ``(C,)`` for the last axis
        ``C`` of ``x`` (the message shows ``x``'s shape).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: if ``params`` has a key other than ``"negative_slope"``, or none
        (that error is a ``KeyError`` too).

    Example:
      >>> params = prelu_init(jax.random.key(0))
      >>> prelu(params, jnp.array([[-2.0, 4.0]]))
      Array([[-0.5,  4. ]], dtype=float32)
    """
    params = _utils.read_params("prelu", params, ("negative_slope",))
    x = _utils.as_compute("prelu", x)
    _checks.check_min_rank("prelu", "x", x, 1)
    slope = params["negative_slope"]
    _checks.check_rank("prelu", "params['negative_slope']", slope, 1)
    if slope.shape[0] != 1:
        why = f"params['negative_slope'] has shape {slope.shape}"
        _checks.check_shape("prelu", "x", x, (..., slope.shape[0]), why=why)
    return activations.prelu(x, slope)
