"""One handle per sweep, like ``optuna.Study`` or Ray Tune's ``ResultGrid``: read once, ask it all.

:func:`load_sweep` reads ``sweep.json`` once and checks the driver's lock once; the parsed spec,
the records and the tables are read on first use and kept. A running sweep's handle is a
snapshot: :meth:`Sweep.refresh` reads it again. The driver hands back a handle built from what
it held in memory (:meth:`Sweep.from_driver`), so the summary and the report after ``run`` read
nothing back from the folder. Nothing here imports torch or Ray.

A sweep is *running* while a driver holds its lock (sweeps.store.lock), *finished* when every
planned trial has ended, and *interrupted* otherwise (``mixup-sweep resume NAME`` goes on).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sweeps.errors import UsageError, storage_fault, storage_refusal
from sweeps.store import lock, parquet_io, tables
from sweeps.store.key_summary import KeySummaries, summarise
from sweeps.store.layout import (
    DEFAULT_STORAGE,
    FINAL_STATUSES,
    list_sweeps,
    read_meta,
    stored_spec,
    sweep_dir,
    tune_state_saved,
)
from sweeps.store.records import RECORDS_FILE, RecordLog, TrialRecord
from sweeps.store.tables import Scope

if TYPE_CHECKING:
    import pandas as pd

    from sweeps.spec import SweepSpec

Source = Literal["parquet", "mlflow"]
Frames = tuple["pd.DataFrame", "pd.DataFrame"]


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
    error: str | None = None  # why an ``unreadable`` sweep cannot be read
    read_only: bool = False  # its folder cannot be written: readable, not resumable in place


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
    #: Ray Tune saved its state: ``resume`` goes on from it (False: its driver stopped before,
    #: and ``resume`` starts the sweep afresh in its folder).
    tune_saved: bool = True


@dataclass(frozen=True)
class Deleted:
    folder: Path
    runs: int  # MLflow runs deleted (parent and children)


class Sweep:
    """A sweep in its folder: what it is (spec, objectives, seeds, searched keys) and its answers.

    Build one with :func:`load_sweep` (or ``sweeps.run`` / ``sweeps.resume``, which return the
    driver's). Every question is answered from what the handle has read once.
    """

    def __init__(self, directory: Path, meta: dict[str, Any], *, running: bool,
                 records: RecordLog | None = None, spec: SweepSpec | None = None,
                 read_only: bool = False) -> None:
        self.directory = directory
        self.meta = meta
        self.is_running = running
        #: Its folder cannot be written (a read-only mount): it is read, never written or resumed.
        self.read_only = read_only
        self._records = records
        self._spec = spec
        self._tables: dict[str, Frames] = {}

    # ------------------------------------------------------------------------ building

    @classmethod
    def load(cls, name: str, *, storage: str | Path = DEFAULT_STORAGE) -> Sweep:
        """Reads ``sweep.json`` and checks the driver's lock, once each."""
        meta = read_meta(storage, name)
        directory = sweep_dir(storage, name)
        state = lock.folder_state(directory)
        return cls(directory, meta, running=state == "running", read_only=state == "read-only")

    @classmethod
    def from_driver(cls, directory: Path, meta: dict[str, Any], records: RecordLog,
                    spec: SweepSpec) -> Sweep:
        """The handle of a sweep whose driver has just ended, from what it holds in memory."""
        return cls(directory, meta, running=False, records=records, spec=spec)

    def refresh(self) -> Sweep:
        """Reads the sweep again (a running sweep's handle is a snapshot); returns itself."""
        fresh = Sweep.load(self.name, storage=self.storage)
        self.meta, self.is_running, self.read_only = fresh.meta, fresh.is_running, fresh.read_only
        self._records, self._spec, self._tables = None, None, {}
        return self

    # ------------------------------------------------------------------------ what it is

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def storage(self) -> Path:
        return self.directory.parent

    @property
    def spec(self) -> SweepSpec:
        """The spec the sweep runs (parsed once from ``sweep.json``)."""
        if self._spec is None:
            self._spec = stored_spec(self.meta)
        return self._spec

    @property
    def objective(self) -> tuple[str, str]:
        """The objective as (metric, mode): what ranks trials and picks each one's best epoch."""
        return str(self.meta["objective"]["metric"]), str(self.meta["objective"]["mode"])

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """Every objective as (metric, mode), the first ranking the trials."""
        listed = self.meta.get("objectives") or [self.meta["objective"]]
        return [(str(o["metric"]), str(o["mode"])) for o in listed]

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds each trial averages over (what its intervals are over)."""
        seeds = self.meta.get("seeds")
        if isinstance(seeds, list) and seeds:
            return tuple(int(s) for s in seeds)
        return self.spec.seeds  # sweeps started before sweep.json kept its seeds

    @property
    def searched_keys(self) -> list[str]:
        """The searched config keys, in the order the spec gives them."""
        return list(self.spec.search_space)

    @property
    def space_kinds(self) -> dict[str, str]:
        """Each searched key's dimension kind (``grid``, ``choice``, ``uniform``, ``loguniform``,
        ``quniform``, ``randint``), in the spec's order: how a figure draws the key (a grid's
        values as cells, a sampled key on its scale, log for ``loguniform``)."""
        return {key: dim.kind for key, dim in self.spec.search_space.items()}

    @property
    def algorithm(self) -> str:
        """The search algorithm: ``grid``, ``random`` or ``optuna``."""
        return str(self.spec.search.algorithm)

    @property
    def description(self) -> str:
        return " ".join(self.spec.description.split())

    @property
    def tracking_uri(self) -> str:
        return str(self.meta["tracking_uri"])

    @property
    def created(self) -> float:
        return float(self.meta.get("created") or 0.0)

    def best_mode(self, metric: str) -> Literal["max", "min"]:
        """The objective's mode for it; for another metric, min for losses and stds."""
        if metric == self.objective[0]:
            return "min" if self.objective[1] == "min" else "max"
        return "min" if "loss" in metric or metric.endswith("_std") else "max"

    # ------------------------------------------------------------------------ its data

    def records(self) -> RecordLog:
        """The record log (read once; the driver's own for a handle from the driver)."""
        if self._records is None:
            self._records = RecordLog(self.directory)
        return self._records

    def tables(self, source: Source = "parquet") -> Frames:
        """The (trials, epochs) tables, from the records (via Parquet) or from MLflow.

        A finished sweep's Parquet files are read as they are, or rebuilt from the records when
        one is missing or older than the records. A running sweep (and a handle from the driver)
        is tabulated from its records in memory; nothing is written into a running sweep's folder.
        """
        if source not in self._tables:
            self._tables[source] = self._read_tables(source)
        return self._tables[source]

    def _read_tables(self, source: Source) -> Frames:
        if source == "mlflow":
            from sweeps.tracking import SweepTracker

            tracker = SweepTracker(self.tracking_uri, sweep_name=self.name,
                                   sweep_id=self.meta.get("sweep_id"))
            tracker.check()
            return tracker.read_sweep()
        if self._records is None and not self.is_running:
            with lock.idle(self.directory) as may_write:
                if parquet_io.tables_current(self.directory):
                    frames = self._read_parquet()
                    if frames is not None:
                        return frames
                if not self._records_complete():  # the tables hold more: they are the answer
                    frames = self._read_parquet()
                    if frames is not None:
                        return frames
                elif may_write:
                    metric, mode = self.objective
                    try:
                        parquet_io.write_tables(self.directory, self.records(), metric, mode)
                    except OSError as err:  # a full disk: answer from the records all the same
                        if (refusal := storage_refusal(err)) is None:
                            raise
                        print(f"warning: {storage_fault(refusal, 'the rebuilt tables')}; "
                              f"answered from {RECORDS_FILE}", file=sys.stderr)
        metric, mode = self.objective
        records = list(self.records().trials.values())
        return (parquet_io.frame(tables.trial_rows(records, metric=metric, mode=mode)),
                parquet_io.frame(tables.epoch_rows(records)))

    def _read_parquet(self) -> Frames | None:
        """Both tables as written; None (and a warning) when one cannot be read."""
        try:
            return (parquet_io.read_frame(self.directory / parquet_io.TRIALS_FILE),
                    parquet_io.read_frame(self.directory / parquet_io.EPOCHS_FILE))
        except UsageError as err:
            print(f"warning: {err}; the tables are rebuilt from {RECORDS_FILE}", file=sys.stderr)
            return None

    def _records_complete(self) -> bool:
        """Do the records hold at least what the Parquet tables hold (trials and epochs)?

        A read never replaces tables by fewer rows: when the records hold less (emptied,
        truncated), the tables stay as they are and one warning names both files; the answer is
        then read from the tables.
        """
        held = [parquet_io.row_count(self.directory / name)
                for name in (parquet_io.TRIALS_FILE, parquet_io.EPOCHS_FILE)]
        records = self.records().trials.values()
        have = [len(records), sum(len(r.epochs) for r in records)]
        short = [(h, n) for h, n in zip(held, have, strict=True) if h is not None and n < h]
        if not short:
            return True
        print(f"warning: {self.directory / RECORDS_FILE} holds {have[0]} trials and {have[1]} "
              f"epochs, fewer than {parquet_io.TRIALS_FILE} / {parquet_io.EPOCHS_FILE} "
              f"({held[0]} / {held[1]}): the tables are kept, not rebuilt", file=sys.stderr)
        return False

    # ------------------------------------------------------------------------ answers

    def best(self, *, metric: str | None = None, mode: Literal["max", "min"] | None = None,
             scope: Scope = "best-epoch", top: int | None = 5, source: Source = "parquet",
             where: dict[str, Any] | None = None) -> pd.DataFrame:
        """The trials ranked by ``metric`` (default: the objective), best first.

        ``scope="best-epoch"`` ranks each trial by its best logged epoch, ``"last"`` by its final
        one; the objective is a validation metric, and the test metrics in the result are those
        at the epoch chosen on it. Columns: ``trial_id``, ``status``, ``epoch``, ``value``,
        ``ties``, ``config/<dotted key>``, ``stands_for``, every metric at that epoch and its
        uncertainty over the sweep's seeds (``<metric>_ci_low``, ``_ci_high``; for accuracies
        ``_seeds_at_least``, ``_seeds_at_most``: ``sweeps.store.tables.with_uncertainty``).
        ``where`` keeps the trials whose config (or a grid point merged into the trial) has
        each given key at the given value (None, ``"never"`` or ``"null"``: a missing value, e.g.
        ``mixup.stop_epoch`` never; strings are read as the CLI's ``--where`` reads them).
        ``config/mixup.stop_epoch`` is an ordered category whose last value is ``"never"``, so
        a ``groupby`` keeps that group (use ``observed=True``).
        """
        metric = metric or self.objective[0]
        mode = mode or self.best_mode(metric)
        trials, epochs = self.tables(source)
        if epochs.empty:
            raise UsageError(f"sweep {self.name!r} has no reported epochs yet")
        if where:
            try:
                trials = tables.where(trials, where)
            except KeyError as err:
                raise UsageError(str(err.args[0])) from None
            epochs = epochs[epochs["trial_id"].isin(set(trials["trial_id"]))]
            if trials.empty:
                raise UsageError("--where " + " ".join(f"{k}={v}" for k, v in where.items())
                                 + ": no trial matches")
        try:
            return tables.with_never(tables.rank(trials, epochs, metric=metric, mode=mode,
                                                 scope=scope, top=top, seeds=len(self.seeds)))
        except KeyError as err:
            raise UsageError(str(err.args[0])) from None

    def pareto(self, *, scope: Scope = "best-epoch", source: Source = "parquet",
               where: dict[str, Any] | None = None) -> pd.DataFrame:
        """The trials on the Pareto front of the objectives (``objective:`` given as a list),
        each objective read at the trial's chosen epoch, in the order of the first."""
        if len(self.objectives) < 2:
            raise UsageError(f"--pareto: sweep {self.name!r} has one objective "
                             f"({self.objectives[0][0]}); give `objective:` a list to search "
                             "several")
        ranked = self.best(scope=scope, top=None, source=source, where=where)
        try:
            return tables.pareto(ranked, self.objectives)
        except KeyError as err:
            raise UsageError(str(err.args[0])) from None

    def marginals(self, metric: str | None = None) -> dict[str, list[tuple[Any, float, int]]]:
        """The mean of ``metric`` (default: the objective) at the last epoch for each value of
        each searched key, over all other keys: ``{key: [(value, mean, n), ...]}``."""
        from sweeps.store.layout import LAST_PREFIX

        trials, _ = self.tables()
        return tables.marginals(trials, f"{LAST_PREFIX}{metric or self.objective[0]}")

    def key_summary(self, metric: str | None = None,
                    keys: list[str] | None = None) -> KeySummaries:
        """The mean of ``metric`` (default: the objective) at each trial's chosen epoch for each
        level of each searched key, over all other keys, with a 95% interval within the
        metric's range and n (grid points, trials, seed runs): ``sweeps.store.key_summary``.
        A sampled key (or one with many values) is binned on its scale; ``keys`` (default:
        every searched key) picks and orders the keys.

        Raises:
            UsageError: A key that is not searched, or a metric the sweep does not report.
        """
        metric = metric or self.objective[0]
        searched = self.searched_keys
        wanted = list(dict.fromkeys(keys)) if keys else searched
        for key in wanted:
            if key not in searched:
                raise UsageError(f"--by {key}: not a searched key of sweep {self.name!r} "
                                 f"(searched: {', '.join(searched) or 'none'})")
        trials, _ = self.tables()
        if f"best/{metric}" not in trials.columns:
            known = sorted(c[len("best/"):] for c in trials.columns if c.startswith("best/"))
            raise UsageError(f"--metric {metric!r}: not a reported metric (known: "
                             f"{', '.join(known)})")
        kinds = self.space_kinds
        return summarise(trials, keys={k: kinds.get(k) for k in wanted}, metric=metric,
                         seeds=len(self.seeds))

    def export(self, out: str | Path) -> list[Path]:
        """Copies the trials table to ``out`` and the epochs table beside it (``*.epochs.parquet``
        or ``*.epochs.csv``: the format follows ``out``'s suffix; in CSV a missing value is an
        empty cell)."""
        target = Path(out)
        if target.suffix not in (".parquet", ".csv"):
            raise UsageError(f"--out {out}: expected a .parquet or .csv file name")
        trials, epochs = self.tables()
        epochs_target = target.with_name(target.stem + ".epochs" + target.suffix)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix == ".csv":
                trials.to_csv(target, index=False)
                epochs.to_csv(epochs_target, index=False)
            else:
                parquet_io.write_frame(trials, target)
                parquet_io.write_frame(epochs, epochs_target)
        except OSError as err:
            raise UsageError(f"--out {out}: cannot write there ({err.strerror or err})") from None
        return [target, epochs_target]

    # ------------------------------------------------------------------------ management

    def summary(self) -> SweepSummary:
        """Its line of ``mixup-sweep list``."""
        records = list(self.records().trials.values())
        metric, mode = self.objective
        done = sum(1 for r in records if r.status in FINAL_STATUSES)
        total = self.meta.get("trials_planned")
        total = int(total) if isinstance(total, int) else None
        if self.is_running:
            status = "running"
        elif done == len(records) and (total is None or done >= total) and records:
            status = "finished"
        else:
            status = "interrupted"
        return SweepSummary(name=self.name, status=status, done=done, total=total,
                            errored=sum(1 for r in records if r.status == "ERROR"),
                            metric=metric, mode=mode, best=_best(records, metric, mode),
                            created=self.created, read_only=self.read_only)

    def status(self, *, now: float | None = None) -> SweepStatus:
        """The trials in flight (epoch of budget, searched settings) and an ETA from the rate
        at which the current driver's trials report epochs."""
        records = list(self.records().trials.values())
        summary = self.summary()
        keys = self.searched_keys
        budgets = [_budget(r) for r in records]
        running = [RunningTrial(r.trial_id, r.last_epoch, b,
                                {k: (r.config or {}).get(k) for k in keys})
                   for r, b in zip(records, budgets, strict=True) if r.status not in FINAL_STATUSES]
        done = sum(min(r.last_epoch, b) if r.status not in FINAL_STATUSES else b
                   for r, b in zip(records, budgets, strict=True))
        typical = max(budgets, default=0)
        unstarted = max(0, (summary.total or len(records)) - len(records))
        total = sum(budgets) + unstarted * typical
        rate = eta = None
        if summary.status == "running":
            now = time.time() if now is None else now
            since = _driver_since(self.directory)
            reports = _epoch_reports_since(self.directory / RECORDS_FILE, since)
            if since is not None and reports and now > since:
                per_report = _log_interval(records) or 1  # epochs between two reports
                rate = reports * per_report / (now - since)
                eta = max(0.0, total - done) / rate if rate > 0 else None
        return SweepStatus(summary=summary, running=running, epochs_done=done,
                           epochs_total=total, rate=rate, eta_seconds=eta,
                           tune_saved=tune_state_saved(self.directory))

    def delete(self) -> Deleted:
        """Deletes the sweep's MLflow runs (parent and children, MLflow's soft delete) and its
        folder, all or nothing.

        Every precondition is checked before anything is touched: no driver holds the lock, the
        folder and everything in it can be removed, the tracking store answers. The folder is
        then moved aside (one rename), the runs deleted, the folder removed; a step that still
        fails undoes the ones before it (the folder moved back, the runs restored) and the error
        says so in one line.

        Raises:
            UsageError: A precondition fails or a step could not be completed; nothing deleted.
        """
        from sweeps.tracking import SweepTracker

        if lock.driver_holds(self.directory):
            raise UsageError(f"sweep {self.name!r} is running ({lock.holder(self.directory)}); "
                             "stop it first")
        if (blocked := _unremovable(self.directory)) is not None:
            raise UsageError(f"sweep {self.name!r}: {blocked} cannot be removed (read-only?); "
                             "nothing was deleted")
        tracker = SweepTracker(self.tracking_uri, sweep_name=self.name,
                                   sweep_id=self.meta.get("sweep_id"))
        try:
            tracker.check()
            run_ids = tracker.sweep_run_ids(self.meta.get("parent_run_id"))
        except Exception as err:  # any MLflow failure (TrackingUnavailable...): keep everything
            raise UsageError(f"sweep {self.name!r}: its MLflow runs at {self.tracking_uri} "
                             f"cannot be reached ({_one_line(err)}); nothing was deleted") from None
        aside = self.directory.with_name(f".{self.name}.deleting")
        try:
            self.directory.rename(aside)
        except OSError as err:
            raise UsageError(f"sweep {self.name!r}: its folder cannot be moved aside "
                             f"({err.strerror or err}); nothing was deleted") from None
        try:
            deleted = tracker.delete_runs(run_ids)
        except Exception as err:
            aside.rename(self.directory)
            raise UsageError(f"sweep {self.name!r}: its MLflow runs could not be deleted "
                             f"({_one_line(err)}); nothing was deleted") from None
        try:
            shutil.rmtree(aside)
        except OSError as err:
            tracker.restore_runs(deleted)
            moved_back = not self.directory.exists()
            if moved_back:
                try:
                    aside.rename(self.directory)
                except OSError:
                    moved_back = False
            where = self.directory if moved_back else aside
            raise UsageError(f"sweep {self.name!r}: its folder could not be removed "
                             f"({err.strerror or err}); its {len(deleted)} MLflow runs were "
                             f"restored and what is left of the folder is in {where}") from None
        return Deleted(self.directory, len(deleted))

    def __repr__(self) -> str:
        state = "running" if self.is_running else "not running"
        return f"Sweep({self.name!r}, storage={str(self.storage)!r}, {state})"


