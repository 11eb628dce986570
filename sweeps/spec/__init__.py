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
    )
    from sweeps.spec.loader import (
        MAX_PACK as MAX_PACK,
    )
    from sweeps.spec.loader import (
        load_spec as load_spec,
    )
    from sweeps.spec.loader import (
        parse_pack as parse_pack,
    )
    from sweeps.spec.loader import (
        parse_spec as parse_spec,
    )
    from sweeps.spec.model import (
        MAX_TRIALS as MAX_TRIALS,
    )
    from sweeps.spec.model import (
        SMOKE_EPOCHS as SMOKE_EPOCHS,
    )
    from sweeps.spec.model import (
        SMOKE_GRID_VALUES as SMOKE_GRID_VALUES,
    )
    from sweeps.spec.model import (
        SMOKE_SAMPLES as SMOKE_SAMPLES,
    )
    from sweeps.spec.model import (
        Algorithm as Algorithm,
    )
    from sweeps.spec.model import (
        Dimension as Dimension,
    )
    from sweeps.spec.model import (
        DimensionKind as DimensionKind,
    )
    from sweeps.spec.model import (
        GridTrial as GridTrial,
    )
    from sweeps.spec.model import (
        Mode as Mode,
    )
    from sweeps.spec.model import (
        Objective as Objective,
    )
    from sweeps.spec.model import (
        Resources as Resources,
    )
    from sweeps.spec.model import (
        SchedulerKind as SchedulerKind,
    )
    from sweeps.spec.model import (
        SchedulerSettings as SchedulerSettings,
    )
    from sweeps.spec.model import (
        SearchSettings as SearchSettings,
    )
    from sweeps.spec.model import (
        SweepSpec as SweepSpec,
    )
    from sweeps.spec.names import (
        MAX_NAME_CHARS as MAX_NAME_CHARS,
    )
    from sweeps.spec.names import (
        NAME_RULE as NAME_RULE,
    )
    from sweeps.spec.names import (
        check_name as check_name,
    )
    from sweeps.spec.names import (
        name_problem as name_problem,
    )
    from sweeps.spec.plan import (
        format_plan as format_plan,
    )
    from sweeps.spec.yaml_numbers import (
        NumberSafeLoader as NumberSafeLoader,
    )
    from sweeps.spec.yaml_numbers import (
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
