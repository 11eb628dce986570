"""mixup-sweeps: sweeps over mixup_core trials, in four wings and a face.

The wings, each a folder whose ``__init__`` re-exports its public names, depend one way:
``spec`` (the YAML model) <- ``store`` (the sweep folder; records are the truth) <- ``tracking``
(the MLflow mirror) <- {``execution`` (driver, Ray Tune, packs), :mod:`sweeps.sweep` (the
handle)}. The face is this module: ``sweeps.best_configs`` / ``sweeps.load_tables`` query a
sweep; names are imported on first use, so ``import sweeps`` stays cheap and starts nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["best_configs", "load_tables"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sweeps import results

        return getattr(results, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
