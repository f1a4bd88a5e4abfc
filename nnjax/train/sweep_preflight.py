"""Every compile group of a sweep checked before the first one trains.

``sweep`` trains its groups (members with equal ``model_fn`` arguments) one after
another, and builds each group's members when it starts. A ``model_fn`` that fails
for a later group's arguments, or builds a model that cannot take the data, was found
only after the earlier groups had trained (and their results were lost with the
error). :func:`check_groups` builds one member of each other structure abstractly
(``nnx.eval_shape``: no parameters are allocated, nothing compiles) and runs the
checks the group's own start runs.

Example:
  >>> import numpy as np
  >>> from nnjax.nn import MLP
  >>> from nnjax.train import setup
  >>> x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int32)
  >>> source, _ = setup.sources((x, y), None, 0.0, batch_size=4, mesh_size=1)
  >>> objective = setup.objective("cross_entropy", None, (), None, False)
  >>> groups = [(np.array([0]), {"width": 4}), (np.array([1]), {"width": 8})]
  >>> check_groups(groups, dict(
  ...     model_fn=lambda rngs, width: MLP(2, (width,), 3, rngs=rngs), seeds=[0, 1],
  ...     hp={"learning_rate": [0.1, 0.1]}, opt_names=("learning_rate",),
  ...     factory=optax.sgd, objective=objective, source=source, val=None))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optax
from flax import nnx

from nnjax.train import setup, step
from nnjax.train._sweep_groups import hashable
from nnjax.train.sweep_args import build_member


def check_groups(member_groups: Sequence[tuple[np.ndarray, dict[str, Any]]], c: Mapping) -> None:
    """Builds one member of each structure after the first group's and checks it.

    Args:
      member_groups: ``(member indices, model_fn arguments)`` per group, in training
        order (:func:`nnjax.train._sweep_groups.groups`); the first group is checked
        when it starts, as before.
      c: the sweep's context: ``model_fn``, ``seeds`` (every member's), ``hp`` (every
        member's hyperparameters by name), ``opt_names`` (the optimizer's among them),
        ``factory`` (the optimizer factory), ``objective`` (loss, metrics, options),
        ``source`` and ``val`` (the training and validation data).

    Raises:
      Whatever ``model_fn`` raises for a group's arguments (with a note naming them),
      and the errors of :func:`nnjax.train.setup.check_model` (shapes, labels, the loss).
    """
    seen = {hashable(member_groups[0][1])} if member_groups else set()
    for idx, structure in member_groups:
        if hashable(structure) in seen:
            continue
        seen.add(hashable(structure))
        first = int(idx[0])
        seed = c["seeds"][first]
        try:
            model = nnx.eval_shape(functools.partial(build_member, c["model_fn"], seed, structure))
        except Exception as err:
            err.add_note(f"sweep: building the member of model_fn arguments {structure}")
            raise
        graphdef, params, rest = step.split_model(model)
        values = {n: c["hp"][n][first] for n in c["opt_names"]}
        tx = optax.inject_hyperparams(c["factory"])(**values)
        setup.check_model(model, graphdef, params, rest, c["objective"], c["source"], c["val"], tx)


__all__ = ["check_groups"]
