"""The convolution and pooling groups of ``bench_ops.py``: their shapes and timed calls.

Each ``*_calls`` builder returns ``({formulation: (call, sync)}, picked)``: every
formulation's jitted forward + backward of ``sum(op(...))`` (and PyTorch's, when it
is installed) and the formulation nnjax uses by default there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import _cli as C
import _harness as H

H.ensure_nnjax_importable()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

Calls = dict[str, tuple[Callable[[], object], Callable[[object], None]]]


def rand(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def torch_fwd_bwd(forward: Callable, inputs: list) -> Callable[[], object]:
    """Eager PyTorch forward + backward of ``sum(forward(*inputs))``."""

    def step():
        for t in inputs:
            t.grad = None
        out = forward(*inputs)
        out.backward(torch_ones_like(out))
        return out

    return step


def torch_leaves(*arrays: np.ndarray) -> list:
    """PyTorch copies (row-major) of ``arrays`` on :func:`_harness.torch_device`, with grad."""
    import torch

    device = H.torch_device()[0]
    return [torch.from_numpy(np.array(a, order="C")).to(device).requires_grad_() for a in arrays]


def torch_ones_like(t):
    """``torch.ones_like`` (imported lazily)."""
    import torch

    return torch.ones_like(t)


def jax_fwd_bwd(fn: Callable, *args, jit: Callable = jax.jit) -> Callable[[], object]:
    """Jitted (by ``jit``) ``value_and_grad`` of ``sum(fn(*args))`` w.r.t. every argument."""
    grad = jit(jax.value_and_grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(len(args)))))
    return lambda: grad(*args)


def halved(fn: Callable) -> Callable:
    """``fn`` followed by ``y ** 2 / 2``: summed, a loss whose cotangent is ``y``.

    The convolutions' rows time this: a plain sum's constant cotangent lets XLA
    simplify the backward pass in ways a training step never allows.
    """
    return lambda *a, **kw: 0.5 * fn(*a, **kw) ** 2


# ----------------------------------------------------------------------- conv2d


def conv_shapes(batch: int, quick: bool, sizes: str = "benchmark") -> dict[str, tuple]:
    """name -> (x shape NHWC, out channels, groups): the CNN benchmark's, ResNet's, tiny."""
    if quick:
        return {"12x12x1->4": ((batch, 12, 12, 1), 4, 1), "6x6x4->8": ((batch, 6, 6, 4), 8, 1)}
    if sizes == "large":  # a ResNet-18/34's 3x3 stages, and a MobileNet-like depthwise
        stages = [(56, 64), (28, 128), (14, 256), (7, 512)]
        return {f"{s}x{s}x{c}->{c}": ((batch, s, s, c), c, 1) for s, c in stages} | {
            "56x56x64 depthwise": ((batch, 56, 56, 64), 64, 64)
        }
    return {
        "28x28x1->32": ((batch, 28, 28, 1), 32, 1),
        "14x14x32->64": ((batch, 14, 14, 32), 64, 1),
        "14x14x32 depthwise": ((batch, 14, 14, 32), 32, 32),
    }


def conv_calls(x_shape, out_channels: int, groups: int) -> tuple[Calls, str]:
    """Each formulation's fwd + bwd (and torch's), and the formulation nnjax picks."""
    import nnjax.functional as F
    from nnjax.functional import _conv_compiler
    from nnjax.functional import _conv_formulations as forms

    x = jnp.asarray(rand(x_shape, 0))
    kernel = rand((3, 3, x_shape[-1] // groups, out_channels), 1) * 0.1
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(out_channels)}
    calls: Calls = {}
    for name in ("xla", "patches"):
        conv = functools.partial(F.conv2d, feature_group_count=groups, formulation=name)
        calls[name] = (jax_fwd_bwd(halved(conv), params, x), H.sync_jax)
    auto = halved(functools.partial(F.conv2d, feature_group_count=groups))
    calls["library_auto"] = (jax_fwd_bwd(auto, params, x, jit=_conv_compiler.jit), H.sync_jax)
    if rounds_operands():
        calls["library_precision"] = (_precision_call(auto, params, x), H.sync_jax)
    backend = jax.default_backend()
    picked = forms.choose(x_shape, kernel.shape, x_shape[1:3], groups, x.dtype, backend)
    if picked == "taps":  # depthwise on the CPU: "auto" is the only way to ask for it
        calls["taps"] = (jax_fwd_bwd(auto, params, x), H.sync_jax)
    if C.missing_module("torch") is None:
        import torch

        nchw, oihw = np.moveaxis(np.asarray(x), -1, 1), np.transpose(kernel, (3, 2, 0, 1))
        tx, tk, tb = torch_leaves(nchw, oihw, np.zeros(out_channels, np.float32))
        conv = lambda x, k, b: torch.nn.functional.conv2d(x, k, b, padding=1, groups=groups)
        calls["torch"] = (torch_fwd_bwd(halved(conv), [tx, tk, tb]), H.torch_device()[1])
    return calls, picked


def rounds_operands() -> bool:
    """Whether ``fit(precision="bfloat16")`` rounds matmul operands here (native bfloat16 CPU)."""
    from nnjax.train.precision import rounds_matmul_operands

    return rounds_matmul_operands("bfloat16")


def _precision_call(fn: Callable, *args) -> Callable[[], object]:
    """:func:`jax_fwd_bwd` as ``fit(precision="bfloat16")`` traces it on such a CPU.

    Its matmul operands are rounded to bfloat16 (on AMX also the convolutions' where
    ``nnjax.functional._conv_bfloat16.faster`` says so): every call runs in the block,
    so the first one, which traces, is timed as the compile as in the other rows.
    """
    from nnjax.functional import _bfloat16_dot, _conv_compiler

    inner = jax_fwd_bwd(fn, *args, jit=_conv_compiler.jit)

    def call():
        with _bfloat16_dot.bfloat16_operands():
            return inner()

    return call


# --------------------------------------------------------------- conv1d, conv3d


def convnd_shapes(nd: int, batch: int, quick: bool) -> dict[str, tuple]:
    """name -> (x shape, out channels, kernel size): sequences (1-D) or volumes (3-D)."""
    if quick:
        return {1: {"16x4->8 k3": ((batch, 16, 4), 8, 3)},
                3: {"4x6x6x2->4": ((batch, 4, 6, 6, 2), 4, 3)}}[nd]  # fmt: skip
    if nd == 1:  # a text CNN's (300-d embeddings), an audio front end's, a mid layer's
        return {
            "128x64->64 k3": ((batch, 128, 64), 64, 3),
            "64x300->100 k5": ((batch, 64, 300), 100, 5),
            "1024x16->32 k9": ((batch, 1024, 16), 32, 9),
        }
    return {  # a video or volume network's first and later 3x3x3 layers
        "8x16x16x3->16": ((batch, 8, 16, 16, 3), 16, 3),
        "8x16x16x32->64": ((batch, 8, 16, 16, 32), 64, 3),
        "4x8x8x64->64": ((batch, 4, 8, 8, 64), 64, 3),
    }


def convnd_calls(x_shape, out_channels: int, size: int) -> tuple[Calls, str]:
    """``F.conv1d``/``F.conv3d`` per formulation, as ``fit`` compiles it, and PyTorch's.

    Rows ``xla`` and ``patches`` (plain ``jax.jit``), ``library_auto`` (``fit``'s
    compile and rule: the pick), ``library_xla`` and ``library_patches`` (those two
    compiled as ``fit`` compiles), ``torch``. Loss ``sum(y ** 2) / 2``.
    """
    import nnjax.functional as F
    from nnjax.functional import _conv_compiler

    nd = len(x_shape) - 2
    op = {1: F.conv1d, 3: F.conv3d}[nd]
    x = jnp.asarray(rand(x_shape, 0))
    kernel = rand((*(size,) * nd, x_shape[-1], out_channels), 1) * 0.1
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(out_channels)}
    calls: Calls = {}
    for name, jit in (("", jax.jit), ("library_", _conv_compiler.jit)):
        for form in ("xla", "patches"):
            conv = functools.partial(op, formulation=form)
            calls[name + form] = (jax_fwd_bwd(halved(conv), params, x, jit=jit), H.sync_jax)
    auto = jax_fwd_bwd(halved(op), params, x, jit=_conv_compiler.jit)
    calls["library_auto"] = (auto, H.sync_jax)
    if C.missing_module("torch") is None:
        import torch

        channels_first = np.moveaxis(np.asarray(x), -1, 1)
        torch_kernel = np.moveaxis(kernel, (-1, -2), (0, 1))
        tx, tk, tb = torch_leaves(channels_first, torch_kernel, np.zeros(out_channels, np.float32))
        conv_fn = getattr(torch.nn.functional, f"conv{nd}d")
        conv = lambda x, k, b: conv_fn(x, k, b, padding=size // 2)
        calls["torch"] = (torch_fwd_bwd(halved(conv), [tx, tk, tb]), H.torch_device()[1])
    return calls, "library_auto"


# -------------------------------------------------------------------- pointwise


def pointwise_shapes(batch: int, quick: bool) -> dict[str, tuple]:
    """name -> (x shape NHWC, out channels): ResNet-50 bottlenecks' 1x1 convolutions."""
    if quick:
        return {"6x6x16->4": ((batch, 6, 6, 16), 4), "6x6x4->16": ((batch, 6, 6, 4), 16)}
    pairs = ((56, 256, 64), (28, 512, 128), (14, 1024, 256), (7, 2048, 512), (56, 64, 256))
    return {f"{s}x{s}x{i}->{o}": ((batch, s, s, i), o) for s, i, o in pairs}


