"""The best-configs table: each configuration's accuracies at its best and at its last epoch.

Configurations are chosen and ranked on the sweep's objective, a validation metric; the test
columns are the test values at the epoch chosen on validation ("best epoch"), never chosen on
themselves. Last-epoch values say what a configuration keeps at the end of its budget. The gap
between the two is the paper's point about switching Mixup off too early: rare-feature accuracy
that was reached and then lost. Every value is mean ± sample std over seeds with its 95%
interval and, for accuracies, how many seeds reached 0.95, all from :mod:`sweeps.store.spread`
(the CSV has them as ``<scope>/<metric>_ci_low`` … columns); ties are broken by
``sweeps.store.tables.TIE_RULE``, as in ``best``.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from dashboards import labels as L
from dashboards.section import Section
from dashboards.sweep_data import ConfigGroup, Scope, SweepData
from sweeps.store import spread
from sweeps.store.layout import STD_SUFFIX
from sweeps.store.tables import TIE_RULE, optimistic_warning

TOP = 10
SCOPES: tuple[Scope, ...] = ("best", "last")
MAX_IDS = 3
KIND_NAMES = {"ERM": L.ERM, "Mixup": "Mixup throughout", "switched-off": "Mixup, then switched off"}


def table_metrics(data: SweepData) -> list[str]:
    """The objective first, then rare-, common-feature and overall test accuracy if reported."""
    metrics = [data.objective]
    metrics += [m for m in (L.RARE, L.COMMON, L.ACC) if m not in metrics and data.has_metric(m)]
    return metrics


def _ids(group: ConfigGroup) -> str:
    ids = list(group.trial_ids)
    more = f" +{len(ids) - MAX_IDS}" if len(ids) > MAX_IDS else ""
    return ", ".join(ids[:MAX_IDS]) + more


def _best_epoch(data: SweepData, group: ConfigGroup) -> str:
    return ", ".join(map(str, data.best_epochs(group))) or "n/a"  # indexed once, not a scan


def best_frame(data: SweepData) -> pd.DataFrame:
    """Every configuration, best first: settings, trials, best epoch, and per metric and scope
    the mean, std and uncertainty columns (``spread.uncertainty_columns``: ``_ci_low``,
    ``_ci_high``, and for accuracies ``_seeds_at_least``, ``_seeds_at_most``) over the
    configuration's seed runs."""
    rows = []
    for rank, group in enumerate(data.ranked(), start=1):
        row: dict[str, object] = {"rank": rank, "training": KIND_NAMES[group.kind]}
        for key in data.varying:
            value = group.value(key)
            row[L.key_name(key)] = "—" if value == L.ERM else L.format_value(key, value)
        row["trials"] = _ids(group)
        row["best epoch"] = _best_epoch(data, group)
        row["seed runs"] = n = data.seeds_in(group)
        for metric in table_metrics(data):
            for scope in SCOPES:
                mean, std = data.summary(group, metric, scope)
                row[f"{scope}/{metric}"] = mean
                row[f"{scope}/{metric}{STD_SUFFIX}"] = std
                row.update(spread.uncertainty_columns(f"{scope}/{metric}", mean, std, n))
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(data: SweepData, frame: pd.DataFrame) -> pd.DataFrame:
    """The top ``TOP`` rows, plus the ERM rows below them (the reference)."""
    top = frame.head(TOP)
    erm = frame.iloc[TOP:][frame.iloc[TOP:]["training"] == L.ERM]
    return pd.concat([top, erm])


def _cell(mean: float, std: float, n: int, metric: str) -> str:
    return html.escape(spread.format_spread(mean, std, n, metric=metric))


def best_table_html(data: SweepData, frame: pd.DataFrame) -> str:
    """The table as HTML: two header rows (metric, then best/last epoch)."""
    settings = ["rank", "training", *[L.key_name(k) for k in data.varying], "trials",
                "best epoch"]
    metrics = table_metrics(data)
    head1 = "".join(f'<th rowspan="2">{html.escape(s)}</th>' for s in settings)
    head1 += "".join(f'<th colspan="2" data-metric="{html.escape(m)}">'
                     f"{html.escape(L.metric_name(m))}</th>" for m in metrics)
    head2 = "".join(f"<th>{'chosen' if m == data.objective else 'at the'} best epoch</th>"
                    "<th>last epoch</th>" for m in metrics)
    body = []
    for _, row in _shown(data, frame).iterrows():
        cells = "".join(f"<td>{html.escape(str(row[s]))}</td>" for s in settings)
        for metric in metrics:
            for scope in SCOPES:
                mean, std = row[f"{scope}/{metric}"], row[f"{scope}/{metric}{STD_SUFFIX}"]
                cells += (f'<td class="num">{_cell(mean, std, int(row["seed runs"]), metric)}'
                          "</td>")
        css = ' class="erm"' if row["training"] == L.ERM else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return (f'<table class="best"><thead><tr>{head1}</tr><tr>{head2}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _ties(data: SweepData) -> int:
    """How many configurations share the top objective value (as ``best`` counts trials)."""
    ranked = data.ranked()
    if not ranked:
        return 0
    top = data.objective_value(ranked[0])
    return sum(1 for g in ranked if abs(data.objective_value(g) - top) <= 1e-12)


def best_configs(data: SweepData, csv_path: Path) -> Section:
    """(f) The best-configs table (HTML in the report) and every configuration as CSV."""
    slug, title = ("best_configs", "Best configurations: chosen on validation, test values at "
                   "the chosen epoch")
    frame = best_frame(data)
    frame.to_csv(csv_path, index=False)
    objective = L.metric_name(data.objective)
    better = "higher" if data.mode == "max" else "lower"
    values = "values are " + spread.spread_note(max(1, len(data.seeds)))
    tied = _ties(data)
    caption = (f"Chosen on {objective} (the objective, {better} is better): configurations are "
               f"ranked by it at their best epoch, the epoch where it peaked; the test columns "
               f"are the test values at that same epoch, reported, never chosen on. Top {TOP} "
               f"plus ERM; {values}, at the best epoch and at the last logged epoch. A large drop "
               "from best to last means the configuration reached the rare feature and lost it. "
               + (f"{tied} configurations tie at the top value; {TIE_RULE}. " if tied > 1 else "")
               + f"All {len(frame)} configurations: {csv_path.name}.")
    warning = optimistic_warning(data.objective)
    if warning is not None:
        caption = warning[len("warning: "):].capitalize() + ". " + caption
    return Section(slug, title, caption, html=best_table_html(data, frame))
