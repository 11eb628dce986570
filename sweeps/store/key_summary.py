"""Per-key summaries: the mean of a metric for each level of each searched key, with its interval.

What ``best NAME --by KEY``, the end of ``run`` and the report's answer box print. For each
searched key and each of its levels (a grid or choice value; for a sampled key or one with many
values, a bin of values on the key's scale), over all other keys:

* the mean of the metric at each trial's chosen epoch (the trials table's ``best/<metric>``),
  over grid points: a merged trial counts once for every grid point it stands for;
* a 95% interval within the metric's range, over the level's *trials* (each one point, its mean
  over seeds); computed by :func:`sweeps.store.spread.interval` on their mean and spread, with
  Kish's effective number of trials when merged trials weigh more than one (docs/science.md,
  "Per-key summaries"); none below :data:`sweeps.store.spread.MIN_SEEDS` effective trials;
* n: grid points, distinct trials and seed runs behind the mean.

Nothing here imports torch, Ray or MLflow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweeps.store import spread
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX
from sweeps.store.tables import MERGED

#: Dimension kinds whose values are drawn, not listed: always binned when they take more
#: values than :data:`BINS`.
SAMPLED_KINDS = frozenset({"uniform", "loguniform", "quniform", "randint"})
#: A numeric key with more distinct values than this is binned, whatever its kind.
MAX_LEVELS = 8
#: How many bins a binned key gets: fewer where that leaves a bin under
#: :data:`sweeps.store.spread.MIN_SEEDS` points (too few for an interval), at least 2.
BINS = 5
#: The level of a missing value: Mixup never switched off, or an unset key.
NEVER, NULL = "never", "null"
STOP_KEY = "mixup.stop_epoch"
INTERVAL_METHOD = ("95% interval of the mean over the level's trials (each one value, its mean "
                   "over seeds), inside the metric's range: Wilson with the trials' spread for "
                   "accuracies, t on the log scale for losses, t otherwise; Kish's effective "
                   "number of trials where a merged trial stands for several grid points; none "
                   f"below {spread.MIN_SEEDS} trials")


@dataclass(frozen=True)
class KeyLevel:
    """One level of a key.

    Attributes:
        label: How it prints: ``0.1``, ``same``, ``never``, or a bin ``[0.001, 0.01)``.
        value: The config value (None: missing), or a bin's (low, high).
        mean: Mean of the metric over the level's grid points.
        low: The interval's low end (None: no interval; ``note`` says why).
        high: The interval's high end.
        points: Grid points behind the mean (a merged trial once for each it stands for).
        trials: Distinct trials behind the mean.
        seed_runs: Seed runs behind the mean (trials × seeds).
        note: Why there is no interval (None when there is one).
    """

    label: str
    value: Any
    mean: float
    low: float | None
    high: float | None
    points: int
    trials: int
    seed_runs: int
    note: str | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class KeySummary:
    """The levels of one searched key, in the key's order (a missing value last).

    Attributes:
        key: The dotted config key.
        kind: Its dimension kind (``grid``, ``loguniform``, ...; "" when unknown).
        binned: Whether its levels are bins of values.
        log_scale: Whether its bins were cut on the log scale (``loguniform``).
        levels: Its levels.
    """

    key: str
    kind: str
    binned: bool
    log_scale: bool
    levels: tuple[KeyLevel, ...]

    def extremes(self) -> tuple[KeyLevel, KeyLevel] | None:
        """(lowest-mean, highest-mean) level; None with fewer than two levels."""
        if len(self.levels) < 2:
            return None
        ordered = sorted(self.levels, key=lambda lv: lv.mean)
        return ordered[0], ordered[-1]

    @property
    def moves(self) -> float:
        """How far the mean moves across the key's levels (highest minus lowest mean)."""
        ends = self.extremes()
        return 0.0 if ends is None else ends[1].mean - ends[0].mean


