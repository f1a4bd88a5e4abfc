"""N-d convolutions (1-D, 3-D; ``Conv2D`` in :mod:`nnjax.nn.conv`) and transposed ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import _checks, activations, initializers
from nnjax.functional import _utils
from nnjax.functional._conv_args import check_groups
from nnjax.functional._conv_transpose_pads import check_output_padding, transpose_pads
from nnjax.functional.conv import Padding, conv_padding
from nnjax.functional.conv_transpose import TransposePadding
from nnjax.nn import _validate
from nnjax.nn._base import FunctionalModule, check_dtypes, compute_dtype

Size = int | tuple[int, ...]


class _Conv(FunctionalModule):
    """Shared constructor and call; subclasses set ``_init``, ``_op`` and ``_call_args``."""

    _init: Callable[..., dict] = staticmethod(F.conv1d_init)
    _op: Callable[..., jax.Array] = staticmethod(F.conv1d)
    _nd: ClassVar[int] = 1  # the number of spatial axes
    _call_args: tuple[str, ...] = ("stride", "padding", "dilation", "feature_group_count")
    kernel: nnx.Param
    bias: nnx.Param | None  # None without use_bias
    dtype: jnp.dtype | None  # the compute dtype; each subclass's constructor sets it
    # The call's arguments (``_call_args``), set by ``_setup`` from the constructor's.
    stride: Size
    padding: Padding | Size
    dilation: Size
    feature_group_count: int
    output_padding: Size  # transposed convolutions only

    def _setup(self, in_channels, out_channels, kernel_size, *, activation, rngs,
               init_kwargs: dict[str, Any], call_kwargs: dict[str, Any]) -> None:  # fmt: skip
        """Checks every argument (naming this layer), then draws the parameters."""
        name, nd = type(self).__name__, self._nd
        self.in_channels = _validate.positive_int(name, "in_channels", in_channels)
        self.out_channels = _validate.positive_int(name, "out_channels", out_channels)
        self.kernel_size = _validate.positive_ints(name, "kernel_size", kernel_size)
        kernel = _utils.ntuple(kernel_size, nd, "kernel_size", name)  # one per spatial axis
        for arg in ("stride", "dilation"):
            _utils.ntuple(call_kwargs[arg], nd, arg, name)
        self.activation = _validate.activation(name, "activation", activation)
        check_dtypes(name, init_kwargs["dtype"], self.dtype)
        _checks.check_static_bool(name, "use_bias", init_kwargs["use_bias"])
        for arg in ("kernel_init", "bias_init"):
            _validate.initializer(name, arg, init_kwargs[arg])
        groups = init_kwargs.get("feature_group_count", 1)  # named as this layer's argument
        check_groups(name, groups, self.in_channels, self.out_channels)
        for key, value in call_kwargs.items():
            setattr(self, key, value)
        self._check_padding(call_kwargs["padding"], kernel)
        self._set_params(
            self._init(rngs.params(), in_channels, out_channels, kernel_size, **init_kwargs),
            optional=("bias",),
        )

    def _check_padding(self, padding: Any, kernel: tuple[int, ...]) -> None:
        """Raises ``ValueError`` naming this layer for a bad ``padding`` (at construction)."""
        conv_padding(type(self).__name__, self._nd, padding)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, *spatial, in_channels)`` to ``(B, *spatial', out_channels)``."""
        kwargs = {name: getattr(self, name) for name in self._call_args}
        y = self._op(self.params(), compute_dtype(x, self.dtype), **kwargs)
        return self.activation(y)


_CONV_DOC = """
    Args:
      in_channels: input channels.
      out_channels: output channels (number of filters).
      kernel_size: an int or one size per spatial axis.
      stride: step of the window.
      padding: ``"SAME"``, ``"VALID"``, an int, one int per axis (PyTorch's) or one
        ``(lo, hi)`` pair per axis.
      dilation: spacing between kernel taps.
      feature_group_count: channel groups (``in_channels`` for depthwise).
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
        drawn. Calls raise as the functional op.
"""


class _ConvND(_Conv):
    """The convolution layers' constructor (``Conv1D``, ``Conv2D``, ``Conv3D``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size = 3,
        *,
        stride: Size = 1,
        padding: Padding = "SAME",
        dilation: Size = 1,
        feature_group_count: int = 1,
        activation: str | activations.Activation | None = None,
        use_bias: bool = True,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        bias_init: str | initializers.Initializer = "zeros",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        init = {"dtype": param_dtype, "kernel_init": kernel_init, "bias_init": bias_init,
                "use_bias": use_bias, "feature_group_count": feature_group_count}  # fmt: skip
        call = {"stride": stride, "padding": padding, "dilation": dilation,
                "feature_group_count": feature_group_count}  # fmt: skip
        self._setup(in_channels, out_channels, kernel_size, activation=activation, rngs=rngs,
                    init_kwargs=init, call_kwargs=call)  # fmt: skip


class Conv1D(_ConvND):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Convolution over ``(B, T, C)`` sequences, calling :func:`F.conv1d`.\n"
        + _CONV_DOC
        + """
    Example:
      >>> from flax import nnx
      >>> Conv1D(3, 8, 5, padding="VALID", rngs=nnx.Rngs(0))(jnp.ones((2, 20, 3))).shape
      (2, 16, 8)
