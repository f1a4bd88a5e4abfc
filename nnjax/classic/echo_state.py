"""Echo state networks: a fixed sparse random reservoir and a ridge-regression readout.

The reservoir state follows

    x(t) = (1 − α) x(t−1) + α tanh(u(t) W_in + x(t−1) W)

with input ``u(t)``, leak rate ``α``, a random input matrix ``W_in`` and a sparse random
recurrent matrix ``W`` (about ``density`` of its entries nonzero, rescaled so that its
spectral radius, the largest ``|eigenvalue|``, equals the requested value; below 1 the
network has the echo state property). Neither is trained. Only the linear readout
``y(t) = x(t) W_out + b`` is fitted, in closed form by ridge regression.

:func:`mackey_glass` integrates the Mackey–Glass delay equation, the classic chaotic
benchmark. Measured (``examples/classic/echo_state.py`` defaults: 500 units, density
1%, spectral radius 0.9, ``tau = 17`` series sampled every time unit, 2000 training
steps, 500 test steps): predicting 10 steps ahead reaches an NRMSE of about 0.02.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from nnjax import classic
  >>> series = classic.mackey_glass(1200)
  >>> u, target = series[:-5, None] - 0.9, series[5:, None]   # 5 steps ahead
  >>> params = classic.esn_init(jax.random.key(0), 1, 200, density=0.05)
  >>> states = classic.esn_states(params, u)
  >>> readout = classic.esn_fit_readout(states[100:1000], target[100:1000])
  >>> pred = classic.esn_readout(readout, states[1000:])
  >>> bool(classic.nrmse(pred, target[1000:]) < 0.1)
  True
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks
from nnjax import functional as F
from nnjax.classic import _args

Params = dict[str, jax.Array]


def esn_init(
    key: jax.Array,
    in_features: int,
    reservoir_size: int,
    *,
    density: float = 0.01,
    spectral_radius: float = 0.9,
    input_scale: float = 1.0,
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    """Draws the fixed input and sparse recurrent weights of a reservoir.

    The spectral radius is computed with :func:`numpy.linalg.eigvals` on the host, so this
    function is not jit-able (it runs once, before training).

    Args:
      key: one PRNG key, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``.
      in_features: input size ``in``.
      reservoir_size: number of reservoir units ``R``.
      density: fraction of nonzero recurrent connections, in ``(0, 1]``.
      spectral_radius: the largest ``|eigenvalue|`` of ``W`` after rescaling, finite
        ``> 0``.
      input_scale: ``W_in`` is uniform in ``[−input_scale, input_scale]``, finite
        ``> 0``.
      dtype: parameter dtype, floating.

    Returns:
      ``{"w_in": (in, R), "w": (R, R)}``.

    Raises:
      ValueError: ``in_features`` or ``reservoir_size`` not a positive int, a density
        outside ``(0, 1]``, a spectral radius or input scale that is not finite and
        ``> 0`` (NaN, inf), or a draw whose recurrent matrix has no nonzero eigenvalue
        (raise the density).
      TypeError: ``key`` is not one PRNG key, ``dtype`` is not floating, or
        ``density``, ``spectral_radius`` or ``input_scale`` is not a real number.

    Example:
      >>> p = esn_init(jax.random.key(0), 1, 300, density=0.02, spectral_radius=0.8)
      >>> round(float(np.max(np.abs(np.linalg.eigvals(np.asarray(p["w"]))))), 4)
      0.8
    """
    in_features = _checks.positive_int("esn_init", "in_features", in_features)
    reservoir_size = _checks.positive_int("esn_init", "reservoir_size", reservoir_size)
    density = _real("density", density)
    spectral_radius = _real("spectral_radius", spectral_radius)
    input_scale = _real("input_scale", input_scale)
    _checks.check_interval("esn_init", "density", density, 0, 1, open_low=True)
    _checks.check_interval("esn_init", "spectral_radius", spectral_radius, 0, open_low=True)
    _checks.check_interval("esn_init", "input_scale", input_scale, 0, open_low=True)
    for name, value in (("spectral_radius", spectral_radius), ("input_scale", input_scale)):
        if not math.isfinite(value):  # inf passes `> 0`, and scales W to inf and NaN
            raise ValueError(f"esn_init: `{name}` must be finite and > 0, got {value!r}")
    _args.check_key("esn_init", "key", key)
    dtype = _args.float_dtype("esn_init", dtype)
    k_in, k_w, k_mask = jax.random.split(key, 3)
    shape = (reservoir_size, reservoir_size)
    w_in = jax.random.uniform(k_in, (in_features, reservoir_size), dtype, -input_scale, input_scale)
    mask = jax.random.bernoulli(k_mask, density, shape)
    w = np.asarray(jnp.where(mask, jax.random.uniform(k_w, shape, jnp.float32, -1, 1), 0.0))
    radius = float(np.max(np.abs(np.linalg.eigvals(w.astype(np.float64)))))
    if radius == 0:
        raise ValueError(
            f"esn_init: the sparse recurrent matrix ({reservoir_size} units, density "
            f"{density}) has spectral radius 0 and cannot be rescaled; raise the density"
        )
    return {"w_in": w_in, "w": jnp.asarray(w * (spectral_radius / radius), dtype)}


def _real(name: str, value) -> float:
    """A real scalar argument of :func:`esn_init` as a float (Python, NumPy or JAX)."""
    v = np.asarray(value) if isinstance(value, jax.Array | np.ndarray | np.generic) else value
    real = isinstance(v, numbers.Real) or (
        isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf"
    )
    if not real or isinstance(value, bool | np.bool_):
        raise TypeError(f"esn_init: `{name}` must be a real number, got {value!r}")
    return float(v)


def esn_states(
    params: Params,
    inputs: jax.typing.ArrayLike,
    state: jax.typing.ArrayLike | None = None,
    *,
    leak_rate: float | jax.Array = 1.0,
) -> jax.Array:
    """Drives the reservoir with an input sequence (a ``lax.scan`` over time).

    Args:
      params: ``{"w_in": (in, R), "w": (R, R)}``, as from :func:`esn_init`.
      inputs: ``(T, in)``, floating (``jax.vmap`` for a batch of sequences).
      state: the initial state ``(R,)`` (cast to the dtype of ``inputs``); zeros if
        ``None``.
      leak_rate: ``α`` in ``(0, 1]``; 1 is no leak.

    Returns:
      The states ``x(1), ..., x(T)`` as ``(T, R)``, the dtype of ``inputs``.

    Raises:
      nnjax.ShapeError: ``params`` do not fit each other, ``inputs`` is not ``(T, in)``,
        or ``state`` is not ``(R,)``.
      TypeError: ``inputs`` is not floating.
      ValueError: ``leak_rate`` outside ``(0, 1]`` (checked when it is a Python or NumPy
        number, not for arrays: no host round trip under ``jax.jit``).

    Example:
      >>> p = esn_init(jax.random.key(0), 2, 50, density=0.1)
      >>> esn_states(p, jnp.ones((7, 2))).shape
      (7, 50)
    """
    _checks.check_interval("esn_states", "leak_rate", leak_rate, 0, 1, open_low=True)
    u = jnp.asarray(inputs)
    _checks.check_floating("esn_states", "inputs", u)
    w_in, w = params["w_in"].astype(u.dtype), params["w"].astype(u.dtype)
    r = w.shape[0]
    _checks.check_shape("esn_states", "params['w']", w, (r, r))
    _checks.check_shape("esn_states", "params['w_in']", w_in, (None, r))
    _checks.check_shape("esn_states", "inputs", u, (None, w_in.shape[0]))
    x0 = jnp.zeros((r,), u.dtype) if state is None else jnp.asarray(state, u.dtype)
    _checks.check_shape("esn_states", "state", x0, (r,))
    return _drive(w_in, w, x0, u, leak_rate)


@jax.jit
def _drive(w_in: jax.Array, w: jax.Array, x0: jax.Array, u: jax.Array, leak_rate) -> jax.Array:
    """The reservoir's scan; jitted, so an eager call compiles once per shape, not each time."""

    def step(x, u_t):
        x = (1 - leak_rate) * x + leak_rate * jnp.tanh(u_t @ w_in + x @ w)
        return x, x

    return jax.lax.scan(step, x0, u)[1]


