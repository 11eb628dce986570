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


@pytest.mark.parametrize("pack", ["1", "2"])
def test_a_state_file_that_cannot_be_loaded_restarts_its_trial_with_one_warning(tmp_path, pack):
    from tests.sweep_helpers import run_and_kill

    spec = write_spec(tmp_path, "torn", trial={"data": {"dim": 200, "n_train": 60, "n_test": 200},
                                                "optim.epochs": 200, "log_every": 10},
                      search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    held = run_and_kill(spec, tmp_path, "--pack", pack, at_epochs=(60,))
    state = tmp_path / "res" / "torn" / "trial_states" / f"{held[0]['trial_id']}.pt"
    assert state.is_file()
    state.write_bytes(b"\x00garbage, not a torch file")
    out = mixup_sweep("resume", "torn", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    warnings = [x for x in out.stderr.splitlines() if "restarts from epoch 0" in x]
    assert len(warnings) == 1 and state.name in warnings[0], out.stderr[-2000:]
    records = RecordLog(tmp_path / "res" / "torn").trials.values()
    assert sorted(r.status for r in records) == ["TERMINATED", "TERMINATED"]
    assert all(sorted(r.epochs) == list(range(10, 201, 10)) for r in records)
