"""A torn line in the middle of ``records.jsonl`` leaves no hole: ``resume`` restores the epoch it
held from the trial's state file (sweeps.execution.repair), or says that it stays missing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sweeps.execution.repair import repair_holes
from sweeps.store.records import RecordLog, TrialRecord
from tests.sweep_helpers import mixup_sweep, write_finished_sweep, write_spec

SPACE = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}}  # 2 trials, epochs 10 … 40


def finished_sweep(folder: Path, *, pack: str) -> Path:
    spec = write_spec(folder, "torn", search_space=SPACE, seeds=[0, 1])
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", pack, cwd=folder)
    assert out.returncode == 0, out.stderr
    return folder / "res" / "torn"


def tear(folder: Path, epoch: int) -> dict[str, Any]:
    """Cuts the first report of ``epoch`` short, as a half-written line; returns its event."""
    path = folder / "records.jsonl"
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines)
             if json.loads(line)["type"] == "epoch" and json.loads(line)["epoch"] == epoch)
    event = json.loads(lines[i])
    lines[i] = lines[i][:60]
    path.write_text("\n".join(lines) + "\n")
    return event


def same(metrics: dict[str, float], recorded: dict[str, float | None]) -> bool:
    """The metrics of a replayed epoch are those of a line in the records (None: NaN)."""
    return metrics.keys() == recorded.keys() and all(
        math.isnan(v) if recorded[k] is None else v == recorded[k] for k, v in metrics.items())


@pytest.mark.parametrize("pack", ["1", "2"])
def test_a_torn_middle_epoch_is_restored_from_the_state_file_and_the_later_ones_stay(
        tmp_path: Path, pack: str) -> None:
    folder = finished_sweep(tmp_path, pack=pack)
    before = RecordLog(folder).trials
    torn = tear(folder, 20)
    trial = torn["trial_id"]
    log = RecordLog(folder)
    assert sorted(log.trials[trial].epochs) == [10, 30, 40] and len(log.skipped_lines) == 1
    assert repair_holes(folder, log, 2) == [f"trial {trial}: epoch 20 restored from its state file"]
    log.close()
    after = RecordLog(folder)
    for trial_id, record in after.trials.items():
        assert sorted(record.epochs) == [10, 20, 30, 40] and record.status == "TERMINATED"
        assert record.compute_seconds == before[trial_id].compute_seconds
        for epoch in (10, 30, 40):
            assert record.epochs[epoch].keys() == before[trial_id].epochs[epoch].keys()
    assert same(after.trials[trial].epochs[20], torn["metrics"])  # as the driver recorded it
    assert repair_holes(folder, after, 2) == []  # repaired once


def test_an_epoch_no_state_file_holds_is_reported_as_missing(tmp_path: Path) -> None:
    records = [TrialRecord("t0", {"log_every": 10}, status="TERMINATED",
                           epochs={e: {"epoch": e, "val/acc_rare": e / 100} for e in (10, 20, 30)})]
    folder = write_finished_sweep(tmp_path, "stateless", records)
    tear(folder, 20)
    log = RecordLog(folder)
    assert repair_holes(folder, log, 1) == [
        "trial t0: epoch 20 missing from the records, and no usable state file to restore it from"]
    assert sorted(log.trials["t0"].epochs) == [10, 30]


def test_resume_restores_an_epoch_whose_line_was_torn(tmp_path: Path) -> None:
    folder = finished_sweep(tmp_path, pack="2")
    torn = tear(folder, 20)
    out = mixup_sweep("resume", "torn", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"trial {torn['trial_id']}: epoch 20 restored from its state file" in out.stdout
    record = RecordLog(folder).trials[torn["trial_id"]]
    assert sorted(record.epochs) == [10, 20, 30, 40] and record.status == "TERMINATED"
    assert same(record.epochs[20], torn["metrics"])
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert sorted(epochs[epochs["trial_id"] == torn["trial_id"]]["epoch"]) == [10, 20, 30, 40]
