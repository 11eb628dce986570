"""Parquet files of a sweep: the only module that imports pyarrow.

``<sweep_dir>/trials.parquet`` and ``<sweep_dir>/epochs.parquet`` (schemas in sweeps.store.tables).
Columns are built from Python values, so integer config keys with nulls (``mixup.stop_epoch``)
stay integers; they are read back with pandas' nullable dtypes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sweeps.errors import UsageError
from sweeps.store.records import RECORDS_FILE, RecordLog
from sweeps.store.tables import epoch_rows, trial_rows

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    return pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})


def _write_atomically(table: pa.Table, path: Path) -> Path:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Writes ``rows`` (dicts, possibly with different keys) atomically to ``path``."""
    return _write_atomically(_table(rows), path)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    return _write_atomically(pa.Table.from_pandas(frame, preserve_index=False), path)


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` as the DataFrame that writing and reading them back would give."""
    return _to_pandas(_table(rows))


def read_frame(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise UsageError(f"{path}: unreadable Parquet file ({err})") from None
    return _to_pandas(table)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
               pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}
    frame = table.to_pandas(types_mapper=mapping.get)
    # object columns for strings keep comparisons simple downstream
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def write_tables(directory: Path, log: RecordLog, metric: str, mode: str) -> tuple[Path, Path]:
    """Writes ``trials.parquet`` and ``epochs.parquet`` from the records (the caller holds the
    sweep's lock: the driver its exclusive one, a reader the shared one)."""
    trials = trial_rows(log.trials.values(), metric=metric, mode=mode)
    epochs = epoch_rows(log.trials.values())
    return (write_rows(directory / TRIALS_FILE, trials),
            write_rows(directory / EPOCHS_FILE, epochs))


def tables_current(directory: Path) -> bool:
    """Both Parquet files exist and are no older than the records they were built from."""
    paths = [directory / TRIALS_FILE, directory / EPOCHS_FILE]
    if not all(p.is_file() for p in paths):
        return False
    records = directory / RECORDS_FILE
    return not records.exists() or min(p.stat().st_mtime for p in paths) >= records.stat().st_mtime


def row_count(path: Path) -> int | None:
    """Rows in a Parquet file from its footer alone; None when it is missing or unreadable."""
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowInvalid):
        return None

