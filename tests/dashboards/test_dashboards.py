"""The sweep report from Parquet records: grouping, figures, the HTML page, MLflow artifacts.

Sweeps here are written straight into a sweep folder from made-up records (fast, and every
shape can be built: ERM merging, real-data tables without ``features/*``, degenerate grids).
The report of a real sweep, opened in a real browser, is in test_browser.py.
"""

from __future__ import annotations

import base64
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboards import fig_importance, report
from dashboards.fig_pareto import pareto_front
from dashboards.sweep_data import _pool, report_data
from mixup_cli.main import main
from mixup_core.config import TrialConfig, to_flat
from sweeps import load_sweep
from sweeps.store.records import TrialRecord
from tests.conftest import free_port
from tests.sweep_helpers import write_finished_sweep

EPOCHS = (10, 20, 30, 40, 50, 60)
BUDGET = 60
SEEDS = (0, 1)
Curve = Callable[[dict[str, Any], int, int], dict[str, float]]


def feature_noise_curve(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """Made-up metrics with the paper's shape: Mixup learns the rare feature after epoch 20
    and keeps it when switched off after 30; ERM never learns it."""
    stop = config["mixup.stop_epoch"]
    mixing = config["mixup.alpha"] > 0 and stop != 0
    learned = mixing and epoch > 20 and (stop is None or stop > 30)
    rare = (0.95 if learned else 0.5) - 0.02 * seed + 0.01 * config["mixup.alpha"]
    common = min(1.0, 0.6 + epoch / 100)
    return {
        "train/loss": 1.0 / epoch, "test/loss": 1.0 / epoch + 0.1, "test/acc": 0.9 * common + 0.1 * rare,
        "test/acc_common": common, "test/acc_rare": rare,
        "val/loss": 1.0 / epoch + 0.12, "val/acc": 0.9 * common + 0.1 * rare - 0.01,
        "val/acc_common": common, "val/acc_rare": rare - 0.01 * (epoch == 40),
        "features/rare_alignment": (0.02 * epoch if learned else 0.01),
        "features/common_alignment": 0.03 * epoch,
        "mixup/active": float(mixing and (stop is None or epoch < stop)),
    }


def real_data_curve(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """A real-data sweep: same metric names, no rare/common split and no ``features/*``."""
    acc = 0.5 + epoch / 200 + 0.05 * config["mixup.alpha"] - 0.01 * seed
    return {"train/loss": 1.0 / epoch, "test/loss": 1.0 / epoch, "test/acc": acc,
            "test/acc_common": acc, "test/acc_rare": math.nan, "val/acc": acc - 0.01,
            "val/acc_common": acc - 0.01, "val/acc_rare": math.nan, "mixup/active": 1.0}


def _record(trial_id: str, config: dict[str, Any], curve: Curve, seeds: list[int]) -> TrialRecord:
    epochs = {}
    for epoch in EPOCHS:
        per_seed = [curve(config, epoch, s) for s in seeds]
        metrics: dict[str, float] = {"epoch": float(epoch)}
        for key in per_seed[0]:
            values = [m[key] for m in per_seed]
            mean = sum(values) / len(values)
            metrics[key] = mean
            if len(values) > 1:  # the sample std, as sweeps.execution.seed_group reports it
                metrics[key + "_std"] = math.sqrt(sum((v - mean) ** 2 for v in values)
                                                  / (len(values) - 1))
        epochs[epoch] = metrics
    return TrialRecord(trial_id, config, status="TERMINATED", epochs=epochs)


def curve_trials(points: list[dict[str, Any]], curve: Curve = feature_noise_curve,
                 seeds: tuple[int, ...] = SEEDS) -> list[TrialRecord]:
    """One finished trial per point (on the default config, a budget of BUDGET epochs), reporting
    ``curve`` averaged over ``seeds`` at each of EPOCHS."""
    base = {**to_flat(TrialConfig()), "optim.epochs": BUDGET}
    return [_record(f"abc12_{i:05d}", {**base, **point}, curve, list(seeds))
            for i, point in enumerate(points)]


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for key, values in axes.items():
        points = [{**p, f"mixup.{key}": v} for p in points for v in values]
    return points


MAIN_GRID = grid(alpha=[0.0, 0.5, 2.0], label_scheme=["same", "independent"],
                 stop_epoch=[0, 20, 40, None])


@pytest.fixture(scope="module")
def main_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, report.ReportPaths]:
    """A sweep shaped like the main job (α × label scheme × switch-off epoch) and its report."""
    storage = tmp_path_factory.mktemp("storage")
    write_finished_sweep(storage, "main_like", curve_trials(MAIN_GRID), seeds=SEEDS)
    return storage, report.build_report("main_like", storage=storage, mlflow=False)


# ------------------------------------------------------------------------------- grouping


def test_erm_trials_merge_into_one_group_named_erm(main_like: tuple[Path, Any]) -> None:
    data = report_data(load_sweep("main_like", storage=main_like[0]))
    erm = [g for g in data.groups if g.kind == "ERM"]
    assert [g.label for g in erm] == ["ERM"]
    # α = 0 (any scheme, any stop) and stop 0 (any α, any scheme): 8 + 4 trials
    assert len(erm[0].trial_ids) == 12
    assert data.groups[0] is erm[0]
    labels = {g.label for g in data.groups}
    assert "α = 0.5 · same labels · switched off at 20" in labels
    assert "α = 2 · independent labels · Mixup throughout" in labels
    assert len(data.groups) == 1 + 2 * 2 * 3


def test_varying_keys_are_the_searched_ones_in_the_papers_order(main_like: tuple[Path, Any]) -> None:
    data = report_data(load_sweep("main_like", storage=main_like[0]))
    assert data.varying == ["mixup.alpha", "mixup.label_scheme", "mixup.stop_epoch"]
    assert data.seeds == [0, 1]


def test_pooled_std_is_the_std_over_all_seeds_of_the_group() -> None:
    # two trials with seeds {1, 3} and {5, 7}: mean 4, population std over 1, 3, 5, 7
    mean, std = _pool(pd.Series([2.0, 6.0]), pd.Series([1.0, 1.0]))
    assert mean == 4.0
    assert std == pytest.approx(math.sqrt(5.0))


def test_best_group_is_a_mixup_configuration_that_keeps_the_rare_feature(
        main_like: tuple[Path, Any]) -> None:
    data = report_data(load_sweep("main_like", storage=main_like[0]))
    best = data.best_group()
    assert best is not None and best.kind != "ERM"
    assert best.value("mixup.stop_epoch") in (40, None)


# ------------------------------------------------------------------------------- the report


def test_report_writes_every_figure_and_one_page_into_the_sweep_folder(
        main_like: tuple[Path, report.ReportPaths]) -> None:
    storage, paths = main_like
    assert paths.html == (storage / "main_like" / "report" / "report.html").resolve()
    # a grid: no slice plots or search history (the heatmap and per-key means show it); the
    # main job's Pareto front shows no trade-off (every configuration at common accuracy 1.0)
    skipped = {"search_slices", "search_history", "pareto_front"}
    assert [p.stem for p in paths.pngs] == [s for s in report.FIGURE_SLUGS if s not in skipped]
    assert len(paths.notes) == len(skipped)
    assert any("A grid" in note for note in paths.notes)
    assert any("no trade-off" in note for note in paths.notes)
    for png in paths.pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths.csv is not None and paths.csv.is_file()


def test_page_is_self_contained_with_every_figure_embedded(
        main_like: tuple[Path, report.ReportPaths]) -> None:
    paths = main_like[1]
    page = paths.html.read_text()
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", page)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"[^>]*data-png="([^"]+)"'
                        r' width="(\d+)" height="(\d+)"', page)
    assert sorted(name for _, name, _, _ in images) == sorted(p.name for p in paths.pngs)
    for encoded, name, width, height in images:
        png = paths.html.parent / name
        assert base64.b64decode(encoded) == png.read_bytes()
        assert (int(width), int(height)) == report.page.png_size(png)


