"""The direction a monitored metric improves in: ``mode="min"``, ``"max"`` or ``"auto"``.

Private; :mod:`nnjax.train.monitor` re-exports :data:`MODES`, :func:`check_mode` and
:func:`auto_mode`, which :class:`~nnjax.train.monitor.Monitor` applies to
``mode="auto"``.

Example:
  >>> auto_mode("val_accuracy"), auto_mode("val_loss")
  ('max', 'min')
"""

from __future__ import annotations

from typing import Any

from nnjax import losses
from nnjax._metrics_functions import ACCURACY_ALIASES, TOP_K_ALIASES

MODES = ("min", "max", "auto")
"""The directions a monitored metric can be watched in."""


def check_mode(owner: str, mode: Any) -> str:
    """``mode`` if it is one of :data:`MODES`; a ``ValueError`` naming ``owner`` otherwise.

    Example:
      >>> check_mode("EarlyStopping", "max")
      'max'
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{owner}: `mode` must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


_HIGHER = frozenset(
    {"accuracy", "acc", "auc", "f1", "precision", "recall", "r2", "top_k_accuracy"}
    | {"cosine_similarity", *ACCURACY_ALIASES, *TOP_K_ALIASES}
)
_LOWER = frozenset({"loss", *losses._REGISTRY}) - _HIGHER
_AVERAGES = ("_binary", "_macro", "_micro")


def auto_mode(monitor: str, default: str | None = None) -> str:
    """The direction of improvement ``mode="auto"`` gives the logged metric ``monitor``.

    A logged name is ``[val_][<output>_]<metric>``, so the name's end decides (after
    an averaging suffix such as ``_macro``): ``"max"`` when it is ``accuracy`` (or
    ``acc``, Keras's ``binary_accuracy``, ``sparse_categorical_accuracy``...,
    ``top_k_accuracy``), ``auc``, ``f1``, ``precision``, ``recall``, ``r2`` or
    ``cosine_similarity`` (the metric logs the similarity); ``"min"`` when it is
    ``loss`` or the name of a loss (``mse``, ``mae``, ``huber``...). An output named
    ``accel`` thus logs ``val_accel_loss``, which is minimized. Any other name (a
    metric function of your own, a value a ``loss_fn`` logs) has no known direction:
    as Keras, pass ``mode="max"`` or ``mode="min"``.

    Args:
      monitor: the log key, e.g. ``"val_top_k_accuracy"`` or ``"val_cls_loss"``.
      default: what an unknown name gets; ``None``: it raises.

    Returns:
      ``"max"`` or ``"min"`` (or ``default``).

    Raises:
      ValueError: ``monitor`` is no name of a loss or of a metric nnjax knows, and no
        ``default`` is given; the message names it and asks for ``mode``.

    Example:
      >>> auto_mode("val_top_k_accuracy"), auto_mode("f1_macro"), auto_mode("val_accel_loss")
      ('max', 'max', 'min')
      >>> auto_mode("val_psnr")
      Traceback (most recent call last):
      ...
      ValueError: mode='auto' cannot tell whether 'val_psnr' should be maximised or minimised: ...
    """
    name = monitor.lower()
    name = next((name[: -len(a)] for a in _AVERAGES if name.endswith(a) and name != a[1:]), name)
    for known, mode in ((_HIGHER, "max"), (_LOWER, "min")):
        if any(name == k or name.endswith("_" + k) for k in known):
            return mode
    if default is not None:
        return default
    raise ValueError(
        f"mode='auto' cannot tell whether {monitor!r} should be maximised or minimised: "
        "it is not the name of a loss or of a metric that nnjax knows (check its spelling; "
        "a metric function of your own or a value that loss_fn logs has no known "
        "direction); pass mode='max' for a score (IoU, PSNR, Dice...) or mode='min' for "
        "an error"
    )


__all__ = ["MODES", "auto_mode", "check_mode"]