@dataclass(frozen=True)
class KeySummaries:
    """Every summarised key, with what the means are of.

    Attributes:
        metric: The metric, e.g. ``val/acc_rare``.
        column: The trials-table column the means are of (``best/<metric>``).
        seeds: Seeds per trial.
        keys: One summary per key, in the order asked for.
    """

    metric: str
    column: str
    seeds: int
    keys: tuple[KeySummary, ...]

    def __getitem__(self, key: str) -> KeySummary:
        for summary in self.keys:
            if summary.key == key:
                return summary
        raise KeyError(key)

    def sentence(self, name: Callable[[str], str] = str, metric: str | None = None) -> str:
        """One sentence read off the summaries (see :func:`sentence`)."""
        return sentence(self, name=name, metric=metric)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready row per (key, level), full precision (see :func:`level_records`)."""
        return level_records(self)


# ----------------------------------------------------------------------------- computing


def summarise(trials: pd.DataFrame, *, keys: Mapping[str, str | None], metric: str,
              seeds: int) -> KeySummaries:
    """The per-key summaries of ``metric`` at each trial's chosen epoch.

    Args:
        trials: The trials table (``sweeps.store.tables``).
        keys: Each key to summarise, with its dimension kind (None or "" when unknown).
        metric: The metric; its ``best/<metric>`` column is read.
        seeds: Seeds per trial (for the seed-run counts).

    Returns:
        One :class:`KeySummary` per key that is a config column of ``trials``, in ``keys``'
        order. Trials without a finite value of the metric count nowhere.
    """
    column = BEST_PREFIX + metric
    present = [k for k in keys if CONFIG_PREFIX + k in trials.columns]
    if column not in trials.columns or trials.empty:
        return KeySummaries(metric, column, seeds, ())
    points = _points(trials, present, column)
    return KeySummaries(metric, column, seeds, tuple(
        _summarise_key(points, key, keys[key] or "", metric, seeds) for key in present))


def _points(trials: pd.DataFrame, keys: Sequence[str], column: str) -> pd.DataFrame:
    """One row per grid point (``trial_id``, ``value``, each key): a trial that stands for merged
    points is repeated once for each, with the merged point's settings. Only the trials that
    merge are visited one by one, so a sampled sweep of 10,000 trials costs one copy."""
    config = [CONFIG_PREFIX + k for k in keys]
    frame = pd.DataFrame({"trial_id": trials["trial_id"].astype(str),
                          "value": pd.to_numeric(trials[column], errors="coerce").astype(float)})
    for key, col in zip(keys, config, strict=True):
        frame[key] = trials[col].astype(object).where(trials[col].notna(), None)
    frame = frame[np.isfinite(frame["value"].to_numpy())]
    if MERGED not in trials.columns:
        return frame.reset_index(drop=True)
    merged = trials.loc[frame.index, MERGED]
    extra = []
    for index, text in merged[merged.map(lambda v: isinstance(v, str) and bool(v))].items():
        row = frame.loc[index].to_dict()
        for point in json.loads(text):
            extra.append({**row, **{k: v for k, v in point.items() if k in row}})
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, columns=frame.columns)])
    return frame.reset_index(drop=True)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _summarise_key(points: pd.DataFrame, key: str, kind: str, metric: str,
                   seeds: int) -> KeySummary:
    values = [_plain(v) for v in points[key].tolist()]
    if key == STOP_KEY:  # "never" may come spelled out (the DataFrames' category)
        values = [None if v == NEVER else v for v in values]
    present = [v for v in values if v is not None]
    distinct = set(present)
    numeric = bool(present) and all(_is_number(v) for v in present)
    binned = numeric and (len(distinct) > MAX_LEVELS
                          or (kind in SAMPLED_KINDS and len(distinct) > BINS))
    log_scale = binned and kind == "loguniform" and min(present) > 0
    missing = NEVER if key == STOP_KEY else NULL
    if binned:
        order, labels, level_values = _bins(values, log_scale, missing)
    else:
        order, labels, level_values = _categories(values, missing)
    frame = pd.DataFrame({"level": order, "trial_id": points["trial_id"].to_numpy(),
                          "value": points["value"].to_numpy()})
    levels = []
    for position, group in frame.groupby("level", sort=True):
        per_trial = group.groupby("trial_id", sort=False)["value"].agg(["first", "size"])
        levels.append(_level(labels[int(position)], level_values[int(position)],
                             per_trial["first"].to_numpy(float),
                             per_trial["size"].to_numpy(float), metric, seeds))
    return KeySummary(key, kind, binned, log_scale, tuple(levels))


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (3, math.inf, "")
    if _is_number(value):
        return (1, float(value), "")
    if isinstance(value, bool):
        return (0, float(value), "")
    return (2, 0.0, str(value))


def _categories(values: list[Any], missing: str) -> tuple[list[int], list[str], list[Any]]:
    """Each distinct value a level, in the key's order (a missing value last)."""
    def same(v: Any) -> tuple[str, Any]:  # 0 and 0.0 (a merged point read from JSON) are one
        return ("number", float(v)) if _is_number(v) else ("other", repr(v))

    distinct: dict[tuple[str, Any], Any] = {}
    for v in values:
        known = distinct.setdefault(same(v), v)
        if isinstance(v, int) and not isinstance(known, int) and _is_number(v):
            distinct[same(v)] = v  # an integer spelling wins: the epoch 0, not 0.0
    ordered = sorted(distinct.values(), key=_sort_key)
    position = {same(v): i for i, v in enumerate(ordered)}
    labels = [missing if v is None else format_number(v) for v in ordered]
    return [position[same(v)] for v in values], labels, ordered


