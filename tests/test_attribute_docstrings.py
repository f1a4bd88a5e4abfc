"""Public module constants are documented with docstrings the API reference renders.

Griffe (mkdocstrings) reads an attribute docstring (a string right after the
assignment) but not a Sphinx ``#:`` comment, so a public constant documented only by
``#:`` shows up bare on the API pages. Private names may keep ``#:`` comments.
"""

import ast
import importlib
import pathlib

import pytest

import nnjax

ROOT = pathlib.Path(nnjax.__file__).parent
#: ``(module file, name)`` allowed to stay documented by ``#:`` (none left).
PENDING: set[tuple[str, str]] = set()
PACKAGES = [
    "nnjax",
    "nnjax.classic",
    "nnjax.data",
    "nnjax.distributed",
    "nnjax.functional",
    "nnjax.io",
    "nnjax.nn",
    "nnjax.train",
]


def _exported() -> set[str]:
    """Every name in the ``__all__`` of a package with an API page."""
    return {name for p in PACKAGES for name in importlib.import_module(p).__all__}


def _commented_public_names(path: pathlib.Path, on_pages: set[str]) -> list[str]:
    """Names assigned right under a ``#:`` comment that are in ``__all__`` or on a page."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    public = set(on_pages)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            public |= set(ast.literal_eval(node.value))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        above = lines[node.lineno - 2] if node.lineno > 1 else ""
        if not above.lstrip().startswith("#:"):
            continue
        found += [t.id for t in targets if isinstance(t, ast.Name) and t.id in public]
    return found


def test_public_constants_have_no_sphinx_comments():
    on_pages = _exported()
    found = {
        (str(path.relative_to(ROOT)), name)
        for path in sorted(ROOT.rglob("*.py"))
        for name in _commented_public_names(path, on_pages)
    }
    assert found <= PENDING, (
        "public constants documented by `#:` comments, which the API reference does not "
        f"render (write a docstring after the assignment): {sorted(found - PENDING)}"
    )
    stale = PENDING - found
    assert not stale, f"PENDING lists converted names; remove them: {sorted(stale)}"


def test_api_pages_constants_have_docstrings():
    """Every constant an API page lists has a docstring, as griffe reads the source."""
    griffe = pytest.importorskip("griffe")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT.parent)])
    package = loader.load("nnjax")
    bare = []
    for name in PACKAGES:
        module = package if name == "nnjax" else package[name.split(".", 1)[1]]
        for export in module.exports or ():
            member = module.members[str(export)]
            if member.is_alias:
                member = package[member.target_path.split(".", 1)[1]]
            if member.is_attribute and member.docstring is None:
                bare.append(member.path)
    assert not bare, f"constants on the API pages without a docstring: {bare}"
