"""Querying finished (or running) sweeps: best configs from Parquet or MLflow, and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd

from sweeps.errors import UsageError
from sweeps.store import lock, parquet_io, tables
from sweeps.store.layout import DEFAULT_STORAGE, read_meta, sweep_dir
from sweeps.store.records import RecordLog
from sweeps.store.tables import Scope

Source = Literal["parquet", "mlflow"]


def load_tables(name: str, *, storage: str | Path = DEFAULT_STORAGE,
                source: Source = "parquet") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's (trials, epochs) tables from its records (via Parquet) or from MLflow.

    A finished sweep's Parquet files are read as they are, or rebuilt from the records when one
    is missing or older than the records. A sweep whose driver is running is read from its
    records in memory, and nothing is written into its folder.
    """
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    if source == "mlflow":
        from sweeps.tracking import SweepTracker

        tracker = SweepTracker(meta["tracking_uri"], sweep_name=name)
        tracker.check()
        return tracker.read_sweep()
    objective = meta["objective"]
    with lock.idle(directory) as may_write:
        if parquet_io.tables_current(directory):
            return (parquet_io.read_frame(directory / parquet_io.TRIALS_FILE),
                    parquet_io.read_frame(directory / parquet_io.EPOCHS_FILE))
        log = RecordLog(directory)
        if may_write:
            parquet_io.write_tables(directory, log, objective["metric"], objective["mode"])
            return (parquet_io.read_frame(directory / parquet_io.TRIALS_FILE),
                    parquet_io.read_frame(directory / parquet_io.EPOCHS_FILE))
    records = log.trials.values()
    return (parquet_io.frame(tables.trial_rows(records, metric=objective["metric"],
                                               mode=objective["mode"])),
            parquet_io.frame(tables.epoch_rows(records)))


def best_mode(meta: dict[str, Any], metric: str) -> Literal["max", "min"]:
    """The sweep's mode for its objective; for another metric, min for losses and stds."""
    if metric == meta["objective"]["metric"]:
        return "min" if meta["objective"]["mode"] == "min" else "max"
    return "min" if "loss" in metric or metric.endswith("_std") else "max"


def best_configs(
    name: str, *, storage: str | Path = DEFAULT_STORAGE, metric: str | None = None,
    mode: Literal["max", "min"] | None = None, scope: Scope = "best-epoch",
    top: int | None = 5, source: Source = "parquet", where: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The sweep's trials ranked by ``metric`` (default: the sweep's objective), best first.

    ``scope="best-epoch"`` ranks each trial by its best logged epoch, ``"last"`` by its final
    one; the sweep's objective is a validation metric, and the test metrics in the result are
    those at the epoch chosen on it. Columns: ``trial_id``, ``status``, ``epoch``, ``value``,
    ``ties``, ``config/<dotted key>``, ``stands_for`` and every metric at that epoch.
    ``where`` keeps the trials whose config (or a grid point merged into the trial) has
    each given key at the given value (None: null, e.g. ``mixup.stop_epoch`` never).
    """
    meta = read_meta(storage, name)
    metric = metric or meta["objective"]["metric"]
    mode = mode or best_mode(meta, metric)
    trials, epochs = load_tables(name, storage=storage, source=source)
    if epochs.empty:
        raise UsageError(f"sweep {name!r} has no reported epochs yet")
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
        return tables.rank(trials, epochs, metric=metric, mode=mode, scope=scope, top=top)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None


def objectives_of(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The sweep's objectives as (metric, mode), the first ranking the trials."""
    listed = meta.get("objectives") or [meta["objective"]]
    return [(str(o["metric"]), str(o["mode"])) for o in listed]


def pareto_configs(name: str, *, storage: str | Path = DEFAULT_STORAGE,
                   scope: Scope = "best-epoch", source: Source = "parquet",
                   where: dict[str, Any] | None = None) -> pd.DataFrame:
    """The trials on the Pareto front of the sweep's objectives (``objective`` given as a
    list), each objective read at the trial's chosen epoch, in the order of the first."""
    meta = read_meta(storage, name)
    objectives = objectives_of(meta)
    if len(objectives) < 2:
        raise UsageError(f"--pareto: sweep {name!r} has one objective "
                         f"({objectives[0][0]}); give `objective:` a list to search several")
    ranked = best_configs(name, storage=storage, scope=scope, top=None, source=source,
                          where=where)
    try:
        return tables.pareto(ranked, objectives)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None


def export(name: str, out: str | Path, *, storage: str | Path = DEFAULT_STORAGE) -> list[Path]:
    """Copies the trials table to ``out`` and the epochs table beside it (``*.epochs.parquet``
    or ``*.epochs.csv``: the format follows ``out``'s suffix; in CSV a missing value is an
    empty cell)."""
    target = Path(out)
    if target.suffix not in (".parquet", ".csv"):
        raise UsageError(f"--out {out}: expected a .parquet or .csv file name")
    trials, epochs = load_tables(name, storage=storage)
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
