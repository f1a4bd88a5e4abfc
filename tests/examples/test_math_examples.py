"""Smoke tests of the examples that need no dataset: activations and autodiff modes."""

import numpy as np
import pytest


@pytest.mark.parametrize(("b", "c"), [(2.0, 1.0), (-1.5, 3.0)])
def test_autodiff_modes_agree_with_hand_derivation(load, b, c, capsys):
    results = load("autodiff_modes").main(["--b", str(b), "--c", str(c)])
    hand = results["by hand"]
    for mode in ("forward (jax.jvp)", "reverse (jax.vjp)"):
        for partial in ("da/db", "da/dc"):
            np.testing.assert_allclose(results[mode][partial], hand[partial], rtol=1e-6, atol=1e-6)
    assert "da/dc" in capsys.readouterr().out


def test_activation_derivatives_match_finite_differences(load):
    module = load("activations")
    x = np.linspace(-3.0, 3.0, 13) + 0.05  # avoid the kinks at 0
    table = module.tabulate(x)
    eps = 1e-3
    for name in ("sigmoid", "tanh", "relu", "elu", "softplus", "swish"):
        f = module.activations.get(name)
        fd = (np.asarray(f(x + eps)) - np.asarray(f(x - eps))) / (2 * eps)
        np.testing.assert_allclose(table[name][1], fd, atol=2e-3, err_msg=name)
    np.testing.assert_array_equal(table["heaviside"][1], np.zeros_like(x))


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_activations_script_saves_plot(load, tmp_path):
    load("activations").main(["--quick", "--out", str(tmp_path)])
    png = tmp_path / "activations.png"
    assert png.exists() and png.stat().st_size > 10_000
