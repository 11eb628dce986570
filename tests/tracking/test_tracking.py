"""sweeps.tracking.tracker against real MLflow: sqlite stores, concurrent processes, an HTTP server."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from sweeps.errors import TrackingUnavailable
from sweeps.tracking import SweepTracker, TrialWrite, default_tracking_uri
from sweeps.tracking.sqlite_batch import TESTED_REVISIONS, SqliteBatch, store_revision
from tests.conftest import free_port, start_mlflow_server, stop_group
from tests.tracking.conftest import copy_sqlite

EPOCHS = (10, 20, 30)
#: Trial id -> how it ends (None: never finished, a leftover that finish_sweep kills).
TRIALS = {"t0": "TERMINATED", "t1": "STOPPED", "t2": "ERROR", "t3": None}
SPEC_PARAMS = {"spec.search.algorithm": "grid", "spec.seeds": [0, 1]}
ERROR = "Traceback (most recent call last):\nValueError: boom"


def _config(i: int) -> dict[str, Any]:
    return {"seed": i, "mixup.alpha": 0.5 * i, "data.name": "feature_noise",
            "optim.lr": None if i % 2 else 0.1, "mixup.enabled": i > 0}


def _metrics(i: int, epoch: int) -> dict[str, float]:
    return {"epoch": float(epoch), "train/loss": 1.0 / epoch + i, "test/acc_rare": epoch / 100 + i}


def _record_sweep(uri: str, name: str) -> str:
    """The scenario of the sqlite and HTTP tests; returns the parent run id."""
    tracker = SweepTracker(uri, sweep_name=name)
    tracker.check()
    tracker.ensure_experiment()
    parent = tracker.start_sweep(params=SPEC_PARAMS, tags={"mixup_sweeps.git_commit": "abc123"})
    for i, (trial_id, status) in enumerate(TRIALS.items()):
        tracker.start_trial(trial_id, config=_config(i), tags={"mixup_sweeps.git_commit": "abc123"})
        tracker.set_tags(trial_id, {"mixup_sweeps.node_id": f"node{i % 2}"})
        for epoch in EPOCHS:
            tracker.log_epoch(trial_id, epoch, _metrics(i, epoch))
        if status is not None:
            tracker.finish_trial(
                trial_id, status=status, error=ERROR if status == "ERROR" else None,
                summary={"best/test/acc_rare": 0.3 + i, "last/test/acc_rare": 0.3 + i,
                         "best_epoch": 30.0})
    tracker.finish_sweep("FINISHED")
    return parent


def _children(client: MlflowClient, parent_id: str) -> dict[str, Any]:
    experiment = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return {run.info.run_name: run for run in runs}


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def _assert_sweep_recorded(uri: str, name: str, parent_id: str) -> None:
    client = MlflowClient(tracking_uri=uri)  # a fresh client: what any other reader sees
    experiment = client.get_experiment_by_name(f"mixup-sweeps/{name}")
    assert experiment is not None
    # MLflow's UI opens it in the classic runs view, not the GenAI one
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(parent_id)
    assert parent.info.experiment_id == experiment.experiment_id
    assert (parent.info.run_name, parent.info.status) == (name, "FINISHED")
    assert parent.data.tags["mixup_sweeps.role"] == "parent"
    assert parent.data.params["spec.search.algorithm"] == "grid"
    assert parent.data.params["spec.seeds"] == "[0, 1]"

    children = _children(client, parent_id)
    assert sorted(children) == sorted(TRIALS)
    for i, (trial_id, run) in enumerate(sorted(children.items())):
        tags = run.data.tags
        assert tags["mixup_sweeps.trial_id"] == trial_id and tags["mixup_sweeps.sweep"] == name
        assert tags["mixup_sweeps.role"] == "child" and tags["mixup_sweeps.git_commit"] == "abc123"
        assert run.data.params["mixup.alpha"] == str(0.5 * i)
        assert run.data.params["optim.lr"] == ("None" if i % 2 else "0.1")
        assert json.loads(tags["mixup_sweeps.config_json"]) == _config(i)
        history = client.get_metric_history(run.info.run_id, "test/acc_rare")
        assert [(m.step, m.value) for m in history] == [(e, _metrics(i, e)["test/acc_rare"])
                                                         for e in EPOCHS]
    expected = {"t0": ("FINISHED", "TERMINATED"), "t1": ("FINISHED", "STOPPED"),
                "t2": ("FAILED", "ERROR"), "t3": ("KILLED", "KILLED")}
    assert {t: (r.info.status, r.data.tags["mixup_sweeps.status"])
            for t, r in children.items()} == expected
    assert children["t2"].data.tags["mixup_sweeps.error"] == ERROR
    assert children["t0"].data.metrics["best/test/acc_rare"] == 0.3
    assert "best/test/acc_rare" not in children["t3"].data.metrics


# ---------------------------------------------------------------------------- stores and servers


# migrated_store and sqlite_uri: tests/tracking/conftest.py


@pytest.fixture(scope="session")
def mlflow_server(migrated_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free local port, in its own process group; yields its URI."""
    workdir = tmp_path_factory.mktemp("mlflow_server")  # also where it would put artifacts
    database = workdir / "srv.db"
    copy_sqlite(migrated_store, database)  # pre-migrated: the server starts seconds sooner
    server, uri = start_mlflow_server(f"sqlite:///{database}", workdir, timeout=60)
    try:
        yield uri
    finally:
        stop_group(server)


