"""A seedable, resumable batch iterator over NumPy arrays (host side)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike

from nnjax.data._checks import flag, positive_int
from nnjax.data._checks import seed as check_seed


def num_batches(num_examples: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    """The number of batches :func:`batches` yields for ``num_examples`` examples.

    Args:
      num_examples: the number of examples ``N >= 0``.
      batch_size: the batch size ``B > 0``.
      drop_remainder: whether a last, smaller batch is dropped.

    Returns:
      ``N // B`` when dropping the remainder, else ``ceil(N / B)``, as an ``int``.

    Raises:
      ValueError: ``num_examples`` is not a non-negative int or ``batch_size`` not a
        positive int (floats such as ``4.0`` and bools are not ints; NumPy ints are).
      TypeError: ``drop_remainder`` is not a bool.

    Example:
      >>> num_batches(10, 4), num_batches(10, 4, drop_remainder=True)
      (3, 2)
    """
    batch_size = positive_int("num_batches", "batch_size", batch_size)
    num_examples = positive_int("num_batches", "num_examples", num_examples, minimum=0)
    if flag("num_batches", "drop_remainder", drop_remainder):
        return num_examples // batch_size
    return -(-num_examples // batch_size)


_WORD = 2**32


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of the example order of epoch ``epoch`` of a run seeded ``seed``.

    The one rule behind :func:`permutation` and :func:`nnjax.train.epoch_order`. While
    both are below ``2**32`` it is ``default_rng([seed, epoch])``, as it always was, so
    recorded runs keep their orders. From ``2**32`` on NumPy would split the ints into
    32-bit words (``[2**32, 0]`` seeds as ``[0, 1]``: the pair ``(0, 1)``), so it is
    then NumPy's child ``epoch`` of ``SeedSequence(seed)``, whose word sequence (at
    least five words) no pair below ``2**32`` (two words) has.

    Args:
      seed: the seed, a non-negative int.
      epoch: the epoch, a non-negative int.

    Returns:
      A new :class:`numpy.random.Generator`.

    Raises:
      ValueError: ``seed`` or ``epoch`` is negative (NumPy's message).

    Example:
      >>> a, b = epoch_rng(2**32, 0), epoch_rng(0, 1)
      >>> a.permutation(10).tolist() == b.permutation(10).tolist()
      False
    """
    if seed < _WORD and epoch < _WORD:
        return np.random.default_rng([seed, epoch])
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch,)))


