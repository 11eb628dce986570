"""What the MLflow UI shows of a sweep's answer, as text: run names, run descriptions and the
runs table the ``ui`` command opens. Pure functions, no MLflow; the tracker writes what they
return.

* A child run's name says its searched settings (``α=1 same off@500``, ``ERM``); its
  description (``mlflow.note.content``, the run page's Description) says them in words, what a
  merged trial stands for, and once the trial has ended the epoch chosen on the objective with
  the values there.
* The parent run's description, at the end of a finished sweep, is the answer: the best
  settings, the objective with its spread at the chosen epoch, the test metrics at that epoch,
  how many trials tie; the spec's description follows.
* The runs table: MLflow's UI nests child runs under their parent only while the table is
  sorted by date and unfiltered (``nestChildren`` in its runs table, MLflow 3.17). A view that
  filters on the sweep's child runs and sorts by ``best/<objective>`` (each trial's value at its
  chosen epoch) lists them flat, best first. The UI takes such a view from an experiment tag
  ``mlflow.sharedViewState.<key>`` named by the URL's ``viewStateShareKey`` (what its "Share"
  button writes), which also chooses the columns; without the tag the URL's ``searchFilter``,
  ``orderByKey`` and ``orderByAsc`` do the same, with MLflow's default columns.
"""

from __future__ import annotations

import hashlib
import json
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from sweeps.store import spread
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX, STD_SUFFIX

#: The run's description in MLflow's UI (markdown).
NOTE = "mlflow.note.content"
#: An experiment tag holding a saved view of the runs table, + its key (MLflow's UI).
SHARED_VIEW = "mlflow.sharedViewState."
#: The child summary metric holding the epoch chosen on the objective.
_BEST_EPOCH = "best_epoch"

#: Keys that mean nothing once Mixup never mixes (see mixup_core.config.trains_as).
_MIXUP_ONLY = frozenset({"mixup.alpha", "mixup.label_scheme", "mixup.label_param",
                         "mixup.stop_epoch", "mixup.stop_mode", "mixup.fold"})
_MAX_NAME_CHARS = 6000  # MLflow keeps at most this many characters of a param or run name


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _never(value: Any) -> bool:
    """The switch-off epoch of Mixup that is never switched off (None; ``best`` says "never")."""
    return value is None or value == "never" or (isinstance(value, float) and math.isnan(value))