def test_page_names_things_as_the_paper_does(main_like: tuple[Path, report.ReportPaths]) -> None:
    page = main_like[1].html.read_text()
    for phrase in ("rare-feature test accuracy", "common-feature test accuracy",
                   "switch-off epoch", "label scheme", "α", "ERM", "Mixup throughout",
                   "Pareto front", "fANOVA", "best epoch", "last epoch"):
        assert phrase in page, phrase
    assert "abc12_00000" in page  # trial ids (the MLflow run names) are listed


def test_best_table_shows_best_and_last_epoch_values_and_keeps_erm(
        main_like: tuple[Path, report.ReportPaths]) -> None:
    table = main_like[1].csv
    assert table is not None
    frame = pd.read_csv(table)
    assert {"best/test/acc_rare", "last/test/acc_rare", "best/test/acc_common",
            "last/test/acc_common", "best/test/acc_rare_std"} <= set(frame.columns)
    assert list(frame["rank"]) == sorted(frame["rank"])
    assert frame["best/test/acc_rare"].is_monotonic_decreasing
    assert "ERM" in set(frame["training"])
    page = main_like[1].html.read_text()
    assert page.count('<tr class="erm">') == 1


def test_report_goes_to_the_folder_given_as_out(tmp_path: Path) -> None:
    write_finished_sweep(tmp_path, "small", curve_trials(grid(alpha=[0.0, 1.0], stop_epoch=[20, None])),
                         seeds=SEEDS)
    paths = report.build_report("small", storage=tmp_path, out=tmp_path / "elsewhere",
                                mlflow=False)
    assert paths.html == (tmp_path / "elsewhere" / "report.html").resolve()
    assert not (tmp_path / "small" / "report").exists()


