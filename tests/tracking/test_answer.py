"""What MLflow shows of a sweep's answer: run descriptions, params only where they vary, the
runs table's view, and tracking URIs that are plain paths. Against real sqlite stores, fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mixup_cli.main import main
from sweeps.errors import UsageError
from sweeps.tracking import SweepTracker, TrialWrite, resolve_tracking_uri
from sweeps.tracking.answer import (
    NOTE,
    SHARED_VIEW,
    best_note,
    chosen_note,
    runs_view,
    trial_about,
    view_query,
)
from tests.sweep_helpers import write_finished_sweep

KEYS = ["mixup.alpha", "mixup.label_scheme", "mixup.stop_epoch"]
BASE = {"seed": 0, "data.dim": 200, "optim.lr": 0.5, "log_every": 10,
        "mixup.alpha": 1.0, "mixup.label_scheme": "same", "mixup.stop_epoch": None}
SPEC_PARAMS = {"spec.objective.metric": "val/acc_rare", "spec.objective.mode": "max"}
#: The main job's ERM trial: α = 0.1, same labels, switched off at 0; and the 11 it stands for.
ERM_POINTS = [{"mixup.alpha": a, "mixup.label_scheme": s, "mixup.stop_epoch": 0}
              for a in (0.1, 1.0, 4.0) for s in ("same", "independent", "power", "dominant")]
SUMMARY = {"best_epoch": 450.0, "best/val/acc_rare": 1.0, "best/val/acc_rare_std": 0.0,
           "best/test/acc_rare": 0.98, "best/test/acc_rare_std": 0.02,
           "best/test/acc_common": 1.0, "best/test/acc_common_std": 0.0,
           "last/val/acc_rare": 1.0}


# ---------------------------------------------------------------------------- descriptions


def test_a_trial_is_described_by_its_searched_settings_in_words() -> None:
    config = {**BASE, "mixup.stop_epoch": 200}
    assert trial_about(config, KEYS) == "α = 1 · same labels · switched off at epoch 200."
    assert trial_about(BASE, KEYS) == "α = 1 · same labels · never switched off."


def test_a_merged_erm_trial_says_it_is_erm_and_which_grid_points_it_stands_for() -> None:
    erm = {**BASE, **ERM_POINTS[0]}
    text = trial_about(erm, KEYS, ERM_POINTS[1:], 12)
    assert text == ("ERM (Mixup never mixes: switched off at epoch 0). Stands for 12 grid points "
                    "that train alike: α ∈ {0.1, 1, 4} × labels ∈ {same, independent, power, "
                    "dominant}, switched off at epoch 0.")
    # a merged list cut short (MLflow's tag limit): the count still says how many
    assert trial_about(erm, KEYS, ERM_POINTS[1:3], 12).endswith(
        "Stands for 12 grid points that train alike (not all listed).")
    alpha_zero = {**BASE, "mixup.alpha": 0.0, "mixup.stop_epoch": 10}
    assert trial_about(alpha_zero, ["mixup.alpha", "mixup.stop_epoch"],
                       [{"mixup.alpha": 0.0, "mixup.stop_epoch": None}], 2) == (
        "ERM (Mixup never mixes: α = 0). Stands for 2 grid points that train alike: "
        "switch-off epoch ∈ {10, never}, α = 0.")


def test_an_ended_trial_gives_its_chosen_epoch_and_the_values_there() -> None:
    note = chosen_note(SUMMARY, status="TERMINATED", metric="val/acc_rare", seeds=3)
    assert note.splitlines() == [
        "Chosen epoch 450: its best val/acc_rare. At that epoch:",
        "- val/acc_rare: 1.0000 ± 0 [0.4385, 1.0000] 3/3 seeds ≥ 0.95",
        "- test/acc_rare: 0.9800 ± 0.0200 [0.8550, 0.9976] 3/3 seeds ≥ 0.95",
        "- test/acc_common: 1.0000 ± 0 [0.4385, 1.0000] 3/3 seeds ≥ 0.95"]
    assert chosen_note(SUMMARY, status="STOPPED", metric="val/acc_rare", seeds=3).startswith(
        "Stopped early by the scheduler. Chosen epoch 450")
    assert chosen_note({}, status="ERROR", metric="val/acc_rare", seeds=3) == (
        "Failed (the mixup_sweeps.error tag says why).")


def test_the_parent_description_opens_with_the_best_settings_the_test_value_and_the_ties() -> None:
    best = {"trial_id": "bcf3d_00000-19", "epoch": 450, "value": 1.0, "ties": 15,
            "config/mixup.alpha": 1.0, "config/mixup.label_scheme": "same",
            "config/mixup.stop_epoch": 500, "stands_for": 1, "merged": None,
            **{k.removeprefix("best/"): v for k, v in SUMMARY.items() if k.startswith("best/")}}
    note = best_note(best, metric="val/acc_rare", mode="max", keys=KEYS, trials=49, seeds=3,
                     sweep_name="paper_feature_noise", description="The main job.")
    head = note.split("\n\n")[0]  # what the run's overview shows before "Show more"
    assert head == ("**Best of 49 trials by val/acc_rare (max): α=1 same off@500**, trial "
                    "bcf3d_00000-19 at its chosen epoch 450: val/acc_rare 1.0000 ± 0 [0.4385, "
                    "1.0000] 3/3 seeds ≥ 0.95; test/acc_rare 0.9800 ± 0.0200 [0.8550, 0.9976] "
                    "3/3 seeds ≥ 0.95 at that epoch. 15 trials tie at val/acc_rare = 1.0000.")
    assert "Settings: α = 1 · same labels · switched off at epoch 500." in note
    assert "- test/acc_common: 1.0000 ± 0" in note
    assert "`mixup-sweep best paper_feature_noise` lists the tied trials" in note
    assert note.endswith("\n\nThe main job.")


# ---------------------------------------------------------------------------- through MLflow


def _tracker(uri: str, **kwargs: Any) -> SweepTracker:
    tracker = SweepTracker(uri, sweep_name="answer", name_keys=KEYS, sweep_id="s1",
                           param_keys={*KEYS, "log_every"}, extra_params={"seeds": "[0, 1, 2]"},
                           **kwargs)
    tracker.ensure_experiment()
    tracker.start_sweep(params=SPEC_PARAMS, tags={NOTE: "A sweep of α."})
    return tracker


def _trials() -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Two trials: Mixup α = 1, and the ERM trial standing for two grid points."""
    merged = {"mixup_sweeps.merged": json.dumps(ERM_POINTS[1:2]), "mixup_sweeps.stands_for": "2",
              "mixup_sweeps.seeds": "[0, 1, 2]"}
    return {"mix": ({**BASE, "mixup.stop_epoch": 500}, {"mixup_sweeps.seeds": "[0, 1, 2]"}),
            "erm": ({**BASE, **ERM_POINTS[0]}, merged)}