"""
    )


class Conv3D(_ConvND):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Convolution over ``(B, D, H, W, C)`` volumes, calling :func:`F.conv3d`.\n"
        + _CONV_DOC
        + """
    Example:
      >>> from flax import nnx
      >>> Conv3D(1, 4, 3, stride=2, rngs=nnx.Rngs(0))(jnp.ones((1, 8, 8, 8, 1))).shape
      (1, 4, 4, 4, 4)
"""
    )
    _init = staticmethod(F.conv3d_init)
    _op = staticmethod(F.conv3d)
    _nd = 3


class _ConvTranspose(_Conv):
    """The transposed convolution layers' constructor."""

    _call_args = ("stride", "padding", "output_padding", "dilation", "feature_group_count")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size = 3,
        *,
        stride: Size = 1,
        padding: TransposePadding = 0,
        output_padding: Size = 0,
        dilation: Size = 1,
        feature_group_count: int = 1,
        activation: str | activations.Activation | None = None,
        use_bias: bool = True,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        bias_init: str | initializers.Initializer = "zeros",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        init = {"dtype": param_dtype, "kernel_init": kernel_init, "bias_init": bias_init,
                "use_bias": use_bias, "feature_group_count": feature_group_count}  # fmt: skip
        call = {"stride": stride, "padding": padding, "output_padding": output_padding,
                "dilation": dilation, "feature_group_count": feature_group_count}  # fmt: skip
        self._setup(in_channels, out_channels, kernel_size, activation=activation, rngs=rngs,
                    init_kwargs=init, call_kwargs=call)  # fmt: skip

    def _check_padding(self, padding: Any, kernel: tuple[int, ...]) -> None:
        """Raises ``ValueError`` for a bad ``padding`` or ``output_padding`` (at construction)."""
        name, nd = type(self).__name__, self._nd
        extra, stride, dilation = check_output_padding(
            name, nd, self.output_padding, self.stride, self.dilation
        )
        transpose_pads(name, nd, kernel, padding, stride, dilation, extra)


_TRANSPOSE_DOC = """
    Output sizes follow PyTorch: ``(n - 1) * stride - 2 * padding + dilation * (k - 1)
    + output_padding + 1`` per spatial axis (``padding="SAME"``: ``n * stride``).

    Args:
      in_channels: input channels.
      out_channels: output channels.
      kernel_size: an int or one size per spatial axis.
      stride: upsampling factor.
      padding: PyTorch's ``padding`` (an int or one per axis), ``"VALID"`` (0) or
        ``"SAME"`` (the adjoint of a ``"SAME"`` convolution of that stride).
      output_padding: extra size at the end of each axis (< stride or dilation).
      dilation: spacing between kernel taps.
      feature_group_count: channel groups (PyTorch's ``groups``); the kernel is
        ``(*k, in_channels, out_channels // feature_group_count)``.
      activation: a name, a callable or ``None``.
      use_bias: whether to add a bias.
      kernel_init: initializer (or name) for the kernel.
      bias_init: initializer (or name) for the bias.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: a size that is not a positive int, a ``kernel_size``, ``stride`` or
        ``dilation`` that is neither an int nor one per spatial axis, a bad ``padding``
        or ``output_padding`` (not smaller than the stride or the dilation on some
        axis), a ``feature_group_count`` that does not divide both channel counts, or
        an unknown activation or initializer name.
      TypeError: ``use_bias`` is not a bool, a dtype is not floating, an activation or
        initializer is neither a name nor a callable, or ``rngs`` is not an
        ``nnx.Rngs``. Each names the layer and the argument, before any parameter is
        drawn. Calls raise as the functional op.
"""


class ConvTranspose1D(_ConvTranspose):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Transposed convolution of ``(B, T, C)``, calling :func:`F.conv_transpose1d`.\n"
        + _TRANSPOSE_DOC
        + """
    Example:
      >>> from flax import nnx
      >>> ConvTranspose1D(4, 2, 3, stride=2, rngs=nnx.Rngs(0))(jnp.ones((1, 5, 4))).shape
      (1, 11, 2)
"""
    )
    _init = staticmethod(F.conv_transpose1d_init)
    _op = staticmethod(F.conv_transpose1d)


class ConvTranspose2D(_ConvTranspose):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Transposed convolution of NHWC images, calling :func:`F.conv_transpose2d`.\n"
        + _TRANSPOSE_DOC
        + """
    Example:
      >>> from flax import nnx
      >>> up = ConvTranspose2D(8, 3, 3, stride=2, padding=1, output_padding=1,
      ...                      rngs=nnx.Rngs(0))
      >>> up(jnp.ones((1, 7, 7, 8))).shape
      (1, 14, 14, 3)
"""
    )
    _init = staticmethod(F.conv_transpose2d_init)
    _op = staticmethod(F.conv_transpose2d)
    _nd = 2


class ConvTranspose3D(_ConvTranspose):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        "Transposed convolution of ``(B, D, H, W, C)``, calling :func:`F.conv_transpose3d`.\n"
        + _TRANSPOSE_DOC
        + """
    Example:
      >>> from flax import nnx
      >>> up = ConvTranspose3D(2, 1, 2, stride=2, rngs=nnx.Rngs(0))
      >>> up(jnp.ones((1, 3, 3, 3, 2))).shape
      (1, 6, 6, 6, 1)
"""
    )
    _init = staticmethod(F.conv_transpose3d_init)
    _op = staticmethod(F.conv_transpose3d)
    _nd = 3
