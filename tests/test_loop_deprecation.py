"""``nnjax.train.Loop``, the old name of ``RunView``: it still works, with a warning."""

import ast
import importlib
import pathlib
import warnings

import pytest

import nnjax
from nnjax import train
from nnjax._deprecation import REMOVED_IN
from nnjax.train import loop as loop_module

MESSAGE = rf"Loop is deprecated and will be removed in {REMOVED_IN}; use nnjax\.train\.RunView"


def test_train_loop_warns_and_is_run_view():
    with pytest.warns(DeprecationWarning, match=MESSAGE) as caught:
        old = train.Loop
    assert old is train.RunView
    assert [w.filename for w in caught] == [__file__]  # points at the caller


def test_loop_module_attribute_warns():
    with pytest.warns(DeprecationWarning, match=MESSAGE) as caught:
        old = loop_module.Loop
    assert old is train.RunView
    assert {w.filename for w in caught} == {__file__}


def test_from_import_warns():
    with pytest.warns(DeprecationWarning, match=MESSAGE):
        from nnjax.train import Loop
    assert Loop is train.RunView


def test_new_name_and_other_names_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train.RunView is importlib.import_module("nnjax.train.driver").RunView
        assert train.fit is loop_module.fit
    with pytest.raises(AttributeError, match="no attribute 'Lop'"):
        train.Lop
    with pytest.raises(AttributeError, match=r"nnjax\.train\.loop' has no attribute 'Lop'"):
        loop_module.Lop


def test_old_name_not_exported():
    """``from nnjax.train import *`` and the API page do not pull the old name."""
    assert "Loop" not in train.__all__
    assert "Loop" not in loop_module.__all__


def _old_name_uses(path: pathlib.Path) -> list[int]:
    """Lines of ``path`` that read, import or assign the name ``Loop`` at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` bodies are never run
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    lines = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if (
            (isinstance(node, ast.Name) and node.id == "Loop")
            or (isinstance(node, ast.Attribute) and node.attr == "Loop")
            or (isinstance(node, ast.alias) and node.name == "Loop")
        ):
            lines.append(node.lineno)
    return lines


def test_nnjax_itself_does_not_use_the_old_name():
    root = pathlib.Path(nnjax.__file__).parent
    uses = {
        str(path.relative_to(root)): lines
        for path in sorted(root.rglob("*.py"))
        if (lines := _old_name_uses(path))
    }
    assert not uses, f"nnjax uses the deprecated name Loop (use RunView): {uses}"
