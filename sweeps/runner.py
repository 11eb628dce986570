"""The sweep driver: ``run``, ``resume`` and what happens around Ray.

Layout of a sweep's folder, ``<storage>/<name>/``:

* ``sweep.json``: name, the spec as given, tracking URI, MLflow parent run, creation time;
* ``records.jsonl``: the event log (sweeps.records), written as results arrive;
* ``trials.parquet``, ``epochs.parquet``: the tables (sweeps.tables), written at the end;
* ``tune/``: Ray Tune's experiment state and trial checkpoints (what ``resume`` restores).

The driver is the only writer of records and of MLflow, which is why parallel trials never
contend for the sqlite store.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from mixup_core.config import from_flat, to_flat
from mixup_core.data import check_available
from mixup_core.training import METRIC_NAMES
from sweeps import yaml_numbers
from sweeps.errors import TrackingUnavailable, UsageError
from sweeps.layout import META_FILE, check_name, read_meta, sweep_dir, writable_storage, write_meta
from sweeps.lock import DriverLock
from sweeps.progress import ProgressLine
from sweeps.records import FINAL_STATUSES, RecordLog
from sweeps.results import write_tables
from sweeps.seed_group import STD_SUFFIX
from sweeps.spec import SweepSpec, parse_spec
from sweeps.sync import replay_trial, trial_summary, trial_tags
from sweeps.tracking import SweepTracker, bounded_http, tracking_unusable

REPORTED = {"epoch", *METRIC_NAMES, *(m + STD_SUFFIX for m in METRIC_NAMES)}


def package_versions() -> dict[str, str]:
    versions = {}
    for dist in ("mixup-sweeps", "torch", "ray", "mlflow", "optuna", "pyarrow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


# ---------------------------------------------------------------------------- the driver sink


class DriverSink:
    """Receives trial events in the driver: records first, then MLflow, then progress.

    A failed MLflow call never stops the sweep. The trial is marked unsynced and, at most every
    ``retry_every`` seconds, its whole record is replayed (sweeps.sync): the record log is the
    buffer, so nothing reported is lost while the tracking server is down.
    """

    def __init__(self, directory: Path, spec: SweepSpec, tracker: SweepTracker, stream: TextIO,
                 *, retry_every: float = 5.0) -> None:
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
        self.tags = trial_tags({"mixup_sweeps.git_commit": git_commit(),
                                **{f"mixup_sweeps.version.{k}": v
                                   for k, v in package_versions().items()}},
                               list(spec.seeds))

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
                replay_trial(self.tracker, record, tags=self.tags, metric=objective.metric,
                             mode=objective.mode)
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

    def trial_started(self, trial_id: str, params: dict[str, Any]) -> None:
        config = to_flat(from_flat({**self.base, **params}))
        self.log.trial_started(trial_id, config)
        self._send(trial_id, self.tracker.start_trial, trial_id, config=config, tags=self.tags)

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
            self.display.offer(trial_id, epoch, value)
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

    def progress(self, counts: dict[str, int]) -> None:
        self.resync()
        self.display.update(counts)


@dataclass(frozen=True)
class SinkFactory:
    """Picklable handle on the driver's sink (Ray pickles callbacks with the experiment)."""

    directory: str

    def open(self) -> DriverSink:
        sink = _OPEN_SINKS.get(self.directory)
        if sink is None:
            raise RuntimeError(f"no sweep driver is running for {self.directory}")
        return sink


_OPEN_SINKS: dict[str, DriverSink] = {}


# ---------------------------------------------------------------------------- run / resume


@dataclass
class SweepOutcome:
    directory: Path
    trials: int
    errored: int
    wall_seconds: float
    tracking_uri: str
    unsynced: int  # trials whose MLflow runs lag their records (replay: mixup-sweep sync)
    tracking_failures: int
    mlflow_complete: bool
    last_tracking_error: str = ""


