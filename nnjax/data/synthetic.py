"""Small synthetic datasets: logic gates, the adding problem, sine windows, moons, blobs.

Every generator is deterministic given ``seed`` and returns NumPy arrays ``(x, y)``.
"""

from __future__ import annotations

import numpy as np

from nnjax.data._checks import finite_number, flag, positive_int
from nnjax.data._checks import seed as check_seed


def _dtype(op: str, dtype: np.typing.DTypeLike, kinds: str = "f") -> np.dtype:
    """``dtype`` as a :class:`numpy.dtype` after checking its kind is one of ``kinds``.

    Raises:
      TypeError: ``dtype`` is not a dtype (e.g. ``"float"`` misspelt).
      ValueError: ``dtype`` is of another kind, e.g. an integer dtype for real values,
        which would be truncated (the sine or moon coordinates to 0, 1 or -1).
    """
    try:
        result = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{op}: `dtype` must be a NumPy dtype such as np.float32, got {dtype!r}"
        ) from None
    if result.kind not in kinds:
        if kinds == "f":
            raise ValueError(
                f"{op}: `dtype` must be a float dtype, got {result}; the values are real "
                "numbers, which an integer dtype would truncate"
            )
        raise ValueError(f"{op}: `dtype` must be numeric, got {result}")
    return result


LOGIC_GATES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xor": (0, 1, 1, 0),
    "xnor": (1, 0, 0, 1),
}
"""The two-input gates :func:`logic_gate` knows, with their truth tables on
inputs (0,0), (0,1), (1,0), (1,1).
"""


