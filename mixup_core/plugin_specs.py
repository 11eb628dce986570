"""How a sweep names its plugins, without importing torch (the spec reader uses it).

A ``plugins`` entry is a module name (``my_pkg.mixup_ext``, installed on every node) or a path of
a local ``.py`` file or package folder (shipped to every node by Ray's runtime environment and
imported there under its own name: the file's stem or the folder's name). Installed packages
may also declare an entry point of the group :data:`ENTRY_POINT_GROUP`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "mixup_sweeps.plugins"


def is_path(entry: str) -> bool:
    """Whether a ``plugins`` entry names a local file or folder (else a module name)."""
    return entry.endswith(".py") or "/" in entry or entry.startswith(".")


def resolve(entry: str, base: Path | None = None) -> Path:
    """The absolute path of a path entry, relative to ``base`` (default: the working folder)."""
    path = Path(entry)
    return (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()


def module_name(entry: str) -> str:
    """The name a plugin entry imports as: a file's stem, a folder's name, or the module name."""
    return Path(entry).stem if is_path(entry) else entry


def installed() -> bool:
    """Whether any installed package declares a ``mixup_sweeps.plugins`` entry point."""
    return bool(entry_points(group=ENTRY_POINT_GROUP))


__all__ = ["ENTRY_POINT_GROUP", "installed", "is_path", "module_name", "resolve"]
