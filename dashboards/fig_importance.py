"""Parameter importance over the sweep's trials: fANOVA by default, PED-ANOVA where it is sound,
each share with the number of trials behind it and a bootstrap interval.

The computation is ``sweeps.importance`` (the command line calls it too): the trials table is
replayed into an in-memory Optuna study, one trial per sweep trial, its params the config keys
that vary and its value the objective at the trial's best epoch (and, as a second target, at its
last epoch). PED-ANOVA looks only at the best 10% of trials; on a grid sweep where many trials
tie at the best value that is a handful of trials picked by the tie rule, so it is refused there
and fANOVA drawn instead, with the reason in the caption and on the figure.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import SweepData
from sweeps.importance import (
    INTERVAL_PERCENTILES,
    METHOD_NAMES,
    RESAMPLES,
    ImportanceResult,
    importance,
)
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX, LAST_PREFIX

MIN_TRIALS = 3
SEED = 0


def _finite(data: SweepData, column: str) -> list[float]:
    if column not in data.trials:
        return []
    values = pd.to_numeric(data.trials[column], errors="coerce").astype(float)
    return [v for v in values if math.isfinite(v)]


def parameter_importance(data: SweepData, method: str = "fanova", *,
                         resamples: int = RESAMPLES) -> Section:
    """(d) Importance of each varying config key for the sweep's objective, with its n and a
    bootstrap interval over ``resamples`` resamples (each one refit per target: ~0.2 s on a
    small grid); ``method`` "ped-anova" falls back to fANOVA where it is unsound."""
    slug, title = "parameter_importance", f"Parameter importance ({METHOD_NAMES[method]})"
    keys = list(data.varying)
    objective = L.metric_name(data.objective)
    if len(keys) < 2:
        only = f"only {L.key_name(keys[0])} varies" if keys else "no config key varies"
        return skipped(slug, title, f"Not computed: {only} in this sweep, so there is nothing "
                       "to rank (importance needs at least two searched parameters).")
    best_column, last_column = BEST_PREFIX + data.objective, LAST_PREFIX + data.objective
    finite = _finite(data, best_column)
    if len(finite) < MIN_TRIALS:
        return skipped(slug, title, f"Not computed: {len(finite)} trial(s) reported "
                       f"{data.objective}; importance needs at least {MIN_TRIALS}.")
    if max(finite) - min(finite) == 0:
        return skipped(slug, title, f"Not computed: every trial reached the same {objective} "
                       f"({finite[0]:.3g}) at its best epoch, so there is no variation to split.")
    at_best, at_last = _results(data, keys, best_column, last_column, method, resamples)
    refused = "; PED-ANOVA refused" if at_best.fell_back else ""
    title = f"Parameter importance ({METHOD_NAMES[at_best.method]}{refused})"
    fig = _bars(keys, at_best, at_last, objective)
    return Section(slug, title, _caption(at_best, at_last, objective), fig)


def _results(data: SweepData, keys: list[str], best_column: str, last_column: str,
             method: str, resamples: int) -> tuple[ImportanceResult, ImportanceResult | None]:
    """Both targets by one estimator: if PED-ANOVA is refused for either, both use fANOVA."""
    frame = pd.DataFrame({k: data.trials[CONFIG_PREFIX + k] for k in keys})
    for column in (best_column, last_column):
        if column in data.trials:
            frame[column] = data.trials[column]
    mode = data.mode

    def run(column: str, how: str) -> ImportanceResult | None:
        try:
            return importance(frame, keys, column, mode, method=how, resamples=resamples,
                              seed=SEED)
        except ValueError:  # the last epoch missing, or without variation
            return None

    at_best = run(best_column, method)
    assert at_best is not None  # the best epoch's variation was checked by the caller
    at_last = run(last_column, at_best.method) if last_column in frame else None
    if at_last is not None and at_last.fell_back and not at_best.fell_back:
        rerun = run(best_column, at_last.method)
        assert rerun is not None
        at_best = replace(rerun, requested=method, reason=f"at the last epoch, {at_last.reason}")
    return at_best, at_last


def _caption(at_best: ImportanceResult, at_last: ImportanceResult | None,
             objective: str) -> str:
    n = at_best.n
    if at_best.method == "fanova":
        what = (f"Share of the variance of {objective} across the sweep's {n} trials that "
                f"fANOVA (Optuna's FanovaImportanceEvaluator, 64 trees, seed {SEED}) attributes "
                "to each searched parameter")
        tail = "interactions are spread over the parameters involved."
    else:
        what = (f"How much each searched parameter's distribution among the best 10% of the "
                f"sweep's {n} trials by {objective} differs from its distribution over all "
                "of them (PED-ANOVA, Optuna's PedAnovaImportanceEvaluator), normalized to "
                "shares")
        tail = "fANOVA (the default) splits the variance instead."
    if at_best.subsampled:
        what += (f" (fitted on a seeded subsample of {n} of the {at_best.population} trials: "
                 "the estimator's cost grows with the trials, and a few thousand rank a "
                 "handful of keys as well)")
    last = "" if at_last is None or at_last.n == n else f" ({at_last.n} trials)"
    low, high = (f"{p:g}" for p in INTERVAL_PERCENTILES)
    caption = (f"{what}, at each trial's best epoch (the objective) and at its last epoch{last}. "
               f"Bars are the shares over all trials and sum to 1 per target; {tail}")
    if at_best.resamples:
        caption += (f" Whiskers span the {low}th to {high}th percentile of each share over "
                    f"{at_best.resamples} bootstrap resamples of the trials (seed {SEED}): "
                    "parameters whose whiskers overlap are not reliably ordered.")
    if at_best.resample_note:
        caption += f" {at_best.resample_note[0].upper()}{at_best.resample_note[1:]}."
    elif not at_best.resamples:
        caption += " No bootstrap interval was asked for."
    if at_best.fell_back:
        caption += (f" PED-ANOVA was asked for but not used: {at_best.reason}; its ranking "
                    "would rest on the tie rule or a handful of trials rather than on the data, "
                    "so fANOVA is shown instead.")
    return caption


def _bars(keys: list[str], at_best: ImportanceResult, at_last: ImportanceResult | None,
          objective: str) -> Figure:
    order = sorted(keys, key=lambda k: at_best[k].share)
    targets = [(at_best, "at the best epoch", "#2a788e")]
    if at_last is not None:
        targets.append((at_last, "at the last epoch", "#7ad151"))
    fig = Figure(figsize=(7.5, 1.5 + 0.55 * len(keys) * len(targets)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(order))
    height = 0.38 if at_last is not None else 0.6
    offsets = [height / 2, -height / 2] if at_last is not None else [0.0]
    for (result, label, colour), offset in zip(targets, offsets, strict=True):
        ax.barh(y + offset, [result[k].share for k in order], height=height, color=colour,
                label=f"{label} ({result.rests_on})")
    # whiskers after every bar, so ax.containers[i] stays the i-th target's bars
    for (result, _, _), offset in zip(targets, offsets, strict=True):
        shares = np.asarray([result[k].share for k in order])
        lows = np.asarray([result[k].low for k in order])
        highs = np.asarray([result[k].high for k in order])
        if result.resamples:
            ax.errorbar(shares, y + offset, xerr=[np.clip(shares - lows, 0, None),
                                                   np.clip(highs - shares, 0, None)],
                        fmt="none", ecolor="#333333", elinewidth=1, capsize=3)
        for row, (share, high) in enumerate(zip(shares, highs, strict=True)):
            ax.text(max(share, high) + 0.015, row + offset, f"{share:.2f}", va="center",
                    fontsize=8)
    ax.set_yticks(y, [L.key_name(k) for k in order])
    ax.set_xlim(0, 1.1)
    ax.set_xticks(np.linspace(0, 1, 6))
    name = METHOD_NAMES[at_best.method]
    ax.set_xlabel(f"importance for {objective} ({name}, share)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    subtitle = f"{name} over {at_best.rests_on}; " + (
        f"whiskers: {INTERVAL_PERCENTILES[0]:g}th–{INTERVAL_PERCENTILES[1]:g}th percentile over "
        f"{at_best.resamples} bootstrap resamples" if at_best.resamples
        else "no bootstrap interval")
    if at_best.fell_back:
        subtitle += "\n" + "\n".join(textwrap.wrap(
            f"Not PED-ANOVA: {at_best.reason}, so fANOVA is shown instead", 100))
    ax.set_title(subtitle, fontsize=8, color="#b2182b" if at_best.fell_back else "#333333")
    fig.suptitle("Which searched parameter matters most", fontsize=11)
    return fig

