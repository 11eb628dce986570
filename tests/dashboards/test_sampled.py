"""Sampled sweeps drawn as sampled (slice plots on each key's scale, the search history) and grids
as grids (a heatmap whose cells give n and the spread, merged trials in every cell they stand
for, chance marked). Sweeps are written from made-up records; figures are read through their
artists, never their pixels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure

from dashboards import fig_heatmap, fig_sampled, report
from dashboards.sweep_data import SweepData, report_data
from mixup_core.config import TrialConfig, to_flat
from sweeps import load_sweep
from sweeps.spec import parse_spec
from sweeps.store.records import TrialRecord
from tests.sweep_helpers import write_finished_sweep

EPOCHS = (10, 20, 30, 40)
SEEDS = (0, 1)
BASE = {**to_flat(TrialConfig()), "optim.epochs": 40}


def curve(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """Mixup kept past epoch 20 learns the rare feature; ERM and early switch-off do not."""
    stop = config["mixup.stop_epoch"]
    mixing = config["mixup.alpha"] > 0 and stop != 0
    rare = (0.95 if mixing and epoch > 20 and (stop is None or stop > 20) else 0.45) \
        - 0.02 * seed + 0.001 * config["mixup.alpha"]
    return {"test/acc_rare": rare, "test/acc_common": 1.0, "val/acc_rare": rare - 0.01,
            "val/loss": 1.0 / epoch}


def record(trial_id: str, point: dict[str, Any],
           merged: Sequence[dict[str, Any]] = ()) -> TrialRecord:
    config = {**BASE, **point}
    epochs = {}
    for epoch in EPOCHS:
        per_seed = [curve(config, epoch, s) for s in SEEDS]
        metrics: dict[str, float] = {"epoch": float(epoch)}
        for key in per_seed[0]:
            values = [m[key] for m in per_seed]
            metrics[key] = float(np.mean(values))
            metrics[key + "_std"] = float(np.std(values, ddof=1))
        epochs[epoch] = metrics
    return TrialRecord(trial_id, config, status="TERMINATED", epochs=epochs, merged=list(merged))


def sweep(storage: Path, name: str, tree: dict[str, Any], records: list[TrialRecord]) -> SweepData:
    tree = {"name": name, "seeds": list(SEEDS),
            "objective": {"metric": "val/acc_rare", "mode": "max"}, **tree}
    write_finished_sweep(storage, name, records, seeds=SEEDS, spec_text=yaml.safe_dump(tree))
    return report_data(load_sweep(name, storage=storage))


SAMPLED_SPACE = {"mixup.alpha": {"kind": "loguniform", "low": 0.05, "high": 8.0},
                 "mixup.label_scheme": {"kind": "choice", "values": ["same", "power"]},
                 "mixup.stop_epoch": {"kind": "choice", "values": [10, 30, None]}}


@pytest.fixture(scope="module")
def tpe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SweepData]:
    """A TPE-like sweep: 12 trials, α drawn on a log scale, two choice keys."""
    storage = tmp_path_factory.mktemp("sampled")
    points = [{"mixup.alpha": 0.05 * 160 ** (((7 * i) % 12) / 11),
               "mixup.label_scheme": ("same", "power")[i % 2],
               "mixup.stop_epoch": (10, 30, None)[i % 3]} for i in range(12)]
    records = [record(f"tpe_{i:02d}", p) for i, p in enumerate(points)]
    tree = {"search": {"algorithm": "optuna", "num_samples": 12}, "search_space": SAMPLED_SPACE}
    return storage, sweep(storage, "tpe", tree, records)


def _axes(figure: Figure | None) -> dict[str, Any]:
    """The figure's data panels by their title's key name (the part before " ("), no colour bars."""
    assert figure is not None
    return {ax.get_title().split(" (")[0]: ax for ax in figure.axes if ax.get_title()}


def test_a_sampled_sweep_gets_slice_plots_on_each_keys_scale_with_n(
        tpe: tuple[Path, SweepData]) -> None:
    data = tpe[1]
    section = fig_sampled.search_slices(data)
    panels = _axes(section.figure)
    assert set(panels) == {"α", "label scheme", "switch-off epoch"}
    assert panels["α"].get_xscale() == "log"  # loguniform
    for name, ax in panels.items():
        assert ax.get_title().endswith("n = 12"), name
    # a choice key's values are categories in their order, "never" last
    ticks = [t.get_text() for t in panels["switch-off epoch"].get_xticklabels()]
    assert ticks == ["10", "30", "never"]
    assert panels["label scheme"].get_xscale() == "linear"
    # every trial once per panel, at its own α
    offsets = panels["α"].collections[1].get_offsets()  # [0]: the seed-std bars
    assert sorted(np.asarray(offsets)[:, 0]) == pytest.approx(
        sorted(data.trials["config/mixup.alpha"]))


def test_the_search_history_draws_each_trial_in_start_order_and_the_best_so_far(
        tpe: tuple[Path, SweepData]) -> None:
    data = tpe[1]
    section = fig_sampled.search_history(data)
    assert section.figure is not None
    [ax] = section.figure.axes
    assert "n = 12 trials" in ax.get_title()
    points = np.asarray(ax.collections[0].get_offsets())
    started = data.trials.sort_values("started_at")["best/val/acc_rare"].to_numpy()
    assert list(points[:, 0]) == list(range(1, 13)) and points[:, 1] == pytest.approx(started)
    [best] = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert np.asarray(best.get_ydata()) == pytest.approx(np.maximum.accumulate(started))
    assert "optuna-dashboard" in section.caption


def test_a_sampled_alpha_is_no_heatmap_row_and_the_report_shows_the_slices(
        tpe: tuple[Path, SweepData]) -> None:
    storage, data = tpe
    section = fig_heatmap.rare_heatmap(data)
    assert section.figure is None and section.note is not None
    assert "α (loguniform) sampled" in section.note and "slice plots" in section.note
    paths = report.write_report(data, storage / "tpe" / "report")
    drawn = {p.stem for p in paths.pngs}
    assert {"search_slices", "search_history"} <= drawn and "rare_accuracy_heatmap" not in drawn


GRID_SPACE = {"mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 2.0]},
              "mixup.label_scheme": {"kind": "grid", "values": ["same", "power"]},
              "mixup.stop_epoch": {"kind": "grid", "values": [0, 30, None]}}


@pytest.fixture(scope="module")
def merged_grid(tmp_path_factory: pytest.TempPathFactory) -> SweepData:
    """α × label scheme × switch-off epoch, 18 grid points; the 10 ERM points (α = 0, or
    switch-off 0) are one trial, as the planner merges them."""
    tree = {"search": {"algorithm": "grid"}, "search_space": GRID_SPACE}
    plan = parse_spec({"name": "grid", **tree}, source="test").grid_trials()
    records = [record(f"grid_{i:02d}", t.point, [dict(p) for p in t.merged])
               for i, t in enumerate(plan)]
    assert [1 + len(r.merged) for r in records] == [10] + [1] * 8
    return sweep(tmp_path_factory.mktemp("grid"), "grid", tree, records)


def _cells(ax: Any) -> tuple[np.ma.MaskedArray, dict[tuple[int, int], str]]:
    """A heatmap panel's values (masked: grey) and its cell texts by (row, column)."""
    values = np.ma.masked_invalid(ax.images[0].get_array())
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    return values, texts


