"""The transposed and strided convolution groups of ``bench_ops.py``: shapes and timed calls.

Both are about the stride-dilated convolution (``lhs_dilation``): the forward pass of a
transposed convolution and the input gradient of a strided one. nnjax computes both
as stride-1 convolutions and a pixel shuffle on the CPU
(``nnjax/functional/_conv_subpixel.py``); the rows compare that with ``lax``'s
dilated convolution and PyTorch. Builders return ``({row: (call, sync)}, picked)``
like those of ``_op_convs.py``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import _cli as C
import _harness as H
from _op_convs import Calls, halved, jax_fwd_bwd, rand, torch_fwd_bwd, torch_leaves

H.ensure_nnjax_importable()

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def transpose_shapes(batch: int, quick: bool) -> dict[str, tuple]:
    """name -> (x shape, out channels, kernel, stride, padding, output padding)."""
    if quick:
        return {"4x4x4->2 k3s2": ((batch, 4, 4, 4), 2, 3, 2, 1, 1)}
    return {  # a DCGAN generator's, a U-Net decoder's, a 3-D decoder's, an audio one's
        "7x7x64->32 k4s2": ((batch, 7, 7, 64), 32, 4, 2, 1, 0),
        "14x14x32->1 k4s2": ((batch, 14, 14, 32), 1, 4, 2, 1, 0),
        "16x16x64->32 k3s2": ((batch, 16, 16, 64), 32, 3, 2, 1, 1),
        "7x7x256->128 k3s2": ((batch, 7, 7, 256), 128, 3, 2, 1, 1),
        "16x16x64->32 k2s2": ((batch, 16, 16, 64), 32, 2, 2, 0, 0),
        "4x8x8x64->32 k3s2": ((batch, 4, 8, 8, 64), 32, 3, 2, 1, 1),
        "8x16x16x32->16 k3s2": ((batch, 8, 16, 16, 32), 16, 3, 2, 1, 1),
        "128x64->32 k4s2": ((batch, 128, 64), 32, 4, 2, 1, 0),
    }


@contextlib.contextmanager
def _attribute(module, name: str, value) -> Iterator[None]:
    """``module.name = value`` within the block (read when a function is traced)."""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _library_jit_with(module, name: str, value) -> Callable[[Callable], Callable]:
    """``fit``'s jit, tracing with ``module.name`` set to ``value`` (backward pass included)."""
    from nnjax.functional import _conv_compiler

    def jit(fn: Callable) -> Callable:
        def traced(*args):
            with _attribute(module, name, value):
                return fn(*args)

        return _conv_compiler.jit(traced)

    return jit


def _operands(x_shape, out_channels: int, size: int):
    """``(x, kernel as NumPy, params)``: a standard-normal input, a kernel times 0.1, zero bias."""
    nd = len(x_shape) - 2
    kernel = rand((*(size,) * nd, x_shape[-1], out_channels), 1) * 0.1
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(out_channels)}
    return jnp.asarray(rand(x_shape, 0)), kernel, params


def _none(kernel_shape, plans) -> tuple[bool, ...]:
    """No axis separated: one stride-1 convolution for every phase."""
    return (False,) * len(plans)


def _every(kernel_shape, plans) -> tuple[bool, ...]:
    """Every axis separated: one stride-1 convolution per phase."""
    return (True,) * len(plans)


