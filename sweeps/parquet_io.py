"""Parquet files of a sweep: the only module that imports pyarrow.

``<sweep_dir>/trials.parquet`` and ``<sweep_dir>/epochs.parquet`` (schemas in sweeps.tables).
Columns are built from Python values, so integer config keys with nulls (``mixup.stop_epoch``)
stay integers; they are read back with pandas' nullable dtypes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    return pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Writes ``rows`` (dicts, possibly with different keys) atomically to ``path``."""
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(_table(rows), tmp)
    tmp.replace(path)
    return path


def read_frame(path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
               pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}
    frame = table.to_pandas(types_mapper=mapping.get)
    # object columns for strings keep comparisons simple downstream
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
