"""The data source of ``fit``/``evaluate``: arrays, memmaps or any iterable of batches.

Every source yields :class:`Batch` es of one fixed size ``B``: the last partial batch
is padded (with copies of real rows) and masked (``mask`` 0), so every example counts
in every epoch and nothing recompiles.

With several processes (:func:`nnjax.distributed.initialize`) ``B`` is the global
batch size: every process computes the same epoch order and reads only its own block
of rows of each batch (``part``); an iterable yields each process's own block (its
batches are ``B / process_count`` rows), the way per-host data loaders do.

Every order ``fit`` uses comes from :func:`epoch_order` (the rule of
:func:`nnjax.data.permutation`): the order of epoch ``e`` of a run with seed ``s`` over
``N`` examples is a pure function of ``(s, e, N)``,
so a resumed run, a sweep member and a lone ``fit`` see the same batches. Array data
is always used whole, every example each epoch (``steps_per_epoch`` is for iterables:
:mod:`nnjax.train.iterable_source`; ``class_weight``: :mod:`nnjax.train.class_weights`).

Example:
  >>> x = np.arange(10, dtype=np.float32)[:, None]
  >>> src = ArraySource((x,), (np.zeros(10, np.int32),), batch_size=4)
  >>> idx, mask = src.epoch(seed=0, epoch=0, shuffle=False)
  >>> idx.tolist(), mask[-1].tolist()
  ([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]], [1.0, 1.0, 0.0, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from numbers import Real
from typing import Any, NamedTuple

import jax
import numpy as np

from nnjax.data.batching import epoch_rng
from nnjax.train import class_weights as weights
from nnjax.train import loss_weights
from nnjax.train import validation as checks
from nnjax.train.iterable_source import IterableSource, split_batch


class Batch(NamedTuple):
    """One batch as the step sees it (a pytree).

    Attributes:
      x: the inputs, any pytree of ``(B, ...)`` arrays.
      y: the targets, any pytree of ``(B, ...)`` arrays (``None`` with a ``loss_fn``
        that needs none).
      weight: ``(B,)`` float32 loss weights (sample x class weight, 0 on padding), or
        ``(B, T, ...)``: one per position (:mod:`nnjax.train.loss_weights`).
      mask: ``(B,)`` float32, 1 for real rows and 0 for the padding of a last partial
        batch.

    Example:
      >>> Batch(np.ones((2, 3)), np.zeros(2), np.ones(2), np.ones(2)).x.shape
      (2, 3)
    """

    x: Any
    y: Any
    weight: Any
    mask: Any


def epoch_order(seed: int, epoch: int, n: int, *, shuffle: bool = True) -> np.ndarray:
    """The example order of one epoch: ``(n,)`` NumPy indices, the same on every host.

    Args:
      seed: the run's seed.
      epoch: the epoch, 0 first.
      n: the number of examples.
      shuffle: ``True``: :func:`nnjax.data.permutation`'s order for ``(seed, epoch)`` (one
        rule, :func:`nnjax.data.batching.epoch_rng`); ``False``: ``0, ..., n - 1``.

    Example:
      >>> epoch_order(0, 0, 4, shuffle=False).tolist()
      [0, 1, 2, 3]
    """
    return epoch_rng(seed, epoch).permutation(n) if shuffle else np.arange(n)


def epoch_index(
    seed: int, epoch: int, n: int, batch_size: int, *, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, mask)``, both ``(ceil(n / B), B)``: the epoch's batches, the last one padded.

    Padding repeats the epoch's first examples with mask 0 (real rows: never NaN).

    Args:
      seed: the run's seed.
      epoch: the epoch, 0 first.
      n: the number of examples.
      batch_size: ``B``.
      shuffle: shuffle as :func:`epoch_order`, else in order.

    Returns:
      ``idx`` integer row indices and ``mask`` float32 1/0, NumPy arrays.

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


def _take(tree: Any, rows: np.ndarray, name: str) -> Any:
    """Rows of every leaf (consecutive ones as a view; a memmap reads only those), f64 as f32."""
    consecutive = rows.size and rows[-1] - rows[0] == rows.size - 1 and (np.diff(rows) == 1).all()
    index = slice(int(rows[0]), int(rows[-1]) + 1) if consecutive else rows
    return checks.take_rows(name.lstrip(), tree, index, rows)  # memmaps' int64 checked here


class ArraySource:
    """In-memory (or memory-mapped) arrays ``x``, ``y`` and per-example loss weights.

    Args:
      x: a pytree of ``(N, ...)`` arrays (NumPy, memmaps, JAX).
      y: a pytree of ``(N, ...)`` arrays.
      batch_size: ``B``.
      weight: ``(N,)`` or ``(N, T, ...)`` loss weights (sample x class weight), or ones.

    Example:
      >>> src = ArraySource(np.ones((5, 2)), np.zeros(5), batch_size=2)
      >>> src.steps, src.batch(np.array([4, 0]), np.array([1.0, 0.0])).mask.tolist()
      (3, [1.0, 0.0])
    """

    def __init__(
        self, x: Any, y: Any, *, batch_size: int, weight: np.ndarray | None = None, name: str = ""
    ):
        self.x, self.y, self.name = x, y, name  # errors name f"{name} x" (memmap rows)
        checks.check_wide_ints(name, x=x, y=y)  # int64 that JAX would wrap (not memmaps')
        self.n = len(jax.tree.leaves(x)[0])
        self.batch_size = batch_size
        self.weight = np.ones(self.n, np.float32) if weight is None else weight
        self.steps = -(-self.n // batch_size)

    def epoch(self, seed: int, epoch: int, *, shuffle: bool = True):
        """``(idx, mask)`` of the epoch's batches (see :func:`epoch_index`)."""
        return epoch_index(seed, epoch, self.n, self.batch_size, shuffle=shuffle)

    def batch(self, rows: np.ndarray, mask: np.ndarray) -> Batch:
        """The host :class:`Batch` of ``rows`` (only these rows are read)."""
        x, y = _take(self.x, rows, f"{self.name} x"), _take(self.y, rows, f"{self.name} y")
        return Batch(x, y, loss_weights.masked(self.weight[rows], mask), mask.astype(np.float32))

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

    def check_labels(self, out: Any, loss: Any, name: str) -> None:
        """Checks every label against the model's output ``out`` (one example's).

        See :func:`nnjax.train.validation.check_labels`; ``class_weight`` was checked
        against the labels when the source was built.
        """
        checks.check_labels(out, self.y, name, loss)

    def device_arrays(self) -> tuple[Any, Any, np.ndarray]:
        """``(x, y, weight)`` as host arrays for a one-time transfer to the device."""
        every = np.arange(self.n)
        return _take(self.x, every, "x"), _take(self.y, every, "y"), self.weight

    def nbytes(self) -> int:
        """Bytes of ``x`` and ``y``."""
        return sum(int(np.asarray(a).nbytes) for a in jax.tree.leaves((self.x, self.y)))

    def is_memmap(self) -> bool:
        """Whether any leaf is a NumPy memmap (never copied whole)."""
        return any(isinstance(a, np.memmap) for a in jax.tree.leaves((self.x, self.y)))


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
        if not jax.numpy.issubdtype(leaf.dtype, jax.numpy.floating):
            continue
        for start in range(0, len(leaf), chunk):
            rows = np.asarray(leaf[start : start + chunk])
            bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1))
            if bad.size:
                return f"x{jax.tree_util.keystr(path)} (example {start + int(bad[0])})"
    return None


