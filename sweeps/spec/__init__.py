"""The spec wing: a sweep's checked-in YAML as frozen dataclasses (model), reading and checking
it (loader), the resolved plan (plan), YAML 1.2 numbers (yaml_numbers) and sweep names (names).

A leaf: it imports nothing else of ``sweeps`` but ``sweeps.errors``.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sweeps.errors import SpecError as SpecError

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.spec.loader import (
        DEFAULT_OBJECTIVE as DEFAULT_OBJECTIVE,
        MAX_PACK as MAX_PACK,
        load_spec as load_spec,
        parse_pack as parse_pack,
        parse_spec as parse_spec,
    )
    from sweeps.spec.model import (
        Algorithm as Algorithm,
        Dimension as Dimension,
        DimensionKind as DimensionKind,
        GridTrial as GridTrial,
        MAX_TRIALS as MAX_TRIALS,
        Mode as Mode,
        Objective as Objective,
        Resources as Resources,
        SMOKE_EPOCHS as SMOKE_EPOCHS,
        SMOKE_GRID_VALUES as SMOKE_GRID_VALUES,
        SMOKE_SAMPLES as SMOKE_SAMPLES,
        SchedulerKind as SchedulerKind,
        SchedulerSettings as SchedulerSettings,
        SearchSettings as SearchSettings,
        SweepSpec as SweepSpec,
    )
    from sweeps.spec.names import (
        MAX_NAME_CHARS as MAX_NAME_CHARS,
        NAME_RULE as NAME_RULE,
        check_name as check_name,
        name_problem as name_problem,
    )
    from sweeps.spec.plan import (
        format_plan as format_plan,
    )
    from sweeps.spec.yaml_numbers import (
        NumberSafeLoader as NumberSafeLoader,
        safe_load as safe_load,
    )

_EXPORTS = {
    "Algorithm": "model",
    "DEFAULT_OBJECTIVE": "loader",
    "Dimension": "model",
    "DimensionKind": "model",
    "GridTrial": "model",
    "MAX_NAME_CHARS": "names",
    "MAX_PACK": "loader",
    "MAX_TRIALS": "model",
    "Mode": "model",
    "NAME_RULE": "names",
    "NumberSafeLoader": "yaml_numbers",
    "Objective": "model",
    "Resources": "model",
    "SMOKE_EPOCHS": "model",
    "SMOKE_GRID_VALUES": "model",
    "SMOKE_SAMPLES": "model",
    "SchedulerKind": "model",
    "SchedulerSettings": "model",
    "SearchSettings": "model",
    "SweepSpec": "model",
    "check_name": "names",
    "format_plan": "plan",
    "load_spec": "loader",
    "name_problem": "names",
    "parse_pack": "loader",
    "parse_spec": "loader",
    "safe_load": "yaml_numbers",
}

__all__ = sorted([*_EXPORTS, "SpecError"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
