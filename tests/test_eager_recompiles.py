"""Eager calls compile once per shape: the docstring examples of the public API, run twice.

An eager call that builds a new closure for ``lax.scan`` (or any ``jit``) at every call
compiles again each time (``F.lstm`` did: 0.1 s a call). Each public function's and
class's examples run once, then again with ``jax_log_compiles``: the second run must
compile nothing. Examples that define their own functions (``lambda``, ``def``, or a
``jax.jit``/``grad``/``vmap`` of one) are skipped, as a new function is a new program,
and so are the functions that build, export or load a program (``BUILDS_A_PROGRAM``).
"""

from __future__ import annotations

import doctest
import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

MODULES = (
    "nnjax.functional", "nnjax.nn", "nnjax.classic", "nnjax.losses", "nnjax.metrics",
    "nnjax.activations", "nnjax.initializers", "nnjax.train", "nnjax.data", "nnjax.io",
)  # fmt: skip
# Functions that build, export or load a program: each call is a new program by design.
BUILDS_A_PROGRAM = {
    "nnjax.train.jit_train_step",
    "nnjax.train.scan_steps",
    "nnjax.io.export",
    "nnjax.io.load_exported",
}
DEFINES_A_FUNCTION = re.compile(
    r"\blambda\b|^\s*def |\bjax\.(jit|grad|vmap|value_and_grad)\(|nnx\.jit", re.MULTILINE
)


def _examples() -> list[tuple[str, doctest.DocTest]]:
    finder = doctest.DocTestFinder(recurse=False)
    found = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in sorted(getattr(module, "__all__", ())):
            obj = getattr(module, name)
            if not callable(obj) or not hasattr(obj, "__module__"):
                continue
            home = vars(importlib.import_module(obj.__module__))
            globs = {**home, "jax": jax, "jnp": jnp, "np": np}
            for test in finder.find(obj, f"{module_name}.{name}", globs=globs):
                source = "\n".join(e.source for e in test.examples)
                if test.name in BUILDS_A_PROGRAM or DEFINES_A_FUNCTION.search(source):
                    continue
                if test.examples:
                    found.append((test.name, test))
    return found


def _run(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    copy = doctest.DocTest(test.examples, dict(test.globs), test.name, test.filename,
                           test.lineno, test.docstring)  # fmt: skip
    failures = []
    runner.run(copy, out=failures.append)
    assert runner.failures == 0, "".join(failures)


EXAMPLES = _examples()


@pytest.mark.slow
@pytest.mark.usefixtures("fast_compiles")
@pytest.mark.parametrize("name,test", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_a_second_eager_run_compiles_nothing(name, test, tmp_path, monkeypatch, logged_compiles):
    monkeypatch.chdir(tmp_path)  # examples that write files leave nothing behind
    _run(test)
    with logged_compiles() as compiled:
        _run(test)
    assert compiled == [], f"{name}: the second run compiled {compiled}"


def test_the_examples_are_found():
    names = {n for n, _ in EXAMPLES}
    assert {"nnjax.functional.lstm", "nnjax.classic.esn_states", "nnjax.train.fit"} <= names
    assert not names & BUILDS_A_PROGRAM
    assert np.all([not DEFINES_A_FUNCTION.search(s) for s in ("F.lstm(p, x)", "y = f(x)")])
    assert DEFINES_A_FUNCTION.search("f = jax.jit(lambda x: x)")
    assert DEFINES_A_FUNCTION.search("y = 1\ndef f(x):\n    return x")
