"""What ``fit`` and ``sweep`` build and check before training starts.

The objective (``loss`` or ``loss_fn``, metrics, precision), the data sources, the
device mesh, and every argument check that can run before anything compiles.

Example:
  >>> check_counts(3, 32, 1, None, 0)
  (3, 32, 1, None)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax._deprecation import user_stacklevel
from nnjax.train import (
    abstract_output,
    class_weights,
    compiled,
    data,
    eval_blocks,
    label_broadcast,
    label_checks,
    loss_weights,
    optimizers,
    output_activation,
    padded_rows,
    sharding,
    step,
)
from nnjax.train import validation as checks
from nnjax.train._canonical import canonical_function
from nnjax.train.abstract_output import abstract
from nnjax.train.evaluate import divisible, eval_source
from nnjax.train.iterable_source import IterableSource
from nnjax.train.objective import canonical_loss, canonical_specs
from nnjax.train.precision import canonical_precision


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a step optimises and logs: ``loss`` or ``loss_fn``, metrics and options."""

    loss: Any
    loss_fn: Callable | None
    metrics: tuple
    options: tuple

    def eval_loss(self) -> Any:
        """The loss for validation (the built-in loss, or None with ``loss_fn``)."""
        return self.loss


def objective(loss, loss_fn, metrics, precision, remat, *, caller: str = "fit") -> Objective:
    """The :class:`Objective` of ``fit``'s arguments; unknown names fail here.

    ``caller`` (``"fit"``, ``"sweep"``, ``"evaluate"``) is the function the errors name.

    Raises:
      ValueError: both or neither of ``loss`` and ``loss_fn``; ``metrics`` with
        ``loss_fn``; an unknown loss, metric or precision.
    """
    if (loss is None) == (loss_fn is None):
        raise ValueError(
            f"{caller} needs exactly one of `loss` (a name or loss(pred, y)) and `loss_fn`"
        )
    if loss is not None:
        loss = canonical_loss(loss)  # unknown names fail here
    specs = metrics_lib.as_specs(metrics) if loss is None else metrics_lib.specs_for(loss, metrics)
    specs, loss_fn = canonical_specs(specs), canonical_function(loss_fn)  # lambdas made again
    if loss_fn is not None and specs:
        raise ValueError(
            "with `loss_fn`, log extra values by returning (loss, logs); "
            "`metrics` need model outputs and a loss"
        )
    step.resolve_metrics(specs)
    precision = canonical_precision(precision)
    options = (("loss_fn", loss_fn), ("precision", precision), ("remat", bool(remat)))
    return Objective(loss, loss_fn, specs, options)


def sources(train, validation_data, validation_split, *, batch_size, mesh_size, **kw):
    """The training source and the validation source (or ``None``), checked.

    ``validation_split`` holds out the last fraction of array data; evaluation batch
    sizes are rounded up to a multiple of ``mesh_size``. Every class of ``class_weight``
    must occur in the labels of array data, held-out ones included.
    """
    held_out = None
    if validation_split:
        if validation_data is not None or not data.is_arrays(train):
            raise ValueError("validation_split needs array data and no validation_data")
        train, validation_data = data.split_off(train, validation_split)
        held_out = validation_data
    source = data.make_source("data", train, batch_size=batch_size, **kw)
    if isinstance(source, data.ArraySource) and kw.get("class_weight") is not None:
        labels = [source.y, *([checks.host_labels("data y", held_out[1])] if held_out else [])]
        class_weights.check_present("`data`", labels, kw["class_weight"])
    if source.batch_size < batch_size:  # fewer examples than a batch: all of them, padded
        source = divisible(source, mesh_size)  # to a multiple of the devices (masked)
    kw.pop("steps_per_epoch", None)
    val = None
    if validation_data is not None:
        kw.pop("class_weight", None)
        val = eval_source("validation", validation_data, source.batch_size, mesh_size, **kw)
    return source, val


