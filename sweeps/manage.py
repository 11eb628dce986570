"""Managing the sweeps of a storage folder: ``list``, ``status`` and ``delete``.

Everything here reads a sweep's ``sweep.json`` and its records; nothing imports torch or Ray, so
the commands answer in well under a second. A sweep is *running* while a driver holds its lock
(sweeps.store.lock), *finished* when every planned trial has ended, and *interrupted* otherwise
(``mixup-sweep resume NAME`` goes on with it).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.errors import UsageError
from sweeps.store import lock
from sweeps.store.layout import FINAL_STATUSES, list_sweeps, read_meta, sweep_dir
from sweeps.store.records import RECORDS_FILE, RecordLog, TrialRecord


@dataclass(frozen=True)
class SweepSummary:
    """One line of ``mixup-sweep list``."""

    name: str
    status: str  # running | finished | interrupted
    done: int  # trials ended (TERMINATED, STOPPED or ERROR)
    total: int | None  # trials planned (None: not known, a sweep from before it was kept)
    errored: int
    metric: str
    mode: str
    best: float | None  # the best trial's objective at its best epoch
    created: float


@dataclass(frozen=True)
class RunningTrial:
    trial_id: str
    epoch: int
    epochs: int
    settings: dict[str, Any]


@dataclass(frozen=True)
class SweepStatus:
    """What ``mixup-sweep status NAME`` shows."""

    summary: SweepSummary
    running: list[RunningTrial] = field(default_factory=list)
    epochs_done: int = 0
    epochs_total: int = 0
    rate: float | None = None  # trial-epochs per second reported by the current driver
    eta_seconds: float | None = None


def _running(directory: Path) -> bool:
    with lock.idle(directory) as idle:
        return not idle and (directory / lock.LOCK_FILE).is_file() and bool(
            (directory / lock.LOCK_FILE).read_text().strip())


def _best(records: list[TrialRecord], metric: str, mode: str) -> float | None:
    values = [m[metric] for r in records for m in r.epochs.values()
              if isinstance(m.get(metric), (int, float)) and math.isfinite(m[metric])]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def _summary(storage: str | Path, name: str, meta: dict[str, Any],
             records: list[TrialRecord]) -> SweepSummary:
    directory = sweep_dir(storage, name)
    metric, mode = meta["objective"]["metric"], meta["objective"]["mode"]
    done = sum(1 for r in records if r.status in FINAL_STATUSES)
    total = meta.get("trials_planned")
    total = int(total) if isinstance(total, int) else None
    if _running(directory):
        status = "running"
    elif done == len(records) and (total is None or done >= total) and records:
        status = "finished"
    else:
        status = "interrupted"
    return SweepSummary(name=name, status=status, done=done, total=total,
                        errored=sum(1 for r in records if r.status == "ERROR"), metric=metric,
                        mode=mode, best=_best(records, metric, mode),
                        created=float(meta.get("created") or 0.0))


def summaries(storage: str | Path) -> list[SweepSummary]:
    """Every sweep in ``storage``, newest first."""
    out = []
    for name in list_sweeps(storage):
        meta = read_meta(storage, name)
        out.append(_summary(storage, name, meta,
                            list(RecordLog(sweep_dir(storage, name)).trials.values())))
    return sorted(out, key=lambda s: s.created, reverse=True)


def _searched(meta: dict[str, Any]) -> list[str]:
    from sweeps.spec import yaml_numbers

    spec = yaml_numbers.safe_load(meta.get("spec_text") or "") or {}
    space = spec.get("search_space") if isinstance(spec, dict) else None
    return list(space) if isinstance(space, dict) else []


def _budget(record: TrialRecord) -> int:
    config = record.config or {}
    stop, epochs = config.get("mixup.stop_epoch"), int(config.get("optim.epochs") or 0)
    if config.get("mixup.stop_mode") == "end_training" and stop is not None:
        return min(epochs, max(int(stop), 1))
    return epochs


def status(storage: str | Path, name: str, *, now: float | None = None) -> SweepStatus:
    """The sweep's trials in flight (epoch of budget, searched settings) and an ETA from the
    rate at which the current driver's trials report epochs."""
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    log = RecordLog(directory)
    records = list(log.trials.values())
    summary = _summary(storage, name, meta, records)
    keys = _searched(meta)
    running = [RunningTrial(r.trial_id, r.last_epoch, _budget(r),
                            {k: (r.config or {}).get(k) for k in keys})
               for r in records if r.status not in FINAL_STATUSES]
    budgets = [_budget(r) for r in records]
    done = sum(min(r.last_epoch, b) if r.status not in FINAL_STATUSES else b
               for r, b in zip(records, budgets, strict=True))
    typical = max(budgets, default=0)
    unstarted = max(0, (summary.total or len(records)) - len(records))
    total = sum(budgets) + unstarted * typical
    rate = eta = None
    if summary.status == "running":
        now = time.time() if now is None else now
        since = _driver_since(directory)
        reports = _epoch_reports_since(directory / RECORDS_FILE, since)
        if since is not None and reports and now > since:
            per_report = _log_interval(records) or 1  # epochs between two reports
            rate = reports * per_report / (now - since)
            eta = max(0.0, total - done) / rate if rate > 0 else None
    return SweepStatus(summary=summary, running=running, epochs_done=done, epochs_total=total,
                       rate=rate, eta_seconds=eta)


def _log_interval(records: list[TrialRecord]) -> int | None:
    for record in records:
        epochs = sorted(record.epochs)
        if len(epochs) >= 2:
            return epochs[1] - epochs[0]
    return None


def _driver_since(directory: Path) -> float | None:
    try:
        info = json.loads((directory / lock.LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    since = info.get("since") if isinstance(info, dict) else None
    return float(since) if isinstance(since, (int, float)) else None


def _epoch_reports_since(path: Path, since: float | None) -> int:
    if since is None or not path.is_file():
        return 0
    count = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if '"type": "epoch"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written
            if float(event.get("time", 0.0)) >= since:
                count += 1
    return count


@dataclass(frozen=True)
class Deleted:
    folder: Path
    runs: int  # MLflow runs deleted (parent and children)


def delete(storage: str | Path, name: str) -> Deleted:
    """Deletes the sweep's MLflow runs (parent and children, MLflow's soft delete) and its folder.

    A running sweep is refused. When the tracking store cannot be reached the folder is kept and
    the error says so: deleting only half would leave runs nobody can find again.
    """
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    if _running(directory):
        raise UsageError(f"sweep {name!r} is running ({lock.holder(directory)}); stop it first")
    from sweeps.tracking import SweepTracker

    try:
        runs = SweepTracker(meta["tracking_uri"], sweep_name=name).delete_runs()
    except Exception as err:  # any MLflow failure: keep everything
        raise UsageError(f"sweep {name!r}: its MLflow runs at {meta['tracking_uri']} could not "
                         f"be deleted ({type(err).__name__}: {str(err).strip()[:200]}); nothing "
                         f"was deleted") from None
    shutil.rmtree(directory)
    return Deleted(directory, runs)
