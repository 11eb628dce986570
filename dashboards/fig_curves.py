"""Curves over epochs: rare vs common test accuracy, the feature-alignment trajectories and,
on image data, the probes' trajectories.

All answer "which settings learn the rare feature, and when": the accuracy panels show the
outcome on rare- and common-feature test points (the feature-noise task and image data alike),
the alignment panels the mechanism (how much of each feature the filters have picked up,
``max_r <w_{k,r}, feature_k>``; the feature-noise task only, whose features are known), and the
probe panels the same mechanism read off image data (``mixup_core.data.planted``): the rare
glyph alone, the rare training images with their glyph erased, a ridge readout of the
penultimate features on rare points, and where rare test errors go.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dashboards import facets
from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import ConfigGroup, SweepData, value_order

#: A legend entry: its sort key (ERM first, then by hue value) and its handle.
Legend = dict[str, tuple[tuple[Any, ...], Line2D]]
PANEL_W, PANEL_H = 3.4, 2.5
MIN_WIDTH = 8.0  # inches: room for the title and the legend when there are few panels


def _seeds_text(data: SweepData) -> str:
    n = len(data.seeds)
    return f"mean ± std over {n} seeds" if n > 1 else "one seed per configuration"


def _draw(ax: Axes, data: SweepData, layout: facets.Layout, row: Any, col: Any,
          metrics: Sequence[tuple[str, str]], colours: dict[str, Any],
          legend: Legend) -> int:
    """Draws one panel; returns how many groups were left out of it."""
    groups, dropped = facets.panel_groups(data, layout, row, col)
    for index, group in enumerate(groups):
        colour = facets.colour_of(group, layout, colours, index)
        label = facets.line_label(group, layout)
        drawn = False
        for metric, style in metrics:
            curve = data.curve(group, metric)
            if curve.empty:
                continue
            width = 2.0 if group.kind == "ERM" else 1.4
            # label: the legend entry, gid: the metric (the legend itself is built in _finish)
            ax.plot(curve["epoch"], curve["mean"], color=colour, ls=style, lw=width,
                    label=label, gid=metric)
            ax.fill_between(curve["epoch"], curve["mean"] - curve["std"],
                            curve["mean"] + curve["std"], color=colour, alpha=0.12, lw=0)
            drawn = True
        if not drawn:  # nothing recorded for this group here: no switch-off mark, no entry
            continue
        stop = group.value(L.STOP)
        if group.kind == "switched-off" and isinstance(stop, (int, float)):
            ax.axvline(stop, color=colour, ls=":", lw=1.0)
        legend.setdefault(label, (_legend_order(group, layout), Line2D([], [], color=colour, lw=2.0)))
    return dropped


def _legend_order(group: ConfigGroup, layout: facets.Layout) -> tuple[Any, ...]:
    hue = value_order(group.value(layout.hue)) if layout.hue is not None else ()
    return (group.kind != "ERM", hue, group.label)


def _grid(rows: Sequence[Any], cols: Sequence[Any]) -> tuple[Figure, Any]:
    height = PANEL_H if len(rows) > 1 else 1.4 * PANEL_H
    fig = Figure(figsize=(max(PANEL_W * len(cols) + 2.6, MIN_WIDTH), height * len(rows) + 0.9),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey="row")
    return fig, axes


def _frame(ax: Axes, layout: facets.Layout, row: Any, col: Any, *, bottom: bool,
           ylabel: str | None, unit: bool = True, label_size: float | None = None) -> None:
    """A panel's title, grid, y range ([0, 1] for accuracies), and its axis labels where it sits
    on the bottom row (epoch) or the first column (``ylabel``)."""
    ax.set_title(facets.panel_title(layout, row, col), fontsize=9)
    if unit:
        ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if bottom:
        ax.set_xlabel("epoch")
    if ylabel is not None:
        text = ax.set_ylabel(ylabel)
        if label_size is not None:
            text.set_fontsize(label_size)


def _finish(fig: Figure, layout: facets.Layout, legend: Legend,
            styles: Sequence[tuple[str, str]]) -> None:
    entries = sorted(legend.items(), key=lambda item: item[1][0])
    names = [name for name, _ in entries]
    handles = [handle for _, (_, handle) in entries]
    title = L.key_name(layout.hue) if layout.hue else "configuration"
    if len(styles) > 1:
        handles += [Line2D([], [], color="grey", ls=style) for _, style in styles]
        names += [L.metric_name(metric) for metric, _ in styles]
    fig.legend(handles, names, title=title, loc="outside right center", fontsize=8,
               title_fontsize=9, frameon=False)


def _bands(data: SweepData) -> str:
    return (f"Bands: {_seeds_text(data)}. ERM (black) is repeated in every panel as the "
            "reference; dotted vertical lines mark each run's switch-off epoch.")


def _held_and_dropped(layout: facets.Layout, dropped: int) -> list[str]:
    """The caption's last sentences: the settings held fixed, the configurations left out."""
    parts = []
    if layout.pinned:
        parts.append(f"Other settings held at the best configuration's: {layout.pinned_text()}.")
    if dropped:
        parts.append(f"{dropped} lower-ranked configurations are left out "
                     f"(at most {facets.MAX_LINES} per panel).")
    return parts


