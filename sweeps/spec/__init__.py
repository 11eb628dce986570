"""The spec wing: a sweep's checked-in YAML as frozen dataclasses (model), reading and checking
it (loader), the resolved plan (plan), YAML 1.2 numbers (yaml_numbers) and sweep names (names).

A leaf: it imports nothing else of ``sweeps`` but ``sweeps.errors``.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeps.errors import SpecError as SpecError
from sweeps.lazy import lazy_exports

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.spec.loader import (
        DEFAULT_OBJECTIVE,
        MAX_PACK,
        MAX_RETRIES,
        SETTABLE_SECTIONS,
        apply_sets,
        load_spec,
        parse_pack,
        parse_spec,
    )
    from sweeps.spec.model import (
        MAX_TRIALS,
        SMOKE_EPOCHS,
        SMOKE_GRID_VALUES,
        SMOKE_SAMPLES,
        Algorithm,
        Dimension,
        DimensionKind,
        GridTrial,
        Mode,
        Objective,
        Resources,
        SchedulerKind,
        SchedulerSettings,
        SearchSettings,
        SweepSpec,
    )
    from sweeps.spec.names import MAX_NAME_CHARS, NAME_RULE, check_name, name_problem
    from sweeps.spec.plan import (
        IMAGE_PACKS_ON_CPU,
        PACKING_KEYS,
        format_plan,
        is_image_trial,
        unpacked_reason,
    )
    from sweeps.spec.yaml_numbers import NumberSafeLoader, safe_load

_EXPORTS = {
    "Algorithm": "model",
    "DEFAULT_OBJECTIVE": "loader",
    "Dimension": "model",
    "DimensionKind": "model",
    "GridTrial": "model",
    "IMAGE_PACKS_ON_CPU": "plan",
    "MAX_NAME_CHARS": "names",
    "MAX_PACK": "loader",
    "MAX_RETRIES": "loader",
    "MAX_TRIALS": "model",
    "Mode": "model",
    "NAME_RULE": "names",
    "NumberSafeLoader": "yaml_numbers",
    "Objective": "model",
    "PACKING_KEYS": "plan",
    "Resources": "model",
    "SETTABLE_SECTIONS": "loader",
    "SMOKE_EPOCHS": "model",
    "SMOKE_GRID_VALUES": "model",
    "SMOKE_SAMPLES": "model",
    "SchedulerKind": "model",
    "SchedulerSettings": "model",
    "SearchSettings": "model",
    "SweepSpec": "model",
    "apply_sets": "loader",
    "check_name": "names",
    "format_plan": "plan",
    "is_image_trial": "plan",
    "load_spec": "loader",
    "name_problem": "names",
    "parse_pack": "loader",
    "parse_spec": "loader",
    "safe_load": "yaml_numbers",
    "unpacked_reason": "plan",
}

__all__ = [
    "DEFAULT_OBJECTIVE",
    "IMAGE_PACKS_ON_CPU",
    "MAX_NAME_CHARS",
    "MAX_PACK",
    "MAX_RETRIES",
    "MAX_TRIALS",
    "NAME_RULE",
    "PACKING_KEYS",
    "SETTABLE_SECTIONS",
    "SMOKE_EPOCHS",
    "SMOKE_GRID_VALUES",
    "SMOKE_SAMPLES",
    "Algorithm",
    "Dimension",
    "DimensionKind",
    "GridTrial",
    "Mode",
    "NumberSafeLoader",
    "Objective",
    "Resources",
    "SchedulerKind",
    "SchedulerSettings",
    "SearchSettings",
    "SpecError",
    "SweepSpec",
    "apply_sets",
    "check_name",
    "format_plan",
    "is_image_trial",
    "load_spec",
    "name_problem",
    "parse_pack",
    "parse_spec",
    "safe_load",
    "unpacked_reason",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
