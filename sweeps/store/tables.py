"""The sweep's records as two tables, and the ranking that ``best`` prints.

* trials: one row per trial: ``trial_id``, ``status``, ``node_id``, ``error``, timings,
  ``epochs`` (last reported), ``best_epoch`` (by the sweep's objective, a validation metric),
  ``stands_for`` and ``merged`` (the grid points that train like this trial and were not run),
  ``pack`` (the Ray Tune trial that trained it in a pack, or null),
  ``config/<dotted key>`` for the whole resolved trial config, and ``best/<metric>`` /
  ``last/<metric>`` summaries (every metric, test ones included, at the best epoch and at the
  last one).
* epochs: one row per (trial, logged epoch): ``trial_id``, ``epoch`` and every metric.

The same ranking runs on tables read from Parquet or from MLflow, so both sources agree, and
one ordering (:func:`order_key`, :data:`TIE_RULE`) decides every "best" the package prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd

from sweeps.store import spread
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX, LAST_PREFIX, STD_SUFFIX
from sweeps.store.records import TrialRecord

Scope = Literal["best-epoch", "last"]
#: Values closer than this count as tied (means of the same seeds' accuracies tie exactly).
TIE_TOLERANCE = 1e-12
#: Trials-table columns: how many grid points of the plan the trial stands for (itself and the
#: points merged into it), and those merged points as JSON (None when there are none).
STANDS_FOR = "stands_for"
#: The switch-off epoch's column and its value for "Mixup is never switched off" (stored as a
#: missing value; a category of its own in the DataFrames ``best`` returns, see :func:`with_never`).
STOP_COLUMN = f"{CONFIG_PREFIX}mixup.stop_epoch"
NEVER = "never"
#: How a user may spell a missing value in ``where`` (the CLI's ``--where`` spellings).
NULL_SPELLINGS = frozenset({NEVER, "null", "None", "none", "~", ""})
MERGED = "merged"


#: How trials and epochs are ordered wherever an answer is chosen: ``best``, the report, the
#: live display and each trial's best epoch all use :func:`order_key`.
TIE_RULE = ("ties on the value are broken by the lower std over seeds, then the earlier epoch, "
            "then the earlier trial id")


def order_key(value: float, std: float | None, epoch: int, trial_id: str,
              mode: str) -> tuple[float, float, int, str]:
    """Sorts best first: by ``value`` (mean over seeds), then :data:`TIE_RULE`."""
    spread = std if std is not None and math.isfinite(std) else 0.0
    return (-value if mode == "max" else value, spread, epoch, trial_id)


def is_selection_on_test(metric: str) -> bool:
    return metric.startswith("test/")


def optimistic_warning(metric: str) -> str | None:
    """The one warning printed when an answer is chosen on the test set; None otherwise."""
    if not is_selection_on_test(metric):
        return None
    honest = "val/" + metric[len("test/"):]
    return (f"warning: choosing by {metric} picks the answer on the test set that then reports "
            f"it, so its test value is optimistic; choose by {honest} instead")


def _best_epoch(epochs: dict[int, dict[str, float]], metric: str, mode: str) -> int | None:
    """The epoch with the best finite value of ``metric`` (ties: :data:`TIE_RULE`)."""
    candidates = [order_key(m[metric], m.get(metric + STD_SUFFIX), e, "", mode)
                  for e, m in epochs.items() if metric in m and math.isfinite(m[metric])]
    return min(candidates)[2] if candidates else None


def trial_rows(records: Iterable[TrialRecord], *, metric: str, mode: str) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: r.trial_id):
        row: dict[str, Any] = {
            "trial_id": r.trial_id, "status": r.status, "node_id": r.node_id, "error": r.error,
            "started_at": r.started_at, "finished_at": r.finished_at,
            "compute_seconds": r.compute_seconds, "epochs": r.last_epoch,
            STANDS_FOR: 1 + len(r.merged),
            MERGED: json.dumps(r.merged, sort_keys=True) if r.merged else None,
            "pack": r.pack,
        }
        best = _best_epoch(r.epochs, metric, mode)
        row["best_epoch"] = best
        row.update({f"{CONFIG_PREFIX}{k}": v for k, v in r.config.items()})
        if r.epochs:
            last = r.epochs[r.last_epoch]
            row.update({f"{LAST_PREFIX}{k}": v for k, v in last.items() if k != "epoch"})
            if best is not None:
                row.update({f"{BEST_PREFIX}{k}": v for k, v in r.epochs[best].items() if k != "epoch"})
        rows.append(row)
    return rows


def epoch_rows(records: Iterable[TrialRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: r.trial_id):
        for epoch, metrics in sorted(r.epochs.items()):
            rows.append({"trial_id": r.trial_id, **metrics, "epoch": epoch})
    return rows


def config_of(row: pd.Series) -> dict[str, Any]:
    """The flat dotted-key config of a trials-table row, with pandas' missing values (and the
    switch-off epoch's ``never``) as None."""
    config = {}
    for column, value in row.items():
        if isinstance(column, str) and column.startswith(CONFIG_PREFIX):
            missing = _missing(value) or (column == STOP_COLUMN and value == NEVER)
            config[column[len(CONFIG_PREFIX):]] = None if missing else _plain(value)
    return config


