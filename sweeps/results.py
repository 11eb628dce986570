"""Querying finished (or running) sweeps: best configs from Parquet or MLflow, and export."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import pandas as pd

from sweeps import parquet_io, tables
from sweeps.errors import UsageError
from sweeps.records import RecordLog
from sweeps.runner import DEFAULT_STORAGE, read_meta, sweep_dir, write_tables
from sweeps.tables import Scope

Source = Literal["parquet", "mlflow"]


def load_tables(name: str, *, storage: str | Path = DEFAULT_STORAGE,
                source: Source = "parquet") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's (trials, epochs) tables from its Parquet files or from MLflow."""
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    if source == "mlflow":
        from sweeps.tracking import SweepTracker

        tracker = SweepTracker(meta["tracking_uri"], sweep_name=name)
        tracker.check()
        return tracker.read_sweep()
    trials_path = directory / parquet_io.TRIALS_FILE
    if not trials_path.exists():  # a sweep still running, or killed: build from the records
        objective = meta["objective"]
        write_tables(directory, RecordLog(directory), objective["metric"], objective["mode"])
    return (parquet_io.read_frame(trials_path),
            parquet_io.read_frame(directory / parquet_io.EPOCHS_FILE))


def best_configs(
    name: str, *, storage: str | Path = DEFAULT_STORAGE, metric: str | None = None,
    mode: Literal["max", "min"] | None = None, scope: Scope = "best-epoch",
    top: int | None = 5, source: Source = "parquet",
) -> pd.DataFrame:
    """The sweep's trials ranked by ``metric`` (default: the sweep's objective), best first.

    ``scope="best-epoch"`` ranks each trial by its best logged epoch, ``"last"`` by its final
    one. Columns: ``trial_id``, ``status``, ``epoch``, ``value``, ``config/<dotted key>`` and
    every metric at that epoch.
    """
    meta = read_meta(storage, name)
    metric = metric or meta["objective"]["metric"]
    if mode is None:
        same = metric == meta["objective"]["metric"]
        mode = meta["objective"]["mode"] if same else ("min" if "loss" in metric else "max")
    trials, epochs = load_tables(name, storage=storage, source=source)
    if epochs.empty:
        raise UsageError(f"sweep {name!r} has no reported epochs yet")
    try:
        return tables.rank(trials, epochs, metric=metric, mode=mode, scope=scope, top=top)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None


def export(name: str, out: str | Path, *, storage: str | Path = DEFAULT_STORAGE) -> list[Path]:
    """Copies the trials table to ``out`` and the epochs table beside it (``*.epochs.parquet``)."""
    load_tables(name, storage=storage)  # builds the tables from records when they are missing
    directory = sweep_dir(storage, name)
    target = Path(out)
    if target.suffix != ".parquet":
        raise UsageError(f"--out {out}: expected a .parquet file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    epochs_target = target.with_name(target.stem + ".epochs.parquet")
    shutil.copyfile(directory / parquet_io.TRIALS_FILE, target)
    shutil.copyfile(directory / parquet_io.EPOCHS_FILE, epochs_target)
    return [target, epochs_target]
