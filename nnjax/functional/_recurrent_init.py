"""The weights of the recurrent cells (private): drawing and checking them.

Example:
  >>> import jax
  >>> w_x, w_h = draw_weights(jax.random.key(0), 3, 5, 4, dtype=jnp.float32,
  ...                         kernel_init="glorot_uniform", recurrent_init="orthogonal")
  >>> w_x.shape, w_h.shape
  ((3, 20), (5, 20))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks, initializers
from nnjax.functional import _utils


def draw_weights(
    key, in_features, hidden, gates, *, dtype, kernel_init, recurrent_init
) -> tuple[jax.Array, jax.Array]:
    """Draws ``w_x (in, gates*H)`` and ``w_h (H, gates*H)``, each gate block separately.

    Each ``(H, H)`` block of ``w_h`` is drawn on its own, so with the orthogonal
    initializer every gate's recurrent matrix is orthogonal (as in Keras). Blocks are
    drawn in at least float32 and then cast: the QR behind the orthogonal initializer
    has no bfloat16/float16 kernel. The sizes, ``key`` and ``dtype`` (floating only) are
    checked first, errors naming the public init.
    """
    op = {1: "rnn_cell_init", 3: "gru_cell_init", 4: "lstm_cell_init"}[gates]
    in_features = _utils.positive_int(op, "in_features", in_features)
    hidden = _utils.positive_int(op, "hidden_features", hidden)
    _checks.check_key(op, "key", key)
    dtype = _checks.float_dtype(op, dtype)
    draw_dtype = jnp.promote_types(dtype, jnp.float32)

    def blocks(init, key, rows):
        keys = jax.random.split(key, gates)
        drawn = [initializers.init_param(init, k, (rows, hidden), draw_dtype) for k in keys]
        return jnp.concatenate(drawn, axis=1).astype(dtype)

    k_x, k_h = jax.random.split(key)
    return blocks(kernel_init, k_x, in_features), blocks(recurrent_init, k_h, hidden)


def check_params(op: str, params: dict, gates: int, biases: tuple[str, ...]) -> tuple[int, int]:
    """Checks a recurrent parameter dict at trace time; returns ``(in_features, hidden)``.

    ``w_h`` must be ``(H, gates*H)``, ``w_x`` ``(in, gates*H)`` and each bias named in
    ``biases`` ``(gates*H,)``.

    Raises:
      KeyError: a parameter is missing.
      nnjax.ShapeError: a shape is wrong; the message names ``op``, the parameter, the
        expected and the actual shape.

    Example:
      >>> w_x, w_h = draw_weights(jax.random.key(0), 3, 5, 4, dtype=jnp.float32,
      ...                         kernel_init="glorot_uniform", recurrent_init="orthogonal")
      >>> check_params("lstm_cell", {"w_x": w_x, "w_h": w_h, "b": jnp.zeros(20)}, 4, ("b",))
      (3, 5)
    """
    for name in ("w_x", "w_h", *biases):
        if name not in params:
            raise KeyError(f"{op}: `params` has no {name!r}; got keys {sorted(params)}")
    _checks.check_rank(op, "params['w_h']", params["w_h"], 2)
    hidden = params["w_h"].shape[0]
    _checks.check_shape(op, "params['w_h']", params["w_h"], (hidden, gates * hidden))
    _checks.check_rank(op, "params['w_x']", params["w_x"], 2)
    _checks.check_shape(op, "params['w_x']", params["w_x"], (None, gates * hidden))
    for name in biases:
        _checks.check_shape(op, f"params[{name!r}]", params[name], (gates * hidden,))
    return params["w_x"].shape[0], hidden


__all__ = ["check_params", "draw_weights"]
