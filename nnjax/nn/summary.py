"""A Keras-like table of a model's layers, output shapes and parameter counts."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax.nn import _shapes
from nnjax.nn._model_call import call_model


def count_params(module: nnx.Module) -> int:
    """The number of scalars in every ``nnx.Param`` of ``module`` and its submodules.

    Args:
      module: any Flax NNX module.

    Returns:
      The total size of its trainable parameters (batch statistics and RNG state are
      not counted).

    Example:
      >>> from nnjax.nn import MLP
      >>> count_params(MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0)))
      573910
    """
    return sum(math.prod(jnp.shape(p)) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


@contextlib.contextmanager
def _recording(classes: set[type], outputs: dict[int, object]) -> Iterator[None]:
    """Temporarily wraps ``__call__`` of ``classes`` to store each module's output by id."""
    originals = {cls: cls.__dict__.get("__call__") for cls in classes}

    def wrap(call):
        @functools.wraps(call)
        def recorded(self, *args, **kwargs):
            out = call(self, *args, **kwargs)
            outputs.setdefault(id(self), out)
            return out

        return recorded

    try:
        for cls in classes:
            # Patched on the class for this context only; restored below.
            cls.__call__ = wrap(cls.__call__)  # type: ignore[method-assign]
        yield
    finally:
        for cls, original in originals.items():
            if original is None:
                del cls.__call__
            else:
                cls.__call__ = original  # type: ignore[method-assign]


def _shape_str(out: object) -> str:
    shapes = [tuple(leaf.shape) for leaf in jax.tree.leaves(out) if hasattr(leaf, "shape")]
    return ", ".join(str(s) for s in shapes) if shapes else "-"


def layer_rows(model: nnx.Module, x: Any) -> tuple[list[tuple[str, str, str, int]], Any]:
    """Rows ``(path, type, output shape, params)`` per innermost module called, and the output.

    The rows follow the order in which ``model(x)`` calls its leaf modules. Shapes come
    from one abstract call (``jax.eval_shape`` on a merged copy), so nothing is computed
    and the model's state is left untouched.
    """
    outputs: dict[int, object] = {}
    rows: list[tuple[str, str, str, int]] = []

    def trace(m: nnx.Module, x: Any):
        modules = list(nnx.iter_modules(m))
        with _recording({type(sub) for _, sub in modules}, outputs):
            y = call_model(m, x)
        # A row per called module none of whose submodules was called: plain layers,
        # and layers that hold their parameters in submodules but call one functional
        # op on them (MultiHeadAttention, TransformerEncoderBlock, Bidirectional).
        called = [path for path, sub in modules if id(sub) in outputs]
        parents = {path[:i] for path in called for i in range(len(path))}
        leaves = {id(sub): (path, sub) for path, sub in modules if path not in parents}
        for ident, out in outputs.items():  # in call order
            if ident in leaves:
                path, sub = leaves[ident]
                name = "/".join(str(p) for p in path) or "(model)"
                rows.append((name, type(sub).__name__, _shape_str(out), count_params(sub)))
        return y

    out = _shapes.eval_module(model, trace, x)
    return rows, out


def input_spec(input_shape: Any, dtype: jnp.dtype | None = None) -> Any:
    """The abstract input of :func:`summary`: a shape, or an example array's shape and dtype.

    ``dtype`` (``None``: the example's dtype, or float32 for a shape) overrides.
    Several example inputs (a tuple of arrays, positional, or a dict, by keyword, as
    :func:`nnjax.train.predict` takes them) give the same structure of specs.

    Raises:
      TypeError: neither a shape (a sequence of ints) nor an array-like with a shape,
        or a bare int (the batch axis belongs in the shape); a tuple or dict of example
        inputs holding something other than arrays.
      ValueError: a negative size.

    Example:
      >>> input_spec((2, 3))
      ShapeDtypeStruct(shape=(2, 3), dtype=float32)
      >>> input_spec(jnp.zeros((4, 5), jnp.bfloat16))
      ShapeDtypeStruct(shape=(4, 5), dtype=bfloat16)
    """
    if hasattr(input_shape, "shape") and hasattr(input_shape, "dtype"):
        return jax.ShapeDtypeStruct(tuple(input_shape.shape), dtype or input_shape.dtype)
    if isinstance(input_shape, dict) or (
        isinstance(input_shape, tuple | list) and any(hasattr(a, "shape") for a in input_shape)
    ):  # several example inputs: positional (a tuple) or keyword (a dict), as predict's
        leaves = jax.tree.leaves(input_shape)
        if not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in leaves):
            raise TypeError(
                "summary: example inputs in a tuple or dict must all be arrays, got "
                f"{[type(a).__name__ for a in leaves]}"
            )
        return jax.tree.map(
            lambda a: input_spec(a, dtype),
            tuple(input_shape) if isinstance(input_shape, list) else input_shape,
        )
    if isinstance(input_shape, numbers.Integral):
        raise TypeError(
            f"summary: `input_shape` is the full input shape, batch axis included, e.g. "
            f"(1, {input_shape}); got the int {input_shape}"
        )
    sizes = list(input_shape) if isinstance(input_shape, Sequence) else None
    if (
        sizes is None
        or isinstance(input_shape, str)
        or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in sizes)
    ):
        raise TypeError(
            "summary: `input_shape` must be a shape such as (1, 28, 28) or an example "
            f"array, got {input_shape!r} ({type(input_shape).__name__})"
        )
    if any(d < 0 for d in sizes):
        raise ValueError(f"summary: `input_shape` has a negative size: {tuple(sizes)}")
    return jax.ShapeDtypeStruct(tuple(int(d) for d in sizes), dtype or jnp.float32)


def summary(
    model: nnx.Module,
    input_shape: Any,
    *,
    dtype: jnp.dtype | None = None,
    print_fn: Callable[[str], object] | None = print,
) -> str:
    """Prints and returns a table of the layers that ``model(x)`` calls.

    Args:
      model: any NNX module taking one array.
      input_shape: the full input shape, batch axis included, e.g. ``(1, 28, 28)``; or
        an example input (an array or ``jax.ShapeDtypeStruct``, as ``nnx.tabulate``
        takes), whose shape and dtype are used (nothing is computed on it); or several,
        a tuple of them (positional inputs) or a dict (keyword inputs).
      dtype: the input dtype; ``None``: the example's, or float32 for a shape.
      print_fn: where to print the table (``None``: do not print).

    Returns:
      The table: one row per leaf layer (path, type, output shape, parameter count),
      then the model's output shape and total parameter count.

    Raises:
      TypeError, ValueError: ``input_shape`` is neither a shape nor an array
        (:func:`input_spec`); the model's own errors for an input it cannot take.

    Example:
      >>> from nnjax.nn import MLP
      >>> model = MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0))
      >>> text = summary(model, (1, 784), print_fn=None)
      >>> text.splitlines()[-1]
      'Total params: 573,910'
    """
    rows, out = layer_rows(model, input_spec(input_shape, dtype))
    header = ("Layer (path)", "Type", "Output shape", "Params")
    cells = [header, *((p, t, s, f"{n:,}") for p, t, s, n in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    fmt = lambda row: "  ".join(
        c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    rule = "=" * len(fmt(header))
    lines = [
        f'Model: "{type(model).__name__}"',
        rule,
        fmt(header),
        rule,
        *(fmt(row) for row in cells[1:]),
        rule,
        f"Output shape: {_shape_str(out)}",
        f"Total params: {count_params(model):,}",
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
