"""mixup-sweeps from Python: launch a sweep, get a handle on it, ask it for answers.

    import sweeps
    sweep = sweeps.run("sweeps/specs/tiny_demo.yaml")     # or sweeps.load_sweep("tiny_demo")
    sweep.best(top=5)                                     # chosen on validation, test beside it
    from dashboards.report import build_report
    build_report(sweep)

The package is four wings and this face. The wings, each a folder whose ``__init__``
re-exports its public names, depend one way: ``spec`` (the YAML model) <- ``store`` (the sweep
folder; records are the truth) <- ``tracking`` (the MLflow mirror) <- {``execution`` (the driver,
Ray Tune, packs), :mod:`sweeps.sweep` (the handle)}. Names here are imported on first use, so
``import sweeps`` stays cheap and starts nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sweeps.errors import SpecError, TrackingUnavailable, UsageError
from sweeps.store.layout import DEFAULT_STORAGE

if TYPE_CHECKING:
    import pandas as pd

    from sweeps.spec import SweepSpec
    from sweeps.sweep import Sweep

__all__ = ["SpecError", "Sweep", "TrackingUnavailable", "UsageError", "best_configs",
           "load_sweep", "load_tables", "resume", "run"]



def run(spec_or_path: str | os.PathLike[str] | SweepSpec, *, name: str | None = None,
        storage: str | Path = DEFAULT_STORAGE, tracking_uri: str | None = None,
        address: str | None = None, pack: int | str | None = None, smoke: bool = False,
        num_samples: int | None = None, max_concurrent: int | None = None,
        progress: bool = True, allow_same_name: bool = False,
        sets: dict[str, Any] | None = None) -> Sweep:
    """Runs a sweep to its end with the driver ``mixup-sweep run`` uses; returns its handle.

    Args:
        spec_or_path: A spec file, or a spec loaded from one (``sweeps.spec.load_spec``).
        name: The sweep's name (default: the spec's; ``NAME-smoke`` with ``smoke``).
        storage: The folder of sweeps.
        tracking_uri: The MLflow store (default: ``$MLFLOW_TRACKING_URI``, else
            ``./mlflow.db``).
        address: A Ray cluster to join (its ``ray start`` environment must be this process's;
            ``cluster.local.join_env`` sets it for a ``mixup-sweep cluster up`` cluster); None:
            local Ray.
        pack: Trials per Ray trial (``"auto"``, or 1 for one trial per Ray trial); None keeps
            the spec's ``execution.pack``.
        progress: Plain progress lines on stdout (a live panel on a terminal); False: silent.
        allow_same_name: Log beside a sweep of this name from another storage folder in the
            same tracking store (refused by default; each keeps its own runs).
        sets: Overrides as ``run --set`` takes them, e.g. ``{"optim.epochs": 50,
            "execution.pack": 4}`` (``sweeps.spec.apply_sets``); kept in ``sweep.json``.

    Returns:
        The sweep's :class:`~sweeps.sweep.Sweep`, built from the driver's memory: asking it for
        the best configs reads nothing back from the folder.

    Raises:
        SpecError, UsageError, TrackingUnavailable: As the CLI would print them (one line).
    """
    from sweeps.execution.driver import start_run
    from sweeps.spec import SweepSpec, load_spec
    from sweeps.tracking import resolve_tracking_uri

    path = str(spec_or_path.path if isinstance(spec_or_path, SweepSpec) else spec_or_path)
    spec = load_spec(path, sets)
    with _stream(progress) as stream:
        outcome = start_run(spec, path, storage=storage, name=name,
                            tracking_uri=resolve_tracking_uri(tracking_uri, Path.cwd()), address=address,
                            smoke=smoke, num_samples=num_samples,
                            max_concurrent=max_concurrent, pack=pack, stream=stream,
                            allow_same_name=allow_same_name, sets=sets)
    return outcome.sweep


def resume(name: str, *, storage: str | Path = DEFAULT_STORAGE,
           address: str | None = None, progress: bool = True) -> Sweep:
    """Continues an interrupted sweep as ``mixup-sweep resume`` does; returns its handle."""
    from sweeps.execution.driver import resume_run

    with _stream(progress) as stream:
        return resume_run(name, storage=storage, address=address, stream=stream).sweep


def load_sweep(name: str, *, storage: str | Path = DEFAULT_STORAGE) -> Sweep:
    """The handle of sweep ``name`` (like ``optuna.load_study``): ``sweep.json`` read once."""
    from sweeps.sweep import Sweep

    return Sweep.load(name, storage=storage)


def best_configs(name: str, *, storage: str | Path = DEFAULT_STORAGE,
                 **options: Any) -> pd.DataFrame:
    """``load_sweep(name, storage=...).best(**options)``: the trials ranked, best first."""
    return load_sweep(name, storage=storage).best(**options)


def load_tables(name: str, *, storage: str | Path = DEFAULT_STORAGE,
                source: str = "parquet") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_sweep(name, storage=...).tables(source)``: the (trials, epochs) DataFrames."""
    return load_sweep(name, storage=storage).tables(source)  # type: ignore[arg-type]


def __getattr__(name: str) -> Any:
    if name == "Sweep":
        from sweeps.sweep import Sweep

        return Sweep
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")


def _stream(progress: bool) -> contextlib.AbstractContextManager[TextIO]:
    return contextlib.nullcontext(sys.stdout) if progress else open(os.devnull, "w")