def logic_gate(
    name: str,
    *,
    bipolar: bool = False,
    bipolar_targets: bool | None = None,
    dtype: np.typing.DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a two-input logic gate.

    Args:
      name: one of ``and, or, nand, nor, xor, xnor`` (case-insensitive).
      bipolar: encode inputs as -1/+1 instead of 0/1.
      bipolar_targets: encode targets as -1/+1; defaults to ``bipolar``.
      dtype: the dtype of both arrays.

    Returns:
      ``(x, y)``: inputs ``(4, 2)`` in the order (0,0), (0,1), (1,0), (1,1), and
      targets ``(4,)``.

    Raises:
      ValueError: an unknown gate (the message lists the known ones), a non-numeric
        ``dtype``, or -1/+1 values asked for with an unsigned or bool ``dtype``, which
        cannot hold -1.
      TypeError: ``name`` is not a string, ``dtype`` not a dtype, or ``bipolar`` or
        ``bipolar_targets`` not a bool.

    Example:
      >>> x, y = logic_gate("and")
      >>> y
      array([0., 0., 0., 1.], dtype=float32)
    """
    if not isinstance(name, str):
        raise TypeError(f"logic_gate: `name` must be a str such as 'xor', got {name!r}")
    table = LOGIC_GATES.get(name.lower())
    if table is None:
        raise ValueError(f"logic_gate: unknown gate {name!r}; known: {', '.join(LOGIC_GATES)}")
    dtype = _dtype("logic_gate", dtype, "biufc")
    bipolar = flag("logic_gate", "bipolar", bipolar)
    targets = (
        bipolar
        if bipolar_targets is None
        else flag("logic_gate", "bipolar_targets", bipolar_targets)
    )
    if (bipolar or targets) and dtype.kind not in "ifc":
        which = "bipolar" if bipolar else "bipolar_targets"
        raise ValueError(
            f"logic_gate: `dtype` {np.dtype(dtype)} cannot hold the -1 of {which}=True; "
            "use a signed or float dtype"
        )
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array(table, dtype=np.float64)
    if bipolar:
        x = 2.0 * x - 1.0
    if targets:
        y = 2.0 * y - 1.0
    return x.astype(dtype), y.astype(dtype)


def xor(
    *, bipolar: bool = False, dtype: np.typing.DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table: ``logic_gate("xor", bipolar=bipolar, dtype=dtype)``.

    Example:
      >>> x, y = xor()
      >>> x.shape, y.tolist()
      ((4, 2), [0.0, 1.0, 1.0, 0.0])
    """
    return logic_gate("xor", bipolar=bipolar, dtype=dtype)


def adding_problem(
    num_samples: int, seq_len: int, *, seed: int = 0, dtype: np.typing.DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem of Hochreiter & Schmidhuber (1997), as in Le et al. (2015).

    Each sequence has two channels: values drawn uniformly from ``[0, 1)`` and a marker
    that is 1 at exactly two steps, one in the first half of the sequence and one in the
    second, else 0. The target is the sum of the two marked values, so a model must
    remember the first across up to ``seq_len`` steps.

    Args:
      num_samples: the number of sequences ``N``.
      seq_len: the sequence length ``T`` (at least 2).
      seed: seeds the generator.
      dtype: the dtype of both arrays, a float dtype.

    Returns:
      ``(x, y)``: ``x`` of shape ``(N, T, 2)`` (channel 0 the values, channel 1 the
      markers) and ``y`` of shape ``(N,)`` with values in ``[0, 2)``.

    Raises:
      ValueError: ``num_samples`` is not a positive int, ``seq_len`` not an int
        ``>= 2``, ``seed`` not a non-negative int, or ``dtype`` not a float dtype.
      TypeError: ``dtype`` is not a dtype.

    Example:
      >>> x, y = adding_problem(3, 10)
      >>> x.shape, x[..., 1].sum(axis=1).tolist()
      ((3, 10, 2), [2.0, 2.0, 2.0])
    """
    num_samples = positive_int("adding_problem", "num_samples", num_samples)
    seq_len = positive_int("adding_problem", "seq_len", seq_len, minimum=2)
    dtype = _dtype("adding_problem", dtype)
    rng = np.random.default_rng(check_seed("adding_problem", seed))
    values = rng.random((num_samples, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, size=num_samples)
    second = rng.integers(half, seq_len, size=num_samples)
    rows = np.arange(num_samples)
    markers = np.zeros_like(values)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype(dtype), y.astype(dtype)


def sine_sequences(
    num_samples: int,
    window: int,
    *,
    period: float = 20.0,
    noise: float = 0.05,
    seed: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a noisy sine wave, each paired with the value that follows it.

    Sample ``i`` is ``s_t = sin(2π t / period + φ_i) + ε_t`` for ``t = 0..window``,
    with a random phase ``φ_i`` and Gaussian noise ``ε_t`` of standard deviation
    ``noise``; ``x`` holds the first ``window`` values and ``y`` the last.

    Args:
      num_samples: the number of windows ``N``.
      window: the window length ``T``.
      period: the period of the sine, in steps.
      noise: the standard deviation of the additive noise (0 for a clean wave).
      seed: seeds the generator.
      dtype: the dtype of both arrays, a float dtype.

    Returns:
      ``(x, y)``: ``x`` of shape ``(N, T, 1)`` and ``y`` of shape ``(N,)``.

    Raises:
      ValueError: ``num_samples`` or ``window`` is not a positive int, ``period`` is
        not a finite number ``> 0``, ``noise`` not a finite number ``>= 0``,
        ``seed`` not a non-negative int, or ``dtype`` not a float dtype.
      TypeError: ``period`` or ``noise`` is not a real number, or ``dtype`` not a dtype.

    Example:
      >>> x, y = sine_sequences(4, 16, noise=0.0)
      >>> x.shape, y.shape
      ((4, 16, 1), (4,))
    """
    num_samples = positive_int("sine_sequences", "num_samples", num_samples)
    window = positive_int("sine_sequences", "window", window)
    period = finite_number("sine_sequences", "period", period, 0, open_low=True)
    noise = finite_number("sine_sequences", "noise", noise, 0)
    dtype = _dtype("sine_sequences", dtype)
    rng = np.random.default_rng(check_seed("sine_sequences", seed))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(num_samples, 1))
    steps = np.arange(window + 1)[None, :]
    series = np.sin(2.0 * np.pi * steps / period + phase)
    series = series + noise * rng.standard_normal(series.shape)
    return series[:, :window, None].astype(dtype), series[:, window].astype(dtype)


def two_moons(
    num_samples: int,
    *,
    noise: float = 0.1,
    seed: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, as ``sklearn.datasets.make_moons``.

    Args:
      num_samples: the number of points ``N``; ``N // 2`` of them are class 0.
      noise: the standard deviation of Gaussian noise added to the points.
      seed: seeds the generator.
      dtype: the dtype of ``x``, a float dtype.

    Returns:
      ``(x, y)``: points ``(N, 2)`` and int32 labels ``(N,)`` in {0, 1}, shuffled.

    Raises:
      ValueError: ``num_samples`` is not a positive int, ``noise`` not a finite
        number ``>= 0``, ``seed`` not a non-negative int, or ``dtype`` not a float
        dtype.
      TypeError: ``noise`` is not a real number, or ``dtype`` not a dtype.

    Example:
      >>> x, y = two_moons(10)
      >>> x.shape, sorted(set(y.tolist()))
      ((10, 2), [0, 1])
    """
    num_samples = positive_int("two_moons", "num_samples", num_samples)
    noise = finite_number("two_moons", "noise", noise, 0)
    dtype = _dtype("two_moons", dtype)
    rng = np.random.default_rng(check_seed("two_moons", seed))
    n_out = num_samples // 2
    n_in = num_samples - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((num_samples, 2))
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    order = rng.permutation(num_samples)
    return x[order].astype(dtype), y[order]


def blobs(
    num_samples: int,
    *,
    centers: int | np.ndarray = 3,
    std: float = 1.0,
    num_features: int = 2,
    box: float = 10.0,
    seed: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, as ``sklearn.datasets.make_blobs``.

    Args:
      num_samples: the number of points ``N``, spread as evenly as possible over the
        clusters.
      centers: the number of clusters (centres drawn uniformly from
        ``[-box, box]^num_features``) or an array ``(K, num_features)`` of centres.
      std: the standard deviation of each cluster.
      num_features: the dimension of the points when ``centers`` is an int.
      box: half the side of the box the centres are drawn from.
      seed: seeds the generator.
      dtype: the dtype of ``x``, a float dtype.

    Returns:
      ``(x, y)``: points ``(N, num_features)`` and int32 cluster labels ``(N,)``,
      shuffled.

    Raises:
      ValueError: ``num_samples``, ``centers`` (a count) or ``num_features`` is not a
        positive int; ``std`` is not a finite number ``>= 0`` or ``box`` not a finite
        number ``> 0``; ``centers`` (an array) is not ``(K, F)`` with ``K, F >= 1`` and
        finite values; ``seed`` is not a non-negative int; or ``dtype`` is not a
        float dtype.
      TypeError: ``std`` or ``box`` is not a real number, or ``dtype`` not a dtype.

    Example:
      >>> x, y = blobs(9, centers=3)
      >>> x.shape, np.bincount(y).tolist()
      ((9, 2), [3, 3, 3])
    """
    num_samples = positive_int("blobs", "num_samples", num_samples)
    std = finite_number("blobs", "std", std, 0)
    box = finite_number("blobs", "box", box, 0, open_low=True)
    dtype = _dtype("blobs", dtype)
    rng = np.random.default_rng(check_seed("blobs", seed))
    if _is_count(centers):
        count = positive_int("blobs", "centers", centers)
        num_features = positive_int("blobs", "num_features", num_features)
        centers = rng.uniform(-box, box, size=(count, num_features))
    centers = _check_centers(centers)
    y = np.arange(num_samples, dtype=np.int32) % len(centers)
    x = centers[y] + std * rng.standard_normal((num_samples, centers.shape[1]))
    order = rng.permutation(num_samples)
    return x[order].astype(dtype), y[order]


def _is_count(centers: np.typing.ArrayLike) -> bool:
    """Whether ``centers`` is a scalar (a count), not centres; ragged lists are not."""
    try:
        return np.ndim(centers) == 0
    except ValueError:  # a ragged nested list: _check_centers names it
        return False


def _check_centers(centers) -> np.ndarray:
    """``centers`` as a finite float64 ``(K, F)`` array with ``K, F >= 1``."""
    try:
        array = np.asarray(centers, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"blobs: `centers` must be an int or a (K, F) array of numbers, got {centers!r} ({err})"
        ) from None
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"blobs: centers must have shape (K, F) with K, F >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"blobs: `centers` must be finite, got {array.tolist()}")
    return array
