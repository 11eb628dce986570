"""Honest answers: choose on validation, report test; one tie rule; the spread over seeds;
equivalent configs run once.

Sweeps here are written straight into a sweep folder from made-up records, so every shape
(a validation peak away from the test peak, exact ties) can be built; the real sweep that
produces val/* metrics runs in test_sweeps_local.py.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch
from scipy import stats

from dashboards.best_table import best_frame
from dashboards.sweep_data import report_data
from mixup_cli.main import main
from mixup_core.config import TrialConfig, to_flat, trains_as
from sweeps import load_sweep
from sweeps.execution.progress import ProgressLine
from sweeps.execution.seed_group import aggregate
from sweeps.spec import load_spec, parse_spec
from sweeps.store import parquet_io, spread, tables
from sweeps.store.records import TrialRecord
from tests.core.reference_trainer import Trainer
from tests.sweep_helpers import write_finished_sweep

SPECS = Path(__file__).resolve().parents[2] / "sweeps" / "specs"
#: The seeds every made-up trial here averages over (its intervals are over 3).
SEEDS = (0, 1, 2)


def _metrics(epoch: int, val: float, test: float, std: float | None) -> dict[str, float]:
    out = {"epoch": float(epoch), "val/acc_rare": val, "test/acc_rare": test,
           "test/acc_common": 1.0, "val/acc_common": 1.0}
    if std is not None:
        out |= {"val/acc_rare_std": std, "test/acc_rare_std": std}
    return out


def record(trial_id: str, alpha: float, epochs: dict[int, dict[str, float]]) -> TrialRecord:
    config = {**to_flat(TrialConfig()), "mixup.alpha": alpha}
    return TrialRecord(trial_id, config, status="TERMINATED", epochs=epochs)


def best_json(storage: Path, name: str, *extra: str,
              capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], str]:
    assert main(["best", name, "--storage", str(storage), "--json", *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


# ------------------------------------------------------------------ selection on validation


def test_best_chooses_the_epoch_on_validation_and_reports_test_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # validation peaks at epoch 20, test at epoch 40: the answer is epoch 20 and its test value
    epochs = {10: _metrics(10, 0.6, 0.6, 0.01), 20: _metrics(20, 0.9, 0.7, 0.01),
              40: _metrics(40, 0.8, 0.95, 0.01)}
    write_finished_sweep(tmp_path, "s", [record("t_00000", 1.0, epochs)], seeds=SEEDS)
    rows, err = best_json(tmp_path, "s", capsys=capsys)
    assert rows[0]["epoch"] == 20 and rows[0]["value"] == 0.9
    assert rows[0]["metrics"]["test/acc_rare"] == 0.7
    assert err == ""  # choosing on validation warns about nothing
    assert main(["best", "s", "--storage", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Chosen on val/acc_rare (max, validation data) at each trial's best "
                           "epoch by that metric; reported: test/acc_rare")
    # test at the validation epoch, 3 seeds: an accuracy's interval (Wilson with the seeds'
    # spread, within [0, 1]) and how many seeds reached 0.95
    assert "0.7000 ± 0.0100 [0.6746, 0.7243] 0/3 seeds ≥ 0.95" in text
    # the report's table shows the same test value at the epoch chosen on validation
    frame = best_frame(report_data(load_sweep("s", storage=tmp_path)))
    assert frame.loc[0, "best/test/acc_rare"] == 0.7 and frame.loc[0, "best epoch"] == "20"


def test_choosing_on_a_test_metric_works_and_warns_once_that_it_is_optimistic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    epochs = {20: _metrics(20, 0.9, 0.7, 0.01), 40: _metrics(40, 0.8, 0.95, 0.01)}
    write_finished_sweep(tmp_path, "s", [record("t_00000", 1.0, epochs)], seeds=SEEDS)
    rows, err = best_json(tmp_path, "s", "--metric", "test/acc_rare", capsys=capsys)
    assert rows[0]["epoch"] == 40 and rows[0]["value"] == 0.95
    assert err.count("\n") == 1 and "optimistic" in err and "val/acc_rare" in err


def test_specs_choose_on_validation_by_default_and_every_shipped_spec_does() -> None:
    spec = parse_spec({"name": "x"}, source="test")
    assert spec.objective.metric == "val/acc_rare"
    for path in sorted(SPECS.glob("*.yaml")):
        assert load_spec(path).objective.metric.startswith("val/"), path.name


# ------------------------------------------------------------------ one tie rule everywhere


def tied_sweep(storage: Path) -> list[TrialRecord]:
    """Five trials; four tie at 1.0: the rule orders them by std, then epoch, then trial id."""
    records = [
        record("t_00000", 0.1, {10: _metrics(10, 1.0, 0.9, 0.02), 20: _metrics(20, 0.5, 0.5, 0.0)}),
        record("t_00001", 0.2, {10: _metrics(10, 0.7, 0.7, 0.0), 20: _metrics(20, 1.0, 0.8, 0.0)}),
        record("t_00002", 0.4, {10: _metrics(10, 1.0, 0.7, 0.0), 20: _metrics(20, 1.0, 0.6, 0.0)}),
        record("t_00003", 0.8, {10: _metrics(10, 0.9, 0.9, 0.0), 20: _metrics(20, 0.95, 1.0, 0.0)}),
        record("t_00004", 1.6, {10: _metrics(10, 0.2, 0.2, 0.0), 20: _metrics(20, 1.0, 0.7, 0.0)}),
    ]
    write_finished_sweep(storage, "ties", records, seeds=SEEDS)
    return records


def test_best_the_report_and_the_live_display_break_ties_by_the_same_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tied_sweep(tmp_path)
    rows, _ = best_json(tmp_path, "ties", "--top", "5", capsys=capsys)
    order = [r["trial_id"] for r in rows]
    # std 0 before 0.02; among std 0: epoch 10 before 20; then trial id
    assert order == ["t_00002", "t_00001", "t_00004", "t_00000", "t_00003"]
    assert rows[0]["epoch"] == 10 and rows[0]["ties"] == 4  # its own tie: earlier epoch wins
    # the report ranks its configurations the same way
    data = report_data(load_sweep("ties", storage=tmp_path))
    assert [g.trial_ids[0] for g in data.ranked()] == order
    # the live display, offered every report in arrival order, names the same best
    display = ProgressLine(metric="val/acc_rare", mode="max", total=5, stream=io.StringIO())
    for r in records[::-1]:
        for epoch, m in sorted(r.epochs.items()):
            display.offer(r.trial_id, epoch, m["val/acc_rare"], m.get("val/acc_rare_std"))
    assert display.best == (1.0, "t_00002", 10)
    # and `best` says how many tie, and by which rule
    assert main(["best", "ties", "--storage", str(tmp_path)]) == 0
    assert f"4 trials tie at val/acc_rare = 1.0000; {tables.TIE_RULE}." in capsys.readouterr().out


# ------------------------------------------------------------------ spread over seeds


def test_seeds_are_summarised_by_the_sample_std_and_one_seed_has_no_spread() -> None:
    per_seed = [{"epoch": 10.0, "val/acc": v} for v in (0.5, 0.7, 0.9)]
    out = aggregate(per_seed)
    assert out["val/acc_std"] == pytest.approx(statistics.stdev([0.5, 0.7, 0.9]))  # 0.2
    assert out["val/acc_std"] == pytest.approx(0.2)  # the population std would read 0.163
    assert "val/acc_std" not in aggregate(per_seed[:1])
    # a metric a split cannot have (rare accuracy without rare points) is NaN, spread too
    nan = aggregate([{"epoch": 1.0, "test/acc_rare": math.nan}] * 2)
    assert math.isnan(nan["test/acc_rare"]) and math.isnan(nan["test/acc_rare_std"])
    assert spread.format_spread(0.5, None, 1) == "0.500"
    assert spread.format_spread(0.5, 0.0, 1) == "0.500"  # never "± 0" for one seed


def test_an_unbounded_metric_gets_students_t_interval_of_the_mean_rounded_outwards() -> None:
    values = [0.52, 0.61, 0.47, 0.55]
    mean, std = statistics.fmean(values), statistics.stdev(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    metric = "features/rare_alignment"
    assert spread.interval(mean, std, len(values), metric=metric) == pytest.approx((low, high))
    assert spread.interval(mean, std, len(values)) == pytest.approx((low, high))  # range unknown
    down, up = math.floor(low * 1000) / 1000, math.ceil(high * 1000) / 1000
    assert spread.format_spread(mean, std, 4, metric=metric) == (
        f"{mean:.3f} ± {std:.3f} [{down:.3f}, {up:.3f}]")
    assert spread.interval(mean, std, 1) is None
    assert spread.interval(mean, std, 2) is None  # too few seeds (tests/store/test_intervals.py)


def test_reproduce_prints_sample_stds_and_no_interval_for_two_seeds(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reproduce", "--seeds", "2", "--json", "--set", "optim.epochs=4",
                 "--set", "log_every=2", "--set", "data.dim=40", "--set", "data.n_test=40",
                 "--set", "data.n_val=40", "--set", "data.n_train=20"])
    assert code == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out.strip().splitlines()[-1])
    progress = [line for line in captured.err.splitlines() if line.startswith("reproduce: ")]
    total = 4 * 2 * len(rows)  # epochs x seeds x rows
    assert progress and progress[-1].startswith(f"reproduce: 100% of {total} trial-epochs"), \
        captured.err  # progress on stderr, ending at the whole
    for row in rows:
        values = row["per_seed"]["test/acc_common"]
        assert row["std"]["test/acc_common"] == pytest.approx(statistics.stdev(values))
        assert row["ci95"]["test/acc_common"] is None  # 2 seeds: a t interval on 1 d.o.f. is noise


# ------------------------------------------------------------------ configs that train alike


TINY = {"data.dim": 40, "data.n_train": 24, "data.n_test": 30, "data.n_val": 30,
        "optim.epochs": 6, "log_every": 3, "model.width": 3}


def history(**updates: Any) -> list[dict[str, float]]:
    trainer = Trainer(TrialConfig().replace(**{**TINY, **updates}))
    trainer.run()
    return trainer.history


@pytest.mark.parametrize("one, other", [
    ({"mixup.alpha": 0.0}, {"mixup.alpha": 4.0, "mixup.stop_epoch": 0,
                            "mixup.label_scheme": "power", "mixup.fold": True}),
    ({"mixup.alpha": 0.0, "mixup.label_scheme": "dominant"},
     {"mixup.alpha": 0.0, "mixup.stop_mode": "end_training", "mixup.stop_epoch": 3}),
    ({"mixup.alpha": 1.0, "mixup.stop_epoch": None},
     {"mixup.alpha": 1.0, "mixup.stop_epoch": 6, "mixup.stop_mode": "end_training"}),
    ({"mixup.label_scheme": "power"}, {"mixup.label_scheme": "power", "mixup.label_param": 2.0}),
])
def test_configs_with_one_representative_train_bit_for_bit_alike(one: dict[str, Any],
                                                                 other: dict[str, Any]) -> None:
    base = TrialConfig().replace(**TINY)
    assert trains_as(base.replace(**one)) == trains_as(base.replace(**other))
    assert history(**one) == history(**other)


@pytest.mark.parametrize("one, other", [
    ({"mixup.fold": False}, {"mixup.fold": True}),  # same law, different draws
    ({"mixup.alpha": 0.0}, {"mixup.stop_epoch": 0, "mixup.stop_mode": "end_training"}),
    ({"mixup.stop_epoch": 3}, {"mixup.stop_epoch": 3, "mixup.stop_mode": "end_training"}),
])
def test_configs_that_train_differently_keep_their_own_representative(
        one: dict[str, Any], other: dict[str, Any]) -> None:
    base = TrialConfig().replace(**TINY)
    assert trains_as(base.replace(**one)) != trains_as(base.replace(**other))
    assert history(**one) != history(**other)


def test_the_main_job_runs_49_distinct_trials_of_its_60_grid_points(
        capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_spec(SPECS / "paper_feature_noise.yaml")
    trials = spec.grid_trials()
    assert spec.grid_size() == 60 and spec.trial_count() == len(trials) == 49
    erm = [t for t in trials if t.merged]
    assert len(erm) == 1 and erm[0].stands_for == 12
    assert all(p["mixup.stop_epoch"] == 0 for p in [erm[0].point, *erm[0].merged])
    assert main(["plan", str(SPECS / "paper_feature_noise.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Trials: 60 trials, 49 distinct" in out and "(+11 merged)" in out
    assert out.count("mixup.stop_epoch=0") == 12  # the one that runs and the 11 merged


def test_tune_is_handed_only_the_distinct_grid_points() -> None:
    from sweeps.execution.tuner import GRID_KEY, param_space, trial_params

    spec = load_spec(SPECS / "paper_feature_noise.yaml")
    space = param_space(spec)
    points = space[GRID_KEY]["grid_search"]
    assert len(points) == 49 and set(space) == {GRID_KEY}
    assert trial_params({GRID_KEY: points[0]}) == points[0]


def test_a_sampled_key_beside_the_grid_merges_nothing() -> None:
    spec = parse_spec({"name": "x", "search": {"algorithm": "random", "num_samples": 2},
                       "search_space": {
                           "mixup.stop_epoch": {"kind": "grid", "values": [0, 100]},
                           "mixup.label_scheme": {"kind": "grid", "values": ["same", "power"]},
                           "mixup.alpha": {"kind": "uniform", "low": 0.0, "high": 2.0}}},
                      source="test")
    assert spec.trial_count() == spec.grid_size() == 8


def test_a_merged_trial_counts_for_every_point_it_stands_for_in_the_marginals() -> None:
    base = to_flat(TrialConfig())
    erm = TrialRecord("t_00000", {**base, "mixup.alpha": 0.1, "mixup.stop_epoch": 0},
                      status="TERMINATED", epochs={10: _metrics(10, 0.5, 0.5, None)},
                      merged=[{"mixup.alpha": 1.0, "mixup.stop_epoch": 0}])
    mixup = [TrialRecord(f"t_0000{i}", {**base, "mixup.alpha": a, "mixup.stop_epoch": None},
                         status="TERMINATED", epochs={10: _metrics(10, 0.9, 0.9, None)})
             for i, a in ((1, 0.1), (2, 1.0))]
    frame = parquet_io.frame(tables.trial_rows([erm, *mixup], metric="val/acc_rare", mode="max"))
    assert frame.loc[0, tables.STANDS_FOR] == 2 and frame.loc[1, tables.STANDS_FOR] == 1
    by_alpha = tables.marginals(frame, "last/val/acc_rare")["mixup.alpha"]
    assert by_alpha == [(0.1, pytest.approx(0.7), 2), (1.0, pytest.approx(0.7), 2)]


def test_train_and_validation_metrics_are_reported_beside_test_at_every_log() -> None:
    trainer = Trainer(TrialConfig().replace(**TINY))
    metrics = trainer.advance()
    for split in ("val", "test"):
        for name in ("loss", "acc", "acc_common", "acc_rare"):
            assert math.isfinite(metrics[f"{split}/{name}"])
    assert metrics["val/acc"] != metrics["test/acc"] or not torch.equal(
        trainer.data.x_val, trainer.data.x_test)
