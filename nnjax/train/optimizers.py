"""Optax optimizers by name (``"adam"``, ``"sgd"``, ...)."""

from __future__ import annotations

import functools

import optax

_OPTIMIZERS = {
    "adabelief": optax.adabelief,
    "adagrad": optax.adagrad,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "lamb": optax.lamb,
    "lion": optax.lion,
    "nadam": optax.nadam,
    "rmsprop": optax.rmsprop,
    "sgd": optax.sgd,
}


@functools.lru_cache(maxsize=64)
def _named(name: str, learning_rate: float) -> optax.GradientTransformation:
    return _OPTIMIZERS[name](learning_rate)


def get_optimizer(
    optimizer: str | optax.GradientTransformation, learning_rate: float = 1e-3
) -> optax.GradientTransformation:
    """``optimizer`` itself, or the Optax optimizer of that name with ``learning_rate``.

    Named optimizers are memoised, so two ``fit`` calls with ``optimizer="adam"`` share
    one transformation and therefore one compiled step.

    Raises:
      ValueError: an unknown name (the message lists the known ones).

    Example:
      >>> get_optimizer("sgd", 0.1) is get_optimizer("sgd", 0.1)
      True
    """
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    name = str(optimizer).lower()
    if name not in _OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; known: {', '.join(sorted(_OPTIMIZERS))}, "
            "or pass an optax.GradientTransformation"
        )
    return _named(name, float(learning_rate))


__all__ = ["get_optimizer"]
