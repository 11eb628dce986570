"""Sweeps that train several trials per Ray Tune trial (``execution.pack`` / ``--pack``).

The user's trial stays the unit: records, MLflow child runs, Parquet rows and ``best`` see one
trial per config whether it trained alone or in a pack. The packed and unpacked runs of one
grid agree to the tolerance of tests/core/test_packed.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from dashboards.fig_pareto import accuracy_pareto
from dashboards.sweep_data import report_data
from sweeps import load_sweep
from sweeps.store.records import RecordLog
from tests.sweep_helpers import (
    NO_REPORT,
    SMALL_TRIAL,
    assert_resumed_whole,
    metric_steps,
    mixup_sweep,
    run_and_kill,
    sweep_runs,
    write_spec,
)

TOLERANCE = 1e-5
GRID = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
        "mixup.label_scheme": {"kind": "grid", "values": ["same", "power"]},
        "mixup.stop_epoch": {"kind": "grid", "values": [20, None]}}


def _by_config(trials: pd.DataFrame) -> pd.DataFrame:
    keys = ["config/mixup.alpha", "config/mixup.label_scheme", "config/mixup.stop_epoch"]
    frame = trials.assign(**{k: trials[k].astype(object).map(str) for k in keys})
    return frame.set_index(keys).sort_index()


def test_a_packed_grid_gives_the_tables_of_the_unpacked_one(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "grid", search_space=GRID, seeds=[0, 1],
                      trial={**SMALL_TRIAL, "precision": "float32"},  # the tolerance's precision
                      search={"algorithm": "grid", "max_concurrent": 2})
    for name, pack in (("single", "1"), ("packed", "3")):
        out = mixup_sweep("run", str(spec), "--storage", "res", "--name", name, "--pack", pack,
                          cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    assert "3 per pack" in out.stdout and "Trials: " not in out.stderr
    single = _by_config(pd.read_parquet(tmp_path / "res" / "single" / "trials.parquet"))
    packed = _by_config(pd.read_parquet(tmp_path / "res" / "packed" / "trials.parquet"))
    # 8 grid points; α = 0 makes label scheme and stop irrelevant: 5 distinct trials
    assert len(single) == len(packed) == 5
    assert single["pack"].isna().all() and packed["pack"].notna().all()
    assert packed["pack"].nunique() == 2  # packs of 3 and 2
    assert (packed["status"] == "TERMINATED").all() and (packed["epochs"] == 40).all()
    metrics = [c for c in single.columns if c.startswith(("best/", "last/"))]
    assert "last/val/acc_rare" in metrics and "best/test/acc_rare_std" in metrics
    for column in metrics:
        for a, b in zip(single[column], packed[column], strict=True):
            assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE, (column, a, b)
    assert (single["best_epoch"] == packed["best_epoch"]).all()
    # one MLflow child run per trial, each with every epoch once
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "packed")
    assert len(children) == 5
    for child in children:
        assert metric_steps(uri, child.info.run_id, "val/acc_rare") == [10, 20, 30, 40]
    # `best` ranks the packed trials like the unpacked ones
    ranked = {}
    for name in ("single", "packed"):
        out = mixup_sweep("best", name, "--storage", "res", "--json", "--top", "5", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        ranked[name] = [(r["config"]["mixup.alpha"], r["config"]["mixup.label_scheme"],
                         r["config"]["mixup.stop_epoch"], r["epoch"])
                        for r in json.loads(out.stdout.strip().splitlines()[-1])]
    assert ranked["single"] == ranked["packed"]


def test_a_packed_image_grid_gives_the_tables_of_the_unpacked_one(tmp_path: Path) -> None:
    """The autograd engine through the whole stack: small_cnn trials packed three to a Ray
    trial (one grouped computation of 3 trials x 2 seeds) record what one trial per Ray trial
    records (float32; minibatch SGD with momentum, weight decay, crops and Mixup)."""
    images = {"data": {"name": "digits", "max_train": 300, "max_test": 100, "augment": True},
              "model": {"name": "small_cnn", "channels": 8}, "precision": "float32",
              "optim": {"epochs": 2, "batch_size": 64, "lr": 0.1, "momentum": 0.9,
                        "weight_decay": 5.0e-4}, "log_every": 1}
    grid = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
            "mixup.label_scheme": {"kind": "grid", "values": ["same", "independent"]}}
    spec = write_spec(tmp_path, "img", search_space=grid, seeds=[0, 1], trial=images,
                      search={"algorithm": "grid", "max_concurrent": 2},
                      objective={"metric": "val/acc", "mode": "max"})  # no view: nothing rare
    for name, pack in (("single", "1"), ("packed", "3")):
        out = mixup_sweep("run", str(spec), "--storage", "res", "--name", name, "--pack", pack,
                          NO_REPORT, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    keys = ["config/mixup.alpha", "config/mixup.label_scheme"]

    def by_config(folder: str) -> pd.DataFrame:
        trials = pd.read_parquet(tmp_path / "res" / folder / "trials.parquet")
        return trials.assign(**{k: trials[k].astype(object).map(str) for k in keys}
                             ).set_index(keys).sort_index()

    single, packed = by_config("single"), by_config("packed")
    assert len(single) == len(packed) == 3  # α = 0 merges the label schemes
    assert single["pack"].isna().all() and packed["pack"].nunique() == 1
    metrics = [c for c in single.columns if c.startswith(("best/", "last/"))]
    assert "last/test/acc" in metrics
    for column in metrics:
        for a, b in zip(single[column], packed[column], strict=True):
            assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-4, (column, a, b)
    assert (single["best_epoch"] == packed["best_epoch"]).all()


def test_a_diverging_trial_of_a_pack_errors_alone(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "nan", seeds=[0, 1],
                      # 1000, the largest rate a config accepts: nan by epoch 10
                      search_space={"optim.lr": {"kind": "grid", "values": [0.5, 1000.0]}})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "2", cwd=tmp_path)
    assert out.returncode == 0 and "1 errored" in out.stdout, out.stderr
    trials = RecordLog(tmp_path / "res" / "nan").trials
    statuses = sorted((r.config["optim.lr"], r.status) for r in trials.values())
    assert statuses == [(0.5, "TERMINATED"), (1000.0, "ERROR")], out.stderr
    bad = next(r for r in trials.values() if r.status == "ERROR")
    assert bad.error is not None and "train/loss became nan" in bad.error
    good = next(r for r in trials.values() if r.status == "TERMINATED")
    assert sorted(good.epochs) == [10, 20, 30, 40]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, children = sweep_runs(uri, "nan")
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]


def test_random_search_packs_draw_their_configs_up_front_from_the_search_seed(
        tmp_path: Path) -> None:
    from sweeps.execution.packing import plan_packs
    from sweeps.spec import load_spec

    space = {"mixup.alpha": {"kind": "loguniform", "low": 0.1, "high": 4.0},
             "mixup.stop_epoch": {"kind": "quniform", "low": 10, "high": 30, "q": 10},
             "mixup.label_scheme": {"kind": "grid", "values": ["same", "power"]}}
    spec = write_spec(tmp_path, "rand", search_space=space, seeds=[0],
                      search={"algorithm": "random", "num_samples": 2, "seed": 7})
    packs = plan_packs(load_spec(spec), 3)
    points = [p for pack in packs for p in pack]
    assert [len(p) for p in packs] == [3, 1] and plan_packs(load_spec(spec), 3) == packs
    assert [p["mixup.label_scheme"] for p in points] == ["same", "same", "power", "power"]
    assert all(0.1 <= p["mixup.alpha"] <= 4.0 for p in points)
    assert {p["mixup.stop_epoch"] for p in points} <= {10.0, 20.0, 30.0}
    assert len({p["mixup.alpha"] for p in points}) == 4
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = RecordLog(tmp_path / "res" / "rand").trials
    ran = sorted((r.config["mixup.label_scheme"], r.config["mixup.alpha"]) for r in trials.values())
    assert ran == sorted((p["mixup.label_scheme"], p["mixup.alpha"]) for p in points)
    assert all(r.status == "TERMINATED" and r.pack for r in trials.values())


def test_auto_packs_one_per_slot_within_the_member_cap_and_the_memory(tmp_path: Path) -> None:
    from mixup_core.training.closed_form import member_bytes
    from sweeps.execution.packing import MAX_MEMBERS, MEMORY_SHARE, pack_size
    from sweeps.spec import load_spec

    alphas = [round(0.1 * (i + 1), 2) for i in range(40)]
    spec = load_spec(write_spec(tmp_path, "auto", seeds=[0, 1],
                                search_space={"mixup.alpha": {"kind": "grid", "values": alphas}}))
    assert pack_size(spec, "auto", cpus=2, gpus=0) == 20  # 40 trials, one pack per CPU
    assert pack_size(spec, "auto", cpus=2, gpus=0, memory=1e12) == 20
    assert pack_size(spec, 3, cpus=2, gpus=0, memory=1.0) == 3  # a number is the user's word
    per_member = member_bytes(spec.base)
    # room for 2 packs of 5 trials x 2 seeds in MEMORY_SHARE of the memory, not for 20
    memory = 2 * 10 * per_member / MEMORY_SHARE + 1
    assert pack_size(spec, "auto", cpus=2, gpus=0, memory=memory) == 5
    assert pack_size(spec, "auto", cpus=2, gpus=0, memory=1.0) == 1  # never below one trial
    assert pack_size(spec, "auto", cpus=1, gpus=0) == min(40, MAX_MEMBERS // 2)


def test_auto_packs_image_trials_on_gpus_only_and_a_pack_asks_for_whole_gpus(
        tmp_path: Path) -> None:
    from ray import tune

    from sweeps.execution.packing import MAX_IMAGE_MEMBERS, pack_size
    from sweeps.execution.trainables import make_trainable
    from sweeps.spec import load_spec

    images = {"data": {"name": "digits"}, "model.name": "small_cnn", "optim.batch_size": 64,
              "optim.epochs": 2, "log_every": 1}
    space = {"mixup.alpha": {"kind": "grid", "values": [round(0.1 * i, 1) for i in range(60)]}}
    cpu = load_spec(write_spec(tmp_path, "cpu", trial=images, seeds=[0, 1], search_space=space))
    assert pack_size(cpu, "auto", cpus=16, gpus=0) == 1  # a CPU pack of images is no faster
    assert pack_size(cpu, 4, cpus=16, gpus=0) == 4  # the user's number packs them anyway
    gpu = load_spec(write_spec(tmp_path, "gpu", trial=images, seeds=[0, 1], search_space=space,
                               resources={"cpu": 2, "gpu": 0.5}))
    # 2 GPUs: one pack per whole GPU, 60 trials x 2 seeds capped at MAX_IMAGE_MEMBERS members
    assert pack_size(gpu, "auto", cpus=16, gpus=2) == MAX_IMAGE_MEMBERS // 2
    # the memory probe's answer (members one GPU holds) caps it instead, when it ran
    assert pack_size(gpu, "auto", cpus=16, gpus=2, gpu_members=10) == 5
    assert pack_size(gpu, "auto", cpus=16, gpus=2, gpu_members=400) == 30  # 60 trials / 2 GPUs

    def gpus_asked(pack: int) -> float:
        request = make_trainable(gpu, tmp_path, pack=pack).default_resource_request({})
        assert isinstance(request, tune.PlacementGroupFactory)
        return float(request.required_resources.get("GPU", 0.0))

    assert gpus_asked(4) == 1.0  # a pack fills its device: whole GPUs
    assert gpus_asked(1) == 0.5  # a fraction stays valid for pack: 1


def test_asha_judges_every_member_of_a_pack_at_each_rung(tmp_path: Path) -> None:
    from sweeps.execution.scheduling import Rungs

    space = {"optim.lr": {"kind": "grid", "values": [0.005, 0.05, 0.5]},
             "mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
             "mixup.stop_epoch": {"kind": "grid", "values": [30, None]}}
    spec = write_spec(tmp_path, "asha", search_space=space, seeds=[0, 1],
                      objective={"metric": "val/loss", "mode": "min"},
                      scheduler={"kind": "asha", "grace_period": 10, "reduction_factor": 2})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "9", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = RecordLog(tmp_path / "res" / "asha").trials
    assert len(trials) == 9 and len({r.pack for r in trials.values()}) == 1
    # Replay ASHA's rule over the records in the order the pack judged them: epoch by epoch,
    # members in pack order. Each cut must be where the rule cuts, and nowhere else.
    rungs = Rungs(grace_period=10, max_t=40, reduction_factor=2, mode="min")
    expected: dict[str, int] = {}
    for epoch in (10, 20, 30, 40):
        for trial_id in sorted(trials):
            record = trials[trial_id]
            if trial_id in expected or epoch not in record.epochs:
                continue
            if rungs.judge(trial_id, epoch, record.epochs[epoch]["val/loss"],
                           record.config["mixup.stop_epoch"]) and epoch < 40:
                expected[trial_id] = epoch
    stopped = {t: r.last_epoch for t, r in trials.items() if r.status == "STOPPED"}
    assert stopped == expected and 1 <= len(stopped) < 9, (stopped, expected)
    for trial_id, record in trials.items():
        assert record.status in ("STOPPED", "TERMINATED")
        if record.status == "TERMINATED":
            assert record.last_epoch == 40
        stop = record.config["mixup.stop_epoch"]
        if record.status == "STOPPED" and stop is not None and record.config["mixup.alpha"]:
            assert record.last_epoch > stop, f"{trial_id} cut before its switch-off"
    assert json.loads((tmp_path / "res" / "asha" / "asha_rungs.json").read_text())["0"]


def test_an_image_member_cut_by_asha_leaves_its_pack_without_disturbing_the_others(
        tmp_path: Path) -> None:
    """small_cnn trials packed four to a Ray trial under ASHA: the cuts are ASHA's rule replayed
    over the records, and every trial that trains on records what it records in the same pack
    without ASHA (its pack-mates' departure does not move its numbers)."""
    from sweeps.execution.scheduling import Rungs

    images = {"data": {"name": "digits", "max_train": 300, "max_test": 100},
              "model": {"name": "small_cnn", "channels": 8}, "precision": "float32",
              "optim": {"epochs": 4, "batch_size": 64, "momentum": 0.9}, "log_every": 1}
    space = {"optim.lr": {"kind": "grid", "values": [0.1, 0.05, 0.01, 0.001]}}  # worst last
    objective = {"metric": "val/loss", "mode": "min"}
    for name, scheduler in (("asha", {"kind": "asha", "grace_period": 1, "reduction_factor": 2}),
                            ("fifo", {"kind": "fifo"})):
        spec = write_spec(tmp_path, name, search_space=space, seeds=[0], trial=images,
                          objective=objective, scheduler=scheduler)
        out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "4", NO_REPORT,
                          cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    cut = RecordLog(tmp_path / "res" / "asha").trials
    whole = {r.config["optim.lr"]: r for r in RecordLog(tmp_path / "res" / "fifo").trials.values()}
    rungs = Rungs(grace_period=1, max_t=4, reduction_factor=2, mode="min")
    expected: dict[str, int] = {}
    for epoch in (1, 2, 3, 4):
        for trial_id in sorted(cut):
            record = cut[trial_id]
            if trial_id not in expected and epoch in record.epochs and epoch < 4 and rungs.judge(
                    trial_id, epoch, record.epochs[epoch]["val/loss"], None):
                expected[trial_id] = epoch
    stopped = {t: r.last_epoch for t, r in cut.items() if r.status == "STOPPED"}
    assert stopped == expected and 1 <= len(stopped) < 4, (stopped, expected)
    for record in cut.values():
        alone = whole[record.config["optim.lr"]]
        for epoch, metrics in record.epochs.items():
            for key, value in metrics.items():
                other = alone.epochs[epoch][key]
                assert (math.isnan(value) and math.isnan(other)) or abs(value - other) <= 1e-4, \
                    (record.config["optim.lr"], epoch, key, value, other)


def _journal_trials(path: Path, name: str) -> list[Any]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage).trials


