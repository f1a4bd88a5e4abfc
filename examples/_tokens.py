"""Shared parts of the sequence examples: masked token cross-entropy and batched scoring.

``char_language_model.py`` and ``seq2seq.py`` train through ``fit(loss_fn=...)`` with a
``(B, T)`` grid of integer targets per batch; :func:`token_loss_fn` is their objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

LN2 = math.log(2.0)


def token_nats(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    """Per-row mean cross-entropy (nats) of ``logits (B, T, V)`` at ``targets (B, T)``.

    ``weights (B, T)`` (1 for a counted token, 0 for padding) weigh the positions.

    Example:
      >>> logits = jnp.zeros((1, 2, 4))
      >>> float(token_nats(logits, jnp.zeros((1, 2), int), jnp.ones((1, 2)))[0])  # log 4
      1.386...
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    return jnp.sum(ce * weights, axis=-1) / jnp.maximum(jnp.sum(weights, axis=-1), 1.0)


def token_loss_fn(
    forward: Callable[[nnx.Module, Any], jax.Array],
    target_weights: Callable[[jax.Array], jax.Array] = jnp.ones_like,
) -> Callable:
    """``loss_fn(model, batch) -> (loss, {"bits_per_token": ...})`` for ``fit``.

    The loss is the mean over the real rows of the batch (``batch.weight``, 0 on the
    padded rows of the last batch) of each row's mean token cross-entropy.

    Args:
      forward: ``forward(model, batch) -> logits (B, T, V)`` for targets ``batch.y (B, T)``.
      target_weights: ``(B, T)`` weights of the targets (e.g. 0 on padding tokens).
    """

    def loss_fn(model: nnx.Module, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits = forward(model, batch)
        rows = token_nats(logits, batch.y, target_weights(batch.y).astype(jnp.float32))
        loss = jnp.sum(rows * batch.weight) / jnp.maximum(jnp.sum(batch.mask), 1.0)
        return loss, {"bits_per_token": loss / LN2}

    return loss_fn


def batched(fn: Callable[..., np.ndarray], *arrays: np.ndarray, size: int) -> np.ndarray:
    """Concatenates ``fn(*chunks)`` over consecutive chunks of ``size`` rows (on the host).

    The last chunk is padded (repeating its last row) to ``size`` rows and the padding's
    results dropped, so a jitted ``fn`` compiles once.

    Example:
      >>> batched(lambda a: a * 2, np.arange(5), size=2).tolist()
      [0, 2, 4, 6, 8]
    """
    n = len(arrays[0])
    outs = []
    for i in range(0, n, size):
        chunks = [a[i : i + size] for a in arrays]
        real = len(chunks[0])
        chunks = [np.concatenate([c, np.repeat(c[-1:], size - real, 0)]) for c in chunks]
        outs.append(np.asarray(fn(*chunks))[:real])
    return np.concatenate(outs)