def transpose_calls(x_shape, out_channels: int, size: int, stride: int, padding: int,
                    output_padding: int) -> tuple[Calls, str]:  # fmt: skip
    """``F.conv_transpose{1,2,3}d`` as ``fit`` compiles it, each way, and PyTorch's.

    Rows ``library_auto`` (the pick), ``library_shared`` / ``library_phases`` (one
    stride-1 convolution for all phases / one per phase; the pick may separate the
    phases of some axes only), ``library_dilated`` (``lax``'s
    stride-dilated convolution, nnjax's before), ``auto`` (plain ``jax.jit``), ``torch``.
    """
    import nnjax.functional as F
    from nnjax.functional import _conv_compiler, _conv_subpixel, conv_transpose

    nd = len(x_shape) - 2
    op = functools.partial(getattr(F, f"conv_transpose{nd}d"), stride=stride, padding=padding,
                           output_padding=output_padding)  # fmt: skip
    x, kernel, params = _operands(x_shape, out_channels, size)
    jits = {
        "library_auto": _conv_compiler.jit,
        "library_shared": _library_jit_with(_conv_subpixel, "separate_axes", _none),
        "library_phases": _library_jit_with(_conv_subpixel, "separate_axes", _every),
        "library_dilated": _library_jit_with(conv_transpose, "_subpixel_applies", lambda x: False),
    }
    calls: Calls = {
        k: (jax_fwd_bwd(halved(op), params, x, jit=j), H.sync_jax) for k, j in jits.items()
    }
    calls["auto"] = (jax_fwd_bwd(halved(op), params, x), H.sync_jax)
    if C.missing_module("torch") is None:
        import torch

        channels_first = np.moveaxis(np.asarray(x), -1, 1)
        tx, tk, tb = torch_leaves(channels_first, np.moveaxis(kernel, (-2, -1), (0, 1)),
                                  np.zeros(out_channels, np.float32))  # fmt: skip
        fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
        conv = lambda x, k, b: fn(x, k, b, stride=stride, padding=padding,
                                  output_padding=output_padding)  # fmt: skip
        calls["torch"] = (torch_fwd_bwd(halved(conv), [tx, tk, tb]), H.torch_device()[1])
    return calls, "library_auto"


def strided_shapes(batch: int, quick: bool) -> dict[str, tuple]:
    """name -> (x shape, out channels, kernel size): stride-2 convolutions, padding k // 2."""
    if quick:
        return {"8x8x4->8 k3": ((batch, 8, 8, 4), 8, 3)}
    return {  # a ResNet's stem and downsampling layers, a 1-D and a 3-D one
        "112x112x3->64 k7": ((batch, 112, 112, 3), 64, 7),
        "56x56x64->128 k3": ((batch, 56, 56, 64), 128, 3),
        "14x14x256->512 k3": ((batch, 14, 14, 256), 512, 3),
        "28x28x128->256 k1": ((batch, 28, 28, 128), 256, 1),
        "256x64->64 k3": ((batch, 256, 64), 64, 3),
        "16x16x16x32->64 k3": ((batch, 16, 16, 16, 32), 64, 3),
    }


def strided_calls(x_shape, out_channels: int, size: int) -> tuple[Calls, str]:
    """A stride-2 ``F.conv{1,2,3}d`` as ``fit`` compiles it, and PyTorch's.

    Rows ``library_auto`` (the pick; where it is Eigen, the input gradient through
    ``_conv_subpixel.py``), ``library_dilated_dx`` (the same with the input gradient as
    ``lax``'s stride-dilated convolution, nnjax's before), ``torch``.
    """
    import nnjax.functional as F
    from nnjax.functional import _conv_canonical, _conv_compiler

    nd = len(x_shape) - 2
    op = functools.partial(getattr(F, f"conv{nd}d"), stride=2, padding=size // 2)
    x, kernel, params = _operands(x_shape, out_channels, size)
    jits = {
        "library_auto": _conv_compiler.jit,
        "library_dilated_dx": _library_jit_with(_conv_canonical, "input_grad", _dilated_input_grad),
    }
    calls: Calls = {
        k: (jax_fwd_bwd(halved(op), params, x, jit=j), H.sync_jax) for k, j in jits.items()
    }
    if C.missing_module("torch") is None:
        import torch

        channels_first = np.moveaxis(np.asarray(x), -1, 1)
        tx, tk, tb = torch_leaves(channels_first, np.moveaxis(kernel, (-1, -2), (0, 1)),
                                  np.zeros(out_channels, np.float32))  # fmt: skip
        fn = getattr(torch.nn.functional, f"conv{nd}d")
        conv = lambda x, k, b: fn(x, k, b, stride=2, padding=size // 2)
        calls["torch"] = (torch_fwd_bwd(halved(conv), [tx, tk, tb]), H.torch_device()[1])
    return calls, "library_auto"


def _dilated_input_grad(dy, kernel, strides, pads, dilation):
    """The input gradient as ``lax``'s stride-dilated convolution (nnjax's before)."""
    from jax import lax

    nd = kernel.ndim - 2
    flipped = lax.rev(kernel, tuple(range(nd))).swapaxes(-1, -2)
    layout = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
    return lax.conv_general_dilated(
        dy, flipped, (1,) * nd, pads, lhs_dilation=strides, rhs_dilation=dilation,
        dimension_numbers=layout[nd],
    )  # fmt: skip
