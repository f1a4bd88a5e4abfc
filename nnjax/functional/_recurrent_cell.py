"""The protocol of the built-in recurrent cells (private): :class:`CellSplit` and :class:`Cell`.

Re-exported by :mod:`nnjax.functional.recurrent`, which defines the cells with
:func:`built_in_cell`; :mod:`nnjax.functional.sequence` reads ``cell.split`` to project
every step's input before the scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, cast

import jax

Params = dict[str, jax.Array]


class CellSplit(NamedTuple):
    """A cell written as input projection + recurrence.

    Attributes:
      name: the cell's public name, used in error messages.
      gates: number of ``H``-wide gate blocks in ``w_x`` and ``w_h``.
      biases: names of the bias vectors, each ``(gates*H,)``.
      input_bias: the bias added to the input projection ``x @ w_x``.
      recurrence: ``recurrence(params, carry, gx) -> (new_carry, y)`` with
        ``gx = x @ w_x + params[input_bias]`` of shape ``(B, gates*H)``; ``params``
        already cast to the compute dtype.
    """

    name: str
    gates: int
    biases: tuple[str, ...]
    input_bias: str
    recurrence: Callable[[Params, Any, jax.Array], tuple[Any, jax.Array]]


CarryT = TypeVar("CarryT")


class Cell(Protocol, Generic[CarryT]):
    """A built-in cell: ``cell(params, carry, x) -> (new_carry, y)`` with two attributes.

    Attributes:
      split: the cell as input projection + recurrence (:class:`CellSplit`).
      zero_carry: ``zero_carry(params, batch_shape, dtype)``, the all-zeros initial carry.
    """

    split: CellSplit
    zero_carry: Callable[[Params, tuple[int, ...], Any], CarryT]

    def __call__(
        self, params: Params, carry: CarryT, x: jax.typing.ArrayLike, /
    ) -> tuple[CarryT, jax.Array]:
        """One step: ``(new_carry, y)`` from the carry and the input ``x (B, in)``."""
        ...


def built_in_cell(
    split: CellSplit, zero_carry: Callable[[Params, tuple[int, ...], Any], CarryT]
) -> Callable[[Callable[..., tuple[CarryT, jax.Array]]], Cell[CarryT]]:
    """Decorator: attaches ``split`` and ``zero_carry`` to a cell function (returned as is)."""

    def attach(fn: Callable[..., tuple[CarryT, jax.Array]]) -> Cell[CarryT]:
        setattr(fn, "zero_carry", zero_carry)  # noqa: B010 - functions have no declared attributes
        setattr(fn, "split", split)  # noqa: B010
        return cast("Cell[CarryT]", fn)

    return attach


__all__ = ["Cell", "CellSplit", "Params", "built_in_cell"]