def pointwise_calls(x_shape, out_channels: int) -> tuple[Calls, str]:
    """ReLU then a 1x1 convolution, fwd + bwd, compiled as ``fit`` compiles (``library_*``).

    ``library_auto`` is the pick (``patches``, one matmul, for fewer output than input
    channels; Eigen's convolution otherwise), beside both formulations asked for by name
    and PyTorch's; the loss is :func:`halved`.
    """
    import nnjax.functional as F
    from nnjax.functional import _conv_compiler

    x = jnp.asarray(rand(x_shape, 0))
    kernel = rand((1, 1, x_shape[-1], out_channels), 1) * 0.05
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(out_channels)}
    calls: Calls = {}
    for name in ("auto", "xla", "patches"):
        conv = halved(lambda p, x, name=name: F.conv2d(p, jax.nn.relu(x), formulation=name))
        calls[f"library_{name}"] = (
            jax_fwd_bwd(conv, params, x, jit=_conv_compiler.jit),
            H.sync_jax,
        )
    if C.missing_module("torch") is None:
        import torch

        nchw, oihw = np.moveaxis(np.asarray(x), -1, 1), np.transpose(kernel, (3, 2, 0, 1))
        tx, tk, tb = torch_leaves(nchw, oihw, np.zeros(out_channels, np.float32))
        conv = lambda x, k, b: torch.nn.functional.conv2d(torch.relu(x), k, b)
        calls["torch"] = (torch_fwd_bwd(halved(conv), [tx, tk, tb]), H.torch_device()[1])
    return calls, "library_auto"