def test_real_data_sweep_skips_feature_figures_with_a_note(tmp_path: Path) -> None:
    points = grid(alpha=[0.0, 0.4, 1.0], stop_epoch=[20, None])
    write_finished_sweep(tmp_path, "digits", curve_trials(points, real_data_curve), seeds=SEEDS,
                         objective="val/acc")
    paths = report.build_report("digits", storage=tmp_path, mlflow=False)
    drawn = {p.stem for p in paths.pngs}
    assert {"accuracy_curves", "rare_accuracy_heatmap", "parameter_importance"} <= drawn
    assert "feature_alignment" not in drawn and "pareto_front" not in drawn
    assert "search_slices" not in drawn and "search_history" not in drawn  # a grid
    assert len(paths.notes) == 4
    page = paths.html.read_text()
    assert "No feature-alignment metrics" in page
    assert "no rare/common split" in page


def test_stale_figures_of_an_earlier_report_are_removed(tmp_path: Path) -> None:
    write_finished_sweep(tmp_path, "digits", curve_trials(grid(alpha=[0.0, 1.0]), real_data_curve),
                         seeds=SEEDS, objective="val/acc")
    folder = tmp_path / "digits" / "report"
    folder.mkdir()
    (folder / "feature_alignment.png").write_bytes(b"old")
    report.build_report("digits", storage=tmp_path, mlflow=False)
    assert not (folder / "feature_alignment.png").exists()


def test_importance_is_a_note_when_only_one_parameter_varies(tmp_path: Path) -> None:
    write_finished_sweep(tmp_path, "alpha_only", curve_trials(grid(alpha=[0.0, 0.5, 1.0, 2.0])),
                         seeds=SEEDS)
    paths = report.build_report("alpha_only", storage=tmp_path, mlflow=False)
    assert "parameter_importance" not in {p.stem for p in paths.pngs}
    assert any("only α varies" in note for note in paths.notes)