def load_sweep(name: str, *, storage: str | Path = DEFAULT_STORAGE) -> Sweep:
    """The handle of sweep ``name`` in ``storage`` (like ``optuna.load_study``).

    Raises:
        UsageError: No such sweep, or an unreadable ``sweep.json``.
    """
    return Sweep.load(name, storage=storage)


def list_sweep_handles(storage: str | Path = DEFAULT_STORAGE) -> list[Sweep]:
    """Every readable sweep in ``storage``, newest first."""
    found = []
    for name in list_sweeps(storage):
        try:
            found.append(Sweep.load(name, storage=storage))
        except UsageError:
            continue  # an unreadable sweep.json: `list` names it, the rest are found
    return sorted(found, key=lambda s: s.created, reverse=True)


def summaries(storage: str | Path = DEFAULT_STORAGE) -> list[SweepSummary]:
    """A line of ``mixup-sweep list`` for every sweep in ``storage``, newest first; a sweep
    whose ``sweep.json`` or records cannot be read is listed as ``unreadable`` (the reason is
    in ``error``), and the others are listed all the same."""
    out = []
    for name in list_sweeps(storage):
        try:
            out.append(Sweep.load(name, storage=storage).summary())
        except (UsageError, OSError, ValueError, KeyError, TypeError) as err:
            out.append(SweepSummary(name=name, status="unreadable", done=0, total=None,
                                    errored=0, metric="-", mode="-", best=None, created=0.0,
                                    error=_one_line(err)))
    return sorted(out, key=lambda s: s.created, reverse=True)


# ---------------------------------------------------------------------------- helpers


def _unremovable(directory: Path) -> Path | None:
    """The first folder that would stop ``rmtree`` (or the rename before it), or None."""
    import os

    if not os.access(directory.parent, os.W_OK | os.X_OK):
        return directory.parent
    for folder, _, _ in os.walk(directory):
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return None


def _one_line(err: BaseException) -> str:
    lines = [x for x in str(err).strip().splitlines() if x.strip()]
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


def _best(records: list[TrialRecord], metric: str, mode: str) -> float | None:
    values = [m[metric] for r in records for m in r.epochs.values()
              if isinstance(m.get(metric), (int, float)) and math.isfinite(m[metric])]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def _budget(record: TrialRecord) -> int:
    """The trial's training budget, by the config's own rule (``TrialConfig.epochs_to_train``)."""
    from mixup_core.config import ConfigError, from_flat

    config = record.config or {}
    try:
        return from_flat(config).epochs_to_train
    except (ConfigError, TypeError, ValueError):  # a record from an older config schema
        return int(config.get("optim.epochs") or 0)


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