def esn_fit_readout(
    states: jax.typing.ArrayLike, targets: jax.typing.ArrayLike, *, ridge: float = 1e-6
) -> Params:
    """Fits the linear readout by ridge regression in closed form, the bias unpenalised.

    Solves ``min_{W, b} ||X W + 1 bᵀ − Y||² + ridge ||W||²`` (only the kernel ``W`` is
    penalised). Minimising over ``b`` first centres the data: with the column means
    ``x̄``, ``ȳ`` and ``X_c = X − 1 x̄ᵀ``, ``Y_c = Y − 1 ȳᵀ``, the kernel is
    ``W = (X_cᵀ X_c + ridge I)⁻¹ X_cᵀ Y_c`` and the bias ``b = ȳ − x̄ W``. ``W`` is
    computed through the SVD ``X_c = U S Vᵀ`` as ``V diag(s / (s² + ridge)) Uᵀ Y_c``.
    With ``ridge = 0`` this is the minimum-norm least-squares solution (as
    :func:`numpy.linalg.lstsq` on the centred data): singular values below
    ``eps · max(T, R) · s_max`` count as zero, so a constant (or duplicated) column or a
    single row gives a finite fit, not NaN.

    Args:
      states: ``(T, R)`` floating reservoir states (drop an initial washout first).
      targets: ``(T, out)`` desired outputs (cast to the dtype of ``states``).
      ridge: the regularisation strength ``≥ 0``; 0 is plain least squares.

    Returns:
      ``{"kernel": (R, out), "bias": (out,)}`` in the dtype of ``states`` (the layout
      of :func:`nnjax.functional.dense`).

    Raises:
      nnjax.ShapeError: ``states`` is not rank 2, or ``targets`` is not ``(T, out)``.
      TypeError: ``states`` is not floating.
      ValueError: ``ridge`` below 0 (checked when it is a Python or NumPy number), or
        ``states`` has no rows (``T == 0``: nothing to fit).

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (50, 3))
      >>> r = esn_fit_readout(x, x @ jnp.array([[1.0], [2.0], [3.0]]) + 1.0)
      >>> [round(v, 3) for v in r["kernel"][:, 0].tolist()], round(float(r["bias"][0]), 3)
      ([1.0, 2.0, 3.0], 1.0)
    """
    _checks.check_interval("esn_fit_readout", "ridge", ridge, 0)
    x = jnp.asarray(states)
    _checks.check_floating("esn_fit_readout", "states", x)
    _checks.check_rank("esn_fit_readout", "states", x, 2)
    if x.shape[0] == 0:
        raise ValueError(
            f"esn_fit_readout: argument `states` has no rows (shape {x.shape}); the "
            "readout needs at least one time step"
        )
    y = jnp.asarray(targets, x.dtype)
    _checks.check_shape("esn_fit_readout", "targets", y, (x.shape[0], None))
    x_mean, y_mean = jnp.mean(x, axis=0), jnp.mean(y, axis=0)
    xc, yc = x - x_mean[None, :], y - y_mean[None, :]
    # Through the SVD X = U S Vᵀ: θ = V diag(s / (s² + ridge)) Uᵀ Y, stable in float32
    # where forming and solving the normal equations (cond(XᵀX) = cond(X)²) is not.
    u, sv, vt = jnp.linalg.svd(xc, full_matrices=False)
    # ridge = 0: singular values at rounding level count as zero (numpy.linalg.lstsq's
    # rcond), else s / s² divides by (nearly) 0. A positive ridge needs no cutoff.
    cutoff = jnp.finfo(x.dtype).eps * max(x.shape) * jnp.max(sv, initial=0)
    keep = (sv > 0) & ((sv > cutoff) | (ridge > 0))
    safe = jnp.where(keep, sv, 1)  # no 0 / 0, in the values or in their gradients
    scale = jnp.where(keep, safe / (safe**2 + ridge), 0)
    kernel = vt.T @ (scale[:, None] * (u.T @ yc))
    return {"kernel": kernel, "bias": y_mean - x_mean @ kernel}