def accuracy_curves(data: SweepData) -> Section:
    """(a) Rare- vs common-feature test accuracy over epochs, one panel per group facet."""
    slug, title = "accuracy_curves", "Rare- vs common-feature test accuracy over epochs"
    styles = [(m, s) for m, s in ((L.RARE, "-"), (L.COMMON, "--")) if data.has_metric(m)]
    fallback = ""
    if not styles and data.has_metric(L.ACC):
        styles, fallback = [(L.ACC, "-")], (" This sweep's test set has no rare/common split, "
                                             "so overall test accuracy is shown.")
    if not styles or not data.groups:
        return skipped(slug, title, "No test accuracy was reported by this sweep.")
    layout = facets.choose_layout(data, hue=(L.STOP, L.ALPHA), rows=(L.SCHEME,), cols=(L.ALPHA,))
    rows, cols = facets.facet_values(data, layout.rows), facets.facet_values(data, layout.cols)
    fig, axes = _grid(rows, cols)
    colours, dropped = facets.hue_colours(data, layout), 0
    legend: Legend = {}
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            dropped += _draw(ax, data, layout, row, col, styles, colours, legend)
            ylabel = "test accuracy" if len(styles) > 1 else L.metric_name(styles[0][0])
            _frame(ax, layout, row, col, bottom=i == len(rows) - 1,
                   ylabel=ylabel if j == 0 else None)
    _finish(fig, layout, legend, styles)
    fig.suptitle(f"{title} ({_seeds_text(data)})", fontsize=11)
    return Section(slug, title, _accuracy_caption(data, layout, styles, dropped) + fallback, fig)


def _accuracy_caption(data: SweepData, layout: facets.Layout, styles: Sequence[tuple[str, str]],
                      dropped: int) -> str:
    parts = []
    if len(styles) > 1:
        parts.append("Solid: rare-feature test accuracy; dashed: common-feature test accuracy.")
    parts.append(_bands(data))
    parts.append("Rare-feature accuracy near chance with common-feature accuracy near 1 is "
                 "the paper's ERM failure: the rare feature was not learned.")
    return " ".join([*parts, *_held_and_dropped(layout, dropped)])


def alignment_curves(data: SweepData) -> Section:
    """(c) Rare and common feature alignment over epochs: ERM vs Mixup vs switched-off Mixup."""
    slug, title = "feature_alignment", "Feature-alignment trajectories"
    metrics = [m for m in (L.RARE_ALIGNMENT, L.COMMON_ALIGNMENT) if data.has_metric(m)]
    if not metrics:
        return skipped(slug, title, "No feature-alignment metrics (features/*) in this sweep: "
                       "they exist only for the feature-noise task, whose features are known.")
    layout = facets.choose_layout(data, hue=(L.STOP, L.ALPHA), cols=(L.SCHEME,))
    cols = facets.facet_values(data, layout.cols)
    fig, axes = _grid(metrics, cols)
    colours, dropped = facets.hue_colours(data, layout), 0
    legend: Legend = {}
    for i, metric in enumerate(metrics):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            dropped += _draw(ax, data, layout, None, col, [(metric, "-")], colours, legend)
            _frame(ax, layout, None, col, bottom=i == len(metrics) - 1, unit=False,
                   ylabel=L.metric_name(metric) if j == 0 else None)
    _finish(fig, layout, legend, [])
    fig.suptitle(f"{title}: ERM vs Mixup vs switched-off Mixup ({_seeds_text(data)})", fontsize=11)
    caption = ("How much of each class's rare (top) and common (bottom) feature the filters have "
               "learned, max_r ⟨w_k,r, feature_k⟩, for ERM (black), Mixup throughout and Mixup "
               "switched off at each epoch (dotted lines). The paper's account: ERM learns the "
               "common feature but not the rare one; Mixup learns the rare one early in training, "
               "so switching Mixup off after that window keeps it and switching off before "
               "loses it.")
    if layout.pinned:
        caption += f" Shown at the best configuration's {layout.pinned_text()}."
    if dropped:
        caption += f" {dropped // len(metrics)} lower-ranked configurations are left out."
    return Section(slug, title, caption, fig)


