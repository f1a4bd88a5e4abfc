"""Prediction over whole, padded and masked batches, and the sources it shares with evaluate.

``predict(model, x)`` computes ``model(x)`` in inference mode in jitted batches, fed as
:func:`~nnjax.train.evaluate.evaluate` feeds its batches
(:func:`~nnjax.train.eval_blocks.host_feeder`); padded rows are masked out of the
returned outputs. :func:`divisible` rounds a source's batch size to the mesh, for both.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nnjax.train import (
    abstract_output,
    eval_blocks,
    host_memory,
    model_call,
    sharding,
    size_buckets,
    step,
    validation,
)
from nnjax.train.data import ArraySource, IterableSource, no_steps
from nnjax.train.precision import canonical_precision
from nnjax.train.progress import Verbose, resolve_verbose, say


def divisible(source: Any, mesh_size: int) -> Any:
    """``source`` with its batch size rounded up to a multiple of ``mesh_size``.

    An array source gets a larger batch size, an iterable's batches are padded
    (:meth:`IterableSource.round_batch`). Padded rows are masked, so results do not
    change.

    Example:
      >>> divisible(ArraySource(np.ones((6, 2)), np.ones(6), batch_size=6), 4).batch_size
      8
    """
    if isinstance(source, IterableSource):
        return source.round_batch(mesh_size)
    if isinstance(source, ArraySource) and source.batch_size % mesh_size:
        size = -(-source.batch_size // mesh_size) * mesh_size
        source = ArraySource(
            source.x, source.y, batch_size=size, weight=source.weight, name=source.name
        )
    return source


def rounding_size(devices: Sequence[jax.Device] | None) -> int:
    """What batch sizes are rounded up to: the given devices, or all of a multi-process run."""
    if devices:
        return len(devices)
    return jax.device_count() if jax.process_count() > 1 else 1


def inference_setup(
    model: nnx.Module, batch_size: int, devices: Sequence[jax.Device] | None
) -> tuple[Mesh, nnx.GraphDef, Any, Any]:
    """``(mesh, graphdef, params, rest)``: a mesh for ``batch_size``; the model, inference mode."""
    mesh = sharding.make_mesh(sharding.choose_devices(batch_size, devices))
    graphdef, params, rest = step.split_model(model, training=False)
    return mesh, graphdef, params, rest


def _predict_items(data: Iterable, tuples: list[bool]) -> Iterator[tuple[Any, np.ndarray]]:
    """``(x, dummy labels)`` from batches ``x`` or ``(x, ...)`` (the rest ignored).

    ``tuples`` gets whether the first batch was a tuple (its ``x`` taken from it).
    """
    for i, item in enumerate(data):
        if i == 0:
            tuples.append(isinstance(item, tuple | list))
        x = item[0] if isinstance(item, tuple | list) else item
        leaves = jax.tree.leaves(x)
        if not leaves or not np.ndim(leaves[0]):
            raise ValueError(
                f"predict: batch {i} of `x` is {type(x).__name__} {x!r:.60}; every batch must "
                "be an array, a dict of arrays, or a tuple (x, ...) (for one array of "
                "examples, pass np.asarray(x))"
            )
        yield x, np.zeros(len(leaves[0]), np.float32)


def _is_inputs(x: Any) -> bool:
    """Whether ``predict``'s ``x`` is the inputs (arrays), not an iterable of batches."""
    first = x
    while isinstance(first, list) and first:
        first = first[0]
    numbers = isinstance(x, list) and isinstance(first, int | float | complex)
    return isinstance(x, dict | tuple) or hasattr(x, "__array__") or numbers


def _not_xy(model: nnx.Module, x: Any) -> None:
    """A tuple ``x`` must not have more inputs than the model takes (an ``(x, y)`` pair)."""
    try:
        params = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return
    takes = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(x) <= takes:
        return
    raise TypeError(
        f"predict takes the inputs x only: got a tuple of {len(x)} arrays "
        f"{validation.describe(x)} ((x, y)?), but {type(model).__name__} takes {takes} "
        f"positional input{'s' if takes != 1 else ''}; pass predict(model, x)"
    )


def _predict_source(
    model: nnx.Module, x: Any, batch_size: int, steps: int | None, check_inputs: bool
) -> tuple[Any, bool]:
    """The source of ``x``, and whether it is an iterable of tuple batches ``(x, ...)``."""
    integer_ok = model_call.integer_input_paths(model)
    if _is_inputs(x):
        no_steps("x", steps, "steps")
        x = validation.host_tree("x", x)
        n = validation.check_lengths("predict: `x`", {"x": x})
        if n == 0:
            raise ValueError(f"predict: `x` is empty: it has shape {validation.describe(x)}")
        if isinstance(x, tuple):
            _not_xy(model, x)
        validation.check_inputs_ok("predict", x, check_inputs=check_inputs, integer_ok=integer_ok)
        return ArraySource(
            x, np.zeros(n, np.float32), batch_size=min(batch_size, size_buckets.bucket(n))
        ), False
    if not isinstance(x, Iterable):
        raise TypeError(
            f"predict: `x` must be an array, a pytree of (N, ...) arrays, or an iterable of "
            f"batches x or (x, ...); got {type(x).__name__}"
        )
    tuples: list[bool] = []
    source = IterableSource(
        _predict_items(x, tuples), steps_per_epoch=steps, check_inputs=check_inputs,
        integer_ok=integer_ok,
    )  # fmt: skip
    return source, tuples == [True]  # the first batch is read on construction


