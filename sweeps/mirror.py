"""The driver's sink: every trial event goes to the records first, then to MLflow, buffered.

A failed MLflow call never stops the sweep. The trial is marked unsynced and, at most every
``retry_every`` seconds, its whole record is replayed (sweeps.sync): the record log is the
buffer, so nothing reported is lost while the tracking server is down. The driver is the only
writer of records and of MLflow, which is why parallel trials never contend for a sqlite store.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mixup_core.config import from_flat, to_flat, trains_as
from mixup_core.training import METRIC_NAMES
from sweeps import provenance
from sweeps.layout import STD_SUFFIX
from sweeps.progress import ProgressLine
from sweeps.records import FINAL_STATUSES, RecordLog, TrialRecord
from sweeps.spec import SweepSpec
from sweeps.sync import replay_trial, trial_summary, trial_tags
from sweeps.tracking import SweepTracker

REPORTED = {"epoch", *METRIC_NAMES, *(m + STD_SUFFIX for m in METRIC_NAMES)}


def _training_key(flat: dict[str, Any]) -> str:
    return repr(sorted(to_flat(trains_as(from_flat(flat))).items()))


class DriverSink:
    """Receives trial events in the driver: records first, then MLflow, then progress.

    A failed MLflow call never stops the sweep. The trial is marked unsynced and, at most every
    ``retry_every`` seconds, its whole record is replayed (sweeps.sync): the record log is the
    buffer, so nothing reported is lost while the tracking server is down.
    """

    def __init__(self, directory: Path, spec: SweepSpec, tracker: SweepTracker, stream: TextIO,
                 *, retry_every: float = 5.0, packed: bool = False) -> None:
        self.packed = packed
        self.directory, self.spec, self.tracker = directory, spec, tracker
        self.log = RecordLog(directory)
        self.base = to_flat(spec.base)
        self.display = ProgressLine(metric=spec.objective.metric, mode=spec.objective.mode,
                                    total=spec.trial_count(), stream=stream)
        self.retry_every = retry_every
        self.unsynced: set[str] = set()
        self.tracking_failures = 0
        self.replayed = 0
        self.last_error = ""
        self._next_retry = 0.0
        self._outage_reported = False
        #: This driver's provenance, written into every trial it starts.
        self.provenance = provenance.collect()
        #: The grid points merged into each trial that runs, by what the trial trains.
        self.merged = {_training_key(to_flat(spec.base.replace(**t.point))): t.merged
                       for t in spec.grid_trials() if t.merged}

    # -- MLflow, buffered

    def _send(self, trial_id: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.resync()
        if trial_id in self.unsynced:
            return  # the record already holds this event; the next replay delivers it
        try:
            fn(*args, **kwargs)
        except Exception as err:
            self._failed(trial_id, err)

    def _failed(self, trial_id: str, err: Exception) -> None:
        self.tracking_failures += 1
        self.unsynced.add(trial_id)
        self._next_retry = time.monotonic() + self.retry_every
        if not self._outage_reported:
            self._outage_reported = True
            print(f"warning: MLflow at {self.tracker.tracking_uri} failed "
                  f"({str(err).strip().splitlines()[0][:160]}); results are kept in "
                  f"{self.log.path.name} and replayed when it answers again",
                  file=sys.stderr, flush=True)

    def resync(self, *, force: bool = False) -> bool:
        """Replays unsynced trials if it is time; True when nothing is left unsynced."""
        if not self.unsynced:
            return True
        if not force and time.monotonic() < self._next_retry:
            return False
        objective = self.spec.objective
        for trial_id in sorted(self.unsynced):
            record = self.log.trials[trial_id]
            try:
                replay_trial(self.tracker, record, tags=self.tags_of(record),
                             metric=objective.metric, mode=objective.mode)
            except Exception as err:
                self.last_error = f"{type(err).__name__}: {str(err).strip()[:300]}"
                self._next_retry = time.monotonic() + self.retry_every
                return False
            self.unsynced.discard(trial_id)
            self.replayed += 1
        if self._outage_reported:
            print(f"MLflow at {self.tracker.tracking_uri} answers again; buffered results "
                  "delivered", file=sys.stderr, flush=True)
            self._outage_reported = False
        return True

    def flush(self, *, timeout: float) -> bool:
        """Keeps replaying until everything is delivered or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while not self.resync(force=True):
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.retry_every, max(0.0, deadline - time.monotonic())))
        return True

    # -- EventSink

    def tags_of(self, record: TrialRecord) -> dict[str, str]:
        """MLflow tags from what the record says (its provenance), never from this process."""
        tags = trial_tags(provenance.as_tags(record.provenance), list(self.spec.seeds))
        if record.merged:  # MLflow tag values are capped (8,000 characters): a count, and a list
            tags["mixup_sweeps.stands_for"] = str(1 + len(record.merged))
            tags["mixup_sweeps.merged"] = json.dumps(record.merged)[:4000]
        return tags

    def trial_started(self, trial_id: str, params: dict[str, Any], *,
                      pack: str | None = None) -> None:
        config = to_flat(from_flat({**self.base, **params}))
        merged = self.merged.get(_training_key(config), ())
        self.log.trial_started(trial_id, config, provenance=self.provenance, merged=list(merged),
                               pack=pack)
        self._send(trial_id, self.tracker.start_trial, trial_id, config=config,
                   tags=self.tags_of(self.log.trials[trial_id]))

    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        metrics = {k: v for k, v in result.items() if k in REPORTED}
        if "epoch" not in metrics:
            return
        epoch = int(metrics["epoch"])
        node = result.get("node_id")
        first = trial_id in self.log.trials and not self.log.trials[trial_id].epochs
        self.log.epoch(trial_id, epoch, metrics, node_id=node,
                       compute_seconds=result.get("trial/compute_seconds"))
        if first and node:
            self._send(trial_id, self.tracker.set_tags, trial_id,
                       {"mixup_sweeps.node_id": str(node)})
        self._send(trial_id, self.tracker.log_epoch, trial_id, epoch, metrics)
        value = metrics.get(self.spec.objective.metric)
        if value is not None and math.isfinite(value):
            self.display.offer(trial_id, epoch, value,
                               metrics.get(self.spec.objective.metric + STD_SUFFIX))
            self.display.maybe_print()

    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None:
        record = self.log.trials.get(trial_id)
        budget = from_flat(record.config).epochs_to_train if record and record.config else 0
        if status == "TERMINATED" and record is not None and record.last_epoch < budget:
            status = "STOPPED"  # cut short by the scheduler
        self.log.trial_finished(trial_id, status, error)
        objective = self.spec.objective
        summary = trial_summary(self.log.trials[trial_id], metric=objective.metric,
                                mode=objective.mode)
        self._send(trial_id, self.tracker.finish_trial, trial_id, status=status,
                   summary=summary, error=error)

    def trial_settled(self, trial_id: str, status: str, error: str | None) -> None:
        """Closes a trial that Tune finished but our records still hold open."""
        record = self.log.trials.get(trial_id)
        if record is not None and record.status not in FINAL_STATUSES:
            self.trial_finished(trial_id, status, error)

    def pack_started(self, pack_id: str, members: list[tuple[str, dict[str, Any]]]) -> None:
        """A Tune trial training a pack began (or began again after a failure or a resume):
        its member trials start, except those the records already hold as ended."""
        for trial_id, params in members:
            record = self.log.trials.get(trial_id)
            if record is None or record.status not in FINAL_STATUSES:
                self.trial_started(trial_id, params, pack=pack_id)

    def pack_settled(self, pack_id: str, status: str, error: str | None) -> None:
        """A pack's Tune trial ended: its member trials still open end with it."""
        for record in list(self.log.trials.values()):
            if record.pack == pack_id and record.status not in FINAL_STATUSES:
                self.trial_finished(record.trial_id, status, error)

    def progress(self, counts: dict[str, int]) -> None:
        self.resync()
        if self.packed:  # Tune counts packs; the display counts the user's trials
            counts = {}
            for record in self.log.trials.values():
                status = "TERMINATED" if record.status == "STOPPED" else record.status
                counts[status] = counts.get(status, 0) + 1
            counts["PENDING"] = max(0, self.display.total - len(self.log.trials))
        self.display.update(counts)


@dataclass(frozen=True)
class SinkFactory:
    """Picklable handle on the driver's sink (Ray pickles callbacks with the experiment)."""

    directory: str

    def open(self) -> DriverSink:
        sink = OPEN_SINKS.get(self.directory)
        if sink is None:
            raise RuntimeError(f"no sweep driver is running for {self.directory}")
        return sink


#: The sinks of the drivers running in this process, by sweep folder (SinkFactory finds them).
OPEN_SINKS: dict[str, DriverSink] = {}
