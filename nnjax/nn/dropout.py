"""Dropout as a Flax NNX module with its own RNG stream."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

import nnjax.functional as F
from nnjax import _checks
from nnjax.nn import _validate
from nnjax.nn._base import recorded


def _fork_stream(rngs: nnx.Rngs | nnx.RngStream | None, collection: str, owner: str = "Dropout"):
    """A fork of the ``collection`` stream of ``rngs`` (``None`` stays); ``owner`` names errors."""
    return nnx.data(None) if rngs is None else _stream(rngs, collection, owner).fork()


def _stream(rngs: nnx.Rngs | nnx.RngStream, collection: str, owner: str) -> nnx.RngStream:
    """The ``collection`` stream of ``rngs``, or ``rngs`` itself when it is a stream."""
    if isinstance(rngs, nnx.RngStream):
        return rngs
    if isinstance(rngs, nnx.Rngs):
        try:
            return rngs[collection]
        except KeyError:
            raise ValueError(
                f"{owner}: `rngs` has no {collection!r} (or 'default') stream; "
                f"pass e.g. nnx.Rngs(0) or nnx.Rngs(params=0, {collection}=1)"
            ) from None
    raise TypeError(f"{owner}: `rngs` must be nnx.Rngs, nnx.RngStream or None, got {rngs!r}")


@recorded
class Dropout(nnx.Module):
    """Inverted dropout calling :func:`nnjax.functional.dropout`, toggled by train()/eval().

    The layer keeps a forked ``nnx.RngStream`` as state (``nnx.RngKey``/``nnx.RngCount``
    variables), so ``nnx.split(model, nnx.RngState, ...)`` separates it and each call
    draws a fresh mask. ``model.eval()`` sets ``deterministic=True`` (identity) and
    ``model.train()`` sets it back to ``False``.

    Args:
      rate: drop probability in ``[0, 1]``; ``1`` gives zeros while training (as
        Flax's ``nnx.Dropout(rate=1.0)`` and PyTorch's ``p=1``), reading no key.
      broadcast_dims: axes (ints, or one int) along which the mask is shared;
        ``(1, 2)`` on NHWC maps drops whole channels (spatial dropout).
      deterministic: start in inference mode (no dropout); a Python bool.
      rng_collection: name of the ``nnx.Rngs`` stream to fork (``"dropout"``, falling
        back to ``"default"``).
      rngs: ``nnx.Rngs`` or ``nnx.RngStream``; may be ``None`` if a key is passed at call
        (or the rate is 0 or 1).

    Raises:
      TypeError: ``rate`` is not a real number (e.g. a bool or a string),
        ``broadcast_dims`` is not an int or a sequence of ints, ``deterministic`` is
        not a bool, or ``rngs`` is none of the types above.
      ValueError: ``rate`` is outside ``[0, 1]`` or NaN, or ``rngs`` has neither the
        ``rng_collection`` stream nor ``"default"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> layer = Dropout(0.5, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 4))).shape
      (2, 4)
      >>> layer.eval()
      >>> layer(jnp.ones((2, 4)))
      Array([[1., 1., 1., 1.],
             [1., 1., 1., 1.]], dtype=float32)
    """

    def __init__(
        self,
        rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        deterministic: bool = False,
        rng_collection: str = "dropout",
        rngs: nnx.Rngs | nnx.RngStream | None = None,
    ):
        self.rate = _validate.rate("Dropout", "rate", rate)
        self.broadcast_dims = _checks.int_axes("Dropout", "broadcast_dims", broadcast_dims)
        self.deterministic = _checks.check_static_bool("Dropout", "deterministic", deterministic)
        self.rng_collection = rng_collection
        self.rngs = _fork_stream(rngs, rng_collection)

    def __call__(
        self,
        x: jax.typing.ArrayLike,
        *,
        deterministic: bool | None = None,
        key: jax.Array | None = None,
        rngs: nnx.Rngs | nnx.RngStream | None = None,
    ) -> jax.Array:
        """Drops elements of ``x`` (any shape) unless deterministic.

        Args:
          x: the input, any shape, floating dtype.
          deterministic: overrides the attribute for this call.
          key: a PRNG key to use instead of the layer's stream.
          rngs: as Flax's ``nnx.Dropout``: this call's key drawn from ``rngs`` (its
            ``rng_collection`` stream, or the stream itself) instead of the layer's.

        Returns:
          An array of ``x``'s shape and dtype: kept elements scaled by ``1 / (1 - rate)``,
          dropped ones 0; ``x`` itself when deterministic or ``rate == 0``.

        Raises:
          ValueError: dropout runs (``0 < rate < 1``, not deterministic) but the layer
            has no RNG stream and no ``key`` or ``rngs`` was passed; both were passed.
          TypeError: ``deterministic`` is not a bool or ``None``, or (when dropout
            runs) ``x`` is not floating or ``key`` is not a PRNG key.
        """
        deterministic = self.deterministic if deterministic is None else deterministic
        deterministic = _checks.check_static_bool("Dropout", "deterministic", deterministic)
        if deterministic or self.rate == 0.0:
            return jax.numpy.asarray(x)
        if self.rate == 1.0:  # zeros: no mask is drawn, so no key is read (as in Flax)
            return F.dropout(None, x, 1.0)
        if rngs is not None:
            if key is not None:
                raise ValueError("Dropout: pass `key` or `rngs`, not both")
            key = _stream(rngs, self.rng_collection, "Dropout")()
        if key is None:
            if self.rngs is None:
                raise ValueError(
                    "Dropout: no RNG stream; pass `rngs` to the constructor or `key` at call"
                )
            key = self.rngs()
        return F.dropout(key, x, self.rate, broadcast_dims=self.broadcast_dims)

    def set_view(self, deterministic: bool | None = None):
        """Sets ``deterministic`` in views made by ``nnx.view``.

        Args:
          deterministic: ``True`` turns dropout off; ``None`` leaves it.
        """
        if deterministic is not None:
            self.deterministic = deterministic