def _bins(values: list[Any], log_scale: bool, missing: str
          ) -> tuple[list[int], list[str], list[Any]]:
    """Up to :data:`BINS` bins of equal counts, their edges cut at quantiles on the key's scale
    (log for ``loguniform``); each labelled by its range, ``[low, high)``, the last closed."""
    present = np.array([float(v) for v in values if v is not None])
    scaled = np.log(present) if log_scale else present
    bins = max(2, min(BINS, len(present) // spread.MIN_SEEDS))
    cuts = np.quantile(scaled, np.linspace(0.0, 1.0, bins + 1))
    edges = np.unique(np.exp(cuts) if log_scale else cuts)
    edges[0], edges[-1] = present.min(), present.max()  # exp(log(x)) may miss x by a hair
    inner = edges[1:-1]
    count = len(edges) - 1
    labels = [f"[{format_number(edges[i])}, {format_number(edges[i + 1])}"
              + ("]" if i == count - 1 else ")") for i in range(count)]
    level_values: list[Any] = [(float(edges[i]), float(edges[i + 1])) for i in range(count)]
    order = [count if v is None else int(np.searchsorted(inner, float(v), side="right"))
             for v in values]
    if any(v is None for v in values):
        labels.append(missing)
        level_values.append(None)
    return order, labels, level_values


def _level(label: str, value: Any, trial_values: np.ndarray, weights: np.ndarray,
           metric: str, seeds: int) -> KeyLevel:
    """A level from its distinct trials' values and how many grid points each stands for."""
    total = float(weights.sum())
    mean = float(np.dot(weights, trial_values) / total)
    trials = len(trial_values)
    effective = total * total / float(np.dot(weights, weights))  # Kish: n when all weigh 1
    n = math.floor(effective + 1e-9)
    std = None
    if trials > 1:
        # reliability-weighted sample variance: the sample variance when every weight is 1
        squares = float(np.dot(weights, (trial_values - mean) ** 2))
        std = math.sqrt(squares / (total - float(np.dot(weights, weights)) / total))
    bounds = spread.interval(mean, std, n, metric=metric)
    note = None
    if bounds is None:
        unequal = not np.allclose(weights, weights[0])
        count = f"{trials} trial{'s' if trials != 1 else ''}" + (
            f", {effective:.1f} effective" if unequal else "")
        if n < spread.MIN_SEEDS:
            note = f"{count}: no interval"
        elif std is not None and std <= spread.ZERO_SPREAD:
            note = f"{count} all equal: no interval"
        else:
            note = f"{count}: no interval"
    return KeyLevel(label, value, mean, None if bounds is None else bounds[0],
                 None if bounds is None else bounds[1], round(total), trials,
                 trials * max(1, seeds), note)


# ----------------------------------------------------------------------------- reading


def format_number(value: Any) -> str:
    """A number as the tables print it: 4 significant digits, a float keeping its point
    (``0.3`` for 0.30000000000000004, ``1e-05``, ``0.9553``, ``1.0``, ``450``); anything
    else as ``str`` gives it."""
    if isinstance(value, bool) or not _is_number(value) or isinstance(value, int):
        return str(value)
    text = f"{value:.4g}"
    plain_digits = text.lstrip("-").isdigit()  # 1.0 -> "1": keep it a float, "1.0"
    return text + ".0" if plain_digits else text


def _outwards(value: float, up: bool) -> float:
    """``value`` rounded to 4 significant digits away from the interval's centre."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10.0 ** (3 - math.floor(math.log10(abs(value))))
    slack = 1e-9
    return (math.ceil(value * scale - slack) if up else math.floor(value * scale + slack)) / scale


def format_interval(level: KeyLevel) -> str:
    """``[0.4385, 1]`` with its ends rounded outwards to 4 significant digits; the note when
    there is no interval."""
    if level.low is None or level.high is None:
        return f"({level.note})" if level.note else ""
    return (f"[{format_number(_outwards(level.low, False))}, "
            f"{format_number(_outwards(level.high, True))}]")


def _overlap(low: KeyLevel, high: KeyLevel) -> str:
    missing = [lv for lv in (low, high) if not lv.has_interval]
    if missing:
        why = [f"{lv.label} ({(lv.note or '').removesuffix(': no interval')})" for lv in missing]
        return "no interval at " + " or ".join(why)
    assert low.high is not None and high.low is not None
    return "intervals overlap" if low.high >= high.low else "intervals do not overlap"


def _moves(summary: KeySummary) -> str:
    ends = summary.extremes()
    assert ends is not None
    low, high = ends
    return (f"{format_number(low.mean)} at {low.label} → {format_number(high.mean)} at "
            f"{high.label}, {_overlap(low, high)}")


def sentence(summaries: KeySummaries, *, name: Callable[[str], str] = str,
             metric: str | None = None) -> str:
    """Which key moves the mean of the metric most and which least, read off the levels:
    ``switch-off epoch moves the mean val/acc_rare most (0.321 at 200 → 0.955 at never,
    intervals do not overlap); α least (0.566 at 0.1 → 0.667 at 1.0, intervals overlap).``
    Whether the extreme levels' intervals overlap is said, whichever way it is. ``name``
    names a key, ``metric`` the metric (default: its key)."""
    compared = sorted((s for s in summaries.keys if s.extremes() is not None),
                      key=lambda s: -s.moves)
    metric = metric or summaries.metric
    if not compared:
        return (f"No searched key has two levels with a finite mean {metric}, so there is "
                "nothing to compare.")
    top = compared[0]
    if len(compared) == 1:
        return f"{name(top.key)} moves the mean {metric} across its levels ({_moves(top)})."
    last = compared[-1]
    return (f"{name(top.key)} moves the mean {metric} most ({_moves(top)}); "
            f"{name(last.key)} least ({_moves(last)}).")


def level_records(summaries: KeySummaries) -> list[dict[str, Any]]:
    """One row per (key, level): ``key``, ``kind``, ``binned``, ``level`` (its label),
    ``value`` (the config value, null when missing, [low, high] for a bin), ``mean``,
    ``ci_low``, ``ci_high`` (null without an interval), ``points``, ``trials``,
    ``seed_runs`` and ``note``; numbers at full precision."""
    rows = []
    for summary in summaries.keys:
        for level in summary.levels:
            value = list(level.value) if isinstance(level.value, tuple) else level.value
            rows.append({"key": summary.key, "kind": summary.kind, "binned": summary.binned,
                         "level": level.label, "value": value, "mean": level.mean,
                         "ci_low": level.low, "ci_high": level.high, "points": level.points,
                         "trials": level.trials, "seed_runs": level.seed_runs,
                         "note": level.note})
    return rows


def table_lines(summaries: KeySummaries, *, name: Callable[[str], str] = str) -> list[str]:
    """The summaries as aligned text rows (header first): key, level, mean, 95% interval, n
    (grid points), trials, seed runs; numbers with 4 significant digits."""
    header = ["key", "level", "mean", "95% interval", "n", "trials", "seed runs"]
    rows = []
    for summary in summaries.keys:
        for i, level in enumerate(summary.levels):
            rows.append([name(summary.key) if i == 0 else "", level.label,
                         format_number(level.mean), format_interval(level), str(level.points),
                         str(level.trials), str(level.seed_runs)])
    widths = [max(len(h), *(len(r[j]) for r in rows)) if rows else len(h)
              for j, h in enumerate(header)]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]
