"""Every Optuna sweep, packed or not, keeps its study in ``optuna.journal`` in the sweep folder,
as optuna-dashboard reads it: one Optuna trial per trial, with our trial id, the objective per
epoch (intermediate values) and the chosen epoch's values (objective, its seed spread, the test
metrics) as user attributes; ``resume`` goes on with the same study."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sweeps.store.records import RecordLog
from tests.sweep_helpers import mixup_sweep, run_and_kill, write_spec

SPACE = {"mixup.alpha": {"kind": "loguniform", "low": 0.05, "high": 4.0},
         "mixup.label_scheme": {"kind": "choice", "values": ["same", "power"]}}
OBJECTIVE = "val/acc_rare"


def _study(folder: Path) -> list[Any]:
    """The study in ``folder``'s journal, read with Optuna's own API (as optuna-dashboard does)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    return optuna.load_study(study_name=folder.name, storage=storage).get_trials()


def _assert_study_mirrors_the_records(folder: Path, *, trials: int, seeds: int) -> None:
    """Each record's trial is one COMPLETE Optuna trial that carries what the tables say."""
    records = RecordLog(folder).trials
    table = pd.read_parquet(folder / "trials.parquet").set_index("trial_id")
    study = _study(folder)
    complete = [t for t in study if t.state.name == "COMPLETE"]
    assert all(t.state.name == "FAIL" for t in study if t not in complete)  # asked, never run
    assert len(complete) == trials == len(records)
    assert sorted(t.user_attrs["trial_id"] for t in complete) == sorted(records)
    for t in complete:
        record, row = records[t.user_attrs["trial_id"]], table.loc[t.user_attrs["trial_id"]]
        assert t.params == {k: record.config[k] for k in SPACE}
        assert t.intermediate_values == {e: m[OBJECTIVE] for e, m in record.epochs.items()}
        assert t.value == record.epochs[record.last_epoch][OBJECTIVE]  # told at its last report
        attrs = t.user_attrs
        assert attrs["seeds"] == seeds and attrs["best_epoch"] == row["best_epoch"]
        for column in (f"best/{OBJECTIVE}", f"best/{OBJECTIVE}_std", "best/test/acc_rare",
                       "best/test/acc_common"):
            assert math.isclose(attrs[column], row[column], abs_tol=1e-12), column


@pytest.mark.parametrize("pack", ["1", "2"], ids=["unpacked", "packed"])
def test_every_optuna_sweep_keeps_a_journal_study_that_mirrors_its_records(
        tmp_path: Path, pack: str) -> None:
    spec = write_spec(tmp_path, "tpe", seeds=[0, 1], search_space=SPACE,
                      search={"algorithm": "optuna", "num_samples": 4, "seed": 3,
                              "max_concurrent": 2})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", pack, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    _assert_study_mirrors_the_records(tmp_path / "res" / "tpe", trials=4, seeds=2)


def test_a_killed_unpacked_optuna_sweep_resumes_with_its_journal_study(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "tpe", seeds=[0, 1], search_space=SPACE,
                      trial={"data": {"dim": 200, "n_train": 60, "n_test": 200},
                             "optim.epochs": 200, "log_every": 20},
                      search={"algorithm": "optuna", "num_samples": 3, "seed": 5,
                              "max_concurrent": 1})
    [hit] = run_and_kill(spec, tmp_path, at_epochs=(100,))
    folder = tmp_path / "res" / "tpe"
    before = RecordLog(folder).trials
    assert before[hit["trial_id"]].status == "RUNNING"
    held = {t.user_attrs["trial_id"]: t for t in _study(folder)}[hit["trial_id"]]
    assert held.state.name == "RUNNING" and max(held.intermediate_values) >= 100

    out = mixup_sweep("resume", "tpe", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    after = RecordLog(folder).trials
    assert all(r.status == "TERMINATED" and r.last_epoch == 200 for r in after.values())
    _assert_study_mirrors_the_records(folder, trials=3, seeds=2)