@sharding.own_mesh
@host_memory.retaining
def predict(
    model: nnx.Module,
    x: Any,
    *,
    batch_size: int = 128,
    steps: int | None = None,
    precision: Any = None,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
    verbose: Verbose = 0,
) -> Any:
    """``model(x)`` in inference mode, computed in jitted batches; NumPy outputs ``(N, ...)``.

    Args:
      model: a Flax NNX model.
      x: an array or any pytree of ``(N, ...)`` arrays (a dict, or a tuple for
        multi-input models); or an iterable of batches, each ``x`` (an array or dict)
        or a tuple ``(x, ...)`` whose first element is the input (labels and weights
        are ignored, so a ``fit``/``evaluate`` iterable works as it is). The batches
        of an iterable keep their size; a shorter last one is padded and masked.
      batch_size: examples per compiled call, for arrays (fewer examples: rounded up to
        three significant bits, :func:`nnjax.train.size_buckets.bucket`, padded and
        masked, so calls on many sizes share a few programs).
      steps: batches to take from an endless iterable (not for arrays).
      precision: as ``fit``'s and ``evaluate``'s: ``"bfloat16"`` computes as a
        ``fit(precision="bfloat16")`` step does (on GPUs and TPUs the model in bfloat16,
        its outputs returned as float32; on a CPU with native bfloat16 the float32
        model with bfloat16 matmul operands; elsewhere float32, with a warning),
        ``"float16"`` in float16; ``None`` or ``"float32"``: the model's own dtype.
      devices: devices to shard the batches over.
      check_inputs: reject integer ``x`` other than the inputs the model declares in
        ``integer_inputs``, and inputs that hold NaN or inf (as ``fit`` and
        ``evaluate``); ``False`` turns both checks off (NaN inputs then give NaN
        outputs).
      verbose: ``0`` (the default: silent, unlike Keras, whose ``predict`` shows a
        bar) or, as ``fit`` takes it, ``"auto"``, ``1`` or ``2``: one line at the
        end, ``"predict: N examples in B batches - T s"`` (there is no bar; only
        process 0 of a multi-process run prints).

    Returns:
      The outputs for every example, in order, as NumPy (with several processes, on
      every process: the rows of every process's batches).

    Raises:
      ShapeError: inputs the model cannot take, or arrays of different lengths.
      ValueError: an empty ``x``, a nested Python list (pass ``np.asarray(x)``), a
        batch of an iterable that holds no arrays, or ``steps`` with arrays; a
        ``verbose`` other than ``"auto"``, 0, 1 or 2 (``fit``'s message), an unknown
        ``precision``.
      ValueError: NaN or inf inputs with ``check_inputs`` (names the first example).
      TypeError: ``x`` of another kind, integer inputs with ``check_inputs``, or a
        tuple ``(x, y)`` for a model that takes one input (``predict`` takes ``x``).

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> predict(model, np.ones((5, 2)), batch_size=2).shape
      (5, 3)
      >>> predict(model, [(np.ones((4, 2)), None), (np.ones((1, 2)), None)]).shape
      (5, 3)
      >>> predict(model, np.ones((5, 2)), batch_size=2, verbose=2).shape
      predict: 5 examples in 3 batches - ...s
      (5, 3)
    """
    validation.check_flags("predict", check_inputs=check_inputs)
    batch_size = validation.check_count("batch_size", batch_size, 1)
    steps = None if steps is None else validation.check_count("steps", steps, 1)
    verbose = resolve_verbose(verbose)  # fit's check; 0 off process 0
    precision = canonical_precision(precision)
    start = time.perf_counter()
    source, tuples = _predict_source(model, x, batch_size, steps, check_inputs)
    whole = source.x if isinstance(source, ArraySource) else None  # the user's, unpadded
    source = divisible(source, rounding_size(devices))  # padded rows: masked copies
    mesh, graphdef, params, rest = inference_setup(model, source.batch_size, devices)
    example = source.example().x
    abstract_output.output_shape(
        model, graphdef, params, rest, example, name="x", whole=whole,
        tuple_batch="predict" if tuples else None,
    )  # fmt: skip
    params, rest = sharding.put_replicated((params, rest), mesh, copy=False)  # no donation
    feeder = eval_blocks.host_feeder(source, mesh)
    fn = eval_blocks.compiled_predict_blocks(graphdef, feeder.k, mesh, feeder.gather, precision)
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        host = eval_blocks.block_outputs(fn, params, rest, feeder)
    out = jax.tree.map(
        lambda *parts: np.concatenate(parts),
        *[jax.tree.map(lambda a, m=mask: _real_rows(a, m), out) for out, mask in host],
    )
    if verbose:
        examples = sum(int(np.sum(np.asarray(mask) > 0)) for _, mask in host)
        batches = sum(len(mask) for _, mask in host)
        took = time.perf_counter() - start
        counts = (
            f"{examples} example{'s' * (examples != 1)} in {batches} batch{'es' * (batches != 1)}"
        )
        say(f"predict: {counts} - {took:.1f}s", 2)
    return out


def _real_rows(out: Any, mask: np.ndarray) -> np.ndarray:
    """A dispatch's outputs ``(n, B, ...)`` as ``(rows, ...)``: the rows whose mask is set."""
    out = np.asarray(out)
    return out.reshape(-1, *out.shape[2:])[np.asarray(mask).reshape(-1) > 0]


__all__ = ["divisible", "inference_setup", "predict", "rounding_size"]
