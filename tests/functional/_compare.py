"""One comparison of a functional op with PyTorch, in float64 and float32 (test helper).

``assert_matches_torch(fn, torch_fn, args)`` evaluates ``fn(*args)`` (JAX) and
``torch_fn(*tensors)`` (PyTorch, taking and returning tensors in nnjax's layout: it
permutes to channels-first itself, so gradients come back in nnjax's layout) on the
same values, then compares the outputs and the gradients of ``sum(out * cotangent)``
with respect to every argument. ``args`` is a tuple of NumPy arrays or dicts of them
(parameter dicts); ``fn`` receives them with the same structure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._torch_ref import rand, to_torch, value_and_vjp

TOL = {np.float64: 1e-10, np.float32: 2e-4}


def _torch_leaves(args, dtype):
    leaves, treedef = jax.tree.flatten(args)
    tensors = [to_torch(a, requires_grad=True, dtype=dtype) for a in leaves]
    return tensors, jax.tree.unflatten(treedef, tensors)


def assert_matches_torch(fn, torch_fn, args, *, dtypes=(np.float64, np.float32), seed=7, tol=None):
    """Compares outputs and gradients of ``fn`` and ``torch_fn`` on ``args`` (see module doc)."""
    for dtype in dtypes:
        atol = TOL[dtype] if tol is None else tol[dtype]
        typed = jax.tree.map(lambda a, dt=dtype: np.asarray(a, dt), args)
        tensors, targs = _torch_leaves(typed, dtype)
        t_out = torch_fn(*targs)
        t_outs = t_out if isinstance(t_out, (tuple, list)) else (t_out,)
        cots = [rand(tuple(t.shape), seed + i, dtype=dtype) for i, t in enumerate(t_outs)]
        sum((t * to_torch(c, dtype=dtype)).sum() for t, c in zip(t_outs, cots)).backward()
        with jax.enable_x64(dtype == np.float64):
            cot = tuple(cots) if isinstance(t_out, (tuple, list)) else cots[0]
            y, grads = value_and_vjp(fn, *typed, cotangent=cot)
        ys = y if isinstance(t_out, (tuple, list)) else (y,)
        assert len(ys) == len(t_outs)
        for a, t in zip(ys, t_outs):
            assert a.dtype == jnp.dtype(dtype), (a.dtype, dtype)
            np.testing.assert_allclose(
                np.asarray(a, np.float64), t.detach().numpy(), rtol=atol, atol=atol
            )
        for g, t in zip(jax.tree.leaves(grads), tensors):
            expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
            np.testing.assert_allclose(np.asarray(g, np.float64), expected, rtol=atol, atol=atol)