def spec_from_meta(meta: dict[str, Any]) -> SweepSpec:
    if not isinstance(meta.get("spec_text"), str) or not isinstance(meta.get("spec_path"), str):
        raise UsageError(f"sweep {meta.get('name')!r}: {META_FILE} holds no spec to run it from")
    spec = parse_spec(yaml_numbers.safe_load(meta["spec_text"]), source=meta["spec_path"])
    if meta.get("smoke"):
        spec = spec.shrunk()
    return spec.with_overrides(num_samples=meta.get("num_samples"),
                               max_concurrent=meta.get("max_concurrent"))


def _drive(spec: SweepSpec, directory: Path, meta: dict[str, Any], *, address: str | None,
           resume: bool, stream: TextIO) -> SweepOutcome:
    from sweeps import ray_backend  # Ray is imported only when a sweep really runs

    # A down tracking server must fail fast (the records buffer), not block in MLflow's retries.
    with bounded_http(10, keep_user_settings=True):
        return _drive_tracked(spec, directory, meta, ray_backend, address=address, resume=resume,
                              stream=stream)


def _drive_tracked(spec: SweepSpec, directory: Path, meta: dict[str, Any], ray_backend: Any, *,
                   address: str | None, resume: bool, stream: TextIO) -> SweepOutcome:
    tracker = _open_parent_run(spec, directory, meta, meta["tracking_uri"])
    try:
        sink = DriverSink(directory, spec, tracker, stream)
    except BaseException:
        with contextlib.suppress(Exception):
            tracker.finish_sweep("FAILED")  # never leave the parent run RUNNING
        raise
    _OPEN_SINKS[str(directory)] = sink
    started = time.monotonic()
    status = "FAILED"
    try:
        cluster = ray_backend.connect(address or meta.get("address"))
        print(f"Ray: {cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, "
              f"{cluster['gpus']:g} GPUs; {spec.trial_count()} trials planned", file=stream,
              flush=True)
        if resume:
            ray_backend.resume_sweep(spec, directory)
        else:
            ray_backend.run_sweep(spec, directory, SinkFactory(str(directory)))
        status = "FINISHED"
    finally:
        _OPEN_SINKS.pop(str(directory), None)
        sink.display.maybe_print(force=True)
        write_tables(directory, sink.log, spec.objective.metric, spec.objective.mode)
        # How long the end of a sweep waits for a down tracking server before giving up.
        complete = sink.flush(timeout=float(os.environ.get("MIXUP_FINAL_SYNC_TIMEOUT", "30")))
        if complete:
            try:
                tracker.finish_sweep(status)
            except Exception:
                complete = False  # the parent run's status; `sync` sets it
        sink.log.close()
    errored = sum(1 for r in sink.log.trials.values() if r.status == "ERROR")
    return SweepOutcome(directory, len(sink.log.trials), errored, time.monotonic() - started,
                        meta["tracking_uri"], len(sink.unsynced), sink.tracking_failures,
                        complete, sink.last_error)


def sync(name: str, *, storage: str | Path, tracking_uri: str | None = None,
         stream: TextIO = sys.stdout) -> int:
    """``mixup-sweep sync``: replays a sweep's records into MLflow; returns trials replayed."""
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    lock = DriverLock(directory, name=name)  # a running driver is the one writer of its runs
    try:
        spec = spec_from_meta(meta)
        tracker = _open_parent_run(spec, directory, meta, tracking_uri or meta["tracking_uri"])
        log = RecordLog(directory)
        tags = trial_tags({"mixup_sweeps.git_commit": git_commit()}, list(spec.seeds))
        for record in log.trials.values():
            replay_trial(tracker, record, tags=tags, metric=spec.objective.metric,
                         mode=spec.objective.mode)
            print(f"{record.trial_id}: {len(record.epochs)} epochs, {record.status}", file=stream)
        done = all(r.status in FINAL_STATUSES for r in log.trials.values())
        tracker.finish_sweep("FINISHED" if done else "KILLED")
    finally:
        lock.release()
    return len(log.trials)


