"""PyTorch tensors read as NumPy arrays, without importing PyTorch (private).

``fit``, the functional ops, the losses and the metrics take a ``torch.Tensor``
wherever they take an array: read detached (``requires_grad`` ones too), copied to the
host from any device, bfloat16 ones as bfloat16 (ml_dtypes'). A tensor is recognised by
its type's module, so PyTorch stays an optional peer.

Example:
  >>> from_torch([0, 1])  # not a tensor: returned as it is
  [0, 1]
"""

from __future__ import annotations

import sys
from typing import Any

import jax.numpy as jnp


def from_torch(x: Any) -> Any:
    """A ``torch.Tensor`` as a NumPy array; anything else as it is.

    Args:
      x: anything; a ``torch.Tensor`` of any dtype (bfloat16 too) on any device.

    Returns:
      For a tensor, a NumPy array of its values and shape (dtype ``jnp.bfloat16`` for a
      bfloat16 tensor, else the matching NumPy dtype); else ``x`` itself.

    Example:
      >>> import numpy as np
      >>> from_torch(np.ones(2)).dtype  # a NumPy array is not a tensor
      dtype('float64')
    """
    if not type(x).__module__.startswith("torch") or not hasattr(x, "detach"):
        return x
    torch = sys.modules["torch"]
    x = x.detach().cpu()
    if x.dtype == torch.bfloat16:  # NumPy has no bfloat16: its bits, as ml_dtypes'
        return x.view(torch.int16).numpy().view(jnp.bfloat16)
    return x.numpy()


__all__ = ["from_torch"]
