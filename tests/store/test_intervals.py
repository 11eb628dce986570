"""Honest uncertainty over seeds: intervals inside the metric's range, agreeing seeds not read as
certain, a note where seeds are too few, the count of seeds that reached 0.95, and the same
numbers in the DataFrames (sweeps.store.spread, the one place that computes them)."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dashboards.best_table import best_frame, best_table_html
from dashboards.sweep_data import report_data
from mixup_core.config import TrialConfig, to_flat
from sweeps import load_sweep
from sweeps.store import spread, tables
from sweeps.store.records import TrialRecord
from tests.sweep_helpers import write_finished_sweep

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
BOUNDS = re.compile(r"\[(-?[0-9.]+), (-?[0-9.]+)\]")


def summary(values: list[float]) -> tuple[float, float, int]:
    """What the records keep of a trial's seeds: their mean, sample std and number."""
    return statistics.fmean(values), statistics.stdev(values), len(values)


# ------------------------------------------------------------------ inside the metric's range


@settings(max_examples=300, deadline=None)
@given(st.lists(unit, min_size=3, max_size=12),
       st.sampled_from(["test/acc", "val/acc_rare", "best/test/acc_common"]))
def test_an_accuracy_interval_lies_in_zero_one_and_holds_the_mean(values: list[float],
                                                                  metric: str) -> None:
    mean, std, n = summary(values)
    low, high = spread.interval(mean, std, n, metric=metric) or pytest.fail("no interval")
    assert 0.0 <= low <= mean + 1e-12 and mean - 1e-12 <= high <= 1.0
    printed = BOUNDS.search(spread.format_spread(mean, std, n, digits=4, metric=metric))
    assert printed is not None
    assert 0.0 <= float(printed[1]) <= float(printed[2]) <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=50.0, allow_nan=False), min_size=3,
                max_size=12))
def test_a_loss_interval_never_goes_below_zero(values: list[float]) -> None:
    mean, std, n = summary(values)
    bounds = spread.interval(mean, std, n, metric="test/loss")
    if bounds is None:  # seeds that all agree: no spread, no interval, and a note says so
        assert std <= spread.ZERO_SPREAD
        assert "all equal: no interval" in spread.format_spread(mean, std, n, metric="test/loss")
        return
    assert 0.0 < bounds[0] <= mean * (1 + 1e-12) and bounds[1] >= mean * (1 - 1e-12)


def test_the_range_comes_from_the_metric_name() -> None:
    assert spread.metric_range("val/acc_rare") == (0.0, 1.0)
    assert spread.metric_range("last/test/acc") == (0.0, 1.0)
    assert spread.metric_range("train/loss") == (0.0, math.inf)
    assert spread.metric_range("features/rare_alignment") == (-math.inf, math.inf)
    assert not spread.is_accuracy("mixup/active") and not spread.is_accuracy(None)


def test_the_intervals_measured_outside_the_range_now_stay_inside() -> None:
    # issue 23: 3 seeds printed [0.3070, 1.2396]; a loss interval went below 0
    low, high = spread.interval(0.7733, 0.1877, 3, metric="test/acc_rare") or (-1.0, 2.0)
    assert 0.0 <= low < high <= 1.0
    low, high = spread.interval(0.5, 0.3, 3, metric="test/loss") or (-1.0, 0.0)
    assert 0.0 < low < 0.5 < high


# ------------------------------------------------------------------ never certain by accident


@pytest.mark.parametrize("n", [3, 5, 10])
def test_seeds_that_all_reach_one_are_not_printed_as_certain(n: int) -> None:
    mean, std, _ = summary([1.0] * n)
    low, high = spread.interval(mean, std, n, metric="test/acc_rare") or (1.0, 1.0)
    assert low < 0.99 and high == 1.0
    assert low == pytest.approx(n / (n + 1.959963984540054 ** 2))  # Wilson of n of n seeds
    text = spread.format_spread(mean, std, n, digits=4, metric="test/acc_rare")
    assert "[1.0000, 1.0000]" not in text
    assert text.startswith("1.0000 ± 0 [") and text.endswith(f"{n}/{n} seeds ≥ 0.95")


def test_a_tiny_spread_near_one_is_rounded_outwards_not_to_a_point() -> None:
    mean, std, n = summary([1.0, 1.0, 1.0 - 1e-7])
    text = spread.format_spread(mean, std, n, digits=4, metric="val/acc")
    assert "[0.9999, 1.0000]" in text


def test_seeds_that_all_agree_on_a_loss_get_a_note_not_a_point() -> None:
    assert spread.interval(0.25, 0.0, 3, metric="test/loss") is None
    assert spread.format_spread(0.25, 0.0, 3, metric="test/loss") == (
        "0.250 ± 0 (3 seeds all equal: no interval)")


# ------------------------------------------------------------------ too few seeds


def test_two_seeds_say_they_are_too_few_for_an_interval() -> None:
    # issue 23: 2 seeds printed 0.8617 ± 0.1956 [-0.8960, 2.6194] (t on one degree of freedom)
    assert spread.interval(0.8617, 0.1956, 2, metric="test/acc_rare") is None
    assert spread.interval(0.8617, 0.1956, 2) is None
    text = spread.format_spread(0.8617, 0.1956, 2, digits=4, metric="test/acc_rare")
    assert text.startswith("0.8617 ± 0.1956 (2 seeds: no interval)") and "[" not in text
    assert spread.format_spread(0.8617, None, 1, metric="test/acc_rare") == "0.862"
    assert "too few for an interval" in spread.spread_note(2)


