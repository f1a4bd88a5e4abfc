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

from nnjax.nn import _config, _shapes, _validate
from nnjax.nn._model_call import call_model
from nnjax.nn.sequential import Sequential

_FIXED_BY: dict[str, tuple[str, ...]] = {
    "Dense": ("in_features",),
    "MLP": ("in_features",),
    "Autoencoder": ("in_features",),
    "WideAndDeep": ("in_features", "deep_features"),
    "CNN": ("input_shape",),
    "ConvAutoencoder": ("input_shape",),
}
"""Class -> the constructor arguments that fix its inputs, one per positional input.

An int is the feature count of a ``(B, n)`` input, a sequence the shape of one example,
``None`` (or absent) an input the model then does not take (``WideAndDeep`` without
``deep_features``). Only these exact classes: a subclass may call itself differently.
Layers over any length (recurrent, attention, convolutions, token ids) are left out.
"""


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


def inferred_input(model: nnx.Module, dtype: jnp.dtype | None = None) -> tuple[Any | None, str]:
    """The input that ``model``'s recorded constructor arguments fix, with batch size 1.

    Reads the call that built the model (``nnjax/nn/_config.py``) for the models and
    layers of :data:`_FIXED_BY` (``MLP(in_features, ...)``: ``(1, in_features)``;
    ``CNN(input_shape, ...)``: ``(1, *input_shape)``), and for a :class:`Sequential`,
    its first layer.

    Returns:
      ``(spec, origin)``: the abstract input (a ``jax.ShapeDtypeStruct``, or a tuple of
      them for several inputs; ``dtype``, float32 by default) and the call it comes
      from, e.g. ``"MLP(in_features=4)"``; or ``(None, why)``, why the arguments do not
      fix it (a sequence model over any length, a layer of any rank, a module of your
      own, a call that could not be recorded).

    Example:
      >>> from nnjax.nn import MLP, LSTM
      >>> inferred_input(MLP(4, (8,), 2, rngs=nnx.Rngs(0)))
      (ShapeDtypeStruct(shape=(1, 4), dtype=float32), 'MLP(in_features=4)')
      >>> inferred_input(LSTM(4, 8, rngs=nnx.Rngs(0)))
      (None, 'the constructor arguments of LSTM do not fix its input')
    """
    return _fixed_input(model, type(model).__name__, dtype)


def _fixed_input(module: nnx.Module, label: str, dtype: jnp.dtype | None) -> tuple[Any, str]:
    """:func:`inferred_input` of ``module``, named ``label`` in the reasons."""
    if type(module) is Sequential:
        if not len(module.layers):
            return None, f"{label} has no layers"
        first = module.layers[0]
        if not isinstance(first, nnx.Module):
            shown = getattr(first, "__name__", type(first).__name__)
            return None, f"{label}'s first layer {shown} is not a module whose arguments fix it"
        inner = f"{label}'s first layer {type(first).__name__}"
        spec, origin = _fixed_input(first, inner, dtype)
        return spec, (f"Sequential's first layer {origin}" if spec is not None else origin)
    name = type(module).__name__
    keys = _FIXED_BY.get(_config.class_name(type(module)), ())
    if not keys:
        return None, f"the constructor arguments of {label} do not fix its input"
    try:
        kwargs = _config.module_call(module)["kwargs"]
    except TypeError:  # an argument without a JSON form (a lambda): no call recorded
        return None, f"the constructor call of {label} was not recorded (e.g. a lambda argument)"
    given = {k: kwargs[k] for k in keys if kwargs.get(k) is not None}
    if not given or not all(isinstance(v, int | list) for v in given.values()):
        return None, f"the constructor arguments of {label} do not fix its input"
    shapes = [(1, v) if isinstance(v, int) else (1, *v) for v in given.values()]
    specs = [jax.ShapeDtypeStruct(tuple(s), dtype or jnp.float32) for s in shapes]
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in given.items())
    return (specs[0] if len(specs) == 1 else tuple(specs)), f"{name}({args})"


def module_rows(model: nnx.Module) -> list[tuple[str, str, int]]:
    """Rows ``(path, type, params)`` per innermost layer of ``model``, without calling it.

    The layers are the modules none of whose submodules is a layer (``nnx.List`` and
    ``nnx.Dict`` hold layers or parameters and are not layers), in path order.
    """
    modules = [
        (path, sub)
        for path, sub in nnx.iter_modules(model)
        if not isinstance(sub, nnx.List | nnx.Dict)
    ]
    parents = {path[:i] for path, _ in modules for i in range(len(path))}
    return [
        ("/".join(str(p) for p in path) or "(model)", type(sub).__name__, count_params(sub))
        for path, sub in modules
        if path not in parents
    ]


