"""The members of a sweep: :func:`grid`, :func:`random_search` and their spaces.

A sweep's members are zipped lists: member ``i`` has ``seeds[i]`` and
``hyperparams[name][i]``. Both builders return them as ``{"seeds": [...],
"hyperparams": {name: [...]}}``, ready for ``sweep(..., members=...)`` (or
``**members``). A hyperparameter is routed by name: to the Optax optimizer factory
when it takes it (numeric, injected per member, never recompiled), else to
``model_fn`` (anything: hidden sizes, dropout rate, activation; members with equal
values share one compiled program). :func:`route` checks this before anything compiles.

Example:
  >>> m = random_search(3, {"learning_rate": LogUniform(1e-4, 1e-2),
  ...                       "width": Choice([32, 64])}, seed=0)
  >>> len(m["seeds"]), sorted(m["hyperparams"])
  (3, ['learning_rate', 'width'])
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nnjax.train._sweep_groups import groups, hashable
from nnjax.train.sweep_args import MODEL_FN_CALL, check_numeric
from nnjax.train.validation import check_count


def _check_bounds(kind: str, low: float, high: float) -> None:
    """Bounds must be real numbers (not bools), finite, ``low <= high`` (equal: a constant)."""
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (low, high)):
        raise TypeError(f"{kind}: bounds must be numbers, got low={low!r}, high={high!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{kind}: need finite low <= high, got low={low!r}, high={high!r}")


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``.

    Attributes:
      low: the smallest value, finite.
      high: the largest value, finite and ``>= low``.

    Raises:
      TypeError: a bound that is not a number.
      ValueError: a bound not finite, ``low > high``, or a range ``high - low`` too wide
        for a float64 (``Uniform(-1e308, 1e308)``).

    Example:
      >>> 0.0 <= Uniform(0.0, 0.5).sample(np.random.default_rng(0)) <= 0.5
      True
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds("Uniform", self.low, self.high)
        if not math.isfinite(float(self.high) - float(self.low)):  # NumPy cannot draw it
            raise ValueError(
                f"Uniform: the range high - low = {self.high} - {self.low} overflows a float64"
            )

    def sample(self, rng: np.random.Generator) -> float:
        """One value."""
        return float(rng.uniform(self.low, self.high))


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on ``[log low, log high]`` (``0 < low``).

    Attributes:
      low: the smallest value, finite and ``> 0``.
      high: the largest value, finite and ``>= low``.

    Raises:
      TypeError: a bound that is not a number.
      ValueError: a bound not finite or not positive, or ``low > high``.

    Example:
      >>> 1e-4 <= LogUniform(1e-4, 1e-2).sample(np.random.default_rng(0)) <= 1e-2
      True
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds("LogUniform", self.low, self.high)
        if self.low <= 0:
            raise ValueError(
                f"LogUniform: both bounds must be > 0, got low={self.low!r}, high={self.high!r}"
            )

    def sample(self, rng: np.random.Generator) -> float:
        """One value, within ``[low, high]`` (``exp(log(high))`` may round past ``high``)."""
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return float(min(max(value, self.low), self.high))


@dataclasses.dataclass(frozen=True)
class Integer:
    """An int drawn uniformly from ``low..high`` (both included).

    Attributes:
      low: the smallest value.
      high: the largest value, ``>= low``.

    Raises:
      TypeError: a bound that is not an int (or is a bool).
      ValueError: ``low > high``.

    Example:
      >>> Integer(3, 3).sample(np.random.default_rng(0))
      3
    """

    low: int
    high: int

    def __post_init__(self) -> None:
        bounds = (self.low, self.high)
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in bounds):
            raise TypeError(f"Integer: bounds must be ints, got {self.low!r}, {self.high!r}")
        _check_bounds("Integer", self.low, self.high)

    def sample(self, rng: np.random.Generator) -> int:
        """One value."""
        return int(rng.integers(self.low, self.high + 1))


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values`` (any objects: widths, activation names, tuples of sizes).

    Attributes:
      values: the candidates as a tuple (given as any non-empty sequence), each
        equally likely.

    Raises:
      ValueError: no values.

    Example:
      >>> Choice(["relu", "tanh"]).sample(np.random.default_rng(0)) in ("relu", "tanh")
      True
    """

    values: tuple

    def __init__(self, values: Sequence[Any]) -> None:
        values = tuple(values)
        if not values:
            raise ValueError("Choice: needs at least one value, got none")
        object.__setattr__(self, "values", values)

    def sample(self, rng: np.random.Generator) -> Any:
        """One value."""
        return self.values[int(rng.integers(len(self.values)))]


