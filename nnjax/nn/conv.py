"""The 2-D convolution layer as a Flax NNX module (the N-d layer of :mod:`nnjax.nn.conv_nd`)."""

from __future__ import annotations

from typing import ClassVar

import nnjax.functional as F
from nnjax.nn.conv_nd import _ConvND


class Conv2D(_ConvND):
    """NHWC convolution ``activation(conv2d(x) + bias)``, calling :func:`F.conv2d`.

    Args:
      in_channels: input channels.
      out_channels: output channels (number of filters).
      kernel_size: ``(kh, kw)`` or an int for a square kernel.
      stride: step of the window, an int or a pair.
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``.
      dilation: spacing between kernel taps, an int or a pair.
      feature_group_count: channel groups (``in_channels`` for depthwise); the kernel
        is then ``(kh, kw, in_channels // feature_group_count, out_channels)``.
      activation: a name, a callable or ``None``.
      use_bias: whether to add a bias.
      kernel_init: initializer (or name) for the kernel.
      bias_init: initializer (or name) for the bias.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: a size that is not a positive int, a ``kernel_size``, ``stride`` or
        ``dilation`` that is neither an int nor one per spatial axis, a bad ``padding``,
        a ``feature_group_count`` that does not divide both channel counts, or an
        unknown activation or initializer name.
      TypeError: ``use_bias`` is not a bool, a dtype is not floating, an activation or
        initializer is neither a name nor a callable, or ``rngs`` is not an
        ``nnx.Rngs``. Each names the layer and the argument, before any parameter is
        drawn. Calls raise as :func:`F.conv2d`.

    Example:
      >>> from flax import nnx
      >>> conv = Conv2D(1, 8, 3, padding="VALID", rngs=nnx.Rngs(0))
      >>> conv(jnp.ones((2, 28, 28, 1))).shape
      (2, 26, 26, 8)
      >>> depthwise = Conv2D(8, 8, 3, feature_group_count=8, rngs=nnx.Rngs(0))
      >>> depthwise.kernel.shape
      (3, 3, 1, 8)
    """

    _init = staticmethod(F.conv2d_init)
    _op = staticmethod(F.conv2d)
    _nd = 2
    _renamed_args: ClassVar[dict[str, str]] = {
        "in_features": "in_channels",
        "out_features": "out_channels",
    }
