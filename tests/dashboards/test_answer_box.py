"""The report opens on the answer: the answer box (best configuration and its ties, the ERM
baseline, per-key means with intervals, one sentence) comes before every figure, and is looked at
in headless Chromium; the Pareto figure is left out, with a note, when its front is degenerate.

Sweeps here are written from made-up records (tests/dashboards/test_dashboards.py's curves):
seconds, no Ray. Chromium must be installed (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from dashboards import answer, fig_pareto, report
from dashboards import labels as L
from dashboards.sweep_data import SweepData, report_data
from sweeps import load_sweep
from tests.browser import Chromium
from tests.dashboards.test_dashboards import curve_trials, grid
from tests.sweep_helpers import write_finished_sweep

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
SEEDS = (0, 1, 2)
SPACE: dict[str, list[Any]] = {"mixup.alpha": [0.0, 0.5, 2.0], "mixup.label_scheme": ["same", "independent"],
                               "mixup.stop_epoch": [0, 20, 40, None]}
MIN_COLOURS = 16  # rendered text and a tinted box have dozens; a blank clip has one


def write_sweep(storage: Path, name: str, space: dict[str, list[Any]],
                curve: Any = None) -> SweepData:
    """A finished grid sweep over ``space`` (made-up curves, 3 seeds) whose spec records its
    searched keys; its report data."""
    points = grid(**{k.split(".", 1)[1]: v for k, v in space.items()})
    spec = {"name": name, "seeds": list(SEEDS), "search": {"algorithm": "grid"},
            "objective": {"metric": "val/acc_rare", "mode": "max"},
            "search_space": {k: {"kind": "grid", "values": v} for k, v in space.items()}}
    records = curve_trials(points, seeds=SEEDS) if curve is None else \
        curve_trials(points, curve, seeds=SEEDS)
    write_finished_sweep(storage, name, records, seeds=SEEDS, spec_text=yaml.safe_dump(spec))
    return report_data(load_sweep(name, storage=storage))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[report.ReportPaths, SweepData]:
    storage = tmp_path_factory.mktemp("answer_box")
    data = write_sweep(storage, "answer_demo", SPACE)
    return report.build_report("answer_demo", storage=storage, mlflow=False), data


def _sentence(data: SweepData) -> str:
    return answer.summaries(data).sentence(name=L.key_name, metric=L.metric_name(data.objective))


# ------------------------------------------------------------------------------- the page


def test_the_page_opens_with_the_answer_then_the_figures_and_the_glossary_after(
        built: tuple[report.ReportPaths, SweepData]) -> None:
    page = built[0].html.read_text()
    answer_at = page.index('<section id="answer">')
    assert answer_at < page.index("<img") < page.index('<section id="about">')
    assert page.index("<b>Metrics:</b>") > page.index("<img")  # the glossary is not first
    assert page.index("<h1>") < answer_at and "<section" not in page[:answer_at]
    assert "key_means" in {p.stem for p in built[0].pngs}


def test_the_answer_box_says_the_best_configuration_its_ties_erm_and_the_sentence(
        built: tuple[report.ReportPaths, SweepData]) -> None:
    data = built[1]
    box = answer.answer_section(data).html or ""
    ranked = data.ranked()
    assert html.escape(ranked[0].label) in box
    tied = answer.ties(data, ranked)
    assert tied > 1 and f"{tied - 1} other configurations tie with it" in box
    erm = next(g for g in ranked if g.kind == "ERM")
    assert f"it ranks {ranked.index(erm) + 1} of {len(ranked)}" in box
    assert "rare-feature test accuracy there" in box  # the test value at the chosen epoch
    assert html.escape(_sentence(data)) in box
    found = answer.summaries(data)
    assert [s.key for s in found.keys] == list(SPACE)
    for summary in found.keys:
        for level in summary.levels:
            assert f"n = {level.points}" in box


def test_a_sweep_without_erm_says_it_has_no_baseline(tmp_path: Path) -> None:
    data = write_sweep(tmp_path, "no_erm", {"mixup.alpha": [0.5, 2.0],
                                            "mixup.stop_epoch": [20, None]})
    box = answer.answer_section(data).html or ""
    assert "ERM baseline:</b> this sweep has no ERM trial" in box
    assert "Reading:" in box


# ------------------------------------------------------------------------------- in Chromium


def test_chromium_shows_the_answer_box_first_and_a_screenshot_of_it_is_not_blank(
        built: tuple[report.ReportPaths, SweepData], tmp_path: Path) -> None:
    paths, data = built
    with Chromium(width=1400, height=1000) as browser:
        browser.goto(paths.html.as_uri())
        rects = browser.evaluate("""(() => {
            const box = e => { const r = e.getBoundingClientRect();
                return {x: r.left + scrollX, y: r.top + scrollY, width: r.width,
                        height: r.height}; };
            return {answer: box(document.querySelector('#answer')),
                    about: box(document.querySelector('#about')),
                    first: document.querySelector('section').id,
                    images: Array.from(document.images).map(box),
                    text: document.querySelector('#answer').textContent};
        })()""")
        answer_box = rects["answer"]
        assert rects["first"] == "answer"
        assert rects["images"] and all(answer_box["y"] + answer_box["height"] <= img["y"]
                                       for img in rects["images"])
        assert answer_box["y"] < rects["about"]["y"]
        text = " ".join(rects["text"].split())
        assert data.ranked()[0].label in text
        assert "ERM baseline: ERM:" in text
        assert " ".join(_sentence(data).split()) in text
        shot = browser.screenshot(tmp_path / "answer_box.png", clip=answer_box)
    print(f"answer box screenshot: {shot}")
    with Image.open(shot) as image:
        assert image.size == (round(answer_box["width"]), round(answer_box["height"]))
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) >= MIN_COLOURS
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report_answer_box.png").write_bytes(shot.read_bytes())


# ------------------------------------------------------------------------------- Pareto


def test_a_degenerate_front_is_named_for_what_it_is() -> None:
    assert "every configuration has common-feature test accuracy 1.0" in (
        fig_pareto.degenerate([(1.0, 0.5), (1.0, 0.9), (1.0, 0.7)]) or "")
    assert "every configuration has rare-feature test accuracy 0.5" in (
        fig_pareto.degenerate([(0.9, 0.5), (1.0, 0.5)]) or "")
    assert "beats every other configuration on both" in (
        fig_pareto.degenerate([(0.9, 0.5), (1.0, 0.9), (0.8, 0.7)]) or "")
    assert fig_pareto.degenerate([(math.nan, 1.0)]) == "no configuration has both accuracies"
    assert fig_pareto.degenerate([(0.9, 0.8), (0.8, 0.9), (0.7, 0.7)]) is None  # a trade-off


def test_the_pareto_figure_is_left_out_with_a_note_when_no_point_trades_off(
        built: tuple[report.ReportPaths, SweepData]) -> None:
    paths, data = built  # common accuracy reaches 1.0 everywhere by the last epoch
    section = fig_pareto.accuracy_pareto(data)
    assert section.figure is None and section.note is not None
    assert "no trade-off" in section.note and "common-feature test accuracy 1.0" in section.note
    assert "pareto_front" not in {p.stem for p in paths.pngs}
    assert any(note.startswith("Pareto front") for note in paths.notes)


def trade_off(config: dict[str, Any], epoch: int, seed: int) -> dict[str, float]:
    """More α: more rare-feature accuracy, less common-feature accuracy."""
    alpha = config["mixup.alpha"]
    rare, common = 0.5 + 0.2 * alpha - 0.01 * seed, 1.0 - 0.1 * alpha - 0.01 * seed
    return {"test/acc_rare": rare, "test/acc_common": common, "val/acc_rare": rare,
            "test/acc": (rare + common) / 2, "mixup/active": 1.0}


def test_the_pareto_figure_is_drawn_where_configurations_trade_off(tmp_path: Path) -> None:
    data = write_sweep(tmp_path, "trade", {"mixup.alpha": [0.5, 1.0, 2.0]}, trade_off)
    section = fig_pareto.accuracy_pareto(data)
    assert section.figure is not None and section.note is None
