"""Curves over epochs: rare vs common test accuracy, and the feature-alignment trajectories.

Both answer "which settings learn the rare feature, and when": the accuracy panels show the
outcome on rare- and common-feature test points, the alignment panels the mechanism (how much
of each feature the filters have picked up, ``max_r <w_{k,r}, feature_k>``).
"""

from __future__ import annotations

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
        for metric, style in metrics:
            curve = data.curve(group, metric)
            if curve.empty:
                continue
            width = 2.0 if group.kind == "ERM" else 1.4
            ax.plot(curve["epoch"], curve["mean"], color=colour, ls=style, lw=width)
            ax.fill_between(curve["epoch"], curve["mean"] - curve["std"],
                            curve["mean"] + curve["std"], color=colour, alpha=0.12, lw=0)
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
            ax.set_title(facets.panel_title(layout, row, col), fontsize=9)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("test accuracy" if len(styles) > 1 else L.metric_name(styles[0][0]))
    _finish(fig, layout, legend, styles)
    fig.suptitle(f"{title} ({_seeds_text(data)})", fontsize=11)
    return Section(slug, title, _accuracy_caption(data, layout, styles, dropped) + fallback, fig)


def _accuracy_caption(data: SweepData, layout: facets.Layout, styles: Sequence[tuple[str, str]],
                      dropped: int) -> str:
    parts = []
    if len(styles) > 1:
        parts.append("Solid: rare-feature test accuracy; dashed: common-feature test accuracy.")
    parts.append(f"Bands: {_seeds_text(data)}. ERM (black) is repeated in every panel as the "
                 "reference; dotted vertical lines mark each run's switch-off epoch.")
    parts.append("Rare-feature accuracy near chance with common-feature accuracy near 1 is "
                 "the paper's ERM failure: the rare feature was not learned.")
    if layout.pinned:
        parts.append(f"Other settings held at the best configuration's: {layout.pinned_text()}.")
    if dropped:
        parts.append(f"{dropped} lower-ranked configurations are left out "
                     f"(at most {facets.MAX_LINES} per panel).")
    return " ".join(parts)


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
            ax.set_title(facets.panel_title(layout, None, col), fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel(L.metric_name(metric))
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
