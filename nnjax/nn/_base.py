"""The bridge between functional parameter dicts and Flax NNX modules (private)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax._deprecation import rename_kwargs
from nnjax.functional import _bfloat16
from nnjax.nn import _config, _validate
from nnjax.nn._config import RECORDED, class_name

M = TypeVar("M", bound=type)


def recorded(cls: M) -> M:
    """Class decorator: remembers each instance's constructor arguments for ``nnjax.save``.

    The call is kept as JSON in a private static attribute (``nnjax/nn/_config.py``:
    it survives ``nnx.merge``, ``nnx.clone`` and ``copy.deepcopy``). The outermost call
    wins (a subclass calling ``super().__init__`` records once, with its own class), and
    the class is registered under its name for ``nnjax.load``. Subclasses of
    :class:`FunctionalModule` are recorded without the decorator.

    Example:
      >>> @recorded
      ... class Scale(nnx.Module):
      ...     def __init__(self, factor: float):
      ...         self.factor = factor
      >>> _config.module_call(Scale(2.0))["kwargs"]
      {'factor': 2.0}
    """
    init = cls.__init__  # type: ignore[misc]
    renamed: Mapping[str, str] = getattr(cls, "_renamed_args", {})
    params = inspect.signature(init).parameters
    rngs = params.get("rngs")
    rngs_required = rngs is not None and rngs.default is rngs.empty
    any_keyword = any(p.kind is p.VAR_KEYWORD for p in params.values())

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs = rename_kwargs(cls.__qualname__, renamed, kwargs)
        # a misspelt keyword is reported first (by the call below), then a wrong `rngs`
        if "rngs" in kwargs and (any_keyword or kwargs.keys() <= params.keys()):
            check_rngs(type(self).__qualname__, kwargs["rngs"], required=rngs_required)
        if _config.ATTRIBUTE not in vars(self):  # the outermost call wins
            built = type(self)
            call = _config.snapshot(class_name(built), built.__init__, args, kwargs)
            setattr(self, _config.ATTRIBUTE, call)
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    RECORDED[class_name(cls)] = cls
    return cls


def check_rngs(owner: str, rngs: Any, *, required: bool = True) -> None:
    """Raises a ``TypeError`` naming ``rngs`` unless it fits the layer.

    A layer that draws its parameters needs an ``nnx.Rngs`` (Flax's own error for
    ``rngs=0`` is an ``AttributeError`` of ``int``); one that only may draw (``Dropout``,
    layers without parameters) also takes an ``nnx.RngStream`` or ``None``.

    Example:
      >>> check_rngs("Dense", nnx.Rngs(0))
      >>> check_rngs("Dense", 0)
      Traceback (most recent call last):
      TypeError: Dense: `rngs` must be an nnx.Rngs (e.g. rngs=nnx.Rngs(0)), got 0 (int)
    """
    allowed: tuple[type, ...] = (nnx.Rngs,) if required else (nnx.Rngs, nnx.RngStream)
    if (rngs is None and not required) or isinstance(rngs, allowed):
        return
    kinds = "an nnx.Rngs" if required else "an nnx.Rngs, an nnx.RngStream or None"
    shown = repr(rngs)
    shown = f"{shown} ({type(rngs).__name__})" if len(shown) < 60 else f"an {type(rngs).__name__}"
    raise TypeError(f"{owner}: `rngs` must be {kinds} (e.g. rngs=nnx.Rngs(0)), got {shown}")


def declared_attributes(cls: type) -> frozenset[str]:
    """The attribute names annotated on ``cls`` and its bases."""
    return frozenset(
        name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})
    )


class FunctionalModule(nnx.Module):
    """A module that holds one functional parameter dict as ``nnx.Param`` attributes.

    ``nnx.state(module, nnx.Param)`` as a pure dict is then exactly the dict that the
    matching ``F.<op>_init`` returned, and :meth:`params` hands it back to ``F.<op>``.
    Running statistics (batch norm) are held the same way as ``nnx.BatchStat`` and
    handed back by :meth:`stats`. Each subclass declares the attributes its parameter
    dict fills (``kernel: nnx.Param``), so type checkers and readers see them.
    """

    _param_names: tuple[str, ...] = ()
    _stat_names: tuple[str, ...] = ()
    #: Constructor keywords renamed in this release, old -> new; the old name still works
    #: for one release with a ``DeprecationWarning`` (see :func:`recorded`).
    _renamed_args: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        recorded(cls)

    def _set_params(
        self, params: Mapping[str, jax.Array], *, optional: tuple[str, ...] = ()
    ) -> None:
        """Holds ``params`` as ``nnx.Param`` attributes, each declared on the class.

        ``optional`` names (a bias a layer may go without) that ``params`` lacks are set
        to ``None``, so every declared attribute exists.
        """
        self._param_names = tuple(params)
        self._assign(params, nnx.Param, optional)

    def _set_stats(self, stats: Mapping[str, jax.Array]) -> None:
        self._stat_names = tuple(stats)
        self._assign(stats, nnx.BatchStat, ())

    def _assign(self, values: Mapping[str, Any], kind: Callable, optional: tuple) -> None:
        undeclared = sorted(set(values) - declared_attributes(type(self)))
        if undeclared:
            raise TypeError(
                f"{type(self).__name__} holds {undeclared} without declaring them: add "
                f"class annotations such as `{undeclared[0]}: nnx.Param`"
            )
        for name, value in values.items():
            setattr(self, name, kind(value))
        for name in optional:
            if name not in values:
                setattr(self, name, None)

    def params(self) -> dict[str, jax.Array]:
        """The functional parameter dict, as ``F.<op>`` takes it."""
        return {name: getattr(self, name)[...] for name in self._param_names}

    def stats(self) -> dict[str, jax.Array]:
        """The running statistics dict (empty for layers without any)."""
        return {name: getattr(self, name)[...] for name in self._stat_names}

    def _store_stats(self, stats: Mapping[str, jax.Array]) -> None:
        for name in self._stat_names:
            getattr(self, name)[...] = stats[name]


def check_dtypes(owner: str, param_dtype: Any, dtype: Any) -> None:
    """Raises ``TypeError`` naming ``owner`` unless both dtypes are floating.

    ``param_dtype`` must be a floating dtype (parameters are trained); the compute
    ``dtype`` may also be ``None`` (the input's dtype). Called by each layer's
    constructor, so ``Dense(..., dtype=jnp.int32)`` fails there, not at the first call.

    Example:
      >>> check_dtypes("Dense", jnp.float32, jnp.bfloat16)
      >>> check_dtypes("Dense", jnp.int32, None)
      Traceback (most recent call last):
      TypeError: Dense: `param_dtype` must be a floating dtype such as jnp.float32, got int32
    """
    _validate.float_dtype(owner, "param_dtype", param_dtype)
    _validate.float_dtype(owner, "dtype", dtype, allow_none=True)


def compute_dtype(x: jax.typing.ArrayLike, dtype: jnp.dtype | None) -> jax.Array:
    """Casts ``x`` to the module's compute dtype (mixed precision) when one is set.

    A float32 array goes to bfloat16 by :func:`nnjax.functional._bfloat16.to_bfloat16`
    (fast where the CPU emulates bfloat16; the values of ``astype``); anything else is
    converted by :func:`jax.numpy.asarray` (one rounding from NumPy's float64 too).
    """
    if dtype is None:
        return jnp.asarray(x)
    if isinstance(x, jax.Array) and x.dtype == jnp.float32 and jnp.dtype(dtype) == jnp.bfloat16:
        return _bfloat16.to_bfloat16(x)
    return jnp.asarray(x, dtype)
