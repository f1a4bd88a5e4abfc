"""What a non-finite training loss came from, when the inputs tell (read after it).

``fit`` stops at a NaN or infinite loss (:class:`nnjax.train.engine.NonFiniteLossError`,
whose default advice is to lower the learning rate or clip gradients). Two causes lie
in the inputs instead, and :func:`input_cause` names them by scanning an in-memory
source (iterables are not scanned):

* floating inputs holding NaN or inf (:func:`nnjax.train.data.nonfinite_input`);
* integer inputs outside ``[0, V)`` of the model's largest ``nn.Embedding``: under
  ``jax.jit`` such an id looks up a row of NaN (``F.embedding``), where PyTorch would
  raise an index error. Which integer inputs are token ids is not known (a year or a
  count may be another input), so this one is offered beside the usual advice.

Example:
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> from nnjax.train.data import ArraySource
  >>> ids = np.array([[1, 2], [3, 12]], np.int32)
  >>> source = ArraySource(ids, np.zeros(2), batch_size=2)
  >>> print(input_cause(nn.Embedding(10, 4, rngs=nnx.Rngs(0)), source).split("; or, ")[1][:50])
  if x (example 1) holds token ids: it holds 12, out
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import nnx

from nnjax import nn
from nnjax.train import data


def input_cause(model: nnx.Module, source: Any) -> str | None:
    """The inputs' part in a non-finite loss, ending the error's message; or ``None``.

    Args:
      model: the model ``fit`` trained.
      source: its training source; only an in-memory one (``ArraySource``) is scanned.

    Returns:
      Where the inputs hold NaN or inf; else the usual advice and where integer inputs
      leave the range of the model's largest ``nn.Embedding``; ``None`` when neither.
    """
    where = data.nonfinite_input(source)
    if where is not None:
        return f"the training inputs {where} hold NaN or inf: clean the data"
    vocab = max(
        (m.num_embeddings for _, m in nnx.iter_graph(model) if isinstance(m, nn.Embedding)),
        default=None,
    )
    found = None if vocab is None else _outside(source, vocab)
    if found is None:
        return None
    where, value = found  # an integer input may be no token ids: the usual advice first
    return (
        f"lower the learning rate or clip gradients; or, if {where} holds token ids: it "
        f"holds {value}, outside [0, {vocab}), the rows of the model's Embedding, and an id "
        "outside its table looks up a row of NaN under jit (keep ids below num_embeddings)"
    )


def _outside(source: Any, vocab: int, chunk: int = 65536) -> tuple[str, int] | None:
    """``(where, value)``: an in-memory source's integer input outside ``[0, vocab)``.

    Reads memory-mapped inputs ``chunk`` rows at a time.
    """
    if not isinstance(source, data.ArraySource):
        return None
    for path, leaf in jax.tree_util.tree_flatten_with_path(source.x)[0]:
        if not np.issubdtype(leaf.dtype, np.integer):
            continue
        for start in range(0, len(leaf), chunk):
            rows = np.asarray(leaf[start : start + chunk])
            rows = rows.reshape(len(rows), -1)
            outside = (rows < 0) | (rows >= vocab)
            bad = np.flatnonzero(outside.any(axis=1))
            if bad.size:
                value = int(rows[bad[0]][outside[bad[0]]][0])
                return f"x{jax.tree_util.keystr(path)} (example {start + int(bad[0])})", value
    return None
