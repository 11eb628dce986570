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
    )
    from sweeps.store.layout import (
        CONFIG_PREFIX as CONFIG_PREFIX,
    )
    from sweeps.store.layout import (
        DEFAULT_STORAGE as DEFAULT_STORAGE,
    )
    from sweeps.store.layout import (
        FINAL_STATUSES as FINAL_STATUSES,
    )
    from sweeps.store.layout import (
        LAST_PREFIX as LAST_PREFIX,
    )
    from sweeps.store.layout import (
        META_FILE as META_FILE,
    )
    from sweeps.store.layout import (
        SCHEDULE_METRICS as SCHEDULE_METRICS,
    )
    from sweeps.store.layout import (
        SQLITE as SQLITE,
    )
    from sweeps.store.layout import (
        STD_SUFFIX as STD_SUFFIX,
    )
    from sweeps.store.layout import (
        TRIAL_STATES as TRIAL_STATES,
    )
    from sweeps.store.layout import (
        TRIAL_STATUSES as TRIAL_STATUSES,
    )
    from sweeps.store.layout import (
        list_sweeps as list_sweeps,
    )
    from sweeps.store.layout import (
        read_meta as read_meta,
    )
    from sweeps.store.layout import (
        storage_root as storage_root,
    )
    from sweeps.store.layout import (
        stored_spec as stored_spec,
    )
    from sweeps.store.layout import (
        sweep_dir as sweep_dir,
    )
    from sweeps.store.layout import (
        writable_storage as writable_storage,
    )
    from sweeps.store.layout import (
        write_meta as write_meta,
    )
    from sweeps.store.lock import (
        ACQUIRE_WAIT_S as ACQUIRE_WAIT_S,
    )
    from sweeps.store.lock import (
        LOCK_FILE as LOCK_FILE,
    )
    from sweeps.store.lock import (
        DriverLock as DriverLock,
    )
    from sweeps.store.lock import (
        holder as holder,
    )
    from sweeps.store.lock import (
        idle as idle,
    )
    from sweeps.store.parquet_io import (
        EPOCHS_FILE as EPOCHS_FILE,
    )
    from sweeps.store.parquet_io import (
        TRIALS_FILE as TRIALS_FILE,
    )
    from sweeps.store.parquet_io import (
        frame as frame,
    )
    from sweeps.store.parquet_io import (
        read_frame as read_frame,
    )
    from sweeps.store.parquet_io import (
        tables_current as tables_current,
    )
    from sweeps.store.parquet_io import (
        write_frame as write_frame,
    )
    from sweeps.store.parquet_io import (
        write_rows as write_rows,
    )
    from sweeps.store.parquet_io import (
        write_tables as write_tables,
    )
    from sweeps.store.provenance import (
        DISTRIBUTIONS as DISTRIBUTIONS,
    )
    from sweeps.store.provenance import (
        TAG_PREFIX as TAG_PREFIX,
    )
    from sweeps.store.provenance import (
        as_tags as as_tags,
    )
    from sweeps.store.provenance import (
        collect as collect,
    )
    from sweeps.store.provenance import (
        git_commit as git_commit,
    )
    from sweeps.store.provenance import (
        package_versions as package_versions,
    )
    from sweeps.store.records import (
        RECORDS_FILE as RECORDS_FILE,
    )
    from sweeps.store.records import (
        RecordLog as RecordLog,
    )
    from sweeps.store.records import (
        TrialRecord as TrialRecord,
    )
    from sweeps.store.spread import (
        CONFIDENCE as CONFIDENCE,
    )
    from sweeps.store.spread import (
        ci_half_width as ci_half_width,
    )
    from sweeps.store.spread import (
        format_spread as format_spread,
    )
    from sweeps.store.spread import (
        interval as interval,
    )
    from sweeps.store.spread import (
        sample_std as sample_std,
    )
    from sweeps.store.tables import (
        MERGED as MERGED,
    )
    from sweeps.store.tables import (
        STANDS_FOR as STANDS_FOR,
    )
    from sweeps.store.tables import (
        TIE_RULE as TIE_RULE,
    )
    from sweeps.store.tables import (
        TIE_TOLERANCE as TIE_TOLERANCE,
    )
    from sweeps.store.tables import (
        Scope as Scope,
    )
    from sweeps.store.tables import (
        config_of as config_of,
    )
    from sweeps.store.tables import (
        epoch_rows as epoch_rows,
    )
    from sweeps.store.tables import (
        is_selection_on_test as is_selection_on_test,
    )
    from sweeps.store.tables import (
        marginals as marginals,
    )
    from sweeps.store.tables import (
        optimistic_warning as optimistic_warning,
    )
    from sweeps.store.tables import (
        order_key as order_key,
    )
    from sweeps.store.tables import (
        pareto as pareto,
    )
    from sweeps.store.tables import (
        rank as rank,
    )
    from sweeps.store.tables import (
        ranked_records as ranked_records,
    )
    from sweeps.store.tables import (
        trial_rows as trial_rows,
    )
    from sweeps.store.tables import (
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
