"""Parameter importance over the sweep's trials, with Optuna's PED-ANOVA (default) or fANOVA.

Ray Tune has no importance analysis (ray#25522), so the trials table is replayed into an
in-memory Optuna study: one finished trial per sweep trial, its params the config keys that
vary, its value the objective at the trial's best epoch (and, as a second target, at its last
epoch). PED-ANOVA (Optuna's ``PedAnovaImportanceEvaluator``) measures how much each parameter's
distribution among the best 10% of trials differs from its distribution among all of them; it
takes ~0.1 s at 10,000 trials where fANOVA (a random forest's variance split; ``--importance
fanova``) takes minutes. The study and the evaluators live in the Optuna adapter
(``sweeps.optuna_adapter``).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from dashboards import labels as L
from dashboards.section import Section, skipped
from dashboards.sweep_data import SweepData
from sweeps.store.layout import BEST_PREFIX, LAST_PREFIX

MIN_TRIALS = 3
SEED = 0


def _column(data: SweepData, name: str) -> list[float]:
    if name not in data.trials:
        return [math.nan] * len(data.trials)
    return [float(v) for v in data.trials[name].astype(float)]


METHOD_NAMES = {"ped-anova": "PED-ANOVA", "fanova": "fANOVA"}


def parameter_importance(data: SweepData, method: str = "ped-anova") -> Section:
    """(d) Importance of each varying config key for the sweep's objective."""
    name = METHOD_NAMES[method]
    slug, title = "parameter_importance", f"Parameter importance ({name})"
    keys = list(data.varying)
    objective = L.metric_name(data.objective)
    if len(keys) < 2:
        only = f"only {L.key_name(keys[0])} varies" if keys else "no config key varies"
        return skipped(slug, title, f"Not computed: {only} in this sweep, so there is nothing "
                       "to rank (importance needs at least two searched parameters).")
    best = _column(data, f"{BEST_PREFIX}{data.objective}")
    last = _column(data, f"{LAST_PREFIX}{data.objective}")
    finite = [v for v in best if math.isfinite(v)]
    if len(finite) < MIN_TRIALS:
        return skipped(slug, title, f"Not computed: {len(finite)} trial(s) reported "
                       f"{data.objective}; {name} needs at least {MIN_TRIALS}.")
    if max(finite) - min(finite) == 0:
        return skipped(slug, title, f"Not computed: every trial reached the same {objective} "
                       f"({finite[0]:.3g}) at its best epoch, so there is no variation to split.")
    from sweeps.optuna_adapter import fanova_importances

    configs = [data.config(str(t)) for t in data.trials["trial_id"]]
    at_best, at_last, count = fanova_importances(configs, keys, best, maximize=data.mode == "max",
                                                 seed=SEED, second=last, method=method)
    if at_best is None:
        return skipped(slug, title, f"Not computed: {name} found nothing to attribute.")
    fig = _bars(keys, at_best, at_last, objective, name)
    if method == "fanova":
        what = (f"Share of the variance of {objective} across the sweep's {count} trials that "
                f"fANOVA (Optuna's FanovaImportanceEvaluator, 64 trees, seed {SEED}) attributes "
                "to each searched parameter")
        tail = "interactions are spread over the parameters involved."
    else:
        what = (f"How much each searched parameter's distribution among the best 10% of the "
                f"sweep's {count} trials by {objective} differs from its distribution over all "
                "of them (PED-ANOVA, Optuna's PedAnovaImportanceEvaluator), normalized to "
                "shares")
        tail = "`mixup-sweep report --importance fanova` gives fANOVA's variance split instead."
    caption = (f"{what}, at each trial's best epoch (the objective) and at its last epoch. "
               f"Importances sum to 1 per target; {tail}")
    return Section(slug, title, caption, fig)


def _bars(keys: list[str], at_best: dict[str, float], at_last: dict[str, float] | None,
          objective: str, method: str) -> Figure:
    order = sorted(keys, key=lambda k: at_best.get(k, 0.0))
    fig = Figure(figsize=(7.0, 1.0 + 0.55 * len(keys) * (2 if at_last else 1)),
                 layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(order))
    height = 0.38 if at_last else 0.6
    bars = [ax.barh(y + (height / 2 if at_last else 0), [at_best.get(k, 0.0) for k in order],
                    height=height, color="#2a788e", label="at the best epoch")]
    if at_last:
        bars.append(ax.barh(y - height / 2, [at_last.get(k, 0.0) for k in order], height=height,
                            color="#7ad151", label="at the last epoch"))
    for container in bars:
        ax.bar_label(container, fmt="%.2f", padding=3, fontsize=8)
    ax.set_yticks(y, [L.key_name(k) for k in order])
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"importance for {objective} ({method}, share)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Which searched parameter matters most", fontsize=11)
    return fig
