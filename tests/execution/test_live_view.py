"""The live view: a rich panel in a (pseudo-)terminal, plain lines anywhere else, a quiet start."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from sweeps.execution.progress import LivePanel, ProgressLine, make_display
from tests.sweep_helpers import CLI, cli_env, mixup_sweep, write_spec

SPACE = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
         "mixup.stop_epoch": {"kind": "grid", "values": [100, None]}}
TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 600,
         "log_every": 20}


def run_in_terminal(args: list[str], cwd: Path, *, timeout: float = 240) -> str:
    """Runs the CLI with its stdout and stderr on a pseudo-terminal; returns what it drew."""
    master, slave = pty.openpty()
    env = {**cli_env(), "COLUMNS": "110", "LINES": "40", "TERM": "xterm-256color"}
    process = subprocess.Popen([*CLI, *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                               env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(master)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")[-2000:]
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_the_live_panel_and_a_quiet_start(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "live", trial=TRIAL, search_space=SPACE, seeds=[0],
                      search={"algorithm": "grid", "max_concurrent": 2})
    drawn = run_in_terminal(["run", str(spec), "--storage", "res", "--pack", "1",
                             "--no-report"], tmp_path)
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "live_view.ansi").write_text(drawn)  # `cat` it in a terminal to replay
    assert "\x1b[" in drawn  # drawn in place, with control codes
    for text in ("trials", "ETA", "running", "epoch", "α=1 never off", "best val/acc_rare"):
        assert text in drawn, text
    assert "/600" in drawn  # a running trial's epoch of its budget
    before_ray = drawn.split("Ray:", 1)[0]
    assert "INFO" not in before_ray and "Token authentication" not in drawn  # a quiet start


def test_a_pipe_gets_plain_lines_with_the_eta_and_the_best_settings(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "plain", trial=TRIAL, search_space=SPACE, seeds=[0],
                      search={"algorithm": "grid", "max_concurrent": 2})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout
    progress = [line for line in out.stdout.splitlines() if line.startswith("[")]
    assert progress and any("| ETA " in line for line in progress)
    assert "3/3 trials finished" in progress[-1] and "(α=" in progress[-1]  # α = 0: one trial
    assert "INFO" not in out.stdout + out.stderr and "Token authentication" not in out.stderr


def test_make_display_picks_by_the_stream_and_the_eta_follows_the_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sweeps.execution.progress as progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    assert type(make_display(metric="m", mode="max", total=2, stream=io.StringIO())) is (
        ProgressLine)
    line = ProgressLine(metric="m", mode="max", total=3, stream=io.StringIO(), budget=100)
    line.trial("a", epoch=0, budget=100, name="α=1")
    assert line.eta() is None  # nothing trained yet: no rate
    line.trial("a", epoch=10, budget=100, name="α=1")  # the first trained epochs
    clock[0] += 10.0
    line.trial("a", epoch=60, budget=100, name="α=1")  # 50 trial-epochs in 10 s since then
    eta = line.eta()
    assert eta is not None and abs(eta - (40 + 2 * 100) / 5.0) < 1e-6
    line.offer("a", 60, 0.9)
    assert "(α=1 @ epoch 60)" in line.render()
    assert issubclass(LivePanel, ProgressLine)
