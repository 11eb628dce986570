"""The report as one self-contained HTML page: inline CSS, figures as base64 PNG data URIs.

It opens on the answer: the title, the answer box (``dashboards.answer``), then the figures and
tables; what the sweep is (its description, trials, seeds, the metric glossary) and the list of
every trial come last. It opens from disk with no server and no network: no script, no
external stylesheet, font or image. Each ``<img>`` carries ``data-png`` (its PNG file beside
the page) and ``width`` / ``height`` (the PNG's pixel size), which the browser tests compare
with what was rendered.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dashboards import answer
from dashboards import labels as L
from dashboards.section import Section
from dashboards.sweep_data import SweepData
from sweeps.store.layout import BEST_PREFIX, LAST_PREFIX, STD_SUFFIX

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1500px; padding: 16px 28px; color: #1d1d1f; background: #ffffff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.facts { color: #444; font-size: 0.92em; line-height: 1.5; }
.facts code, td code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
figure { margin: 0.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.caption { color: #333; font-size: 0.92em; max-width: 1100px; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
table { border-collapse: collapse; font-size: 0.85em; margin-top: 0.6em; }
th, td { border: 1px solid #d6d6d6; padding: 3px 7px; text-align: left; }
th { background: #f2f4f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.erm td { background: #f7f7f7; }
nav { margin-top: 1em; }
nav a { margin-right: 1em; }
details { margin-top: 1em; }
#answer h2 { margin-top: 0.8em; }
.answer-box { background: #f4f8fd; border: 1px solid #b9cde8; border-left: 5px solid #1f5fa8;
              padding: 6px 16px 10px; max-width: 1300px; line-height: 1.45; }
.answer-box .label { color: #0b3d7a; }
.answer-box .num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.answer-box table.keys { background: #ffffff; }
.answer-box table.keys caption { caption-side: top; text-align: left; font-size: 0.92em;
                                 color: #333; padding-bottom: 4px; }
.answer-box table.keys td { vertical-align: top; }
.answer-box .level { font-weight: 600; }
"""


def data_uri(png: Path) -> str:
    """The PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) in pixels, read from the PNG header."""
    header = png.read_bytes()[:24]
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _facts(data: SweepData) -> str:
    """What the sweep is: description, trials, objective, seeds, searched keys, the metrics'
    glossary (placed after the answer and the figures)."""
    statuses = ", ".join(f"{n} {s.lower()}" for s, n in sorted(data.all_trials.items()))
    varying = ", ".join(f"{html.escape(L.key_name(k))} (<code>{html.escape(k)}</code>)"
                        for k in data.varying) or "none"
    seeds = ", ".join(map(str, data.seeds)) or "unknown"
    metrics = sorted(c for c in data.epochs.columns
                     if c not in ("trial_id", "epoch") and not c.endswith(STD_SUFFIX)
                     and data.has_metric(c))
    metric_list = ", ".join(f"<code>{html.escape(m)}</code> = {html.escape(L.metric_name(m))}"
                            for m in metrics)
    return (
        f'<p class="facts">{html.escape(data.description)}</p>'
        f'<p class="facts"><b>Trials:</b> {sum(data.all_trials.values())} ({statuses}) in '
        f"{len(data.groups)} configurations. <b>Objective:</b> "
        f"{html.escape(L.metric_name(data.objective))} (<code>{html.escape(data.objective)}</code>,"
        f" {data.mode}) at each trial's best epoch: answers are chosen on it, test metrics are "
        f"reported at the chosen epoch. <b>Seeds per trial:</b> {seeds}. "
        f"<b>Searched:</b> {varying}.<br><b>Metrics:</b> {metric_list}.</p>")


def _section(section: Section, pngs: dict[str, Path]) -> str:
    parts = [f'<section id="{section.slug}"><h2>{html.escape(section.title)}</h2>']
    png = pngs.get(section.slug)
    if png is not None:
        width, height = png_size(png)
        parts.append(f'<figure><img src="{data_uri(png)}" alt="{html.escape(section.title)}" '
                     f'data-png="{html.escape(png.name)}" width="{width}" height="{height}">'
                     "</figure>")
    if section.note:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    if section.caption:
        parts.append(f'<p class="caption">{html.escape(section.caption)}</p>')
    if section.html:
        parts.append(section.html)
    parts.append("</section>")
    return "".join(parts)


def _trial_index(data: SweepData) -> str:
    label = {t: g.label for g in data.groups for t in g.trial_ids}
    objective = data.objective
    rows = []
    trials = data.trials

    def column(name: str) -> list[Any]:  # whole columns, not one pandas row per trial
        return trials[name].tolist() if name in trials else [None] * len(trials)

    for trial_id, status, best, last in zip(
            column("trial_id"), column("status"), column(f"{BEST_PREFIX}{objective}"),
            column(f"{LAST_PREFIX}{objective}"), strict=True):
        trial = str(trial_id)
        rows.append(
            f"<tr><td><code>{html.escape(trial)}</code></td><td>{html.escape(str(status))}"
            f"</td><td>{html.escape(label.get(trial, ''))}</td>"
            f'<td class="num">{L.format_mean_std(best, None)}</td>'
            f'<td class="num">{L.format_mean_std(last, None)}</td></tr>')
    head = (f"<tr><th>trial (MLflow run name)</th><th>status</th><th>configuration</th>"
            f"<th>{html.escape(objective)} best epoch</th>"
            f"<th>{html.escape(objective)} last epoch</th></tr>")
    return (f'<details id="trials"><summary>All {len(rows)} trials with records</summary>'
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></details>")


def render(data: SweepData, sections: Sequence[Section], pngs: dict[str, Path]) -> str:
    """The whole page; ``pngs`` maps a section's slug to its PNG file. The answer box (the
    section ``answer.SLUG``) comes first, then a menu of the other sections, the sections, and
    the facts about the sweep."""
    lead = [s for s in sections if s.slug == answer.SLUG]
    rest = [s for s in sections if s.slug != answer.SLUG]
    links = [*rest, Section("about", "About this sweep", "")]
    nav = "".join(f'<a href="#{s.slug}">{html.escape(s.title)}</a>' for s in links)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = "".join(_section(s, pngs) for s in rest)
    title = f"Sweep report: {data.name}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(_section(s, pngs) for s in lead)}"
        f"<nav>{nav}</nav>{body}"
        f'<section id="about"><h2>About this sweep</h2>{_facts(data)}</section>'
        f"{_trial_index(data)}"
        f'<p class="facts">Generated {stamp} from the sweep\'s Parquet tables by '
        "<code>mixup-sweep report</code>.</p></body></html>\n"
    )
