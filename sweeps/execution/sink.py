"""The driver's sink: every trial event goes to the records first, then to MLflow, buffered.

A failed MLflow call never stops the sweep. The trial is marked unsynced and, at most every
``retry_every`` seconds, its whole record is replayed (sweeps.tracking.sync): the record log is the
buffer, so nothing reported is lost while the tracking server is down. The driver is the only
writer of records and of MLflow, which is why parallel trials never contend for a sqlite store.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
import time
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mixup_core.catalog import PLUGIN_METRIC_NAMES, objective_metrics
from mixup_core.config import from_flat, to_flat, trains_as
from sweeps.execution.packing import PACK_LOST
from sweeps.execution.progress import make_display
from sweeps.spec import SweepSpec
from sweeps.store import provenance
from sweeps.store.layout import STD_SUFFIX
from sweeps.store.records import FINAL_STATUSES, RecordLog, TrialRecord
from sweeps.tracking import SweepTracker, TrialWrite, run_name
from sweeps.tracking.sync import replay_trial, trial_summary, trial_tags


class _Reported(Container[str]):
    """The keys of a trial's report that the records keep: the epoch, every trial and view
    metric, the plugins' metrics (registered while the sweep runs), each with its ``_std``."""

    def __init__(self) -> None:
        self._known: frozenset[str] = frozenset()
        self._plugins = -1  # how many plugin metrics ``_known`` was built with

    def __contains__(self, key: object) -> bool:
        if len(PLUGIN_METRIC_NAMES) != self._plugins:  # a plugin registered a metric since
            self._plugins = len(PLUGIN_METRIC_NAMES)
            self._known = frozenset(["epoch", *objective_metrics()])
        return key in self._known


REPORTED = _Reported()


def _training_key(flat: dict[str, Any]) -> str:
    return repr(sorted(to_flat(trains_as(from_flat(flat))).items()))


@dataclass
class _Pending:
    """What one trial's MLflow run still needs, gathered since the writer's last pass."""

    start: tuple[dict[str, Any], dict[str, str], bool] | None = None
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    finish: tuple[str, dict[str, float], str | None] | None = None


