"""Runs the docstring examples of every public nnjax module and the code of the guides.

* Modules: every module of the package whose dotted name has no part starting with
  ``_``, except those that ``tests/functional/test_docstrings.py`` already runs
  (``nnjax.functional`` and its submodules, and the base modules listed there).
  A new public module is picked up without editing this file; private modules with
  examples are listed in ``PRIVATE_MODULES``. The dozen whose examples train or compile
  several models (``SLOW_MODULES``) run under the ``slow`` marker.
* Guides: the ``pycon`` code blocks (``>>>`` prompts) of each page under
  ``docs/guides/`` and of ``docs/index.md`` run top to bottom as one doctest per page,
  so the documented snippets and their printed results stay true. They train small
  models (about a minute of CPU in all), so they are marked ``slow``: run them with
  ``python -m pytest -m slow tests/test_doctests.py``, next to the docs build.

Both run with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``, in a temporary working
directory (examples that write checkpoints leave nothing behind), and with
``jax_disable_most_optimizations``: the examples check results, not speed, and XLA
compiles them several times faster that way (restored after each test).

TODO (the lead empties this list): modules left out because their examples fail, with
the failure, for the module's owner to fix. Each name in ``LEFT_OUT`` must still be a
module; remove it once its examples pass.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib
import pkgutil
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax

LEFT_OUT: dict[str, str] = {}

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs" / "guides").glob("*.md")), ROOT / "docs" / "index.md"]
PYCON = re.compile(r"^```pycon\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Pages without runnable examples (the command-line guide shows shell sessions) are skipped.
GUIDES = [p for p in PAGES if PYCON.search(p.read_text(encoding="utf-8"))]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Run by tests/functional/test_docstrings.py (its MODULES list); not repeated here.
BASE_MODULES_TESTED_ELSEWHERE = {
    "nnjax.activations",
    "nnjax.initializers",
    "nnjax.losses",
    "nnjax.metrics",
}


def _public_modules() -> list[str]:
    names = ["nnjax"]
    for info in pkgutil.walk_packages(nnjax.__path__, "nnjax."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _tested_elsewhere(name: str) -> bool:
    return (
        name == "nnjax.functional"
        or name.startswith("nnjax.functional.")
        or name in BASE_MODULES_TESTED_ELSEWHERE
    )


PUBLIC = _public_modules()
#: Private modules whose docstrings have examples, run like the public ones.
PRIVATE_MODULES = [
    "nnjax._flat_draws",
    "nnjax._keras_order",
    "nnjax._metrics_binary",
    "nnjax._metrics_functions",
    "nnjax._output_losses",
    "nnjax._torch_tensors",
    "nnjax.nn._base",
    "nnjax.nn._config",
    "nnjax.nn._model_call",
    "nnjax.nn._validate",
    "nnjax.train._canonical",
    "nnjax.train._monitor_mode",
    "nnjax.train._sweep_groups",
]
MODULES = [n for n in PUBLIC + PRIVATE_MODULES if not _tested_elsewhere(n) and n not in LEFT_OUT]
#: Modules whose examples need an optional package (an extra that [dev] installs): skipped
#: where it is missing, e.g. on a device image with its own Python.
NEEDS = {"nnjax.train.loggers": "tensorboardX"}
#: Guide pages whose code needs an optional package, skipped likewise where it is missing.
PAGE_NEEDS = {"porting": "torch"}
#: Modules whose examples train or compile several models (5-15 s each in a fresh venv
#: on 2 cores, 2026-12-01; from 0.7 s each since 2026-12-07, so that the default run stays
#: under 10 minutes): they run in the slow step with the guides.
SLOW_MODULES = {
    "nnjax._flat_draws",
    "nnjax._metrics_functions",
    "nnjax.classic.backprop",
    "nnjax.classic.echo_state",
    "nnjax.classic.hopfield",
    "nnjax.classic.logic_gates",
    "nnjax.classic.markov",
    "nnjax.classic.perceptron",
    "nnjax.data.digits",
    "nnjax.io",
    "nnjax.nn",
    "nnjax.nn.attention",
    "nnjax.nn.autoencoder",
    "nnjax.nn.bidirectional",
    "nnjax.nn.cnn",
    "nnjax.nn.conv_nd",
    "nnjax.nn.norms",
    "nnjax.nn.pooling_nd",
    "nnjax.nn.positional",
    "nnjax.nn.recurrent",
    "nnjax.nn.sequence",
    "nnjax.nn.summary",
    "nnjax.nn.wide_deep",
    "nnjax.train.caches",
    "nnjax.train.callbacks",
    "nnjax.train.compiled",
    "nnjax.train.dispatch_choices",
    "nnjax.train.ensemble",
    "nnjax.train.evaluate",
    "nnjax.train.loggers",
    "nnjax.train.loop",
    "nnjax.train.mc_dropout",
    "nnjax.train.prediction",
    "nnjax.train.regularization",
    "nnjax.train.step",
    "nnjax.train.sweep",
}


pytestmark = pytest.mark.usefixtures("fast_compiles")


def _globs(module=None) -> dict:
    return {"jax": jax, "jnp": jnp, "np": np, **(vars(module) if module else {})}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODULES else n for n in MODULES]
)
def test_module_examples(name, tmp_path, monkeypatch):
    """Every example in the module's docstrings passes."""
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, globs=_globs(module), optionflags=FLAGS, verbose=False, report=True
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_left_out_modules_exist():
    """The TODO list and the slow list name only modules that exist (no stale entries)."""
    stale = sorted((set(LEFT_OUT) | SLOW_MODULES) - set(PUBLIC) - set(PRIVATE_MODULES))
    assert not stale, f"LEFT_OUT or SLOW_MODULES name modules that are not run: {stale}"


def _guide_examples(path: pathlib.Path) -> doctest.DocTest:
    """One doctest from the page's ``pycon`` blocks, keeping their line numbers."""
    text = path.read_text(encoding="utf-8")
    lines = [""] * text.count("\n")
    for block in PYCON.finditer(text):
        first = text.count("\n", 0, block.start(1))
        for i, line in enumerate(block.group(1).splitlines()):
            lines[first + i] = line
    source = "\n".join(lines) + "\n"
    return doctest.DocTestParser().get_doctest(source, _globs(), path.stem, str(path), 0)


@pytest.mark.slow
@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_guide_examples(path, tmp_path, monkeypatch):
    """The page's ``pycon`` blocks run top to bottom with the printed results."""
    if path.stem in PAGE_NEEDS:
        pytest.importorskip(PAGE_NEEDS[path.stem])
    monkeypatch.chdir(tmp_path)
    test = _guide_examples(path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {path}"
