"""Fully connected (affine) layer: ``y = x @ kernel + bias``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nnjax import _checks, _hardware, initializers
from nnjax.errors import ShapeError
from nnjax.functional import _bfloat16, _bfloat16_dot, _utils
from nnjax.functional._forward_only import is_forward_only

Params = dict[str, jax.Array]

FORWARD_FLOAT32_MAX_ROWS = 4
"""Rows (``x``'s leading axes, multiplied) up to which a forward-only matmul
(:func:`~nnjax.functional.forward_only`: ``predict``, ``evaluate``, ``fit``'s
validation) on a CPU with native bfloat16 dot products multiplies in float32 instead:
there rounding the ``(in, out)`` kernel to bfloat16 costs more than the bfloat16
matmul saves. A bfloat16 MLP 784-500-300-100-10's ``predict`` of 8192 examples, Intel
Xeon with AMX, time / the float32 model's: with bfloat16 operands 1.62 at batch 1,
1.15 at 2, 1.06-1.18 at 4, 0.87 at 6, 0.80-0.85 at 8 (``predict``'s loop over
batches rounds the kernel once); multiplied in float32 0.97-1.02 at 1 to 8. One
jitted forward call rounds at every call and gains from float32 up to 16-24 rows
(``benchmarks/README.md``, session 37). With gradients the bfloat16 operands stay
ahead from 1 row on.
"""


def dense_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    bias_init: str | initializers.Initializer = "zeros",
    use_bias: bool = True,
) -> Params:
    """Initialises the parameters of :func:`dense`.

    Args:
      key: a PRNG key.
      in_features: size ``in`` of the input's last axis.
      out_features: size ``out`` of the output's last axis.
      dtype: parameter dtype.
      kernel_init: initializer (or its name) for the kernel; Glorot uniform by default.
      bias_init: initializer (or its name) for the bias; zeros by default.
      use_bias: whether to create a bias.

    Returns:
      ``{"kernel": (in, out), "bias": (out,)}`` (no ``"bias"`` if ``use_bias=False``).
      From PyTorch's ``nn.Linear``: ``kernel = weight.T``, ``bias = bias``.

    Raises:
      ValueError: if ``in_features`` or ``out_features`` is not a positive int, or an
        initializer name is unknown.
      TypeError: if ``key`` is not a PRNG key (``jax.random.key(seed)``), ``use_bias``
        is not a bool, ``dtype`` is not floating (an integer, bool or complex dtype), or
        an initializer is neither a name nor a callable.
      nnjax.ShapeError: if an initializer cannot draw its parameter's shape (e.g. a
        fan-based ``bias_init`` such as ``"glorot_uniform"`` for the 1-D bias).

    Example:
      >>> params = dense_init(jax.random.key(0), 3, 2)
      >>> jax.tree.map(jnp.shape, params)
      {'bias': (2,), 'kernel': (3, 2)}
    """
    in_features = _utils.positive_int("dense_init", "in_features", in_features)
    out_features = _utils.positive_int("dense_init", "out_features", out_features)
    _checks.check_key("dense_init", "key", key)
    dtype = _checks.float_dtype("dense_init", dtype)
    use_bias = _checks.check_static_bool("dense_init", "use_bias", use_bias)
    k_kernel, k_bias = jax.random.split(key)
    params = {
        "kernel": initializers.init_param(kernel_init, k_kernel, (in_features, out_features), dtype)
    }
    if use_bias:
        params["bias"] = initializers.init_param(bias_init, k_bias, (out_features,), dtype)
    return params


def dense(params: Params, x: jax.typing.ArrayLike) -> jax.Array:
    """Applies the affine map ``x @ kernel + bias`` over the last axis of ``x``.

    Computes in the dtype of ``x``: float32 parameters with a bfloat16 input give a
    bfloat16 result (mixed precision). On a CPU without native bfloat16 matmuls
    (:func:`nnjax._hardware.native_bfloat16`), a bfloat16 ``x`` is multiplied in
    float32 by the parameters as they are (not rounded to bfloat16) and the result
    rounded to bfloat16, the formulation as fast as float32 there (see
    ``_affine_upcast``; Intel's AVX512-BF16 without AMX counts as without). On a CPU
    with them (AVX512-BF16, AMX) the bfloat16 operands are summed in float32 and the
    result rounded once, the form XLA:CPU runs on its native kernels (see
    ``_affine_native``), except in forward-only code
    (:func:`~nnjax.functional.forward_only`) of at most
    :data:`FORWARD_FLOAT32_MAX_ROWS` rows, which multiplies in float32 as above (faster
    there; the result differs by at most the kernel's bfloat16 rounding).

    Args:
      params: ``{"kernel": (in, out), "bias": (out,)}``, as from :func:`dense_init`;
        from PyTorch's ``nn.Linear``, ``kernel = weight.T`` (``docs/guides/porting.md``).
      x: ``(..., in)``, floating.

    Returns:
      ``(..., out)``, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` is a scalar or its last axis is not ``in``, the kernel
        is not 2-D or is transposed (PyTorch's ``(out, in)`` weight: the message says to
        pass ``weight.T``), or the bias is not ``(out,)`` (the messages name the
        argument and both shapes).
      TypeError: if ``x`` is not floating, or ``params`` is not a dict (e.g. a layer: pass
        ``layer.params()``) or one of its values holds no numbers (``None``, a string:
        the message names ``params['<key>']``; lists and NumPy arrays are read as arrays).
      ValueError: if ``params`` has a key other than ``"kernel"`` and ``"bias"``, or no
        ``"kernel"`` (that error is a ``KeyError`` too).

    Example:
      >>> params = dense_init(jax.random.key(0), 3, 2)
      >>> dense(params, jnp.ones((4, 3))).shape
      (4, 2)
    """
    params = read_dense_params("dense", params)
    x = _utils.as_compute("dense", x)
    kernel, bias = params["kernel"], params.get("bias")
    _checks.check_min_rank("dense", "x", x, 1)
    _check_input("dense", x, kernel, bias)
    if bias is not None:
        _checks.check_shape("dense", "params['bias']", bias, (kernel.shape[1],))
    return affine(x, kernel, bias)


def affine(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """``x @ kernel + bias`` of checked arguments, as :func:`dense` computes it here.

    Upcast to float32 where the CPU emulates bfloat16 (or at a few rows forward only),
    bfloat16 operands with float32 sums where it has native bfloat16 dot products (and
    under ``fit(precision="bfloat16")``'s ``_bfloat16_dot.bfloat16_operands``), else one
    matmul in the dtype of ``x``. Also the projections of
    :func:`~nnjax.functional.multi_head_attention`.

    Args:
      x: ``(..., in)``, a float dtype.
      kernel: ``(in, out)``.
      bias: ``(out,)`` or ``None``.

    Returns:
      ``(..., out)`` in the dtype of ``x``.

    Example:
      >>> affine(jnp.ones((4, 3)), jnp.ones((3, 2)), jnp.zeros(2)).shape
      (4, 2)
    """
    few_rows = is_forward_only() and math.prod(x.shape[:-1]) <= FORWARD_FLOAT32_MAX_ROWS
    if _hardware.upcast_matmuls(x.dtype) or (few_rows and _hardware.bfloat16_dots(x.dtype)):
        return _affine_upcast(x, kernel, bias)
    if not few_rows and (
        _hardware.bfloat16_dots(x.dtype)
        or (x.dtype == jnp.float32 and _bfloat16_dot.rounding_operands())
    ):
        return _affine_native(x, kernel, bias)
    y = jnp.matmul(x, kernel.astype(x.dtype))
    if bias is not None:
        y = y + _utils.expand_to(bias.astype(x.dtype), y.ndim)
    return y


def read_dense_params(op: str, params: Params, name: str = "params") -> Params:
    """``{"kernel": (in, out), "bias": (out,)}`` read (``_utils.read_params``); the kernel 2-D.

    ``op`` and ``name`` name the errors (``transformer_encoder_block`` reads its
    ``params['mlp_in']`` so). The bias is checked against the kernel by the caller,
    after ``x``, whose shape tells which of the two is off.

    Example:
      >>> read_dense_params("dense", {"kernel": [[1.0, 2.0]]})["kernel"].shape
      (1, 2)
    """
    params = _utils.read_params(op, params, ("kernel",), ("bias",), name=name)
    _checks.check_rank(op, f"{name}['kernel']", params["kernel"], 2)
    return params


def _check_input(op: str, x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> None:
    """Checks ``x (..., in)`` against ``kernel (in, out)``; names a transposed kernel so.

    A kernel ``(out, in)`` (PyTorch's ``nn.Linear`` weight as it is) whose bias, if any,
    has its ``out`` rows is blamed, with the fix; any other mismatch blames ``x``.
    """
    rows, cols = kernel.shape
    features = x.shape[-1]
    if features != rows and features == cols and (bias is None or bias.shape == (rows,)):
        raise ShapeError(
            f"{op}: argument `params['kernel']` has shape {kernel.shape}, expected "
            f"({features}, *) for `x` of shape {tuple(x.shape)}: it looks transposed; the "
            "kernel is (in, out), a PyTorch nn.Linear weight is (out, in): pass weight.T"
        )
    why = f"params['kernel'] has shape {kernel.shape}"
    _checks.check_shape(op, "x", x, (..., rows), why=why)


def _affine_native(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    """``x @ kernel + bias`` with bfloat16 operands on a CPU with native bfloat16 dot products.

    The operands are rounded to bfloat16 and multiplied on the CPU's bfloat16 kernels
    with float32 sums (:func:`nnjax.functional._bfloat16_dot.matmul`, where XLA widens
    a matmul with a bfloat16 result to float32); the bias is added in float32 and the
    result rounded once to the dtype of ``x`` (float32 ``x``: only the operands are
    rounded, :func:`nnjax.functional._bfloat16_dot.bfloat16_operands`).
    """
    y = _bfloat16_dot.matmul(x, kernel)
    if bias is not None:
        y = y + _utils.expand_to(bias.astype(jnp.float32), y.ndim)
    return _bfloat16.round_like(y, x.dtype)


def _affine_upcast(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    """``x @ kernel + bias`` of bfloat16 ``x`` computed in float32, rounded to bfloat16.

    The formulation for CPUs without native bfloat16 (:func:`nnjax._hardware.upcast_matmuls`),
    where XLA:CPU emulates bfloat16, and for forward-only matmuls of a few rows on CPUs
    with it (:data:`FORWARD_FLOAT32_MAX_ROWS`). Only what the layer passes on is bfloat16: its
    output and, through the cast's transpose, the gradient for ``x``; the kernel and
    bias enter as they are and their gradients are float32 products. Rounding the
    kernel to bfloat16 would be an extra pass over every parameter that no bfloat16
    matmul repays here (as JAX's default matmul precision rounds operands to bfloat16 on
    TPUs and not on CPUs): the result differs from the native formulation's by at most
    the kernel's bfloat16 rounding (relative 2**-9 per term). MLP 784-500-300-100-10
    train step with Adam, batch 32, ``dtype=jnp.bfloat16``, time / float32 time, one
    interleaved run on a 2-core AMD EPYC Zen 2 (AVX2, no AVX512-BF16/AMX; one thread, CPU
    time, load average 11): XLA's emulated bfloat16 dot (before) 1.17-1.63 in three
    earlier runs; the kernel rounded, then multiplied in float32: 1.12; this: 1.01 (a
    second float32 copy of the step: 1.02).
    """
    f32 = jnp.float32
    y = jnp.matmul(_bfloat16.to_float32(x), kernel.astype(f32))
    if bias is not None:
        y = y + _utils.expand_to(bias.astype(f32), y.ndim)
    return _bfloat16.round_like(y, jnp.bfloat16)
