"""Shared fixture of the example tests: import ``examples/<name>.py`` as a module."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def load(monkeypatch):
    """Imports ``examples/<name>.py`` as a module (``examples/`` on the path for _common)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def _load(name):
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    return _load