#: The probe figure's slug; the report draws it only where the sweep recorded a probe.
PROBE_SLUG = "probe_trajectories"
PROBE_TITLE = "Probe trajectories over epochs"
#: What each probe panel shows, for the caption.
PROBE_CAPTIONS = {
    L.RARE_GLYPH_PROBE: "the rare-glyph probe, accuracy on clean rare glyphs on an empty canvas "
                        "(has the network learned the rare feature itself?)",
    L.MEMORISE_PROBE: "the memorisation probe, the share of rare training images with their "
                      "glyph erased still given their label (their canvases were memorised)",
    L.RIDGE_RARE_PROBE: "ridge transfer, a ridge readout of the penultimate features fit on "
                        "the rare training points and scored on the rare test points",
    L.RARE_ERR_NOISE: "the share of wrongly classified rare test points given the class of "
                      "their feature noise",
}


def has_probes(data: SweepData) -> bool:
    """Whether any trial of the sweep recorded a finite value of a probe metric."""
    return bool(data.groups) and any(data.has_metric(m) for m in L.PROBES)


def _probe_panels(data: SweepData, layout: facets.Layout, cols: Sequence[Any]
                  ) -> tuple[list[str], set[tuple[str, Any]]]:
    """The probe metrics with a value in some panel of the figure, in panel order, and the
    (metric, column) panels that have one: a metric all NaN, or recorded only by configurations
    the figure does not show, gets no row."""
    filled = set()
    for col in cols:
        groups = facets.panel_groups(data, layout, None, col)[0]
        for metric in L.PROBES:
            if data.has_metric(metric) and any(not data.curve(g, metric).empty for g in groups):
                filled.add((metric, col))
    metrics = [m for m in L.PROBES if any((m, col) in filled for col in cols)]
    return metrics, filled


def probe_curves(data: SweepData) -> Section:
    """(d) The probes over epochs (image data): one row per probe metric the sweep recorded,
    one column per label scheme, one line per switch-off epoch (ERM black).

    A note in place of the figure where no trial recorded a finite value of one of
    ``labels.PROBES``; the report then leaves the section out (the feature-noise task).
    """
    slug, title = PROBE_SLUG, PROBE_TITLE
    absent = skipped(slug, title, "No probe metrics (probe/*, test/rare_err_noise) in this "
                     "sweep: image data with planted rare features report them.")
    if not has_probes(data):
        return absent
    layout = facets.choose_layout(data, hue=(L.STOP, L.ALPHA), cols=(L.SCHEME,))
    cols = facets.facet_values(data, layout.cols)
    metrics, filled = _probe_panels(data, layout, cols)
    if not metrics:
        return absent
    fig, axes = _grid(metrics, cols)
    colours = facets.hue_colours(data, layout)
    dropped: dict[int, int] = {}  # per column: every row of a column shows the same groups
    legend: Legend = {}
    for i, metric in enumerate(metrics):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            if (metric, col) in filled:
                dropped[j] = _draw(ax, data, layout, None, col, [(metric, "-")], colours, legend)
            else:
                ax.text(0.5, 0.5, "not recorded here", transform=ax.transAxes, ha="center",
                        va="center", color="grey", fontsize=9)
            _frame(ax, layout, None, col, bottom=i == len(metrics) - 1, label_size=8,
                   ylabel="\n".join(textwrap.wrap(L.metric_name(metric), 30)) if j == 0 else None)
    _finish(fig, layout, legend, [])
    fig.suptitle(f"{title}: ERM vs Mixup vs switched-off Mixup ({_seeds_text(data)})",
                 fontsize=11)
    caption = _probe_caption(data, layout, metrics, sum(dropped.values()))
    return Section(slug, title, caption, fig)


def _probe_caption(data: SweepData, layout: facets.Layout, metrics: Sequence[str],
                   dropped: int) -> str:
    if len(metrics) == 1:
        shown = f"Shown: {PROBE_CAPTIONS[metrics[0]]}."
    else:
        shown = "Rows, top to bottom: " + "; ".join(PROBE_CAPTIONS[m] for m in metrics) + "."
    parts = [shown,
             _bands(data),
             "The paper's account on pixels: ERM fits the rare training images by memorising "
             "them rather than by learning the rare glyph; Mixup learns the rare glyph early, "
             "and switching it off after that window keeps it."]
    return " ".join([*parts, *_held_and_dropped(layout, dropped)])
