"""Batches from any iterable of ``(x, y[, sample_weight])``: a list, a generator, a loader.

Each batch is checked as it is read (structure, per-example shapes and dtypes against
the first batch: :func:`host_batch`) and padded to the first
batch's size; once the model's output is known (:meth:`IterableSource.check_labels`),
its labels are checked too. The checks run on the host, in the thread that reads the
batches ahead of the step (:class:`nnjax.train.feeder.Prefetcher`).

Example:
  >>> batches = [(np.ones((4, 2), np.float32), np.array([0, 1, 2, 0]))] * 2
  >>> src = IterableSource(batches)
  >>> src.check_labels(jax.ShapeDtypeStruct((1, 3), np.float32), "cross_entropy", "train")
  >>> [b.y.tolist() for b in src.batches(0, 0)]
  [[0, 1, 2, 0], [0, 1, 2, 0]]
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from nnjax._deprecation import user_stacklevel
from nnjax.errors import ShapeError
from nnjax.train import class_weights as weights
from nnjax.train import loss_weights
from nnjax.train import validation as checks
from nnjax.train.one_reader import one_at_a_time

if TYPE_CHECKING:
    from nnjax.train.data import Batch


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


def path_name(path: str) -> str:
    """A key path of ``{"x": ..., "y": ...}`` as the user writes it, rooted at ``x`` / ``y``.

    Example:
      >>> [path_name(p) for p in ("['x']", "['x'][0]", "['x']['ids']", "['y'][0]['a']")]
      ['x', 'x[0]', "x['ids']", "y[0]['a']"]
    """
    root = re.match(r"\['([^'\]]*)'\]", path)
    return root.group(1) + path[root.end() :] if root else path


def _spec_error(
    where: str, path: str, got: Any, want: Any, what: str, kind: type[ValueError] = ValueError
) -> ValueError:
    return kind(
        f"{where}: {path} has {what} {got}, but the first batch had {want}; every batch needs "
        "the same structure, per-example shapes and dtypes"
    )


def host_batch(
    i: int | str,
    x: Any,
    y: Any,
    sw: Any,
    spec: Any | None,
    *,
    check_inputs: bool = True,
    integer_ok: Collection[str] = frozenset(),
) -> Any:
    """Batch ``i`` of an iterable as a host ``Batch``, padded to ``spec``'s size.

    It is checked against ``spec`` (the first batch's structure, per-example shapes,
    dtypes), with messages naming the batch: ``"batch {i}"``, or ``i`` itself when it is
    a ``str`` (``"batch 3 of epoch 2"``).

    Raises:
      ShapeError: per-example shapes that differ from ``spec``'s, lengths that differ
        within the batch, or more examples than ``spec``.
      ValueError: an empty batch, other keys or dtypes than ``spec``'s, NaN inputs or bad
        sample weights.
      TypeError: integer inputs with ``check_inputs`` (other than ``integer_ok``'s).

    Example:
      >>> b = host_batch(0, np.ones((3, 2)), np.zeros(3), None, None)
      >>> b.mask.tolist()
      [1.0, 1.0, 1.0]
    """
    from nnjax.train.data import Batch

    where = i if isinstance(i, str) else f"batch {i}"
    x, y = checks.host_tree(f"{where} x", x), checks.host_labels(f"{where} y", y)
    x, y = _as_jax_sees(f"{where} x", x), _as_jax_sees(f"{where} y", y)
    n = checks.check_lengths(where, {"x": x, "y": y})
    if n == 0:
        raise ValueError(
            f"{where} has no examples; every batch needs at least one (with several "
            "processes, every process's block of every batch)"
        )
    w = checks.sample_weights(where, sw, n, y)
    w = _weights_like_first(where, w, None if spec is None else spec.weight)
    checks.check_inputs_ok(where, x, check_inputs=check_inputs, integer_ok=integer_ok)
    size = n if spec is None else spec.mask.shape[0]
    if spec is not None:
        got = checks.leaf_paths({"x": x, "y": y})
        want = checks.leaf_paths({"x": spec.x, "y": spec.y})
        if [p for p, _ in got] != [p for p, _ in want]:
            raise _spec_error(where, "the batch", [p for p, _ in got], [p for p, _ in want], "keys")
        for (path, a), (_, b) in zip(got, want):
            if a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
                kind = ShapeError if a.shape[1:] != b.shape[1:] else ValueError  # or a dtype
                had = f"{b.shape} {b.dtype.name}"
                raise _spec_error(
                    where, path_name(path), f"{a.shape} {a.dtype.name}", had, "shape", kind
                )
        if n > size:
            raise ShapeError(f"{where} has {n} examples, more than the first batch's {size}")
    return padded(Batch(x, y, w, np.ones(n, np.float32)), size)


def _weights_like_first(where: str, w: np.ndarray, first: Any) -> np.ndarray:
    """``w`` with the first batch's kind of weights: one per example or one per position.

    Weights per example after a first batch weighing positions (its own ``sample_weight``
    or class weights per token) weigh every position of their example alike.
    """
    if first is None or w.shape[1:] == first.shape[1:]:
        return w
    if w.ndim == 1:
        return loss_weights.product(np.ones((len(w), *first.shape[1:]), np.float32), w)
    raise _spec_error(where, "sample_weight", w.shape, first.shape, "shape", ShapeError)


def _as_jax_sees(name: str, tree: Any) -> Any:
    """Every leaf in the dtype JAX gives it: 64-bit numbers as 32-bit ones, without x64.

    So batches of int64 and int32 labels (or float64 and float32 inputs, memmaps too)
    compare equal, as they are equal on the device; values beyond 32 bits raise.
    """

    def narrow(path: Any, a: np.ndarray) -> np.ndarray:
        leaf = f"{name}{jax.tree_util.keystr(path)}"
        return checks.narrow_float64(leaf, checks.narrow_int64(leaf, a))

    return None if tree is None else jax.tree_util.tree_map_with_path(narrow, tree)


def padded(batch: Any, size: int) -> Any:
    """``batch`` of ``n`` real rows filled up to ``size`` with copies of them, masked out.

    A full batch (``size == n``) is returned uncopied.

    Example:
      >>> from nnjax.train.data import Batch
      >>> b = padded(Batch(np.ones((2, 1)), np.zeros(2), np.ones(2), np.ones(2)), 4)
      >>> b.mask.tolist(), b.weight.tolist()
      ([1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0])
    """
    n = int(batch.mask.sum())
    if n == size:  # a full batch, uncopied: the feeder copies it before reading the next
        return batch
    mask = (np.arange(size) < n).astype(np.float32)
    rows = np.resize(np.arange(n), size)
    take = lambda t: jax.tree.map(lambda a: a[rows], t)
    weight = loss_weights.masked(batch.weight[rows], mask)
    return type(batch)(take(batch.x), take(batch.y), weight, mask)


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
      class_weight: ``{class: weight}`` for class labels (see
        :mod:`nnjax.train.class_weights`).
      check_inputs: reject integer ``x`` leaves and NaN inputs.
      integer_ok: key paths of ``x`` that may be integers (the model's declared
        ``integer_inputs``).
      name: how the data is called in errors (``"data"``, ``"validation"``: then the
        user's ``validation_data``; ``"data"``).

    Every batch is checked as it is read (:func:`host_batch`);
    after :meth:`check_labels`, its labels too.

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
        integer_ok: Collection[str] = frozenset(),
        name: str = "data",
    ):
        self.data, self.steps_per_epoch, self.name = data, steps_per_epoch, name
        self.class_weight, self.check_inputs = class_weight, check_inputs
        self.integer_ok = frozenset(integer_ok)
        self._iterator: Iterator | None = None
        self._labels: tuple | None = None  # (out, loss, name) once check_labels ran
        items = iter(data)
        one_shot = items is data
        if one_shot:  # it may still be read by a stopped run's thread: wait for that
            items = one_at_a_time(items)
        first = next(items, None)
        if one_shot:  # keep the batch just read
            self.data = itertools.chain([first], items)
        # a copy: a full batch is passed on uncopied (the feeder copies it into its
        # block before reading the next), and an iterable may refill one buffer
        self._first = jax.tree.map(np.array, self._prepare(first, "batch 0", None))
        self.local_batch_size = self._first.mask.shape[0]
        self.batch_size = self.local_batch_size * jax.process_count()
        self.steps = steps_per_epoch if steps_per_epoch else _length(data)
        self._epochs_run = 0

    def _prepare(self, item: Any, where: str, spec: Batch | None) -> Batch:
        if item is None and spec is None:
            raise ValueError(f"the {self._argument} iterable yielded no batches")
        x, y, sw = split_batch(item, where)
        host = host_batch(
            where, x, y, sw, spec, check_inputs=self.check_inputs, integer_ok=self.integer_ok
        )
        if self._labels is not None:  # the real rows' labels (padding repeats them)
            out, loss, name = self._labels
            y = host.y[: int(host.mask.sum())] if isinstance(host.y, np.ndarray) else host.y
            checks.check_labels(out, y, f"{name} {where}", loss)
        return weights.weighted(host, self.class_weight, where)

    @property
    def _argument(self) -> str:
        """The user's name for this data (fit's ``validation_data``, else ``data``)."""
        return "validation_data" if self.name == "validation" else "data"

    def warn_if_resumed(self, epoch: int) -> None:
        """Warns that a run resumed at ``epoch`` reads this stream from its beginning.

        With ``steps_per_epoch`` one iterator streams across the epochs; the run that
        was interrupted had read ``epoch * steps_per_epoch`` batches of it, which the
        resumed run's new iterable does not skip (reading them could cost as much as the
        training), so its data order differs from the uninterrupted run's.
        """
        if epoch and self.steps_per_epoch:
            warnings.warn(
                f"fit resumes at epoch {epoch + 1}, but `{self._argument}` (an iterable "
                f"read {self.steps_per_epoch} batches an epoch) starts again from its first "
                f"batch, where the interrupted run had read {epoch * self.steps_per_epoch}: "
                "unless it skips them itself, the batches differ from the uninterrupted "
                "run's (arrays resume exactly)",
                stacklevel=user_stacklevel(),
            )

    def example(self) -> Batch:
        """The first batch."""
        return self._first

    def round_batch(self, multiple: int) -> IterableSource:
        """Pads every batch to a multiple of ``multiple`` rows (``self``, changed).

        The padded rows are masked copies, so results are unchanged; it lets batches
        whose size the devices do not divide run on them (validation data on ``fit``'s
        mesh). ``multiple`` counts the devices of every process.
        """
        local = max(1, multiple // jax.process_count())
        size = -(-self.local_batch_size // local) * local
        if size != self.local_batch_size:
            self._first = padded(self._first, size)
            self.local_batch_size, self.batch_size = size, size * jax.process_count()
        return self

    def check_labels(self, out: Any, loss: Any, name: str) -> None:
        """Checks the labels against the model's output ``out``, and every later batch's.

        The first batch's labels and ``class_weight``'s classes are checked now, every
        later batch's labels as it is read (on the host, in the thread that reads the
        batches). A bad batch then stops ``fit`` or ``evaluate`` with this error rather
        than a NaN loss; the model keeps the weights it had before ``fit``.

        Raises:
          ValueError: a label out of range (:func:`nnjax.train.validation.check_labels`),
            or a class of ``class_weight`` that the model lacks.
        """
        checks.check_labels(out, self._first.y, f"{name} batch 0", loss)
        weights.check_classes(self.class_weight, out, name)
        self._labels = (out, loss, name)

    def check_epochs(self, epochs: int) -> None:
        """Raises unless the data can be read ``epochs`` times (before anything trains).

        ``fit`` reads its data (and its validation data) once an epoch; a sweep, once an
        epoch of each group of members.

        Raises:
          ValueError: a one-shot iterator (a generator) for more than one epoch without
            ``steps_per_epoch``: it is exhausted after the first.
        """
        if epochs > 1 and not self.steps_per_epoch and isinstance(self.data, Iterator):
            raise ValueError(
                f"`{self._argument}` is an iterator, exhausted after one pass, but the run "
                f"reads it {epochs} times (an epoch each); {self._remedy()}"
            )

    def _remedy(self) -> str:
        again = "a re-iterable (a list, a DataLoader)"
        if self.name == "validation":  # validated every epoch; no steps_per_epoch of its own
            return f"pass {again} or arrays"
        return f"pass steps_per_epoch (with an endless generator) or {again}"

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
                    f"`{self._argument}` is an iterator, exhausted after one pass, and is "
                    f"read again; {self._remedy()}"
                )
        self._epochs_run += 1
        count = 0
        for count, item in enumerate(items, 1):  # epochs counted from 1, as the progress bar
            where = f"batch {count - 1}" + (f" of epoch {epoch + 1}" if epoch else "")
            yield self._prepare(item, where, self._first)
        if self.steps_per_epoch and count < self.steps_per_epoch:
            raise ValueError(
                f"`{self._argument}` ended after {count} batches in epoch {epoch + 1}, but "
                f"steps_per_epoch={self.steps_per_epoch}; make the iterable endless "
                "(e.g. itertools.cycle) or lower steps_per_epoch"
            )


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


__all__ = ["IterableSource", "host_batch", "padded", "path_name", "split_batch"]
