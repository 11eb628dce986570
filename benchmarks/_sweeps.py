"""One sweep through the whole stack in this process (local Ray, MLflow sqlite, records,
Parquet), as ``mixup-sweep run`` drives it, for the benchmarks that time sweeps end to end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def run_sweep(spec_path: Path, *, pack: int | str | None = None,
              trials: int | None = None) -> tuple[Any, list[Any]]:
    """Runs the spec at ``spec_path`` into its folder (storage ``res``, tracking ``mlflow.db``
    beside it) on the running Ray; returns the driver's outcome (``wall_seconds``,
    ``mlflow_seconds``, ``drain_seconds``) and the trial records, every one TERMINATED (and
    ``trials`` of them when given)."""
    from sweeps.execution import driver
    from sweeps.spec import load_spec
    from sweeps.store.records import RecordLog

    folder = spec_path.parent
    out = driver.start_run(
        load_spec(spec_path), str(spec_path), storage=folder / "res", name=None,
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", address=None, smoke=False,
        num_samples=None, max_concurrent=None, pack=pack, stream=io.StringIO())
    records = list(RecordLog(out.directory).trials.values())
    assert all(r.status == "TERMINATED" for r in records) and (
        trials is None or len(records) == trials), {r.trial_id: (r.status, r.error) for r in records}
    return out, records


__all__ = ["run_sweep"]
