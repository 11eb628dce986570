"""Interrupted means interrupted: Ctrl-C (SIGINT) or SIGTERM during ``run`` ends with one line
saying how many trials ended and how to resume, exit code 130, no ranking of half-trained trials
and no report; ``resume`` then finishes the sweep.

The signal arrives while a trial holds at its own ``step`` failpoint, so the sweep is surely
mid-way, never at a guessed moment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.store.records import RecordLog
from tests.sweep_helpers import CLI, arm_step, cli_env, mixup_sweep, wait_for_hold, write_spec

pytestmark = pytest.mark.slow

TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 400,
         "log_every": 20}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_run_says_interrupted_exits_130_and_resume_finishes(
        tmp_path: Path, sig: signal.Signals) -> None:
    spec = write_spec(tmp_path, "cut", trial=TRIAL, search={"algorithm": "grid",
                                                            "max_concurrent": 1},
                      search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    failpoints = tmp_path / "failpoints"
    failpoints.mkdir()
    arm_step(failpoints, 100)
    driver = subprocess.Popen([*CLI, "run", str(spec), "--storage", "res"], cwd=tmp_path,
                              env={**cli_env(), FAILPOINT_ENV: str(failpoints)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        wait_for_hold(failpoints, driver, timeout=120)
        driver.send_signal(sig)  # the driver only, as `kill PID` or Ctrl-C on it would
        (failpoints / "step.hit").unlink()  # the held trial goes on, as a real one would
        stdout, stderr = driver.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, (driver.returncode, stderr[-3000:])
    errors = [line for line in stderr.splitlines() if line.startswith("mixup-sweep run:")]
    assert len(errors) == 1 and errors[0].startswith("mixup-sweep run: interrupted: ") and \
        "of 2 trials ended; resume with: mixup-sweep resume cut --storage res" in errors[0], stderr
    assert "Best configs" not in stdout and "Mean val/acc_rare" not in stdout, stdout
    folder = tmp_path / "res" / "cut"
    assert not (folder / "report").exists()
    status = mixup_sweep("status", "cut", "--storage", "res", cwd=tmp_path)
    assert "interrupted" in status.stdout, status.stdout
    if sig == signal.SIGTERM:  # the same state on disk as after SIGINT, whose resume follows
        return

    out = mixup_sweep("resume", "cut", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = RecordLog(folder).trials
    assert len(trials) == 2 and all(r.status == "TERMINATED" for r in trials.values())
    assert all(sorted(r.epochs) == list(range(20, 401, 20)) for r in trials.values())
