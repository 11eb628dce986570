"""A pack whose process dies more often than ``execution.retries`` is split, not lost: its open
member trials go on from its state file in two smaller packs (sweeps.execution.packing.plan_split).

The fault is real: the pack's worker process gets SIGKILL while it holds at its own ``step``
failpoint (what a node's death does to it; tests/execution/test_cluster.py kills whole nodes)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.execution.packing import FROM_KEY, MEMBER_KEY, PACK_LOST, plan_split
from sweeps.store.records import RecordLog, TrialRecord
from tests.conftest import wait_until
from tests.sweep_helpers import CLI, NO_REPORT, cli_env, write_spec

EPOCHS = list(range(20, 601, 20))
TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 600,
         "log_every": 20}


def record(trial_id: str, pack: str, status: str = "ERROR", error: str = f"{PACK_LOST}: x"
           ) -> TrialRecord:
    return TrialRecord(trial_id, {"mixup.alpha": float(trial_id[-1])}, status=status,
                       error=error if status == "ERROR" else None, pack=pack)


def test_the_lost_members_of_a_pack_are_halved_and_a_pack_of_one_stays_lost() -> None:
    records = [record("p-00", "p", "TERMINATED"), record("p-01", "p"), record("p-02", "p"),
               record("p-03", "p"),
               record("q-00", "q"),  # a pack of one: its failure is its own
               record("r-00", "r", error="TrainingDiverged: nan"), record("r-01", "r")]
    packs = plan_split(records)
    assert [[(m[MEMBER_KEY], m[FROM_KEY]) for m in pack] for pack in packs] == [
        [("p-01", "p"), ("p-02", "p")], [("p-03", "p")], [("r-01", "r")]]
    assert packs[0][0]["mixup.alpha"] == 1.0


#: Where the pack's process dies: while it trains (a pack of all 4 trials, past epoch 200), or
#: while the second of two packs of 2 is handed to the first one's reused actor, before it
#: ever started (its trials had no records yet, and went missing before this was tested).
MOMENTS = {
    "mid-pack": ("step", {"min_epoch": 200}, 4, "4 trial(s) of a pack that failed 1 time(s) go "
                 "on from its state in 2 smaller pack(s)"),
    "before-start": ("reset", {}, 2, "2 trial(s) of a pack that failed 1 time(s) go on from "
                     "its state in 2 smaller pack(s)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_pack_that_dies_past_its_retries_goes_on_in_two_packs_and_loses_nothing(
        tmp_path: Path, moment: str) -> None:
    failpoint, condition, pack, note = MOMENTS[moment]
    spec = write_spec(tmp_path, "split", trial=TRIAL, seeds=[0, 1], search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}},
        search={"algorithm": "grid", "max_concurrent": 1},
        execution={"pack": pack, "retries": 0})
    failpoints = tmp_path / "failpoints"
    failpoints.mkdir()
    (failpoints / f"{failpoint}.armed").write_text(json.dumps(condition))
    driver = subprocess.Popen([*CLI, "run", str(spec), "--storage", "res", NO_REPORT],
                              cwd=tmp_path, env={**cli_env(), FAILPOINT_ENV: str(failpoints)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        hit = wait_until(lambda: driver.poll() is None and read_hit(failpoints / f"{failpoint}.hit"),
                         timeout=120, what=f"a pack holding at the {failpoint} failpoint")
        os.kill(hit["pid"], signal.SIGKILL)  # the pack's process dies, its retries are 0
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, stderr[-3000:]
    assert f"note: {note}" in stdout, stdout
    assert "Traceback" not in stderr and stderr.count("note: Ray trial") == 0, stderr

    folder = tmp_path / "res" / "split"
    trials = RecordLog(folder).trials
    held = [t for t in trials if t.startswith(hit["trial_id"] + "-")]
    assert len(trials) == 4 and len(held) == pack
    events = [json.loads(x) for x in (folder / "records.jsonl").read_text().splitlines()]
    for trial_id, rec in trials.items():
        assert rec.status == "TERMINATED", (trial_id, rec.status, rec.error)
        assert sorted(rec.epochs) == EPOCHS, trial_id
        reports = [e["epoch"] for e in events if e["type"] == "epoch" and e["trial_id"] == trial_id]
        assert reports.count(20) == 1, reports  # trained once: went on from the state file
    for trial_id in held:
        assert trials[trial_id].pack != hit["trial_id"]  # it finished in a split pack
    meta = json.loads((folder / "sweep.json").read_text())
    [split] = meta["split_rounds"]
    assert [len(p) for p in split] == [pack // 2, pack // 2]
    assert {m[FROM_KEY] for p in split for m in p} == {hit["trial_id"]}


def read_hit(path: Path) -> dict[str, object] | None:
    with contextlib.suppress(FileNotFoundError):
        return json.loads(path.read_text())  # written whole (a rename), or not yet
    return None
