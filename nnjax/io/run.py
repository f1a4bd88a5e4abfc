"""The preprocessing a run folder records, so a reloaded model works on raw data.

A run folder of ``nnjax train`` holds ``config.json`` (the command's settings),
``preprocessing.json`` (this module) and ``checkpoint/`` (step folders).
:class:`Preprocessing` turns raw inputs, as the dataset gives them, into the model's
inputs, and model outputs into class names.

Example:
  >>> import numpy as np
  >>> prep = Preprocessing(input_shape=(2, 2), scale=255.0, flatten=True)
  >>> prep(np.full((1, 2, 2), 255, np.uint8)).tolist()
  [[1.0, 1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nnjax.io import layout
from nnjax.io.errors import CheckpointError

FILE = "preprocessing.json"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Raw inputs ``(N, *input_shape)`` to model inputs, outputs to class names.

    Attributes:
      input_shape: the shape of one raw example, e.g. ``(28, 28)``.
      scale: integer inputs are divided by it (``255.0`` maps pixels to ``[0, 1]``);
        ``None`` leaves the values as they are.
      flatten: reshape each example to one axis, ``(N, prod(input_shape))``.
      class_names: names of the classes in label order, or ``None`` (regression).

    Example:
      >>> pre = Preprocessing((2, 2), scale=255.0, flatten=True, class_names=("no", "yes"))
      >>> pre(np.full((2, 2), 255, np.uint8)).tolist()
      [[1.0, 1.0, 1.0, 1.0]]
      >>> pre.decode(np.array([[0.2, 0.8]]))
      ['yes']
      >>> Preprocessing.from_dict(pre.to_dict()) == pre
      True
    """

    input_shape: tuple[int, ...]
    scale: float | None = None
    flatten: bool = False
    class_names: tuple[str, ...] | None = None

    def __call__(self, x: Any) -> np.ndarray:
        """Maps raw ``(N, *input_shape)`` (or one example ``input_shape``) to float32.

        An empty input, ``(0, *input_shape)``, gives an empty result of the model's
        input shape (``(0, prod(input_shape))`` with ``flatten``).

        Raises:
          ValueError: the inputs do not have ``input_shape`` (names both shapes).
        """
        x = np.asarray(x)
        if x.shape == tuple(self.input_shape):
            x = x[None]
        if x.shape[1:] != tuple(self.input_shape):
            raise ValueError(
                f"inputs have shape {x.shape}; this model takes (N, *{tuple(self.input_shape)})"
            )
        out = x.astype(np.float32)
        if self.scale and np.issubdtype(x.dtype, np.integer):
            out = out / np.float32(self.scale)
        if self.flatten:  # `-1` cannot be inferred for 0 rows: name the size
            return out.reshape(len(out), int(np.prod(self.input_shape)))
        return out

    def decode(self, outputs: Any) -> list[str]:
        """Class names of the largest output per row of ``outputs (N, classes)``."""
        if self.class_names is None:
            raise ValueError("this run is a regression: its outputs have no class names")
        return [self.class_names[int(i)] for i in np.argmax(np.asarray(outputs), axis=-1)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (with its format version)."""
        return {"format": "nnjax.preprocessing", "version": VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Reads :meth:`to_dict`'s form.

        Raises:
          ValueError: a format version newer than this nnjax reads.
        """
        if data.get("version", VERSION) > VERSION:
            raise ValueError(
                f"format version {data['version']} is newer than this nnjax reads ({VERSION})"
            )
        names = data.get("class_names")
        return cls(
            input_shape=tuple(int(n) for n in data["input_shape"]),
            scale=None if data.get("scale") is None else float(data["scale"]),
            flatten=bool(data.get("flatten", False)),
            class_names=None if names is None else tuple(str(n) for n in names),
        )


class Run(NamedTuple):
    """What :func:`nnjax.load` returns for a run folder: ``model, preprocessing = ...``.

    Example:
      >>> model, preprocessing = Run("a model", Preprocessing((28, 28)))
      >>> preprocessing.input_shape
      (28, 28)
    """

    model: Any
    preprocessing: Preprocessing


def is_run_folder(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is a run folder of ``nnjax train``."""
    path = Path(directory)
    return (path / "config.json").is_file() and (path / "checkpoint").is_dir()


def read_preprocessing(directory: str | os.PathLike) -> Preprocessing:
    """The run folder's recorded preprocessing.

    Raises:
      CheckpointError: the file is missing or garbled (one line naming it).
    """
    path = Path(directory).absolute() / FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a run of an older nnjax?)")
    data = layout.read_json(path)
    try:
        if not isinstance(data, dict):
            raise TypeError("a JSON object")
        return Preprocessing.from_dict(data)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: garbled (no valid {err})") from None


__all__ = ["FILE", "Preprocessing", "Run", "is_run_folder", "read_preprocessing"]
