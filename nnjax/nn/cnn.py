"""A configurable convolutional classifier: conv/pool blocks, then a dense head."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks, activations, initializers
from nnjax._deprecation import user_stacklevel
from nnjax.errors import ShapeError
from nnjax.functional import _utils
from nnjax.functional._conv_args import looks_channels_first
from nnjax.functional.conv import conv_padding
from nnjax.nn import _shapes, _validate
from nnjax.nn._base import recorded
from nnjax.nn.conv import Conv2D
from nnjax.nn.dropout import Dropout
from nnjax.nn.mlp import MLP
from nnjax.nn.normalization import BatchNorm
from nnjax.nn.pooling import AvgPool2D, MaxPool2D
from nnjax.nn.sequential import Sequential

_POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def image_shape(owner: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(H, W, C)`` from ``(H, W)`` or ``(H, W, C)``, else a ``ValueError``."""
    shape = _validate.positive_ints(owner, "input_shape", input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"{owner}: `input_shape` must be (H, W) or (H, W, C), got {input_shape}")
    return shape if len(shape) == 3 else (*shape, 1)


def with_channels(x: jax.typing.ArrayLike) -> jax.Array:
    """Adds a channel axis to ``(B, H, W)`` images; ``(B, H, W, C)`` passes unchanged."""
    x = jnp.asarray(x)
    return x[..., None] if x.ndim == 3 else x


def checked_images(
    owner: str, x: jax.typing.ArrayLike, input_shape: tuple[int, int, int]
) -> jax.Array:
    """``x`` as ``(B, H, W, C)`` images after checking them against ``input_shape``.

    Args:
      owner: the model doing the check, e.g. ``"CNN"``.
      x: ``(B, H, W, C)`` images, or ``(B, H, W)`` when ``C == 1`` (a channel axis is
        added).
      input_shape: the model's ``(H, W, C)``.

    Returns:
      ``(B, H, W, C)``.

    Raises:
      ShapeError: naming ``owner``, the argument ``x``, its shape, the expected shape
        and ``input_shape``. Runs on the static shape alone, so also under ``jax.jit``.
    """
    x = jnp.asarray(x)
    images = with_channels(x)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(input_shape):
        h, w, c = input_shape
        also = f" or (B, {h}, {w})" if c == 1 else ""
        raise ShapeError(
            f"{owner}: argument `x` has shape {tuple(x.shape)}, expected (B, {h}, {w}, {c})"
            f"{also}: the model was built for input_shape {tuple(input_shape)}"
        )
    return images


