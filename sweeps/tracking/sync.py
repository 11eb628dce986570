"""Replaying the sweep's records into MLflow: the buffer behind "no metric is lost".

The records (sweeps.store.records) are written before MLflow is touched, so they are the buffer: when
a tracking call fails (server down, network), the driver marks the trial unsynced and later
replays the trial's whole record. Replays are idempotent: runs are found again by their tags,
epochs already logged are skipped. ``mixup-sweep sync NAME`` replays a whole sweep.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sweeps.store import tables
from sweeps.store.layout import BEST_PREFIX, LAST_PREFIX, SCHEDULE_METRICS
from sweeps.store.records import FINAL_STATUSES, TrialRecord
from sweeps.tracking.tracker import SweepTracker


def trial_summary(record: TrialRecord, *, metric: str, mode: str) -> dict[str, float]:
    """``best/<m>`` and ``last/<m>`` for every result metric (not the schedule's
    ``mixup/active``), and ``best_epoch``, of one trial."""
    row = tables.trial_rows([record], metric=metric, mode=mode)[0]
    summary = {k: float(v) for k, v in row.items()
               if k.startswith((BEST_PREFIX, LAST_PREFIX)) and isinstance(v, float)
               and k.split("/", 1)[1] not in SCHEDULE_METRICS}
    if row["best_epoch"] is not None:
        summary["best_epoch"] = float(row["best_epoch"])
    return summary


def replay_trial(tracker: SweepTracker, record: TrialRecord, *, tags: Mapping[str, str],
                 metric: str, mode: str) -> None:
    """Brings the trial's MLflow run up to its record (raises if MLflow is unreachable)."""
    tracker.forget(record.trial_id)
    node_tags = {"mixup_sweeps.node_id": record.node_id} if record.node_id else {}
    tracker.start_trial(record.trial_id, config=record.config, tags={**tags, **node_tags})
    for epoch, metrics in sorted(record.epochs.items()):
        tracker.log_epoch(record.trial_id, epoch, metrics)
    if record.status in FINAL_STATUSES:
        tracker.finish_trial(record.trial_id, status=record.status, error=record.error,
                             summary=trial_summary(record, metric=metric, mode=mode))


def trial_tags(base: Mapping[str, str], seeds: list[int]) -> dict[str, str]:
    return {**base, "mixup_sweeps.seeds": json.dumps(seeds)}