Space = Uniform | LogUniform | Integer | Choice


def grid(seeds: Sequence[int] = (0,), **hyperparams: Sequence[Any]) -> dict[str, Any]:
    """The Cartesian product of seeds and hyperparameter values, as sweep members.

    Args:
      seeds: the model seeds (initialisation and data order) to try.
      **hyperparams: name -> the values to try, e.g. ``learning_rate=[1e-3, 1e-2]``
        (names that ``sweep`` varies per member: ``learning_rate``, the other
        optimizer hyperparameters, and keywords of ``model_fn``).

    Returns:
      ``{"seeds": [...], "hyperparams": {name: [...]}}``, one entry per member:
      ``len(seeds) x`` the product of the value counts, seeds varying slowest.

    Raises:
      ValueError: no seeds, or a hyperparameter with no values.

    Example:
      >>> g = grid(seeds=[0, 1], learning_rate=[1e-3, 1e-2])
      >>> g["seeds"], g["hyperparams"]["learning_rate"]
      ([0, 0, 1, 1], [0.001, 0.01, 0.001, 0.01])
    """
    lists = {"seeds": as_list(seeds), **{n: as_list(v) for n, v in hyperparams.items()}}
    empty = [n for n, v in lists.items() if not v]
    if empty:
        raise ValueError(f"grid: {empty[0]!r} has no values; give at least one")
    names = list(hyperparams)
    combos = list(itertools.product(*lists.values()))
    return {
        "seeds": [c[0] for c in combos],
        "hyperparams": {n: [c[j + 1] for c in combos] for j, n in enumerate(names)},
    }


