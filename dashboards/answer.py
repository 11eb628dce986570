"""The answer box that opens the report: what a researcher asks first, before any figure.

It says which configuration is best on the objective (chosen on validation, its test value at
the chosen epoch reported) and how many tie with it, where ERM stands, the mean of the objective
per level of each searched key with its interval and n (``sweeps.store.key_summary``, what
``best NAME --by all`` prints), and one sentence read off those means. Every number comes
from the sweep's tables; nothing is written in by hand.
"""

from __future__ import annotations

import html

from dashboards import labels as L
from dashboards.section import Section
from dashboards.sweep_data import ConfigGroup, SweepData
from sweeps.store import key_summary, spread
from sweeps.store.key_summary import KeyLevel, KeySummaries, KeySummary
from sweeps.store.tables import TIE_RULE, TIE_TOLERANCE

SLUG = "answer"
TITLE = "The answer"


def summaries(data: SweepData) -> KeySummaries:
    """The per-key summaries of the objective over the report's trials: the spec's searched
    keys (every varying key for a sweep that does not record them)."""
    kinds: dict[str, str | None] = dict(data.space) if data.space else dict.fromkeys(data.varying)
    return key_summary.summarise(data.trials, keys=kinds, metric=data.objective,
                                 seeds=max(1, len(data.seeds)))


def reported_metric(data: SweepData) -> str | None:
    """The test metric reported beside the objective: its test counterpart (``test/acc_rare``
    for ``val/acc_rare``), else rare-feature or overall test accuracy; None when none."""
    objective = data.objective
    wanted = ["test/" + objective.split("/", 1)[1]] if objective.startswith("val/") else []
    for metric in [*wanted, L.RARE, L.ACC]:
        if metric != objective and data.has_metric(metric):
            return metric
    return None


def level_name(summary: KeySummary, level: KeyLevel) -> str:
    """A level in the paper's words: a bin's range, "never (Mixup throughout)", "0 (ERM)"."""
    return level.label if summary.binned else L.format_value(summary.key, level.value)


def ties(data: SweepData, ranked: list[ConfigGroup]) -> int:
    """How many configurations share the best objective value (as ``best`` counts trials)."""
    if not ranked:
        return 0
    top = data.objective_value(ranked[0])
    return sum(1 for g in ranked if abs(data.objective_value(g) - top) <= TIE_TOLERANCE)


def _value(data: SweepData, group: ConfigGroup, metric: str) -> str:
    mean, std = data.summary(group, metric, "best")
    return spread.format_spread(mean, std, data.seeds_in(group), digits=4, metric=metric)


def _epochs(data: SweepData, group: ConfigGroup) -> str:
    epochs = data.best_epochs(group)
    if not epochs:
        return "no chosen epoch"
    return f"epoch{'s' if len(epochs) > 1 else ''} {', '.join(map(str, epochs))}"


def _describe(data: SweepData, group: ConfigGroup) -> str:
    """``<objective> VALUE at epoch E; <test metric> there: VALUE``, escaped."""
    objective = html.escape(L.metric_name(data.objective))
    value = html.escape(_value(data, group, data.objective))
    text = f"{objective} <span class=\"num\">{value}</span> at {_epochs(data, group)}"
    test = reported_metric(data)
    if test is not None:
        text += (f"; {html.escape(L.metric_name(test))} there "
                 f"<span class=\"num\">{html.escape(_value(data, group, test))}</span>")
    return text


def _best_html(data: SweepData, ranked: list[ConfigGroup]) -> str:
    if not ranked:
        return '<p data-answer="best">No configuration reported the objective.</p>'
    best = ranked[0]
    tied = ties(data, ranked)
    others = (f" {tied - 1} other configuration{'s' if tied > 2 else ''} tie with it at the same "
              f"value; {TIE_RULE}." if tied > 1 else " No other configuration ties with it.")
    return (f'<p data-answer="best"><b>Best configuration:</b> '
            f"<b class=\"label\">{html.escape(best.label)}</b>: {_describe(data, best)} "
            f"(chosen on validation; the test value is reported at the chosen epoch)."
            f"{html.escape(others)}</p>")


def _erm_html(data: SweepData, ranked: list[ConfigGroup]) -> str:
    erm = [g for g in ranked if g.kind == "ERM"]
    if not erm:
        return ('<p data-answer="erm"><b>ERM baseline:</b> this sweep has no ERM trial '
                "(α = 0 or switch-off epoch 0), so there is no baseline to compare with.</p>")
    parts = []
    for group in erm:
        rank = ranked.index(group) + 1
        parts.append(f"<b class=\"label\">{html.escape(group.label)}</b>: "
                     f"{_describe(data, group)}; it ranks {rank} of {len(ranked)}")
    return f'<p data-answer="erm"><b>ERM baseline:</b> {"; ".join(parts)}.</p>'


def _trials(count: int) -> str:
    return f", {count} trial{'s' if count != 1 else ''}"


def _keys_html(found: KeySummaries) -> str:
    rows = []
    for summary in found.keys:
        cells = []
        for level in summary.levels:
            interval = key_summary.format_interval(level)
            cells.append(f"<td><span class=\"level\">{html.escape(level_name(summary, level))}"
                         f"</span><br><span class=\"num\">{key_summary.format_number(level.mean)}"
                         f" {html.escape(interval)}</span><br><small>n = {level.points}"
                         f"{'' if level.trials == level.points else _trials(level.trials)}"
                         "</small></td>")
        binned = " (binned)" if summary.binned else ""
        rows.append(f"<tr><th>{html.escape(L.key_name(summary.key))}{binned}</th>"
                    f"{''.join(cells)}</tr>")
    return (f'<table class="keys" data-answer="keys"><caption>Mean '
            f"{html.escape(L.metric_name(found.metric))} at each trial's chosen epoch per level "
            "of each searched key, over all other keys, with its 95% interval over the level's "
            "trials and n (grid points; a merged trial counts once for each it stands for)"
            f"</caption><tbody>{''.join(rows)}</tbody></table>")


def answer_section(data: SweepData) -> Section:
    """The answer box: best configuration and its ties, the ERM baseline, the per-key means
    with intervals, and the sentence read off them."""
    ranked = data.ranked()
    found = summaries(data)
    reading = found.sentence(name=L.key_name, metric=L.metric_name(data.objective))
    body = (f'<div class="answer-box">{_best_html(data, ranked)}{_erm_html(data, ranked)}'
            f"{_keys_html(found) if found.keys else ''}"
            f'<p data-answer="reading"><b>Reading:</b> {html.escape(reading)}</p></div>')
    return Section(SLUG, TITLE, "", html=body)
