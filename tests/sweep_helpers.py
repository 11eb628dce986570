"""Shared helpers for the sweep tests: write small specs, run the real CLI (and kill its driver at
a failpoint), read MLflow, and write a finished sweep's folder from made-up records."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.store.layout import FINAL_STATUSES, write_meta
from sweeps.store.records import RecordLog, TrialRecord
from tests.conftest import wait_until

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


def _two_trials() -> list[TrialRecord]:
    """t0 and t1 (α = 0 and 1), val/acc_rare at epochs 10 and 20: 8 events in the records."""
    return [TrialRecord(f"t{t}", {"mixup.alpha": float(t)}, status="TERMINATED",
                        epochs={e: {"epoch": e, "val/acc_rare": 0.1 * t + e / 100} for e in (10, 20)})
            for t in range(2)]


def write_finished_sweep(storage: Path, name: str, records: Iterable[TrialRecord] | None = None,
                         *, objective: str = "val/acc_rare", mode: str = "max",
                         seeds: Sequence[int] = (0,), **meta: Any) -> Path:
    """A finished sweep's folder as ``mixup-sweep run`` leaves it, made from ``records``.

    The records are written through the record log as the driver writes them (each trial's
    start, its epochs in order, its end unless it is RUNNING), then ``sweep.json`` (a spec that
    reads, with the objective and the seeds) and the Parquet tables built from the records as
    the driver builds them at its end. ``meta`` replaces entries of ``sweep.json`` (e.g.
    ``tracking_uri``, ``parent_run_id``, ``provenance``, ``spec_path`` and ``spec_text``).
    Without records: two trials (:func:`_two_trials`). Returns the folder.
    """
    folder = storage / name
    trials = list(_two_trials() if records is None else records)
    log = RecordLog(folder)
    for record in trials:
        log.trial_started(record.trial_id, record.config, provenance=record.provenance,
                          merged=record.merged, pack=record.pack)
        for epoch, metrics in sorted(record.epochs.items()):
            log.epoch(record.trial_id, epoch, metrics, node_id=record.node_id,
                      compute_seconds=record.compute_seconds or None)
        if record.status in FINAL_STATUSES:
            log.trial_finished(record.trial_id, record.status, record.error)
    log.close()
    spec = {"name": name, "seeds": list(seeds), "search": {"algorithm": "grid"},
            "objective": {"metric": objective, "mode": mode}}
    write_meta(folder, {
        "name": name, "spec_path": f"{name}.yaml", "spec_text": yaml.safe_dump(spec),
        "smoke": False, "tracking_uri": "sqlite:////nonexistent/mlflow.db",
        "parent_run_id": "0" * 32, "created": time.time(),
        "objective": spec["objective"], "objectives": [spec["objective"]], "seeds": list(seeds),
        "trials_planned": len(trials), **meta})
    from sweeps.store.parquet_io import write_tables  # pyarrow, only for the tests that need it

    write_tables(folder, log, objective, mode)
    return folder


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


#: The step failpoint (sweeps.execution.failpoints): a trial holds there before training on.
STEP = "step"


def arm_step(folder: Path, min_epoch: int) -> None:
    """Arms the step failpoint in ``folder`` for the first trial at ``min_epoch`` or later.

    Written atomically: a trial reading a half-written file would take ``{}`` (epoch 0)."""
    tmp = folder / f".{STEP}.armed.tmp"
    tmp.write_text(json.dumps({"min_epoch": min_epoch}))
    tmp.replace(folder / f"{STEP}.armed")


def wait_for_hold(folder: Path, driver: subprocess.Popen[Any], *, timeout: float) -> dict[str, Any]:
    """What the trial holding at the step failpoint wrote (trial_id, epoch, pid, node_id), once
    it holds there; fails at once if the driver exits first."""
    hit = folder / f"{STEP}.hit"

    def held() -> dict[str, Any] | None:
        if driver.poll() is not None:
            raise AssertionError(f"the driver exited ({driver.returncode}) before a trial held "
                                 f"at the {STEP} failpoint")
        try:
            return json.loads(hit.read_text())  # written whole (a rename), or not yet
        except FileNotFoundError:
            return None

    return wait_until(held, timeout=timeout, what=f"a trial holding at the {STEP} failpoint")


def kill_while_held(start: Callable[[dict[str, str]], subprocess.Popen[Any]], folder: Path, *,
                    at_epochs: Sequence[int], timeout: float) -> list[dict[str, Any]]:
    """Kills a sweep's driver at a moment a trial chooses, never at one guessed from records.

    Arms the step failpoint in ``folder`` at ``at_epochs[0]`` and starts the driver with
    ``start(env)``, which must put it in a session of its own and pass ``env`` (the failpoint
    folder) on. When a trial holds there, the failpoint is armed at the next epoch of
    ``at_epochs`` and the held trial released, until a trial holds at the last: then the
    driver's process group (the driver and the Ray processes it started) and the held trial's
    process (a Ray worker on this machine, in a group of its own) get SIGKILL, so it never
    trains past what the driver recorded. That trial is RUNNING in the records, with its epochs
    up to at least the last of ``at_epochs``. Returns what each held trial wrote (trial_id,
    epoch, pid, node_id), in order.
    """
    folder.mkdir()
    arm_step(folder, at_epochs[0])
    driver = start({FAILPOINT_ENV: str(folder)})
    hits: list[dict[str, Any]] = []
    try:
        for following in [*at_epochs[1:], None]:
            hits.append(wait_for_hold(folder, driver, timeout=timeout))
            if following is not None:
                arm_step(folder, following)  # before the release: the held one passed its claim
                (folder / f"{STEP}.hit").unlink()
    finally:
        with contextlib.suppress(ProcessLookupError):  # the driver and the Ray processes it started
            os.killpg(driver.pid, signal.SIGKILL)
        driver.communicate()
    with contextlib.suppress(ProcessLookupError):  # Ray may have ended it already
        os.kill(hits[-1]["pid"], signal.SIGKILL)
    (folder / f"{STEP}.hit").unlink()
    return hits


def run_and_kill(spec: Path, cwd: Path, *extra: str, at_epochs: Sequence[int] = (200,),
                 timeout: float = 120) -> list[dict[str, Any]]:
    """``run SPEC`` killed while a trial holds at the step failpoint (:func:`kill_while_held`)."""

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*CLI, "run", str(spec), "--storage", "res", NO_REPORT, *extra],
                                cwd=cwd, env={**cli_env(), **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    return kill_while_held(start, cwd / "failpoints", at_epochs=at_epochs, timeout=timeout)


def assert_resumed_whole(folder: Path, before: dict[str, int], *, trials: int,
                         epochs: Sequence[int]) -> None:
    """After ``resume``: every trial TERMINATED with exactly ``epochs``, and each trial that had
    reported two epochs or more before the kill went on from its state file, not epoch 0 (its
    first epoch is in the records once)."""
    after = RecordLog(folder).trials
    assert len(after) == trials and all(r.status == "TERMINATED" for r in after.values()), \
        {t: (r.status, r.last_epoch) for t, r in after.items()}
    assert all(sorted(r.epochs) == list(epochs) for r in after.values())
    lines = [json.loads(x) for x in (folder / "records.jsonl").read_text().splitlines()]
    for trial_id, last in before.items():
        if last >= 2 * epochs[0]:
            reports = [e["epoch"] for e in lines
                       if e["type"] == "epoch" and e["trial_id"] == trial_id]
            assert reports.count(epochs[0]) == 1, f"{trial_id} restarted from epoch 0"