@pytest.mark.parametrize("batched", [True, False])
def test_children_carry_only_the_searched_params_and_the_parent_the_constant_ones(
        sqlite_uri: str, batched: bool) -> None:
    tracker = _tracker(sqlite_uri, batched=batched)
    tracker.write_trials([TrialWrite(t, start=(config, tags, True))
                          for t, (config, tags) in _trials().items()])
    client = MlflowClient(sqlite_uri)
    parent = client.get_run(str(tracker.parent_run_id))
    for trial_id, (config, _) in _trials().items():
        run = client.get_run(tracker._attached(trial_id))
        assert run.data.params == {k: str(config[k]) for k in KEYS}, trial_id
        assert json.loads(run.data.tags["mixup_sweeps.config_json"]) == config  # all of it
    constant = {k: str(v) for k, v in BASE.items() if k not in KEYS and k != "seed"}
    assert parent.data.params == {**{k: str(v) for k, v in SPEC_PARAMS.items()}, **constant,
                                  "seeds": "[0, 1, 2]"}
    # a restarted driver reattaches and logs nothing twice; a trial whose constant key
    # differs from the parent's value gets that key as a param of its own
    again = _tracker(sqlite_uri, batched=batched)
    again.write_trials([TrialWrite("odd", start=({**BASE, "data.dim": 400}, {}, True))])
    odd = client.get_run(again._attached("odd"))
    assert odd.data.params == {**{k: str(BASE[k]) for k in KEYS}, "data.dim": "400"}
    assert client.get_run(str(tracker.parent_run_id)).data.params == parent.data.params


@pytest.mark.parametrize("batched", [True, False])
def test_a_childs_description_says_what_it_stands_for_then_its_chosen_epoch(
        sqlite_uri: str, batched: bool) -> None:
    tracker = _tracker(sqlite_uri, batched=batched)
    trials = _trials()
    tracker.write_trials([TrialWrite(t, start=(c, tags, True)) for t, (c, tags) in trials.items()])
    client = MlflowClient(sqlite_uri)
    started = client.get_run(tracker._attached("erm")).data.tags[NOTE]
    assert started == trial_about(trials["erm"][0], KEYS, ERM_POINTS[1:2], 2)
    assert started.startswith("ERM (Mixup never mixes: switched off at epoch 0). Stands for 2")
    tracker.write_trials([TrialWrite("erm", finish=("TERMINATED", SUMMARY, None))])
    tracker.finish_trial("mix", status="STOPPED", summary=SUMMARY)
    for trial_id, status in (("erm", "TERMINATED"), ("mix", "STOPPED")):
        about = trial_about(trials[trial_id][0], KEYS, *(
            (ERM_POINTS[1:2], 2) if trial_id == "erm" else ()))
        assert client.get_run(tracker._attached(trial_id)).data.tags[NOTE] == (
            about + "\n\n" + chosen_note(SUMMARY, status=status, metric="val/acc_rare", seeds=3))


