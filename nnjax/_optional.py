"""Optional dependencies: import them on first use, or fail with one line naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional module, as ``pip install "nnjax[<extra>]"``.
EXTRAS = {
    "tqdm": "train",
    "matplotlib": "train",
    "tensorboardX": "train",
    "sklearn": "examples",
    "pandas": "examples",
    "grain": "grain",
}


def require(module: str, feature: str) -> ModuleType:
    """Imports ``module``, or raises ``ImportError`` saying which extra provides it.

    Args:
      module: the module to import, e.g. ``"tqdm.auto"``; its top-level package picks
        the extra from :data:`EXTRAS`.
      feature: what needs it, for the message, e.g. ``"the TensorBoard callback"``.

    Returns:
      The imported module.

    Raises:
      ImportError: one line naming ``feature``, the missing package and the
        ``pip install`` command that brings it.

    Example:
      >>> require("json", "this example").__name__
      'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        how = f'pip install "nnjax[{extra}]"' if extra else f"pip install {top}"
        raise ImportError(
            f"{feature} needs the package {top!r}, which is not installed: {how}"
        ) from err
