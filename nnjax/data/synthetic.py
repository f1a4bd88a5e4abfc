"""Small synthetic datasets: logic gates, the adding problem, sine windows, moons, blobs.

Every generator is deterministic given ``seed`` and returns NumPy arrays ``(x, y)``.
"""

from __future__ import annotations

from typing import cast

import numpy as np

#: The two-input gates :func:`logic_gate` knows, with their truth tables on
#: inputs (0,0), (0,1), (1,0), (1,1).
LOGIC_GATES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xor": (0, 1, 1, 0),
    "xnor": (1, 0, 0, 1),
}


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
      ValueError: an unknown gate; the message lists the known ones.

    Example:
      >>> x, y = logic_gate("and")
      >>> y
      array([0., 0., 0., 1.], dtype=float32)
    """
    table = LOGIC_GATES.get(name.lower())
    if table is None:
        raise ValueError(f"logic_gate: unknown gate {name!r}; known: {', '.join(LOGIC_GATES)}")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array(table, dtype=np.float64)
    if bipolar:
        x = 2.0 * x - 1.0
    if bipolar if bipolar_targets is None else bipolar_targets:
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


def _check_positive(op: str, **values: int) -> None:
    for arg, value in values.items():
        if int(value) != value or value <= 0:
            raise ValueError(f"{op}: {arg} must be a positive integer, got {value!r}")


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
      dtype: the dtype of both arrays.

    Returns:
      ``(x, y)``: ``x`` of shape ``(N, T, 2)`` (channel 0 the values, channel 1 the
      markers) and ``y`` of shape ``(N,)`` with values in ``[0, 2)``.

    Example:
      >>> x, y = adding_problem(3, 10)
      >>> x.shape, x[..., 1].sum(axis=1).tolist()
      ((3, 10, 2), [2.0, 2.0, 2.0])
    """
    _check_positive("adding_problem", num_samples=num_samples, seq_len=seq_len)
    if seq_len < 2:
        raise ValueError(f"adding_problem: seq_len must be at least 2, got {seq_len}")
    rng = np.random.default_rng(seed)
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
      dtype: the dtype of both arrays.

    Returns:
      ``(x, y)``: ``x`` of shape ``(N, T, 1)`` and ``y`` of shape ``(N,)``.

    Example:
      >>> x, y = sine_sequences(4, 16, noise=0.0)
      >>> x.shape, y.shape
      ((4, 16, 1), (4,))
    """
    _check_positive("sine_sequences", num_samples=num_samples, window=window)
    if period <= 0 or noise < 0:
        raise ValueError(f"sine_sequences: need period > 0 and noise >= 0, got {period}, {noise}")
    rng = np.random.default_rng(seed)
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
      dtype: the dtype of ``x``.

    Returns:
      ``(x, y)``: points ``(N, 2)`` and int32 labels ``(N,)`` in {0, 1}, shuffled.

    Example:
      >>> x, y = two_moons(10)
      >>> x.shape, sorted(set(y.tolist()))
      ((10, 2), [0, 1])
    """
    _check_positive("two_moons", num_samples=num_samples)
    rng = np.random.default_rng(seed)
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
      dtype: the dtype of ``x``.

    Returns:
      ``(x, y)``: points ``(N, num_features)`` and int32 cluster labels ``(N,)``,
      shuffled.

    Example:
      >>> x, y = blobs(9, centers=3)
      >>> x.shape, np.bincount(y).tolist()
      ((9, 2), [3, 3, 3])
    """
    _check_positive("blobs", num_samples=num_samples)
    rng = np.random.default_rng(seed)
    if np.ndim(centers) == 0:
        _check_positive("blobs", centers=cast(int, centers), num_features=num_features)
        centers = rng.uniform(-box, box, size=(int(centers), num_features))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"blobs: centers must have shape (K, F), got {centers.shape}")
    y = np.arange(num_samples, dtype=np.int32) % len(centers)
    x = centers[y] + std * rng.standard_normal((num_samples, centers.shape[1]))
    order = rng.permutation(num_samples)
    return x[order].astype(dtype), y[order]
