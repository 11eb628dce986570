"""A sampled search as it was sampled: every trial at its value of each key, and the search's
progress trial by trial.

* ``search_slices``: one panel per searched key, each trial's objective at its chosen epoch
  (``best/<objective>``, the epoch ``best`` ranks it at) against its value of the key, on the
  key's own scale: log for ``loguniform``, linear for ``uniform``, ``quniform`` and ``randint``,
  evenly spaced categories for a ``choice`` or ``grid`` key (spread a little sideways, so
  repeated values stay apart). Bars: ± the std over the trial's seeds. Colour: the trial's place
  in start order, so where the search went late shows; a red ring marks the best trial. Each
  panel's title gives n, the trials drawn.
* ``search_history``: the objective at each trial's chosen epoch in start order (the trials
  table's ``started_at``), with the best so far as a step line.

Both are drawn for sampled sweeps: random or Optuna search, or any key drawn from a range. A
pure grid is left out with a note: its trials run in the plan's order (no search history to
read), and its slices would repeat the heatmap's cells and the per-key means, which already show
every level with n and its spread. Chance accuracy (1/K, ``fig_heatmap.chance_accuracy``) is a
dotted line where the objective is an accuracy and the class count is known.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dashboards import labels as L
from dashboards.fig_heatmap import CHANCE_COLOUR, chance_accuracy, sampled_axis
from dashboards.section import Section, skipped
from dashboards.sweep_data import CONFIG_PREFIX, SweepData, value_order
from sweeps.store import spread
from sweeps.store.layout import STD_SUFFIX

SLICES, HISTORY = "search_slices", "search_history"
SLICES_TITLE = "Each trial at its value of every searched key"
HISTORY_TITLE = "The search, trial by trial, with the best so far"
PANELS_PER_ROW = 3
PANEL_W, PANEL_H = 3.4, 2.7
ORDER_CMAP = "cividis"
#: Categories of a choice or grid key are spread over this share of the gap between them.
SPREAD = 0.35
_GOLDEN = 0.6180339887498949
#: Above this many trials the seed-std bars are left out (they would hide the points).
MAX_ERROR_BARS = 2000


def is_sampled(data: SweepData) -> bool:
    """Whether the sweep drew its trials (random or Optuna search, a key from a range) rather
    than running a grid; for a sweep whose kinds are unknown, a key with too many values for a
    grid's cells (``fig_heatmap.sampled_axis``)."""
    if data.algorithm in ("random", "optuna"):
        return True
    if data.space:
        return any(kind != "grid" for kind in data.space.values())
    return any(sampled_axis(data, key) for key in data.varying)


def _keys(data: SweepData) -> list[str]:
    """The searched keys the trials table holds, in the spec's order (the varying keys when
    the spec's are unknown)."""
    keys = [k for k in data.space if CONFIG_PREFIX + k in data.trials] or data.varying
    return list(keys)


def _kind(data: SweepData, key: str, values: list[Any]) -> str:
    """The key's dimension kind; for an unknown one, ``uniform`` when every value is a number,
    else ``choice``."""
    kind = data.space.get(key)
    if kind is not None:
        return kind
    numbers = [v for v in values if v is not None]
    if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        return "uniform"
    return "choice"


def _floats(data: SweepData, column: str) -> np.ndarray:
    if column not in data.trials:
        return np.full(len(data.trials), np.nan)
    return data.trials[column].astype(float).to_numpy(dtype=float, na_value=math.nan)


def start_order(data: SweepData) -> np.ndarray:
    """The trials table's rows in the order the trials started (``started_at``; a trial without
    a start time last; ties, such as the members of one pack, by trial id)."""
    started = _floats(data, "started_at")
    ids = data.trials["trial_id"].astype(str).to_numpy()
    return np.lexsort((ids, np.nan_to_num(started, nan=math.inf)))