# ------------------------------------------------------------------------ pool


def pool_shapes(batch: int, quick: bool) -> dict[str, tuple]:
    """name -> (x shape NHWC, kind): the inputs of the CNN benchmark's two pools."""
    sizes = {"12x12x4": (batch, 12, 12, 4)} if quick else {
        "28x28x32": (batch, 28, 28, 32),
        "14x14x64": (batch, 14, 14, 64),
    }  # fmt: skip
    return {
        f"{name} {kind} 2": (shape, kind)
        for kind in ("max", "avg")
        for name, shape in sizes.items()
    }


def pool_calls(x_shape, kind: str) -> tuple[Calls, str]:
    """Each formulation's fwd + bwd of a 2x2 pool (and torch's), and nnjax's pick."""
    import nnjax.functional as F
    from nnjax.functional import _pool_formulations as forms

    x = jnp.maximum(jnp.asarray(rand(x_shape, 0)), 0.0)  # ReLU'd: ties at zero
    op = F.max_pool2d if kind == "max" else F.avg_pool2d
    calls: Calls = {}
    for name in forms.FORMULATIONS[1:]:
        calls[name] = (jax_fwd_bwd(functools.partial(op, window=2, formulation=name), x),
                       H.sync_jax)  # fmt: skip
    picked = forms.choose(x_shape, (2, 2), (2, 2), jax.default_backend())
    if C.missing_module("torch") is None:
        import torch

        (tx,) = torch_leaves(np.moveaxis(np.asarray(x), -1, 1))
        pool = getattr(torch.nn.functional, f"{kind}_pool2d")
        calls["torch"] = (torch_fwd_bwd(lambda x: pool(x, 2), [tx]), H.torch_device()[1])
    return calls, picked


