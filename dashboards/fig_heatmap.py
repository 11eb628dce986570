"""Rare-feature test accuracy over α × switch-off epoch, one heatmap per label scheme.

The grid answers the early-stopped Mixup question directly: along a row (one α), from ERM
(switch-off epoch 0) to Mixup throughout ("never"), where does rare-feature accuracy appear,
and does switching off early lose it? Each cell reads mean ± spread over its seed runs and
their count n. Cells use the raw config values, and a merged trial (one ERM run standing for
every α at switch-off 0, or for every switch-off epoch at α = 0: ``sweeps.store.tables.MERGED``)
fills every cell it stands for, so the ERM column and row are whole. Chance accuracy (1/K for
the feature-noise task's K classes) is marked on the colour bar, and cells below it are outlined.

Only a grid is drawn so: a sampled α or switch-off epoch (uniform, loguniform, quniform, randint)
would make one heatmap row per sampled value, one trial wide and grey elsewhere; such sweeps get
a note pointing to the slice plots (``dashboards.fig_sampled``) instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dashboards import facets
from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import (
    Scope,
    SweepData,
    value_order,
)
from sweeps.store.key_summary import SAMPLED_KINDS  # drawn from a range: never an axis
from sweeps.store.layout import STD_SUFFIX
from sweeps.store.tables import MERGED

#: With the dimension kinds unknown (a sweep recorded before they were), a key with more values
#: than this is taken for a sampled one.
MAX_CELLS = 12
SCOPES: tuple[tuple[Scope, str], ...] = (("last", "at the last epoch"),
                                         ("best", "at the best epoch"))
CHANCE_COLOUR = "#d62728"


def sampled_axis(data: SweepData, key: str) -> str | None:
    """The dimension kind of ``key`` when it is sampled from a range, else None; for a sweep
    whose kinds are unknown, "sampled" when it takes more than :data:`MAX_CELLS` values."""
    kind = data.space.get(key)
    if kind is not None:
        return kind if kind in SAMPLED_KINDS else None
    if not data.space and len(_axis_values(data, key)) > MAX_CELLS:
        return "sampled"
    return None


def chance_accuracy(data: SweepData) -> float | None:
    """1/K for the feature-noise task with K classes, the same in every trial; None where the
    records do not say (an image data set's classes come from its files, not the config)."""
    names = {v for v in data.column_values("data.name") if v is not None}
    if names - {"feature_noise"}:
        return None
    classes = {v for v in data.column_values("data.num_classes") if v is not None}
    if len(classes) != 1:
        return None
    k = int(next(iter(classes)))
    return 1.0 / k if k > 1 else None


def _axis_values(data: SweepData, key: str) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in data.column_values(key):
        seen.setdefault(repr(value), value)
    for point in _merged_points(data):
        if key in point:
            seen.setdefault(repr(point[key]), point[key])
    return sorted(seen.values(), key=value_order)


def _merged_points(data: SweepData) -> list[dict[str, Any]]:
    """Every grid point merged into some trial (``merged`` column), as dicts."""
    if MERGED not in data.trials:
        return []
    return [p for cell in data.trials[MERGED] if isinstance(cell, str) and cell
            for p in json.loads(cell)]


def _points(data: SweepData, keys: list[str]) -> pd.DataFrame:
    """One row per (trial, grid point it stands for): ``row`` (the trial's row in the trials
    table) and the value of each of ``keys`` there. A trial with no merged points is one row."""
    columns = {key: data.column_values(key) for key in keys}
    merged = (data.trials[MERGED].tolist() if MERGED in data.trials
              else [None] * len(data.trials))
    out: dict[str, list[Any]] = {"row": [], **{key: [] for key in keys}}
    for i, cell in enumerate(merged):
        own = {key: columns[key][i] for key in keys}
        for point in [{}, *(json.loads(cell) if isinstance(cell, str) and cell else [])]:
            out["row"].append(i)
            for key in keys:
                out[key].append(point.get(key, own[key]))
    # object columns: pandas would turn [0, 200, None] into floats with NaN
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in out.items()})