def check_passes(source: Any, val: Any, passes: int) -> None:
    """Raises before training unless both sources can be read ``passes`` times.

    A generator (without ``steps_per_epoch``) is exhausted after one pass; the training
    data is read once an epoch and so is the validation data.

    Raises:
      ValueError: names the argument (``data`` or ``validation_data``) and the fix.
    """
    for src in (source, val):
        if isinstance(src, IterableSource):
            src.check_epochs(passes)


def check_updates(accumulate_steps: int, source: Any, epochs: int) -> None:
    """Raises before training when a fresh run of ``epochs`` would never update the model.

    With ``accumulate_steps`` batches per update, a run that reads fewer batches in all
    applies no update (its one group is incomplete). Sources of unknown length pass,
    and so does a run of no epochs (``epochs=0`` trains nothing, as Keras's ``fit``).

    Raises:
      ValueError: names ``accumulate_steps`` and the batches the run reads.

    Example:
      >>> from types import SimpleNamespace
      >>> check_updates(4, SimpleNamespace(steps=2), epochs=2)  # 4 batches: one update
    """
    steps = getattr(source, "steps", None)
    if isinstance(steps, int) and 0 < epochs * steps < accumulate_steps:
        raise ValueError(
            f"accumulate_steps={accumulate_steps} averages the gradients of that many "
            f"batches per update, but this run reads {epochs * steps} ({epochs} epoch(s) "
            f"of {steps}): it would never update the model; lower accumulate_steps or "
            "train more epochs"
        )


class LossFnLogs(NamedTuple):
    """The names ``loss_fn`` logs in training and on validation data (empty: none), traced.

    Example:
      >>> LossFnLogs(("mae",)).val
      ()
    """

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()


def check_model(model, graphdef, params, rest, objective, source, val, tx) -> LossFnLogs:
    """Checks shapes, labels, loss and a trace of the step by ``eval_shape`` (no compile).

    Returns the names that ``loss_fn`` logs (:class:`LossFnLogs`).

    Raises:
      ValueError, TypeError: labels out of range, a loss that cannot take the model's
        outputs, returns more than a scalar or is written with NumPy, classification
        metrics on continuous targets (:func:`check_metric_labels`), a ``loss_fn`` that
        fails or returns neither a loss nor ``(loss, logs)`` (the error noted).
    """
    check_weights_reach_loss(objective.loss, source)
    padded_rows.warn_if_counted(model, source)
    for name, src in (("data", source), ("validation", val)):
        if src is None or objective.loss is None:
            continue
        example = src.example()
        arrays = isinstance(src, data.ArraySource) and not isinstance(src.y, np.memmap)
        whole = src.x if isinstance(src, data.ArraySource) else None
        out = abstract_output.output_shape(
            model, graphdef, params, rest, example.x, name=name, whole=whole,
            tuple_batch="fit" if isinstance(src, IterableSource) else None,
        )  # fmt: skip
        src.check_labels(out, objective.loss, name)  # an iterable: each batch's, as read
        checks.check_named_take_arrays(objective.loss, objective.metrics, out, example.y, name)
        examples = src.n if isinstance(src, data.ArraySource) else None  # named in errors
        checks.check_loss_accepts(  # soft labels first
            objective.loss, out, example.y, name, examples=examples
        )
        label_broadcast.warn_if_labels_broadcast(objective.loss, out, example.y, name)
        check_metric_labels(objective, out, src.y if arrays else example.y, name)
    output_activation.check_logits(objective.loss, graphdef, params, rest, source.example().x)
    logs = LossFnLogs()
    if objective.loss_fn is not None:
        example = jax.tree.map(jax.numpy.asarray, source.example())
        step_args = (graphdef, objective.loss, tx, objective.metrics, objective.options)
        logs = LossFnLogs(_loss_fn_logs(step_args, *abstract((params, rest, example))))
        if val is not None:  # the inference-mode model's: the names validation logs
            eval_graph = step.graph_in_mode(graphdef, params, rest, training=False)
            names = eval_blocks.loss_fn_log_names(eval_graph, objective.options, params, rest, val)
            logs = logs._replace(val=names)
    padded_rows.warn_if_loss_counts(objective.loss, objective.loss_fn, model, source)
    if val is not None and objective.loss is not None:  # validation calls the loss alone
        padded_rows.warn_if_loss_counts(objective.loss, None, model, val, "validation")
    return logs


