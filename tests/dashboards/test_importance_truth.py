"""Parameter importance against ground truth known by construction (``sweeps.importance`` and
the report's figure): made-up trials tables where one key drives the objective, one only matters
through the driver and one is inert, with and without a tie at the best value, and a grid with
the main job's shape (the switch-off epoch drives, α matters a little, trials tie at 1.0)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from dashboards import fig_importance
from dashboards.sweep_data import SweepData
from sweeps import importance as importance_module
from sweeps.importance import MIN_TOP_TRIALS, importance, ped_anova_refusal
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX, LAST_PREFIX

KEYS = ["driver", "partner", "inert"]
SCHEMES = ["same", "independent", "power", "dominant"]


def driven_trials(n: int, *, seed: int = 0, ceiling: float = math.inf) -> pd.DataFrame:
    """``driver`` sets the objective, ``partner`` scales the driver's effect only (no effect
    when the driver is 0) and ``inert`` does nothing; capped at ``ceiling`` (ties there)."""
    rng = np.random.default_rng(seed)
    driver = rng.choice(np.linspace(0.0, 1.0, 6), size=n)
    partner = rng.choice([0.0, 0.25, 0.5], size=n)
    inert = rng.choice(SCHEMES, size=n)
    value = driver * (1.0 + partner) + rng.normal(0.0, 0.02, size=n)
    return pd.DataFrame({"driver": driver, "partner": partner, "inert": inert,
                         "objective": np.minimum(value, ceiling)})


def main_job_grid() -> pd.DataFrame:
    """α × switch-off epoch × label scheme as the main job ran it: switching off late (or never)
    moves rare-feature accuracy from 0.32 to ~1, α only by a few points, and every trial that
    reaches 1.0 has α = 1 (the tie PED-ANOVA's top 10% is cut inside)."""
    base = {0: 0.32, 200: 0.6, 300: 0.8, 500: 1.0, None: 1.0}
    alpha_cost = {0.1: 0.08, 1.0: 0.0, 4.0: 0.04}
    rows = []
    for alpha, stop, scheme in itertools.product(alpha_cost, base, SCHEMES):
        value = base[stop] if stop == 0 else base[stop] - alpha_cost[alpha]
        rows.append({"mixup.alpha": alpha, "mixup.stop_epoch": stop,
                     "mixup.label_scheme": scheme,
                     "objective": value - 0.005 * SCHEMES.index(scheme) * (value < 1.0)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["fanova", "ped-anova"])
def test_the_driver_ranks_first_and_the_inert_key_last(method: str) -> None:
    result = importance(driven_trials(150), KEYS, "objective", "max", method=method,
                        resamples=5)
    assert result.method == method and result.reason is None
    assert result.ranking() == ["driver", "partner", "inert"], result
    assert result.n == result.population == 150 and not result.subsampled
    assert sum(e.share for e in result.keys) == pytest.approx(1.0)


def test_every_share_has_an_interval_over_bootstrap_resamples() -> None:
    result = importance(driven_trials(150), KEYS, "objective", "max", resamples=20, seed=3)
    distinct = len(driven_trials(150).drop(columns="objective").drop_duplicates())
    assert result.resamples == min(20, importance_module.REFIT_BUDGET["fanova"] // distinct) >= 10
    assert result.seed == 3
    for entry in result.keys:
        assert 0.0 <= entry.low <= entry.mean <= entry.high <= 1.0, entry
    # the driver's interval lies above the others': the ranking is not an accident of the draw
    assert result["driver"].low > max(result["partner"].high, result["inert"].high)


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_intervals() -> None:
    trials = driven_trials(120)
    first = importance(trials, KEYS, "objective", "max", resamples=5, seed=0)
    assert importance(trials, KEYS, "objective", "max", resamples=5, seed=0) == first
    other = importance(trials, KEYS, "objective", "max", resamples=5, seed=1)
    assert [e.low for e in other.keys] != [e.low for e in first.keys]


def test_trials_without_a_finite_objective_are_left_out_of_n() -> None:
    trials = driven_trials(120)
    trials.loc[:9, "objective"] = math.nan
    assert importance(trials, KEYS, "objective", "max", resamples=0).n == 110


def test_ped_anova_is_refused_inside_a_tie_at_the_top_and_the_driver_still_ranks_first() -> None:
    trials = driven_trials(200, ceiling=1.0)
    tied = int((trials["objective"] == 1.0).sum())
    assert tied > 20  # many more than PED-ANOVA's top 10% (20 trials)
    result = importance(trials, KEYS, "objective", "max", method="ped-anova", resamples=5)
    assert result.fell_back and result.method == "fanova" and result.requested == "ped-anova"
    assert result.reason is not None and f"inside a tie of {tied} trials at 1" in result.reason
    assert result.ranking()[0] == "driver" and result.ranking()[-1] == "inert", result


def test_resamples_are_cut_to_the_refit_budget_and_below_the_minimum_there_is_no_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    trials = driven_trials(120)  # 72 distinct configurations at most
    monkeypatch.setitem(importance_module.REFIT_BUDGET, "fanova", 72 * 6)
    result = importance(trials, KEYS, "objective", "max", resamples=20)
    assert 6 <= result.resamples < 20
    assert result.resample_note is not None and "distinct configurations" in result.resample_note
    monkeypatch.setitem(importance_module.REFIT_BUDGET, "fanova", 100)
    result = importance(trials, KEYS, "objective", "max", resamples=20)
    assert result.resamples == 0 and result.resample_note is not None
    assert all(e.low == e.mean == e.high == e.share for e in result.keys)


@pytest.mark.parametrize("method", ["fanova", "ped-anova"])
def test_a_large_sweep_is_explained_from_a_seeded_subsample_that_says_so(method: str) -> None:
    trials = driven_trials(3000)
    result = importance(trials, KEYS, "objective", "max", method=method, resamples=5)
    assert result.method == method and result.population == 3000
    assert result.n == importance_module.MAX_FIT_TRIALS[method] and result.subsampled
    assert result.rests_on == f"n = {result.n} of 3000 trials (a seeded subsample)"
    assert result.ranking() == ["driver", "partner", "inert"], result
    assert importance(trials, KEYS, "objective", "max", method=method, resamples=5) == result


def test_ped_anova_is_judged_on_every_trial_not_on_the_subsample() -> None:
    trials = driven_trials(3000, ceiling=1.0)  # ~1/3 tie at 1.0: far more than the top 10%
    result = importance(trials, KEYS, "objective", "max", method="ped-anova", resamples=0)
    assert result.fell_back and "of 3000 trials" in str(result.reason), result.reason
    assert result.population == 3000 and result.n == importance_module.MAX_FIT_TRIALS["fanova"]


def test_ped_anova_is_refused_when_its_top_quantile_holds_too_few_trials() -> None:
    values = np.linspace(0.0, 1.0, 50)  # top 10% = 5 trials
    reason = ped_anova_refusal(values, "max")
    assert reason is not None and "5 trial(s)" in reason and str(MIN_TOP_TRIALS) in reason
    assert ped_anova_refusal(np.linspace(0.0, 1.0, 100), "max") is None


def test_a_tie_below_the_top_quantile_does_not_refuse_ped_anova() -> None:
    values = np.concatenate([np.linspace(0.5, 1.0, 20), np.zeros(80)])  # tie at the bottom
    assert ped_anova_refusal(values, "max") is None
    assert ped_anova_refusal(values, "min") is not None  # for "min" the zeros are the top


@pytest.mark.parametrize("method", ["fanova", "ped-anova"])
def test_on_the_main_jobs_grid_the_switch_off_epoch_ranks_first(method: str) -> None:
    keys = ["mixup.alpha", "mixup.stop_epoch", "mixup.label_scheme"]
    result = importance(main_job_grid(), keys, "objective", "max", method=method)
    assert result.method == "fanova"  # PED-ANOVA's top 6 of 60 would end inside the tie
    assert result.ranking()[0] == "mixup.stop_epoch", result
    assert result["mixup.stop_epoch"].low > result["mixup.alpha"].high


def test_unrefused_ped_anova_ranks_alpha_first_on_the_main_jobs_grid() -> None:
    """The pathology the refusal exists for, reproduced: Optuna's PED-ANOVA run anyway."""
    from sweeps.importance import _plain
    from sweeps.optuna_adapter import fanova_importances

    keys = ["mixup.alpha", "mixup.stop_epoch", "mixup.label_scheme"]
    grid = main_job_grid()
    configs = [{k: _plain(v) for k, v in row.items()} for row in grid[keys].to_dict("records")]
    shares, _, _ = fanova_importances(configs, keys, list(grid["objective"]), maximize=True,
                                      seed=0, method="ped-anova")
    assert shares is not None and max(shares, key=shares.__getitem__) == "mixup.alpha", shares


def made_up_sweep(trials: pd.DataFrame, keys: list[str]) -> SweepData:
    """The report's view of a made-up trials table (objective ``val/acc_rare``, maximized)."""
    ids = [f"t{i:03d}" for i in range(len(trials))]
    table = pd.DataFrame({"trial_id": ids, "status": "TERMINATED"})
    for key in keys:
        table[CONFIG_PREFIX + key] = trials[key].to_numpy()
    table[BEST_PREFIX + "val/acc_rare"] = trials["objective"].to_numpy()
    table[LAST_PREFIX + "val/acc_rare"] = trials["objective"].to_numpy() - 0.01
    epochs = pd.DataFrame({"trial_id": ids, "epoch": 10, "val/acc_rare": trials["objective"]})
    return SweepData.from_tables("made_up", table, epochs, objective="val/acc_rare", mode="max")


def test_the_figure_states_n_the_estimator_its_interval_and_why_ped_anova_was_refused() -> None:
    keys = ["mixup.alpha", "mixup.stop_epoch", "mixup.label_scheme"]
    section = fig_importance.parameter_importance(made_up_sweep(main_job_grid(), keys),
                                                  "ped-anova")
    assert section.figure is not None
    assert section.title == "Parameter importance (fANOVA; PED-ANOVA refused)"
    assert "60 trials" in section.caption and "bootstrap resamples" in section.caption
    assert "PED-ANOVA was asked for but not used" in section.caption
    assert "inside a tie" in section.caption
    (ax,) = section.figure.axes
    assert "n = 60" in ax.get_title() and "Not PED-ANOVA" in ax.get_title()
    bars = {t.get_text(): p.get_width()
            for t, p in zip(ax.get_yticklabels(), ax.containers[0], strict=True)}
    assert max(bars, key=bars.__getitem__) == "switch-off epoch", bars
    assert sum(bars.values()) == pytest.approx(1.0, abs=0.02)
    assert len(ax.containers) == 4  # bars and whiskers for the best and the last epoch


def test_the_figure_draws_ped_anova_where_its_top_quantile_is_sound() -> None:
    section = fig_importance.parameter_importance(made_up_sweep(driven_trials(300), KEYS),
                                                  "ped-anova")
    assert section.title == "Parameter importance (PED-ANOVA)"
    assert "not used" not in section.caption and "300 trials" in section.caption
