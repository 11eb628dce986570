"""The tracking wing: the MLflow mirror of a sweep. The client (tracker, the public API of
MLflow), the bulk writer into a sqlite store (sqlite_batch, the only file that touches MLflow's
tables), replaying a trial from its record (sync) and what the UI shows of the answer as text:
run names, descriptions, the runs table's view (answer, no MLflow).

Imports the store and spec wings only.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeps.lazy import lazy_exports

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.tracking.answer import (
        NOTE,
        SHARED_VIEW,
        best_note,
        chosen_note,
        run_name,
        runs_view,
        trial_about,
        view_key,
        view_query,
    )
    from sweeps.tracking.sqlite_batch import (
        CACHE_ENV,
        TESTED_MLFLOW,
        TESTED_REVISIONS,
        SqliteBatch,
        TrialPlan,
        seed_store,
        store_revision,
    )
    from sweeps.tracking.sync import replay_trial, trial_summary, trial_tags
    from sweeps.tracking.tracker import (
        ARTIFACTS_DIR,
        CHECK_TIMEOUT_S,
        CLASSIC_KIND,
        EXPERIMENT_KIND,
        MAX_ERROR_CHARS,
        RUN_STATUS,
        SUMMARY_PREFIXES,
        TAG_CONFIG,
        TAG_ERROR,
        TAG_NODE,
        TAG_PARENT,
        TAG_ROLE,
        TAG_STATUS,
        TAG_SUMMARY_KEYS,
        TAG_SWEEP,
        TAG_SWEEP_ID,
        TAG_TRIAL,
        SweepTracker,
        TrialWrite,
        absolute_uri,
        artifact_home,
        bounded_http,
        check_uri,
        default_tracking_uri,
        log_artifacts,
        rebase_artifacts,
        resolve_tracking_uri,
        tracking_unusable,
    )

_EXPORTS = {
    "ARTIFACTS_DIR": "tracker",
    "CACHE_ENV": "sqlite_batch",
    "CHECK_TIMEOUT_S": "tracker",
    "CLASSIC_KIND": "tracker",
    "EXPERIMENT_KIND": "tracker",
    "MAX_ERROR_CHARS": "tracker",
    "NOTE": "answer",
    "RUN_STATUS": "tracker",
    "SHARED_VIEW": "answer",
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
    "TAG_SWEEP_ID": "tracker",
    "TAG_TRIAL": "tracker",
    "TESTED_MLFLOW": "sqlite_batch",
    "TESTED_REVISIONS": "sqlite_batch",
    "TrialPlan": "sqlite_batch",
    "TrialWrite": "tracker",
    "absolute_uri": "tracker",
    "artifact_home": "tracker",
    "best_note": "answer",
    "bounded_http": "tracker",
    "check_uri": "tracker",
    "chosen_note": "answer",
    "default_tracking_uri": "tracker",
    "log_artifacts": "tracker",
    "rebase_artifacts": "tracker",
    "replay_trial": "sync",
    "resolve_tracking_uri": "tracker",
    "run_name": "answer",
    "runs_view": "answer",
    "seed_store": "sqlite_batch",
    "store_revision": "sqlite_batch",
    "tracking_unusable": "tracker",
    "trial_about": "answer",
    "trial_summary": "sync",
    "trial_tags": "sync",
    "view_key": "answer",
    "view_query": "answer",
}

__all__ = [
    "ARTIFACTS_DIR",
    "CACHE_ENV",
    "CHECK_TIMEOUT_S",
    "CLASSIC_KIND",
    "EXPERIMENT_KIND",
    "MAX_ERROR_CHARS",
    "NOTE",
    "RUN_STATUS",
    "SHARED_VIEW",
    "SUMMARY_PREFIXES",
    "TAG_CONFIG",
    "TAG_ERROR",
    "TAG_NODE",
    "TAG_PARENT",
    "TAG_ROLE",
    "TAG_STATUS",
    "TAG_SUMMARY_KEYS",
    "TAG_SWEEP",
    "TAG_SWEEP_ID",
    "TAG_TRIAL",
    "TESTED_MLFLOW",
    "TESTED_REVISIONS",
    "SqliteBatch",
    "SweepTracker",
    "TrialPlan",
    "TrialWrite",
    "absolute_uri",
    "artifact_home",
    "best_note",
    "bounded_http",
    "check_uri",
    "chosen_note",
    "default_tracking_uri",
    "log_artifacts",
    "rebase_artifacts",
    "replay_trial",
    "resolve_tracking_uri",
    "run_name",
    "runs_view",
    "seed_store",
    "store_revision",
    "tracking_unusable",
    "trial_about",
    "trial_summary",
    "trial_tags",
    "view_key",
    "view_query",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