def is_arrays(data: Any, name: str = "data") -> bool:
    """Whether ``data`` is ``(x, y)`` / ``(x, y, sample_weight)`` arrays (a tuple).

    Rather than an iterable of batches (a list, a generator, a loader).

    Raises:
      ValueError: ``data`` (called ``name`` in the message) is one array, a dict, or a
        list of 2 or 3 arrays (a list is an iterable of batches: the message says to
        pass a tuple ``(x, y)``).

    Example:
      >>> is_arrays((np.ones((2, 1)), np.ones(2))), is_arrays([(np.ones((2, 1)), np.ones(2))])
      (True, False)
    """
    pair = "a pair (x, y) or (x, y, sample_weight) of arrays, or an iterable of such batches"
    if isinstance(data, np.ndarray | jax.Array):
        raise ValueError(f"`{name}` must be {pair}; got one array of shape {data.shape}")
    if isinstance(data, Mapping):
        raise ValueError(
            f"`{name}` must be {pair}; got a {type(data).__name__} with keys {list(data)}: "
            "pass the arrays as a tuple (x, y) (x itself may be a dict of arrays)"
        )
    if isinstance(data, list) and len(data) in (2, 3) and all(map(_array_like, data)):
        raise ValueError(
            f"`{name}` is a list of {len(data)} arrays, but a list is read as an iterable of "
            "batches; pass the arrays as a tuple (x, y) or (x, y, sample_weight)"
        )
    return isinstance(data, tuple)