class DriverSink:
    """Receives trial events in the driver: records first, then MLflow, then progress.

    Records are written at once, in the thread that hears the event (Ray Tune's loop). MLflow
    writes are gathered per trial and sent by one writer thread every ``write_every`` seconds
    (``SweepTracker.write_trials``: every trial's start, epochs, tags and end since the last
    pass; in a sqlite store one transaction for them all), so Tune's loop, which hands each
    pack its next step only once the callbacks return, never waits on MLflow.

    A failed MLflow call never stops the sweep. The trial is marked unsynced and, at most every
    ``retry_every`` seconds, its whole record is replayed (sweeps.tracking.sync): the record log is the
    buffer, so nothing reported is lost while the tracking server is down.
    """

    def __init__(self, directory: Path, spec: SweepSpec, tracker: SweepTracker, stream: TextIO,
                 *, retry_every: float = 5.0, write_every: float = 1.0,
                 packed: bool = False) -> None:
        self.packed = packed
        self.directory, self.spec, self.tracker = directory, spec, tracker
        self.log = RecordLog(directory)
        self.base = to_flat(spec.base)
        self.display = make_display(metric=spec.objective.metric, mode=spec.objective.mode,
                                    total=spec.trial_count(), stream=stream,
                                    budget=spec.base.epochs_to_train)
        self._names: dict[str, tuple[str, int]] = {}  # trial id -> (run name, epoch budget)
        self.retry_every, self.write_every = retry_every, write_every
        self.unsynced: set[str] = set()
        self.tracking_failures = 0
        self.replayed = 0
        self.last_error = ""
        #: Seconds the writer thread spent in MLflow calls (the driver's MLflow share).
        self.mlflow_seconds = 0.0
        self._next_retry = 0.0
        self._outage_reported = False
        #: This driver's provenance, written into every trial it starts.
        self.provenance = provenance.collect()
        #: The grid points merged into each trial that runs, by what the trial trains.
        self.merged = {_training_key(to_flat(spec.base.replace(**t.point))): t.merged
                       for t in spec.grid_trials() if t.merged}
        # The records and _pending are shared by Tune's thread and the writer: one lock.
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending: dict[str, _Pending] = {}
        self._stopping = False
        # A driver killed with MLflow writes still pending left runs behind their records:
        # the first pass compares, and replays every trial whose run has not ended with it.
        self._reconcile = bool(self.log.trials)
        self._passes = self._written = self._wanted = 0  # writer passes begun, ended, asked for
        self._writer = threading.Thread(target=self._write_loop, name="mlflow-writer",
                                        daemon=True)
        self._writer.start()

    # -- MLflow, buffered

    def _queue(self, trial_id: str) -> _Pending | None:
        """The trial's pending writes (None: unsynced, the next replay delivers its record)."""
        if trial_id in self.unsynced:
            return None
        return self._pending.setdefault(trial_id, _Pending())

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                if not self._stopping and self._wanted <= self._passes:
                    self._wake.wait(timeout=self.write_every)
                batch, self._pending = self._pending, {}
                stopping = self._stopping
                self._passes += 1
            self._write(batch)
            self.resync()
            with self._wake:
                self._written = self._passes
                self._wake.notify_all()
            if stopping:
                return

    def drain(self, timeout: float = 30.0) -> bool:
        """Waits until everything heard before this call has been through the writer."""
        with self._wake:
            target = self._passes + 1  # the pass that starts after now
            self._wanted = max(self._wanted, target)
            self._wake.notify_all()
            return self._wake.wait_for(lambda: self._written >= target, timeout=timeout)

    def _write(self, batch: dict[str, _Pending]) -> None:
        started = time.perf_counter()
        if self._reconcile:
            try:
                ended = self.tracker.ended_trials()
            except Exception as err:  # unknown: every trial replays once MLflow answers
                ended = set()
                with self._lock:
                    self._failed(None, err)
            self._reconcile = False
            with self._lock:
                for trial_id, record in self.log.trials.items():
                    if record.status not in FINAL_STATUSES or trial_id not in ended:
                        self.unsynced.add(trial_id)
                        batch.pop(trial_id, None)  # the replay writes its whole record
        writes = [TrialWrite(trial_id, pending.start, pending.epochs, pending.tags, pending.finish)
                  for trial_id, pending in batch.items() if trial_id not in self.unsynced]
        failed = self.tracker.write_trials(writes) if writes else {}  # it catches, per trial
        with self._lock:
            for trial_id, why in failed.items():
                self._failed(trial_id, why)
        self.mlflow_seconds += time.perf_counter() - started

    def _failed(self, trial_id: str | None, err: Exception) -> None:
        self.tracking_failures += 1
        if trial_id is not None:
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
        with self._lock:
            waiting = sorted(self.unsynced)
        for trial_id in waiting:
            # MLflow is called without the lock (Tune's thread keeps recording meanwhile), on a
            # copy of the record; what the record gained meanwhile is queued for the writer.
            with self._lock:
                live = self.log.trials[trial_id]
                record = dataclasses.replace(live, epochs=dict(live.epochs))
            try:
                replay_trial(self.tracker, record, tags=self.tags_of(record),
                             metric=objective.metric, mode=objective.mode)
            except Exception as err:
                self.last_error = f"{type(err).__name__}: {str(err).strip()[:300]}"
                self._next_retry = time.monotonic() + self.retry_every
                return False
            with self._lock:
                self.unsynced.discard(trial_id)
                self.replayed += 1
                live = self.log.trials[trial_id]
                gained = sorted(e for e in live.epochs if e not in record.epochs)
                ended = live.status in FINAL_STATUSES and record.status not in FINAL_STATUSES
                if gained or ended:
                    pending = self._pending.setdefault(trial_id, _Pending())
                    pending.epochs += [(e, live.epochs[e]) for e in gained]
                    if ended:
                        pending.finish = (live.status, trial_summary(
                            live, metric=objective.metric, mode=objective.mode), live.error)
        if self._outage_reported:
            print(f"MLflow at {self.tracker.tracking_uri} answers again; buffered results "
                  "delivered", file=sys.stderr, flush=True)
            self._outage_reported = False
        return True

    def stop_writer(self) -> None:
        """Sends what is pending and stops the writer thread (the sweep's end)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._writer.join()

    def flush(self, *, timeout: float) -> bool:
        """Stops the writer, then keeps replaying until everything is delivered or ``timeout``
        seconds have passed."""
        self.stop_writer()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                batch, self._pending = self._pending, {}
            self._write(batch)  # what a replay left queued
            if self.resync(force=True) and not self._pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.retry_every, max(0.0, deadline - time.monotonic())))

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
        with self._lock:
            new = trial_id not in self.log.trials  # no record yet: no MLflow run either
            self.log.trial_started(trial_id, config, provenance=self.provenance,
                                   merged=list(merged), pack=pack)
            pending = self._queue(trial_id)
            if pending is not None:
                was_new = pending.start[2] if pending.start is not None else new
                pending.start = (config, self.tags_of(self.log.trials[trial_id]), was_new)
            last = self.log.trials[trial_id].last_epoch
        name = run_name(config, list(self.spec.search_space))
        budget = from_flat(config).epochs_to_train
        self._names[trial_id] = (name, budget)
        self.display.trial(trial_id, epoch=last, budget=budget, name=name)

    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        metrics = {k: v for k, v in result.items() if k in REPORTED}
        if "epoch" not in metrics:
            return
        epoch = int(metrics["epoch"])
        node = result.get("node_id")
        with self._lock:
            first = trial_id in self.log.trials and not self.log.trials[trial_id].epochs
            self.log.epoch(trial_id, epoch, metrics, node_id=node,
                           compute_seconds=result.get("trial/compute_seconds"))
            pending = self._queue(trial_id)
            if pending is not None:
                if first and node:
                    pending.tags["mixup_sweeps.node_id"] = str(node)
                pending.epochs.append((epoch, metrics))
        if trial_id in self._names:
            name, budget = self._names[trial_id]
            self.display.trial(trial_id, epoch=epoch, budget=budget, name=name)
        value = metrics.get(self.spec.objective.metric)
        if value is not None and math.isfinite(value):
            self.display.offer(trial_id, epoch, value,
                               metrics.get(self.spec.objective.metric + STD_SUFFIX))
            self.display.maybe_print()

    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None:
        with self._lock:
            record = self.log.trials.get(trial_id)
            budget = from_flat(record.config).epochs_to_train if record and record.config else 0
            if status == "TERMINATED" and record is not None and record.last_epoch < budget:
                status = "STOPPED"  # cut short by the scheduler
            self.log.trial_finished(trial_id, status, error)
            objective = self.spec.objective
            summary = trial_summary(self.log.trials[trial_id], metric=objective.metric,
                                    mode=objective.mode)
            pending = self._queue(trial_id)
            if pending is not None:
                pending.finish = (status, summary, error)
        self.display.ended(trial_id)

    def trial_settled(self, trial_id: str, status: str, error: str | None) -> None:
        """Closes a trial that Tune finished but our records still hold open."""
        record = self.log.trials.get(trial_id)
        if record is not None and record.status not in FINAL_STATUSES:
            self.trial_finished(trial_id, status, error)

    def pack_started(self, pack_id: str, members: list[tuple[str, dict[str, Any]]], *,
                     only_new: bool = False) -> None:
        """A Tune trial training a pack began (or began again after a failure or a resume):
        its member trials start, except those the records already hold as ended (but for the
        members of a failed pack, which go on in a split pack). ``only_new``: only those
        without a record (a pack that failed before it started)."""
        for trial_id, params in members:
            record = self.log.trials.get(trial_id)
            if only_new and record is not None:
                continue
            if (record is None or record.status not in FINAL_STATUSES
                    or (record.error or "").startswith(PACK_LOST)):
                self.trial_started(trial_id, params, pack=pack_id)

    def pack_settled(self, pack_id: str, status: str, error: str | None) -> None:
        """A pack's Tune trial ended: its member trials still open end with it (failed: with
        ``pack lost: <why>``, which the driver splits into new packs, packing.plan_split)."""
        if status == "ERROR":
            error = f"{PACK_LOST}: {error}"
        for record in list(self.log.trials.values()):
            if record.pack == pack_id and record.status not in FINAL_STATUSES:
                self.trial_finished(record.trial_id, status, error)

    def progress(self, counts: dict[str, int]) -> None:
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