def random_search(
    n: int, space: Mapping[str, Any], seed: int = 0, *, seeds: Sequence[int] | None = None
) -> dict[str, Any]:
    """``n`` members, each hyperparameter drawn independently from ``space``.

    Args:
      n: the number of members (``>= 1``).
      space: name -> a :class:`Uniform`, :class:`LogUniform`, :class:`Integer` or
        :class:`Choice` (a list or tuple is a ``Choice``; any other value is fixed).
      seed: seeds the draws; also every member's model seed unless ``seeds`` is given
        (one initialisation and data order, so members differ only by hyperparameters).
      seeds: each member's model seed (length ``n``, or 1 to share one).

    Returns:
      ``{"seeds": [...], "hyperparams": {name: [...]}}``.

    Raises:
      TypeError: ``space`` is not a dict, ``seed`` not an int.
      ValueError: ``n < 1``, an empty ``space``, a name with no values to choose from
        (the message names it), a negative ``seed``, or ``seeds`` of another length.

    Example:
      >>> m = random_search(2, {"dropout": Uniform(0.0, 0.5)}, seed=1)
      >>> m["seeds"], len(m["hyperparams"]["dropout"])
      ([1, 1], 2)
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"random_search: `n` must be an int >= 1, got {n!r}")
    if not isinstance(space, Mapping):
        raise TypeError(
            f"random_search: `space` must be a dict {{name: space}}, got {type(space).__name__}"
        )
    if not space:
        raise ValueError("random_search: `space` is empty; name at least one hyperparameter")
    is_int = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not is_int or seed < 0:
        raise (ValueError if is_int else TypeError)(
            f"random_search: `seed` must be an int >= 0, got {seed!r}"
        )
    seed = int(seed)
    dims = {name: _space(name, value) for name, value in space.items()}
    rng = np.random.default_rng(seed)
    draws = {name: [dim.sample(rng) for _ in range(n)] for name, dim in dims.items()}
    member_seeds = [seed] * n if seeds is None else as_list(seeds)
    if len(member_seeds) == 1:
        member_seeds = member_seeds * n
    if len(member_seeds) != n:
        raise ValueError(f"random_search: `seeds` must have length {n} or 1, got {seeds!r}")
    return {"seeds": member_seeds, "hyperparams": draws}


def _space(name: str, value: Any) -> Space:
    if isinstance(value, Uniform | LogUniform | Integer | Choice):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(
                f"random_search: space[{name!r}] is an empty {type(value).__name__}; give at "
                "least one value"
            )
        return Choice(value)
    return Choice([value])


def as_list(values: Any) -> list:
    """``values`` as a list: a scalar is one value, an array its first axis.

    Example:
      >>> as_list(0.1), as_list((1, 2)), as_list(np.array([3, 4]))
      ([0.1], [1, 2], [3, 4])
    """
    if isinstance(values, np.ndarray):
        return values.tolist() if values.ndim else [values.item()]
    if isinstance(values, list | tuple | range):
        return list(values)
    return [values]


def zip_members(
    seeds: Sequence[int], hyperparams: Mapping[str, Any]
) -> tuple[list[int], dict[str, list]]:
    """Member lists of one length ``M`` (a list of length 1 is broadcast).

    Raises:
      ValueError: lists of other lengths, or an empty one (names the lengths); a
        negative seed.
      TypeError: ``hyperparams`` is not a mapping, a seed is not an int.

    Example:
      >>> zip_members([0, 1], {"learning_rate": [0.1]})
      ([0, 1], {'learning_rate': [0.1, 0.1]})
    """
    if not isinstance(hyperparams, Mapping):
        raise TypeError(
            "sweep: `hyperparams` must be a dict {name: [one value per member]}, got "
            f"{type(hyperparams).__name__}"
        )
    lists = {"seeds": as_list(seeds), **{n: as_list(v) for n, v in hyperparams.items()}}
    lengths = {n: len(v) for n, v in lists.items()}
    m = max(lengths.values())
    if min(lengths.values()) == 0 or any(k not in (1, m) for k in lengths.values()):
        raise ValueError(
            f"sweep: seeds and swept hyperparameters must have the same length (or 1), got "
            f"lengths {lengths}"
        )
    full = {n: v * m if len(v) == 1 else v for n, v in lists.items()}
    seed_list = [check_count(f"seeds[{i}]", s) for i, s in enumerate(full.pop("seeds"))]
    return seed_list, full


def keywords(fn: Callable, *, skip: int = 0) -> set[str] | None:
    """The keyword names ``fn`` takes (after ``skip`` positional ones), None for ``**kw``.

    Example:
      >>> sorted(keywords(lambda rngs, width, *, dropout=0.0: None, skip=1))
      ['dropout', 'width']
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: accept anything
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params[skip:] if p.kind in kinds}


def route(
    names: Sequence[str], factory: Callable, model_fn: Callable
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Splits hyperparameter names into ``(optimizer names, model_fn names)``.

    Raises:
      ValueError: a name that neither the optimizer factory nor ``model_fn`` (after its
        ``rngs`` argument) takes, or that both take; the message names it, lists what
        each takes and says how ``model_fn`` is called.

    Example:
      >>> import optax
      >>> route(["learning_rate", "width"], optax.sgd, lambda rngs, width: None)
      (('learning_rate',), ('width',))
    """
    opt, model = keywords(factory), keywords(model_fn, skip=1)
    to_opt, to_model = [], []
    for name in names:
        named_opt = opt is not None and name in opt
        named_model = model is not None and name in model
        if named_opt and named_model:
            raise ValueError(
                f"sweep: hyperparameter {name!r} is taken by both the optimizer factory and "
                "model_fn; rename the model_fn argument"
            )
        if named_opt or (not named_model and opt is None):
            to_opt.append(name)
        elif named_model or model is None:
            to_model.append(name)
        else:
            raise ValueError(
                f"sweep: hyperparameter {name!r} is taken neither by the optimizer factory "
                f"{getattr(factory, '__name__', factory)!r} (it takes {sorted(opt or ())}) nor "
                f"by model_fn (after rngs it takes {sorted(model or ())}); {MODEL_FN_CALL}. "
                "The arguments of sweep itself (optimizer, batch_size, epochs, ...) are "
                "shared by every member: run one sweep per value"
            )
    return tuple(sorted(to_opt)), tuple(sorted(to_model))


__all__ = [
    "Choice",
    "Integer",
    "LogUniform",
    "Space",
    "Uniform",
    "as_list",
    "check_numeric",
    "grid",
    "groups",
    "hashable",
    "keywords",
    "random_search",
    "route",
    "zip_members",
]
