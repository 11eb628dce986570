"""How a wing re-exports its modules' names without importing them: on first use (PEP 562).

A leaf of the package, like ``sweeps.errors``: every wing's ``__init__`` uses it, so importing a
wing (or ``sweeps``) starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<exports[name]>`` on the
    first use of ``name`` and returns its attribute."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
