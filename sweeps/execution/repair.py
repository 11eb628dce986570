"""Holes in a sweep's records, filled from the trials' state files before ``resume`` drives on.

An unreadable line in the middle of ``records.jsonl`` (torn, garbled) is skipped when the log is
replayed, and the epoch it held would stay missing: a resumed trial re-sends only its last report.
Each trial's state file (sweeps.execution.trainables) keeps every seed's history of logged
epochs, so such an epoch is rebuilt as the driver recorded it: the seeds' aggregate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sweeps.execution.packing import member_states
from sweeps.execution.seed_group import aggregate
from sweeps.execution.sink import REPORTED
from sweeps.store.layout import TRIAL_STATES
from sweeps.store.records import RecordLog, TrialRecord


def repair_holes(directory: Path, log: RecordLog, seeds: int) -> list[str]:
    """Appends to ``log`` each epoch a trial's state file holds but its record lacks.

    Only when the log skipped a line (no hole is possible otherwise): each trial is then compared
    with the history of its state file, and every epoch logged by all ``seeds`` seeds that the
    record lacks is appended as a repair (the later epochs stay). A trial without a usable state
    file is compared with its logging schedule (``log_every``) up to its last recorded epoch, and
    what it lacks is reported as missing for good.

    Returns:
        One line per trial repaired or left with a hole, for the driver to print.
    """
    if not log.skipped_lines:
        return []
    states: dict[str, dict[str, Any] | None] = {}  # by Tune trial id: a pack's file serves all
    lines = []
    for record in list(log.trials.values()):
        tune_id = record.pack or record.trial_id
        if tune_id not in states:
            states[tune_id] = _load(directory / TRIAL_STATES / f"{tune_id}.pt")
        histories = _histories(states[tune_id], record, seeds)
        if histories is None:
            missing = _unlogged(record)
            if missing:
                lines.append(f"trial {record.trial_id}: {_epochs(missing)} missing from the "
                             "records, and no usable state file to restore it from")
            continue
        restored = []
        for epoch, row in _epoch_rows(histories).items():
            if epoch not in record.epochs:
                # What the driver records (sink.REPORTED). Not restored: the node and the compute
                # seconds at that epoch, which the state does not keep; the record keeps its own.
                log.epoch(record.trial_id, epoch, {k: v for k, v in row.items() if k in REPORTED},
                          repair=True)
                restored.append(epoch)
        if restored:
            lines.append(f"trial {record.trial_id}: {_epochs(restored)} restored from its "
                         "state file")
    return lines


def _load(path: Path) -> dict[str, Any] | None:
    try:
        state = torch.load(path, weights_only=True)
    except Exception:  # missing, torn, or from another torch: nothing to repair from
        return None
    return state if isinstance(state, dict) else None


def _histories(state: dict[str, Any] | None, record: TrialRecord,
               seeds: int) -> list[list[dict[str, float]]] | None:
    """Each seed's logged epochs for ``record``, from its trial's or its pack's state."""
    if state is None:
        return None
    try:
        # a trial of pack: 1 is a pack of one, its state file under its own id
        trainers = member_states(state, record.pack or record.trial_id, record.trial_id, seeds)
        histories = [list(t["history"]) for t in trainers]
    except (TypeError, KeyError, ValueError):
        return None
    return histories if len(histories) == seeds else None


def _epoch_rows(histories: list[list[dict[str, float]]]) -> dict[int, dict[str, float]]:
    """Epoch -> the seeds' aggregate, for the epochs every seed logged (a diverged seed's last
    epoch is not among them, nor was it reported)."""
    by_epoch: dict[int, list[dict[str, float]]] = {}
    for history in histories:
        for row in history:
            by_epoch.setdefault(int(row["epoch"]), []).append(row)
    return {epoch: aggregate(rows) for epoch, rows in sorted(by_epoch.items())
            if len(rows) == len(histories)}


def _unlogged(record: TrialRecord) -> list[int]:
    """Epochs of the trial's logging schedule before its last recorded one that it lacks."""
    every = int(record.config.get("log_every") or 0)
    if every < 1:  # its start line was lost too: no schedule to compare with
        return []
    return [e for e in range(every, record.last_epoch, every) if e not in record.epochs]


def _epochs(epochs: list[int]) -> str:
    return ("epoch " if len(epochs) == 1 else "epochs ") + ", ".join(map(str, epochs))
