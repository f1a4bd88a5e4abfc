"""Autoencoders exposing ``encode`` and ``decode``: dense and convolutional."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import activations
from nnjax.errors import ShapeError
from nnjax.nn import _validate
from nnjax.nn._base import recorded
from nnjax.nn.cnn import checked_images, image_shape
from nnjax.nn.conv import Conv2D
from nnjax.nn.dense import Dense
from nnjax.nn.mlp import MLP, flat_rows
from nnjax.nn.reshape import Flatten, Reshape, Upsample2D
from nnjax.nn.sequential import Sequential

Act = str | activations.Activation | None


@recorded
class Autoencoder(nnx.Module):
    """A dense autoencoder ``in -> hidden -> latent -> reversed(hidden) -> in``.

    Args:
      in_features: features per example; ``(B, 28, 28)`` images are flattened.
      hidden: encoder hidden sizes, mirrored in the decoder, e.g. ``(300, 100)``.
      latent: size of the code, e.g. 2 to plot Fashion-MNIST in the plane.
      activation: hidden activation.
      latent_activation: activation of the code (``None``: linear).
      output_activation: activation of the reconstruction (``"sigmoid"`` for [0, 1] data).
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: a bad size or an unknown activation name, named as ``Autoencoder``'s.
      TypeError: ``param_dtype`` is not a floating dtype, or ``dtype`` is neither
        ``None`` nor one.

    Example:
      >>> model = Autoencoder(784, (100,), 2, rngs=nnx.Rngs(0))
      >>> model.encode(jnp.ones((3, 28, 28))).shape, model(jnp.ones((3, 28, 28))).shape
      ((3, 2), (3, 28, 28))
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (300, 100),
        latent: int = 2,
        *,
        activation: Act = "relu",
        latent_activation: Act = None,
        output_activation: Act = "sigmoid",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        _validate.positive_int("Autoencoder", "in_features", in_features)
        hidden = _validate.positive_ints("Autoencoder", "hidden", hidden)
        _validate.positive_int("Autoencoder", "latent", latent)
        _check_common("Autoencoder", activation, latent_activation, output_activation)
        _validate.float_dtype("Autoencoder", "param_dtype", param_dtype)
        _validate.float_dtype("Autoencoder", "dtype", dtype, allow_none=True)
        kw: dict[str, Any] = dict(
            activation=activation, param_dtype=param_dtype, dtype=dtype, rngs=rngs
        )
        self.encoder = MLP(in_features, hidden, latent, output_activation=latent_activation, **kw)
        self.decoder = MLP(
            latent, hidden[::-1], in_features, output_activation=output_activation, **kw
        )

    def encode(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, ...)`` (flattened to ``in_features``) to codes ``(B, latent)``.

        Args:
          x: ``(B, in_features)``, or ``(B, d1, d2, ...)`` with ``d1 * d2 * ... ==
            in_features`` (e.g. ``(B, 28, 28)`` images); floating (any dtype when the
            model has a compute ``dtype``: it is cast to it).

        Returns:
          Codes ``(B, latent)`` in the compute dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: ``x`` has no batch axis (one example is ``x[None]``), or its
            features (flattened) are not ``in_features``.
          TypeError: ``x`` is not floating and the model has no ``dtype``.
        """
        return self.encoder(flat_rows("Autoencoder", "x", x, self.encoder.in_features))

    def decode(self, z: jax.typing.ArrayLike) -> jax.Array:
        """Maps codes ``(B, latent)`` to flat reconstructions ``(B, in_features)``.

        Args:
          z: codes ``(B, latent)``, e.g. from :meth:`encode` or points of the latent
            plane; floating (any dtype when the model has a compute ``dtype``).

        Returns:
          ``(B, in_features)`` in the compute dtype (``dtype``, else the dtype of ``z``);
          reshape it to see images.

        Raises:
          nnjax.ShapeError: ``z`` is not ``(B, latent)`` (one code is ``z[None]``).
          TypeError: ``z`` is not floating and the model has no ``dtype``.
        """
        return self.decoder(checked_codes("Autoencoder", z, self.decoder.in_features))

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Reconstructs ``x``, returning the shape of ``x``.

        Args:
          x: as :meth:`encode`: ``(B, in_features)`` or ``(B, d1, d2, ...)`` (e.g.
            ``(B, H, W)`` or ``(B, H, W, C)`` images) with ``d1 * d2 * ... ==
            in_features``, floating.

        Returns:
          The reconstruction, the shape of ``x``, in the compute dtype (``dtype``,
          else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: as :meth:`encode`.
          TypeError: as :meth:`encode`.
        """
        x = jnp.asarray(x)
        return self.decode(self.encode(x)).reshape(x.shape)