def _open_parent_run(spec: SweepSpec, directory: Path, meta: dict[str, Any],
                     uri: str) -> SweepTracker:
    """Checks the store, then creates or re-attaches the sweep's parent run (kept in meta)."""
    tracker = SweepTracker(uri, sweep_name=meta["name"])
    tracker.check()
    same_store = uri == meta["tracking_uri"]
    try:
        tracker.ensure_experiment()
        meta["parent_run_id"] = tracker.start_sweep(
            params={"spec." + k: v for k, v in _spec_params(spec).items()},
            tags={"mixup_sweeps.git_commit": git_commit(), "mixup_sweeps.spec": meta["spec_path"]},
            parent_run_id=meta.get("parent_run_id") if same_store else None,
        )
    except TrackingUnavailable:
        raise
    except Exception as err:  # e.g. a read-only sqlite file: readable, so check() passed
        raise tracking_unusable(uri, err) from err
    meta["tracking_uri"] = uri
    write_meta(directory, meta)
    return tracker


def _spec_params(spec: SweepSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "search.algorithm": spec.search.algorithm, "search.num_samples": spec.search.num_samples,
        "search.max_concurrent": spec.search.max_concurrent, "search.seed": spec.search.seed,
        "objective.metric": spec.objective.metric, "objective.mode": spec.objective.mode,
        "scheduler.kind": spec.scheduler.kind, "seeds": list(spec.seeds),
        "resources.cpu": spec.resources.cpu, "resources.gpu": spec.resources.gpu,
    }
    for key, dim in spec.search_space.items():
        params[f"search_space.{key}"] = dim.kind + (
            f"{list(dim.values)}" if dim.values else f"[{dim.low}, {dim.high}]")
    return params


def start_run(spec: SweepSpec, spec_path: str, *, storage: str | Path, name: str | None,
              tracking_uri: str, address: str | None, smoke: bool,
              num_samples: int | None, max_concurrent: int | None,
              stream: TextIO = sys.stdout) -> SweepOutcome:
    """``mixup-sweep run``: a new sweep in ``<storage>/<name>``."""
    sweep_name = spec.name if name is None else check_name(name, field="--name")
    meta = {
        "name": sweep_name, "spec_path": spec_path, "spec_text": Path(spec_path).read_text(),
        "smoke": smoke, "num_samples": num_samples, "max_concurrent": max_concurrent,
        "tracking_uri": tracking_uri, "address": address, "created": time.time(),
        "objective": {"metric": spec.objective.metric, "mode": spec.objective.mode},
    }
    resolved = spec_from_meta(meta)
    check_available(resolved.base.data)  # missing data: one line, before anything is written
    directory = writable_storage(storage) / sweep_name
    if (directory / META_FILE).exists():
        raise _exists(sweep_name, directory)
    directory.mkdir(exist_ok=True)
    lock = DriverLock(directory, name=sweep_name)
    try:
        if (directory / META_FILE).exists():  # another driver created it meanwhile
            raise _exists(sweep_name, directory)
        return _drive(resolved, directory, meta, address=address, resume=False, stream=stream)
    finally:
        lock.release()


def _exists(name: str, directory: Path) -> UsageError:
    return UsageError(f"sweep {name!r} already exists in {directory.parent}; continue it with "
                      f"`mixup-sweep resume {name}` or pass --name NEW_NAME")


def resume_run(name: str, *, storage: str | Path, address: str | None = None,
               stream: TextIO = sys.stdout) -> SweepOutcome:
    """``mixup-sweep resume``: continue an interrupted sweep from Tune's state and checkpoints."""
    from sweeps import ray_backend

    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    lock = DriverLock(directory, name=name)
    try:
        spec = spec_from_meta(meta)
        if not ray_backend.can_resume(directory):
            raise UsageError(f"sweep {name!r}: no Ray Tune state in {directory / 'tune'} to resume")
        return _drive(spec, directory, meta, address=address, resume=True, stream=stream)
    finally:
        lock.release()
