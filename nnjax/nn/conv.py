"""The 2-D convolution layer as a Flax NNX module."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import activations, initializers
from nnjax.functional.conv import Padding
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, compute_dtype


class Conv2D(FunctionalModule):
    """NHWC convolution ``activation(conv2d(x) + bias)``, calling :func:`F.conv2d`.

    Args:
      in_channels: input channels.
      out_channels: output channels (number of filters).
      kernel_size: ``(kh, kw)`` or an int for a square kernel.
      stride: step of the window, an int or a pair.
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``.
      dilation: spacing between kernel taps, an int or a pair.
      activation: a name, a callable or ``None``.
      use_bias: whether to add a bias.
      kernel_init: initializer (or name) for the kernel.
      bias_init: initializer (or name) for the bias.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Example:
      >>> from flax import nnx
      >>> conv = Conv2D(1, 8, 3, padding="VALID", rngs=nnx.Rngs(0))
      >>> conv(jnp.ones((2, 28, 28, 1))).shape
      (2, 26, 26, 8)
    """

    _renamed_args: ClassVar[dict[str, str]] = {
        "in_features": "in_channels",
        "out_features": "out_channels",
    }

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        *,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "SAME",
        dilation: int | tuple[int, int] = 1,
        activation: str | activations.Activation | None = None,
        use_bias: bool = True,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        bias_init: str | initializers.Initializer = "zeros",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.in_channels = _validate.positive_int("Conv2D", "in_channels", in_channels)
        self.out_channels = _validate.positive_int("Conv2D", "out_channels", out_channels)
        self.kernel_size = _validate.positive_ints("Conv2D", "kernel_size", kernel_size)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.activation = _validate.activation("Conv2D", "activation", activation)
        self.dtype = dtype
        self._set_params(
            F.conv2d_init(
                rngs.params(),
                in_channels,
                out_channels,
                kernel_size,
                dtype=param_dtype,
                kernel_init=kernel_init,
                bias_init=bias_init,
                use_bias=use_bias,
            )
        )

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, H, W, in_channels)`` to ``(B, H', W', out_channels)``."""
        y = F.conv2d(
            self.params(),
            compute_dtype(x, self.dtype),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )
        return self.activation(y)
