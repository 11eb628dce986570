"""Sweeps on a real local Ray runtime with a real MLflow sqlite store, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sweeps.spec import format_plan, load_spec
from sweeps.store.records import RecordLog
from tests.image_fixtures import write_cifar10_fixture
from tests.sweep_helpers import (
    SMALL_TRIAL,
    assert_resumed_whole,
    metric_steps,
    mixup_sweep,
    run_and_kill,
    sweep_runs,
    write_spec,
)

SPECS = Path(__file__).resolve().parents[2] / "sweeps" / "specs"

pytestmark = pytest.mark.slow


def test_a_four_trial_sweep_leaves_one_parent_and_four_nested_children(tmp_path):
    spec = write_spec(tmp_path, "four", search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}}, seeds=[0, 1])
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Best configs by val/acc_rare (best-epoch)" in out.stdout
    assert "mixup-sweep ui" in out.stdout

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent, children = sweep_runs(uri, "four")
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    # constants once, on the parent; each child only what it varies
    assert parent.data.params["data.dim"] == "200" and parent.data.params["seeds"] == "[0, 1]"
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == {"mixup.alpha"}
        assert child.data.params["mixup.alpha"] in {"0.0", "0.5", "1.0", "2.0"}
        alpha = float(child.data.params["mixup.alpha"])
        # named by its searched settings; α = 0 never mixes, so it is named for what it is
        assert child.info.run_name == ("ERM" if alpha == 0 else f"α={alpha:.4g}")
        assert child.data.tags["mixup_sweeps.node_id"]
        assert child.data.tags["mixup_sweeps.git_commit"]
        assert metric_steps(uri, child.info.run_id, "test/acc_rare") == [10, 20, 30, 40]
        assert metric_steps(uri, child.info.run_id, "test/acc_rare_std") == [10, 20, 30, 40]
        assert "best/test/acc_rare" in child.data.metrics
        assert "last/test/acc_rare" in child.data.metrics
        # the schedule indicator is a metric per epoch, with no spread and no summary
        assert metric_steps(uri, child.info.run_id, "mixup/active") == [10, 20, 30, 40]
        assert not [k for k in child.data.metrics if k.endswith("mixup/active_std")
                    or k.startswith(("best/mixup/", "last/mixup/"))]

    # Parquet holds the same trials and epochs, and `best` gives the same answer from both.
    trials = pd.read_parquet(tmp_path / "res" / "four" / "trials.parquet")
    epochs = pd.read_parquet(tmp_path / "res" / "four" / "epochs.parquet")
    assert sorted(trials["trial_id"]) == sorted(c.data.tags["mixup_sweeps.trial_id"]
                                                for c in children)
    assert len(epochs) == 16
    for child in children:
        history = {m.step: m.value for m in _history(uri, child.info.run_id, "test/acc_rare")}
        trial_id = child.data.tags["mixup_sweeps.trial_id"]
        mine = epochs[epochs["trial_id"] == trial_id].set_index("epoch")["test/acc_rare"]
        assert mine.to_dict() == pytest.approx(history)
    answers = {}
    for source in ("parquet", "mlflow"):
        for scope in ("best-epoch", "last"):
            res = mixup_sweep("best", "four", "--storage", "res", "--source", source, "--scope",
                              scope, "--json", "--top", "4", cwd=tmp_path)
            assert res.returncode == 0, res.stderr
            answers[source, scope] = json.loads(res.stdout.strip().splitlines()[-1])
    for scope in ("best-epoch", "last"):
        a, b = answers["parquet", scope], answers["mlflow", scope]
        assert [r["trial_id"] for r in a] == [r["trial_id"] for r in b]
        assert [r["value"] for r in a] == pytest.approx([r["value"] for r in b])
        assert [r["config"] for r in a] == [r["config"] for r in b]
        assert all(isinstance(r["config"]["mixup.alpha"], float) for r in a)


def _history(uri, run_id, key):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_metric_history(run_id, key)


def test_eight_concurrent_trials_log_to_sqlite_without_lock_errors(tmp_path):
    # Trials long enough (~2 s alone) that no actor finishes them all while the others start.
    spec = write_spec(tmp_path, "eight", search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]}},
        search={"algorithm": "grid", "max_concurrent": 8}, resources={"cpu": 0.25},
        trial={**SMALL_TRIAL, "optim.epochs": 800, "log_every": 200})
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "locked" not in out.stderr.lower() and "warning: MLflow" not in out.stderr
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "eight")
    assert len(children) == 8
    for child in children:
        assert child.info.status == "FINISHED"
        assert metric_steps(uri, child.info.run_id, "train/loss") == [200, 400, 600, 800]
    records = RecordLog(tmp_path / "res" / "eight").trials
    running_together = _max_overlap(records.values())
    assert running_together >= 4  # the trials really ran in parallel


def _max_overlap(records) -> int:
    events = []
    for r in records:
        events += [(r.started_at, 1), (r.finished_at, -1)]
    live = best = 0
    for _, delta in sorted(events):
        live += delta
        best = max(best, live)
    return best


def test_a_killed_driver_resumes_to_exactly_the_planned_trials(tmp_path):
    spec = write_spec(
        tmp_path, "killed",
        trial={"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 1500,
               "log_every": 20},
        search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}},
        search={"algorithm": "grid", "max_concurrent": 2}, seeds=[0, 1],
        execution={"pack": 1})  # one trial per Ray trial (packs: tests/execution/test_packed_sweeps.py)
    [hit] = run_and_kill(spec, tmp_path, at_epochs=(200,))
    before = RecordLog(tmp_path / "res" / "killed").trials
    held = before[hit["trial_id"]]
    assert held.status == "RUNNING" and held.last_epoch >= 200, (held.status, held.last_epoch)
    reported_before = {t: r.last_epoch for t, r in before.items()}

    out = mixup_sweep("resume", "killed", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr

    assert_resumed_whole(tmp_path / "res" / "killed", reported_before, trials=4,
                         epochs=range(20, 1501, 20))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "killed")
    assert len(children) == 4
    for child in children:
        steps = metric_steps(uri, child.info.run_id, "test/acc_rare")
        assert steps == list(range(20, 1501, 20))
    epochs = pd.read_parquet(tmp_path / "res" / "killed" / "epochs.parquet")
    assert len(epochs) == 4 * 75 and not epochs.duplicated(["trial_id", "epoch"]).any()


def test_asha_never_cuts_a_trial_before_its_switch_off_epoch(tmp_path):
    spec = write_spec(
        tmp_path, "asha",
        trial={"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 80,
               "log_every": 5},
        search_space={"mixup.alpha": {"kind": "uniform", "low": 0.1, "high": 4.0},
                      "mixup.stop_epoch": {"kind": "choice", "values": [10, 30]}},
        search={"algorithm": "random", "num_samples": 8, "max_concurrent": 4, "seed": 1},
        objective={"metric": "test/loss", "mode": "min"},
        scheduler={"kind": "asha", "grace_period": 5, "max_t": 80, "reduction_factor": 2},
        resources={"cpu": 0.5})
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = RecordLog(tmp_path / "res" / "asha").trials.values()
    assert len(trials) == 8
    stopped = [r for r in trials if r.status == "STOPPED"]
    assert stopped, "ASHA stopped nothing; the test needs a stricter scheduler"
    for record in stopped:
        assert record.last_epoch > record.config["mixup.stop_epoch"]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_checked_in_spec_plans_and_runs_in_smoke_mode(spec, tmp_path):
    write_cifar10_fixture(tmp_path / "data")  # ./data/cifar10 in the real on-disk format
    assert "Trials:" in format_plan(load_spec(spec))  # `plan` in process (its CLI: elsewhere)
    out = mixup_sweep("run", str(spec.resolve()), "--smoke", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # a smoke run takes its own name: the spec's name stays free for the real sweep
    name = load_spec(spec).name
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [f"{name}-smoke"]
    trials = RecordLog(tmp_path / "res" / f"{name}-smoke").trials.values()
    assert trials and all(r.status in ("TERMINATED", "STOPPED") for r in trials)
    if "name: planted_glyphs" in spec.read_text():  # the mechanism's probes reach the records
        assert all("probe/rare_glyph" in m and "probe/memorise" in m
                   for r in trials for m in r.epochs.values())