# ------------------------------------------------------------------ seeds that reached 0.95


@settings(max_examples=300, deadline=None)
@given(st.lists(unit, min_size=2, max_size=7))
def test_the_count_of_seeds_that_reached_the_threshold_holds_the_true_count(
        values: list[float]) -> None:
    assume(all(abs(v - spread.REACHED) > 1e-6 for v in values))
    true = sum(v >= spread.REACHED for v in values)
    fewest, most = spread.seeds_reached(*summary(values), metric="val/acc") or (-1, -1)
    assert fewest <= true <= most
    if len(values) == 2:
        assert fewest == most == true  # two seeds are pinned down by their mean and std


@pytest.mark.parametrize("values, shown", [
    ([1.0, 1.0, 0.5], "2/3 seeds ≥ 0.95"),
    ([0.97, 0.96, 0.99], "3/3 seeds ≥ 0.95"),
    ([0.9, 0.96, 0.99], "1–2/3 seeds ≥ 0.95"),  # the summary allows either
    ([1.0] * 9 + [0.9], "9/10 seeds ≥ 0.95"),
])
def test_accuracies_say_how_many_seeds_reached_the_threshold(values: list[float],
                                                             shown: str) -> None:
    assert spread.format_spread(*summary(values), metric="test/acc_rare").endswith(shown)
    assert "seeds ≥" not in spread.format_spread(*summary(values), metric="test/loss")


# ------------------------------------------------------------------ the same in the DataFrames


def _record(trial_id: str, alpha: float, acc: float, acc_std: float) -> TrialRecord:
    metrics = {"epoch": 10.0, "val/acc_rare": acc, "val/acc_rare_std": acc_std,
               "test/acc_rare": acc, "test/acc_rare_std": acc_std,
               "test/loss": 0.3, "test/loss_std": 0.05}
    return TrialRecord(trial_id, {**to_flat(TrialConfig()), "mixup.alpha": alpha},
                       status="TERMINATED", epochs={10: metrics})


RECORDS = [_record("t_00000", 1.0, 1.0, 0.0), _record("t_00001", 0.5, 0.7, 0.1)]


def test_the_ranking_carries_each_metrics_interval_and_seed_count() -> None:
    trials = pd.DataFrame(tables.trial_rows(RECORDS, metric="val/acc_rare", mode="max"))
    epochs = pd.DataFrame(tables.epoch_rows(RECORDS))
    ranked = tables.rank(trials, epochs, metric="val/acc_rare", mode="max", scope="best-epoch",
                         seeds=3)
    for metric in ("val/acc_rare", "test/acc_rare"):
        for suffix in spread.DERIVED_SUFFIXES:
            assert metric + suffix in ranked.columns
    assert "test/loss_ci_low" in ranked and "test/loss_seeds_at_least" not in ranked
    top = ranked.iloc[0]
    assert top["trial_id"] == "t_00000" and top["test/acc_rare_ci_low"] < 0.5
    assert top["test/acc_rare_ci_high"] == 1.0 and top["test/acc_rare_seeds_at_least"] == 3
    assert ranked["test/acc_rare_seeds_at_most"].dtype == "Int64"
    assert ranked["test/loss_ci_low"].min() > 0.0
    two = tables.rank(trials, epochs, metric="val/acc_rare", mode="max", scope="best-epoch",
                      seeds=2)
    assert two["test/acc_rare_ci_low"].isna().all()  # 2 seeds: no interval
    plain = tables.rank(trials, epochs, metric="val/acc_rare", mode="max", scope="best-epoch")
    assert not any(c.endswith(spread.DERIVED_SUFFIXES) for c in plain.columns)


def test_best_json_gives_the_bounded_interval_and_the_seed_count_not_the_derived_columns() -> None:
    trials = pd.DataFrame(tables.trial_rows(RECORDS, metric="val/acc_rare", mode="max"))
    epochs = pd.DataFrame(tables.epoch_rows(RECORDS))
    ranked = tables.rank(trials, epochs, metric="val/acc_rare", mode="max", scope="best-epoch",
                         seeds=3)
    top = tables.ranked_records(ranked, seeds=3)[0]
    assert not any(k.endswith(spread.DERIVED_SUFFIXES) for k in top["metrics"])
    low, high = top["ci95"]["test/acc_rare"]
    assert 0.0 <= low < high == 1.0
    assert top["seeds_reached"]["test/acc_rare"] == [3, 3]
    assert top["reached_threshold"] == spread.REACHED
    assert tables.ranked_records(ranked, seeds=2)[0]["ci95"] == {}


def test_the_reports_table_has_the_same_columns_and_cells(tmp_path: Path) -> None:
    write_finished_sweep(tmp_path, "s", RECORDS, seeds=(0, 1, 2))
    data = report_data(load_sweep("s", storage=tmp_path))
    frame = best_frame(data)
    for suffix in spread.DERIVED_SUFFIXES:
        assert f"best/test/acc_rare{suffix}" in frame.columns
        assert f"last/val/acc_rare{suffix}" in frame.columns
    top = frame.iloc[0]
    expected = spread.interval(1.0, 0.0, 3, metric="test/acc_rare")
    assert (top["best/test/acc_rare_ci_low"], top["best/test/acc_rare_ci_high"]) == expected
    html = best_table_html(data, frame)
    assert "[1.000, 1.000]" not in html and "3/3 seeds ≥ 0.95" in html