def permutation(num_examples: int, *, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """The example order for ``(seed, epoch)``: ``epoch_rng(seed, epoch).permutation``.

    That is ``default_rng([seed, epoch]).permutation`` for values below ``2**32``
    (see :func:`epoch_rng`). It depends on nothing else, so a run resumed at ``epoch``
    sees the same order as one that never stopped.

    Raises:
      ValueError: ``num_examples``, ``seed`` or ``epoch`` is not a non-negative int.

    Example:
      >>> permutation(5, seed=1).tolist() == permutation(5, seed=1).tolist()
      True
    """
    num_examples = positive_int("permutation", "num_examples", num_examples, minimum=0)
    seed = check_seed("permutation", seed)
    epoch = check_seed("permutation", epoch, "epoch")
    return epoch_rng(seed, epoch).permutation(num_examples)


def _as_examples(name: str, value: Any) -> np.ndarray:
    """``value`` as an array with an examples axis, or a TypeError/ValueError naming it."""
    if isinstance(value, Mapping) or (
        isinstance(value, tuple | list) and any(getattr(v, "ndim", 0) >= 1 for v in value)
    ):
        kind = type(value).__name__
        raise TypeError(
            f"batches: `{name}` must be one array (N, ...), got a {kind} of arrays; batch "
            f"each array separately, or np.stack them first if they are the examples"
        )
    try:
        array = np.asarray(value)
    except ValueError as err:  # a ragged nested list
        raise ValueError(f"batches: `{name}` is not a regular array (N, ...): {err}") from None
    if array.dtype == object:
        raise TypeError(
            f"batches: `{name}` must be an array-like (N, ...) of numbers, got "
            f"{type(value).__name__} (object dtype)"
        )
    if array.ndim == 0:
        raise ValueError(f"batches: `{name}` must have an examples axis, got a scalar")
    return array


@overload
def batches(
    x: ArrayLike,
    y: None,
    batch_size: int,
    *,
    shuffle: bool = ...,
    seed: int = ...,
    epoch: int = ...,
    drop_remainder: bool = ...,
) -> Iterator[np.ndarray]: ...
@overload
def batches(
    x: ArrayLike,
    y: ArrayLike,
    batch_size: int,
    *,
    shuffle: bool = ...,
    seed: int = ...,
    epoch: int = ...,
    drop_remainder: bool = ...,
) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
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

    The batches index ``x`` and ``y`` lazily (no copy is made at the call), so changes
    made to them while iterating show up in later batches. Each batch is a new array,
    shuffled or not: changing a batch in place never changes ``x`` or ``y``.

    Args:
      x: inputs, one array with the examples along axis 0, shape ``(N, ...)``.
      y: targets ``(N, ...)``, or ``None`` to batch ``x`` alone.
      batch_size: the batch size ``B > 0``.
      shuffle: visit examples in the order :func:`permutation` gives for
        ``(seed, epoch)``; otherwise in order.
      seed: the shuffling seed, a non-negative int.
      epoch: the epoch number, a non-negative int; each epoch has its own order.
      drop_remainder: drop a last batch smaller than ``B`` (keeps shapes static for
        ``jax.jit``); otherwise the last batch holds the ``N % B`` examples left.

    Returns:
      An iterator over ``(x_batch, y_batch)``: NumPy arrays with ``B`` examples (fewer
      in the last), or ``x_batch`` alone when ``y`` is ``None``; dtypes are those of
      ``x`` and ``y``.

    Raises:
      ValueError: at the call, not at the first batch: ``batch_size`` not a positive
        int, ``seed`` or ``epoch`` not a non-negative int, empty data, ``x`` without an
        examples axis or ragged, ``x`` and ``y`` of different lengths, or
        ``drop_remainder=True`` with ``batch_size`` larger than ``N`` (no batch at all).
      TypeError: ``x`` or ``y`` is a dict, or a tuple or list of arrays (a pytree:
        pass one array), or becomes an object-dtype array (a generator, a set, a list
        holding ``None``); ``shuffle`` or ``drop_remainder`` is not a bool. Only object
        dtype is refused: string, bytes and datetime arrays are batched like numbers.

    Example:
      >>> import numpy as np
      >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
      >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False)]
      [[0, 1], [2, 3], [4]]
    """
    batch_size = positive_int("batches", "batch_size", batch_size)
    shuffle = flag("batches", "shuffle", shuffle)
    drop_remainder = flag("batches", "drop_remainder", drop_remainder)
    seed = check_seed("batches", seed)
    epoch = check_seed("batches", epoch, "epoch")
    x = _as_examples("x", x)
    n = x.shape[0]
    if n == 0:
        raise ValueError(f"batches: x is empty (shape {x.shape})")
    if y is not None:
        y = _as_examples("y", y)
        if y.shape[0] != n:
            raise ValueError(
                f"batches: x and y differ in length: x has shape {x.shape}, y has shape {y.shape}"
            )
    if drop_remainder and batch_size > n:
        raise ValueError(
            f"batches: `batch_size` {batch_size} is larger than the {n} examples of x, so "
            f"drop_remainder=True would yield no batch; use a batch_size <= {n} or "
            f"drop_remainder=False"
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
        if order is None:  # a slice is a view: copy it, as fancy indexing does
            xb, yb = np.array(x[sl]), None if y is None else np.array(y[sl])
        else:
            xb, yb = x[order[sl]], None if y is None else y[order[sl]]
        yield xb if yb is None else (xb, yb)