def with_never(ranked: pd.DataFrame) -> pd.DataFrame:
    """``ranked`` with the switch-off epoch as an ordered category: its epochs ascending, then
    ``"never"`` (Mixup kept on), so a ``groupby`` over it keeps the "never" group (a missing
    value would be dropped) and sorting puts it last."""
    if STOP_COLUMN not in ranked.columns:
        return ranked
    column = ranked[STOP_COLUMN]
    missing = column.map(_missing).astype(bool)
    epochs = sorted({int(v) for v in column[~missing]})
    values = [NEVER if gone else int(v) for v, gone in zip(column, missing, strict=True)]
    out = ranked.copy()
    out[STOP_COLUMN] = pd.Categorical(values, categories=[*epochs, NEVER], ordered=True)
    return out


def where_value(value: Any) -> Any:
    """A ``where`` value as the CLI reads it: ``"never"``/``"null"`` are None, a string that
    YAML reads as a number or boolean (``"1.0"``, ``"20"``, ``"true"``) is that value."""
    if not isinstance(value, str):
        return value
    if value.strip() in NULL_SPELLINGS:
        return None
    from sweeps.spec import yaml_numbers

    try:
        parsed = yaml_numbers.safe_load(value)
    except Exception:  # not YAML: compared as the string it is
        return value
    return parsed if isinstance(parsed, (int, float, bool)) else value


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def rank(trials: pd.DataFrame, epochs: pd.DataFrame, *, metric: str, mode: str,
         scope: Scope, top: int | None = None, seeds: int | None = None) -> pd.DataFrame:
    """Trials ordered by ``metric`` at their best epoch or last epoch, best first.

    Returns one row per trial that reported ``metric``: ``trial_id``, ``status``, ``epoch``
    (the chosen epoch), ``value``, ``ties`` (how many trials share the top value), the trial's
    ``config/...`` columns and every metric at that epoch. Given ``seeds`` (how many each mean
    is over), every metric also gets its uncertainty (:func:`with_uncertainty`). Trials without
    a finite value are left out. The best epoch of a trial and the order of trials both follow
    :func:`order_key`.
    """
    if metric not in epochs.columns:
        known = sorted(c for c in epochs.columns if c not in ("trial_id", "epoch"))
        raise KeyError(f"--metric {metric!r}: not a reported metric (known: {', '.join(known)})")
    finite = epochs[epochs[metric].notna()].sort_values(["trial_id", "epoch"])
    finite = finite[finite[metric].map(math.isfinite)]
    std_col = metric + STD_SUFFIX
    stds = finite[std_col] if std_col in finite.columns else pd.Series(math.nan, finite.index)
    keys = [order_key(float(v), None if pd.isna(s) else float(s), int(e), str(t), mode)
            for v, s, e, t in zip(finite[metric], stds, finite["epoch"], finite["trial_id"],
                                  strict=True)]
    finite = finite.assign(_key=keys)
    if scope == "last":
        chosen = finite.groupby("trial_id", sort=True).tail(1)
    else:
        chosen = finite.sort_values("_key").groupby("trial_id", sort=True).head(1)
    chosen = chosen.sort_values("_key")
    top_value = chosen[metric].iloc[0] if len(chosen) else math.nan
    ties = int((chosen[metric] - top_value).abs().le(TIE_TOLERANCE).sum()) if len(chosen) else 0
    chosen = chosen.drop(columns="_key").rename(columns={metric: "value"})
    chosen = chosen.assign(**{metric: lambda d: d["value"]}, ties=ties)
    config_cols = ["trial_id", "status",
                   *[c for c in trials.columns
                     if c.startswith(CONFIG_PREFIX) or c in (STANDS_FOR, MERGED)]]
    merged = chosen.merge(trials[config_cols], on="trial_id", how="left", sort=False)
    merged = merged.reset_index(drop=True)
    merged = merged.head(top) if top is not None else merged
    return merged if seeds is None else with_uncertainty(merged, seeds=seeds)


