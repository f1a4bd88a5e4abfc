"""Small valid inputs that the functional corpus breaks one argument of at a time.

Read as attributes of this module (``_inputs.DENSE``) inside the cases' calls: each is
made on its first read, not at import (making them all compiled a dozen programs in
every test process's collection), and kept.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import nnjax.functional as F

_MAKERS: dict[str, Callable[[], Any]] = {
    "K": lambda: jax.random.key(0),
    "X2": lambda: jnp.ones((2, 3)),
    "IMG": lambda: jnp.ones((1, 6, 6, 2)),
    "DENSE": lambda: {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)},
    "CONV": lambda: F.conv2d_init(__getattr__("K"), 2, 4, 3),
    "LN": lambda: F.layer_norm_init(__getattr__("K"), 3),
    "BN_P": lambda: __getattr__("_BN")[0],
    "BN_S": lambda: __getattr__("_BN")[1],
    "_BN": lambda: F.batch_norm_init(__getattr__("K"), 3),
    "SEQ": lambda: jnp.ones((2, 5, 3)),
    "LSTM": lambda: F.lstm_cell_init(__getattr__("K"), 3, 4),
    "EMB": lambda: F.embedding_init(__getattr__("K"), 10, 4),
    "ATT": lambda: F.multi_head_attention_init(__getattr__("K"), 4, num_heads=2),
}


def __getattr__(name: str) -> Any:
    """Makes the input ``name`` on its first read and keeps it in the module."""
    if name not in _MAKERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with jax.ensure_compile_time_eval():  # concrete arrays even when read inside a trace
        value = globals()[name] = _MAKERS[name]()
    return value