def _table(model: nnx.Module, header: tuple[str, ...], rows: list, footer: list[str]) -> str:
    """The text table: the header, one line per row (the last column, params, right-aligned)."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    last = len(header) - 1
    fmt = lambda row: "  ".join(
        c.ljust(w) if i < last else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    rule = "=" * len(fmt(header))
    lines = [f'Model: "{type(model).__name__}"', rule, fmt(header), rule]
    lines += [fmt(row) for row in rows]
    return "\n".join([*lines, rule, *footer, f"Total params: {count_params(model):,}"])


def summary(
    model: nnx.Module,
    input_shape: Any = None,
    *,
    dtype: jnp.dtype | None = None,
    print_fn: Callable[[str], object] | None = print,
) -> str:
    """Prints and returns a table of the layers that ``model(x)`` calls.

    Args:
      model: any NNX module taking one array (or several, see ``input_shape``).
      input_shape: the full input shape, batch axis included, e.g. ``(1, 28, 28)``; or
        an example input (an array or ``jax.ShapeDtypeStruct``, as ``nnx.tabulate``
        takes), whose shape and dtype are used (nothing is computed on it); or several,
        a tuple of them (positional inputs) or a dict (keyword inputs). ``None`` (the
        default): the input with batch size 1 that the model's constructor arguments
        fix (:func:`inferred_input`: ``MLP``, ``Autoencoder``, ``WideAndDeep``,
        ``CNN``, ``ConvAutoencoder``, ``Dense``, and a ``Sequential`` whose first
        layer is one of them), shown under the table. Where they do not fix it (a
        sequence model or attention over any length, a ``Sequential`` starting with
        ``Flatten``, a module of your own), the table lists the layers and their
        parameter counts without output shapes, and says so under the table.
      dtype: the input dtype; ``None``: the example's, or float32 for a shape.
      print_fn: where to print the table (``None``: do not print).

    Returns:
      The table: one row per leaf layer (path, type, output shape, parameter count),
      then the model's output shape and total parameter count. Without output shapes,
      one row per innermost layer in path order (path, type, parameter count).

    Raises:
      TypeError, ValueError: ``model`` is not an NNX module, or ``input_shape`` is
        neither a shape nor an array (:func:`input_spec`); the model's own errors for
        an ``input_shape`` it cannot take.

    Example:
      >>> from nnjax.nn import MLP, LSTM
      >>> model = MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0))
      >>> text = summary(model, (1, 784), print_fn=None)
      >>> text.splitlines()[-1]
      'Total params: 573,910'
      >>> text = summary(MLP(4, (8,), 2, rngs=nnx.Rngs(0)))  # input from the arguments
      Model: "MLP"
      =========================================
      Layer (path)  Type   Output shape  Params
      =========================================
      layers/0      Dense  (1, 8)            40
      layers/1      Dense  (1, 2)            18
      =========================================
      Input shape: (1, 4) (inferred from MLP(in_features=4))
      Output shape: (1, 2)
      Total params: 58
      >>> text = summary(LSTM(4, 8, rngs=nnx.Rngs(0)))  # over any length: no shapes
      Model: "LSTM"
      ==========================
      Layer (path)  Type  Params
      ==========================
      (model)       LSTM     416
      ==========================
      Output shapes not shown: the constructor arguments of LSTM do not fix its input;
      pass `input_shape`, e.g. summary(model, (1, ...))
      Total params: 416
    """
    _validate.check_module(model, owner="summary", usage="summary(model, input_shape)")
    if input_shape is None:
        text = _inferred_table(model, dtype)
    else:
        text = _shape_table(model, input_spec(input_shape, dtype), [])
    if print_fn is not None:
        print_fn(text)
    return text


def _inferred_table(model: nnx.Module, dtype: jnp.dtype | None) -> str:
    """The table for :func:`inferred_input`'s input, else the one without output shapes."""
    spec, origin = inferred_input(model, dtype)
    if spec is None:
        return _params_table(model, origin)
    shown = _shape_str(spec)
    try:
        return _shape_table(model, spec, [f"Input shape: {shown} (inferred from {origin})"])
    except (TypeError, ValueError) as err:  # e.g. a Dense first layer used on (B, T, F)
        first = (str(err).splitlines() or [type(err).__name__])[0]
        return _params_table(model, f"the input {shown} inferred from {origin} fails ({first})")


def _shape_table(model: nnx.Module, spec: Any, footer: list[str]) -> str:
    rows, out = layer_rows(model, spec)
    header = ("Layer (path)", "Type", "Output shape", "Params")
    cells = [(p, t, s, f"{n:,}") for p, t, s, n in rows]
    return _table(model, header, cells, [*footer, f"Output shape: {_shape_str(out)}"])


def _params_table(model: nnx.Module, why: str) -> str:
    cells = [(p, t, f"{n:,}") for p, t, n in module_rows(model)]
    note = f"Output shapes not shown: {why}; pass `input_shape`, e.g. summary(model, (1, ...))"
    return _table(model, ("Layer (path)", "Type", "Params"), cells, [note])