def _metric_columns(ranked: pd.DataFrame) -> list[str]:
    """The metric columns of a ranking: means and their ``_std``, no derived column."""
    return [c for c in ranked.columns
            if c not in ("trial_id", "status", "value", "epoch", "ties", STANDS_FOR, MERGED)
            and not c.startswith(CONFIG_PREFIX) and not c.endswith(spread.DERIVED_SUFFIXES)]


def with_uncertainty(ranked: pd.DataFrame, *, seeds: int) -> pd.DataFrame:
    """``ranked`` with each metric's uncertainty over ``seeds`` seeds beside it, computed by
    :func:`sweeps.store.spread.uncertainty_columns`: ``<metric>_ci_low`` and ``_ci_high`` (the
    95% interval within the metric's range; NaN with fewer than 3 seeds or none that means
    anything) and, for accuracies, ``<metric>_seeds_at_least`` and ``_seeds_at_most`` (how many
    seeds reached ``spread.REACHED``; nullable integers)."""
    means = [c for c in _metric_columns(ranked) if not c.endswith(STD_SUFFIX)]
    columns: dict[str, list[Any]] = {
        column: [] for name in means for column in spread.uncertainty_columns(name, None, None, 1)}
    for _, row in ranked.iterrows():
        for name in means:
            std = row.get(name + STD_SUFFIX)
            derived = spread.uncertainty_columns(name, None if _missing(row[name]) else row[name],
                                                 None if _missing(std) else std, seeds)
            for column, value in derived.items():
                columns[column].append(value)
    out = ranked.copy()
    for column, values in columns.items():
        if column.endswith((spread.SEEDS_AT_LEAST, spread.SEEDS_AT_MOST)):
            out[column] = pd.array(values, dtype="Int64")
        else:
            out[column] = [math.nan if v is None else float(v) for v in values]
    return out


def ranked_records(ranked: pd.DataFrame, *, seeds: int) -> list[dict[str, Any]]:
    """``best --json``: objects with ``trial_id``, ``epoch``, ``value``, ``ties``, ``config``
    (flat dotted keys), ``metrics`` (means and ``_std``), ``ci95`` ([low, high] of each metric
    that has an interval over ``seeds`` seeds, see :mod:`sweeps.store.spread`),
    ``seeds_reached`` ([fewest, most] seeds at or above ``reached_threshold``, per accuracy) and
    ``stands_for`` (grid points merged into the trial)."""
    out = []
    metric_cols = _metric_columns(ranked)
    for _, row in ranked.iterrows():
        metrics = {c: (None if _missing(row[c]) else float(row[c])) for c in metric_cols}
        ci95: dict[str, list[float]] = {}
        reached: dict[str, list[int]] = {}
        for name, mean in metrics.items():
            if mean is None or name.endswith(STD_SUFFIX):
                continue
            std = metrics.get(name + STD_SUFFIX)
            if (bounds := spread.interval(mean, std, seeds, metric=name)) is not None:
                ci95[name] = list(bounds)
            if spread.is_accuracy(name) and seeds > 1:
                counts = spread.seeds_reached(mean, std, seeds, metric=name)
                if counts is not None:
                    reached[name] = list(counts)
        stands = row.get(STANDS_FOR)
        out.append({
            "trial_id": row["trial_id"], "status": row["status"], "epoch": int(row["epoch"]),
            "value": float(row["value"]), "ties": int(row["ties"]), "config": config_of(row),
            "metrics": metrics, "ci95": ci95, "seeds_reached": reached,
            "reached_threshold": spread.REACHED, "seeds": seeds,
            "stands_for": 1 if stands is None or _missing(stands) else int(stands),
        })
    return out


