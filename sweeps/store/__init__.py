"""The store wing: the sweep folder, where records are the truth. Its layout and ``sweep.json``
(layout), the driver's lock (lock), the record log (records), rows and ranking (tables), the
Parquet files (parquet_io, the only importer of pyarrow), provenance and the spread over seeds.

Imports the spec wing only.

Every public name is re-exported here and imported on first use, so importing the wing
starts nothing heavy (torch, pyarrow, MLflow, Ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from sweeps.store.layout import (
        BEST_PREFIX as BEST_PREFIX,
        CONFIG_PREFIX as CONFIG_PREFIX,
        DEFAULT_STORAGE as DEFAULT_STORAGE,
        FINAL_STATUSES as FINAL_STATUSES,
        LAST_PREFIX as LAST_PREFIX,
        META_FILE as META_FILE,
        SCHEDULE_METRICS as SCHEDULE_METRICS,
        SQLITE as SQLITE,
        STD_SUFFIX as STD_SUFFIX,
        TRIAL_STATES as TRIAL_STATES,
        TRIAL_STATUSES as TRIAL_STATUSES,
        list_sweeps as list_sweeps,
        read_meta as read_meta,
        storage_root as storage_root,
        stored_spec as stored_spec,
        sweep_dir as sweep_dir,
        writable_storage as writable_storage,
        write_meta as write_meta,
    )
    from sweeps.store.lock import (
        ACQUIRE_WAIT_S as ACQUIRE_WAIT_S,
        DriverLock as DriverLock,
        LOCK_FILE as LOCK_FILE,
        holder as holder,
        idle as idle,
    )
    from sweeps.store.parquet_io import (
        EPOCHS_FILE as EPOCHS_FILE,
        TRIALS_FILE as TRIALS_FILE,
        frame as frame,
        read_frame as read_frame,
        row_count as row_count,
        tables_current as tables_current,
        write_frame as write_frame,
        write_rows as write_rows,
        write_tables as write_tables,
    )
    from sweeps.store.provenance import (
        DISTRIBUTIONS as DISTRIBUTIONS,
        TAG_PREFIX as TAG_PREFIX,
        as_tags as as_tags,
        collect as collect,
        git_commit as git_commit,
        package_versions as package_versions,
    )
    from sweeps.store.records import (
        RECORDS_FILE as RECORDS_FILE,
        RecordLog as RecordLog,
        TrialRecord as TrialRecord,
    )
    from sweeps.store.spread import (
        CONFIDENCE as CONFIDENCE,
        ci_half_width as ci_half_width,
        format_spread as format_spread,
        interval as interval,
        sample_std as sample_std,
    )
    from sweeps.store.tables import (
        MERGED as MERGED,
        STANDS_FOR as STANDS_FOR,
        Scope as Scope,
        TIE_RULE as TIE_RULE,
        TIE_TOLERANCE as TIE_TOLERANCE,
        config_of as config_of,
        epoch_rows as epoch_rows,
        is_selection_on_test as is_selection_on_test,
        marginals as marginals,
        optimistic_warning as optimistic_warning,
        order_key as order_key,
        pareto as pareto,
        rank as rank,
        ranked_records as ranked_records,
        trial_rows as trial_rows,
        where as where,
    )

_EXPORTS = {
    "ACQUIRE_WAIT_S": "lock",
    "BEST_PREFIX": "layout",
    "CONFIDENCE": "spread",
    "CONFIG_PREFIX": "layout",
    "DEFAULT_STORAGE": "layout",
    "DISTRIBUTIONS": "provenance",
    "DriverLock": "lock",
    "EPOCHS_FILE": "parquet_io",
    "FINAL_STATUSES": "layout",
    "LAST_PREFIX": "layout",
    "LOCK_FILE": "lock",
    "MERGED": "tables",
    "META_FILE": "layout",
    "RECORDS_FILE": "records",
    "RecordLog": "records",
    "SCHEDULE_METRICS": "layout",
    "SQLITE": "layout",
    "STANDS_FOR": "tables",
    "STD_SUFFIX": "layout",
    "Scope": "tables",
    "TAG_PREFIX": "provenance",
    "TIE_RULE": "tables",
    "TIE_TOLERANCE": "tables",
    "TRIALS_FILE": "parquet_io",
    "TRIAL_STATES": "layout",
    "TRIAL_STATUSES": "layout",
    "TrialRecord": "records",
    "as_tags": "provenance",
    "ci_half_width": "spread",
    "collect": "provenance",
    "config_of": "tables",
    "epoch_rows": "tables",
    "format_spread": "spread",
    "frame": "parquet_io",
    "git_commit": "provenance",
    "holder": "lock",
    "idle": "lock",
    "interval": "spread",
    "is_selection_on_test": "tables",
    "list_sweeps": "layout",
    "marginals": "tables",
    "optimistic_warning": "tables",
    "order_key": "tables",
    "package_versions": "provenance",
    "pareto": "tables",
    "rank": "tables",
    "ranked_records": "tables",
    "read_frame": "parquet_io",
    "read_meta": "layout",
    "row_count": "parquet_io",
    "sample_std": "spread",
    "storage_root": "layout",
    "stored_spec": "layout",
    "sweep_dir": "layout",
    "tables_current": "parquet_io",
    "trial_rows": "tables",
    "where": "tables",
    "writable_storage": "layout",
    "write_frame": "parquet_io",
    "write_meta": "layout",
    "write_rows": "parquet_io",
    "write_tables": "parquet_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
