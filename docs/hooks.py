"""MkDocs hook for the API reference: one section per defining module of a package.

A page line ``<!-- api: nnjax.train -->`` becomes the package docstring followed by one
mkdocstrings block per submodule that defines names of the package's ``__all__``, each
listing exactly those names. The pages therefore follow ``__all__`` as it changes, and
a function that shares its name with its submodule (``nnjax.train.sweep.sweep``) is
found where it is defined rather than shadowed by the module. Names defined in a
private module (``nnjax.functional._forward_only``) get one section each, headed by
the name alone, so the page never shows a private module path as a heading.

A line ``<!-- api-module: nnjax.losses -->`` becomes that module's docstring and the
names of its ``__all__`` only (no helper aliases such as ``ArrayLike``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_MARKER = re.compile(r"^<!-- api: ([\w.]+) -->$", re.MULTILINE)
_MODULE_MARKER = re.compile(r"^<!-- api-module: ([\w.]+) -->$", re.MULTILINE)


def _groups(package: str) -> dict[str, list[str]]:
    """Maps each defining module to the exported names it defines, in import order."""
    pkg = griffe.load(package, search_paths=["."], resolve_aliases=False)
    groups: dict[str, list[str]] = {}
    for name in pkg.exports or ():
        member = pkg.members[name]
        if member.is_alias:
            module = member.target_path.rsplit(".", 1)[0]
        elif member.is_module:  # shadowed: the function `name` inside the module `name`
            module = member.path
        else:
            module = pkg.path
        groups.setdefault(module, []).append(name)
    order = {name: i for i, name in enumerate(pkg.members)}
    return dict(sorted(groups.items(), key=lambda kv: min(order[n] for n in kv[1])))


def _expand(match: re.Match[str]) -> str:
    package = match.group(1)
    blocks = [f"::: {package}\n    options:\n      members: false\n"]
    for module, names in _groups(package).items():
        if any(part.startswith("_") for part in module.split(".")):
            # A private module's names are shown as the package's own: no heading with
            # the private path, one section per name.
            for name in names:
                options = "      heading_level: 2\n      show_root_full_path: false\n"
                blocks.append(f"::: {module}.{name}\n    options:\n{options}")
            continue
        options = f"      heading_level: 2\n      members: [{', '.join(names)}]\n"
        blocks.append(f"::: {module}\n    options:\n{options}")
    return "\n".join(blocks)


def _expand_module(match: re.Match[str]) -> str:
    """One module's docstring and exactly the names of its ``__all__``."""
    module = match.group(1)
    mod = griffe.load(module, search_paths=["."], resolve_aliases=False)
    names = [str(name) for name in mod.exports or ()]
    options = f"      heading_level: 2\n      members: [{', '.join(names)}]\n"
    return f"::: {module}\n    options:\n{options}"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expands every ``<!-- api: PACKAGE -->`` and ``<!-- api-module: MODULE -->`` line."""
    return _MODULE_MARKER.sub(_expand_module, _MARKER.sub(_expand, markdown))