def _trains_as_erm(config: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """Mixup never mixes (α = 0, or switched off at epoch 0), where a Mixup setting is what
    tells the sweep's trials apart."""
    return (config.get("mixup.alpha") == 0 or config.get("mixup.stop_epoch") == 0) and any(
        key in _MIXUP_ONLY for key in keys)


def run_name(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """A child run's name from its searched settings, e.g. ``α=1 same off@500``: α, the label
    scheme, ``off@E`` (``never off``) for the switch-off epoch, ``key=value`` for other keys.
    A trial in which Mixup never mixes (α = 0, or switched off at epoch 0) is ``ERM``: its
    α, scheme and switch-off do not matter (they are merged away), the other keys still show."""
    erm = _trains_as_erm(config, keys)
    parts = ["ERM"] if erm else []
    for key in keys:
        if erm and key in _MIXUP_ONLY:
            continue
        value = config.get(key)
        if key == "mixup.alpha":
            parts.append(f"α={_short(value)}")
        elif key == "mixup.label_scheme":
            parts.append(str(value))
        elif key == "mixup.stop_epoch":
            parts.append("never off" if _never(value) else f"off@{value}")
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}={_short(value)}")
    return " ".join(parts)[:_MAX_NAME_CHARS]


# ---------------------------------------------------------------------------- a trial in words


def _setting(key: str, value: Any) -> str:
    if key == "mixup.alpha":
        return f"α = {_short(value)}"
    if key == "mixup.label_scheme":
        return f"{value} labels"
    if key == "mixup.stop_epoch":
        return "never switched off" if _never(value) else f"switched off at epoch {value}"
    return f"{key} = {_short(value)}"


def _values(key: str, values: list[Any]) -> str:
    """``α ∈ {0.1, 1, 4}``: several values of one key."""
    label = {"mixup.alpha": "α", "mixup.label_scheme": "labels",
             "mixup.stop_epoch": "switch-off epoch"}.get(key, key)
    shown = ["never" if key == "mixup.stop_epoch" and _never(v) else _short(v) for v in values]
    return f"{label} ∈ {{{', '.join(shown)}}}"


def trial_about(config: Mapping[str, Any], keys: Sequence[str],
                merged: Sequence[Mapping[str, Any]] = (), stands_for: int | None = None) -> str:
    """What a trial stands for, in words: ``α = 1 · same labels · switched off at epoch 200.``;
    for a trial that never mixes ``ERM (Mixup never mixes: α = 0).``, and for one that runs in
    place of merged grid points (``merged``: those points, ``stands_for``: how many it stands
    for when the list was cut) ``Stands for 12 grid points that train alike: α ∈ {0.1, 1, 4}
    × labels ∈ {…}, switched off at epoch 0.``"""
    erm = _trains_as_erm(config, keys)
    words = [_setting(k, config.get(k)) for k in keys if not (erm and k in _MIXUP_ONLY)]
    if erm:
        why = "α = 0" if config.get("mixup.alpha") == 0 else "switched off at epoch 0"
        words.insert(0, f"ERM (Mixup never mixes: {why})")
    text = (" · ".join(words) or "The base config") + "."
    points = [{k: config.get(k) for k in keys}, *({**{k: config.get(k) for k in keys}, **p}
                                                  for p in merged)]
    count = max(stands_for or 0, len(points))
    if count > 1:
        varying, constant = [], []
        for key in keys:
            seen = list(dict.fromkeys("never" if key == "mixup.stop_epoch" and _never(p.get(key))
                                      else p.get(key) for p in points))
            if len(seen) > 1:
                varying.append(_values(key, seen))
            else:
                constant.append(_setting(key, seen[0]))
        which = " × ".join(varying) + (", " if varying and constant else "") + ", ".join(constant)
        text += f" Stands for {count} grid points that train alike"
        text += f": {which}." if len(points) == count else " (not all listed)."
    return text


def chosen_note(summary: Mapping[str, float], *, status: str, metric: str | None,
                seeds: int) -> str:
    """How a trial ended, in words: the epoch chosen on ``metric`` with its value there (mean ±
    std over ``seeds`` seeds, interval) and the test metrics at that epoch."""
    head = {"STOPPED": "Stopped early by the scheduler.",
            "ERROR": "Failed (the mixup_sweeps.error tag says why).",
            "KILLED": "Ended before it finished."}.get(status.upper(), "")
    epoch = summary.get(_BEST_EPOCH)
    if epoch is None or not math.isfinite(epoch):
        return head or "Ended with no epoch reported."
    text = f"Chosen epoch {int(epoch)}"
    if metric is None or BEST_PREFIX + metric not in summary:
        return " ".join(filter(None, (head, text + ".")))
    lines = [" ".join(filter(None, (head, f"{text}: its best {metric}. At that epoch:")))]
    for name in [metric, *_reported_metrics(metric, [k.removeprefix(BEST_PREFIX)
                                                    for k in summary])]:
        value = _spread(summary.get(BEST_PREFIX + name),
                        summary.get(BEST_PREFIX + name + STD_SUFFIX), seeds, name)
        lines.append(f"- {name}: {value}")
    return "\n".join(lines)


def _spread(mean: Any, std: Any, seeds: int, metric: str) -> str:
    return spread.format_spread(mean, std, seeds, digits=4, metric=metric)


def _reported_metrics(metric: str, columns: Sequence[str]) -> list[str]:
    """The test metrics shown beside a selection metric, as ``best`` shows them
    (mixup_cli.sweep_commands.reported_metrics): its test counterpart first, then rare-feature,
    common-feature and overall test accuracy, those the sweep reports; at most two."""
    wanted = ["test/" + metric.split("/", 1)[1]] if metric.startswith("val/") else []
    wanted += ["test/acc_rare", "test/acc_common", "test/acc"]
    return [name for name in dict.fromkeys(wanted) if name != metric and name in columns][:2]


# ---------------------------------------------------------------------------- the answer


def best_note(best: Mapping[str, Any], *, metric: str, mode: str, keys: Sequence[str],
              trials: int, seeds: int, sweep_name: str, description: str = "") -> str:
    """The parent run's description once the sweep has finished: its best trial (``best``: the
    first row of ``Sweep.best``) in words, the objective at its chosen epoch with the spread
    over seeds, the test metrics there, how many trials tie; then ``description``."""
    from sweeps.store.tables import MERGED, STANDS_FOR, TIE_RULE

    config = {k.removeprefix(CONFIG_PREFIX): v for k, v in best.items()
              if k.startswith(CONFIG_PREFIX)}
    merged = best.get(MERGED)
    points = json.loads(merged) if isinstance(merged, str) and merged else []
    stands = best.get(STANDS_FOR)
    about = trial_about(config, keys, points,
                        int(stands) if isinstance(stands, (int, float)) and stands == stands
                        else None)
    epoch, value = int(best["epoch"]), float(best["value"])
    shown = [metric, *_reported_metrics(metric, list(best))]
    values = {name: _spread(best.get(name), best.get(name + STD_SUFFIX), seeds, name)
              for name in shown}
    ties = int(best.get("ties") or 0)
    # what the run's overview shows before "Show more": the answer in one paragraph
    head = (f"**Best of {trials} trials by {metric} ({mode}): "
            f"{run_name(config, keys) or best['trial_id']}**, trial {best['trial_id']} at its "
            f"chosen epoch {epoch}: {metric} {values[metric]}")
    if len(shown) > 1:
        head += f"; {shown[1]} {values[shown[1]]} at that epoch"
    head += "." + (f" {ties} trials tie at {metric} = {value:.4f}." if ties > 1 else "")
    lines = [head, "", f"Settings: {about}", "", f"At epoch {epoch}:"]
    lines += [f"- {name}: {values[name]}" for name in shown]
    lines += ["", f"Values: {spread.spread_note(seeds)}."]
    if ties > 1:
        lines += ["", f"{TIE_RULE[0].upper()}{TIE_RULE[1:]} (`mixup-sweep best {sweep_name}` "
                  "lists the tied trials)."]
    if description:
        lines += ["", description]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the runs table


def runs_view(search_filter: str, *, metric: str, mode: str, metrics: Sequence[str] = (),
              params: Sequence[str] = ()) -> dict[str, Any]:
    """A saved view of MLflow's runs table: the runs ``search_filter`` finds, sorted by
    ``best/<metric>`` (best first), with ``best_epoch``, ``metrics`` (summary keys, e.g.
    ``best/test/acc_rare``) and ``params`` as columns. Filtered and not sorted by date, MLflow
    lists child runs flat rather than under their parent."""
    columns = [f"metrics.`{BEST_PREFIX}{metric}`", f"metrics.`{BEST_PREFIX}{metric}{STD_SUFFIX}`",
               f"metrics.`{_BEST_EPOCH}`", *(f"metrics.`{m}`" for m in metrics),
               *(f"params.`{p}`" for p in params)]
    return {"searchFilter": search_filter, "orderByKey": f"metrics.`{BEST_PREFIX}{metric}`",
            "orderByAsc": mode == "min", "selectedColumns": list(dict.fromkeys(columns))}


def view_key(view: Mapping[str, Any]) -> str:
    """The key a view is saved under (the same view, the same key)."""
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()


#: The UI's sidebar for model training rather than GenAI (``workflowType``, else remembered
#: in the browser, GenAI at first).
_TRAINING = {"workflowType": "machine_learning"}


def view_query(view: Mapping[str, Any], key: str | None = None) -> str:
    """The URL query that opens ``view``: saved under ``key``, or without a saved view (then
    MLflow picks the columns), with the model-training sidebar."""
    query = {"viewStateShareKey": key} if key else {
        "searchFilter": view["searchFilter"], "orderByKey": view["orderByKey"],
        "orderByAsc": str(bool(view["orderByAsc"])).lower()}
    return urllib.parse.urlencode({**query, **_TRAINING}, quote_via=urllib.parse.quote)
