"""Tests for nnjax._registry.lookup, the name lookup behind the ``get`` functions."""

import re

import pytest

from nnjax import _registry, activations, losses

REGISTRY = {"relu": "RELU", "tanh": "TANH"}


def test_lookup_is_case_insensitive():
    assert _registry.lookup("activation", REGISTRY, "ReLU") == "RELU"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'relux'; known: relu, tanh"):
        _registry.lookup("activation", REGISTRY, "relux")


@pytest.mark.parametrize(
    ("name", "shown"), [(3, "3 (int)"), (None, "None (NoneType)"), (["relu"], "['relu'] (list)")]
)
def test_non_string_name_shows_the_value_and_its_type(name, shown):
    message = "activation must be a name or a callable, got " + re.escape(shown)
    with pytest.raises(TypeError, match=message):
        _registry.lookup("activation", REGISTRY, name)


def test_public_get_functions_show_the_value():
    with pytest.raises(TypeError, match=r"got 3\.5 \(float\)"):
        losses.get(3.5)
    with pytest.raises(TypeError, match=r"got 7 \(int\)"):
        activations.get(7)
