"""The sweep's own record of what happened: an append-only JSON-lines event log.

The driver is the only writer. Every trial start, epoch report and trial end is appended and
flushed at once, so a killed driver loses nothing that was reported. Replaying the log (``load``)
keeps the last report of each (trial, epoch): a trial resumed from its checkpoint re-reports the
epochs after that checkpoint, and those replace, never duplicate, the earlier rows. A repaired
epoch (``"repair": true``, sweeps.execution.repair) fills a hole left by an unreadable line and
leaves the later epochs alone. Parquet tables and ``best`` are derived from this log.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sweeps.store.layout import FINAL_STATUSES

__all__ = ["FINAL_STATUSES", "RECORDS_FILE", "RecordLog", "TrialRecord"]

RECORDS_FILE = "records.jsonl"


@dataclass
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    status: str = "RUNNING"
    node_id: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    compute_seconds: float = 0.0
    epochs: dict[int, dict[str, float]] = field(default_factory=dict)
    #: Git commit, package versions and host of the driver that started the trial.
    provenance: dict[str, Any] | None = None
    #: The other grid points this trial stands for: they train exactly like it (merged).
    merged: list[dict[str, Any]] = field(default_factory=list)
    #: The Ray Tune trial that trained it as part of a pack (None: a Tune trial of its own).
    pack: str | None = None

    @property
    def last_epoch(self) -> int:
        return max(self.epochs, default=0)


def _clean(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics only; NaN/inf become None in JSON (and NaN again when loaded)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[key] = float(value) if math.isfinite(value) else None
    return out


class RecordLog:
    """Appends events to ``<sweep_dir>/records.jsonl`` and replays them."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / RECORDS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None
        #: Line numbers (from 1) that the last ``load`` skipped: not well-formed events.
        self.skipped_lines: list[int] = []
        #: The replayed state, kept current by every append.
        self.trials: dict[str, TrialRecord] = self.load()

    def _append(self, event: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
            if _ends_torn(self.path):  # a driver killed mid-line: start the next event afresh
                self._file.write("\n")
        self._file.write(json.dumps(event, sort_keys=True) + "\n")
        self._file.flush()
        _apply(self.trials, event)

    def trial_started(self, trial_id: str, config: dict[str, Any], *,
                      provenance: dict[str, Any] | None = None,
                      merged: list[dict[str, Any]] | None = None,
                      pack: str | None = None) -> None:
        event = {"type": "start", "trial_id": trial_id, "config": config, "time": time.time()}
        if provenance is not None:
            event["provenance"] = provenance
        if merged:
            event["merged"] = merged
        if pack is not None:
            event["pack"] = pack
        self._append(event)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, Any], *,
              node_id: str | None = None, compute_seconds: float | None = None,
              repair: bool = False) -> None:
        """An epoch's report. ``repair``: it fills a hole, so the later epochs stay (a report
        otherwise replaces them: a resumed trial reports them again)."""
        event = {"type": "epoch", "trial_id": trial_id, "epoch": int(epoch),
                 "metrics": _clean(metrics), "node_id": node_id,
                 "compute_seconds": compute_seconds, "time": time.time()}
        if repair:
            event["repair"] = True
        self._append(event)

    def trial_finished(self, trial_id: str, status: str, error: str | None = None) -> None:
        self._append({"type": "end", "trial_id": trial_id, "status": status, "error": error,
                      "time": time.time()})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def load(self) -> dict[str, TrialRecord]:
        """Replays the log: one record per trial, last report per epoch wins.

        Lines that are not events (cut short by a killed driver, edited by hand, not UTF-8) are
        skipped, with one warning on stderr that names them, and kept in ``skipped_lines``.
        """
        trials: dict[str, TrialRecord] = {}
        skipped: list[int] = []
        self.skipped_lines = skipped
        if not self.path.exists():
            return trials
        for number, raw in enumerate(self.path.read_bytes().splitlines(), start=1):
            if not raw.strip():
                continue
            event = _event(raw)
            if event is None:
                skipped.append(number)
                continue
            _apply(trials, event)
        if skipped:
            _warn_once(self.path, skipped)
        return trials


_WARNED: set[tuple[str, tuple[int, ...]]] = set()


def _warn_once(path: Path, lines: list[int]) -> None:
    key = (str(path), tuple(lines))
    if key in _WARNED:
        return
    _WARNED.add(key)
    shown = ", ".join(map(str, lines[:10])) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
    print(f"warning: {path}: skipped {len(lines)} line(s) that are not sweep events "
          f"(line {shown})", file=sys.stderr)


def _ends_torn(path: Path) -> bool:
    with path.open("rb") as raw:
        raw.seek(0, 2)
        if raw.tell() == 0:
            return False
        raw.seek(-1, 2)
        return raw.read(1) != b"\n"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _event(raw: bytes) -> dict[str, Any] | None:
    """The event on one line, or None when the line is not a well-formed event."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("trial_id"), str):
        return None
    kind = event.get("type")
    if not _number(event.get("time")):
        return None
    if kind == "start":
        ok = (isinstance(event.get("config"), dict)
              and isinstance(event.get("provenance", {}), dict)
              and isinstance(merged := event.get("merged", []), list)
              and all(isinstance(point, dict) for point in merged)
              and isinstance(event.get("pack", ""), str))
    elif kind == "epoch":
        metrics = event.get("metrics")
        ok = (isinstance(event.get("epoch"), int) and isinstance(metrics, dict)
              and all(v is None or _number(v) for v in metrics.values())
              and isinstance(event.get("repair", False), bool))
    elif kind == "end":
        ok = event.get("status") in FINAL_STATUSES
    else:
        ok = False
    return event if ok else None


def _apply(trials: dict[str, TrialRecord], event: dict[str, Any]) -> None:
    trial_id = event["trial_id"]
    if event["type"] == "start":
        record = trials.get(trial_id)
        if record is None:
            trials[trial_id] = TrialRecord(trial_id, event["config"], started_at=event["time"],
                                           provenance=event.get("provenance"),
                                           merged=event.get("merged", []),
                                           pack=event.get("pack"))
        else:  # restarted after a failure or a driver restart
            record.status, record.error, record.finished_at = "RUNNING", None, None
            record.config = event["config"] or record.config
            record.started_at = record.started_at or event["time"]
            record.provenance = event.get("provenance") or record.provenance
            record.merged = event.get("merged", record.merged)
            record.pack = event.get("pack", record.pack)
        return
    record = trials.setdefault(trial_id, TrialRecord(trial_id, {}))
    if event["type"] == "epoch":
        metrics = {k: (math.nan if v is None else v) for k, v in event["metrics"].items()}
        record.epochs[event["epoch"]] = metrics
        record.node_id = event.get("node_id") or record.node_id
        if event.get("compute_seconds") is not None:
            record.compute_seconds = event["compute_seconds"]
        if event.get("repair"):  # a hole filled: the later epochs are the trial's own
            return
        # A re-reported epoch replaces the later ones too: they will be reported again.
        for later in [e for e in record.epochs if e > event["epoch"]]:
            del record.epochs[later]
    elif event["type"] == "end":
        record.status, record.error, record.finished_at = (
            event["status"], event.get("error"), event["time"])