def pareto(ranked: pd.DataFrame, objectives: list[tuple[str, str]]) -> pd.DataFrame:
    """The rows of ``ranked`` no other row dominates on ``objectives`` ((metric, mode) pairs,
    each read at the row's chosen epoch): at least as good on every one and better on one.
    Rows with a missing value are left out; the order of ``ranked`` is kept."""
    for metric, _ in objectives:
        if metric not in ranked.columns:
            raise KeyError(f"--pareto: {metric} is not a metric of this sweep")
    signs = [1.0 if mode == "max" else -1.0 for _, mode in objectives]
    points = [[sign * float(row[m]) for (m, _), sign in zip(objectives, signs, strict=True)]
              for _, row in ranked.iterrows()]
    finite = [all(math.isfinite(v) for v in p) for p in points]
    keep = []
    for i, p in enumerate(points):
        if not finite[i]:
            continue
        dominated = any(finite[j] and all(a >= b for a, b in zip(q, p, strict=True))
                        and any(a > b for a, b in zip(q, p, strict=True))
                        for j, q in enumerate(points) if j != i)
        keep.append(not dominated)
    mask = [False] * len(points)
    kept = iter(keep)
    for i in range(len(points)):
        if finite[i]:
            mask[i] = next(kept)
    return ranked[mask]


def where(trials: pd.DataFrame, wanted: dict[str, Any]) -> pd.DataFrame:
    """The trials whose config, or a grid point merged into them, has every ``wanted`` value
    (None, or a CLI spelling such as ``"never"``, matches a missing value; ``"1.0"`` matches
    1.0: :func:`where_value`). An unknown key is a KeyError naming it."""
    wanted = {key: where_value(value) for key, value in wanted.items()}
    for key in wanted:
        if f"{CONFIG_PREFIX}{key}" not in trials.columns:
            known = sorted(c[len(CONFIG_PREFIX):] for c in trials.columns
                           if c.startswith(CONFIG_PREFIX))
            raise KeyError(f"--where {key}: not a config key of this sweep (keys: "
                           f"{', '.join(known)})")

    def same(value: Any, target: Any) -> bool:
        if target is None or _missing(value):
            return target is None and _missing(value)
        return bool(_plain(value) == target)

    def matches(row: pd.Series) -> bool:
        points = [config_of(row)]
        merged = row.get(MERGED)
        if isinstance(merged, str) and merged:
            points += [{**points[0], **p} for p in json.loads(merged)]
        return any(all(same(p.get(k), v) for k, v in wanted.items()) for p in points)

    return trials[trials.apply(matches, axis=1)] if len(trials) else trials


def _expanded(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: a trial that stands for merged points is repeated for each."""
    if MERGED not in trials.columns:
        return trials
    rows = []
    for _, row in trials.iterrows():
        rows.append(row)
        merged = row[MERGED]
        for point in (json.loads(merged) if isinstance(merged, str) and merged else []):
            copy = row.copy()
            for key, value in point.items():
                copy[f"{CONFIG_PREFIX}{key}"] = value
            rows.append(copy)
    return pd.DataFrame(rows).reset_index(drop=True)


def marginals(trials: pd.DataFrame, column: str) -> dict[str, list[tuple[Any, float, int]]]:
    """For each config key that varies across grid points: (value, mean of ``column``, points).

    A quick read of which factor matters, printed at the end of a sweep; with a full grid each
    value's mean is over the same mix of the other factors, so the means compare fairly.
    """
    out: dict[str, list[tuple[Any, float, int]]] = {}
    if column not in trials.columns:
        return out
    trials = _expanded(trials)  # a merged trial counts once for every grid point it stands for
    for config_col in [c for c in trials.columns if c.startswith(CONFIG_PREFIX)]:
        never = NEVER if config_col == STOP_COLUMN else "null"
        keys = trials[config_col].map(lambda v, never=never: never if _missing(v) else _plain(v))
        if keys.nunique() < 2:
            continue
        groups = trials.groupby(keys, sort=False)[column]
        rows = [(value, float(series.mean()), int(series.count())) for value, series in groups]
        out[config_col[len(CONFIG_PREFIX):]] = sorted(rows, key=lambda r: (str(type(r[0])), r[0]))
    return out