# ---------------------------------------------------------------------------- tests


def test_the_default_uri_is_a_sqlite_file_in_the_directory_unless_the_env_var_names_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert default_tracking_uri(tmp_path) == "http://mlflow.example:5000"


def test_importing_the_tracking_module_imports_neither_mlflow_nor_pandas() -> None:
    code = ("import json, sys, sweeps.tracking.tracker\n"
            "print(json.dumps(sorted(m for m in ('mlflow', 'pandas') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_sweep_is_one_parent_run_with_one_nested_child_run_per_trial(sqlite_uri: str) -> None:
    parent = _record_sweep(sqlite_uri, "demo")
    _assert_sweep_recorded(sqlite_uri, "demo", parent)


def test_reattaching_reuses_the_runs_and_never_logs_an_epoch_twice(sqlite_uri: str) -> None:
    parent = _record_sweep(sqlite_uri, "again")
    tracker = SweepTracker(sqlite_uri, sweep_name="again")  # a restarted driver: no memory
    assert tracker.start_sweep(params=SPEC_PARAMS, tags={}) == parent  # found by its tags
    first_child = _children(MlflowClient(tracking_uri=sqlite_uri), parent)["t2"].info.run_id
    assert tracker.start_trial("t2", config=_config(2), tags={}) == first_child
    for epoch in (*EPOCHS, 40, 40, 35):
        tracker.log_epoch("t2", epoch, _metrics(2, epoch))

    client = MlflowClient(tracking_uri=sqlite_uri)
    for key in _metrics(2, 10):
        assert _steps(client, first_child, key) == [10, 20, 30, 40]
    children = _children(client, parent)
    assert sorted(children) == sorted(TRIALS)  # no run was duplicated
    assert client.get_run(parent).info.status == "RUNNING"
    assert children["t2"].info.status == "RUNNING"
    assert "mixup_sweeps.error" not in children["t2"].data.tags  # the retry cleared it


def test_a_parent_run_id_from_a_previous_driver_is_reused_and_a_lost_one_is_looked_up(
        sqlite_uri: str) -> None:
    parent = _record_sweep(sqlite_uri, "resume")
    assert SweepTracker(sqlite_uri, sweep_name="resume").start_sweep(
        params=SPEC_PARAMS, tags={}, parent_run_id=parent) == parent
    assert SweepTracker(sqlite_uri, sweep_name="resume").start_sweep(
        params=SPEC_PARAMS, tags={}, parent_run_id="0" * 32) == parent
    with pytest.raises(ValueError, match="not the parent run of sweep 'other'"):
        SweepTracker(sqlite_uri, sweep_name="other").start_sweep(
            params={}, tags={}, parent_run_id=parent)


def test_restarting_a_trial_with_another_config_is_refused(sqlite_uri: str) -> None:
    _record_sweep(sqlite_uri, "changed")
    tracker = SweepTracker(sqlite_uri, sweep_name="changed")
    tracker.start_sweep(params=SPEC_PARAMS, tags={})
    with pytest.raises(ValueError, match=r"param mixup\.alpha was logged as '0\.5', now '0\.75'"):
        tracker.start_trial("t1", config={**_config(1), "mixup.alpha": 0.75}, tags={})


def test_read_sweep_returns_the_trials_and_epochs_tables_with_the_logged_types(
        sqlite_uri: str) -> None:
    _record_sweep(sqlite_uri, "tables")
    trials, epochs = SweepTracker(sqlite_uri, sweep_name="tables").read_sweep()

    assert trials["trial_id"].tolist() == ["t0", "t1", "t2", "t3"]
    assert trials["status"].tolist() == ["TERMINATED", "STOPPED", "ERROR", "KILLED"]
    assert trials["node_id"].tolist() == ["node0", "node1", "node0", "node1"]
    assert trials["error"].tolist() == [None, None, ERROR, None]
    for column in ("seed", "mixup.alpha", "data.name", "optim.lr", "mixup.enabled"):
        values = trials[f"config/{column}"].tolist()
        assert values == [_config(i)[column] for i in range(4)]
        assert [type(v) for v in values] == [type(_config(i)[column]) for i in range(4)]
    assert trials["best/test/acc_rare"].tolist()[:3] == [0.3, 1.3, 2.3]
    assert math.isnan(trials["best/test/acc_rare"].tolist()[3])

    assert list(epochs.columns[:2]) == ["trial_id", "epoch"]
    assert sorted(epochs.columns[2:]) == ["test/acc_rare", "train/loss"]
    assert epochs["epoch"].dtype.kind == "i"
    assert list(zip(epochs["trial_id"], epochs["epoch"], strict=True)) == [
        (t, e) for t in TRIALS for e in EPOCHS]
    assert epochs["train/loss"].tolist() == [_metrics(i, e)["train/loss"]
                                             for i in range(4) for e in EPOCHS]


SUMMARY = {"best/test/acc_rare": 0.5, "last/test/acc_rare": 0.25, "best_epoch": 20.0}


def _passes() -> list[list[TrialWrite]]:
    """The driver's writer passes over four trials: starts, epochs (one sent twice), a node
    tag, every way to end, one left running, and a driver restarted in the middle."""
    tags = {"mixup_sweeps.git_commit": "abc123", "mlflow.user": "lab"}
    start = {t: (_config(i), tags, True) for i, t in enumerate(TRIALS)}
    return [
        [TrialWrite("t0", start["t0"], [(10, _metrics(0, 10)), (20, _metrics(0, 20))]),
         TrialWrite("t1", start["t1"], [(10, _metrics(1, 10))], {"mixup_sweeps.node_id": "n1"}),
         TrialWrite("t2", start["t2"])],
        [TrialWrite("t0", epochs=[(30, _metrics(0, 30))], finish=("TERMINATED", SUMMARY, None)),
         TrialWrite("t1", epochs=[(10, _metrics(1, 10)), (20, _metrics(1, 20))],
                    finish=("STOPPED", {**SUMMARY, "best_epoch": 10.0}, None)),
         TrialWrite("t2", epochs=[(10, {**_metrics(2, 10), "train/loss": float("nan")})],
                    finish=("ERROR", {}, ERROR)),
         TrialWrite("t3", start["t3"], [(10, _metrics(3, 10))])],
        [TrialWrite("t3", (_config(3), tags, False), [(20, _metrics(3, 20))])],  # restarted
    ]


def _store_contents(uri: str, parent_id: str) -> dict[str, Any]:
    """Everything MlflowClient reads back of a sweep's child runs, run ids and clocks aside."""
    client = MlflowClient(tracking_uri=uri)
    out = {}
    for name, run in _children(client, parent_id).items():
        info, data = run.info, run.data
        assert info.start_time > 0 and (info.end_time is None) == (info.status == "RUNNING")
        assert info.artifact_uri.endswith(f"/{info.run_id}/artifacts")
        out[name] = {
            "info": (info.status, info.lifecycle_stage, info.user_id, info.run_name,
                     info.artifact_uri.rsplit("/", 3)[0]),
            "tags": {k: v for k, v in data.tags.items() if k != "mlflow.parentRunId"},
            "params": data.params, "metrics": data.metrics,
            "history": {key: [(m.step, m.value) for m in client.get_metric_history(
                info.run_id, key)] for key in sorted(data.metrics)}}
    return out


def test_a_batched_pass_writes_what_mlflows_api_writes(migrated_store: Path,
                                                       tmp_path: Path) -> None:
    uris, contents = {}, {}
    for batched in (False, True):
        copy_sqlite(migrated_store, tmp_path / f"{batched}.db")
        uri = uris[batched] = f"sqlite:///{tmp_path / f'{batched}.db'}"
        tracker = SweepTracker(uri, sweep_name="same", batched=batched)
        parent = tracker.start_sweep(params=SPEC_PARAMS, tags={})
        for i, writes in enumerate(_passes()):
            if i == 2:  # a restarted driver reattaches to its runs by their tags
                tracker = SweepTracker(uri, sweep_name="same", batched=batched)
                tracker.start_sweep(params=SPEC_PARAMS, tags={})
            assert tracker.write_trials(writes) == {}
        contents[batched] = _store_contents(uri, parent)
        assert tracker.read_sweep()[1]["epoch"].tolist() == [10, 20, 30, 10, 20, 10, 10, 20]
    assert contents[True] == contents[False]
    assert sorted(contents[True]) == sorted(TRIALS)
    assert contents[True]["t3"]["info"][0] == "RUNNING"
    assert contents[True]["t1"]["history"]["train/loss"] == [(10, 1.1), (20, 1.05)]
    for table in ("runs", "tags", "params", "metrics", "latest_metrics"):  # nothing else differs
        counts = []
        for uri in uris.values():
            with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
                counts.append(db.execute(f"select count(*) from {table}").fetchone()[0])
        assert counts[0] == counts[1], table


def test_a_batched_pass_that_fails_writes_nothing(sqlite_uri: str) -> None:
    tracker = SweepTracker(sqlite_uri, sweep_name="atomic")
    parent = tracker.start_sweep(params={}, tags={})
    first = _passes()[0]
    assert tracker.write_trials(first) == {}
    client = MlflowClient(tracking_uri=sqlite_uri)
    client.delete_run(_children(client, parent)["t0"].info.run_id)  # someone deletes a run
    failed = tracker.write_trials([TrialWrite("t0", epochs=[(30, _metrics(0, 30))]),
                                   TrialWrite("t1", epochs=[(20, _metrics(1, 20))])])
    assert sorted(failed) == ["t0", "t1"] and "not active" in str(failed["t0"])
    t1 = _children(client, parent)["t1"].info.run_id
    assert _steps(client, t1, "epoch") == [10]  # t1's epoch 20 was not written either


def test_read_sweep_of_a_sweep_never_recorded_gives_empty_tables(sqlite_uri: str) -> None:
    trials, epochs = SweepTracker(sqlite_uri, sweep_name="nothing").read_sweep()
    assert trials.empty and list(trials.columns) == ["trial_id", "status", "node_id", "error"]
    assert epochs.empty and list(epochs.columns) == ["trial_id", "epoch"]


def test_values_that_are_not_finite_are_skipped_and_read_back_as_nan(sqlite_uri: str) -> None:
    tracker = SweepTracker(sqlite_uri, sweep_name="nan")
    tracker.start_sweep(params={}, tags={})
    run_id = tracker.start_trial("t0", config={"seed": 0}, tags={})
    tracker.log_epoch("t0", 1, {"a": 1.0, "b": 2.0})
    tracker.log_epoch("t0", 2, {"a": float("nan"), "b": float("inf")})
    tracker.log_epoch("t0", 3, {"a": 3.0, "b": -float("inf")})

    client = MlflowClient(tracking_uri=sqlite_uri)
    assert _steps(client, run_id, "a") == [1, 3] and _steps(client, run_id, "b") == [1]
    _, epochs = tracker.read_sweep()
    assert epochs["epoch"].tolist() == [1, 3]  # epoch 2 left nothing, epoch 3 only "a"
    assert epochs["a"].tolist() == [1.0, 3.0] and math.isnan(epochs["b"].tolist()[1])


def _log_trial_in_own_process(uri: str, sweep: str, trial_id: str) -> None:
    tracker = SweepTracker(uri, sweep_name=sweep)
    tracker.start_sweep(params={}, tags={})
    tracker.start_trial(trial_id, config={"seed": 0}, tags={})
    for epoch in range(1, 21):
        tracker.log_epoch(trial_id, epoch, {"train/loss": 1 / epoch, "test/acc": epoch / 20})
    tracker.finish_trial(trial_id, status="TERMINATED", summary={})


@pytest.mark.slow
def test_eight_processes_can_log_to_one_sqlite_store_once_the_experiment_exists(
        sqlite_uri: str) -> None:
    tracker = SweepTracker(sqlite_uri, sweep_name="parallel")
    tracker.ensure_experiment()
    parent = tracker.start_sweep(params={}, tags={})
    trial_ids = [f"p{i}" for i in range(8)]
    with ProcessPoolExecutor(max_workers=8, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_log_trial_in_own_process, sqlite_uri, "parallel", t)
                   for t in trial_ids]
        for future in futures:
            future.result()  # re-raises any error of the worker

    client = MlflowClient(tracking_uri=sqlite_uri)
    children = _children(client, parent)
    assert sorted(children) == trial_ids
    for run in children.values():
        assert run.info.status == "FINISHED"
        for key in ("train/loss", "test/acc"):
            assert _steps(client, run.info.run_id, key) == list(range(1, 21))