def check_weights_reach_loss(loss: Any, source: Any) -> None:
    """Raises when the data weigh examples but ``loss`` returns one value for the batch.

    Sample and class weights scale per-example losses (:func:`batch_loss`); a loss of
    your own without a ``reduction`` keyword is called on the whole batch, so they
    would be ignored, silently.

    Raises:
      ValueError: names the loss and the two ways to weigh its examples.
    """
    if loss is None or metrics_lib.per_example(losses.get(loss)) is not None:
        return
    first = source.example()
    weights, mask = (
        (source.weight, 1.0) if isinstance(source, data.ArraySource) else (first.weight, first.mask)
    )
    weights = np.asarray(weights)
    if np.all(weights == (mask if np.ndim(mask) == 0 else loss_weights.along_rows(mask, weights))):
        return
    raise ValueError(
        f"`data` weighs its examples (sample_weight or class_weight), but the loss {loss!r} "
        "returns one value for the whole batch, so the weights would be ignored: give it a "
        "`reduction` keyword (fit calls it with reduction='none' for one value per "
        "example, then weighs and masks them), or use loss_fn(model, batch) and weigh "
        "with batch.weight"
    )


def check_metric_labels(objective: Objective, out: Any, y: Any, name: str = "data") -> None:
    """:func:`nnjax.train.label_checks.check_metric_labels` of an :class:`Objective`.

    Example:
      >>> obj = objective("mse", None, ["accuracy"], None, False)
      >>> out = jax.ShapeDtypeStruct((1, 1), np.float32)
      >>> check_metric_labels(obj, out, np.array([[0.0], [1.0]], np.float32))
    """
    label_checks.check_metric_labels(objective.loss, objective.metrics, out, y, name)


@compiled.cached
def _loss_fn_logs(step_args: tuple, treedef: Any, avals: tuple) -> tuple[str, ...]:
    """``loss_fn``'s log names by a trace of the step (0.1 s: 22-layer MLP); kept per shapes."""
    graphdef, loss, tx, metrics, options = step_args
    train_step = step.make_train_step(graphdef, loss, tx, metrics, **dict(options))
    params, rest, example = jax.tree.unflatten(treedef, avals)
    out = jax.eval_shape(lambda p, r, e: train_step(p, tx.init(p), r, e), params, rest, example)
    return tuple(out[3]["logs"])


def check_param_sharding(param_sharding: Any) -> None:
    """A string must be a known name (rules are checked against the mesh later)."""
    if isinstance(param_sharding, str) and param_sharding not in sharding.PARAM_SHARDINGS:
        raise ValueError(
            f"param_sharding must be None, 'replicated', 'fsdp' or a sequence of "
            f"(regex, PartitionSpec) rules, got {param_sharding!r}"
        )


def make_mesh(batch_size: int, devices: Any, mesh: Mesh | None) -> Mesh:
    """The user's ``mesh`` (checked against ``batch_size``), or one over ``devices``.

    A user's mesh with ``Explicit`` (or ``Manual``) axes, as ``jax.make_mesh`` makes
    them from jax 0.9, is used with every axis ``Auto``: the same devices and names,
    ``fit``'s programs placed by XLA's sharding propagation.

    Raises:
      ValueError: both ``mesh`` and ``devices``; no ``'data'`` axis; a batch size the
        data axis does not divide.
    """
    if mesh is not None:
        if devices is not None:
            raise ValueError("pass `mesh` or `devices`, not both")
        if sharding.DATA_AXIS not in mesh.axis_names:
            raise ValueError(f"`mesh` needs a {sharding.DATA_AXIS!r} axis, got {mesh.axis_names}")
        size = int(mesh.shape[sharding.DATA_AXIS])
        if batch_size % size:
            raise ValueError(
                f"batch_size={batch_size} cannot be split evenly over the mesh's "
                f"{sharding.DATA_AXIS!r} axis of size {size}"
            )
        return sharding.automatic(mesh)
    return sharding.make_mesh(sharding.choose_devices(batch_size, devices))


