"""Sweeps over mixup_core trials: specs, Ray Tune and MLflow adapters, results, the CLI.

``sweeps.best_configs(name, ...)`` is the Python entry point for querying results; it is
imported lazily so ``import sweeps`` stays cheap and starts nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["best_configs", "load_tables"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sweeps import results

        return getattr(results, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