# ------------------------------------------------------------- depthwise block


def dwblock_shapes(batch: int, quick: bool) -> dict[str, tuple]:
    """name -> x shape NHWC: a MobileNet's depthwise-separable stages, or tiny."""
    if quick:
        return {"6x6x4": (batch, 6, 6, 4)}
    stages = ((56, 64), (28, 128), (14, 256), (7, 512))
    return {f"{s}x{s}x{c}": (batch, s, s, c) for s, c in stages}


def dwblock_calls(x_shape) -> tuple[Calls, str]:
    """A depthwise-separable block's fwd + bwd: 3x3 depthwise conv, ReLU, 1x1 conv.

    Rows: ``"auto"`` under plain ``jax.jit`` (the picked row: on the CPU the depthwise
    taps by plain autodiff), ``library_auto`` compiled as ``fit`` compiles (there the
    taps' one-pass kernel gradient, ``_conv_taps.depthwise_reverse``), ``xla`` (XLA's
    grouped and 1x1 convolutions) and PyTorch's ``conv2d`` pair; the loss is
    :func:`halved` (until session 21 a plain sum, whose constant cotangent reached the
    1x1 convolution).
    """
    import nnjax.functional as F
    from nnjax.functional import _conv_compiler

    c = x_shape[-1]
    x = jnp.asarray(rand(x_shape, 0))
    dw, pw = rand((3, 3, 1, c), 1) * 0.1, rand((1, 1, c, c), 2) * 0.1
    params = {"dw": {"kernel": jnp.asarray(dw), "bias": jnp.zeros(c)},
              "pw": {"kernel": jnp.asarray(pw), "bias": jnp.zeros(c)}}  # fmt: skip

    @halved
    def block(p, x, formulation="auto"):
        h = F.conv2d(p["dw"], x, feature_group_count=c, formulation=formulation)
        return F.conv2d(p["pw"], jax.nn.relu(h), formulation=formulation)

    calls: Calls = {
        "auto": (jax_fwd_bwd(block, params, x), H.sync_jax),
        "library_auto": (jax_fwd_bwd(block, params, x, jit=_conv_compiler.jit), H.sync_jax),
        "xla": (jax_fwd_bwd(functools.partial(block, formulation="xla"), params, x), H.sync_jax),
    }
    if C.missing_module("torch") is None:
        import torch

        nchw = np.moveaxis(np.asarray(x), -1, 1)
        dw_oihw, pw_oihw = np.transpose(dw, (3, 2, 0, 1)), np.transpose(pw, (3, 2, 0, 1))
        zeros = np.zeros(c, np.float32)
        leaves = torch_leaves(nchw, dw_oihw, zeros, pw_oihw, zeros)

        @halved
        def torch_block(x, dk, db, pk, pb):
            h = torch.nn.functional.conv2d(x, dk, db, padding=1, groups=c)
            return torch.nn.functional.conv2d(torch.relu(h), pk, pb)

        calls["torch"] = (torch_fwd_bwd(torch_block, leaves), H.torch_device()[1])
    return calls, "auto"
