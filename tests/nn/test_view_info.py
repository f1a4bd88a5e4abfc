"""``nnx.view_info`` reads every nnjax module's ``set_view`` (its docstring's ``Args:``)."""

import inspect

import pytest
from flax import nnx

from nnjax import nn


def _classes_with_set_view():
    found = []
    for name in sorted(dir(nn)):
        obj = getattr(nn, name)
        if inspect.isclass(obj) and issubclass(obj, nnx.Module) and "set_view" in vars(obj):
            found.append(obj)
    return found


def test_every_set_view_is_found():  # the parametrization below is not empty
    assert {c.__name__ for c in _classes_with_set_view()} >= {"BatchNorm", "Dropout"}


@pytest.mark.parametrize("cls", _classes_with_set_view(), ids=lambda c: c.__name__)
def test_set_view_documents_each_argument(cls):
    doc = inspect.getdoc(cls.set_view)
    args = doc[doc.index("Args:\n") :]
    for name in inspect.signature(cls.set_view).parameters:
        if name != "self":
            assert f"\n  {name}:" in args, f"{cls.__name__}.set_view: {name} is not in Args"


def test_view_info_of_a_model_holding_them():
    rngs = nnx.Rngs(0)
    model = nn.Sequential(
        nn.Dense(4, 4, rngs=rngs),
        nn.BatchNorm(4, rngs=rngs),
        nn.Dropout(0.5, rngs=rngs),
        nn.MultiHeadAttention(2, 4, dropout_rate=0.1, rngs=rngs),
    )
    info = nnx.view_info(model)  # raised KeyError: 'use_running_average'
    for cls, attribute in [("BatchNorm", "use_running_average"), ("Dropout", "deterministic"),
                           ("MultiHeadAttention", "deterministic")]:  # fmt: skip
        block = info.split(f"{cls}:\n", 1)[1]
        assert block.lstrip().startswith(f"{attribute}: bool | None = None")