@pytest.mark.slow
def test_a_sweep_over_http_is_recorded_as_in_sqlite(mlflow_server: str) -> None:
    parent = _record_sweep(mlflow_server, "over-http")
    _assert_sweep_recorded(mlflow_server, "over-http", parent)
    trials, epochs = SweepTracker(mlflow_server, sweep_name="over-http").read_sweep()
    assert trials["trial_id"].tolist() == sorted(TRIALS) and len(epochs) == 4 * len(EPOCHS)


@pytest.mark.timeout(30)  # MLflow's own retries would take minutes
def test_an_unreachable_server_fails_the_check_within_seconds_in_one_line() -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # the port was free a moment ago: nothing listens
    before = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as caught:
        SweepTracker(uri, sweep_name="x").check()
    assert time.monotonic() - started < 10
    assert str(caught.value) == (f"tracking server {uri} is unreachable (connection refused); "
                                 "start it or pass --tracking-uri")
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == before  # limits only for the check


@pytest.mark.timeout(30)  # MLflow's own retries would take minutes
def test_a_server_that_never_answers_fails_the_check_after_its_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingUnavailable, match=r"unreachable \(no answer within 3 s\)"):
            SweepTracker(uri, sweep_name="x").check()
        assert time.monotonic() - started < 10


def test_the_old_file_store_fails_the_check_in_one_line(tmp_path: Path) -> None:
    uri = str(tmp_path / "mlruns")  # MLflow 3.17 refuses the file store unless forced
    with pytest.raises(TrackingUnavailable, match=r"^tracking store .*/mlruns is not usable \(") as caught:
        SweepTracker(uri, sweep_name="x").check()
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------- the bulk writer's fence


