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

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import yaml

from mixup_core.config import from_flat, to_flat
from mixup_core.training import METRIC_NAMES
from sweeps import parquet_io, tables
from sweeps.errors import UsageError
from sweeps.progress import ProgressLine
from sweeps.records import RecordLog
from sweeps.seed_group import STD_SUFFIX
from sweeps.spec import SweepSpec, parse_spec
from sweeps.tracking import SweepTracker

META_FILE = "sweep.json"
DEFAULT_STORAGE = "sweep_results"
REPORTED = {"epoch", *METRIC_NAMES, *(m + STD_SUFFIX for m in METRIC_NAMES)}


def sweep_dir(storage: str | Path, name: str) -> Path:
    return Path(storage).expanduser().resolve() / name


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
    """Receives trial events in the driver: records first, then MLflow, then progress."""

    def __init__(self, directory: Path, spec: SweepSpec, tracker: SweepTracker,
                 stream: TextIO) -> None:
        self.directory, self.spec, self.tracker = directory, spec, tracker
        self.log = RecordLog(directory)
        self.base = to_flat(spec.base)
        self.display = ProgressLine(metric=spec.objective.metric, mode=spec.objective.mode,
                                     total=spec.trial_count(), stream=stream)
        self.tracking_errors: list[str] = []
        self._tags = {"mixup_sweeps.git_commit": git_commit(),
                      **{f"mixup_sweeps.version.{k}": v for k, v in package_versions().items()}}

    def _track(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        """MLflow calls never stop the sweep: records hold everything, `sync` can replay."""
        try:
            fn(*args, **kwargs)
        except Exception as err:
            if not self.tracking_errors:
                print(f"warning: MLflow {action} failed ({str(err).splitlines()[0][:200]}); "
                      "results are still recorded locally", file=sys.stderr, flush=True)
            self.tracking_errors.append(f"{action}: {err}")

    def trial_started(self, trial_id: str, params: dict[str, Any]) -> None:
        config = to_flat(from_flat({**self.base, **params}))
        self.log.trial_started(trial_id, config)
        self._track("start_trial", self.tracker.start_trial, trial_id, config=config,
                    tags={**self._tags, "mixup_sweeps.seeds": json.dumps(list(self.spec.seeds))})

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
            self._track("set_tags", self.tracker.set_tags, trial_id,
                        {"mixup_sweeps.node_id": str(node)})
        self._track("log_epoch", self.tracker.log_epoch, trial_id, epoch, metrics)
        value = metrics.get(self.spec.objective.metric)
        if value is not None and math.isfinite(value):
            self.display.offer(trial_id, epoch, value)
            self.display.maybe_print()

    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None:
        record = self.log.trials.get(trial_id)
        if status == "TERMINATED" and record is not None and record.config:
            budget = from_flat(record.config).epochs_to_train
            if record.last_epoch < budget:
                status = "STOPPED"  # cut short by the scheduler
        self.log.trial_finished(trial_id, status, error)
        summary: dict[str, float] = {}
        if record is not None:
            row = tables.trial_rows([record], metric=self.spec.objective.metric,
                                    mode=self.spec.objective.mode)[0]
            summary = {k: v for k, v in row.items()
                       if k.startswith(("best/", "last/")) and isinstance(v, float)}
            if row["best_epoch"] is not None:
                summary["best_epoch"] = float(row["best_epoch"])
        self._track("finish_trial", self.tracker.finish_trial, trial_id, status=status,
                    summary=summary, error=error)

    def progress(self, counts: dict[str, int]) -> None:
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
    tracking_errors: int


def _write_meta(directory: Path, meta: dict[str, Any]) -> None:
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_meta(storage: str | Path, name: str) -> dict[str, Any]:
    path = sweep_dir(storage, name) / META_FILE
    if not path.is_file():
        raise UsageError(f"sweep {name!r}: no {META_FILE} in {path.parent} "
                         f"(wrong --storage? sweeps there: {list_sweeps(storage) or 'none'})")
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def list_sweeps(storage: str | Path) -> list[str]:
    root = Path(storage).expanduser().resolve()
    return sorted(p.parent.name for p in root.glob(f"*/{META_FILE}")) if root.is_dir() else []


def spec_from_meta(meta: dict[str, Any]) -> SweepSpec:
    spec = parse_spec(yaml.safe_load(meta["spec_text"]), source=meta["spec_path"])
    if meta.get("smoke"):
        spec = spec.shrunk()
    return spec.with_overrides(num_samples=meta.get("num_samples"),
                               max_concurrent=meta.get("max_concurrent"))


def write_tables(directory: Path, log: RecordLog, metric: str, mode: str) -> tuple[Path, Path]:
    trials = tables.trial_rows(log.trials.values(), metric=metric, mode=mode)
    epochs = tables.epoch_rows(log.trials.values())
    return (parquet_io.write_rows(directory / parquet_io.TRIALS_FILE, trials),
            parquet_io.write_rows(directory / parquet_io.EPOCHS_FILE, epochs))


def _drive(spec: SweepSpec, directory: Path, meta: dict[str, Any], *, address: str | None,
           resume: bool, stream: TextIO) -> SweepOutcome:
    from sweeps import ray_backend  # Ray is imported only when a sweep really runs

    tracker = SweepTracker(meta["tracking_uri"], sweep_name=meta["name"])
    tracker.check()
    tracker.ensure_experiment()
    meta["parent_run_id"] = tracker.start_sweep(
        params={"spec." + k: v for k, v in _spec_params(spec).items()},
        tags={"mixup_sweeps.git_commit": git_commit(), "mixup_sweeps.spec": meta["spec_path"]},
        parent_run_id=meta.get("parent_run_id"),
    )
    _write_meta(directory, meta)
    sink = DriverSink(directory, spec, tracker, stream)
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
        try:
            tracker.finish_sweep(status)
        except Exception as err:
            sink.tracking_errors.append(f"finish_sweep: {err}")
        sink.log.close()
    errored = sum(1 for r in sink.log.trials.values() if r.status == "ERROR")
    return SweepOutcome(directory, len(sink.log.trials), errored, time.monotonic() - started,
                        meta["tracking_uri"], len(sink.tracking_errors))


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
    sweep_name = name or spec.name
    directory = sweep_dir(storage, sweep_name)
    if (directory / META_FILE).exists():
        raise UsageError(f"sweep {sweep_name!r} already exists in {directory.parent}; continue it "
                         f"with `mixup-sweep resume {sweep_name}` or pass --name NEW_NAME")
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": sweep_name, "spec_path": spec_path, "spec_text": Path(spec_path).read_text(),
        "smoke": smoke, "num_samples": num_samples, "max_concurrent": max_concurrent,
        "tracking_uri": tracking_uri, "address": address, "created": time.time(),
        "objective": {"metric": spec.objective.metric, "mode": spec.objective.mode},
    }
    resolved = spec_from_meta(meta)
    return _drive(resolved, directory, meta, address=address, resume=False, stream=stream)


def resume_run(name: str, *, storage: str | Path, address: str | None = None,
               stream: TextIO = sys.stdout) -> SweepOutcome:
    """``mixup-sweep resume``: continue an interrupted sweep from Tune's state and checkpoints."""
    from sweeps import ray_backend

    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    spec = spec_from_meta(meta)
    if not ray_backend.can_resume(directory):
        raise UsageError(f"sweep {name!r}: no Ray Tune state in {directory / 'tune'} to resume")
    return _drive(spec, directory, meta, address=address, resume=True, stream=stream)