def test_the_runs_page_is_a_saved_view_of_the_sweeps_children_flat_and_best_first(
        sqlite_uri: str) -> None:
    tracker = _tracker(sqlite_uri)
    page = tracker.runs_page(metric="val/acc_rare", mode="max", metrics=["best/test/acc_rare"])
    experiment = tracker.ensure_experiment()
    view = runs_view("tags.`mixup_sweeps.sweep` = 'answer' and tags.`mixup_sweeps.role` = "
                     "'child' and tags.`mixup_sweeps.sweep_id` = 's1'", metric="val/acc_rare",
                     mode="max", metrics=["best/test/acc_rare"], params=KEYS)
    assert view["orderByKey"] == "metrics.`best/val/acc_rare`" and view["orderByAsc"] is False
    assert view["selectedColumns"][:4] == [
        "metrics.`best/val/acc_rare`", "metrics.`best/val/acc_rare_std`", "metrics.`best_epoch`",
        "metrics.`best/test/acc_rare`"]
    key = page.split("viewStateShareKey=")[1].split("&")[0] if page else ""
    assert page == f"/#/experiments/{experiment}/runs?{view_query(view, key)}"
    assert page.endswith("&workflowType=machine_learning")  # the model-training sidebar
    tags = MlflowClient(sqlite_uri).get_experiment(experiment).tags
    assert json.loads(tags[SHARED_VIEW + key]) == view
    # a view the UI cannot read from a tag: the same filter and order in the URL
    assert view_query({**view, "orderByAsc": True}) == (
        "searchFilter=tags.%60mixup_sweeps.sweep%60%20%3D%20%27answer%27%20and%20tags.%60"
        "mixup_sweeps.role%60%20%3D%20%27child%27%20and%20tags.%60mixup_sweeps.sweep_id%60%20"
        "%3D%20%27s1%27&orderByKey=metrics.%60best%2Fval%2Facc_rare%60&orderByAsc=true"
        "&workflowType=machine_learning")
    assert SweepTracker(sqlite_uri, sweep_name="never-logged").runs_page(
        metric="val/acc_rare", mode="max") is None


# ---------------------------------------------------------------------------- plain paths


@pytest.mark.parametrize(("given", "meant"), [
    ("./mlflow.db", "sqlite:///{cwd}/mlflow.db"),
    ("runs/x.db", "sqlite:///{cwd}/runs/x.db"),
    ("store", "sqlite:///{cwd}/store/mlflow.db"),  # a folder: its mlflow.db
    ("mlruns", "file://{cwd}/mlruns (MLflow's old file store; MLflow 3 writes sqlite:///...)"),
])
def test_a_plain_path_as_tracking_uri_is_refused_naming_the_uri_it_likely_means(
        tmp_path: Path, given: str, meant: str) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    with pytest.raises(UsageError) as refused:
        resolve_tracking_uri(given, tmp_path)
    assert str(refused.value) == (f"--tracking-uri {given}: not a URI; did you mean "
                                  f"{meant.format(cwd=tmp_path.resolve())}?")
    assert resolve_tracking_uri("sqlite:///x.db", tmp_path) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_ui_with_a_plain_path_or_an_unknown_sweep_says_so_in_one_line_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlflow.db").write_bytes(b"")
    assert main(["ui", "--tracking-uri", "./mlflow.db", "--port", "5999"]) == 2
    err = capsys.readouterr().err
    assert err == (f"mixup-sweep ui: error: ui --tracking-uri ./mlflow.db: not a URI; did you "
                   f"mean sqlite:///{tmp_path.resolve() / 'mlflow.db'}?\n")
    write_finished_sweep(tmp_path / "res", "known", tracking_uri=f"sqlite:///{tmp_path}/none.db")
    assert main(["ui", "unknown", "--storage", "res", "--port", "5999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep 'unknown': no sweep.json" in err and "known" in err
    # a sweep whose store is not here: one line naming it
    assert main(["ui", "known", "--storage", "res", "--port", "5999"]) == 2
    assert f"no MLflow store at {tmp_path}/none.db" in capsys.readouterr().err
