"""The tracking wing: the MLflow mirror of a sweep. The client (tracker, the public API of
MLflow), the bulk writer into a sqlite store (sqlite_batch, the only file that touches MLflow's
tables) and replaying a trial from its record (sync).

Imports the store and spec wings only.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.tracking.sqlite_batch import (
        TESTED_MLFLOW as TESTED_MLFLOW,
    )
    from sweeps.tracking.sqlite_batch import (
        TESTED_REVISIONS as TESTED_REVISIONS,
    )
    from sweeps.tracking.sqlite_batch import (
        SqliteBatch as SqliteBatch,
    )
    from sweeps.tracking.sqlite_batch import (
        TrialPlan as TrialPlan,
    )
    from sweeps.tracking.sqlite_batch import (
        store_revision as store_revision,
    )
    from sweeps.tracking.sync import (
        replay_trial as replay_trial,
    )
    from sweeps.tracking.sync import (
        trial_summary as trial_summary,
    )
    from sweeps.tracking.sync import (
        trial_tags as trial_tags,
    )
    from sweeps.tracking.tracker import (
        ARTIFACTS_DIR as ARTIFACTS_DIR,
    )
    from sweeps.tracking.tracker import (
        CHECK_TIMEOUT_S as CHECK_TIMEOUT_S,
    )
    from sweeps.tracking.tracker import (
        MAX_ERROR_CHARS as MAX_ERROR_CHARS,
    )
    from sweeps.tracking.tracker import (
        RUN_STATUS as RUN_STATUS,
    )
    from sweeps.tracking.tracker import (
        SUMMARY_PREFIXES as SUMMARY_PREFIXES,
    )
    from sweeps.tracking.tracker import (
        TAG_CONFIG as TAG_CONFIG,
    )
    from sweeps.tracking.tracker import (
        TAG_ERROR as TAG_ERROR,
    )
    from sweeps.tracking.tracker import (
        TAG_NODE as TAG_NODE,
    )
    from sweeps.tracking.tracker import (
        TAG_PARENT as TAG_PARENT,
    )
    from sweeps.tracking.tracker import (
        TAG_ROLE as TAG_ROLE,
    )
    from sweeps.tracking.tracker import (
        TAG_STATUS as TAG_STATUS,
    )
    from sweeps.tracking.tracker import (
        TAG_SUMMARY_KEYS as TAG_SUMMARY_KEYS,
    )
    from sweeps.tracking.tracker import (
        TAG_SWEEP as TAG_SWEEP,
    )
    from sweeps.tracking.tracker import (
        TAG_TRIAL as TAG_TRIAL,
    )
    from sweeps.tracking.tracker import (
        SweepTracker as SweepTracker,
    )
    from sweeps.tracking.tracker import (
        TrialWrite as TrialWrite,
    )
    from sweeps.tracking.tracker import (
        absolute_uri as absolute_uri,
    )
    from sweeps.tracking.tracker import (
        artifact_home as artifact_home,
    )
    from sweeps.tracking.tracker import (
        bounded_http as bounded_http,
    )
    from sweeps.tracking.tracker import (
        default_tracking_uri as default_tracking_uri,
    )
    from sweeps.tracking.tracker import (
        log_artifacts as log_artifacts,
    )
    from sweeps.tracking.tracker import (
        rebase_artifacts as rebase_artifacts,
    )
    from sweeps.tracking.tracker import (
        run_name as run_name,
    )
    from sweeps.tracking.tracker import (
        tracking_unusable as tracking_unusable,
    )

_EXPORTS = {
    "ARTIFACTS_DIR": "tracker",
    "CHECK_TIMEOUT_S": "tracker",
    "MAX_ERROR_CHARS": "tracker",
    "RUN_STATUS": "tracker",
    "SUMMARY_PREFIXES": "tracker",
    "SqliteBatch": "sqlite_batch",
    "SweepTracker": "tracker",
    "TAG_CONFIG": "tracker",
    "TAG_ERROR": "tracker",
    "TAG_NODE": "tracker",
    "TAG_PARENT": "tracker",
    "TAG_ROLE": "tracker",
    "TAG_STATUS": "tracker",
    "TAG_SUMMARY_KEYS": "tracker",
    "TAG_SWEEP": "tracker",
    "TAG_TRIAL": "tracker",
    "TESTED_MLFLOW": "sqlite_batch",
    "TESTED_REVISIONS": "sqlite_batch",
    "TrialPlan": "sqlite_batch",
    "TrialWrite": "tracker",
    "absolute_uri": "tracker",
    "artifact_home": "tracker",
    "bounded_http": "tracker",
    "default_tracking_uri": "tracker",
    "log_artifacts": "tracker",
    "rebase_artifacts": "tracker",
    "replay_trial": "sync",
    "run_name": "tracker",
    "store_revision": "sqlite_batch",
    "tracking_unusable": "tracker",
    "trial_summary": "sync",
    "trial_tags": "sync",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
