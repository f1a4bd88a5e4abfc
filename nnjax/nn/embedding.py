"""Token embedding as a Flax NNX module."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import initializers
from nnjax.functional.embed import check_padding_idx
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, check_dtypes, compute_dtype


class Embedding(FunctionalModule):
    """A ``(num_embeddings, features)`` lookup table, calling :func:`F.embedding`.

    Args:
      num_embeddings: vocabulary size ``V``.
      features: embedding size ``D``.
      embedding_init: initializer for the table; ``None``: ``N(0, 1 / D)`` (Flax's).
      padding_idx: PyTorch's: the padding token's id; its row starts as zeros and gets
        no gradient (:func:`F.embedding`). ``-1`` is ``num_embeddings - 1``.
      param_dtype: dtype of the table (float32).
      dtype: dtype of the looked-up vectors; ``None`` keeps the table's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: ``num_embeddings`` or ``features`` is not a positive int,
        ``embedding_init`` is an unknown name, or ``padding_idx`` is outside
        ``[-num_embeddings, num_embeddings)``.
      TypeError: a dtype is not floating, ``embedding_init`` is neither a name nor a
        callable, or ``rngs`` is not an ``nnx.Rngs``. Calls raise as
        :func:`F.embedding` (``TypeError`` for ids that are not integers,
        ``ValueError`` for concrete ids outside ``[0, num_embeddings)``).

    Example:
      >>> from flax import nnx
      >>> embed = Embedding(100, 16, rngs=nnx.Rngs(0))
      >>> embed(jnp.array([[1, 2, 3]])).shape
      (1, 3, 16)
      >>> embed.attend(jnp.ones((1, 3, 16))).shape  # tied output logits
      (1, 3, 100)
    """

    embedding: nnx.Param
    integer_inputs: ClassVar[tuple[str, ...]] = ("ids",)
    """Arguments that take integers: ``fit`` and ``predict`` accept integer ``ids``."""

    def __init__(
        self,
        num_embeddings: int,
        features: int,
        *,
        embedding_init: str | initializers.Initializer | None = None,
        padding_idx: int | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.num_embeddings = _validate.positive_int("Embedding", "num_embeddings", num_embeddings)
        self.features = _validate.positive_int("Embedding", "features", features)
        check_dtypes("Embedding", param_dtype, dtype)
        _validate.initializer("Embedding", "embedding_init", embedding_init, allow_none=True)
        self.dtype = dtype
        check_padding_idx("Embedding", padding_idx, self.num_embeddings)
        self.padding_idx = padding_idx
        self._set_params(
            F.embedding_init(
                rngs.params(), num_embeddings, features, dtype=param_dtype,
                embedding_init=embedding_init, padding_idx=padding_idx,
            )
        )  # fmt: skip

    def __call__(self, ids: jax.typing.ArrayLike) -> jax.Array:
        """Maps integer ``ids (...)`` to ``(..., features)``."""
        y = F.embedding(self.params(), ids, padding_idx=self.padding_idx)
        return y if self.dtype is None else y.astype(self.dtype)

    def attend(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Logits ``(..., num_embeddings)`` of ``x (..., features)`` against the table."""
        return F.attend(self.params(), compute_dtype(x, self.dtype))
