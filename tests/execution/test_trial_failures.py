"""A diverging trial is recorded as failed with its reason; the sweep goes on."""

from __future__ import annotations

import pytest

from sweeps.store.records import RecordLog
from tests.sweep_helpers import mixup_sweep, sweep_runs, write_spec

pytestmark = pytest.mark.slow


def test_a_nan_trial_is_recorded_as_failed_and_the_others_finish(tmp_path):
    spec = write_spec(tmp_path, "nan", search_space={
        "optim.lr": {"kind": "grid", "values": [0.5, 1000.0]}})
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 errored" in out.stdout
    records = {r.config["optim.lr"]: r for r in RecordLog(tmp_path / "res" / "nan").trials.values()}
    assert records[0.5].status == "TERMINATED"
    assert records[1000.0].status == "ERROR"
    assert "train/loss became nan" in (records[1000.0].error or "")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "nan")
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(failed) == 1
    assert "train/loss became nan" in failed[0].data.tags["mixup_sweeps.error"]
