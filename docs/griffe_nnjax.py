"""Griffe extension for the docs build: reads nnjax's docstrings as mkdocstrings needs.

* reST roles (``:func:`fit```, ``:class:`~nnjax.nn.MLP```) become inline code spans;
  Markdown has no roles (the ``~`` prefix keeps only the last name, as in Sphinx).
* The singular ``Example:`` heading becomes griffe's ``Examples:`` section, so the
  doctests render as Python console code instead of nested quotes.
* ``a, b: description`` in an ``Args`` section documents each name, as Sphinx's
  Napoleon reads it; griffe would take ``a, b`` for one unknown parameter.
* A class or function whose docstring is computed at import time (``__doc__ = ...``,
  as the recurrent layers build theirs) gets it from the imported object; its
  ``Args`` may name parameters that the signature passes on through ``**kw``.

The source is unchanged; only the text that mkdocstrings renders is rewritten.
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ARGS = re.compile(r"^(\s*)(?:Args|Arguments|Parameters|Keyword Args|Other Parameters):\s*$")
_GROUPED = re.compile(r"^(\s*)(\w+(?:\s*,\s*\w+)+):(.*)$")


def _split_grouped_args(text: str) -> str:
    """Expands ``a, b: text`` in an ``Args`` section into one entry per name (as Napoleon)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        out.append(lines[i])
        header = _ARGS.match(lines[i])
        i += 1
        if not header:
            continue
        base = len(header.group(1))
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base
        ):
            grouped = _GROUPED.match(lines[i])
            j = i + 1
            item_indent = len(lines[i]) - len(lines[i].lstrip())
            while (
                j < len(lines)
                and lines[j].strip()
                and (len(lines[j]) - len(lines[j].lstrip()) > item_indent)
            ):
                j += 1
            if grouped:
                indent, names, rest = grouped.groups()
                for name in re.split(r"\s*,\s*", names):
                    out.append(f"{indent}{name}:{rest}")
                    out.extend(lines[i + 1 : j])
            else:
                out.extend(lines[i:j])
            i = j
    return "\n".join(out)


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _runtime_docstring(obj: griffe.Object) -> str | None:
    try:
        value = griffe.dynamic_import(obj.path)
    except Exception as err:  # a broken import must fail the strict build, not hide docs
        logging.getLogger("griffe").warning("cannot import %s for its docstring: %s", obj.path, err)
        return None
    doc = getattr(value, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


class NnjaxDocstrings(griffe.Extension):
    """Computed docstrings, reST roles and ``Example:`` sections, as described above."""

    def on_instance(self, *, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        """Rewrites the docstring of every loaded object (module, class, function...)."""
        if obj.docstring is None and (obj.is_class or obj.is_function):
            text = _runtime_docstring(obj)
            if text:
                obj.docstring = griffe.Docstring(
                    text,
                    parent=obj,
                    parser=agent.docstring_parser,
                    # Their classes may take ``**kw`` that the docstring spells out.
                    parser_options={**agent.docstring_options, "warn_unknown_params": False},
                )
        if obj.docstring is not None:
            text = _ROLE.sub(_code, obj.docstring.value)
            text = _EXAMPLE.sub(r"\1Examples:", text)
            obj.docstring.value = _split_grouped_args(text)
