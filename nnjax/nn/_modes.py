"""Training and inference modes of a Flax NNX model, for compiled programs (private).

``fit``'s train step runs a model in training mode (dropout on, batch statistics),
``evaluate``, ``predict`` and ``nnjax.export`` in inference mode, whatever mode the model
was left in; ``mc_dropout_predict`` keeps dropout on with the running statistics. Each
takes a view (:func:`view_in_mode`); the model itself keeps its mode.
"""

from __future__ import annotations

from flax import nnx


def view_in_mode(model: nnx.Module, **attributes: bool) -> nnx.Module:
    """``nnx.view(model, **attributes)`` that reaches modules of your own too.

    ``nnx.view`` sets the modules that define ``set_view`` (nnjax's, Flax's ``Dropout``
    and ``BatchNorm``: their own rule); a module of your own without one that keeps a
    ``deterministic`` or ``use_running_average`` attribute follows
    ``model.train()``/``model.eval()`` (``set_attributes``, NNX's older convention), and
    gets it set in the view too (a read-only property is left alone). ``model`` itself
    keeps its mode.

    Args:
      model: any Flax NNX module.
      **attributes: e.g. ``deterministic=True, use_running_average=True``; names that
        no module has are ignored.

    Returns:
      The view: a module sharing ``model``'s arrays.

    Example:
      >>> from flax import nnx
      >>> class Noise(nnx.Module):  # no set_view: model.eval() sets the attribute
      ...     def __init__(self):
      ...         self.deterministic = False
      >>> view_in_mode(Noise(), deterministic=True).deterministic
      True
    """
    view = nnx.view(model, raise_if_not_found=False, **attributes)
    for _, module in nnx.iter_modules(view):
        if hasattr(module, "set_view"):
            continue  # its own rule, which nnx.view applied
        for name, value in attributes.items():
            if hasattr(module, name):
                try:
                    setattr(module, name, value)
                except AttributeError:  # a read-only property: not a mode attribute
                    pass
    return view


__all__ = ["view_in_mode"]
