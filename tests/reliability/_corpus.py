"""Shared helpers of the bad-input and fault corpus (tests/reliability)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest


class Case(NamedTuple):
    """One bad input: what to call, the error type, and the words naming the culprit."""

    id: str
    call: Callable[[], Any]
    error: type[BaseException]
    words: tuple[str, ...]
    xfail: str | None = None


def case(id, call, error, *words, xfail=None) -> Case:
    return Case(id, call, error, tuple(words), xfail)


def params(cases: list[Case]) -> list[Any]:
    """``pytest.param`` per case; a case that needs a fix elsewhere is a strict xfail."""
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def check(c: Case) -> None:
    """The call raises ``c.error`` and its message holds every word of ``c.words``."""
    with pytest.raises(c.error) as info:
        c.call()
    message = str(info.value)
    missing = [w for w in c.words if w not in message]
    assert not missing, f"message {message!r} lacks {missing}"
    assert "\n" not in message.strip() or len(message) < 2000, message


def one_line(err: str) -> bool:
    """Whether a CLI's stderr is exactly one line with no traceback."""
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def words_in(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None
