"""The Pareto front of common- vs rare-feature test accuracy over the sweep's configurations.

A configuration is on the front when no other one is at least as good on both accuracies and
better on one. ERM typically sits at high common- and chance rare-feature accuracy; the
question is which Mixup settings move up without moving left. Where there is no trade-off to
show (every configuration at one common accuracy, as on the main job where all reach 1.0, or a
front of one point) the figure is left out and its note says why: the ranking says it all.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dashboards import facets
from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import ConfigGroup, Scope, SweepData
from sweeps.store.key_summary import format_number

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
SCOPES: tuple[tuple[Scope, str], ...] = (("last", "at the last epoch"),
                                         ("best", "at the best epoch"))
MAX_NAMED = 6
SEARCH_FRONT_COLOUR = "goldenrod"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates maximised), ascending.

    Equal points are all kept. Points with a non-finite coordinate are never on the front.
    One sort, then one sweep from the largest x down: a point is on the front when its y is the
    largest among the points of its x and larger than every y of a larger x.
    """
    finite = [(x, y, i) for i, (x, y) in enumerate(points)
              if math.isfinite(x) and math.isfinite(y)]
    finite.sort(key=lambda p: (-p[0], -p[1]))
    front = []
    above = -math.inf  # the largest y among points of a strictly larger x
    start = 0
    while start < len(finite):
        end = start
        while end < len(finite) and finite[end][0] == finite[start][0]:
            end += 1
        top = finite[start][1]  # the largest y at this x (sorted)
        if top > above:
            front += [i for _, y, i in finite[start:end] if y == top]
        above = max(above, top)
        start = end
    return sorted(front)


def _points(data: SweepData, scope: Scope) -> list[tuple[float, float]]:
    """(common, rare) test accuracy of each configuration at its best or last epoch."""
    return [(data.summary(g, L.COMMON, scope)[0], data.summary(g, L.RARE, scope)[0])
            for g in data.groups]


def degenerate(points: list[tuple[float, float]]) -> str | None:
    """Why a front over ``points`` shows no trade-off (None when it does): no finite point,
    every point sharing one coordinate, or one point (several at one place) beating all."""
    finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if not finite:
        return "no configuration has both accuracies"
    common, rare = {x for x, _ in finite}, {y for _, y in finite}
    if len(common) == 1:
        return (f"every configuration has {L.metric_name(L.COMMON)} "
                f"{format_number(next(iter(common)))}")
    if len(rare) == 1:
        return (f"every configuration has {L.metric_name(L.RARE)} "
                f"{format_number(next(iter(rare)))}")
    front = {points[i] for i in pareto_front(points)}
    if len(front) == 1:
        x, y = next(iter(front))
        return (f"one point ({L.metric_name(L.COMMON)} {format_number(x)}, "
                f"{L.metric_name(L.RARE)} {format_number(y)}) beats every other configuration "
                "on both")
    return None


def _marker(group: ConfigGroup, schemes: list[Any]) -> str:
    if group.kind == "ERM" or group.value(L.SCHEME) not in schemes:
        return "o"
    return MARKERS[schemes.index(group.value(L.SCHEME)) % len(MARKERS)]


def _panel(ax: Axes, data: SweepData, scope: Scope, layout: facets.Layout,
           colours: dict[str, Any], schemes: list[Any]) -> list[ConfigGroup]:
    """One point per configuration, drawn in one call per marker (not one per point): the
    figure stays cheap at 10,000 configurations."""
    groups = data.groups
    points = _points(data, scope)
    errors = [(data.summary(g, L.COMMON, scope)[1], data.summary(g, L.RARE, scope)[1])
              for g in groups]
    front = pareto_front(points)
    on_front = set(front)
    segments, segment_colours = [], []
    batches: dict[tuple[str, int, bool], list[tuple[float, float, Any]]] = {}
    for index, (g, (x, y), (ex, ey)) in enumerate(zip(groups, points, errors, strict=True)):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        colour = mcolors.to_rgba(facets.colour_of(g, layout, colours, index))
        for err, bar in ((ex, ((x - ex, y), (x + ex, y))), (ey, ((x, y - ey), (x, y + ey)))):
            if math.isfinite(err):
                segments.append(bar)
                segment_colours.append(colour)
        batch = (_marker(g, schemes), 60 if g.kind == "ERM" else 38, index in on_front)
        batches.setdefault(batch, []).append((x, y, colour))
        if data.objective_front.intersection(g.trial_ids):  # chosen by the search's objectives
            ax.scatter(x, y, s=170, facecolors="none", edgecolors=SEARCH_FRONT_COLOUR,
                       linewidths=1.8, zorder=4, gid="objective-front")
    if segments:  # the std bars, as ax.errorbar draws them (NaN: no bar)
        ax.add_collection(LineCollection(segments, colors=segment_colours, alpha=0.25, lw=0.8))
    for (marker, size, edged), members in sorted(batches.items(), key=lambda b: b[0][2]):
        # the front's points last, so that no other point hides them
        px, py, fills = zip(*members, strict=True)
        ax.scatter(px, py, color=list(fills), marker=marker, s=size,
                   edgecolors="black" if edged else "none", linewidths=1.2, zorder=3, alpha=0.9)
    ordered = sorted(front, key=lambda i: points[i][0])
    xs = [points[i][0] for i in ordered]
    ys = [points[i][1] for i in ordered]
    ax.step(xs, ys, where="pre", color="crimson", lw=1.2, zorder=2)
    ax.set_xlabel(L.metric_name(L.COMMON))
    ax.grid(alpha=0.3)
    return [groups[i] for i in front]


