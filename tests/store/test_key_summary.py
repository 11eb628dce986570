"""Per-key summaries (sweeps.store.key_summary): levels in the key's order, sampled keys binned
on their scale, merged trials counted once per grid point, intervals inside the metric's range
and none under 3 trials, and a sentence that reads what the numbers say."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeps import load_sweep
from sweeps.errors import UsageError
from sweeps.store import key_summary, spread
from sweeps.store.key_summary import KeySummaries, summarise
from sweeps.store.records import TrialRecord
from tests.sweep_helpers import write_finished_sweep

METRIC = "val/acc_rare"
GRID = {"mixup.alpha": "grid", "mixup.stop_epoch": "grid"}


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A trials table: ``trial_id``, ``config/<key>`` (integers as Parquet keeps them, Int64),
    ``best/<metric>``, ``merged`` (JSON) and ``stands_for``."""
    merged = [row.get("merged") for row in rows]
    frame = pd.DataFrame({
        "trial_id": [f"t{i:03d}" for i in range(len(rows))],
        "merged": [json.dumps(m) if m else None for m in merged],
        "stands_for": [1 + len(m or []) for m in merged],
        f"best/{METRIC}": [row["value"] for row in rows]})
    keys = dict.fromkeys(k for row in rows for k in row if k not in ("merged", "value"))
    for key in keys:
        column = [row.get(key) for row in rows]
        integers = all(isinstance(v, int) for v in column if v is not None)
        frame[f"config/{key}"] = pd.array(column, dtype="Int64") if integers else column
    return frame