def _best_rows(data: SweepData) -> set[int]:
    best = data.best_group()
    if best is None:
        return set()
    wanted = set(best.trial_ids)
    return {i for i, t in enumerate(data.trials["trial_id"].astype(str)) if t in wanted}


def _chance_line(ax: Axes, data: SweepData, metric: str) -> bool:
    chance = chance_accuracy(data) if spread.is_accuracy(metric) else None
    if chance is None:
        return False
    ax.axhline(chance, color=CHANCE_COLOUR, ls=":", lw=1.2, zorder=1)
    return True


def _slice(ax: Axes, data: SweepData, key: str, y: np.ndarray, err: np.ndarray,
           rank: np.ndarray, best: set[int]) -> int:
    """One key's panel; returns how many trials it draws."""
    values = data.column_values(key)
    kind = _kind(data, key, values)
    numeric = kind in ("uniform", "loguniform", "quniform", "randint")
    if numeric:
        x = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    else:
        distinct = sorted({repr(v): v for v in values}.values(), key=value_order)
        levels = {repr(v): v for v in distinct}
        position = {r: i for i, r in enumerate(levels)}
        jitter = ((rank * _GOLDEN) % 1.0 - 0.5) * SPREAD
        x = np.array([position[repr(v)] for v in values], dtype=float) + jitter
        ticks = ["never" if v is None and key == L.STOP else L.format_value(key, v)
                 for v in levels.values()]
        ax.set_xticks(range(len(levels)), ticks, fontsize=8,
                      rotation=30 if sum(map(len, ticks)) > 24 else 0)
        ax.set_xlim(-0.6, len(levels) - 0.4)
    shown = np.isfinite(x) & np.isfinite(y)
    if len(y) <= MAX_ERROR_BARS:
        ax.errorbar(x[shown], y[shown], yerr=np.nan_to_num(err[shown]), fmt="none",
                    ecolor="#b0b0b0", elinewidth=0.7, zorder=1)
    ax.scatter(x[shown], y[shown], c=rank[shown], cmap=ORDER_CMAP, vmin=0,
               vmax=max(1, len(rank) - 1), s=22, edgecolors="black", linewidths=0.3, zorder=2)
    ring = np.array([i in best for i in range(len(y))]) & shown
    if ring.any():
        ax.scatter(x[ring], y[ring], s=110, facecolors="none", edgecolors=CHANCE_COLOUR,
                   linewidths=1.4, zorder=3)
    if kind == "loguniform" and shown.any() and (x[shown] > 0).all():
        ax.set_xscale("log")
    n = int(shown.sum())
    ax.set_title(f"{L.key_name(key)} ({kind}) · n = {n}", fontsize=9)
    ax.set_xlabel(L.key_name(key) + (" (log scale)" if ax.get_xscale() == "log" else ""),
                  fontsize=8)
    return n