def esn_readout(readout: Params, states: jax.typing.ArrayLike) -> jax.Array:
    """The readout ``y = x W_out + b`` ``(..., out)`` of states ``(..., R)``.

    Args:
      readout: ``{"kernel": (R, out), "bias": (out,)}``, as from :func:`esn_fit_readout`.
      states: ``(..., R)``, floating.

    Returns:
      ``(..., out)``, the dtype of ``states``.

    Raises:
      nnjax.ShapeError: as :func:`nnjax.functional.dense`.

    Example:
      >>> esn_readout({"kernel": jnp.ones((3, 1)), "bias": jnp.zeros(1)}, jnp.ones((2, 3)))
      Array([[3.],
             [3.]], dtype=float32)
    """
    return F.dense(readout, states)


def nrmse(predictions: jax.typing.ArrayLike, targets: jax.typing.ArrayLike) -> jax.Array:
    """Normalised root-mean-square error ``RMSE / std(targets)``; 0 is perfect, 1 is the mean.

    Args:
      predictions: any shape, floating.
      targets: the same shape, floating.

    Returns:
      A scalar over all elements, in the promoted dtype of the two. Constant
      ``targets`` have ``std = 0``: the result is then ``inf`` (or NaN where the
      predictions equal the targets, ``0 / 0``); no error is raised, so check the
      targets' spread first.

    Raises:
      nnjax.ShapeError: the shapes differ.
      ValueError: the arrays are empty (the mean is undefined).

    Example:
      >>> nrmse(jnp.array([0.0, 0.0]), jnp.array([1.0, -1.0]))
      Array(1., dtype=float32)
    """
    p, t = jnp.asarray(predictions), jnp.asarray(targets)
    _checks.check_shape("nrmse", "predictions", p, t.shape)
    if t.size == 0:
        raise ValueError(f"nrmse: `targets` is empty (shape {t.shape}); nothing to compare")
    return jnp.sqrt(jnp.mean((p - t) ** 2)) / jnp.std(t)