def drives(stop_effect: float, noise: float, *, seed: int = 0) -> pd.DataFrame:
    """α ∈ {0.1, 1, 4} × switch-off epoch ∈ {200, 500, never} × 4 repeats: the switch-off epoch
    moves the metric by ``stop_effect``, α only by noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for alpha in (0.1, 1.0, 4.0):
        for level, stop in enumerate((200, 500, None)):
            for _ in range(4):
                value = 0.4 + stop_effect * level / 2 + rng.normal(0, noise)
                rows.append({"mixup.alpha": alpha, "mixup.stop_epoch": stop,
                             "value": float(np.clip(value, 0, 1))})
    return table(rows)


def levels(found: KeySummaries, key: str) -> list[str]:
    return [lv.label for lv in found[key].levels]


# ----------------------------------------------------------------------------- levels


def test_grid_levels_follow_the_keys_order_with_never_last_and_count_points_trials_and_seeds(
        ) -> None:
    found = summarise(drives(0.5, 0.01), keys=GRID, metric=METRIC, seeds=3)
    assert levels(found, "mixup.alpha") == ["0.1", "1.0", "4.0"]
    assert levels(found, "mixup.stop_epoch") == ["200", "500", "never"]
    for lv in found["mixup.stop_epoch"].levels:
        assert (lv.points, lv.trials, lv.seed_runs) == (12, 12, 36)
    assert not found["mixup.alpha"].binned
    frame = drives(0.5, 0.01)
    never = frame[frame["config/mixup.stop_epoch"].isna()][f"best/{METRIC}"]
    assert found["mixup.stop_epoch"].levels[-1].mean == pytest.approx(never.mean(), abs=1e-15)


def test_a_merged_trial_counts_once_for_every_grid_point_it_stands_for() -> None:
    # one ERM run stands for the three stop-0 points (α 0.1, 1, 4); it ran at α 0.1
    erm = {"mixup.alpha": 0.1, "mixup.stop_epoch": 0, "value": 0.3,
           "merged": [{"mixup.alpha": 1.0, "mixup.stop_epoch": 0},
                      {"mixup.alpha": 4.0, "mixup.stop_epoch": 0}]}
    mixup = [{"mixup.alpha": a, "mixup.stop_epoch": None, "value": v}
             for a, v in ((0.1, 0.7), (1.0, 0.9), (4.0, 0.95))]
    found = summarise(table([erm, *mixup]), keys=GRID, metric=METRIC, seeds=2)
    stop0 = found["mixup.stop_epoch"].levels[0]
    assert (stop0.label, stop0.points, stop0.trials, stop0.seed_runs) == ("0", 3, 1, 2)
    assert stop0.mean == pytest.approx(0.3)
    assert not stop0.has_interval and stop0.note == "1 trial: no interval"
    by_alpha = {lv.label: lv for lv in found["mixup.alpha"].levels}
    assert by_alpha["4.0"].points == 2 and by_alpha["4.0"].mean == pytest.approx((0.3 + 0.95) / 2)
    assert sum(lv.points for lv in by_alpha.values()) == 6  # 6 grid points, 4 trials


def test_merged_trials_weigh_with_kishs_effective_count_in_the_interval() -> None:
    # at stop never: 3 trials once each; at α 0.1: the ERM run stands for 4 points, 3 others
    erm = {"mixup.alpha": 0.1, "mixup.stop_epoch": 0, "value": 0.3,
           "merged": [{"mixup.alpha": 0.1, "mixup.stop_epoch": 0}] * 3}
    others = [{"mixup.alpha": 0.1, "mixup.stop_epoch": None, "value": v} for v in (0.8, 0.85, 0.9)]
    found = summarise(table([erm, *others]), keys=GRID, metric=METRIC, seeds=3)
    level = found["mixup.alpha"].levels[0]
    assert (level.points, level.trials) == (7, 4)
    # weights 4, 1, 1, 1: (Σw)² / Σw² = 49 / 19 = 2.6 effective trials, fewer than 3
    assert not level.has_interval and level.note == "4 trials, 2.6 effective: no interval"


# ----------------------------------------------------------------------------- bins


def sampled(kind: str, n: int = 100, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = np.exp(rng.uniform(math.log(1e-5), math.log(1e-1), n))
    return table([{"optim.lr": float(v), "value": float(0.5 + 0.05 * math.log10(v) + 0.25)}
                   for v in lr]).assign(kind=kind)


def test_a_loguniform_key_is_cut_into_five_equal_count_bins_on_the_log_scale() -> None:
    frame = sampled("loguniform")
    found = summarise(frame, keys={"optim.lr": "loguniform"}, metric=METRIC, seeds=1)
    summary = found["optim.lr"]
    assert summary.binned and summary.log_scale and len(summary.levels) == key_summary.BINS
    assert [lv.points for lv in summary.levels] == [20] * 5
    values = np.sort(frame["config/optim.lr"].to_numpy())
    cuts = np.exp(np.quantile(np.log(values), [0.2, 0.4, 0.6, 0.8]))  # cut on log(lr)
    inner = [lv.value[1] for lv in summary.levels[:-1]]
    assert inner == pytest.approx(list(cuts), rel=1e-12)
    assert summary.levels[0].value[0] == values[0] and summary.levels[-1].value[1] == values[-1]
    first, last = summary.levels[0].label, summary.levels[-1].label
    assert first.startswith("[") and first.endswith(")") and last.endswith("]")
    assert all(len(part.strip("[]() ")) <= 9 for lv in summary.levels  # 4 significant digits
               for part in lv.label.split(","))
    # the metric rises with log(lr): the bins' means rise too
    assert [lv.mean for lv in summary.levels] == sorted(lv.mean for lv in summary.levels)


def test_a_uniform_key_is_cut_on_its_own_scale_and_a_grid_key_with_many_values_is_binned() -> None:
    found = summarise(sampled("uniform"), keys={"optim.lr": "uniform"}, metric=METRIC, seeds=1)
    assert found["optim.lr"].binned and not found["optim.lr"].log_scale
    many = table([{"model.width": w, "value": 0.5} for w in range(1, 13)])
    grid = summarise(many, keys={"model.width": "grid"}, metric=METRIC, seeds=1)
    assert grid["model.width"].binned  # 12 values > 8
    few = table([{"model.width": w, "value": 0.5} for w in range(1, 8)])
    assert not summarise(few, keys={"model.width": "grid"}, metric=METRIC,
                         seeds=1)["model.width"].binned


# ----------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(("metric", "values"), [
    ("val/acc_rare", [0.99, 1.0, 1.0, 0.97, 1.0]),
    ("val/acc_rare", [0.0, 0.02, 0.0, 0.01]),
    ("val/acc_rare", [1.0, 1.0, 1.0]),
    ("val/loss", [0.01, 0.5, 0.02, 2.0]),
])
def test_every_interval_lies_inside_the_metrics_range_and_holds_the_mean(
        metric: str, values: list[float]) -> None:
    frame = pd.DataFrame({"trial_id": [f"t{i}" for i in range(len(values))],
                          "config/mixup.alpha": [1.0] * len(values), f"best/{metric}": values})
    level = summarise(frame, keys={"mixup.alpha": "grid"}, metric=metric,
                      seeds=3)["mixup.alpha"].levels[0]
    assert level.low is not None and level.high is not None, level
    low, high = spread.metric_range(metric)
    assert low <= level.low <= level.mean <= level.high <= high
    if metric == "val/loss":
        assert level.low > 0
    if values == [1.0, 1.0, 1.0]:  # trials that all agree are not read as certain
        assert level.low < 0.9


def test_no_interval_under_three_trials_and_the_note_says_so() -> None:
    rows = [{"mixup.alpha": 0.1, "mixup.stop_epoch": None, "value": 0.5},
            {"mixup.alpha": 0.1, "mixup.stop_epoch": None, "value": 0.7},
            {"mixup.alpha": 1.0, "mixup.stop_epoch": None, "value": 0.9}]
    found = summarise(table(rows), keys=GRID, metric=METRIC, seeds=3)
    two, one = found["mixup.alpha"].levels
    assert not two.has_interval and two.note == "2 trials: no interval"
    assert not one.has_interval and one.note == "1 trial: no interval"
    assert key_summary.format_interval(two) == "(2 trials: no interval)"
    three = found["mixup.stop_epoch"].levels[0]
    assert three.has_interval and three.trials == 3


# ----------------------------------------------------------------------------- the sentence


def test_the_sentence_names_the_key_that_drives_the_metric_and_says_the_intervals_part() -> None:
    found = summarise(drives(0.5, 0.02), keys=GRID, metric=METRIC, seeds=3)
    text = found.sentence()
    stop, alpha = found["mixup.stop_epoch"], found["mixup.alpha"]
    assert text.startswith(f"mixup.stop_epoch moves the mean {METRIC} most (")
    assert "at 200 → " in text and "at never, intervals do not overlap)" in text
    assert "; mixup.alpha least (" in text and "intervals overlap)." in text
    assert stop.moves > 0.4 > 0.1 > alpha.moves
    low, high = stop.extremes() or pytest.fail("two levels")
    assert f"{key_summary.format_number(low.mean)} at 200" in text
    assert f"{key_summary.format_number(high.mean)} at never" in text


def test_the_sentence_follows_the_data_not_the_key_names() -> None:
    # now α drives it and the switch-off epoch is inert
    rng = np.random.default_rng(3)
    rows = [{"mixup.alpha": a, "mixup.stop_epoch": s, "value": 0.2 + 0.3 * i + rng.normal(0, 0.01)}
            for i, a in enumerate((0.1, 1.0, 4.0)) for s in (200, 500, None) for _ in range(3)]
    text = summarise(table(rows), keys=GRID, metric=METRIC, seeds=3).sentence(
        name=lambda k: {"mixup.alpha": "α", "mixup.stop_epoch": "switch-off epoch"}[k])
    assert text.startswith("α moves the mean val/acc_rare most (")
    assert "switch-off epoch least" in text


def test_the_sentence_names_a_missing_interval_instead_of_claiming_an_overlap() -> None:
    rows: list[dict[str, Any]] = [{"mixup.alpha": 1.0, "mixup.stop_epoch": 0, "value": 0.1}]
    rows += [{"mixup.alpha": 1.0, "mixup.stop_epoch": None, "value": v} for v in (0.9, 0.92, 0.95)]
    text = summarise(table(rows), keys={"mixup.stop_epoch": "grid"}, metric=METRIC,
                     seeds=3).sentence()
    assert "(0.1 at 0 → 0.9233 at never, no interval at 0 (1 trial))." in text
    assert "overlap" not in text


# ----------------------------------------------------------------------------- on a sweep


def test_the_sweep_handle_answers_per_searched_key_and_refuses_a_key_not_searched(
        tmp_path: Path) -> None:
    spec = {"name": "keys", "seeds": [0, 1, 2], "search": {"algorithm": "grid"},
            "objective": {"metric": METRIC, "mode": "max"},
            "search_space": {"mixup.alpha": {"kind": "grid", "values": [0.5, 2.0]},
                             "mixup.stop_epoch": {"kind": "grid", "values": [10, None]}}}
    records = [TrialRecord(f"t{i}", {"mixup.alpha": a, "mixup.stop_epoch": s},
                           status="TERMINATED",
                           epochs={10: {"epoch": 10, METRIC: 0.5 + 0.1 * i + 0.0123456789}})
               for i, (a, s) in enumerate((a, s) for a in (0.5, 2.0) for s in (10, None))]
    write_finished_sweep(tmp_path, "keys", records, seeds=(0, 1, 2),
                         spec_text=yaml.safe_dump(spec))
    sweep = load_sweep("keys", storage=tmp_path)
    found = sweep.key_summary()
    assert [s.key for s in found.keys] == ["mixup.alpha", "mixup.stop_epoch"]
    assert found.column == f"best/{METRIC}" and found.seeds == 3
    assert found["mixup.alpha"].levels[0].mean == (0.5123456789 + 0.6123456789) / 2
    assert [s.key for s in sweep.key_summary(keys=["mixup.stop_epoch"]).keys] == [
        "mixup.stop_epoch"]
    with pytest.raises(UsageError, match=r"--by optim\.lr: not a searched key .* \(searched: "
                                         r"mixup\.alpha, mixup\.stop_epoch\)"):
        sweep.key_summary(keys=["optim.lr"])
    rows = found.records()
    assert rows[0] | {"mean": None} == {
        "key": "mixup.alpha", "kind": "grid", "binned": False, "level": "0.5", "value": 0.5,
        "mean": None, "ci_low": None, "ci_high": None, "points": 2, "trials": 2,
        "seed_runs": 6, "note": "2 trials: no interval"}
