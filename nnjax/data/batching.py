"""A seedable, resumable batch iterator over NumPy arrays (host side)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike


def _check_batch_size(op: str, batch_size: int) -> None:
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size <= 0:
        raise ValueError(f"{op}: batch_size must be a positive integer, got {batch_size!r}")


def num_batches(num_examples: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    """The number of batches :func:`batches` yields for ``num_examples`` examples.

    Args:
      num_examples: the number of examples ``N``.
      batch_size: the batch size ``B > 0``.
      drop_remainder: whether a last, smaller batch is dropped.

    Returns:
      ``N // B`` when dropping the remainder, else ``ceil(N / B)``.

    Example:
      >>> num_batches(10, 4), num_batches(10, 4, drop_remainder=True)
      (3, 2)
    """
    _check_batch_size("num_batches", batch_size)
    if num_examples < 0:
        raise ValueError(f"num_batches: num_examples must be >= 0, got {num_examples}")
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def permutation(num_examples: int, *, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """The example order for ``(seed, epoch)``: ``default_rng([seed, epoch]).permutation``.

    It depends on nothing else, so a run resumed at ``epoch`` sees the same order as
    one that never stopped.

    Example:
      >>> permutation(5, seed=1).tolist() == permutation(5, seed=1).tolist()
      True
    """
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batches(
    x: ArrayLike,
    y: ArrayLike | None,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray] | np.ndarray]:
    """Yields one epoch of mini-batches of ``(x, y)``.

    Args:
      x: inputs, examples along axis 0, shape ``(N, ...)``.
      y: targets ``(N, ...)``, or ``None`` to batch ``x`` alone.
      batch_size: the batch size ``B > 0``.
      shuffle: visit examples in the order :func:`permutation` gives for
        ``(seed, epoch)``; otherwise in order.
      seed: the shuffling seed.
      epoch: the epoch number; each epoch has its own order.
      drop_remainder: drop a last batch smaller than ``B`` (keeps shapes static for
        ``jax.jit``).

    Returns:
      An iterator over ``(x_batch, y_batch)``: NumPy arrays with ``B`` examples (fewer
      in the last), or ``x_batch`` alone when ``y`` is ``None``; dtypes are those of
      ``x`` and ``y``.

    Raises:
      ValueError: at the call, not at the first batch: ``batch_size <= 0``, empty
        data, ``x`` without an examples axis, or ``x`` and ``y`` of different lengths.

    Example:
      >>> import numpy as np
      >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
      >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False)]
      [[0, 1], [2, 3], [4]]
    """
    _check_batch_size("batches", batch_size)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("batches: x must have an examples axis, got a scalar")
    n = x.shape[0]
    if n == 0:
        raise ValueError(f"batches: x is empty (shape {x.shape})")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"batches: x and y differ in length: x has shape {x.shape}, y has shape {y.shape}"
            )
    order = permutation(n, seed=seed, epoch=epoch) if shuffle else None
    count = num_batches(n, batch_size, drop_remainder=drop_remainder)
    return _iterate(x, y, batch_size, order, count)


def _iterate(
    x: np.ndarray, y: np.ndarray | None, batch_size: int, order: np.ndarray | None, count: int
) -> Iterator[tuple[np.ndarray, np.ndarray] | np.ndarray]:
    """The generator behind :func:`batches` (split off so arguments are checked eagerly)."""
    for i in range(count):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        index = sl if order is None else order[sl]
        if y is None:
            yield x[index]
        else:
            yield x[index], y[index]
