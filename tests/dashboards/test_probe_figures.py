"""The report of image sweeps: rare vs common accuracy per switch-off epoch, and the probes'
trajectories (``probe/*``, ``test/rare_err_noise``) drawn only where the sweep recorded them.

Sweeps are written straight into a sweep folder from made-up records, as in test_dashboards.py:
image-trial configs (``planted_glyphs``, ``mnist5k`` with a view), several switch-off epochs,
two seeds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dashboards import fig_curves, report
from dashboards import labels as L
from dashboards.sweep_data import SweepData, report_data
from sweeps import load_sweep
from tests.dashboards.test_dashboards import SEEDS, Curve, curve_trials, grid
from tests.sweep_helpers import write_finished_sweep

STOPS = [0, 10, 30, None]
SCHEMES = ["independent", "same"]  # the order of the panels (value_order)
#: The legend entries of one panel: ERM, then each switch-off epoch, then "never".
LINES = ["ERM", "10", "30", L.NEVER]
PROBE = fig_curves.PROBE_SLUG


def image_curve(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """Made-up image metrics with the paper's shape: Mixup learns the rare glyph after epoch 20
    and keeps it when switched off after that (30, never), not before (10); ERM memorises."""
    stop = config["mixup.stop_epoch"]
    mixing = config["mixup.alpha"] > 0 and stop != 0
    learned = mixing and epoch > 20 and (stop is None or stop > 20)
    rare = (0.9 if learned else 0.3) - 0.02 * seed
    common = min(1.0, 0.7 + epoch / 200)
    return {
        "train/loss": 1.0 / epoch, "train/acc": 1.0, "test/loss": 1.0 / epoch + 0.1,
        "test/acc": 0.9 * common + 0.1 * rare, "test/acc_common": common, "test/acc_rare": rare,
        "val/loss": 1.0 / epoch + 0.1, "val/acc": 0.9 * common + 0.1 * rare,
        "val/acc_common": common, "val/acc_rare": rare - 0.01,
        "mixup/active": float(mixing and (stop is None or epoch < stop)),
        "probe/rare_glyph": (0.8 if learned else 0.2) - 0.02 * seed,
        "probe/memorise": 0.1 if learned else 0.9 - 0.01 * seed,
        "probe/ridge_rare": 0.85 if learned else 0.4,
        "test/rare_err_noise": 0.3 if learned else 0.7,
        "val/rare_err_noise": 0.3 if learned else 0.7,
    }


def without_probes(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """An image sweep whose data report no probe: some names absent, the others all NaN."""
    metrics = image_curve(config, epoch, seed)
    for name in ("probe/rare_glyph", "probe/ridge_rare"):
        del metrics[name]
    for name in ("probe/memorise", "test/rare_err_noise", "val/rare_err_noise"):
        metrics[name] = math.nan
    return metrics


def ridge_only(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """Only the ridge probe recorded; the rare-glyph probe all NaN, the others absent."""
    metrics = image_curve(config, epoch, seed)
    for name in ("probe/memorise", "test/rare_err_noise", "val/rare_err_noise"):
        del metrics[name]
    metrics["probe/rare_glyph"] = math.nan
    return metrics


def image_points(data: dict[str, Any], schemes: list[str] = SCHEMES) -> list[dict[str, Any]]:
    """α = 1 × label scheme × switch-off epoch (0 = ERM, None = kept on) on image data."""
    return [{**point, "model.name": "small_cnn", "mixup.alpha": 1.0, **data}
            for point in grid(label_scheme=schemes, stop_epoch=STOPS)]


def write_sweep(storage: Path, name: str, data: dict[str, Any], curve: Curve,
                schemes: list[str] = SCHEMES) -> SweepData:
    write_finished_sweep(storage, name, curve_trials(image_points(data, schemes), curve),
                         seeds=SEEDS)
    return report_data(load_sweep(name, storage=storage))


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepData, report.ReportPaths]:
    """A planted_glyphs sweep reporting every probe, and its report."""
    storage = tmp_path_factory.mktemp("glyphs")
    data = write_sweep(storage, "glyphs", {"data.name": "planted_glyphs"}, image_curve)
    return data, report.build_report("glyphs", storage=storage, mlflow=False)


def curves(ax: Axes) -> list[Line2D]:
    """The metric curves of a panel (not the switch-off marks): lines named by their metric."""
    return [line for line in ax.get_lines() if line.get_gid() is not None]


def legend_entries(figure: Figure) -> tuple[str, list[str]]:
    (legend,) = figure.legends
    return legend.get_title().get_text(), [t.get_text() for t in legend.get_texts()]


def test_report_draws_the_probe_figure_after_the_accuracy_figures(
        glyphs: tuple[SweepData, report.ReportPaths]) -> None:
    paths = glyphs[1]
    drawn = [p.stem for p in paths.pngs]
    assert "accuracy_curves" in drawn and PROBE in drawn
    # in page order: after the (skipped) feature alignment, before the parameter importance
    assert drawn.index("accuracy_curves") < drawn.index(PROBE) < drawn.index("parameter_importance")
    assert not any(fig_curves.PROBE_TITLE in note for note in paths.notes)
    page = paths.html.read_text()
    section = re.search(rf'<section id="{PROBE}"><h2>([^<]+)</h2><figure><img [^>]*'
                        rf'data-png="{PROBE}.png"', page)
    assert section is not None and section.group(1) == fig_curves.PROBE_TITLE
    assert f'href="#{PROBE}"' in page
    for name in L.PROBES:  # the glossary names each metric in words
        assert L.metric_name(name) in page and L.metric_name(name) != name


def test_probe_figure_has_a_row_per_probe_and_a_line_per_switch_off_epoch(
        glyphs: tuple[SweepData, report.ReportPaths]) -> None:
    section = fig_curves.probe_curves(glyphs[0])
    assert section.figure is not None
    axes = section.figure.axes
    assert len(axes) == len(L.PROBES) * len(SCHEMES)  # rows: probes, columns: label schemes
    for i, metric in enumerate(L.PROBES):
        row = axes[i * len(SCHEMES):(i + 1) * len(SCHEMES)]
        assert [ax.get_title() for ax in row] == ["independent labels", "same labels"]
        for ax in row:
            lines = curves(ax)
            assert [line.get_label() for line in lines] == LINES, (metric, ax.get_title())
            assert {line.get_gid() for line in lines} == {metric}
    assert legend_entries(section.figure) == ("switch-off epoch", LINES)
    # the mean over the two seeds: switched off at 30, the rare glyph is kept (0.8 - 0.02 · seed)
    glyph = {line.get_label(): line for line in curves(axes[0])}
    assert list(glyph["30"].get_xdata()) == [10, 20, 30, 40, 50, 60]
    assert glyph["30"].get_ydata()[-1] == pytest.approx(0.79)
    assert glyph["10"].get_ydata()[-1] == pytest.approx(0.19)
    assert all(fig_curves.PROBE_CAPTIONS[m] in section.caption for m in L.PROBES)


def test_rare_and_common_accuracy_per_switch_off_epoch_on_image_trials(
        glyphs: tuple[SweepData, report.ReportPaths]) -> None:
    section = fig_curves.accuracy_curves(glyphs[0])
    assert section.figure is not None
    axes = section.figure.axes
    assert [ax.get_title() for ax in axes] == ["independent labels", "same labels"]
    for ax in axes:
        lines = curves(ax)
        rare = [line for line in lines if line.get_gid() == L.RARE]
        common = [line for line in lines if line.get_gid() == L.COMMON]
        assert len(lines) == len(rare) + len(common) == 2 * len(LINES)
        assert [line.get_label() for line in rare] == LINES
        assert [line.get_label() for line in common] == LINES
        assert {line.get_linestyle() for line in rare} == {"-"}
        assert {line.get_linestyle() for line in common} == {"--"}
    title, names = legend_entries(section.figure)
    assert title == "switch-off epoch"
    assert names == [*LINES, L.metric_name(L.RARE), L.metric_name(L.COMMON)]


def test_sweep_without_probe_metrics_has_no_probe_figure(tmp_path: Path) -> None:
    data = write_sweep(tmp_path, "subclass", {"data.name": "mnist5k", "data.view": "rare_subclass"},
                       without_probes)
    section = fig_curves.probe_curves(data)
    assert section.figure is None and section.note
    folder = tmp_path / "subclass" / "report"
    folder.mkdir()
    (folder / f"{PROBE}.png").write_bytes(b"stale")  # from an earlier report
    paths = report.build_report("subclass", storage=tmp_path, mlflow=False)
    drawn = {p.stem for p in paths.pngs}
    assert "accuracy_curves" in drawn and PROBE not in drawn
    assert not (folder / f"{PROBE}.png").exists()
    assert not any("probe" in note.lower() for note in paths.notes), paths.notes
    page = paths.html.read_text()
    assert f'id="{PROBE}"' not in page and fig_curves.PROBE_TITLE not in page


def test_only_probes_with_values_get_a_panel(tmp_path: Path) -> None:
    data = write_sweep(tmp_path, "views", {"data.name": "mnist5k", "data.view": "multi_view"},
                       ridge_only, schemes=["same"])
    section = fig_curves.probe_curves(data)
    assert section.figure is not None
    (ax,) = section.figure.axes  # the rare-glyph probe is all NaN: no row of its own
    lines = curves(ax)
    assert [line.get_label() for line in lines] == LINES
    assert {line.get_gid() for line in lines} == {L.RIDGE_RARE_PROBE}
    assert fig_curves.PROBE_CAPTIONS[L.RIDGE_RARE_PROBE] in section.caption
    assert fig_curves.PROBE_CAPTIONS[L.RARE_GLYPH_PROBE] not in section.caption
