"""nnjax._optional: optional packages load on use or fail with one line naming the extra."""

import sys

import pytest

from nnjax import _optional


def test_require_returns_the_module():
    assert _optional.require("json", "a test").dumps([1]) == "[1]"


@pytest.mark.parametrize(("module", "extra"), [("tqdm.auto", "train"), ("sklearn", "examples")])
def test_missing_module_names_feature_and_extra(monkeypatch, module, extra):
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, module.split(".")[0], None)  # as if not installed
    with pytest.raises(ImportError, match=rf"the bar needs .* pip install \"nnjax\[{extra}\]\""):
        _optional.require(module, "the bar")


def test_unknown_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_a_pkg_xyz", None)
    with pytest.raises(ImportError, match=r"pip install not_a_pkg_xyz$"):
        _optional.require("not_a_pkg_xyz", "this")
