"""``mixup-sweep report NAME``: the sweep's figures as PNG files and one self-contained HTML page.

Everything is drawn from the sweep's Parquet tables (MLflow need not be reachable). The same
files are then logged as artifacts of the sweep's MLflow parent run, under ``report/``; if
that fails, the report is still written and one warning line on stderr says why.

The page opens with the answer box (``dashboards.answer``: the best configuration and its ties,
the ERM baseline, the per-key means with intervals and one sentence read off them).

Figures (``<out>/<slug>.png``):

* ``key_means``: the mean objective per level of each searched key, with n and 95% intervals
  (a sampled key in bins on its scale);
* ``accuracy_curves``: rare- vs common-feature test accuracy over epochs per configuration;
* ``rare_accuracy_heatmap``: rare-feature test accuracy over α × switch-off epoch, per scheme;
* ``feature_alignment``: rare and common feature alignment, ERM vs Mixup vs switched-off Mixup;
* ``probe_trajectories``: the probes of image data over epochs (rare glyph, memorisation, ridge
  transfer on rare points, rare errors on the feature-noise class), one line per switch-off
  epoch; drawn only where the sweep recorded one of them, and left out without a note elsewhere;
* ``parameter_importance``: importance of each searched parameter, with n and bootstrap
  intervals (PED-ANOVA where its top 10% is sound, else fANOVA);
* ``pareto_front``: common- vs rare-feature test accuracy with the Pareto front (left out,
  with a note, where the front is degenerate);

plus the best-configs table (in the page, and every configuration in ``best_configs.csv``).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dashboards import (
    answer,
    best_table,
    fig_curves,
    fig_heatmap,
    fig_importance,
    fig_marginals,
    fig_pareto,
    fig_sampled,
    page,
)
from dashboards.section import Section
from dashboards.sweep_data import SweepData, report_data

if TYPE_CHECKING:
    from sweeps.sweep import Sweep

HTML_FILE = "report.html"
CSV_FILE = "best_configs.csv"
ARTIFACT_PATH = "report"
DPI = 100
HTTP_TIMEOUT_S = 10

#: The figures, in page order.
FIGURES: tuple[Callable[[SweepData], Section], ...] = (
    fig_marginals.key_means,
    fig_curves.accuracy_curves, fig_heatmap.rare_heatmap, fig_sampled.search_slices,
    fig_sampled.search_history, fig_curves.alignment_curves,
    fig_importance.parameter_importance, fig_pareto.accuracy_pareto,
)
FIGURE_SLUGS = ("key_means", "accuracy_curves", "rare_accuracy_heatmap", "search_slices",
                "search_history", "feature_alignment", "parameter_importance", "pareto_front")


@dataclass(frozen=True)
class OptionalFigure:
    """A figure only some sweeps record the metrics of (the probes of image data).

    Where ``applies`` is false, or the figure comes back without one, it is left out of the
    page and of :attr:`ReportPaths.notes`: it is not a figure the sweep lacks, but one it
    never asked for.

    Attributes:
        after: The slug of the figure it follows in the page.
        slug: Its own slug (its PNG is ``<slug>.png``).
        make: Draws it.
        applies: Whether the sweep recorded anything it shows (cheap: no drawing).
    """

    after: str
    slug: str
    make: Callable[[SweepData], Section]
    applies: Callable[[SweepData], bool]


OPTIONAL_FIGURES: tuple[OptionalFigure, ...] = (
    OptionalFigure("feature_alignment", fig_curves.PROBE_SLUG, fig_curves.probe_curves,
                   fig_curves.has_probes),
)


class ReportNotLogged(RuntimeError):
    """The report could not be logged to MLflow; ``str()`` is one line naming the cause."""


@dataclass
class ReportPaths:
    """The files of a report.

    Attributes:
        html: The self-contained HTML page.
        pngs: One PNG per figure drawn, in page order.
        csv: Every configuration with best- and last-epoch values.
        notes: One line per figure left out, saying why (e.g. no ``features/*`` metrics).
    """

    html: Path
    pngs: list[Path] = field(default_factory=list)
    csv: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """Every file of the report (page, figures, table)."""
        return [self.html, *self.pngs, *([self.csv] if self.csv else [])]


#: ``progress(step, steps, what)``: what a report is drawing now.
Progress = Callable[[int, int, str], None]


def write_report(data: SweepData, out: str | Path, importance: str = "auto",
                 progress: Progress | None = None) -> ReportPaths:
    """Draws every figure of ``data`` into ``out`` and writes the HTML page there.

    Args:
        data: The sweep, already loaded.
        out: The folder to write to (created if needed). PNGs of figures this sweep cannot
            show are removed, so a folder reused across runs holds no stale figure.
        importance: ``auto``, ``fanova`` or ``ped-anova`` (the importance figure's estimator).
        progress: Called as ``progress(step, steps, what)`` before each step (each figure,
            the table, the page): ``mixup-sweep report`` prints a line on stderr for each.
    """
    folder = Path(out).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / CSV_FILE
    # auto: PED-ANOVA where its top 10% is sound, else fANOVA (fig_importance refuses it then)
    method = "ped-anova" if importance == "auto" else importance
    steps: list[tuple[str, Callable[[], Section]]] = [
        ("the answer", lambda: answer.answer_section(data))]
    for slug, make in zip(FIGURE_SLUGS, FIGURES, strict=True):
        steps.append((slug.replace("_", " "), functools.partial(make, data, method)
                      if make is fig_importance.parameter_importance
                      else functools.partial(make, data)))
        steps += [(extra.slug.replace("_", " "), functools.partial(extra.make, data))
                  for extra in OPTIONAL_FIGURES if extra.after == slug and extra.applies(data)]
    optional = {extra.slug for extra in OPTIONAL_FIGURES}
    for stale in optional:  # drawn again below where the sweep has it
        (folder / f"{stale}.png").unlink(missing_ok=True)
    steps.append(("the best-configs table", lambda: best_table.best_configs(data, csv)))
    pngs: dict[str, Path] = {}
    notes = []
    sections = []
    for number, (what, make_section) in enumerate(steps, start=1):
        if progress is not None:
            progress(number, len(steps) + 1, what)
        section = make_section()
        target = folder / f"{section.slug}.png"
        if section.figure is None and section.slug in optional:
            continue  # not this sweep's figure: no section, no note
        sections.append(section)
        if section.figure is not None:
            section.figure.savefig(target, dpi=DPI, facecolor="white")
            pngs[section.slug] = target
            section.figure = None  # let the figure's memory go
        elif section.slug in FIGURE_SLUGS:
            target.unlink(missing_ok=True)
            notes.append(f"{section.title}: {section.note}")
    if progress is not None:
        progress(len(steps) + 1, len(steps) + 1, "the page")
    html_path = folder / HTML_FILE
    html_path.write_text(page.render(data, sections, pngs), encoding="utf-8")
    return ReportPaths(html=html_path, pngs=list(pngs.values()), csv=csv, notes=notes)


def build_report(sweep: Sweep | str, *, storage: str | Path = "sweep_results",
                 out: str | Path | None = None, mlflow: bool = True,
                 importance: str = "auto", progress: Progress | None = None) -> ReportPaths:
    """Builds the sweep's report and logs it to the sweep's MLflow parent run.

    Args:
        sweep: The sweep's handle (``sweeps.load_sweep(...)``, or what ``sweeps.run`` returned:
            then nothing is read back from its folder), or its name under ``storage``.
        storage: The folder holding the sweeps, when ``sweep`` is a name.
        out: Where to write; default ``<storage>/<name>/report/``.
        mlflow: Log the files as artifacts of the parent run recorded in ``sweep.json``. A
            failure there is a one-line warning on stderr, never an error.
        importance: The importance figure's estimator (``auto``, ``fanova``, ``ped-anova``).
        progress: See :func:`write_report` (:func:`progress_lines` prints them).

    Returns:
        The paths of the HTML page, the PNG figures and the CSV table.

    Raises:
        sweeps.errors.UsageError: No such sweep under ``storage``; a running sweep without
            ``out`` (its driver owns its folder).
    """
    from sweeps.errors import UsageError
    from sweeps.store import lock
    from sweeps.sweep import Sweep

    if isinstance(sweep, str):
        sweep = Sweep.load(sweep, storage=storage)
    data = report_data(sweep)
    if out is None and sweep.is_running:  # a running driver owns its folder: write nothing there
        raise UsageError(f"sweep {sweep.name!r} is being run by {lock.holder(sweep.directory)}; "
                         "pass --out DIR to write its report elsewhere while it runs")
    folder = Path(out) if out is not None else sweep.directory / "report"
    try:
        report = write_report(data, folder, importance, progress)
    except OSError as err:  # --out where nothing can be written, a full disk
        raise UsageError(f"{'--out ' + str(out) if out is not None else folder}: the report "
                         f"cannot be written there ({err.strerror or err})") from None
    if mlflow:
        try:
            uri, parent = sweep.meta.get("tracking_uri"), sweep.meta.get("parent_run_id")
            if not uri or not parent:
                raise ReportNotLogged("sweep.json records no MLflow parent run")
            log_report_to_mlflow(report, tracking_uri=uri, parent_run_id=parent)
        except ReportNotLogged as err:
            print(f"warning: report not logged to MLflow ({err}); it is in {report.html.parent}",
                  file=sys.stderr, flush=True)
    return report


def progress_lines(stream: TextIO | None = None) -> Progress:
    """A :data:`Progress` that prints ``report: 3/10 parameter importance (1.2 s)`` lines."""
    started = time.monotonic()

    def show(step: int, steps: int, what: str) -> None:
        print(f"report: {step}/{steps} {what} ({time.monotonic() - started:.1f} s)",
              file=stream or sys.stderr, flush=True)

    return show


def log_report_to_mlflow(report: ReportPaths, *, tracking_uri: str, parent_run_id: str) -> None:
    """Logs the report's files as artifacts of the sweep's parent run, under ``report/``.

    MLflow itself is called by the tracking adapter (``sweeps.tracking.tracker.log_artifacts``).

    Args:
        report: What :func:`build_report` or :func:`write_report` returned.
        tracking_uri: The sweep's tracking URI (``sqlite:///...`` or ``http://...``).
        parent_run_id: The sweep's parent run.

    Raises:
        ReportNotLogged: The store is missing or unreachable, or the run does not exist.
    """
    from sweeps.errors import TrackingUnavailable
    from sweeps.tracking import log_artifacts

    try:  # only the report's files, whatever else is in its folder
        log_artifacts(tracking_uri, parent_run_id, report.files, artifact_path=ARTIFACT_PATH,
                      timeout_s=HTTP_TIMEOUT_S)
    except TrackingUnavailable as err:
        raise ReportNotLogged(str(err)) from err
