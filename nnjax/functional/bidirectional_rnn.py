"""Bidirectional recurrences: one cell reads the sequence forwards, another backwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax._deprecation import renamed_args
from nnjax.functional import _utils
from nnjax.functional._gru_scan import gru_scan
from nnjax.functional._lstm_scan import lstm_scan
from nnjax.functional._rnn_scan import rnn_scan
from nnjax.functional._sequence_checks import Names
from nnjax.functional.recurrent import LSTMState, gru_cell, lstm_cell, rnn_cell
from nnjax.functional.sequence import Cell, _run

_MERGES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "concat": lambda f, b: jnp.concatenate([f, b], axis=-1),
    "sum": jnp.add,
    "mean": lambda f, b: (f + b) / 2,
    "mul": jnp.multiply,
}


def merge_outputs(forward: jax.Array, backward: jax.Array, merge: str = "concat") -> jax.Array:
    """Combines the two directions' outputs.

    ``merge`` is ``"concat"`` (along the last axis), ``"sum"``, ``"mean"`` or ``"mul"``.

    Raises:
      ValueError: an unknown ``merge``.

    Example:
      >>> merge_outputs(jnp.ones((2, 3)), jnp.zeros((2, 3)), "mean")[0]
      Array([0.5, 0.5, 0.5], dtype=float32)
    """
    return _merge_fn(merge)(forward, backward)


def _fused(cell: Cell) -> Callable | None:
    """The built-in ``cell``'s formulation with its own backward pass, else ``None``.

    What ``F.lstm``, ``F.gru`` and ``nn.RNN`` run; other cells go through autodiff.
    """
    fused: dict[Any, Callable] = {lstm_cell: lstm_scan, gru_cell: gru_scan, rnn_cell: rnn_scan}
    return fused.get(cell)


def _merge_fn(merge: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if merge not in _MERGES:
        raise ValueError(
            f"bidirectional: `merge` must be one of {', '.join(_MERGES)}; got {merge!r}"
        )
    return _MERGES[merge]


@renamed_args(hidden="hidden_features")
def bidirectional_init(
    key: jax.Array,
    cell_init: Callable[..., Any],
    in_features: int,
    hidden_features: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """Initialises :func:`bidirectional`: two independent cells.

    Args:
      key: a PRNG key (split in two).
      cell_init: e.g. ``F.lstm_cell_init``.
      in_features: size of each step's input.
      hidden_features: hidden size ``H`` of each direction (``hidden``, deprecated,
        still works with a :class:`DeprecationWarning`).
      **kwargs: passed to ``cell_init`` (``dtype``, initializers...).

    Returns:
      ``{"forward": cell_params, "backward": cell_params}``.

    Raises:
      TypeError: ``key`` is not a PRNG key, or a ``dtype`` in ``kwargs`` is not
        floating (checked before ``cell_init`` runs); else as ``cell_init``.

    Example:
      >>> from nnjax.functional.recurrent import gru_cell_init
      >>> params = bidirectional_init(jax.random.key(0), gru_cell_init, 3, 5)
      >>> sorted(params), params["backward"]["w_h"].shape
      (['backward', 'forward'], (5, 15))
    """
    _checks.check_key("bidirectional_init", "key", key)
    if "dtype" in kwargs:
        _checks.float_dtype("bidirectional_init", kwargs["dtype"])
    k_fwd, k_bwd = jax.random.split(key)
    return {
        "forward": cell_init(k_fwd, in_features, hidden_features, **kwargs),
        "backward": cell_init(k_bwd, in_features, hidden_features, **kwargs),
    }


def bidirectional(
    cell: Cell,
    params: dict[str, Any],
    xs: jax.typing.ArrayLike,
    state: tuple[Any, Any] | None = None,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    merge: str = "concat",
    unroll: int | None = None,
    precompute_inputs: bool | None = None,
) -> tuple[tuple[Any, Any], jax.Array]:
    """Runs ``cell`` forwards with ``params["forward"]`` and backwards with ``params["backward"]``.

    Both directions run as :func:`nnjax.functional.rnn` would; the LSTM, GRU and Elman
    cells with their own backward pass, as :func:`~nnjax.functional.lstm` and
    :func:`~nnjax.functional.gru` (reverse mode only: forward mode, ``jax.jvp``, needs
    another cell or ``rnn`` of each direction). With
    ``lengths`` the backward direction starts at each sequence's last valid step, as in
    PyTorch's bidirectional packed sequences.
    ``merge="concat"`` gives PyTorch's ``bidirectional=True`` output layout: the
    forward features first.

    Args:
      cell: any ``cell(params, carry, x) -> (new_carry, y)``, e.g. ``F.lstm_cell``.
      params: ``{"forward": ..., "backward": ...}`` (:func:`bidirectional_init`).
      xs: ``(B, T, F)``, floating: the compute dtype.
      state: ``(forward_carry, backward_carry)``, each as :func:`nnjax.functional.rnn`
        takes it (cast to the dtype of ``xs``); ``None`` starts both from zeros.
      lengths: ``(B,)`` integer valid lengths, as in :func:`nnjax.functional.rnn`.
      merge: ``"concat"`` (``(B, T, 2H)``), ``"sum"``, ``"mean"`` or ``"mul"``.
      unroll: steps unrolled per scan iteration; ``None`` picks per backend (as ``F.rnn``).
      precompute_inputs: as in :func:`nnjax.functional.lstm`.

    Returns:
      ``((forward_final, backward_final), ys)`` in the dtype of ``xs``: each final state
      as :func:`nnjax.functional.rnn` returns it (the backward one is the state after
      reading step 0), ``ys (B, T, 2H)`` for ``"concat"``, else ``(B, T, H)``.

    Raises:
      ValueError: an unknown ``merge``, bad ``lengths``, an ``unroll`` that is not a
        positive int, or ``params`` with a key other than ``"forward"`` and ``"backward"``.
      KeyError: ``params`` lacks ``"forward"`` or ``"backward"`` (e.g. one direction's
        parameters were passed).
      TypeError: ``state`` is not a pair ``(forward_state, backward_state)`` (e.g. a
        single ``LSTMState``), a direction's state has the wrong structure, or
        ``precompute_inputs`` is neither a Python bool nor ``None`` (a traced one
        too: mark it static under ``jax.jit``).
      nnjax.ShapeError: as :func:`nnjax.functional.rnn`.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell, lstm_cell_init
      >>> params = bidirectional_init(jax.random.key(0), lstm_cell_init, 3, 5)
      >>> (fwd, bwd), ys = bidirectional(lstm_cell, params, jnp.ones((2, 7, 3)))
      >>> ys.shape, bwd.h.shape
      ((2, 7, 10), (2, 5))
    """
    merge_fn = _merge_fn(merge)  # validated before the scans
    _utils.check_params("bidirectional", params, ("forward", "backward"))
    s_fwd, s_bwd = (None, None) if state is None else _state_pair(state)
    fused = _fused(cell)
    fwd, ys_f = _run(
        "bidirectional", cell, params["forward"], xs, s_fwd, lengths, False, unroll,
        precompute_inputs, fused, Names("params['forward']", "state[0]"),
    )  # fmt: skip
    bwd, ys_b = _run(
        "bidirectional", cell, params["backward"], xs, s_bwd, lengths, True, unroll,
        precompute_inputs, fused, Names("params['backward']", "state[1]"),
    )  # fmt: skip
    return (fwd, bwd), merge_fn(ys_f, ys_b)


def _state_pair(state) -> tuple[Any, Any]:
    """``(forward_state, backward_state)``; a single state (an ``LSTMState``) is an error."""
    if isinstance(state, LSTMState) or not isinstance(state, tuple | list) or len(state) != 2:
        got = "a single LSTMState" if isinstance(state, LSTMState) else repr(state)[:80]
        raise TypeError(
            "bidirectional: `state` must be a pair (forward_state, backward_state), one "
            f"carry per direction (e.g. two LSTMStates), got {got}"
        )
    return state[0], state[1]
