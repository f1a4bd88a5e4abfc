"""Weight initialisation shared by the recurrent cells (private).

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

from nnjax import initializers
from nnjax.functional import _utils


def draw_weights(
    key, in_features, hidden, gates, *, dtype, kernel_init, recurrent_init
) -> tuple[jax.Array, jax.Array]:
    """Draws ``w_x (in, gates*H)`` and ``w_h (H, gates*H)``, each gate block separately.

    Each ``(H, H)`` block of ``w_h`` is drawn on its own, so with the orthogonal
    initializer every gate's recurrent matrix is orthogonal (as in Keras). Blocks are
    drawn in at least float32 and then cast: the QR behind the orthogonal initializer
    has no bfloat16/float16 kernel.
    """
    op = {1: "rnn_cell_init", 3: "gru_cell_init", 4: "lstm_cell_init"}[gates]
    in_features = _utils.positive_int(op, "in_features", in_features)
    hidden = _utils.positive_int(op, "hidden_features", hidden)
    draw_dtype = jnp.promote_types(dtype, jnp.float32)

    def blocks(init, key, rows):
        keys = jax.random.split(key, gates)
        drawn = [initializers.init_param(init, k, (rows, hidden), draw_dtype) for k in keys]
        return jnp.concatenate(drawn, axis=1).astype(dtype)

    k_x, k_h = jax.random.split(key)
    return blocks(kernel_init, k_x, in_features), blocks(recurrent_init, k_h, hidden)


__all__ = ["draw_weights"]