def accuracy_pareto(data: SweepData) -> Section:
    """(e) Common- vs rare-feature test accuracy per configuration, with the Pareto front."""
    slug, title = "pareto_front", "Pareto front: common- vs rare-feature test accuracy"
    if not (data.has_metric(L.RARE) and data.has_metric(L.COMMON)):
        return skipped(slug, title, "This sweep's test set has no rare/common split "
                       "(no finite test/acc_rare and test/acc_common), so there is no front.")
    reasons = {text: degenerate(_points(data, scope)) for scope, text in SCOPES}
    if all(reasons.values()):
        said = "; ".join(f"{text}, {reason}" for text, reason in reasons.items())
        return skipped(slug, title, f"Left out: the front shows no trade-off ({said}), so "
                       "the ranking by rare-feature accuracy (the best-configurations table) "
                       "says everything it would.")
    layout = facets.choose_layout(data, hue=(L.STOP, L.ALPHA))
    colours = facets.hue_colours(data, layout)
    schemes = facets.key_values(facets.mixup_groups(data), L.SCHEME) if L.SCHEME in data.varying \
        else []
    fig = Figure(figsize=(11.0, 4.6), layout="constrained")
    axes = fig.subplots(1, len(SCOPES), sharey=True)
    fronts = {}
    for ax, (scope, text) in zip(axes, SCOPES, strict=True):
        fronts[text] = _panel(ax, data, scope, layout, colours, schemes)
        ax.set_title(text, fontsize=9)
    axes[0].set_ylabel(L.metric_name(L.RARE))
    _legend(fig, data, layout, colours, schemes)
    fig.suptitle(title, fontsize=11)
    caption = _caption(data, fronts) + "".join(
        f" {text.capitalize()} the front shows no trade-off: {reason}."
        for text, reason in reasons.items() if reason)
    return Section(slug, title, caption, fig)


def _legend(fig: Figure, data: SweepData, layout: facets.Layout, colours: dict[str, Any],
            schemes: list[Any]) -> None:
    handles, names = [], []
    if facets.erm_groups(data):
        handles.append(Line2D([], [], color="black", marker="o", ls=""))
        names.append(L.ERM)
    if layout.hue is not None:
        for value in facets.key_values(facets.mixup_groups(data), layout.hue):
            handles.append(Line2D([], [], color=colours.get(repr(value), "grey"), marker="o",
                                  ls=""))
            names.append(f"{L.key_name(layout.hue)} {L.format_value(layout.hue, value)}")
    for i, scheme in enumerate(schemes):
        handles.append(Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)], ls=""))
        names.append(L.format_setting(L.SCHEME, scheme))
    handles.append(Line2D([], [], color="crimson"))
    names.append("Pareto front (black edge: on it)")
    if data.objective_front:
        handles.append(Line2D([], [], color=SEARCH_FRONT_COLOUR, marker="o", ls="",
                              markerfacecolor="none", markersize=10, markeredgewidth=1.8))
        names.append("on the front of the search's objectives")
    fig.legend(handles, names, loc="outside right center", fontsize=8, frameon=False)


def _caption(data: SweepData, fronts: dict[str, list[ConfigGroup]]) -> str:
    parts = ["One point per configuration (merged ERM trials are one point); bars: std over "
             "seeds. The red step line joins the configurations that no other beats on both "
             "accuracies."]
    for text, front in fronts.items():
        named = "; ".join(g.label for g in front[:MAX_NAMED])
        more = f" and {len(front) - MAX_NAMED} more" if len(front) > MAX_NAMED else ""
        parts.append(f"On the front {text}: {named}{more}.")
    marked = search_front(data)
    if marked:
        goals = ", ".join(f"{metric} ({mode})" for metric, mode in data.objectives)
        named = "; ".join(g.label for g in marked[:MAX_NAMED])
        more = f" and {len(marked) - MAX_NAMED} more" if len(marked) > MAX_NAMED else ""
        parts.append(f"Gold rings: the {len(marked)} configuration(s) on the Pareto front of the "
                     f"search's objectives, {goals}, each read at the trial's chosen epoch "
                     f"(`mixup-sweep best --pareto` lists them): {named}{more}.")
    return " ".join(parts)


def search_front(data: SweepData) -> list[ConfigGroup]:
    """The configurations with a trial on the Pareto front of the sweep's own objectives."""
    return [g for g in data.groups if data.objective_front.intersection(g.trial_ids)]
