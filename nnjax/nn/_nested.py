"""Modules holding a nested functional parameter dict (private).

:class:`NestedModule` stores each top-level entry of a ``F.<op>_init`` dict as an
``nnx.Param`` (an array) or an ``nnx.Dict`` of them (a sub-dict), so that
``nnx.state(module, nnx.Param)`` as a pure dict is exactly the nested init dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flax import nnx

from nnjax.nn._base import FunctionalModule


def _to_variables(value: Any) -> Any:
    if isinstance(value, Mapping):
        return nnx.Dict({k: _to_variables(v) for k, v in value.items()})
    return nnx.Param(value)


def _from_variables(value: Any) -> Any:
    if isinstance(value, nnx.Dict):
        return {k: _from_variables(v) for k, v in value.items()}
    return value[...]


class NestedModule(FunctionalModule):
    """A :class:`FunctionalModule` whose parameter dict may nest (attention, blocks)."""

    def _set_params(self, params: Mapping[str, Any], *, optional: tuple[str, ...] = ()) -> None:
        self._param_names = tuple(params)
        self._assign(params, _to_variables, optional)

    def params(self) -> dict[str, Any]:
        """The nested functional parameter dict, as ``F.<op>`` takes it."""
        return {name: _from_variables(getattr(self, name)) for name in self._param_names}
