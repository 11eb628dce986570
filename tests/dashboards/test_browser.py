"""The report and the MLflow UI of a real small sweep, looked at in headless Chromium.

One sweep is run with the real CLI (Ray, MLflow on sqlite, Parquet), its report is built and
logged to the parent run, and a real browser checks what a user would see: every figure
rendered at its size and not blank, the trial ids and metric names on the page; then the
MLflow UI (a React app, served by ``mlflow server``) with the trials nested under the sweep's
parent run, a trial's metrics, the parallel-coordinates comparison, and the logged report; the
page ``mixup-sweep ui NAME`` opens (the trials flat, in the order of ``best``) and the answer on
the parent run's overview.

Screenshots go to ``test-artifacts/browser/`` (git-ignored; CI keeps the folder). Chromium
must be installed (Debian: ``apt-get install -y chromium``): without it these tests fail.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from dashboards.report import ReportPaths, build_report
from sweeps.sweep import Sweep
from tests.browser import Chromium
from tests.conftest import free_port, start_mlflow_server, stop_group, wait_until
from tests.sweep_helpers import CLI, cli_env, mixup_sweep, sweep_runs, write_spec

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
SWEEP = "browser_demo"
MIN_COLOURS = 16  # a rendered chart has hundreds; a blank or broken image has one or two
SERVER_START_S = 90


@dataclass
class RealSweep:
    storage: Path
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    trials: dict[str, str]  # trial id -> child run id
    report: ReportPaths
    names: dict[str, str]  # child run id -> run name (its searched settings, "α=1 same off@10")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> RealSweep:
    """α ∈ {0, 1} × switch-off epoch ∈ {10, never}, 2 seeds, 40 epochs: ERM, Mixup, and
    Mixup switched off; run by the real CLI (~20 s), then reported and logged to MLflow."""
    folder = tmp_path_factory.mktemp("browser_sweep")
    spec = write_spec(folder, SWEEP, search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
        "mixup.stop_epoch": {"kind": "grid", "values": [10, None]}},
        search={"algorithm": "grid", "max_concurrent": 2}, seeds=[0, 1])
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=folder)
    assert out.returncode == 0, out.stderr
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    report = build_report(SWEEP, storage=folder / "res")
    parent, children = sweep_runs(uri, SWEEP)
    return RealSweep(folder / "res", uri, parent.info.experiment_id, parent.info.run_id,
                     {c.data.tags["mixup_sweeps.trial_id"]: c.info.run_id for c in children},
                     report, {c.info.run_id: c.info.run_name for c in children})


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(width=1700, height=1100) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def mlflow_ui(sweep: RealSweep) -> Iterator[str]:
    """``mlflow server`` on the sweep's store, in its own process group; its base URL."""
    server, base = start_mlflow_server(sweep.tracking_uri, sweep.storage, timeout=SERVER_START_S)
    try:
        yield base
    finally:
        stop_group(server)


def _distinct_colours(png: Path) -> int:
    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def _page_text(browser: Chromium) -> str:
    return str(browser.evaluate("document.body.textContent"))


# ------------------------------------------------------------------------------- the report


def test_every_figure_of_the_report_renders_at_its_size_and_is_not_blank(
        browser: Chromium, sweep: RealSweep) -> None:
    browser.goto(sweep.report.html.as_uri())
    images = browser.evaluate("""Array.from(document.images).map(img => {
        const r = img.getBoundingClientRect();
        return {png: img.dataset.png, complete: img.complete, width: img.naturalWidth,
                height: img.naturalHeight, x: r.left + window.scrollX, y: r.top + window.scrollY,
                shownWidth: r.width, shownHeight: r.height};
    })""")
    assert sorted(i["png"] for i in images) == sorted(p.name for p in sweep.report.pngs)
    browser.screenshot(ARTIFACTS / "report_page.png")
    for image in images:
        with Image.open(sweep.report.html.parent / image["png"]) as png:
            size = png.size
        assert image["complete"] and (image["width"], image["height"]) == size, image
        assert image["shownWidth"] > 0
        assert image["shownHeight"] / image["shownWidth"] == pytest.approx(
            size[1] / size[0], rel=0.01)
        shot = browser.screenshot(
            ARTIFACTS / f"report_{Path(image['png']).stem}.png",
            clip={k: image[k] for k in ("x", "y")} | {"width": image["shownWidth"],
                                                      "height": image["shownHeight"]})
        assert _distinct_colours(shot) >= MIN_COLOURS, image["png"]


def test_report_page_shows_the_trial_ids_and_metric_names(browser: Chromium,
                                                          sweep: RealSweep) -> None:
    browser.goto(sweep.report.html.as_uri())
    text = _page_text(browser)
    for trial in sweep.trials:
        assert trial in text
    for phrase in ("test/acc_rare", "test/acc_common", "features/rare_alignment",
                   "rare-feature test accuracy", "common-feature test accuracy",
                   "switch-off epoch", "ERM", "Mixup throughout"):
        assert phrase in text, phrase


