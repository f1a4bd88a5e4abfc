"""Runs the examples in the docstrings of the functional core and its helpers (doctest)."""

import doctest
import importlib
import inspect
import pkgutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional

FUNCTIONAL = [
    info.name
    for info in pkgutil.iter_modules(nnjax.functional.__path__, "nnjax.functional.")
    if not info.name.rsplit(".", 1)[-1].startswith("_")
]
MODULES = [
    "nnjax.functional",
    *FUNCTIONAL,
    "nnjax.activations",
    "nnjax.initializers",
    "nnjax.losses",
    "nnjax.metrics",
    "nnjax._metrics_streaming",
    "nnjax._metrics_auc",
    "nnjax._metrics_r2",
    # Private modules whose rules and figures are documented with examples.
    "nnjax.functional._conv_formulations",
    "nnjax.functional._conv_compiler",
    "nnjax.functional._conv_canonical",
    "nnjax.functional._conv_taps",
    "nnjax.functional._conv_depth",
    "nnjax.functional._conv_subpixel",
    "nnjax.functional._bfloat16",
    "nnjax.functional._bfloat16_dot",
    "nnjax.functional._small_loop_dots",
    "nnjax.functional._pool_formulations",
    "nnjax.functional._padding",
    "nnjax.functional._pool_padding",
    "nnjax.functional._forward_only",
    "nnjax.functional._scoped",
    "nnjax.functional._eager",
    "nnjax.functional._lstm_scan",
    "nnjax.functional._gru_scan",
    "nnjax.functional._masked_scan",
    "nnjax.functional._conv_args",
    "nnjax.functional._conv_transpose_pads",
    "nnjax.functional._recurrent_carry",
    "nnjax.functional._recurrent_init",
    "nnjax.functional._sequence_checks",
    "nnjax.functional._utils",
    "nnjax.functional._reading",
    "nnjax._checks",
    "nnjax._hardware",
]


#: Modules whose examples compile many ops (0.7 s or more each on 2 loaded CPU cores,
#: ``--durations=0``, 2026-12-07): they run in the slow step, so that the default run
#: stays under 10 minutes; the other modules run by default.
SLOW = {
    "nnjax.activations",
    "nnjax.functional",
    "nnjax.functional._conv_taps",
    "nnjax.functional._lstm_scan",
    "nnjax.functional.attention",
    "nnjax.functional.bidirectional_rnn",
    "nnjax.functional.conv",
    "nnjax.functional.conv_transpose",
    "nnjax.functional.embed",
    "nnjax.functional.pooling",
    "nnjax.functional.positional",
    "nnjax.functional.recurrent",
    "nnjax.functional.sequence",
    "nnjax.functional.transformer",
    "nnjax.initializers",
    "nnjax.losses",
    "nnjax.metrics",
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODULES]
)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    globs = {"jax": jax, "jnp": jnp, "np": np, **vars(module)}
    result = doctest.testmod(
        module,
        globs=globs,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        verbose=False,
        report=True,
    )
    assert result.attempted > 0, f"no docstring examples found in {name}"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_every_functional_op_has_an_example():
    functions = [getattr(nnjax.functional, name) for name in nnjax.functional.__all__]
    missing = [
        f.__name__ for f in functions if inspect.isfunction(f) and ">>>" not in (f.__doc__ or "")
    ]
    assert not missing, f"public functions without a docstring example: {missing}"


def test_slow_modules_exist():
    """The slow list names only modules that are run (no stale entries)."""
    stale = sorted(SLOW - set(MODULES))
    assert not stale, f"SLOW names modules that are not in MODULES: {stale}"