def _panel(points: pd.DataFrame, erm: np.ndarray, conditions: dict[str, Any]) -> pd.DataFrame:
    """The points of one panel: its label scheme and pinned keys match; an ERM trial's
    ``mixup.*`` keys do not apply, so they match every panel."""
    keep = np.ones(len(points), dtype=bool)
    for key, wanted in conditions.items():
        match = points[key].map(repr).to_numpy() == repr(wanted)
        if key.startswith(L.MIXUP_PREFIX):
            match |= erm[points["row"].to_numpy(dtype=int)]
        keep &= match
    return points[keep]


def _cell_stats(panel: pd.DataFrame, means: np.ndarray, stds: np.ndarray, seeds: int
                ) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(mean, pooled std, n seed runs) per (repr α, repr stop) cell; a trial counts once per
    cell however many of its merged points fall there."""
    out = {}
    keyed = panel.assign(a=panel[L.ALPHA].map(repr), s=panel[L.STOP].map(repr))
    for (a, s), part in keyed.groupby(["a", "s"], sort=False):
        rows = np.unique(part["row"].to_numpy(dtype=int))
        m, sd = means[rows], stds[rows]
        ok = np.isfinite(m)
        if not ok.any():
            continue
        m, sd = m[ok], np.nan_to_num(sd[ok])
        pooled = math.sqrt(float((sd ** 2).mean() + m.var()))  # law of total variance
        out[(str(a), str(s))] = (float(m.mean()), pooled, int(ok.sum()) * seeds)
    return out


def _cell_text(mean: float, std: float, n: int) -> str:
    spread = f"\n±{std:.2f}" if n > 1 else ""  # one seed run has no spread
    return f"{mean:.2f}{spread}\nn={n}"


def _heatmap(ax: Axes, stats: dict[tuple[str, str], tuple[float, float, int]],
             alphas: list[Any], stops: list[Any], chance: float | None) -> None:
    grid = np.full((len(alphas), len(stops)), np.nan)
    for i, a in enumerate(alphas):
        for j, s in enumerate(stops):
            found = stats.get((repr(a), repr(s)))
            if found is None:
                continue
            mean, std, n = found
            grid[i, j] = mean
            ax.text(j, i, _cell_text(mean, std, n), ha="center", va="center",
                    fontsize=7, linespacing=1.1, color="black" if mean > 0.6 else "white")
            if chance is not None and mean < chance:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False,
                                       edgecolor=CHANCE_COLOUR, linewidth=1.3, linestyle="--"))
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#dddddd")
    ax.imshow(grid, vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto", origin="lower")
    ticks = ["never" if s is None else L.format_value(L.STOP, s) for s in stops]
    ax.set_xticks(range(len(stops)), ticks, fontsize=8)
    ax.set_yticks(range(len(alphas)), [L.format_value(L.ALPHA, a) for a in alphas], fontsize=8)


def rare_heatmap(data: SweepData) -> Section:
    """(b) Rare-feature test accuracy over α × switch-off epoch, faceted by label scheme."""
    slug, title = "rare_accuracy_heatmap", "Rare-feature test accuracy over α × switch-off epoch"
    metric = L.RARE if data.has_metric(L.RARE) else L.ACC
    if not data.has_metric(metric):
        return skipped(slug, title, "No test accuracy was reported by this sweep.")
    if L.ALPHA not in data.varying and L.STOP not in data.varying:
        return skipped(slug, title, "This sweep varies neither α nor the switch-off epoch.")
    sampled = [(k, kind) for k in (L.ALPHA, L.STOP) if (kind := sampled_axis(data, k))]
    if sampled:
        named = " and ".join(f"{L.key_name(k)} ({kind})" for k, kind in sampled)
        return skipped(slug, title, f"Not a grid: {named} sampled, so a heatmap row per "
                       "sampled value would hold one trial. The slice plots show each trial "
                       "at its value on the key's scale.")
    layout = facets.choose_layout(data, hue=(), cols=(L.SCHEME,), free=(L.ALPHA, L.STOP))
    schemes = facets.facet_values(data, layout.cols) if layout.cols == L.SCHEME else [None]
    alphas, stops = _axis_values(data, L.ALPHA), _axis_values(data, L.STOP)
    seeds = max(1, len(data.seeds))
    keys = list(dict.fromkeys([L.ALPHA, L.STOP, L.SCHEME, *layout.pinned]))
    points = _points(data, keys)
    erm = np.array([kind == "ERM" for kind in data.trial_kinds()], dtype=bool)
    chance = chance_accuracy(data)
    fig = Figure(figsize=(3.1 * len(schemes) + 1.6, 2.9 * len(SCOPES) + 0.8), layout="constrained")
    axes = fig.subplots(len(SCOPES), len(schemes), squeeze=False, sharex=True, sharey=True)
    for i, (scope, scope_text) in enumerate(SCOPES):
        means = _floats(data, f"{scope}/{metric}")
        stds = _floats(data, f"{scope}/{metric}{STD_SUFFIX}")
        for j, scheme in enumerate(schemes):
            ax = axes[i][j]
            conditions = {**layout.pinned, **({L.SCHEME: scheme} if scheme is not None else {})}
            stats = _cell_stats(_panel(points, erm, conditions), means, stds, seeds)
            _heatmap(ax, stats, alphas, stops, chance)
            head = L.format_setting(L.SCHEME, scheme) + ", " if scheme is not None else ""
            ax.set_title(head + scope_text, fontsize=9)
            if i == len(SCOPES) - 1:
                ax.set_xlabel(L.key_name(L.STOP))
            if j == 0:
                ax.set_ylabel(L.key_name(L.ALPHA))
    scale = ScalarMappable(norm=Normalize(0.0, 1.0), cmap="viridis")
    bar = fig.colorbar(scale, ax=axes, label=L.metric_name(metric), shrink=0.8)
    if chance is not None:
        bar.ax.axhline(chance, color=CHANCE_COLOUR, linewidth=2.0)
        bar.ax.text(-0.1, chance, f"chance {chance:.2g}", transform=bar.ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=7, color=CHANCE_COLOUR)
    fig.suptitle(f"{L.metric_name(metric)}\nover α × switch-off epoch", fontsize=11)
    return Section(slug, title, _caption(data, metric, layout, chance), fig)


def _floats(data: SweepData, column: str) -> np.ndarray:
    if column not in data.trials:
        return np.full(len(data.trials), np.nan)
    return data.trials[column].astype(float).to_numpy(dtype=float, na_value=math.nan)


def _caption(data: SweepData, metric: str, layout: facets.Layout, chance: float | None) -> str:
    parts = [f"Each cell: {L.metric_name(metric)} at the last logged epoch (top) and at the "
             f"epoch chosen on {data.objective} (bottom): mean ± std over its n seed runs "
             "(trials × seeds, pooled). Switch-off epoch 0 and α = 0 are ERM, one run that "
             "fills every cell it stands for; \"never\" is Mixup throughout. Grey: no trial."]
    if chance is not None:
        parts.append(f"Chance accuracy ({chance:.2g} = 1/K for K classes) is the red line on "
                     "the colour bar; cells below it are outlined in red.")
    else:
        parts.append("Chance accuracy is not marked: the records do not give one class count "
                     "for every trial (an image data set's classes come from its files).")
    if metric != L.RARE:
        parts.append("This sweep's test set has no rare/common split: overall test accuracy.")
    if layout.pinned:
        parts.append(f"Other settings held at the best configuration's: {layout.pinned_text()}.")
    if layout.folded:
        names = ", ".join(L.key_name(k) for k in layout.folded)
        parts.append(f"Cells average over {names}.")
    return " ".join(parts)
