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
    padding_idx: int | None = None,
) -> Params:
    """Initialises :func:`embedding`: ``{"embedding": (num_embeddings, features)}``.

    Args:
      key: a PRNG key.
      num_embeddings: vocabulary size ``V``.
      features: embedding size ``D``.
      dtype: parameter dtype.
      embedding_init: initializer (or name) for the table; ``None`` draws
        ``N(0, 1 / D)`` (Flax's default, so that ``attend`` starts with unit-scale logits).
      padding_idx: a row set to zeros (PyTorch's ``padding_idx``; ``-1`` is ``V - 1``);
        pass the same to :func:`embedding`, which keeps it out of the gradient.

    Returns:
      ``{"embedding": (V, D)}``.

    Raises:
      ValueError: if ``num_embeddings`` or ``features`` is not a positive int,
        ``embedding_init`` is an unknown name, or ``padding_idx`` is outside
        ``[-V, V)``.
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
    row = check_padding_idx("embedding_init", padding_idx, num_embeddings)
    shape = (num_embeddings, features)
    if embedding_init is None:
        draw = jax.random.normal(key, shape, jnp.promote_types(dtype, jnp.float32))
        table = (draw / np.sqrt(features)).astype(dtype)
    else:
        table = initializers.init_param(embedding_init, key, shape, dtype)
    return {"embedding": table if row is None else table.at[row].set(0)}


def check_padding_idx(op: str, padding_idx: int | None, vocab: int) -> int | None:
    """``padding_idx`` as a row in ``[0, vocab)`` (``-1`` is ``vocab - 1``), or ``None``.

    Raises:
      TypeError: not an int (a bool neither).
      ValueError: outside ``[-vocab, vocab)`` (PyTorch's range).

    Example:
      >>> check_padding_idx("embedding", -1, 10), check_padding_idx("embedding", None, 10)
      (9, None)
    """
    if padding_idx is None:
        return None
    if not _checks.is_int(padding_idx):
        raise TypeError(f"{op}: `padding_idx` must be an int or None, got {padding_idx!r}")
    if not -vocab <= padding_idx < vocab:
        raise ValueError(
            f"{op}: `padding_idx`={padding_idx} is outside [-{vocab}, {vocab}) for a table "
            f"of {vocab} rows"
        )
    return int(padding_idx) % vocab


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


def _as_ids(ids) -> jax.Array:
    """``ids`` as an array; an empty list (no ids: NumPy would read floats) as ``int32``."""
    array = _utils.as_array("embedding", ids, "ids", numbers="int32")
    if isinstance(ids, list | tuple) and array.size == 0:
        return array.astype(jnp.int32)
    return array


def embedding(
    params: Params, ids: jax.typing.ArrayLike, *, padding_idx: int | None = None
) -> jax.Array:
    """Looks up the rows of the table for integer ``ids``.

    Out-of-range ids (negative or ``>= V``) raise a ``ValueError`` when ``ids`` are
    concrete. Under ``jax.jit`` they cannot be checked: their rows come back as NaN
    (they never wrap around), so the mistake shows up in the loss instead of
    silently reading another token. (An integer table has no NaN: its rows come back
    as the dtype's minimum.)

    Args:
      params: ``{"embedding": (V, D)}``.
      ids: integer array of any shape ``(...)``.
      padding_idx: PyTorch's: the id of the padding token, whose row gets no gradient
        (it stays as it is, zeros from :func:`embedding_init` with the same
        ``padding_idx``); its lookups still return the row. ``-1`` is ``V - 1``.

    Returns:
      ``(..., D)`` in the table's dtype.

    Raises:
      TypeError: if ``ids`` are not integers (an empty list counts as integers),
        ``padding_idx`` is not an int, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: concrete ids outside ``[0, V)``, a ``padding_idx`` outside
        ``[-V, V)``, or a key of ``params`` other than ``"embedding"``, or no
        ``"embedding"`` (that error is a ``KeyError`` too).
      nnjax.ShapeError: if the table is not rank 2.

    Example:
      >>> params = {"embedding": jnp.arange(6.0).reshape(3, 2)}
      >>> embedding(params, jnp.array([[2, 0]]))
      Array([[[4., 5.],
              [0., 1.]]], dtype=float32)
      >>> lookup = lambda p: embedding(p, jnp.array([0, 1, 0]), padding_idx=0).sum()
      >>> jax.grad(lookup)(params)["embedding"][:, 0]  # no gradient for the padding row
      Array([0., 1., 0.], dtype=float32)
    """
    table = _utils.read_params("embedding", params, ("embedding",))["embedding"]
    _checks.check_rank("embedding", "params['embedding']", table, 2)
    ids = _as_ids(ids)
    if not jnp.issubdtype(ids.dtype, jnp.integer):
        raise TypeError(f"embedding: argument `ids` has dtype {ids.dtype}, expected integers")
    vocab = table.shape[0]
    row = check_padding_idx("embedding", padding_idx, vocab)
    _check_ids(ids, vocab)
    wide = ids.astype(jnp.promote_types(ids.dtype, jnp.int32))  # int8 cannot hold V = 256
    safe = jnp.where(wide < 0, vocab, wide)  # negative ids would otherwise wrap around
    rows = jnp.take(table, safe, axis=0, mode="fill", fill_value=jnp.nan)
    if row is None:
        return rows
    padding = (wide == row)[..., None]  # the padding row's lookups: no gradient
    return jnp.where(padding, jax.lax.stop_gradient(rows), rows)


def attend(params: Params, x: jax.typing.ArrayLike) -> jax.Array:
    """Scores ``x`` against every embedding: ``x @ embedding.T`` (a tied output layer).

    Computes in the dtype of ``x``.

    Args:
      params: ``{"embedding": (V, D)}``.
      x: ``(..., D)``, floating.

    Returns:
      ``(..., V)`` logits.

    Raises:
      nnjax.ShapeError: if the table is not rank 2 or the last axis of ``x`` is not ``D``.
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: if ``params`` has a key other than ``"embedding"``, or no
        ``"embedding"`` (that error is a ``KeyError`` too).

    Example:
      >>> params = {"embedding": jnp.eye(3)}
      >>> attend(params, jnp.array([[0.0, 2.0, 1.0]]))
      Array([[0., 2., 1.]], dtype=float32)
    """
    table = _utils.read_params("attend", params, ("embedding",))["embedding"]
    x = _utils.as_compute("attend", x)
    _checks.check_rank("attend", "params['embedding']", table, 2)
    _checks.check_min_rank("attend", "x", x, 1)
    why = f"params['embedding'] has shape {table.shape}"
    _checks.check_shape("attend", "x", x, (..., table.shape[1]), why=why)
    return jnp.matmul(x, table.astype(x.dtype).T)
