"""Ops with a batch axis, their parameters and inputs: the cases of the sharding tests.

``CASES[name] = (fn, params, x)``: ``fn(params, x)`` runs one op on a batch ``x`` whose
first axis is the batch (4 rows, so that two or four devices split it). A case's
parameters are made when it is first looked up, not at import: building them all
compiled about 30 small programs in every test process's collection.
"""

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import nnjax.functional as F
from nnjax.functional._rnn_scan import elman

Case = tuple[Callable[[Any, Any], Any], Any, Any]
"""``(fn, params, x)``: ``fn(params, x)`` runs the op."""


@functools.cache
def _key() -> jax.Array:
    return jax.random.key(0)


RNG = np.random.default_rng(0)
SEQ = RNG.standard_normal((4, 5, 6)).astype(np.float32)
IMG = RNG.standard_normal((4, 8, 8, 3)).astype(np.float32)
LENGTHS = np.array([5, 3, 4, 2])

_BUILDERS: dict[str, Callable[[], Case]] = {
    "dense": lambda: (lambda p, x: F.dense(p, x), F.dense_init(_key(), 6, 3), SEQ[:, 0]),
    "conv2d": lambda: (lambda p, x: F.conv2d(p, x), F.conv2d_init(_key(), 3, 4, 3), IMG),
    "conv2d_xla": lambda: (
        lambda p, x: F.conv2d(p, x, formulation="xla"),
        F.conv2d_init(_key(), 3, 4, 3),
        IMG,
    ),
    "conv_transpose2d": lambda: (
        lambda p, x: F.conv_transpose2d(p, x, stride=2),
        F.conv_transpose2d_init(_key(), 3, 4, 3),
        IMG,
    ),
    "rnn": lambda: (lambda p, x: F.rnn(F.rnn_cell, p, x)[1], F.rnn_cell_init(_key(), 6, 8), SEQ),
    "elman": lambda: (
        lambda p, x: elman(p, x, lengths=LENGTHS)[1],
        F.rnn_cell_init(_key(), 6, 8),
        SEQ,
    ),
    "lstm": lambda: (lambda p, x: F.lstm(p, x)[1], F.lstm_cell_init(_key(), 6, 8), SEQ),
    "lstm_lengths": lambda: (
        lambda p, x: F.lstm(p, x, lengths=LENGTHS)[1],
        F.lstm_cell_init(_key(), 6, 8),
        SEQ,
    ),
    "gru": lambda: (lambda p, x: F.gru(p, x)[1], F.gru_cell_init(_key(), 6, 8), SEQ),
    # the inputs projected before the scan: the GPU/TPU default
    "lstm_precompute": lambda: (
        lambda p, x: F.lstm(p, x, precompute_inputs=True)[1],
        F.lstm_cell_init(_key(), 6, 8),
        SEQ,
    ),
    "gru_precompute": lambda: (
        lambda p, x: F.gru(p, x, precompute_inputs=True, lengths=LENGTHS)[1],
        F.gru_cell_init(_key(), 6, 8),
        SEQ,
    ),
    "bidirectional": lambda: (
        lambda p, x: F.bidirectional(F.lstm_cell, p, x)[1],
        F.bidirectional_init(_key(), F.lstm_cell_init, 6, 8),
        SEQ,
    ),
    "max_pool2d": lambda: (lambda p, x: F.max_pool2d(x, 2) * p, jnp.float32(2.0), IMG),
    "avg_pool2d": lambda: (lambda p, x: F.avg_pool2d(x, 2) * p, jnp.float32(2.0), IMG),
    "layer_norm": lambda: (lambda p, x: F.layer_norm(p, x), F.layer_norm_init(_key(), 6), SEQ),
    "attention": lambda: (
        lambda p, x: F.multi_head_attention(p, x),
        F.multi_head_attention_init(_key(), 6, num_heads=2),
        SEQ,
    ),
}


class _LazyCases(Mapping[str, Case]):
    """The cases by name; each built on its first lookup and kept."""

    def __init__(self, builders: Mapping[str, Callable[[], Case]]) -> None:
        self._builders = builders
        self._built: dict[str, Case] = {}

    def __getitem__(self, name: str) -> Case:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


CASES: Mapping[str, Case] = _LazyCases(_BUILDERS)


def value_and_grads(fn, params, x):
    """``fn(params, x)`` and the gradients of ``sum(sin(fn))`` for ``params`` and ``x``, jitted."""
    loss = lambda p, v: jnp.sum(jnp.sin(fn(p, v)))
    return jax.jit(lambda p, v: (fn(p, v), jax.grad(loss, argnums=(0, 1))(p, v)))(params, x)


def collectives(compiled_text: str) -> set[str]:
    """The names of the collective operations in an optimized HLO module's text."""
    ops = "all-gather|all-to-all|collective-permute|reduce-scatter|all-reduce"
    return set(re.findall(rf"\b({ops})(?:-start)?\(", compiled_text))


def collectives_in_loops(compiled_text: str) -> set[str]:
    """The collectives inside the body of a ``while`` loop of an optimized HLO module.

    A collective there runs once per iteration (a scan's step), where the gradient of a
    parameter needs one sum per program.
    """
    bodies = set(re.findall(r"body=%([\w.\-]+)", compiled_text))
    found, current = set(), None
    for line in compiled_text.splitlines():
        header = re.match(r"^(?:ENTRY )?%([\w.\-]+) ", line)
        if header:
            current = header.group(1)
        elif current in bodies:
            found |= collectives(line)
    return found
