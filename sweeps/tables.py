"""The sweep's records as two tables, and the ranking that ``best`` prints.

* trials: one row per trial: ``trial_id``, ``status``, ``node_id``, ``error``, timings,
  ``epochs`` (last reported), ``best_epoch`` (by the sweep's objective), ``config/<dotted key>``
  for the whole resolved trial config, and ``best/<metric>`` / ``last/<metric>`` summaries
  (the metrics at the best epoch, and at the last one).
* epochs: one row per (trial, logged epoch): ``trial_id``, ``epoch`` and every metric.

The same ranking runs on tables read from Parquet or from MLflow, so both sources agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd

from sweeps.layout import BEST_PREFIX, CONFIG_PREFIX, LAST_PREFIX
from sweeps.records import TrialRecord

Scope = Literal["best-epoch", "last"]


def _best_epoch(epochs: dict[int, dict[str, float]], metric: str, mode: str) -> int | None:
    """The epoch with the best finite value of ``metric`` (earliest on ties)."""
    candidates = [(e, m[metric]) for e, m in sorted(epochs.items())
                  if metric in m and math.isfinite(m[metric])]
    if not candidates:
        return None
    pick = max if mode == "max" else min
    best_value = pick(v for _, v in candidates)
    return next(e for e, v in candidates if v == best_value)


def trial_rows(records: Iterable[TrialRecord], *, metric: str, mode: str) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: r.trial_id):
        row: dict[str, Any] = {
            "trial_id": r.trial_id, "status": r.status, "node_id": r.node_id, "error": r.error,
            "started_at": r.started_at, "finished_at": r.finished_at,
            "compute_seconds": r.compute_seconds, "epochs": r.last_epoch,
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
    """The flat dotted-key config of a trials-table row, with pandas' missing values as None."""
    config = {}
    for column, value in row.items():
        if isinstance(column, str) and column.startswith(CONFIG_PREFIX):
            config[column[len(CONFIG_PREFIX):]] = None if _missing(value) else _plain(value)
    return config


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def rank(trials: pd.DataFrame, epochs: pd.DataFrame, *, metric: str, mode: str,
         scope: Scope, top: int | None = None) -> pd.DataFrame:
    """Trials ordered by ``metric`` at their best epoch or last epoch, best first.

    Returns one row per trial that reported ``metric``: ``trial_id``, ``status``, ``epoch``
    (the chosen epoch), ``value``, the trial's ``config/...`` columns and every metric at that
    epoch. Trials without a finite value are left out.
    """
    if metric not in epochs.columns:
        known = sorted(c for c in epochs.columns if c not in ("trial_id", "epoch"))
        raise KeyError(f"--metric {metric!r}: not a reported metric (known: {', '.join(known)})")
    finite = epochs[epochs[metric].notna()].sort_values(["trial_id", "epoch"])
    if scope == "last":
        chosen = finite.groupby("trial_id", sort=True).tail(1)
    else:
        ascending = mode == "min"
        ordered = finite.sort_values([metric, "epoch"], ascending=[ascending, True], kind="stable")
        chosen = ordered.groupby("trial_id", sort=True).head(1)
    chosen = chosen.rename(columns={metric: "value"}).assign(**{metric: lambda d: d["value"]})
    config_cols = ["trial_id", "status", *[c for c in trials.columns if c.startswith(CONFIG_PREFIX)]]
    merged = chosen.merge(trials[config_cols], on="trial_id", how="left")
    merged = merged.sort_values(["value", "trial_id"], ascending=[mode == "min", True], kind="stable")
    merged = merged.reset_index(drop=True)
    return merged.head(top) if top is not None else merged


def ranked_records(ranked: pd.DataFrame) -> list[dict[str, Any]]:
    """``best --json``: objects with ``trial_id``, ``config`` (flat dotted keys) and ``metrics``."""
    out = []
    metric_cols = [c for c in ranked.columns
                   if c not in ("trial_id", "status", "value", "epoch")
                   and not c.startswith(CONFIG_PREFIX)]
    for _, row in ranked.iterrows():
        metrics = {c: (None if _missing(row[c]) else float(row[c])) for c in metric_cols}
        out.append({
            "trial_id": row["trial_id"], "status": row["status"], "epoch": int(row["epoch"]),
            "value": float(row["value"]), "config": config_of(row), "metrics": metrics,
        })
    return out


def marginals(trials: pd.DataFrame, column: str) -> dict[str, list[tuple[Any, float, int]]]:
    """For each config key that varies across trials: (value, mean of ``column``, trials).

    A quick read of which factor matters, printed at the end of a sweep; with a full grid each
    value's mean is over the same mix of the other factors, so the means compare fairly.
    """
    out: dict[str, list[tuple[Any, float, int]]] = {}
    if column not in trials.columns:
        return out
    for config_col in [c for c in trials.columns if c.startswith(CONFIG_PREFIX)]:
        keys = trials[config_col].map(lambda v: "null" if _missing(v) else _plain(v))
        if keys.nunique() < 2:
            continue
        groups = trials.groupby(keys, sort=False)[column]
        rows = [(value, float(series.mean()), int(series.count())) for value, series in groups]
        out[config_col[len(CONFIG_PREFIX):]] = sorted(rows, key=lambda r: (str(type(r[0])), r[0]))
    return out
