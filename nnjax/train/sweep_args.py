"""``sweep``'s arguments, checked before anything compiles.

``model_fn`` must build one member as ``model_fn(rngs, **hyperparams)``; ``members``
is a ``{"seeds": [...], "hyperparams": {...}}`` dict as :func:`~nnjax.train.sweep.grid`
builds; ``optimizer`` an Optax factory or a name; ``callbacks`` a list, of which
``EarlyStopping`` and ``ModelCheckpoint`` are run per member. Each error names what
the user passed.

Example:
  >>> from nnjax.train.callbacks import EarlyStopping
  >>> stop, ckpt, others = split_callbacks([EarlyStopping("loss")])
  >>> stop.monitor.monitor, ckpt, others
  ('loss', None, [])
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import optax
from flax import nnx

from nnjax.train import compiled, loss_scale, model_call, validation
from nnjax.train.callbacks import Callback, EarlyStopping, as_callbacks
from nnjax.train.checkpoint import ModelCheckpoint
from nnjax.train.optimizers import check_learning_rate, check_not_class, get_optimizer

MODEL_FN_CALL = (
    "model_fn is called as model_fn(rngs, **hyperparams): an nnx.Rngs of the member's "
    "seed, then the hyperparameters the optimizer does not take, by name"
)
"""How ``sweep`` calls ``model_fn`` (for the messages)."""

OptimizerFactory = Callable[..., optax.GradientTransformation]


def check_model_fn(model_fn: Any) -> None:
    """``model_fn`` must be a function that builds a member from ``rngs`` (not a model).

    Raises:
      TypeError: a model instance, something not callable, or a function without a
        positional argument for ``rngs``.

    Example:
      >>> check_model_fn(lambda rngs, width=8: None)
    """
    if isinstance(model_fn, nnx.Module) or not callable(model_fn):
        got = f"an instance of {type(model_fn).__name__}" if callable(model_fn) else repr(model_fn)
        raise TypeError(
            f"sweep: `model_fn` must be a function that builds one member, got {got}; "
            f"{MODEL_FN_CALL}, e.g. model_fn=lambda rngs: MLP(4, (8,), 3, rngs=rngs)"
        )
    try:
        params = inspect.signature(model_fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: accept it
        return
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not any(p.kind in kinds or p.kind is p.VAR_POSITIONAL for p in params):
        raise TypeError(f"sweep: `model_fn` takes no positional argument for rngs; {MODEL_FN_CALL}")


def check_args(model_fn: Any, epochs: Any, batch_size: Any, **flags: Any) -> tuple[int, int]:
    """``sweep``'s ``model_fn`` and boolean ``flags`` checked; ``epochs``, ``batch_size`` as ints.

    Raises:
      TypeError: see :func:`check_model_fn`; a count that is not an int, a flag that
        is not a bool.
      ValueError: ``epochs < 0`` or ``batch_size < 1``.

    Example:
      >>> check_args(lambda rngs: None, 3, 32, shuffle=True)
      (3, 32)
    """
    check_model_fn(model_fn)
    validation.check_flags("sweep", **flags)
    return validation.check_count("epochs", epochs), validation.check_count(
        "batch_size", batch_size, 1
    )


def build_member(model_fn: Callable, seed: int, structure: Mapping[str, Any]) -> nnx.Module:
    """``model_fn(nnx.Rngs(seed), **structure)``, which must be an ``nnx.Module``.

    Raises:
      TypeError: ``model_fn`` returned something else (``None``: a missing return).

    Example:
      >>> from nnjax.nn import MLP
      >>> model = build_member(lambda rngs, width: MLP(2, (width,), 1, rngs=rngs), 0, {"width": 4})
      >>> model.layers[0].kernel.shape
      (2, 4)
    """
    model = model_fn(nnx.Rngs(seed), **structure)
    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"sweep: model_fn(nnx.Rngs({seed}), **{structure}) returned "
            f"{type(model).__name__}, not an nnx.Module; it must build and return one member"
        )
    return model


def integer_paths(model_fn: Callable, seed: int, structure: Mapping[str, Any]) -> frozenset[str]:
    """The integer inputs a member declares (:func:`~nnjax.train.model_call.integer_input_paths`).

    The member is built abstractly (``nnx.eval_shape``: no parameters are allocated).

    Example:
      >>> from nnjax.nn import SequenceRegressor
      >>> sorted(integer_paths(lambda rngs: SequenceRegressor(1, 4, rngs=rngs), 0, {}))
      ["['lengths']", '[1]']
    """
    abstract = nnx.eval_shape(lambda: build_member(model_fn, seed, structure))
    return model_call.integer_input_paths(abstract)


def unpack_members(members: Any) -> tuple[Any, Any]:
    """``(seeds, hyperparams)`` of ``sweep``'s ``members`` (as ``grid`` builds them).

    Raises:
      TypeError: ``members`` is not a mapping (a list of per-member dicts).
      ValueError: it lacks ``"seeds"`` or has other keys (names them).

    Example:
      >>> unpack_members({"seeds": [0, 1], "hyperparams": {"width": [4, 8]}})
      ([0, 1], {'width': [4, 8]})
    """
    shape = "{'seeds': [...], 'hyperparams': {name: [...]}}, as grid() and random_search() build"
    if not isinstance(members, Mapping):
        raise TypeError(
            f"sweep: `members` must be a dict {shape}; got {type(members).__name__}. For "
            "members of your own pass seeds=[...] and hyperparams={name: [one value per member]}"
        )
    unknown = sorted(map(str, set(members) - {"seeds", "hyperparams"}))
    if unknown or "seeds" not in members:
        raise ValueError(
            f"sweep: `members` must be a dict {shape}; got the keys {sorted(map(str, members))}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return members["seeds"], members.get("hyperparams") or {}


def optimizer_factory(
    optimizer: str | OptimizerFactory, accumulate_steps: int = 1, precision: str | None = None
) -> OptimizerFactory:
    """The Optax factory run per member: ``optimizer`` itself, or the named one.

    With ``accumulate_steps > 1`` its optimizers update with the mean gradient of every
    ``accumulate_steps`` batches (:func:`accumulating`), as ``fit``'s; where ``precision``
    computes in float16, with dynamic loss scaling (:func:`loss_scaled`), as ``fit``'s.

    Raises:
      ValueError: an unknown name, or a transformation (its hyperparameters cannot be
        injected per member); ``accumulate_steps < 1``.
      TypeError: a class such as ``optax.GradientTransformation``; ``accumulate_steps``
        not an int.

    Example:
      >>> optimizer_factory("SGD") is optax.sgd
      True
    """
    check_not_class(optimizer)
    steps = validation.check_count("accumulate_steps", accumulate_steps, 1)
    if callable(optimizer) and not isinstance(optimizer, optax.GradientTransformation):
        return loss_scaled(accumulating(optimizer, steps), precision)
    if isinstance(optimizer, str):
        get_optimizer(optimizer)  # raises, listing the known names, if unknown
        return loss_scaled(accumulating(getattr(optax, optimizer.lower()), steps), precision)
    raise ValueError(
        "sweep: `optimizer` must be an Optax optimizer factory such as optax.adam (its "
        f"hyperparameters are injected per member) or a name, got {optimizer!r}"
    )


def _accumulating(factory: OptimizerFactory, steps: int) -> OptimizerFactory:
    """``factory`` whose optimizers apply the mean gradient of every ``steps`` batches.

    ``optax.MultiSteps`` inside the factory, so that ``optax.inject_hyperparams`` stays
    outermost: each member's hyperparameters stay where the sweep and its callbacks read
    and set them. With numbers for hyperparameters a member's updates equal ``fit``'s with
    ``accumulate_steps`` (there ``MultiSteps`` wraps the injected optimizer). The same
    function for the same arguments (compiled programs are cached by it).

    Example:
      >>> accumulating(optax.sgd, 1) is optax.sgd, accumulating(optax.sgd, 2).__name__
      (True, 'sgd')
    """
    if steps == 1:
        return factory

    @functools.wraps(factory)  # its signature: the hyperparameters it takes
    def build(*args: Any, **kwargs: Any) -> optax.GradientTransformation:
        inner = factory(*args, **kwargs)
        return optax.MultiSteps(inner, every_k_schedule=steps).gradient_transformation()

    return build


accumulating = compiled.cached(_accumulating)  # an unhashable factory: built afresh
loss_scaled = compiled.cached(loss_scale.scaled_factory)  # float16: dynamic loss scaling


def split_callbacks(callbacks: Iterable[Callback] | None):
    """``(EarlyStopping or None, ModelCheckpoint or None, the other callbacks)``.

    Raises:
      TypeError: ``callbacks`` is not a list of callbacks (``None`` is none).
      ValueError: two of either kind, or ``save_best_only`` (members improve apart).
    """
    callbacks = as_callbacks(callbacks)
    stops = [cb for cb in callbacks if isinstance(cb, EarlyStopping)]
    ckpts = [cb for cb in callbacks if isinstance(cb, ModelCheckpoint)]
    if len(stops) > 1 or len(ckpts) > 1:
        raise ValueError("sweep: pass at most one EarlyStopping and one ModelCheckpoint")
    if ckpts and ckpts[0].save_best_only:
        raise ValueError(
            "sweep: ModelCheckpoint(save_best_only=True) is not supported (members improve "
            "at different epochs); save every epoch and use EarlyStopping("
            "restore_best_weights=True) to keep each member's best"
        )
    others = [cb for cb in callbacks if not isinstance(cb, EarlyStopping | ModelCheckpoint)]
    return (stops[0] if stops else None), (ckpts[0] if ckpts else None), others


def check_numeric(hp: Mapping[str, list], names: Sequence[str]) -> None:
    """Optimizer hyperparameters are injected per member: each value must be a number.

    A ``learning_rate`` must be finite and ``> 0``, as ``fit``'s
    (:func:`~nnjax.train.optimizers.check_learning_rate`).

    Raises:
      TypeError: a value that is not a number.
      ValueError: a learning rate that is negative, zero or not finite.

    Example:
      >>> check_numeric({"learning_rate": [0.1, 0.2]}, ["learning_rate"])
    """
    for name in names:
        for i, value in enumerate(hp[name]):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"sweep: optimizer hyperparameter {name!r} must be a number per member "
                    f"(it is injected into the optimizer state), got {value!r}"
                )
            if name == "learning_rate":
                check_learning_rate(value, name=f"learning_rate[{i}]")


__all__ = [
    "MODEL_FN_CALL",
    "accumulating",
    "build_member",
    "check_args",
    "check_model_fn",
    "check_numeric",
    "integer_paths",
    "optimizer_factory",
    "split_callbacks",
    "unpack_members",
]
