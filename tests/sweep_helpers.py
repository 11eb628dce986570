"""Shared helpers for the sweep tests: write small specs, run the real CLI, read MLflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

CLI = [sys.executable, "-m", "mixup_cli"]
SMALL_TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 40,
               "log_every": 10}


def write_spec(folder: Path, name: str, **sections: Any) -> Path:
    spec = {"name": name, "trial": SMALL_TRIAL, "search": {"algorithm": "grid"},
            "objective": {"metric": "val/acc_rare", "mode": "max"}, **sections}
    path = folder / f"{name}.yaml"
    path.write_text(f"# Launch: mixup-sweep run {name}.yaml\n" + yaml.safe_dump(spec))
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


#: What the tests add to ``run`` and ``resume``: the end-of-run report takes seconds, and its
#: own tests ask for it (``report=True``).
NO_REPORT = "--no-report"


def mixup_sweep(*args: str, cwd: Path, timeout: float = 300,
                report: bool = False) -> subprocess.CompletedProcess[str]:
    extra = [NO_REPORT] if args and args[0] in ("run", "resume") and not report else []
    return subprocess.run([*CLI, *args, *extra], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=cli_env())


def sweep_runs(uri: str, sweep: str) -> tuple[Any, list[Any]]:
    """(parent run, child runs) of a sweep, read with a fresh MlflowClient."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(f"mixup-sweeps/{sweep}")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    return parents[0], children


def metric_steps(uri: str, run_id: str, key: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    return [m.step for m in MlflowClient(uri).get_metric_history(run_id, key)]


def run_and_kill(spec: Path, cwd: Path, *extra: str, epochs: int = 40,
                 timeout: float = 120) -> None:
    """Starts ``run SPEC`` and SIGKILLs the driver with the Ray processes it started once
    ``epochs`` epoch reports are in its records (or fails after ``timeout`` seconds)."""
    driver = subprocess.Popen([*CLI, "run", str(spec), "--storage", "res", NO_REPORT, *extra],
                              cwd=cwd,
                              env=cli_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    records = cwd / "res" / spec.stem / "records.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if records.exists() and records.read_text().count('"type": "epoch"') >= epochs:
            break
        time.sleep(0.5)
    assert driver.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    driver.wait()