def test_optuna_asks_whole_packs_and_a_killed_driver_resumes_the_journal_study(
        tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "tpe", seeds=[0, 1],
        trial={"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 300,
               "log_every": 20},
        search={"algorithm": "optuna", "num_samples": 6, "seed": 3, "max_concurrent": 1},
        search_space={"mixup.alpha": {"kind": "uniform", "low": 0.0, "high": 2.0},
                      "mixup.label_scheme": {"kind": "choice", "values": ["same", "power"]},
                      "optim.lr": {"kind": "loguniform", "low": 0.05, "high": 1.0}},
        objective={"metric": "val/loss", "mode": "min"})
    # Killed in the second of three packs: the first pack is held before its last step (280 of
    # 300 epochs) until the failpoint is armed again, then the second is held at epoch 100.
    first, second = run_and_kill(spec, tmp_path, "--pack", "2", at_epochs=(280, 100))
    before = RecordLog(tmp_path / "res" / "tpe").trials
    assert first["trial_id"] != second["trial_id"]
    assert sorted((r.pack, r.status) for r in before.values()) == sorted(
        [(first["trial_id"], "TERMINATED")] * 2 + [(second["trial_id"], "RUNNING")] * 2)
    assert all(r.last_epoch >= 100 for r in before.values())
    out = mixup_sweep("resume", "tpe", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = RecordLog(tmp_path / "res" / "tpe").trials
    assert len(trials) == 6 and all(r.status == "TERMINATED" for r in trials.values())
    assert len({r.pack for r in trials.values()}) == 3
    for trial_id, record in before.items():  # a finished pack is not trained again
        if record.status == "TERMINATED":
            assert trials[trial_id].epochs == record.epochs
    # The study in the sweep folder holds each trial once, told the value its records end on;
    # any other Optuna trial was asked just before the kill, never trained, and is FAIL.
    study = _journal_trials(tmp_path / "res" / "tpe" / "optuna.journal", "tpe")
    complete = [t for t in study if t.state.name == "COMPLETE"]
    assert len(complete) == 6 and all(t.state.name == "FAIL" for t in study if t not in complete)
    told = sorted((t.params["mixup.alpha"], t.value) for t in complete)
    recorded = sorted((r.config["mixup.alpha"], r.epochs[300]["val/loss"]) for r in trials.values())
    assert told == recorded


def test_minibatch_patch_cnn_trials_pack_too_and_a_bad_pack_size_is_one_line(
        tmp_path: Path) -> None:
    # minibatch SGD of the patch CNN packs in the closed-form engine (batched GEMMs)
    spec = write_spec(tmp_path, "mini", trial={**SMALL_TRIAL, "optim.batch_size": 8},
                      search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "4", NO_REPORT,
                      cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = RecordLog(tmp_path / "res" / "mini").trials
    assert len(trials) == 2 and all(r.status == "TERMINATED" and r.pack for r in trials.values())
    out = mixup_sweep("run", str(spec), "--storage", "res", "--pack", "0", cwd=tmp_path)
    assert out.returncode == 2 and "--pack: must be >= 1" in out.stderr


def test_a_killed_packed_driver_resumes_every_trial_from_its_pack_state(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "killed", seeds=[0, 1],
        trial={"data": {"dim": 400, "n_train": 60, "n_test": 200}, "optim.epochs": 1500,
               "log_every": 20},
        search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}},
        search={"algorithm": "grid", "max_concurrent": 2})
    [hit] = run_and_kill(spec, tmp_path, "--pack", "2", at_epochs=(200,))
    before = RecordLog(tmp_path / "res" / "killed").trials
    held = [t for t, r in before.items() if r.pack == hit["trial_id"]]
    assert len(held) == 2 and all(before[t].status == "RUNNING" and before[t].last_epoch >= 200
                                  for t in held), {t: (r.status, r.last_epoch) for t, r in before.items()}

    out = mixup_sweep("resume", "killed", "--storage", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert_resumed_whole(tmp_path / "res" / "killed",  # members go on from the pack's state
                         {t: r.last_epoch for t, r in before.items()}, trials=4,
                         epochs=range(20, 1501, 20))
    epochs = pd.read_parquet(tmp_path / "res" / "killed" / "epochs.parquet")
    assert len(epochs) == 4 * 75 and not epochs.duplicated(["trial_id", "epoch"]).any()


MULTI = [{"metric": "val/acc_rare", "mode": "max"}, {"metric": "val/acc_common", "mode": "max"}]


def test_a_list_of_objectives_is_searched_by_multi_objective_optuna_with_a_pareto_answer(
        tmp_path: Path) -> None:
    space = {"mixup.alpha": {"kind": "uniform", "low": 0.0, "high": 2.0},
             "optim.lr": {"kind": "loguniform", "low": 0.05, "high": 1.0}}
    spec = write_spec(tmp_path, "multi", seeds=[0], objective=MULTI, search_space=space,
                      search={"algorithm": "optuna", "num_samples": 6, "seed": 1,
                              "max_concurrent": 2})
    for name, pack in (("multi", "3"), ("multi1", "1")):  # packed, and Ray's OptunaSearch
        out = mixup_sweep("run", str(spec), "--storage", "res", "--name", name, "--pack", pack,
                          cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert len(RecordLog(tmp_path / "res" / name).trials) == 6
    study = _journal_trials(tmp_path / "res" / "multi" / "optuna.journal", "multi")
    assert len(study) == 6 and all(len(t.values) == 2 for t in study)
    trials = RecordLog(tmp_path / "res" / "multi").trials.values()
    told = sorted((t.params["mixup.alpha"], tuple(t.values)) for t in study)
    recorded = sorted((r.config["mixup.alpha"], (r.epochs[40]["val/acc_rare"],
                                                 r.epochs[40]["val/acc_common"]))
                      for r in trials)
    assert told == recorded
    # `best --pareto`: exactly the trials no other beats on both objectives
    every = json.loads(mixup_sweep("best", "multi", "--storage", "res", "--json", "--top", "6",
                                   cwd=tmp_path).stdout.strip().splitlines()[-1])
    out = mixup_sweep("best", "multi", "--storage", "res", "--pareto", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    front = {r["trial_id"] for r in json.loads(out.stdout.strip().splitlines()[-1])}
    points = {r["trial_id"]: (r["metrics"]["val/acc_rare"], r["metrics"]["val/acc_common"])
              for r in every}
    expected = {t for t, p in points.items()
                if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points.values())}
    assert front == expected and front
    table = mixup_sweep("best", "multi", "--storage", "res", "--pareto", cwd=tmp_path)
    assert "Pareto front over val/acc_rare (max), val/acc_common (max)" in table.stdout
    # the report's Pareto figure rings exactly those trials, in both panels
    data = report_data(load_sweep("multi", storage=tmp_path / "res"))
    assert data.objective_front == front
    section = accuracy_pareto(data)
    assert section.figure is not None
    for ax in section.figure.axes:
        assert len([c for c in ax.collections if c.get_gid() == "objective-front"]) == len(front)
    assert f"Gold rings: the {len(front)} configuration(s) on the Pareto front" in section.caption


def test_a_list_of_objectives_needs_optuna_and_fifo(tmp_path: Path) -> None:
    grid = write_spec(tmp_path, "g", objective=MULTI,
                      search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    out = mixup_sweep("plan", str(grid), cwd=tmp_path)
    assert out.returncode == 2 and "objective: a list of objectives needs search.algorithm " \
        "optuna" in out.stderr
    asha = write_spec(tmp_path, "a", objective=MULTI, scheduler={"kind": "asha"},
                      search={"algorithm": "optuna", "num_samples": 2},
                      search_space={"mixup.alpha": {"kind": "uniform", "low": 0.0, "high": 1.0}})
    out = mixup_sweep("plan", str(asha), cwd=tmp_path)
    assert out.returncode == 2 and "scheduler.kind: asha judges one objective" in out.stderr
    single = mixup_sweep("best", "nope", "--pareto", "--storage", "res", cwd=tmp_path)
    assert single.returncode == 2