def data_axis_size(mesh: Mesh | None, devices: Any) -> int:
    """What evaluation batch sizes are rounded up to a multiple of."""
    if mesh is not None:
        return int(mesh.shape.get(sharding.DATA_AXIS, 1))
    if devices:
        return len(devices)
    return jax.device_count() if jax.process_count() > 1 else 1


def step_options(objective: Objective, layout: sharding.StateLayout, param_sharding) -> tuple:
    """The compiled step's options: the objective's, plus the layout of sharded state."""
    if param_sharding in (None, "replicated"):
        return objective.options
    return (*objective.options, ("layout", layout))


def log_names(objective, user_logs, val, state) -> list[str]:
    """Every name an epoch logs, in order (for callbacks' monitors and CSV headers).

    ``user_logs``: :func:`check_model`'s :class:`LossFnLogs` (a tuple: the same names in
    training and validation). A name logged twice (a ``loss_fn`` log named ``"loss"``,
    ``"learning_rate"``) is listed once, where it first comes, as in the epoch's logs.

    Example:
      >>> from types import SimpleNamespace
      >>> obj = objective(None, lambda m, b: 0.0, None, None, False)
      >>> log_names(obj, LossFnLogs(("mae",), ("mae",)), "val", SimpleNamespace(opt_state={}))
      ['loss', 'mae', 'val_loss', 'val_mae']
    """
    is_pair = isinstance(user_logs, LossFnLogs)
    train, val_logs = user_logs if is_pair else (tuple(user_logs), tuple(user_logs))
    names = ["loss", *train, *(step.metric_name(m) for m in objective.metrics)]
    if val is not None:
        evaluated = ["loss", *val_logs, *(step.metric_name(m) for m in objective.metrics)]
        names += [f"val_{n}" for n in evaluated]
    if "learning_rate" in optimizers.hyperparameters(state.opt_state):
        names.append("learning_rate")
    return list(dict.fromkeys(names))


def check_counts(epochs, batch_size, accumulate_steps, steps_per_epoch, initial_epoch, seed=0):
    """The integer arguments of ``fit``, checked before anything is built.

    Raises:
      TypeError: one is not an int (``seed="42"`` too).
      ValueError: one is below its minimum (``seed`` too: it must be ``>= 0``), or
        ``initial_epoch`` leaves nothing to train.
    """
    checks.check_count("seed", seed)
    epochs = checks.check_count("epochs", epochs)
    if 0 < checks.check_count("initial_epoch", initial_epoch) >= epochs:
        raise ValueError(
            f"initial_epoch={initial_epoch} leaves nothing to train with epochs={epochs}: "
            "`epochs` counts from 0, so pass epochs > initial_epoch"
        )
    if steps_per_epoch is not None:
        steps_per_epoch = checks.check_count("steps_per_epoch", steps_per_epoch, 1)
    return (
        epochs,
        checks.check_count("batch_size", batch_size, 1),
        checks.check_count("accumulate_steps", accumulate_steps, 1),
        steps_per_epoch,
    )


def warn_if_fsdp_unsharded(param_sharding: Any, mesh: Mesh, batch_size: int) -> None:
    """Warns when ``param_sharding="fsdp"`` shards nothing (the batch left one device)."""
    devices = len(jax.devices())
    if param_sharding == "fsdp" and mesh.size == 1 and devices > 1:
        warnings.warn(
            f"param_sharding='fsdp' shards nothing: batch_size={batch_size} does not "
            f"split over the {devices} devices, so fit runs on one; pass a batch "
            "size they divide (or `devices=`)",
            stacklevel=user_stacklevel(),
        )


__all__ = [
    "LossFnLogs",
    "Objective",
    "check_counts",
    "check_metric_labels",
    "check_model",
    "check_param_sharding",
    "data_axis_size",
    "log_names",
    "make_mesh",
    "objective",
    "sources",
    "step_options",
    "warn_if_fsdp_unsharded",
]
