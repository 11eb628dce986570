"""Bad input to `run` / `best`: one line naming the problem, exit code 2, nothing started."""

from __future__ import annotations

import json
import math

import pytest

from sweeps.store import EPOCHS_FILE, TRIALS_FILE, tables
from sweeps.store.records import TrialRecord
from tests.sweep_helpers import mixup_sweep, write_finished_sweep, write_spec


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"search_space": {"mixup.alpha": {"kind": "grid", "values": [-1.0]}}},
         "search_space.mixup.alpha"),
        ({"search_space": {"mixup.label_scheme": {"kind": "grid", "values": ["nope"]}}},
         "search_space.mixup.label_scheme"),
        ({"objective": {"metric": "test/acc_rarest", "mode": "max"}}, "objective.metric"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_spec_fails_with_the_file_and_key_and_starts_nothing(tmp_path, sections,
                                                                        message):
    spec = write_spec(tmp_path, "bad", **{"search_space": {}, **sections})
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml" in lines[0] and message in lines[0], out.stderr
    assert not (tmp_path / "res").exists() and not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_tracking_server_fails_before_any_trial(tmp_path):
    spec = write_spec(tmp_path, "nowhere", search_space={})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--tracking-uri",
                      "http://127.0.0.1:9", cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    assert "http://127.0.0.1:9" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "res" / "nowhere" / "records.jsonl").exists()


def test_unknown_sweeps_and_metrics_are_named_in_the_error(tmp_path):
    out = mixup_sweep("best", "ghost", "--storage", "res", cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "ghost" in out.stderr


def _record(trial_id: str, alpha: float, curve: list[float]) -> TrialRecord:
    record = TrialRecord(trial_id, {"mixup.alpha": alpha}, status="TERMINATED")
    record.epochs = {10 * (i + 1): {"epoch": 10.0 * (i + 1), "val/acc_rare": v,
                                    "test/loss": 1 - v} for i, v in enumerate(curve)}
    return record


KNOWN = [
    _record("peaks_early", 0.5, [0.2, 0.95, 0.6]),   # best epoch 20, worst at the end
    _record("steady", 1.0, [0.5, 0.7, 0.8]),          # best at the end
    _record("flat", 2.0, [0.4, 0.4, math.nan]),       # NaN last report
]


def test_best_ranks_a_known_sweep_by_best_epoch_and_by_last_epoch(tmp_path):
    trials = tables.trial_rows(KNOWN, metric="val/acc_rare", mode="max")
    import pandas as pd

    t, e = pd.DataFrame(trials), pd.DataFrame(tables.epoch_rows(KNOWN))
    by_best = tables.rank(t, e, metric="val/acc_rare", mode="max", scope="best-epoch")
    assert list(by_best["trial_id"]) == ["peaks_early", "steady", "flat"]
    assert list(by_best["epoch"]) == [20, 30, 10]
    by_last = tables.rank(t, e, metric="val/acc_rare", mode="max", scope="last")
    assert list(by_last["trial_id"]) == ["steady", "peaks_early", "flat"]
    assert list(by_last["epoch"]) == [30, 30, 20]  # the NaN report is skipped
    by_loss = tables.rank(t, e, metric="test/loss", mode="min", scope="best-epoch", top=1)
    assert list(by_loss["trial_id"]) == ["peaks_early"]


def test_best_reads_a_sweep_from_its_records_through_the_cli(tmp_path):
    folder = write_finished_sweep(tmp_path / "res", "known", KNOWN)
    for table in (TRIALS_FILE, EPOCHS_FILE):  # the answer comes from the records alone
        (folder / table).unlink()
    for scope, expected in [("best-epoch", "peaks_early"), ("last", "steady")]:
        out = mixup_sweep("best", "known", "--storage", "res", "--scope", scope, "--json",
                          cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        ranked = json.loads(out.stdout.strip().splitlines()[-1])
        assert ranked[0]["trial_id"] == expected
        assert ranked[0]["config"] == {"mixup.alpha": 0.5 if expected == "peaks_early" else 1.0}
        assert set(ranked[0]) >= {"trial_id", "config", "metrics"}