def search_slices(data: SweepData) -> Section:
    """Each trial's objective at its chosen epoch against each searched key, on its scale."""
    if not is_sampled(data):
        return skipped(SLICES, SLICES_TITLE, "A grid: the heatmap and the per-key means show "
                       "every level with n and its spread; slice plots are for sampled sweeps.")
    metric = data.objective
    keys = _keys(data)
    y = _floats(data, f"best/{metric}")
    if not keys or not np.isfinite(y).any():
        return skipped(SLICES, SLICES_TITLE, f"No trial reported {metric} at a chosen epoch.")
    err = _floats(data, f"best/{metric}{STD_SUFFIX}")
    order = start_order(data)
    rank = np.empty(len(order), dtype=float)
    rank[order] = np.arange(len(order))
    best = _best_rows(data)
    cols = min(PANELS_PER_ROW, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(PANEL_W * cols + 1.2, PANEL_H * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    chance = False
    for index, key in enumerate(keys):
        ax = axes[index // cols][index % cols]
        _slice(ax, data, key, y, err, rank, best)
        chance = _chance_line(ax, data, metric) or chance
        if index % cols == 0:
            ax.set_ylabel(f"{L.metric_name(metric)}\nat the chosen epoch", fontsize=8)
    for index in range(len(keys), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    scale = ScalarMappable(norm=Normalize(1, max(2, len(order))), cmap=ORDER_CMAP)
    fig.colorbar(scale, ax=axes, label="trial, in start order", shrink=0.8)
    fig.suptitle(f"{L.metric_name(metric)} at each trial's chosen epoch, by searched key",
                 fontsize=11)
    return Section(SLICES, SLICES_TITLE, _slices_caption(data, metric, chance), fig)


def _slices_caption(data: SweepData, metric: str, chance: bool) -> str:
    seeds = len(data.seeds)
    parts = [f"One point per trial: {L.metric_name(metric)} ({metric}) at the epoch chosen on it "
             "(the value `best` ranks), against the trial's value of each searched key on that "
             "key's scale (log for loguniform; a choice's values as categories, spread a little "
             "sideways). Colour: the trial's place in start order (light: late); red ring: the "
             "best trial; n: the trials drawn."]
    if seeds > 1 and len(data.trials) <= MAX_ERROR_BARS:
        parts.append(f"Grey bars: ± the std over the trial's {seeds} seeds.")
    if chance:
        parts.append("Dotted red line: chance accuracy (1/K).")
    return " ".join(parts)


def search_history(data: SweepData) -> Section:
    """The objective at each trial's chosen epoch in start order, and the best so far."""
    if not is_sampled(data):
        return skipped(HISTORY, HISTORY_TITLE, "A grid: its trials run in the plan's order, "
                       "so there is no search history to draw.")
    metric = data.objective
    y = _floats(data, f"best/{metric}")[start_order(data)]
    if not np.isfinite(y).any():
        return skipped(HISTORY, HISTORY_TITLE, f"No trial reported {metric} at a chosen epoch.")
    x = np.arange(1, len(y) + 1)
    running = (np.fmax if data.mode == "max" else np.fmin).accumulate(y)
    fig = Figure(figsize=(7.5, 3.4), layout="constrained")
    ax = fig.subplots()
    shown = np.isfinite(y)
    ax.scatter(x[shown], y[shown], c=x[shown] - 1, cmap=ORDER_CMAP, vmin=0,
               vmax=max(1, len(y) - 1), s=18, edgecolors="black", linewidths=0.3,
               label="trial", zorder=2)
    ax.step(x, running, where="post", color=CHANCE_COLOUR, lw=1.6, label="best so far", zorder=3)
    chance = _chance_line(ax, data, metric)
    ax.set_xlabel("trial, in start order")
    ax.set_ylabel(f"{L.metric_name(metric)}\nat the chosen epoch", fontsize=9)
    ax.set_title(f"{data.algorithm or 'sampled'} search · n = {int(shown.sum())} trials",
                 fontsize=10)
    ax.legend(loc="lower right" if data.mode == "max" else "upper right", fontsize=8)
    return Section(HISTORY, HISTORY_TITLE, _history_caption(data, metric, len(y), chance), fig)


def _history_caption(data: SweepData, metric: str, trials: int, chance: bool) -> str:
    best = "highest" if data.mode == "max" else "lowest"
    parts = [f"Each of the {trials} trials' {L.metric_name(metric)} ({metric}) at its chosen "
             f"epoch, in the order the trials started; the line is the {best} value so far. A "
             "line that still climbs at the right says more trials could pay."]
    if len(data.objectives) > 1:
        others = ", ".join(m for m, _ in data.objectives[1:])
        parts.append(f"The first objective only; the search also weighed {others}.")
    if chance:
        parts.append("Dotted red line: chance accuracy (1/K).")
    if data.algorithm == "optuna":
        parts.append(f"Optuna's own view of this study, with each trial's epochs and seed "
                     f"spread: optuna-dashboard STORAGE/{data.name}/optuna.journal (STORAGE: "
                     "sweep_results unless --storage said otherwise; pip install "
                     "optuna-dashboard).")
    return " ".join(parts)
