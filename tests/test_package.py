"""The package's shape: layering of imports, lazy subpackages, curated public names."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import nnjax

ROOT = Path(nnjax.__file__).resolve().parent

# DESIGN.md's house, bottom to top; a module may import only its own layer or lower ones.
LAYERS = {
    "base": 0,  # activations, initializers, losses, metrics, errors, _checks, _registry
    "data": 0,  # host-side NumPy, beside the base
    "distributed": 0,  # process setup on jax alone: knows no models and no training
    "functional": 1,
    "classic": 2,
    "nn": 3,
    "io": 4,
    "train": 5,
    "cli": 6,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in (
        "activations",
        "initializers",
        "losses",
        "metrics",
        "_metrics_streaming",
        "_metrics_r2",
        "_metrics_auc",
        "_metrics_weighted",
        "_loss_checks",
        "_losses_keras",
        "_output_losses",
        "_checks",
        "_registry",
        "errors",
        "_optional",
        "_deprecation",
        "_keras_order",
        "_metrics_binary",
        "_metrics_functions",
        "_hardware",
        "_flat_draws",
        "_torch_tensors",
    ):
        return "base"
    return "cli" if parts[1].startswith("_cli") or parts[1] == "__main__" else parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _nnjax_imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "nnjax":
                yield from (f"nnjax.{a.name}" for a in node.names)
            elif node.module.startswith("nnjax."):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("nnjax."))


def _sources():
    return [p for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_downward_only(path):
    here = _layer(_module_name(path))
    for target in _nnjax_imports(path):
        there = _layer(target)
        if here == "data":
            assert there == "data", f"{path.name}: nnjax.data must not import {target}"
        else:
            assert LAYERS[there] <= LAYERS[here], f"{path.name} ({here}) imports {target} ({there})"


def test_data_does_not_import_jax():
    # `import nnjax` loads the functional core (and so JAX), so check the data package's
    # own imports rather than sys.modules.
    for path in (ROOT / "data").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        } | {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not names & {"jax", "flax", "optax", "chex"}, (path.name, names)


def test_upper_layers_load_lazily():
    code = "import sys, nnjax; print('flax' in sys.modules); nnjax.nn; print('flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nnjax.nope


@pytest.mark.parametrize(
    "package",
    ["nnjax.functional", "nnjax.nn", "nnjax.io", "nnjax.train", "nnjax.data", "nnjax.classic"],
)
def test_all_names_exist_and_are_documented(package):
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, type(sys)):
            assert getattr(obj, "__doc__", None), f"{package}.{name} has no docstring"


def test_design_names_exist():
    import nnjax.functional as F
    from nnjax import nn, train

    for name in (
        "dense conv2d max_pool2d avg_pool2d dropout batch_norm layer_norm rnn_cell lstm_cell "
        "gru_cell rnn lstm LSTMState"
    ).split():
        assert hasattr(F, name), name
    for name in (
        "Dense Conv2D MaxPool2D AvgPool2D Dropout BatchNorm LayerNorm Flatten RNN LSTM GRU "
        "Sequential MLP CNN Autoencoder WideAndDeep summary"
    ).split():
        assert hasattr(nn, name), name
    for name in ("fit", "evaluate", "predict", "sweep", "per_example_grads", "History"):
        assert hasattr(train, name), name