@recorded
class ConvAutoencoder(nnx.Module):
    """A convolutional autoencoder: strided convs -> dense code -> upsampling convs.

    Each encoder block halves the image with a stride-2 convolution; the decoder maps the
    code back with a dense layer, then upsamples by 2 and convolves per block.

    Args:
      input_shape: one image ``(H, W)`` or ``(H, W, C)``; ``H`` and ``W`` must be
        divisible by ``2 ** len(conv_features)``.
      conv_features: filters per encoder block, e.g. ``(16, 32)`` (mirrored in the decoder).
      latent: size of the code.
      kernel_size: conv kernel size.
      activation: activation of every hidden layer.
      latent_activation: activation of the code (``None``: linear).
      output_activation: activation of the reconstruction (``"sigmoid"``).
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: a bad argument, named as ``ConvAutoencoder``'s (e.g. ``latent=0``,
        ``kernel_size=0``, an unknown activation name, or an ``input_shape`` whose ``H``
        or ``W`` is not divisible). ``encode`` and calls raise ``ShapeError`` for images
        of another shape than ``input_shape``, ``decode`` for codes not ``(B, latent)``.
      TypeError: ``param_dtype`` is not a floating dtype, or ``dtype`` is neither
        ``None`` nor one.

    Example:
      >>> model = ConvAutoencoder((28, 28), (4, 8), latent=2, rngs=nnx.Rngs(0))
      >>> model.encode(jnp.ones((3, 28, 28))).shape, model(jnp.ones((3, 28, 28))).shape
      ((3, 2), (3, 28, 28))
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        conv_features: Sequence[int] = (16, 32),
        latent: int = 2,
        *,
        kernel_size: int | tuple[int, int] = 3,
        activation: Act = "relu",
        latent_activation: Act = None,
        output_activation: Act = "sigmoid",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        h, w, c = image_shape("ConvAutoencoder", input_shape)
        feats = _validate.positive_ints(
            "ConvAutoencoder", "conv_features", conv_features, allow_empty=False
        )
        latent = _validate.positive_int("ConvAutoencoder", "latent", latent)
        _validate.positive_ints("ConvAutoencoder", "kernel_size", kernel_size, allow_empty=False)
        _check_common("ConvAutoencoder", activation, latent_activation, output_activation)
        _validate.float_dtype("ConvAutoencoder", "param_dtype", param_dtype)
        _validate.float_dtype("ConvAutoencoder", "dtype", dtype, allow_none=True)
        scale = 2 ** len(feats)
        if h % scale or w % scale:
            raise ValueError(
                f"ConvAutoencoder: `input_shape` {tuple(input_shape)} must have H and W "
                f"divisible by 2**len(conv_features) = {scale}"
            )
        kw: dict[str, Any] = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs)
        conv = lambda n_in, n_out, act, stride=1: Conv2D(
            n_in, n_out, kernel_size, stride=stride, activation=act, **kw
        )
        code_shape = (h // scale, w // scale, feats[-1])
        chans = [c, *feats]
        down = [conv(a, b, activation, 2) for a, b in itertools.pairwise(chans)]
        self.encoder = Sequential(
            *down,
            Flatten(),
            Dense(math.prod(code_shape), latent, activation=latent_activation, **kw),
        )
        up = []
        for i in range(len(feats), 0, -1):
            last = i == 1
            up += [
                Upsample2D(2),
                conv(chans[i], chans[i - 1], output_activation if last else activation),
            ]
        self.decoder = Sequential(
            Dense(latent, math.prod(code_shape), activation=activation, **kw),
            Reshape(code_shape),
            *up,
        )
        self.input_shape = (h, w, c)
        self.latent = latent

    def encode(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps images ``(B, H, W)`` or ``(B, H, W, C)`` to codes ``(B, latent)``.

        Args:
          x: ``(B, H, W, C)`` images with ``(H, W, C) == input_shape``, or ``(B, H, W)``
            when ``C == 1`` (a channel axis is added); floating (any dtype when the
            model has a compute ``dtype``: it is cast to it).

        Returns:
          Codes ``(B, latent)`` in the compute dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: ``x`` is not a batch of images of ``input_shape`` (checked
            on the static shape, so also under ``jax.jit``).
          TypeError: ``x`` is not floating and the model has no ``dtype``.
        """
        return self.encoder(checked_images("ConvAutoencoder", x, self.input_shape))

    def decode(self, z: jax.typing.ArrayLike) -> jax.Array:
        """Maps codes ``(B, latent)`` to images ``(B, H, W, C)``.

        Args:
          z: codes ``(B, latent)``, e.g. from :meth:`encode`; floating (any dtype when
            the model has a compute ``dtype``).

        Returns:
          Images ``(B, H, W, C)`` with ``(H, W, C) == input_shape`` (a channel axis even
          for an ``(H, W)`` ``input_shape``), in the compute dtype (``dtype``, else the
          dtype of ``z``).

        Raises:
          nnjax.ShapeError: ``z`` is not ``(B, latent)`` (one code is ``z[None]``).
          TypeError: ``z`` is not floating and the model has no ``dtype``.
        """
        return self.decoder(checked_codes("ConvAutoencoder", z, self.latent))

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Reconstructs ``x``, returning the shape of ``x``.

        Args:
          x: as :meth:`encode`: ``(B, H, W, C)`` images of ``input_shape``, or
            ``(B, H, W)`` when ``C == 1``; floating.

        Returns:
          The reconstruction, the shape of ``x`` (``(B, H, W)`` in, ``(B, H, W)`` out),
          in the compute dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: as :meth:`encode`.
          TypeError: as :meth:`encode`.
        """
        x = jnp.asarray(x)
        return self.decode(self.encode(x)).reshape(x.shape)


def checked_codes(owner: str, z: jax.typing.ArrayLike, latent: int) -> jax.Array:
    """``z`` after checking it is a batch of codes ``(B, latent)`` (static shape).

    Raises:
      ShapeError: naming ``owner``, the argument ``z``, its shape and ``(B, latent)``.
    """
    z = jnp.asarray(z)
    if z.ndim != 2 or z.shape[1] != latent:
        hint = "; one code needs a batch axis: z[None]" if z.shape == (latent,) else ""
        raise ShapeError(
            f"{owner}: argument `z` has shape {tuple(z.shape)}, expected (B, {latent}): a "
            f"batch of codes of the model's latent size {latent}{hint}"
        )
    return z


def _check_common(owner: str, *acts: Act) -> None:
    """Names ``owner`` for an unknown activation (else the inner layer would be named)."""
    names = ("activation", "latent_activation", "output_activation")
    for name, act in zip(names, acts):
        _validate.activation(owner, name, act)
