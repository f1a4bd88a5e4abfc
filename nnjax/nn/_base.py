"""The bridge between functional parameter dicts and Flax NNX modules (private)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from flax import nnx


class FunctionalModule(nnx.Module):
    """A module that holds one functional parameter dict as ``nnx.Param`` attributes.

    ``nnx.state(module, nnx.Param)`` as a pure dict is then exactly the dict that the
    matching ``F.<op>_init`` returned, and :meth:`params` hands it back to ``F.<op>``.
    Running statistics (batch norm) are held the same way as ``nnx.BatchStat`` and
    handed back by :meth:`stats`.
    """

    _param_names: tuple[str, ...] = ()
    _stat_names: tuple[str, ...] = ()

    def _set_params(self, params: Mapping[str, jax.Array]) -> None:
        self._param_names = tuple(params)
        for name, value in params.items():
            setattr(self, name, nnx.Param(value))

    def _set_stats(self, stats: Mapping[str, jax.Array]) -> None:
        self._stat_names = tuple(stats)
        for name, value in stats.items():
            setattr(self, name, nnx.BatchStat(value))

    def params(self) -> dict[str, jax.Array]:
        """The functional parameter dict, as ``F.<op>`` takes it."""
        return {name: getattr(self, name)[...] for name in self._param_names}

    def stats(self) -> dict[str, jax.Array]:
        """The running statistics dict (empty for layers without any)."""
        return {name: getattr(self, name)[...] for name in self._stat_names}

    def _store_stats(self, stats: Mapping[str, jax.Array]) -> None:
        for name in self._stat_names:
            getattr(self, name)[...] = stats[name]


def rngs_or_default(rngs: nnx.Rngs | None, seed: int = 0) -> nnx.Rngs:
    """``rngs``, or ``nnx.Rngs(seed)`` when none is given."""
    return nnx.Rngs(seed) if rngs is None else rngs


def compute_dtype(x: jax.typing.ArrayLike, dtype: jnp.dtype | None) -> jax.Array:
    """Casts ``x`` to the module's compute dtype (mixed precision) when one is set."""
    return jnp.asarray(x) if dtype is None else jnp.asarray(x, dtype)
