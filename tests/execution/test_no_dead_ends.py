"""No dead ends at start-up: a driver killed after ``sweep.json`` is written but before Ray Tune
saved its state leaves a sweep that ``status`` explains and ``resume`` starts in its folder.

The driver is killed while it holds at its own ``driver`` failpoint (sweeps.execution.driver),
the moment between the two writes, never at a guessed time."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.store.layout import TUNE_DIR, tune_state_saved
from sweeps.store.records import RecordLog
from tests.conftest import wait_until
from tests.sweep_helpers import CLI, NO_REPORT, cli_env, mixup_sweep, sweep_runs, write_spec

pytestmark = pytest.mark.slow

ALPHA = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}}


def kill_before_tune_saves(spec: Path, cwd: Path) -> None:
    """``run SPEC`` killed (its whole process group) while it holds at the driver failpoint."""
    folder = cwd / "failpoints"
    folder.mkdir()
    (folder / "driver.armed").write_text("{}")
    driver = subprocess.Popen([*CLI, "run", str(spec), "--storage", "res", NO_REPORT], cwd=cwd,
                              env={**cli_env(), FAILPOINT_ENV: str(folder)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)

    def held() -> dict[str, object] | None:
        if driver.poll() is not None:
            raise AssertionError(f"the driver exited ({driver.returncode}) before its failpoint")
        with contextlib.suppress(FileNotFoundError):
            return json.loads((folder / "driver.hit").read_text())
        return None

    try:
        hit = wait_until(held, timeout=120, what="the driver holding at its failpoint")
        assert hit["pid"] == driver.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.communicate()


def assert_agrees_with_tune(folder: Path, *, saved: bool) -> None:
    """The Ray-free check (sweeps.store.layout) answers as Ray Tune's own ``can_restore``."""
    from ray import tune

    assert tune_state_saved(folder) is saved
    assert tune.Tuner.can_restore(str(folder / TUNE_DIR)) is saved


def test_a_sweep_whose_driver_died_before_tune_saved_its_state_is_started_by_resume(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "early", search_space=ALPHA)
    kill_before_tune_saves(spec, tmp_path)
    folder = tmp_path / "res" / "early"
    assert (folder / "sweep.json").is_file()
    assert_agrees_with_tune(folder, saved=False)

    status = mixup_sweep("status", "early", "--storage", "res", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Ray Tune never saved its state" in status.stdout, status.stdout
    assert "mixup-sweep resume early --storage res" in status.stdout, status.stdout
    again = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert again.returncode == 2 and "mixup-sweep resume early" in again.stderr, again.stderr

    out = mixup_sweep("resume", "early", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "stopped before Ray Tune saved its state; it starts now" in out.stdout, out.stdout
    trials = RecordLog(folder).trials
    assert len(trials) == 2
    for record in trials.values():
        assert record.status == "TERMINATED" and sorted(record.epochs) == [10, 20, 30, 40]
    listed = mixup_sweep("list", "--storage", "res", cwd=tmp_path)
    assert "finished" in listed.stdout, listed.stdout
    parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "early")
    assert parent.info.status == "FINISHED" and len(children) == 2


def test_trials_started_before_tune_saved_anything_start_again_and_their_records_are_kept(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "orphans", search_space=ALPHA)
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "res" / "orphans"
    before = (folder / "records.jsonl").read_bytes()
    assert_agrees_with_tune(folder, saved=True)
    shutil.rmtree(folder / TUNE_DIR)  # as if the driver had died before Tune wrote its state
    assert_agrees_with_tune(folder, saved=False)

    out = mixup_sweep("resume", "orphans", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "its 2 started trial(s) start again" in out.stdout, out.stdout
    kept = list(folder.glob("records.before-*.jsonl"))
    assert len(kept) == 1 and kept[0].read_bytes() == before
    trials = RecordLog(folder).trials
    assert len(trials) == 2 and all(r.status == "TERMINATED" for r in trials.values())
    assert tune_state_saved(folder)