def flat_curve(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    return {**feature_noise_curve(config, epoch, seed), "val/acc_rare": 0.5}


def test_importance_is_a_note_when_every_trial_scores_the_same(tmp_path: Path) -> None:
    points = grid(alpha=[0.0, 1.0], stop_epoch=[20, None])
    write_finished_sweep(tmp_path, "flat", curve_trials(points, flat_curve), seeds=SEEDS)
    section = fig_importance.parameter_importance(report_data(load_sweep("flat", storage=tmp_path)))
    assert section.figure is None
    assert section.note is not None and "every trial reached the same" in section.note


def test_importance_ranks_the_switch_off_epoch_first_when_it_drives_the_objective(
        tmp_path: Path) -> None:
    points = grid(label_scheme=["same", "independent"], stop_epoch=[20, 25, 40, 50, None])
    write_finished_sweep(tmp_path, "stop_matters", curve_trials(points), seeds=SEEDS)
    data = report_data(load_sweep("stop_matters", storage=tmp_path))
    for method in ("ped-anova", "fanova"):  # fANOVA is the report's default
        section = fig_importance.parameter_importance(data, method, resamples=5)
        assert section.figure is not None
        # 10 trials: PED-ANOVA's top 10 % is one trial, too few, so fANOVA is drawn and says why
        assert section.title.startswith("Parameter importance (fANOVA")
        if method == "ped-anova":
            assert "PED-ANOVA was asked for but not used" in section.caption
        bars = {t.get_text(): p.get_width() for ax in section.figure.axes
                for t, p in zip(ax.get_yticklabels(), ax.containers[0], strict=True)}
        assert max(bars, key=bars.__getitem__) == "switch-off epoch", (method, bars)
        assert sum(bars.values()) == pytest.approx(1.0, abs=0.02)


def test_continuous_search_is_drawn_as_slices_not_a_heatmap(tmp_path: Path) -> None:
    points = [{"mixup.alpha": 0.1 + 0.2 * i, "mixup.stop_epoch": 10 + 3 * i} for i in range(14)]
    write_finished_sweep(tmp_path, "tpe", curve_trials(points, seeds=(0,)), seeds=(0,))
    paths = report.build_report("tpe", storage=tmp_path, mlflow=False)
    drawn = {p.stem for p in paths.pngs}
    assert "rare_accuracy_heatmap" not in drawn  # 14 sampled values: not a grid's rows
    assert {"search_slices", "search_history"} <= drawn
    assert any("slice" in note for note in paths.notes), paths.notes


def test_pareto_front_keeps_exactly_the_undominated_points() -> None:
    points = [(0.9, 0.5), (1.0, 0.5), (1.0, 1.0), (0.95, 0.99), (1.0, 1.0), (math.nan, 2.0)]
    assert pareto_front(points) == [2, 4]
    assert pareto_front([(0.9, 0.8), (0.8, 0.9)]) == [0, 1]


# ------------------------------------------------------------------------------- MLflow


def test_report_is_logged_as_artifacts_of_the_parent_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("mixup-sweeps/logged",
                                          artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment, run_name="logged").info.run_id
    write_finished_sweep(tmp_path, "logged", curve_trials(grid(alpha=[0.0, 1.0], stop_epoch=[20, None])),
                         seeds=SEEDS, tracking_uri=uri, parent_run_id=parent)
    paths = report.build_report("logged", storage=tmp_path)
    logged = {Path(a.path).name for a in client.list_artifacts(parent, report.ARTIFACT_PATH)}
    assert logged == {p.name for p in paths.files}


def test_unreachable_mlflow_is_one_warning_line_and_the_report_is_still_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    write_finished_sweep(tmp_path, "offline", curve_trials(grid(alpha=[0.0, 1.0])), seeds=SEEDS,
                         tracking_uri=uri)
    paths = report.build_report("offline", storage=tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: report not logged to MLflow")
    assert uri in err[0]
    assert paths.html.is_file()


def test_a_missing_sqlite_store_is_not_created_by_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "gone" / "mlflow.db"
    write_finished_sweep(tmp_path, "nostore", curve_trials(grid(alpha=[0.0, 1.0])), seeds=SEEDS,
                         tracking_uri=f"sqlite:///{store}")
    report.build_report("nostore", storage=tmp_path)
    assert "does not exist" in capsys.readouterr().err
    assert not store.exists()


def test_main_prints_the_page_and_the_skipped_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_finished_sweep(tmp_path, "digits", curve_trials(grid(alpha=[0.0, 1.0]), real_data_curve),
                         seeds=SEEDS, objective="val/acc")
    code = main(["report", "digits", "--storage", str(tmp_path), "--no-mlflow"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].endswith("report.html")
    skipped = [line for line in lines if line.startswith("  skipped:")]
    assert len(skipped) == 5  # no features, no rare split (Pareto), one key (importance), a grid (2)


def test_importing_the_report_loads_neither_mlflow_nor_optuna() -> None:
    code = ("import sys, dashboards.report; "
            "print(sorted(m for m in ('mlflow', 'optuna', 'ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