def _stamp(uri: str, revision: str) -> None:
    with contextlib.closing(sqlite3.connect(uri.removeprefix("sqlite:///"))) as db, db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def _write_passes(uri: str, name: str) -> SweepTracker:
    """The writer passes of :func:`_passes`; returns the restarted driver's tracker."""
    tracker = SweepTracker(uri, sweep_name=name)
    tracker.start_sweep(params=SPEC_PARAMS, tags={})
    for i, writes in enumerate(_passes()):
        if i == 2:
            tracker = SweepTracker(uri, sweep_name=name)
            tracker.start_sweep(params=SPEC_PARAMS, tags={})
        assert tracker.write_trials(writes) == {}
    return tracker


@pytest.mark.parametrize("untested", ["store revision", "mlflow head", "mlflow release"])
def test_a_store_the_bulk_writer_was_not_tested_against_is_written_through_mlflows_api(
        untested: str, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    tracker = SweepTracker(sqlite_uri, sweep_name="fenced")
    parent = tracker.start_sweep(params=SPEC_PARAMS, tags={})
    if untested == "store revision":  # MLflow keeps the store it opened above, before the stamp
        _stamp(sqlite_uri, "0000deadbeef")
        assert store_revision(sqlite_uri) == "0000deadbeef"
    elif untested == "mlflow head":  # as a store made by an MLflow with a new migration
        monkeypatch.setattr("sweeps.tracking.sqlite_batch.TESTED_REVISIONS",
                            frozenset({"0000deadbeef"}))
    else:
        monkeypatch.setattr(mlflow, "__version__", "3.18.0")

    def refuse(*_: Any) -> None:
        raise AssertionError("the bulk writer wrote a store it was not tested against")

    monkeypatch.setattr(SqliteBatch, "write", refuse)
    tracker = _write_passes(sqlite_uri, "fenced")
    assert not tracker.batched
    contents = _store_contents(sqlite_uri, parent)
    assert sorted(contents) == sorted(TRIALS)
    assert {t: c["info"][0] for t, c in contents.items()} == {
        "t0": "FINISHED", "t1": "FINISHED", "t2": "FAILED", "t3": "RUNNING"}
    assert contents["t1"]["history"]["train/loss"] == [(10, 1.1), (20, 1.05)]
    assert contents["t0"]["metrics"]["best/test/acc_rare"] == 0.5
    assert tracker.read_sweep()[1]["epoch"].tolist() == [10, 20, 30, 10, 20, 10, 10, 20]


def test_a_store_at_the_tested_revision_is_written_in_one_transaction_a_pass(
        sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A store MLflow creates is at the revision the bulk writer was tested against; when an
    # MLflow upgrade moves it, this fails until the writer is tested against the new schema.
    assert store_revision(sqlite_uri) in TESTED_REVISIONS
    passes = []
    write = SqliteBatch.write

    def counted(self: SqliteBatch, plans: Any, experiment_id: str) -> None:
        passes.append(sorted(plan.trial_id for plan in plans))
        write(self, plans, experiment_id)

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a pass went through MLflow's API")

    monkeypatch.setattr(SqliteBatch, "write", counted)
    monkeypatch.setattr(SweepTracker, "_apply", refuse)
    tracker = _write_passes(sqlite_uri, "batched")
    assert tracker.batched
    assert passes == [["t0", "t1", "t2"], ["t0", "t1", "t2", "t3"], ["t3"]]
    assert tracker.read_sweep()[1]["epoch"].tolist() == [10, 20, 30, 10, 20, 10, 10, 20]
    missing = tmp_path / "missing.db"
    assert store_revision(f"sqlite:///{missing}") is None and not missing.exists()
    assert not SqliteBatch.usable(f"sqlite:///{missing}")
