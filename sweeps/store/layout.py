"""The sweep folder's contract: where a sweep lives, what it is called, what ``sweep.json`` holds.

``<storage>/<name>/`` holds ``sweep.json`` (name, the spec as given, tracking URI, MLflow parent
run, creation time), ``records.jsonl`` (sweeps.store.records), ``trials.parquet`` and
``epochs.parquet`` (sweeps.store.tables), ``driver.lock`` (sweeps.store.lock), ``trial_states/`` (each
trial's latest state, what a retried or resumed trial goes on from) and ``tune/`` (Ray Tune's
experiment state). Every command finds a sweep through :func:`sweep_dir`, so a name can
never point outside ``--storage``. Nothing here imports torch, Ray or MLflow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.spec import SweepSpec

from sweeps.errors import SpecError, UsageError
from sweeps.spec.names import check_name, name_problem

META_FILE = "sweep.json"
#: One state file per trial (``<trial_id>.pt``): its seed group and its last report.
TRIAL_STATES = "trial_states"
#: Table columns: ``config/<dotted key>``, the metrics at the best and at the last epoch, and the
#: spread over seeds of a metric (``<metric>_std``).
CONFIG_PREFIX = "config/"
BEST_PREFIX = "best/"
LAST_PREFIX = "last/"
STD_SUFFIX = "_std"
#: Metrics that state the schedule (the same for every seed of a trial), not a result: they get
#: no ``_std`` and no summary metric in MLflow.
SCHEDULE_METRICS = frozenset({"mixup/active"})
#: Trial statuses in records and tables: RUNNING, TERMINATED (full budget), STOPPED (cut by the
#: scheduler), ERROR (failed; the record's ``error`` says why).
TRIAL_STATUSES = ("RUNNING", "TERMINATED", "STOPPED", "ERROR")
FINAL_STATUSES = ("TERMINATED", "STOPPED", "ERROR")
DEFAULT_STORAGE = "sweep_results"
#: Ray Tune's experiment folder in a sweep folder, and the file whose presence makes it
#: restorable (what ``ray.tune.Tuner.can_restore`` looks for; checked here without Ray, and
#: against Tune itself by tests/execution/test_no_dead_ends.py).
TUNE_DIR = "tune"
TUNE_STATE_FILE = "tuner.pkl"


def tune_state_saved(directory: Path, name: str = TUNE_DIR) -> bool:
    """Did Ray Tune save the state of experiment ``name`` (so that ``resume`` restores it)?
    False for a sweep whose driver died before that: ``resume`` then starts it afresh."""
    return (directory / name / TUNE_STATE_FILE).is_file()


def storage_root(storage: str | Path) -> Path:
    return Path(storage).expanduser().resolve()


def sweep_dir(storage: str | Path, name: str) -> Path:
    """``<storage>/<name>``, after checking that ``name`` is a plain folder name."""
    return storage_root(storage) / check_name(name)


def writable_storage(storage: str | Path) -> Path:
    """The storage folder, created if needed, after proving a file can be written in it."""
    root = storage_root(storage)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        raise UsageError(f"--storage {storage}: cannot write there ({err.strerror or err})") from None
    return root


def list_sweeps(storage: str | Path) -> list[str]:
    root = storage_root(storage)
    if not root.is_dir():
        return []
    # a folder moved aside by an unfinished delete (".NAME.deleting") is not a sweep
    return sorted(p.parent.name for p in root.glob(f"*/{META_FILE}")
                  if name_problem(p.parent.name) is None)


def read_meta(storage: str | Path, name: str) -> dict[str, Any]:
    path = sweep_dir(storage, name) / META_FILE
    if not path.is_file():
        raise UsageError(f"sweep {name!r}: no {META_FILE} in {path.parent} "
                         f"(wrong --storage? sweeps there: {list_sweeps(storage) or 'none'})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
    objective = meta.get("objective") if isinstance(meta, dict) else None
    if not isinstance(objective, dict) or not {"metric", "mode"} <= set(objective):
        raise UsageError(f"{path}: not a sweep description (no objective metric and mode)")
    _check_types(meta, path)
    return _follow_store(meta, path.parent)


#: The fields of ``sweep.json`` the commands read, and the types they must have (None allowed
#: where a field may be absent from sweeps written by older versions).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "objective.metric": (str,), "objective.mode": (str,), "tracking_uri": (str,),
    "spec_text": (str, type(None)), "spec_path": (str, type(None)),
    "parent_run_id": (str, type(None)), "sweep_id": (str, type(None)),
    "experiment_id": (str, type(None)), "created": (int, float, type(None)),
    "trials_planned": (int, type(None)), "seeds": (list, type(None)),
    "objectives": (list, type(None)), "pack_size": (int, type(None)),
}


def _check_types(meta: dict[str, Any], path: Path) -> None:
    """Wrong types in ``sweep.json`` (a hand edit, another tool) are one line naming the field."""
    for key, types in _META_TYPES.items():
        head, _, tail = key.partition(".")
        value = meta.get(head)
        if tail:
            value = value.get(tail) if isinstance(value, dict) else None
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UsageError(f"{path}: {key} must be {wanted}, got {type(value).__name__} "
                             f"{json.dumps(value)[:60]}")
    seeds = meta.get("seeds")
    if isinstance(seeds, list) and not all(type(s) is int for s in seeds):
        raise UsageError(f"{path}: seeds must be a list of integers, got {json.dumps(seeds)[:60]}")


SQLITE = "sqlite:///"


def _follow_store(meta: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A sweep folder copied or moved together with its sqlite store uses the copy: when the
    store's path relative to the sweep folder (``tracking_store_rel``) names an existing file
    that is not the recorded one, the URI is rewritten to it (in the returned dict only)."""
    uri, relative = meta.get("tracking_uri"), meta.get("tracking_store_rel")
    if not (isinstance(uri, str) and uri.startswith(SQLITE) and isinstance(relative, str)):
        return meta
    moved = (directory / relative).resolve()
    if moved.is_file() and str(moved) != uri[len(SQLITE):]:
        meta["tracking_uri"] = f"{SQLITE}{moved}"
    return meta


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    uri = meta.get("tracking_uri")
    if isinstance(uri, str) and uri.startswith(SQLITE) and uri[len(SQLITE):].startswith("/"):
        meta["tracking_store_rel"] = os.path.relpath(uri[len(SQLITE):], directory.resolve())
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(directory / META_FILE)


def stored_spec(meta: dict[str, Any]) -> SweepSpec:
    """The spec the sweep runs, as ``sweep.json`` keeps it: its YAML text parsed again, shrunk
    for a smoke run, with the command line's budget overrides. The one parser of a stored spec.

    Raises:
        UsageError: ``sweep.json`` holds no spec, or a spec this version cannot read.
    """
    from sweeps.spec import apply_sets, parse_spec, yaml_numbers

    if not isinstance(meta.get("spec_text"), str) or not isinstance(meta.get("spec_path"), str):
        raise UsageError(f"sweep {meta.get('name')!r}: {META_FILE} holds no spec to run it from")
    try:
        source = meta["spec_path"]
        data = apply_sets(yaml_numbers.safe_load(meta["spec_text"]), meta.get("sets") or {},
                          source=source)
        spec = parse_spec(data, source=source)
        if meta.get("smoke"):
            spec = spec.shrunk()
        return spec.with_overrides(num_samples=meta.get("num_samples"),
                                   max_concurrent=meta.get("max_concurrent"),
                                   pack=meta.get("pack"))
    except SpecError as err:
        raise UsageError(f"sweep {meta.get('name')!r}: its stored spec no longer reads ({err})") \
            from None

