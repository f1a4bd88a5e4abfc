"""A sweep's members as an ensemble: every member's predictions, and their mean.

Each structure group of a :class:`~nnjax.train.sweep_result.SweepResult` predicts in
its own compiled program (members vmapped, or one at a time where that measures faster
on the CPU: :func:`~nnjax.train.members.auto_eval_per_step`); the members come back in
member order.

Example:
  >>> from nnjax.nn import MLP
  >>> from nnjax.train.sweep import sweep
  >>> x = np.ones((8, 2), np.float32)
  >>> r = sweep(lambda rngs: MLP(2, (4,), 1, rngs=rngs), (x, x[:, :1]), loss="mse",
  ...           seeds=[0, 1], metrics=(), epochs=0)
  >>> ensemble_predict(r, x).shape
  (8, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import activations
from nnjax.train import step as step_lib
from nnjax.train.compiled import cached
from nnjax.train.members import auto_eval_per_step, over_members
from nnjax.train.precision import canonical_precision
from nnjax.train.sweep_result import MemberGroup, SweepResult


def ensemble_predict(
    result: SweepResult,
    x: jax.typing.ArrayLike,
    *,
    activation: str | activations.Activation | None = None,
    precision: Any = None,
) -> jax.Array:
    """The mean over members of ``activation(member(x))``, members in inference mode.

    Args:
      result: a :class:`SweepResult` with ``M`` members: of one structure (an ensemble
        of seeds, one compiled program), or of several (widths swept: each group's
        members predict in their own program, then all are averaged alike).
      x: ``(B, ...)`` inputs the models take (floating, as in training; a NumPy or JAX
        array), or a pytree of them passed as ``fit`` and ``predict`` pass them (a
        tuple as positional inputs, a dict as keyword inputs).
      activation: applied to each member's output before averaging, e.g. ``"softmax"``
        to average class probabilities; ``None`` averages the raw outputs.
      precision: as ``predict``'s (``"bfloat16"``: each member computes as a
        ``sweep(precision="bfloat16")`` step does; float32 outputs).

    Returns:
      ``(B, ...)``: shaped like one member's output on ``x`` (e.g. ``(B, classes)``), in
      the members' output dtype (float32 for float32 models). The mean over the ``M``
      members of :func:`member_predictions` (after ``activation``).

    Raises:
      ValueError: groups whose outputs differ in shape or dtype (names them); an
        unknown ``precision``.

    Example:
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.sweep import sweep
      >>> x = np.ones((16, 2), np.float32); y = np.zeros(16, np.int32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 3, rngs=rngs), (x, y),
      ...           loss="cross_entropy", seeds=[0, 1], batch_size=8, epochs=0)
      >>> p = ensemble_predict(r, x[:5], activation="softmax")
      >>> p.shape, p.dtype
      ((5, 3), dtype('float32'))
      >>> bool(jnp.allclose(p.sum(axis=-1), 1.0, atol=1e-6))
      True
    """
    fn = None if activation is None else activations.get(activation)
    precision = canonical_precision(precision)
    if len(result.groups) > 1:  # one program per structure; the mean over all members
        outputs = member_predictions(result, x, precision=precision)
        return jnp.mean(outputs if fn is None else fn(outputs), axis=0).astype(outputs.dtype)
    predict = _compiled_ensemble(_eval_graphdef(result._single()), fn, precision)
    return predict(result.params, result.rest, _input(x))


def member_predictions(
    result: SweepResult, x: jax.typing.ArrayLike, *, precision: Any = None
) -> jax.Array:
    """Every member's output on ``x`` (inference mode), stacked ``(M, *output_shape)``.

    Args:
      result: the sweep's result, with ``M`` members (in one group or several: each
        group predicts in its own compiled program).
      x: ``(B, ...)`` inputs the models take (floating, as in training), or a pytree
        of them, as for :func:`ensemble_predict`.
      precision: as :func:`ensemble_predict`'s.

    Returns:
      ``(M, B, ...)``: each member's output, in member order, in the models' output
      dtype (float32 for float32 models).

    Raises:
      ValueError: groups whose outputs differ in shape or dtype (names them).

    Example:
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.sweep import sweep
      >>> x = np.ones((8, 2), np.float32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 1, rngs=rngs), (x, x[:, :1]), loss="mse",
      ...           seeds=[0, 1, 2], metrics=(), epochs=0)
      >>> member_predictions(r, x).shape
      (3, 8, 1)
    """
    x, precision = _input(x), canonical_precision(precision)
    stacks = [
        _compiled_members(_eval_graphdef(group), precision)(group.params, group.rest, x)
        for group in result.groups
    ]
    kinds = {(s.shape[1:], s.dtype) for s in stacks}
    if len(kinds) > 1:
        shown = ", ".join(f"group {g}: {s.shape[1:]} {s.dtype}" for g, s in enumerate(stacks))
        raise ValueError(f"the sweep's groups give outputs of different shapes ({shown})")
    # a group's members need not be sorted (one group included): back in member order
    order = np.argsort(np.concatenate([group.members for group in result.groups]))
    return jnp.concatenate(stacks)[order]


def _input(x: Any) -> Any:
    """``x`` (every array of a pytree) as a jitted call takes it beside members on any mesh.

    Host data stays NumPy (so it joins arrays spread over several processes as a
    replicated input); JAX arrays pass as they are.
    """
    return jax.tree.map(lambda a: a if isinstance(a, jax.Array) else np.asarray(a), x)


def _eval_graphdef(group: MemberGroup) -> nnx.GraphDef:
    """The inference-mode graph of ``group``'s members (derived once per graph)."""
    return step_lib.graph_in_mode(group.graphdef, group.params, group.rest, training=False)


def _members_predict(graphdef: nnx.GraphDef, precision: str | None) -> Callable:
    """``predict(params, rest, x) -> (M, ...)``, members as ``auto_eval_per_step`` says."""
    predict = step_lib.make_predict_step(graphdef, precision)
    per_step = auto_eval_per_step(jax.devices()[0].platform, graphdef)
    return lambda ps, rs, x: over_members(lambda p, r: predict(p, r, x), (ps, rs), per_step)


@cached
def _compiled_members(eval_graphdef: nnx.GraphDef, precision: str | None) -> Callable:
    return jax.jit(_members_predict(eval_graphdef, precision))


@cached
def _compiled_ensemble(
    eval_graphdef: nnx.GraphDef, fn: Callable | None, precision: str | None
) -> Callable:
    members = _members_predict(eval_graphdef, precision)

    def predict(params, rest, x):
        ys = members(params, rest, x)
        return jnp.mean(ys if fn is None else fn(ys), axis=0)

    return jax.jit(predict)


__all__ = ["ensemble_predict", "member_predictions"]
