"""The mean of the objective per level of each searched key, with its 95% interval and n.

One panel per searched key, drawn from the per-key summaries (``sweeps.store.key_summary``, the
numbers of the answer box and of ``best NAME --by all``): a grid or choice key's values as
categories in their order, a sampled key's bins on the key's own scale (log for loguniform),
each bin's mean at its centre with a horizontal bar over its range. Vertical bars are the
intervals over the level's trials; a hollow marker has none (fewer than 3 trials). Under each
point, n: the grid points behind the mean. Panels share the y axis, so the key that moves the
mean most is the one whose points spread furthest.
"""

from __future__ import annotations

import math

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from dashboards import answer
from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import SweepData
from sweeps.store import spread
from sweeps.store.key_summary import KeyLevel, KeySummaries, KeySummary

SLUG = "key_means"
TITLE = "Mean objective per searched value, with 95% intervals and n"
PANELS_PER_ROW = 4
COLOUR = "#1f5fa8"


def _overall(found: KeySummaries) -> float:
    """The mean over every grid point (any key's levels partition them)."""
    levels = found.keys[0].levels
    points = sum(lv.points for lv in levels)
    return sum(lv.mean * lv.points for lv in levels) / points if points else math.nan


def _errors(levels: list[KeyLevel]) -> tuple[list[float], list[float]]:
    below = [lv.mean - lv.low if lv.low is not None else math.nan for lv in levels]
    above = [lv.high - lv.mean if lv.high is not None else math.nan for lv in levels]
    return below, above


def _draw(ax: Axes, xs: list[float], levels: list[KeyLevel],
          xerr: tuple[list[float], list[float]] | None = None) -> None:
    below, above = _errors(levels)
    ax.errorbar(xs, [lv.mean for lv in levels], yerr=[below, above], xerr=xerr, fmt="none",
                ecolor=COLOUR, elinewidth=1.4, capsize=4)
    full = [lv.has_interval for lv in levels]
    for hollow in (False, True):
        px = [x for x, f in zip(xs, full, strict=True) if f != hollow]
        py = [lv.mean for lv, f in zip(levels, full, strict=True) if f != hollow]
        if px:
            ax.scatter(px, py, s=46, zorder=3, edgecolors=COLOUR,
                       facecolors="white" if hollow else COLOUR, linewidths=1.4)
    under = blended_transform_factory(ax.transData, ax.transAxes)
    for x, lv in zip(xs, levels, strict=True):
        trials = "" if lv.trials == lv.points else f"\n{lv.trials} trial{'s' * (lv.trials > 1)}"
        ax.text(x, 0.02, f"n={lv.points}{trials}", transform=under, ha="center", va="bottom",
                fontsize=7, color="#444")


def _panel(ax: Axes, summary: KeySummary) -> str:
    """Draws one key; returns its title (the key, binned and on which scale, a level that has
    no place on the scale)."""
    title = L.key_name(summary.key)
    levels = list(summary.levels)
    bins = [lv for lv in levels if isinstance(lv.value, tuple)]
    if summary.binned and bins:
        if summary.log_scale:
            ax.set_xscale("log")
            centres = [math.sqrt(lv.value[0] * lv.value[1]) for lv in bins]
        else:
            centres = [(lv.value[0] + lv.value[1]) / 2 for lv in bins]
        spans = ([c - lv.value[0] for c, lv in zip(centres, bins, strict=True)],
                 [lv.value[1] - c for c, lv in zip(centres, bins, strict=True)])
        _draw(ax, centres, bins, spans)
        apart = [lv for lv in levels if lv not in bins]  # "never" / "null" is no point on a scale
        extra = "; ".join(f"{lv.label}: {lv.mean:.3g} (n={lv.points})" for lv in apart)
        title += " (binned, log scale)" if summary.log_scale else " (binned)"
        return title + (f"\n{extra}" if extra else "")
    xs = list(range(len(levels)))
    _draw(ax, [float(x) for x in xs], levels)
    names = [answer.level_name(summary, lv) for lv in levels]
    long = max((len(n) for n in names), default=0) > 6 or len(names) > 5
    ax.set_xticks(xs, names, fontsize=8, rotation=30 if long else 0,
                  ha="right" if long else "center")
    ax.set_xlim(-0.6, len(levels) - 0.4)
    return title + (" (binned)" if summary.binned else "")


def key_means(data: SweepData) -> Section:
    """The per-key means of the objective with intervals and n, one panel per searched key."""
    found = answer.summaries(data)
    keys = [s for s in found.keys if s.levels]
    if not keys:
        return skipped(SLUG, TITLE, "No searched key has a trial with a finite "
                       f"{data.objective} at its chosen epoch.")
    rows = math.ceil(len(keys) / PANELS_PER_ROW)
    cols = min(len(keys), PANELS_PER_ROW)
    fig = Figure(figsize=(max(5.0, 3.9 * cols), 3.5 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False).ravel()
    overall = _overall(found)
    for ax, summary in zip(axes, keys, strict=False):
        ax.set_title(_panel(ax, summary), fontsize=9)
        if math.isfinite(overall):
            ax.axhline(overall, color="grey", lw=0.8, ls="--", zorder=1)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    low, high = spread.metric_range(data.objective)
    if (low, high) == (0.0, 1.0):
        axes[0].set_ylim(-0.04, 1.06)
    for row in range(rows):
        axes[row * cols].set_ylabel(f"mean {L.metric_name(data.objective)}", fontsize=8)
    fig.legend([Line2D([], [], color=COLOUR, marker="o", ls="-"),
                Line2D([], [], color=COLOUR, marker="o", markerfacecolor="white", ls=""),
                Line2D([], [], color="grey", ls="--")],
               ["mean and 95% interval over the level's trials", "no interval (< 3 trials)",
                "mean over every grid point"], loc="outside lower center", ncols=3, fontsize=8,
               frameon=False)
    fig.suptitle(TITLE, fontsize=11)
    caption = (f"Mean {L.metric_name(data.objective)} ({data.objective}) at each trial's chosen "
               "epoch, per level of each searched key, over all other keys; n under each "
               "point is its grid points (a merged trial counts once for each it stands for). "
               "Bars: 95% interval of the mean over the level's trials, inside the metric's "
               "range (docs/science.md, \"Per-key summaries\"); a sampled key is cut into bins "
               "of equal counts on its own scale, each drawn over its range. "
               f"{found.sentence(name=L.key_name, metric=L.metric_name(data.objective))}")
    return Section(SLUG, TITLE, caption, fig)