def test_screenshot_script_writes_a_full_page_png(sweep: RealSweep, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    done = subprocess.run([sys.executable, "-m", "dashboards.screenshot",
                           str(sweep.report.html), str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        width, height = image.size
    assert width == 1400 and height > 1500
    assert _distinct_colours(out) >= MIN_COLOURS
    (ARTIFACTS / "report_screenshot.png").write_bytes(out.read_bytes())


# ------------------------------------------------------------------------------- MLflow UI


def test_mlflow_ui_lists_the_trials_nested_under_the_sweeps_parent_run(
        browser: Chromium, mlflow_ui: str, sweep: RealSweep) -> None:
    browser.goto(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs")
    browser.wait_for("document.body.innerText.includes('matching runs')")
    browser.wait_for(f"document.body.innerText.includes({json.dumps(SWEEP)})")
    expander = "document.querySelector('[data-component-id*=\"runnamecellrenderer\"]')"
    browser.wait_for(expander)  # the parent's "+": its child runs are collapsed under it
    browser.evaluate(f"{expander}.click()")
    names = " && ".join(f"document.body.innerText.includes({json.dumps(n)})"
                        for n in sweep.names.values())
    # named by their searched settings; α = 0 never mixes, so it is named ERM
    assert sorted(sweep.names.values()) == ["ERM", "α=1 never off", "α=1 off@10"], sweep.names
    browser.wait_for(names)
    browser.screenshot(ARTIFACTS / "mlflow_runs.png",
                       clip={"x": 0, "y": 0, "width": 1700, "height": 1100})


def test_mlflow_ui_shows_a_trials_metrics_and_params(browser: Chromium, mlflow_ui: str,
                                                     sweep: RealSweep) -> None:
    _, run_id = sorted(sweep.trials.items())[-1]
    browser.goto(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs/{run_id}")
    browser.wait_for("document.body.innerText.includes('test/acc_rare')")
    text = _page_text(browser)
    assert sweep.names[run_id] in text
    for name in ("test/acc_common", "features/rare_alignment", "best/test/acc_rare",
                 "last/test/acc_rare", "mixup.alpha", "mixup.stop_epoch"):
        assert name in text, name
    browser.screenshot(ARTIFACTS / "mlflow_trial.png",
                       clip={"x": 0, "y": 0, "width": 1700, "height": 1100})


def test_mlflow_ui_compares_trials_over_the_searched_params(browser: Chromium, mlflow_ui: str,
                                                            sweep: RealSweep) -> None:
    runs = urllib.parse.quote(json.dumps(sorted(sweep.trials.values())))
    experiments = urllib.parse.quote(json.dumps([sweep.experiment_id]))
    browser.goto(f"{mlflow_ui}/#/compare-runs?runs={runs}&experiments={experiments}")
    browser.wait_for("document.body.innerText.includes('Parallel Coordinates')")
    browser.wait_for("document.body.innerText.includes('mixup.stop_epoch')")
    text = _page_text(browser)
    assert "mixup.alpha" in text
    for name in sweep.names.values():
        assert name in text, name
    browser.screenshot(ARTIFACTS / "mlflow_compare.png",
                       clip={"x": 0, "y": 0, "width": 1700, "height": 1100})


def test_mlflow_ui_shows_the_report_logged_on_the_parent_run(browser: Chromium, mlflow_ui: str,
                                                             sweep: RealSweep) -> None:
    browser.goto(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs/"
                 f"{sweep.parent_run_id}/artifacts")
    folder = ("Array.from(document.querySelectorAll('*'))"
              ".filter(e => e.innerText && e.innerText.trim() === 'report')")
    browser.wait_for(f"{folder}.length > 0")
    browser.evaluate(f"{folder}.pop().click()")  # the innermost element: open the folder
    names = " && ".join(f"document.body.innerText.includes({json.dumps(p.name)})"
                        for p in sweep.report.files)
    browser.wait_for(names)
    browser.screenshot(ARTIFACTS / "mlflow_report_artifacts.png",
                       clip={"x": 0, "y": 0, "width": 1700, "height": 1100})


# ------------------------------------------------------------------- MLflow on the answer

#: The runs table's rows in the order shown: run id, name, and the objective's cell.
ROWS = """(() => {
    const rows = sel => Array.from(document.querySelectorAll(sel + ' .ag-row'))
        .sort((a, b) => a.getAttribute('row-index') - b.getAttribute('row-index'));
    const names = Object.fromEntries(rows('.ag-pinned-left-cols-container').map(r => [
        r.getAttribute('row-id'),
        // the cell shows the run's colour chip ("#8396a5") above its name
        r.querySelector('[col-id="attributes.`Run Name`"]').innerText.trim().split('\\n').pop()]));
    return rows('.ag-center-cols-container').map(r => ({
        id: r.getAttribute('row-id'), name: names[r.getAttribute('row-id')],
        value: r.querySelector('[col-id="metrics.`best/val/acc_rare`"]').innerText.trim()}));
})()"""


def test_children_carry_only_the_searched_params_and_describe_themselves(sweep: RealSweep) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sweep.tracking_uri)
    parent = client.get_run(sweep.parent_run_id)
    for run_id, name in sweep.names.items():
        run = client.get_run(run_id)
        assert set(run.data.params) == {"mixup.alpha", "mixup.stop_epoch"}, name
        note = run.data.tags["mlflow.note.content"]
        assert f"Chosen epoch {int(run.data.metrics['best_epoch'])}: its best val/acc_rare" in note
        assert "- test/acc_rare: " in note
    erm = next(run_id for run_id, name in sweep.names.items() if name == "ERM")
    assert client.get_run(erm).data.tags["mlflow.note.content"].startswith(
        "ERM (Mixup never mixes: α = 0). Stands for 2 grid points that train alike: "
        "switch-off epoch ∈ {10, never}, α = 0.")
    # what every trial shares is on the parent, once
    assert parent.data.params["data.dim"] == "200" and parent.data.params["seeds"] == "[0, 1]"
    assert "mixup.alpha" not in parent.data.params and "seed" not in parent.data.params


def test_the_parent_runs_overview_opens_on_the_answer(browser: Chromium, mlflow_ui: str,
                                                     sweep: RealSweep) -> None:
    [best] = Sweep.load(SWEEP, storage=sweep.storage).best(top=1).to_dict("records")
    browser.goto(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs/{sweep.parent_run_id}")
    browser.wait_for("document.body.innerText.includes('Best of 3 trials')")
    text = _page_text(browser)
    name = sweep.names[sweep.trials[best["trial_id"]]]
    assert (f"Best of 3 trials by val/acc_rare (max): {name}, trial {best['trial_id']} at its "
            f"chosen epoch {best['epoch']}: val/acc_rare {best['value']:.4f}") in text
    assert f"test/acc_rare {best['test/acc_rare']:.4f}" in text  # before "Show more"
    browser.screenshot(ARTIFACTS / "mlflow_parent_answer.png",
                       clip={"x": 0, "y": 0, "width": 1700, "height": 1100})


def test_mlflow_ui_name_opens_the_trials_flat_in_the_order_of_best(
        browser: Chromium, sweep: RealSweep, tmp_path: Path) -> None:
    port = free_port()
    ui = subprocess.Popen([*CLI, "ui", SWEEP, "--storage", "res", "--port", str(port)],
                          cwd=sweep.storage.parent, env=cli_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert ui.stdout is not None
        assert select.select([ui.stdout], [], [], SERVER_START_S)[0], "ui printed no URL"
        line = ui.stdout.readline().decode()
        url = line.split(": ", 1)[1].split(" (Ctrl-C")[0]
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/{sweep.experiment_id}/"
                              "runs?viewStateShareKey="), line

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout=SERVER_START_S, what="the UI's server answering", every=0.3)
        browser.goto(url)
        browser.wait_for("document.body.innerText.includes('3 matching runs')")
        browser.wait_for("document.querySelectorAll('.ag-center-cols-container .ag-row')"
                         ".length === 3")
        rows = browser.evaluate(ROWS)
        shot = browser.screenshot(tmp_path / "mlflow_landing.png")
        (ARTIFACTS / "mlflow_landing.png").write_bytes(shot.read_bytes())
        print(f"MLflow landing page: {shot}")
    finally:
        stop_group(ui)
    assert _distinct_colours(shot) >= MIN_COLOURS
    # flat: every trial is a row of its own without expanding anything, the parent is none
    assert sorted(r["id"] for r in rows) == sorted(sweep.trials.values())
    assert {r["id"]: r["name"] for r in rows} == sweep.names
    # in the order of `best`: its values, best first; tied values (if any) in either order
    ranked = Sweep.load(SWEEP, storage=sweep.storage).best(top=None)
    assert [float(r["value"]) for r in rows] == pytest.approx(list(ranked["value"]), abs=1e-12)
    for row, trial_id, value in zip(rows, ranked["trial_id"], ranked["value"], strict=True):
        ties = set(ranked.loc[(ranked["value"] - value).abs() <= 1e-12, "trial_id"])
        assert row["id"] == sweep.trials[trial_id] or row["id"] in {sweep.trials[t] for t in ties}
    assert "Sort: best/val/acc_rare" in _page_text(browser)

