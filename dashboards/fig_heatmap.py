"""Rare-feature test accuracy over α × switch-off epoch, one heatmap per label scheme.

The grid answers the early-stopped Mixup question directly: along a row (one α), from ERM
(switch-off epoch 0) to Mixup throughout ("never"), where does rare-feature accuracy appear,
and does switching off early lose it? Cells use the raw config values (no ERM merging), so
the α = 0 row and the switch-off 0 column both show ERM. A continuous search (more than
``MAX_CELLS`` values on an axis) is drawn as a scatter instead.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dashboards import facets
from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import (
    CONFIG_PREFIX,
    Scope,
    SweepData,
    value_order,
)

MAX_CELLS = 12
SCOPES: tuple[tuple[Scope, str], ...] = (("last", "at the last epoch"),
                                         ("best", "at the best epoch"))


def _column(data: SweepData, key: str) -> list[Any]:
    return data.column_values(key)


def _reprs(data: SweepData, key: str) -> np.ndarray:
    """``repr`` of each trial's value of ``key``, to compare a whole column with one value."""
    return np.array([repr(v) for v in _column(data, key)], dtype=object)


def _cells(data: SweepData, metric: str, scope: str, scheme: Any, pinned: dict[str, Any],
           reprs: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per trial of the panel: ``alpha``, ``stop``, ``value``.

    A trial belongs to the panel when its label scheme and pinned keys match; for ERM trials
    the ``mixup.*`` keys do not apply, so they match every panel. ``reprs`` keeps each key's
    :func:`_reprs` from one panel to the next.
    """
    reprs = {} if reprs is None else reprs
    # object columns: pandas would turn [0, 200, None] into floats with NaN
    frame = pd.DataFrame({"alpha": pd.Series(_column(data, L.ALPHA), dtype=object),
                          "stop": pd.Series(_column(data, L.STOP), dtype=object),
                          "value": data.trials.get(f"{scope}/{metric}", np.nan)})
    conditions = dict(pinned)
    if scheme is not None:
        conditions[L.SCHEME] = scheme
    erm = np.array([kind == "ERM" for kind in data.trial_kinds()], dtype=bool)
    keep = np.ones(len(frame), dtype=bool)
    for key, wanted in conditions.items():
        if key not in reprs:
            reprs[key] = _reprs(data, key)
        match = reprs[key] == repr(wanted)
        if key.startswith(L.MIXUP_PREFIX):
            match |= erm
        keep &= match
    return frame[keep]


def _axis_values(data: SweepData, key: str) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in _column(data, key):
        seen.setdefault(repr(value), value)
    return sorted(seen.values(), key=value_order)


def _heatmap(ax: Axes, cells: pd.DataFrame, alphas: list[Any], stops: list[Any]) -> None:
    grid = np.full((len(alphas), len(stops)), np.nan)
    index_a = {repr(a): i for i, a in enumerate(alphas)}
    index_s = {repr(s): j for j, s in enumerate(stops)}
    for (a, s), part in cells.groupby([cells["alpha"].map(repr), cells["stop"].map(repr)]):
        values = part["value"].astype(float).dropna()
        if len(values):
            grid[index_a[a], index_s[s]] = values.mean()
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#dddddd")
    ax.imshow(grid, vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto", origin="lower")
    for i in range(len(alphas)):
        for j in range(len(stops)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if grid[i, j] > 0.6 else "white")
    ticks = ["never" if s is None else L.format_value(L.STOP, s) for s in stops]
    ax.set_xticks(range(len(stops)), ticks, fontsize=8)
    ax.set_yticks(range(len(alphas)), [L.format_value(L.ALPHA, a) for a in alphas], fontsize=8)


def _scatter(ax: Axes, cells: pd.DataFrame, budget: float) -> None:
    """One point per trial: switch-off epoch across (never = the budget), α up (log scale)."""
    stops = [budget if s is None else float(s) for s in cells["stop"]]
    alphas = [np.nan if a is None else float(a) for a in cells["alpha"]]
    ax.scatter(stops, alphas, c=cells["value"].astype(float), vmin=0, vmax=1, cmap="viridis",
               s=40, edgecolors="black", linewidths=0.4)
    if all(a > 0 for a in alphas if np.isfinite(a)):
        ax.set_yscale("log")
    ax.axvline(budget, color="grey", lw=0.6, ls=":")


def rare_heatmap(data: SweepData) -> Section:
    """(b) Rare-feature test accuracy over α × switch-off epoch, faceted by label scheme."""
    slug, title = "rare_accuracy_heatmap", "Rare-feature test accuracy over α × switch-off epoch"
    metric = L.RARE if data.has_metric(L.RARE) else L.ACC
    if not data.has_metric(metric):
        return skipped(slug, title, "No test accuracy was reported by this sweep.")
    if L.ALPHA not in data.varying and L.STOP not in data.varying:
        return skipped(slug, title, "This sweep varies neither α nor the switch-off epoch.")
    layout = facets.choose_layout(data, hue=(), cols=(L.SCHEME,), free=(L.ALPHA, L.STOP))
    schemes = facets.facet_values(data, layout.cols) if layout.cols == L.SCHEME else [None]
    alphas, stops = _axis_values(data, L.ALPHA), _axis_values(data, L.STOP)
    continuous = len(alphas) > MAX_CELLS or len(stops) > MAX_CELLS
    budget = float(data.trials.get(CONFIG_PREFIX + "optim.epochs", pd.Series([1000])).max())
    fig = Figure(figsize=(2.9 * len(schemes) + 1.4, 2.7 * len(SCOPES) + 0.8), layout="constrained")
    axes = fig.subplots(len(SCOPES), len(schemes), squeeze=False, sharex=True, sharey=True)
    reprs: dict[str, np.ndarray] = {}
    for i, (scope, scope_text) in enumerate(SCOPES):
        for j, scheme in enumerate(schemes):
            ax = axes[i][j]
            cells = _cells(data, metric, scope, scheme, layout.pinned, reprs)
            if continuous:
                _scatter(ax, cells, budget)
            else:
                _heatmap(ax, cells, alphas, stops)
            head = L.format_setting(L.SCHEME, scheme) + ", " if scheme is not None else ""
            ax.set_title(head + scope_text, fontsize=9)
            if i == len(SCOPES) - 1:
                ax.set_xlabel(L.key_name(L.STOP))
            if j == 0:
                ax.set_ylabel(L.key_name(L.ALPHA))
    scale = ScalarMappable(norm=Normalize(0.0, 1.0), cmap="viridis")
    fig.colorbar(scale, ax=axes, label=L.metric_name(metric), shrink=0.8)
    fig.suptitle(f"{L.metric_name(metric)}\nover α × switch-off epoch", fontsize=11)
    return Section(slug, title, _caption(data, metric, layout, continuous, budget), fig)


def _caption(data: SweepData, metric: str, layout: facets.Layout, continuous: bool,
             budget: float) -> str:
    parts = [f"Each cell: {L.metric_name(metric)} (mean over seeds) at the last logged epoch "
             f"(top) and at the epoch chosen on {data.objective} (bottom). Switch-off epoch "
             "0 and α = 0 are ERM; \"never\" is Mixup throughout."]
    if metric != L.RARE:
        parts.append("This sweep's test set has no rare/common split: overall test accuracy.")
    if continuous:
        parts.append(f"Continuous search: one point per trial, coloured by its value; \"never\" "
                     f"is drawn at the budget ({budget:g} epochs, dotted line).")
    if layout.pinned:
        parts.append(f"Other settings held at the best configuration's: {layout.pinned_text()}.")
    if layout.folded:
        names = ", ".join(L.key_name(k) for k in layout.folded)
        parts.append(f"Cells average over {names}.")
    return " ".join(parts)