@recorded
class CNN(nnx.Module):
    """Conv blocks ``conv -> [batch norm] -> activation -> [pool] -> [dropout]``, then an MLP.

    Args:
      input_shape: one image, ``(H, W)`` or ``(H, W, C)``. Calls accept ``(B, H, W)``
        (a channel axis is added) or ``(B, H, W, C)``.
      out_features: size of the output (logits unless ``output_activation``).
      conv_features: filters per conv block, e.g. ``(32, 64)``.
      kernel_size: conv kernel size, an int or a pair.
      padding: conv padding, ``"SAME"`` or ``"VALID"``.
      pool: ``"max"``, ``"avg"`` or ``None`` after every block.
      pool_window: pooling window (and stride).
      dense: sizes of the hidden dense layers of the head, e.g. ``(128,)``.
      activation: activation of conv blocks and hidden dense layers.
      output_activation: activation of the last layer (``None``: logits).
      dropout: dropout rate in the dense head (0: none).
      conv_dropout: spatial dropout rate after each conv block (whole channels).
      batch_norm: insert :class:`BatchNorm` after every convolution.
      kernel_init: initializer of every kernel.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with ``params`` (and ``dropout``) streams.

    Raises:
      ValueError: a bad argument, named as ``CNN``'s (e.g. ``out_features=0`` or an
        unknown ``kernel_init`` name), or an ``input_shape`` too small for the blocks
        (a channels-first ``(C, H, W)`` one is named so). Calls raise ``ShapeError``
        for images of another shape than ``input_shape``.
      TypeError: ``dropout`` or ``conv_dropout`` is not a real number,
        ``batch_norm`` is not a bool, ``kernel_init`` is neither a name nor a
        callable, ``param_dtype`` is not a floating dtype, or ``dtype`` is neither
        ``None`` nor one.

    Example:
      >>> from flax import nnx
      >>> model = CNN((28, 28), 10, conv_features=(8, 16), dense=(32,), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28))).shape
      (2, 10)
    """

    _renamed_args: ClassVar[dict[str, str]] = {"num_classes": "out_features"}

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        *,
        conv_features: Sequence[int] = (32, 64),
        kernel_size: int | tuple[int, int] = 3,
        padding: str = "SAME",
        pool: str | None = "max",
        pool_window: int | tuple[int, int] = 2,
        dense: Sequence[int] = (128,),
        activation: str | activations.Activation = "relu",
        output_activation: str | activations.Activation | None = None,
        dropout: float = 0.0,
        conv_dropout: float = 0.0,
        batch_norm: bool = False,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.input_shape = image_shape("CNN", input_shape)
        _warn_if_channels_first(self.input_shape)
        _validate.positive_int("CNN", "out_features", out_features)
        conv_features = _validate.positive_ints("CNN", "conv_features", conv_features)
        _validate.positive_ints("CNN", "dense", dense)
        for arg, value in (("kernel_size", kernel_size), ("pool_window", pool_window)):
            _utils.ntuple(value, 2, arg, "CNN")  # an int or a pair, named as CNN's
        conv_padding("CNN", 2, padding)
        act = _validate.activation("CNN", "activation", activation)
        _validate.activation("CNN", "output_activation", output_activation)
        _validate.rate("CNN", "dropout", dropout)
        _validate.rate("CNN", "conv_dropout", conv_dropout)
        batch_norm = _checks.check_static_bool("CNN", "batch_norm", batch_norm)
        _validate.float_dtype("CNN", "param_dtype", param_dtype)
        _validate.float_dtype("CNN", "dtype", dtype, allow_none=True)
        _validate.initializer("CNN", "kernel_init", kernel_init)
        pool_cls = (
            None if pool is None else _POOLS[_validate.choice("CNN", "pool", pool, tuple(_POOLS))]
        )
        layers: list[Any] = []
        channels = self.input_shape[-1]
        for features in conv_features:
            conv = Conv2D(
                channels,
                features,
                kernel_size,
                padding=padding,
                activation=None if batch_norm else act,
                kernel_init=kernel_init,
                param_dtype=param_dtype,
                dtype=dtype,
                rngs=rngs,
            )
            layers.append(conv)
            if batch_norm:
                layers += [
                    BatchNorm(features, param_dtype=param_dtype, dtype=dtype, rngs=rngs),
                    act,
                ]
            if pool_cls is not None:
                layers.append(pool_cls(pool_window))
            if conv_dropout:
                layers.append(Dropout(conv_dropout, broadcast_dims=(1, 2), rngs=rngs))
            channels = features
        self.features = Sequential(*layers)
        flat = _feature_shape(self.features, self.input_shape, conv_features, padding)
        self.head = MLP(
            flat[1] * flat[2] * flat[3],
            dense,
            out_features,
            activation=activation,
            output_activation=output_activation,
            dropout=dropout,
            kernel_init=kernel_init,
            param_dtype=param_dtype,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, H, W)`` or ``(B, H, W, C)`` images to ``(B, out_features)``.

        Args:
          x: ``(B, H, W, C)`` images with ``(H, W, C) == input_shape``, or ``(B, H, W)``
            when ``C == 1`` (a channel axis is added); floating (any dtype when the
            model has a compute ``dtype``: it is cast to it).

        Returns:
          ``(B, out_features)`` (logits unless ``output_activation``), in the compute
          dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: ``x`` is not a batch of images of ``input_shape`` (checked
            on the static shape, so also under ``jax.jit``).
          TypeError: ``x`` is not floating and the model has no ``dtype``.
        """
        return self.head(self.features(checked_images("CNN", x, self.input_shape)))


def _warn_if_channels_first(shape: tuple[int, ...]) -> None:
    """Warns for ``(C, H, W)``-looking shapes: ``C`` of 1, 3 or 4 before square images."""
    if len(shape) == 3 and looks_channels_first(shape):
        c, h, w = shape
        warnings.warn(
            f"CNN: input_shape {shape} reads as {c}x{h} images of {w} channels (nnjax is "
            f"channels-last); for channels-first (C, H, W) images pass input_shape={(h, w, c)} "
            "and x.transpose(0, 2, 3, 1)",
            stacklevel=user_stacklevel(),
        )


def _feature_shape(features: Sequential, input_shape, conv_features, padding) -> tuple:
    """The shape of the conv blocks' output for one image; names ``CNN`` if it is empty."""
    try:
        return _shapes.output_shape(features, (1, *input_shape))
    except ValueError as err:  # a window larger than the shrunken feature maps
        hint = ""
        if len(input_shape) == 3 and input_shape[0] <= 4 < input_shape[-1]:
            hint = " (is it channels-first (C, H, W)? input_shape is (H, W) or (H, W, C))"
        raise ValueError(
            f"CNN: input_shape {tuple(input_shape)}{hint} is too small for "
            f"conv_features={tuple(conv_features)} with padding {padding!r}: the feature "
            f"maps shrink below a window ({err})"
        ) from None