def test_a_merged_erm_trial_fills_every_cell_it_stands_for(merged_grid: SweepData) -> None:
    section = fig_heatmap.rare_heatmap(merged_grid)
    panels = [ax for ax in section.figure.axes if ax.images]  # type: ignore[union-attr]
    assert len(panels) == 4  # two label schemes × last and chosen epoch
    erm = merged_grid.trials.loc[merged_grid.trials["stands_for"] == 10].iloc[0]
    for ax in panels:
        values, texts = _cells(ax)
        assert values.shape == (3, 3) and not values.mask.any()  # no grey cell
        scope = "last" if "last" in ax.get_title() else "best"
        # rows α = 0, 0.5, 2; columns switch-off 0, 30, never: the α = 0 row and the
        # switch-off 0 column are the one ERM trial
        for cell in [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)]:
            assert values[cell] == pytest.approx(erm[f"{scope}/test/acc_rare"])
            assert texts[cell].endswith("n=2")


def test_each_heatmap_cell_shows_its_spread_and_n_and_chance_is_marked(
        merged_grid: SweepData) -> None:
    section = fig_heatmap.rare_heatmap(merged_grid)
    figure = section.figure
    assert figure is not None
    [ax] = [a for a in figure.axes if a.images and a.get_title() == "same labels, at the last epoch"]
    values, texts = _cells(ax)
    row = merged_grid.trials.set_index("trial_id")
    trial = row[(row["config/mixup.alpha"] == 2.0) & (row["config/mixup.label_scheme"] == "same")
                & row["config/mixup.stop_epoch"].isna()].iloc[0]
    mean, std = trial["last/test/acc_rare"], trial["last/test/acc_rare_std"]
    assert texts[(2, 2)] == f"{mean:.2f}\n±{std:.2f}\nn=2"
    # the feature-noise task's K = 2 classes: chance 0.5 on the colour bar, cells below it outlined
    assert "Chance accuracy (0.5 = 1/K" in section.caption
    bar = [a for a in figure.axes if not a.images and not a.get_title()]
    assert any(np.array_equal(np.asarray(line.get_ydata()), [0.5, 0.5])
               for a in bar for line in a.get_lines())
    below = int((values < 0.5).sum())
    assert below > 0 and len(ax.patches) == below


def test_a_grid_leaves_the_sampled_figures_out_with_a_note(merged_grid: SweepData) -> None:
    for make in (fig_sampled.search_slices, fig_sampled.search_history):
        section = make(merged_grid)
        assert section.figure is None and section.note is not None and "grid" in section.note


def test_chance_is_unknown_for_an_image_data_set(tmp_path: Path) -> None:
    records = [record(f"img_{i}", {"mixup.alpha": a, "mixup.stop_epoch": None,
                                   "data.name": "digits"}) for i, a in enumerate([0.5, 1.0])]
    tree = {"search": {"algorithm": "grid"},
            "search_space": {"mixup.alpha": {"kind": "grid", "values": [0.5, 1.0]}}}
    data = sweep(tmp_path, "img", tree, records)
    assert fig_heatmap.chance_accuracy(data) is None
    section = fig_heatmap.rare_heatmap(data)
    assert section.figure is not None and "Chance accuracy is not marked" in section.caption
    values = section.figure.axes[0].images[0].get_array()
    assert values is not None and np.isfinite(values).all()  # every cell drawn
