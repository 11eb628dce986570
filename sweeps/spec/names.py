"""What may name a sweep: a folder inside the storage, so no path, no dots first, bounded length.

Kept in the spec wing because a spec's ``name:`` is checked against it; the store uses it for
every folder it opens. Imports nothing heavy.
"""

from __future__ import annotations

import re

from sweeps.errors import UsageError

MAX_NAME_CHARS = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_RULE = (f"letters, digits, '.', '_' and '-', starting with a letter or digit, at most "
             f"{MAX_NAME_CHARS} characters")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a sweep (a folder inside the storage), or None if it can."""
    if not isinstance(name, str) or not name:
        return "must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"{len(name)} characters; use {NAME_RULE}"
    if not _NAME.fullmatch(name):
        return f"use {NAME_RULE}"
    return None


def check_name(name: str, *, field: str = "sweep name") -> str:
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{field} {_show(name)}: {problem}")
    return name


def _show(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


