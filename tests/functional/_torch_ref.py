"""PyTorch as a numerical referee for the functional ops (test helper, private).

Import it relatively from a test module in ``tests/functional`` (a package); the
importing module skips when PyTorch is not installed::

    from ._torch_ref import torch, to_torch, to_jax, assert_close

Conversions go through NumPy in float64 by default, so a comparison measures the op,
not the dtype. Layout helpers convert between nnjax's NHWC/HWIO and PyTorch's
NCHW/OIHW, and between ``(in, out)`` dense kernels and ``nn.Linear``'s ``(out, in)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def rand(shape, seed: int = 0, *, dtype=np.float64) -> np.ndarray:
    """Standard-normal NumPy test data (cheaper than eager ``jax.random`` in float64)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def value_and_vjp(fn, *args, cotangent):
    """``(fn(*args), grads of sum(fn(*args) * cotangent) w.r.t. every arg)``, one jit.

    Compare ``grads`` with torch's ``.grad`` after ``(torch_out * cotangent).sum()``.
    """

    def run(args, cotangent):
        y, pullback = jax.vjp(fn, *args)
        return y, pullback(cotangent)

    return jax.jit(run)(args, cotangent)


def to_torch(x: jax.typing.ArrayLike, *, requires_grad: bool = False, dtype=np.float64):
    """Copies a JAX/NumPy array to a float64 (by default) torch tensor."""
    t = torch.from_numpy(np.array(x, dtype=dtype))
    return t.requires_grad_(requires_grad)


def to_jax(t, *, dtype=jnp.float64) -> jax.Array:
    """Copies a torch tensor (or its ``.grad``) to a JAX array (float64 needs x64 on)."""
    return jnp.asarray(t.detach().cpu().numpy(), dtype=dtype)


def to_numpy(t) -> np.ndarray:
    """Copies a torch tensor to a float64 NumPy array."""
    return t.detach().cpu().numpy().astype(np.float64)


def nhwc_to_nchw(x):
    """``(B, H, W, C) -> (B, C, H, W)``; works on torch tensors and arrays."""
    return x.permute(0, 3, 1, 2) if isinstance(x, torch.Tensor) else np.transpose(x, (0, 3, 1, 2))


def nchw_to_nhwc(x):
    """``(B, C, H, W) -> (B, H, W, C)``; works on torch tensors and arrays."""
    return x.permute(0, 2, 3, 1) if isinstance(x, torch.Tensor) else np.transpose(x, (0, 2, 3, 1))


def hwio_to_oihw(kernel):
    """Conv kernel ``(kh, kw, in, out) -> (out, in, kh, kw)`` (torch layout)."""
    if isinstance(kernel, torch.Tensor):
        return kernel.permute(3, 2, 0, 1)
    return np.transpose(kernel, (3, 2, 0, 1))


def oihw_to_hwio(kernel):
    """Conv kernel ``(out, in, kh, kw) -> (kh, kw, in, out)`` (nnjax layout)."""
    if isinstance(kernel, torch.Tensor):
        return kernel.permute(2, 3, 1, 0)
    return np.transpose(kernel, (2, 3, 1, 0))


def linear_weight(kernel):
    """Dense kernel ``(in, out)`` -> ``nn.Linear`` weight ``(out, in)``."""
    return kernel.T if isinstance(kernel, torch.Tensor) else np.transpose(kernel)


def assert_close(actual, expected, *, rtol: float = 1e-10, atol: float = 1e-10) -> None:
    """Asserts two arrays/tensors agree in float64 (NumPy's message on failure)."""
    np.testing.assert_allclose(_np64(actual), _np64(expected), rtol=rtol, atol=atol)


def _np64(x) -> np.ndarray:
    return to_numpy(x) if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
