"""The weights of the recurrent cells (private): drawing and checking them.

Example:
  >>> import jax
  >>> w_x, w_h = draw_weights(jax.random.key(0), 3, 5, 4, dtype=jnp.float32,
  ...                         kernel_init="glorot_uniform", recurrent_init="orthogonal")
  >>> w_x.shape, w_h.shape
  ((3, 20), (5, 20))
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks, initializers
from nnjax._deprecation import REMOVED_IN, user_stacklevel
from nnjax.functional import _utils
from nnjax.functional._recurrent_cell import Params


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


def _known_keys(op: str, params: Any, keys: tuple[str, ...], name: str = "params") -> Any:
    """``params`` without keys a cell does not read, with a ``DeprecationWarning``.

    The cells and ``F.rnn``/``F.lstm``/``F.gru`` ignored unknown keys until nnjax 0.2;
    from 0.3 they are an error, as for the other ops. With a required key missing
    ``params`` is returned as it is: the unknown key is then likely its misspelling,
    which :func:`nnjax.functional._utils.read_params` names as such.
    """
    if not isinstance(params, Mapping) or any(k not in params for k in keys):
        return params
    extra = [k for k in params if k not in keys]
    if not extra:
        return params
    warnings.warn(
        f"{op}: `{name}` has unexpected key{'s' * (len(extra) > 1)} "
        f"{', '.join(map(repr, extra))}, ignored; they will be an error in {REMOVED_IN} "
        f"(expected keys: {', '.join(map(repr, keys))})",
        DeprecationWarning,
        stacklevel=user_stacklevel(),
    )
    return {k: v for k, v in params.items() if k in keys}


def read_params(
    op: str, params: Any, gates: int, biases: tuple[str, ...], name: str = "params"
) -> tuple[Params, int, int]:
    """A recurrent cell's parameter dict, read and checked; ``(params, in_features, hidden)``.

    Read by :func:`nnjax.functional._utils.read_params` (exactly ``w_x``, ``w_h`` and
    ``biases``; a list, NumPy array or PyTorch tensor read as an array); then ``w_h``
    must be ``(H, gates*H)``, ``w_x`` ``(in, gates*H)`` and each bias ``(gates*H,)``. A
    weight in PyTorch's layout (``weight_hh``, ``weight_ih``: ``(gates*H, n)``) is named
    so, with the fix. Python on shapes only: free under ``jax.jit``. Messages call the
    dict ``name`` (``params``; ``params['forward']`` in a bidirectional op).

    Raises:
      TypeError: ``params`` is not a dict, or a value holds no numbers.
      ValueError: a key the cell does not read while a parameter is missing (then likely
        its misspelling; otherwise an unknown key is ignored with a
        ``DeprecationWarning``, an error from nnjax 0.3); MissingKeyError (a
        ``KeyError`` too): a parameter is missing.
      nnjax.ShapeError: a shape is wrong; the message names ``op``, the parameter, the
        expected and the actual shape.

    Example:
      >>> w_x, w_h = draw_weights(jax.random.key(0), 3, 5, 4, dtype=jnp.float32,
      ...                         kernel_init="glorot_uniform", recurrent_init="orthogonal")
      >>> params, n_in, hidden = read_params("lstm_cell", {"w_x": w_x, "w_h": w_h,
      ...                                                  "b": [0.0] * 20}, 4, ("b",))
      >>> n_in, hidden, params["b"].shape
      (3, 5, (20,))
      >>> try:
      ...     read_params("lstm_cell", {"w_x": w_x, "w_h": w_h.T, "b": params["b"]}, 4, ("b",))
      ... except ValueError as err:
      ...     print(str(err).split("? ")[1])
      w_h = weight_hh.T)
    """
    keys = ("w_x", "w_h", *biases)
    params = _utils.read_params(op, _known_keys(op, params, keys, name), keys, name=name)
    w_x, w_h = params["w_x"], params["w_h"]
    _checks.check_rank(op, f"{name}['w_h']", w_h, 2)
    pytorch = gates > 1 and w_h.shape[0] == gates * w_h.shape[1]
    hidden = w_h.shape[1] if pytorch else w_h.shape[0]
    why = "in PyTorch's layout (gates*H, H)? w_h = weight_hh.T" if pytorch else ""
    _checks.check_shape(op, f"{name}['w_h']", w_h, (hidden, gates * hidden), why=why)
    _checks.check_rank(op, f"{name}['w_x']", w_x, 2)
    why = f"{name}['w_h'] has shape {w_h.shape}"
    pytorch = w_x.shape[0] == gates * hidden != w_x.shape[1]
    hint = "; in PyTorch's layout (gates*H, in)? w_x = weight_ih.T" if pytorch else ""
    _checks.check_shape(op, f"{name}['w_x']", w_x, (None, gates * hidden), why=why + hint)
    for bias in biases:
        _checks.check_shape(op, f"{name}[{bias!r}]", params[bias], (gates * hidden,), why=why)
    return params, w_x.shape[0], hidden


__all__ = ["draw_weights", "read_params"]
