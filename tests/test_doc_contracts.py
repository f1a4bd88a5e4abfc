"""Contracts the documentation states about signatures and messages (typing, errors)."""

from __future__ import annotations

import inspect

import jax
import pytest

import nnjax
from nnjax import distributed, nn, train
from nnjax.distributed import process


@pytest.mark.parametrize("fn", [train.fit, train.evaluate, train.predict, train.sweep])
def test_own_mesh_keeps_the_signature(fn):
    """``own_mesh`` wraps with ``functools.wraps`` and a ParamSpec: the signature shows."""
    params = inspect.signature(fn).parameters
    assert "model" in params or "model_fn" in params
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())


@pytest.mark.parametrize("cls", [nn.SequenceClassifier, nn.SequenceRegressor])
def test_sequence_models_spell_out_their_keywords(cls):
    params = inspect.signature(cls.__init__).parameters
    for name in ("cell", "all_steps", "output_activation", "dropout", "param_dtype", "rngs"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    with pytest.raises(TypeError, match="cel"):
        cls(2, 4, 3, cel="gru", rngs=None)


def test_persistence_names_are_the_io_functions():
    for name in ("save", "load", "save_state", "load_state", "export", "load_exported"):
        assert getattr(nnjax, name) is getattr(nnjax.io, name)


def test_initialize_with_nothing_to_join_names_the_sources(monkeypatch):
    """A plain ``python train.py`` calling ``initialize()`` gets nnjax's message, not JAX's."""

    def jax_initialize(**kwargs):
        assert kwargs["coordinator_address"] is None
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.delenv(process.ENV_ADDRESS, raising=False)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.config, "update", lambda *args: None)  # keep the collectives as set
    monkeypatch.setattr(jax.distributed, "initialize", jax_initialize)
    with pytest.raises(ValueError, match="initialize_if_launched") as info:
        distributed.initialize()
    message = str(info.value)
    assert process.ENV_ADDRESS in message and "nnjax launch" in message and "SLURM" in message


def test_initialize_passes_other_jax_errors_through(monkeypatch):
    def jax_initialize(**kwargs):
        raise ValueError("something else")

    monkeypatch.delenv(process.ENV_ADDRESS, raising=False)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.config, "update", lambda *args: None)  # keep the collectives as set
    monkeypatch.setattr(jax.distributed, "initialize", jax_initialize)
    with pytest.raises(ValueError, match=r"^something else$"):
        distributed.initialize()
