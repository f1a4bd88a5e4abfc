"""The data source of ``fit``/``evaluate``: arrays, memmaps or any iterable of batches.

Every source yields :class:`Batch` es of one fixed size ``B``: the last partial batch
is padded (with copies of real rows) and masked (``mask`` 0), so every example counts
in every epoch and nothing recompiles.

With several processes (:func:`nnjax.distributed.initialize`) ``B`` is the global
batch size: every process computes the same epoch order and reads only its own block
of rows of each batch (``part``); an iterable yields each process's own block (its
batches are ``B / process_count`` rows), the way per-host data loaders do.

The data-order rule lives here and only here (:func:`epoch_order`): the order of epoch
``e`` of a run with seed ``s`` over ``N`` examples is a pure function of ``(s, e, N)``,
so a resumed run, a sweep member and a lone ``fit`` see the same batches.

Example:
  >>> x = np.arange(10, dtype=np.float32)[:, None]
  >>> src = ArraySource((x,), (np.zeros(10, np.int32),), batch_size=4)
  >>> idx, mask = src.epoch(seed=0, epoch=0, shuffle=False)
  >>> idx.tolist(), mask[-1].tolist()
  ([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]], [1.0, 1.0, 0.0, 0.0])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from nnjax.train import validation as checks


class Batch(NamedTuple):
    """One batch as the step sees it (a pytree).

    ``x`` and ``y`` any pytrees of ``(B, ...)`` arrays, ``weight (B,)`` the loss weight
    (sample weight x class weight, 0 on padding), ``mask (B,)`` 1 for real rows and 0 for
    padding.

    Example:
      >>> Batch(np.ones((2, 3)), np.zeros(2), np.ones(2), np.ones(2)).x.shape
      (2, 3)
    """

    x: Any
    y: Any
    weight: Any
    mask: Any


def epoch_order(seed: int, epoch: int, n: int, *, shuffle: bool = True) -> np.ndarray:
    """The example order of one epoch: a permutation fixed by ``(seed, epoch, n)``.

    Example:
      >>> epoch_order(0, 0, 4, shuffle=False).tolist()
      [0, 1, 2, 3]
    """
    return np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)


def epoch_index(
    seed: int, epoch: int, n: int, batch_size: int, *, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, mask)``, both ``(ceil(n / B), B)``: the epoch's batches, the last one padded.

    Padding repeats the epoch's first examples with mask 0 (real rows: never NaN).

    Example:
      >>> idx, mask = epoch_index(0, 0, 3, 2, shuffle=False)
      >>> idx.tolist(), mask.tolist()
      ([[0, 1], [2, 0]], [[1.0, 1.0], [1.0, 0.0]])
    """
    order = epoch_order(seed, epoch, n, shuffle=shuffle)
    steps = -(-n // batch_size)
    idx = np.resize(order, steps * batch_size).reshape(steps, batch_size)
    mask = (np.arange(steps * batch_size) < n).astype(np.float32).reshape(steps, batch_size)
    return idx, mask


def _take(tree: Any, rows: np.ndarray) -> Any:
    """Rows of every leaf (a memmap reads only these rows), float64 as float32."""

    def take(a):
        out = np.asarray(a[rows])
        return out.astype(np.float32) if out.dtype == np.float64 else out

    return jax.tree.map(take, tree)


class ArraySource:
    """In-memory (or memory-mapped) arrays ``x``, ``y`` and per-example loss weights.

    Args:
      x: a pytree of ``(N, ...)`` arrays (NumPy, memmaps, JAX).
      y: a pytree of ``(N, ...)`` arrays.
      batch_size: ``B``.
      weight: ``(N,)`` loss weights (sample x class weight), ones by default.

    Example:
      >>> src = ArraySource(np.ones((5, 2)), np.zeros(5), batch_size=2)
      >>> src.steps, src.batch(np.array([4, 0]), np.array([1.0, 0.0])).mask.tolist()
      (3, [1.0, 0.0])
    """

    def __init__(self, x: Any, y: Any, *, batch_size: int, weight: np.ndarray | None = None):
        self.x, self.y = x, y
        self.n = len(jax.tree.leaves(x)[0])
        self.batch_size = batch_size
        self.weight = np.ones(self.n, np.float32) if weight is None else weight
        self.steps = -(-self.n // batch_size)

    def epoch(self, seed: int, epoch: int, *, shuffle: bool = True):
        """``(idx, mask)`` of the epoch's batches (see :func:`epoch_index`)."""
        return epoch_index(seed, epoch, self.n, self.batch_size, shuffle=shuffle)

    def batch(self, rows: np.ndarray, mask: np.ndarray) -> Batch:
        """The host :class:`Batch` of ``rows`` (only these rows are read)."""
        x, y = _take(self.x, rows), _take(self.y, rows)
        return Batch(x, y, self.weight[rows] * mask, mask.astype(np.float32))

    def batches(
        self, seed: int, epoch: int, *, shuffle: bool = True, part: slice | None = None
    ) -> Iterator[Batch]:
        """Every host batch of the epoch, in order; only the columns ``part`` of each.

        ``part`` is this process's block of rows of each global batch
        (:func:`nnjax.train.sharding.process_rows`); only those rows are read.
        """
        idx, mask = self.epoch(seed, epoch, shuffle=shuffle)
        if part is not None:
            idx, mask = idx[:, part], mask[:, part]
        return (self.batch(i, m) for i, m in zip(idx, mask))

    def example(self) -> Batch:
        """The first batch (for shape checks before anything compiles)."""
        idx, mask = epoch_index(0, 0, self.n, self.batch_size, shuffle=False)
        return self.batch(idx[0], mask[0])

    def device_arrays(self) -> tuple[Any, Any, np.ndarray]:
        """``(x, y, weight)`` as host arrays for a one-time transfer to the device."""
        return _take(self.x, np.arange(self.n)), _take(self.y, np.arange(self.n)), self.weight

    def nbytes(self) -> int:
        """Bytes of ``x`` and ``y``."""
        return sum(int(np.asarray(a).nbytes) for a in jax.tree.leaves((self.x, self.y)))

    def is_memmap(self) -> bool:
        """Whether any leaf is a NumPy memmap (never copied whole)."""
        return any(isinstance(a, np.memmap) for a in jax.tree.leaves((self.x, self.y)))


def split_batch(item: Any, where: str) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight or None)`` from ``(x, y)`` / ``(x, y, sample_weight)``.

    Example:
      >>> split_batch((1, 2), "batch 0")
      (1, 2, None)
    """
    if not isinstance(item, tuple | list) or len(item) not in (2, 3):
        raise ValueError(
            f"{where}: expected (x, y) or (x, y, sample_weight), got "
            f"{type(item).__name__}{f' of length {len(item)}' if hasattr(item, '__len__') else ''}"
        )
    return item[0], item[1], item[2] if len(item) == 3 else None


class IterableSource:
    """Batches from any iterable (generator, list, loader), padded to the first batch's size.

    With several processes each process's iterable yields its own block of rows of
    every global batch (the same number of batches in every process);
    ``batch_size`` is then the global size, ``local_batch_size * process_count``.

    Args:
      data: an iterable of ``(x, y)`` or ``(x, y, sample_weight)`` batches.
      steps_per_epoch: batches per epoch; required when ``data`` is endless (one
        iterator then runs on across epochs, as in Keras). Without it, each epoch
        iterates ``data`` anew (a list or loader restarts; a generator ends after one).
      class_weight: ``{class: weight}`` for integer labels.
      check_inputs: reject integer ``x`` leaves and NaN inputs.

    Example:
      >>> batches = [(np.ones((4, 2), np.float32), np.zeros(4, np.int32))] * 3
      >>> src = IterableSource(batches)
      >>> [b.x.shape for b in src.batches(0, 0)]
      [(4, 2), (4, 2), (4, 2)]
    """

    def __init__(
        self,
        data: Iterable,
        *,
        steps_per_epoch: int | None = None,
        class_weight: Mapping[int, float] | None = None,
        check_inputs: bool = True,
    ):
        self.data, self.steps_per_epoch = data, steps_per_epoch
        self.class_weight, self.check_inputs = class_weight, check_inputs
        self._iterator: Iterator | None = None
        items = iter(data)
        first = next(items, None)
        if items is data:  # a one-shot iterator: keep the batch just read
            self.data = itertools.chain([first], items)
        self._first = self._prepare(first, 0, None)
        self.local_batch_size = self._first.mask.shape[0]
        self.batch_size = self.local_batch_size * jax.process_count()
        self.steps = steps_per_epoch if steps_per_epoch else _length(data)
        self._epochs_run = 0

    def _prepare(self, item: Any, i: int, spec: Batch | None) -> Batch:
        if item is None and spec is None:
            raise ValueError("the data iterable yielded no batches")
        x, y, sw = split_batch(item, f"batch {i}")
        host = checks.host_batch(i, x, y, sw, spec, check_inputs=self.check_inputs)
        return checks.weighted(host, self.class_weight, f"batch {i}")

    def example(self) -> Batch:
        """The first batch."""
        return self._first

    def batches(
        self, seed: int, epoch: int, *, shuffle: bool = True, part: slice | None = None
    ) -> Iterator[Batch]:
        """The epoch's batches (``seed``, ``shuffle`` and ``part``: the iterable's business)."""
        del seed, shuffle, part
        if self.steps_per_epoch:
            if self._iterator is None:
                self._iterator = iter(self.data)
            items: Iterator = itertools.islice(self._iterator, self.steps_per_epoch)
        else:
            items = iter(self.data)
            if self._epochs_run and isinstance(self.data, Iterator):
                raise ValueError(
                    "the data iterator is exhausted after one epoch; pass steps_per_epoch "
                    "(with an endless generator) or a re-iterable (a list, a DataLoader)"
                )
        self._epochs_run += 1
        count = 0
        for count, item in enumerate(items, 1):
            yield self._prepare(item, count - 1, self._first)
        if self.steps_per_epoch and count < self.steps_per_epoch:
            raise ValueError(
                f"the data ended after {count} batches in epoch {epoch}, but "
                f"steps_per_epoch={self.steps_per_epoch}; make the iterable endless "
                "(e.g. itertools.cycle) or lower steps_per_epoch"
            )


def nonfinite_input(source: Any, chunk: int = 65536) -> str | None:
    """Where an array source's floating inputs hold NaN or inf, or ``None``.

    Reads memory-mapped inputs ``chunk`` rows at a time (it runs only after a
    non-finite loss, to name the cause). Iterables are not scanned.

    Example:
      >>> x = np.ones((4, 2), np.float32); x[2, 1] = np.nan
      >>> nonfinite_input(ArraySource(x, np.zeros(4), batch_size=2))
      'x (example 2)'
    """
    if not isinstance(source, ArraySource):
        return None
    for path, leaf in jax.tree_util.tree_flatten_with_path(source.x)[0]:
        if not np.issubdtype(leaf.dtype, np.floating):
            continue
        for start in range(0, len(leaf), chunk):
            rows = np.asarray(leaf[start : start + chunk])
            bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1))
            if bad.size:
                return f"x{jax.tree_util.keystr(path)} (example {start + int(bad[0])})"
    return None


def is_arrays(data: Any) -> bool:
    """Whether ``data`` is ``(x, y)`` / ``(x, y, sample_weight)`` arrays (a tuple).

    Rather than an iterable of batches (a list, a generator, a loader).
    """
    if isinstance(data, np.ndarray | jax.Array):
        raise ValueError(
            f"data must be a pair (x, y) or (x, y, sample_weight) of arrays, or an iterable of "
            f"such batches; got one array of shape {data.shape}"
        )
    return isinstance(data, tuple)


def array_source(
    name: str,
    data: tuple,
    *,
    batch_size: int,
    class_weight: Mapping[int, float] | None = None,
    check_inputs: bool = True,
) -> ArraySource:
    """Checks ``(x, y[, sample_weight])`` and builds an :class:`ArraySource` of it.

    Example:
      >>> array_source("train", (np.ones((3, 2)), np.zeros(3)), batch_size=8).batch_size
      3
    """
    x, y, sw = split_batch(data, f"`{name}`")
    x, y = checks.host_tree(f"{name} x", x), checks.host_tree(f"{name} y", y)
    n = checks.check_lengths(f"`{name}`", {"x": x, "y": y})
    if n == 0:
        raise ValueError(f"`{name}` is empty: x has shape {checks.describe(x)}")
    checks.check_inputs_ok(f"`{name}`", x, check_inputs=check_inputs)
    weight = checks.sample_weights(f"`{name}`", sw, n)
    if class_weight is not None:
        weight = weight * checks.class_weights(f"`{name}`", y, class_weight)
    return ArraySource(x, y, batch_size=min(batch_size, n), weight=weight)


def split_off(data: tuple, fraction: float) -> tuple[tuple, tuple]:
    """Keras' ``validation_split``: holds out the last ``fraction`` of the arrays.

    The split is taken before any shuffling. Returns ``(train, validation)``.

    Example:
      >>> train, val = split_off((np.arange(10), np.arange(10)), 0.2)
      >>> val[0].tolist()
      [8, 9]
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must lie in (0, 1), got {fraction}")
    n = len(jax.tree.leaves(data[0])[0])
    cut = n - round(n * fraction)
    if cut <= 0 or cut >= n:
        raise ValueError(f"validation_split={fraction} of {n} examples leaves one side empty")
    head = jax.tree.map(lambda a: a[:cut], tuple(data))
    return head, jax.tree.map(lambda a: a[cut:], tuple(data))


def make_source(
    name: str,
    data: Any,
    *,
    batch_size: int,
    steps_per_epoch: int | None = None,
    class_weight: Mapping[int, float] | None = None,
    check_inputs: bool = True,
) -> ArraySource | IterableSource:
    """An :class:`ArraySource` for a tuple of arrays, else an :class:`IterableSource`.

    Example:
      >>> type(make_source("train", [(np.ones((2, 1)), np.ones(2))], batch_size=4)).__name__
      'IterableSource'
    """
    if is_arrays(data):
        return array_source(
            name, data, batch_size=batch_size, class_weight=class_weight, check_inputs=check_inputs
        )
    if not isinstance(data, Iterable):
        raise ValueError(
            f"`{name}` must be a pair (x, y) or (x, y, sample_weight) of arrays, or an "
            f"iterable of such batches; got {type(data).__name__}"
        )
    return IterableSource(
        data, steps_per_epoch=steps_per_epoch, class_weight=class_weight, check_inputs=check_inputs
    )


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


__all__ = [
    "ArraySource",
    "Batch",
    "IterableSource",
    "array_source",
    "epoch_index",
    "epoch_order",
    "is_arrays",
    "make_source",
    "nonfinite_input",
    "split_batch",
    "split_off",
]
