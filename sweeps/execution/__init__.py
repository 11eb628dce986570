"""The execution wing: running a sweep. The driver (driver) and its sink (sink: records, then
MLflow, then progress), the live view (progress), packing, scheduling and seed groups, and the
Ray adapter: tuner (public Tune API), trainables (trial processes) and ray_patches (the only
file that touches Ray's internals, checked against the tested versions).

Imports every other wing; nothing imports it but ``sweeps.sweep`` and the CLI.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.execution.driver import (
        SweepOutcome as SweepOutcome,
        resume_run as resume_run,
        start_run as start_run,
        sync as sync,
        trial_param_keys as trial_param_keys,
    )
    from sweeps.execution.failpoints import (
        FAILPOINT_ENV as FAILPOINT_ENV,
        FAILPOINT_HOLD_S as FAILPOINT_HOLD_S,
        failpoint as failpoint,
    )
    from sweeps.execution.packing import (
        MAX_MEMBERS as MAX_MEMBERS,
        MEMORY_SHARE as MEMORY_SHARE,
        OPTUNA_ROUNDS as OPTUNA_ROUNDS,
        PACK_KEY as PACK_KEY,
        check_pack as check_pack,
        member_trial_id as member_trial_id,
        pack_size as pack_size,
        plan_packs as plan_packs,
        plan_trials as plan_trials,
        sample_value as sample_value,
    )
    from sweeps.execution.progress import (
        LivePanel as LivePanel,
        PLAIN_ENV as PLAIN_ENV,
        ProgressLine as ProgressLine,
        make_display as make_display,
    )
    from sweeps.execution.ray_patches import (
        TESTED_RAY as TESTED_RAY,
        check_ray as check_ray,
        install as install,
        installed_ray as installed_ray,
    )
    from sweeps.execution.scheduling import (
        Rungs as Rungs,
        may_cut as may_cut,
    )
    from sweeps.execution.seed_group import (
        SeedGroup as SeedGroup,
        aggregate as aggregate,
    )
    from sweeps.execution.sink import (
        DriverSink as DriverSink,
        OPEN_SINKS as OPEN_SINKS,
        REPORTED as REPORTED,
        SinkFactory as SinkFactory,
    )
    from sweeps.execution.trainables import (
        GRID_KEY as GRID_KEY,
        PackTrainable as PackTrainable,
        RUNGS_FILE as RUNGS_FILE,
        SweepTrainable as SweepTrainable,
        make_trainable as make_trainable,
        trial_params as trial_params,
    )
    from sweeps.execution.tuner import (
        EventSink as EventSink,
        JOIN_TIMEOUT_S as JOIN_TIMEOUT_S,
        OPTUNA_JOURNAL as OPTUNA_JOURNAL,
        PackSearcher as PackSearcher,
        SwitchOffAwareASHA as SwitchOffAwareASHA,
        TUNE_DIR as TUNE_DIR,
        VERBOSE_ENV as VERBOSE_ENV,
        can_resume as can_resume,
        connect as connect,
        pack_space as pack_space,
        param_space as param_space,
        resume_sweep as resume_sweep,
        run_sweep as run_sweep,
        shutdown as shutdown,
    )

_EXPORTS = {
    "DriverSink": "sink",
    "EventSink": "tuner",
    "FAILPOINT_ENV": "failpoints",
    "FAILPOINT_HOLD_S": "failpoints",
    "GRID_KEY": "trainables",
    "JOIN_TIMEOUT_S": "tuner",
    "LivePanel": "progress",
    "MAX_MEMBERS": "packing",
    "MEMORY_SHARE": "packing",
    "OPEN_SINKS": "sink",
    "OPTUNA_JOURNAL": "tuner",
    "OPTUNA_ROUNDS": "packing",
    "PACK_KEY": "packing",
    "PLAIN_ENV": "progress",
    "PackSearcher": "tuner",
    "PackTrainable": "trainables",
    "ProgressLine": "progress",
    "REPORTED": "sink",
    "RUNGS_FILE": "trainables",
    "Rungs": "scheduling",
    "SeedGroup": "seed_group",
    "SinkFactory": "sink",
    "SweepOutcome": "driver",
    "SweepTrainable": "trainables",
    "SwitchOffAwareASHA": "tuner",
    "TESTED_RAY": "ray_patches",
    "TUNE_DIR": "tuner",
    "VERBOSE_ENV": "tuner",
    "aggregate": "seed_group",
    "can_resume": "tuner",
    "check_pack": "packing",
    "check_ray": "ray_patches",
    "connect": "tuner",
    "failpoint": "failpoints",
    "install": "ray_patches",
    "installed_ray": "ray_patches",
    "make_display": "progress",
    "make_trainable": "trainables",
    "may_cut": "scheduling",
    "member_trial_id": "packing",
    "pack_size": "packing",
    "pack_space": "tuner",
    "param_space": "tuner",
    "plan_packs": "packing",
    "plan_trials": "packing",
    "resume_run": "driver",
    "resume_sweep": "tuner",
    "run_sweep": "tuner",
    "sample_value": "packing",
    "shutdown": "tuner",
    "start_run": "driver",
    "sync": "driver",
    "trial_param_keys": "driver",
    "trial_params": "trainables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
