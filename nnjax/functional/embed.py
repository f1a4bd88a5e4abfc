"""Token embeddings: a lookup table, and its transpose as a tied output projection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks, initializers
from nnjax.functional import _utils

Params = dict[str, jax.Array]


def embedding_init(
    key: jax.Array,
    num_embeddings: int,
    features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    embedding_init: str | initializers.Initializer | None = None,
) -> Params:
    """Initialises :func:`embedding`: ``{"embedding": (num_embeddings, features)}``.

    Args:
      key: a PRNG key.
      num_embeddings: vocabulary size ``V``.
      features: embedding size ``D``.
      dtype: parameter dtype.
      embedding_init: initializer (or name) for the table; ``None`` draws
        ``N(0, 1 / D)`` (Flax's default, so that ``attend`` starts with unit-scale logits).

    Returns:
      ``{"embedding": (V, D)}``.

    Raises:
      ValueError: if ``num_embeddings`` or ``features`` is not a positive int, or
        ``embedding_init`` is an unknown name.
      TypeError: if ``key`` is not a PRNG key (``jax.random.key(seed)``), ``dtype`` is
        not floating (an integer, bool or complex dtype), or ``embedding_init`` is
        neither a name nor a callable.
      nnjax.ShapeError: if ``embedding_init`` cannot draw a ``(V, D)`` table.

    Example:
      >>> embedding_init(jax.random.key(0), 100, 16)["embedding"].shape
      (100, 16)
    """
    num_embeddings = _utils.positive_int("embedding_init", "num_embeddings", num_embeddings)
    features = _utils.positive_int("embedding_init", "features", features)
    _checks.check_key("embedding_init", "key", key)
    dtype = _checks.float_dtype("embedding_init", dtype)
    shape = (num_embeddings, features)
    if embedding_init is None:
        draw = jax.random.normal(key, shape, jnp.promote_types(dtype, jnp.float32))
        return {"embedding": (draw / np.sqrt(features)).astype(dtype)}
    return {"embedding": initializers.init_param(embedding_init, key, shape, dtype)}


def _check_ids(ids: jax.Array, vocab: int) -> None:
    """Outside ``jit`` (concrete ids), raises for an id outside ``[0, vocab)``."""
    if isinstance(ids, jax.core.Tracer):
        return
    values = np.asarray(ids)
    if values.size and (values.min() < 0 or values.max() >= vocab):
        bad = values[(values < 0) | (values >= vocab)]
        raise ValueError(
            f"embedding: argument `ids` has values outside [0, {vocab}): "
            f"{sorted(set(bad.tolist()))[:10]}"
        )


def embedding(params: Params, ids: jax.typing.ArrayLike) -> jax.Array:
    """Looks up the rows of the table for integer ``ids``.

    Out-of-range ids (negative or ``>= V``) raise a ``ValueError`` when ``ids`` are
    concrete. Under ``jax.jit`` they cannot be checked: their rows come back as NaN
    (they never wrap around), so the mistake shows up in the loss instead of
    silently reading another token. (An integer table has no NaN: its rows come back
    as the dtype's minimum.)

    Args:
      params: ``{"embedding": (V, D)}``.
      ids: integer array of any shape ``(...)``.

    Returns:
      ``(..., D)`` in the table's dtype.

    Raises:
      TypeError: if ``ids`` are not integers.
      ValueError: concrete ids outside ``[0, V)``, or a key of ``params`` other than
        ``"embedding"``.
      KeyError: if ``params`` has no ``"embedding"``.
      nnjax.ShapeError: if the table is not rank 2.

    Example:
      >>> params = {"embedding": jnp.arange(6.0).reshape(3, 2)}
      >>> embedding(params, jnp.array([[2, 0]]))
      Array([[[4., 5.],
              [0., 1.]]], dtype=float32)
    """
    _utils.check_params("embedding", params, ("embedding",))
    table = params["embedding"]
    _checks.check_rank("embedding", "params['embedding']", table, 2)
    ids = jnp.asarray(ids)
    if not jnp.issubdtype(ids.dtype, jnp.integer):
        raise TypeError(f"embedding: argument `ids` has dtype {ids.dtype}, expected integers")
    vocab = table.shape[0]
    _check_ids(ids, vocab)
    wide = ids.astype(jnp.promote_types(ids.dtype, jnp.int32))  # int8 cannot hold V = 256
    safe = jnp.where(wide < 0, vocab, wide)  # negative ids would otherwise wrap around
    return jnp.take(table, safe, axis=0, mode="fill", fill_value=jnp.nan)


def attend(params: Params, x: jax.typing.ArrayLike) -> jax.Array:
    """Scores ``x`` against every embedding: ``x @ embedding.T`` (a tied output layer).

    Computes in the dtype of ``x``.

    Args:
      params: ``{"embedding": (V, D)}``.
      x: ``(..., D)``, floating.

    Returns:
      ``(..., V)`` logits.

    Raises:
      nnjax.ShapeError: if the last axis of ``x`` is not ``D``.
      TypeError: if ``x`` is not floating.
      ValueError: if ``params`` has a key other than ``"embedding"``.
      KeyError: if ``params`` has no ``"embedding"``.

    Example:
      >>> params = {"embedding": jnp.eye(3)}
      >>> attend(params, jnp.array([[0.0, 2.0, 1.0]]))
      Array([[0., 2., 1.]], dtype=float32)
    """
    _utils.check_params("attend", params, ("embedding",))
    x = _utils.as_compute("attend", x)
    table = params["embedding"]
    _checks.check_rank("attend", "params['embedding']", table, 2)
    _checks.check_min_rank("attend", "x", x, 1)
    _checks.check_shape("attend", "x", x, (..., table.shape[1]))
    return jnp.matmul(x, table.astype(x.dtype).T)