def _array_like(a: Any) -> bool:
    """An array (NumPy, JAX, a DataFrame...) with an example axis, not a batch or pytree."""
    return hasattr(a, "__array__") and len(np.shape(a)) > 0


def array_source(
    name: str,
    data: tuple,
    *,
    batch_size: int,
    class_weight: Mapping[int, float] | None = None,
    check_inputs: bool = True,
    integer_ok: Collection[str] = frozenset(),
) -> ArraySource:
    """Checks ``(x, y[, sample_weight])`` and builds an :class:`ArraySource` of it.

    Raises:
      ValueError, TypeError, ShapeError: see :func:`nnjax.train.validation.host_tree`,
        :func:`~nnjax.train.validation.check_lengths`,
        :func:`~nnjax.train.validation.check_inputs_ok`,
        :func:`~nnjax.train.validation.sample_weights` and
        :func:`nnjax.train.class_weights.class_weights` (not strict: the user's labels
        are checked by :func:`nnjax.train.setup.sources`); an empty data set.

    Example:
      >>> array_source("train", (np.ones((3, 2)), np.zeros(3)), batch_size=8).batch_size
      3
    """
    x, y, sw = split_batch(data, f"`{name}`")
    x, y = checks.host_tree(f"{name} x", x), checks.host_labels(f"{name} y", y)
    n = checks.check_lengths(f"`{name}`", {"x": x, "y": y})
    if n == 0:
        raise ValueError(f"`{name}` is empty: x has shape {checks.describe(x)}")
    checks.check_inputs_ok(f"`{name}`", x, check_inputs=check_inputs, integer_ok=integer_ok)
    weight = checks.sample_weights(f"`{name}`", sw, n, y)
    weight = weights.scaled(weight, y, class_weight, f"`{name}`")
    return ArraySource(x, y, batch_size=min(batch_size, n), weight=weight, name=name)


def split_off(data: tuple, fraction: float) -> tuple[tuple, tuple]:
    """Keras' ``validation_split``: holds out the last ``fraction`` of the arrays.

    The split is taken before any shuffling; training keeps the first
    ``floor(n * (1 - fraction))`` rows, as Keras 3. Returns ``(train, validation)``.

    Raises:
      TypeError: ``fraction`` is not a number.
      ValueError: it is not in ``(0, 1)``, or leaves one side empty.

    Example:
      >>> train, val = split_off((np.arange(10), np.arange(10)), 0.2)
      >>> val[0].tolist()
      [8, 9]
    """
    if isinstance(fraction, bool) or not isinstance(fraction, Real):
        raise TypeError(
            f"validation_split must be a number in (0, 1), got {fraction!r} "
            f"({type(fraction).__name__})"
        )
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must lie in (0, 1), got {fraction}")
    n = len(jax.tree.leaves(data[0])[0])
    cut = math.floor(n * (1.0 - fraction))  # Keras 3's split, row for row
    if cut <= 0 or cut >= n:
        raise ValueError(f"validation_split={fraction} of {n} examples leaves one side empty")
    head = jax.tree.map(lambda a: a[:cut], tuple(data))
    return head, jax.tree.map(lambda a: a[cut:], tuple(data))


