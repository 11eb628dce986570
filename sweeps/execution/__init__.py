"""The execution wing: running a sweep. The driver (driver) and its sink (sink: records, then
MLflow, then progress), the live view (progress), packing, scheduling and seed groups, and the
Ray adapter: tuner (public Tune API), trainables (trial processes) and ray_patches (the only
file that touches Ray's internals, checked against the tested versions).

Imports every other wing; nothing imports it but ``sweeps.sweep`` and the CLI.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeps.lazy import lazy_exports

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.execution.driver import SweepOutcome, resume_run, start_run, sync, trial_param_keys
    from sweeps.execution.failpoints import FAILPOINT_ENV, FAILPOINT_HOLD_S, failpoint
    from sweeps.execution.packing import (
        FROM_KEY,
        MAX_IMAGE_MEMBERS,
        MAX_MEMBERS,
        MEMBER_KEY,
        MEMORY_SHARE,
        OPTUNA_ROUNDS,
        PACK_KEY,
        PACK_LOST,
        member_states,
        member_trial_id,
        pack_members,
        pack_size,
        plan_packs,
        plan_split,
        plan_trials,
        sample_value,
    )
    from sweeps.execution.progress import (
        ETA_AFTER,
        ETA_MIN_SECONDS,
        PLAIN_ENV,
        LivePanel,
        ProgressLine,
        make_display,
    )
    from sweeps.execution.ray_patches import TESTED_RAY, check_ray, install, installed_ray
    from sweeps.execution.repair import repair_holes
    from sweeps.execution.scheduling import Rungs, may_cut
    from sweeps.execution.seed_group import aggregate
    from sweeps.execution.sink import OPEN_SINKS, REPORTED, DriverSink, SinkFactory
    from sweeps.execution.trainables import (
        GRID_KEY,
        RUNGS_FILE,
        WARNING_KEY,
        PackTrainable,
        SweepTrainable,
        make_trainable,
        trial_params,
    )
    from sweeps.execution.tuner import (
        JOIN_TIMEOUT_S,
        OPTUNA_JOURNAL,
        VERBOSE_ENV,
        EventSink,
        PackSearcher,
        SwitchOffAwareASHA,
        can_resume,
        connect,
        pack_space,
        param_space,
        resume_sweep,
        run_packs,
        run_sweep,
        shutdown,
    )

_EXPORTS = {
    "DriverSink": "sink",
    "ETA_AFTER": "progress",
    "ETA_MIN_SECONDS": "progress",
    "EventSink": "tuner",
    "FAILPOINT_ENV": "failpoints",
    "FAILPOINT_HOLD_S": "failpoints",
    "FROM_KEY": "packing",
    "GRID_KEY": "trainables",
    "JOIN_TIMEOUT_S": "tuner",
    "LivePanel": "progress",
    "MAX_IMAGE_MEMBERS": "packing",
    "MAX_MEMBERS": "packing",
    "MEMBER_KEY": "packing",
    "MEMORY_SHARE": "packing",
    "OPEN_SINKS": "sink",
    "OPTUNA_JOURNAL": "tuner",
    "OPTUNA_ROUNDS": "packing",
    "PACK_KEY": "packing",
    "PACK_LOST": "packing",
    "PLAIN_ENV": "progress",
    "PackSearcher": "tuner",
    "PackTrainable": "trainables",
    "ProgressLine": "progress",
    "REPORTED": "sink",
    "RUNGS_FILE": "trainables",
    "Rungs": "scheduling",
    "SinkFactory": "sink",
    "SweepOutcome": "driver",
    "SweepTrainable": "trainables",
    "SwitchOffAwareASHA": "tuner",
    "TESTED_RAY": "ray_patches",
    "VERBOSE_ENV": "tuner",
    "WARNING_KEY": "trainables",
    "aggregate": "seed_group",
    "can_resume": "tuner",
    "check_ray": "ray_patches",
    "connect": "tuner",
    "failpoint": "failpoints",
    "install": "ray_patches",
    "installed_ray": "ray_patches",
    "make_display": "progress",
    "make_trainable": "trainables",
    "may_cut": "scheduling",
    "member_states": "packing",
    "member_trial_id": "packing",
    "pack_members": "packing",
    "pack_size": "packing",
    "pack_space": "tuner",
    "param_space": "tuner",
    "plan_packs": "packing",
    "plan_split": "packing",
    "plan_trials": "packing",
    "repair_holes": "repair",
    "resume_run": "driver",
    "resume_sweep": "tuner",
    "run_packs": "tuner",
    "run_sweep": "tuner",
    "sample_value": "packing",
    "shutdown": "tuner",
    "start_run": "driver",
    "sync": "driver",
    "trial_param_keys": "driver",
    "trial_params": "trainables",
}

__all__ = [
    "ETA_AFTER",
    "ETA_MIN_SECONDS",
    "FAILPOINT_ENV",
    "FAILPOINT_HOLD_S",
    "FROM_KEY",
    "GRID_KEY",
    "JOIN_TIMEOUT_S",
    "MAX_IMAGE_MEMBERS",
    "MAX_MEMBERS",
    "MEMBER_KEY",
    "MEMORY_SHARE",
    "OPEN_SINKS",
    "OPTUNA_JOURNAL",
    "OPTUNA_ROUNDS",
    "PACK_KEY",
    "PACK_LOST",
    "PLAIN_ENV",
    "REPORTED",
    "RUNGS_FILE",
    "TESTED_RAY",
    "VERBOSE_ENV",
    "WARNING_KEY",
    "DriverSink",
    "EventSink",
    "LivePanel",
    "PackSearcher",
    "PackTrainable",
    "ProgressLine",
    "Rungs",
    "SinkFactory",
    "SweepOutcome",
    "SweepTrainable",
    "SwitchOffAwareASHA",
    "aggregate",
    "can_resume",
    "check_ray",
    "connect",
    "failpoint",
    "install",
    "installed_ray",
    "make_display",
    "make_trainable",
    "may_cut",
    "member_states",
    "member_trial_id",
    "pack_members",
    "pack_size",
    "pack_space",
    "param_space",
    "plan_packs",
    "plan_split",
    "plan_trials",
    "repair_holes",
    "resume_run",
    "resume_sweep",
    "run_packs",
    "run_sweep",
    "sample_value",
    "shutdown",
    "start_run",
    "sync",
    "trial_param_keys",
    "trial_params",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