@functools.partial(jax.jit, static_argnames=("length", "tau", "dt", "subsample", "washout"))
def mackey_glass(
    length: int,
    *,
    tau: int = 17,
    beta: float = 0.2,
    gamma: float = 0.1,
    exponent: float = 10.0,
    x0: float = 1.2,
    dt: float = 0.1,
    subsample: int = 10,
    washout: int = 500,
    key: jax.Array | None = None,
) -> jax.Array:
    """The Mackey–Glass series ``dx/dt = β x(t−τ) / (1 + x(t−τ)^n) − γ x(t)`` (Euler).

    Integrates with step ``dt`` from a constant history ``x0`` (plus uniform noise of
    amplitude 0.1 when ``key`` is given: a different trajectory per key), drops the first
    ``washout`` samples and returns every ``subsample``-th step (by default one sample per
    time unit). With ``tau = 17`` the series is chaotic.

    Args:
      length: number of samples returned, a non-negative int (static).
      tau: the delay ``τ`` (time units, static), at least ``dt``.
      beta: the feedback coefficient ``β``.
      gamma: the decay rate ``γ``.
      exponent: the exponent ``n`` of the nonlinearity.
      x0: the constant initial history.
      dt: the Euler step ``> 0`` (static; ``tau / dt`` rounded is the delay in steps).
      subsample: integration steps per returned sample, a positive int (static).
      washout: samples dropped at the start (the transient), a non-negative int
        (static).
      key: optional PRNG key (one key) that perturbs the initial history.

    Returns:
      ``(length,)`` float32.

    Raises:
      ValueError: ``length`` or ``washout`` not a non-negative int, ``subsample`` not a
        positive int, ``dt`` not ``> 0``, or a delay ``round(tau / dt)`` below one step.
      TypeError: ``key`` is neither ``None`` nor one PRNG key.

    Example:
      >>> s = mackey_glass(300)
      >>> s.shape, bool(0.2 < s.min() < s.max() < 1.5)
      ((300,), True)
    """
    _checks.positive_int("mackey_glass", "length", length, minimum=0)
    _checks.positive_int("mackey_glass", "washout", washout, minimum=0)
    _checks.positive_int("mackey_glass", "subsample", subsample)
    _checks.check_interval("mackey_glass", "dt", dt, 0, open_low=True)
    _args.check_optional_key("mackey_glass", "key", key)
    delay = round(tau / dt)
    if delay < 1:
        raise ValueError(
            f"mackey_glass: `tau` / `dt` = {tau} / {dt} rounds to a delay of {delay} steps; "
            "it must be at least 1 (raise `tau` or lower `dt`)"
        )
    history = jnp.full((delay,), x0, jnp.float32)
    if key is not None:
        history = history + jax.random.uniform(key, (delay,), jnp.float32, -0.1, 0.1)

    def euler(carry, _):
        x, buf, i = carry
        lagged = buf[i]
        x_new = x + dt * (beta * lagged / (1 + lagged**exponent) - gamma * x)
        return (x_new, buf.at[i].set(x), (i + 1) % delay), x_new

    def sample(carry, _):
        carry, xs = jax.lax.scan(euler, carry, length=subsample)
        return carry, xs[-1]

    init = (history[-1], history, jnp.asarray(0))
    _, series = jax.lax.scan(sample, init, length=washout + length)
    return series[washout:]