def no_steps(name: str, steps: int | None, steps_name: str = "steps_per_epoch") -> None:
    """Array data ``name`` takes no ``steps``: it is always used whole (unlike an iterable).

    Raises:
      ValueError: ``steps`` is not ``None`` (names ``steps_name``, the user's argument).

    Example:
      >>> no_steps("train", None)
    """
    if steps is not None:
        raise ValueError(
            f"`{steps_name}`={steps} limits the batches taken from an iterable, but "
            f"`{name}` is arrays, which are always used whole (every example, each epoch): "
            f"drop `{steps_name}`, or pass fewer examples or an iterable of batches"
        )


def make_source(
    name: str,
    data: Any,
    *,
    batch_size: int,
    steps_per_epoch: int | None = None,
    class_weight: Mapping[int, float] | None = None,
    check_inputs: bool = True,
    integer_ok: Collection[str] = frozenset(),
    steps_name: str = "steps_per_epoch",
) -> ArraySource | IterableSource:
    """An :class:`ArraySource` for a tuple of arrays, else an :class:`IterableSource`.

    Args:
      name: how ``data`` is called in errors.
      data: ``(x, y[, sample_weight])`` arrays or an iterable of such batches.
      batch_size: examples per batch of array data.
      steps_per_epoch: batches per epoch of an iterable (array data takes every
        example each epoch: a count here is an error, as the user's ``steps_name``).
      class_weight: ``{class: weight}`` (:func:`nnjax.train.class_weights.check`).
      check_inputs: reject integer inputs.
      integer_ok: key paths of ``x`` that may be integers (the model's declared
        ``integer_inputs``: :func:`nnjax.train.model_call.integer_input_paths`).
      steps_name: the user's name of ``steps_per_epoch`` (``evaluate``'s ``steps``).

    Raises:
      ValueError: ``data`` is neither arrays nor an iterable (see :func:`is_arrays`),
        ``steps_per_epoch`` with arrays, or bad data (see :func:`array_source`).
      TypeError: a bad ``class_weight``, or integer inputs with ``check_inputs``.

    Example:
      >>> type(make_source("train", [(np.ones((2, 1)), np.ones(2))], batch_size=4)).__name__
      'IterableSource'
    """
    if class_weight is not None:
        class_weight = weights.check(class_weight)
    if is_arrays(data, name):
        no_steps(name, steps_per_epoch, steps_name)
        return array_source(
            name, data, batch_size=batch_size, class_weight=class_weight,
            check_inputs=check_inputs, integer_ok=integer_ok,
        )  # fmt: skip
    if not isinstance(data, Iterable):
        raise ValueError(
            f"`{name}` must be a pair (x, y) or (x, y, sample_weight) of arrays, or an "
            f"iterable of such batches; got {type(data).__name__}"
        )
    return IterableSource(
        data, steps_per_epoch=steps_per_epoch, class_weight=class_weight,
        check_inputs=check_inputs, integer_ok=integer_ok, name=name,
    )  # fmt: skip


__all__ = [
    "ArraySource",
    "Batch",
    "IterableSource",
    "array_source",
    "epoch_index",
    "epoch_order",
    "is_arrays",
    "make_source",
    "no_steps",
    "nonfinite_input",
    "split_batch",
    "split_off",
]
