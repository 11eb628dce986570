"""Parameter importance over a sweep's trials, with the number of trials it rests on and its
uncertainty; the one computation the report's figure and the command line both call.

Two estimators, both Optuna's, run through the Optuna adapter (``sweeps.optuna_adapter``, the
only module that imports optuna): fANOVA (``FanovaImportanceEvaluator``: the share of the
objective's variance a random forest attributes to each key), the default, and PED-ANOVA
(``PedAnovaImportanceEvaluator``: how differently each key is distributed among the best 10% of
trials than among all of them). PED-ANOVA is only as good as its top 10%: on a grid sweep that
is a handful of trials, and when many trials tie at the best value (rare-feature accuracy 1.0)
the quantile boundary falls inside the tie, so which tied trials count as "top" is decided by
the tie rule, not by the data. On the main job that ranked α first where the per-key means and
fANOVA rank the switch-off epoch first. PED-ANOVA is therefore used only when its top quantile
holds at least :data:`MIN_TOP_TRIALS` trials and does not end inside a tie; otherwise fANOVA is
used and the result says why.

Uncertainty: the estimator is rerun on bootstrap resamples of the trials (drawn with a
generator seeded from ``seed``, so every run gives the same numbers), and each key gets the
mean and the 5th-95th percentile interval of its share over the resamples. A refit costs what
the estimator costs: fANOVA's (Optuna's trees are marginalized in Python) grows with the number
of distinct configurations, ~0.15 s for the main job's 49 trials, ~0.6 s for 100 and ~1.2 s for
200 trials of a continuous search; PED-ANOVA's is Optuna's study building, ~0.05 s for 1,000
trials but ~2.7 s for 10,000 (2-core machine). So a large sweep is explained from a seeded
subsample of at most :data:`MAX_FIT_TRIALS` trials (the result states n of how many), the
resamples are cut to fit :data:`REFIT_BUDGET`, and below :data:`MIN_RESAMPLES` there is no
interval; the result says so. Whether PED-ANOVA is sound (its top 10%, ties) is judged on every
trial, never on the subsample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: The estimators, by the names the command line and the report use.
METHODS = ("fanova", "ped-anova")
METHOD_NAMES = {"fanova": "fANOVA", "ped-anova": "PED-ANOVA"}
#: PED-ANOVA's top quantile (Optuna's default ``target_quantile``).
PED_ANOVA_QUANTILE = 0.1
#: The fewest trials PED-ANOVA's top quantile must hold (Optuna asks for at least 5; the
#: main job's 5 gave an answer the data contradict).
MIN_TOP_TRIALS = 10
#: Bootstrap resamples per importance, and the percentiles of their shares that bound the
#: interval.
RESAMPLES = 20
INTERVAL_PERCENTILES = (5.0, 95.0)
#: Resamples × refit size stays within this, the size being the distinct configurations for
#: fANOVA and the trials for PED-ANOVA (~100x cheaper per trial): a few seconds of refits.
REFIT_BUDGET = {"fanova": 1_200, "ped-anova": 12_000}
#: At most this many trials are fitted (a seeded subsample of a larger sweep): enough for a
#: ranking of a handful of keys, and the report stays within seconds at 10,000 trials.
MAX_FIT_TRIALS = {"fanova": 150, "ped-anova": 600}
#: Fewer resamples than this give no interval (percentiles of a few draws mean little).
MIN_RESAMPLES = 5


@dataclass(frozen=True)
class KeyImportance:
    """The importance of one key.

    Attributes:
        key: The config key.
        share: Its share of the importance (shares sum to 1) over all the trials.
        mean: The mean of its share over the bootstrap resamples.
        low: The 5th percentile of its share over the resamples.
        high: The 95th percentile of its share over the resamples.
    """

    key: str
    share: float
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class ImportanceResult:
    """Importance of each key for one objective, with what it rests on.

    Attributes:
        objective: The column of the trials table that was explained.
        keys: One entry per key, in the order the keys were given.
        n: The trials used (those with a finite objective).
        method: The estimator used, one of :data:`METHODS`.
        requested: The estimator asked for; differs from ``method`` when PED-ANOVA was refused.
        reason: Why the requested estimator was not used (None when it was).
        resamples: The bootstrap resamples behind ``mean``, ``low`` and ``high`` (resamples
            without any variation of the objective are left out); 0 when there is no interval
            (then ``mean = low = high = share``).
        seed: The seed of the resampling and of fANOVA's forest.
        resample_note: Why fewer resamples were drawn than asked for (None when they were).
        population: The trials with a finite objective; more than ``n`` when the estimate
            rests on a seeded subsample of them (:data:`MAX_FIT_TRIALS`).
    """

    objective: str
    keys: tuple[KeyImportance, ...]
    n: int
    method: str
    requested: str
    reason: str | None
    resamples: int
    seed: int
    resample_note: str | None = None
    population: int = 0

    @property
    def subsampled(self) -> bool:
        """Whether the estimate rests on a subsample of the trials (``n < population``)."""
        return self.population > self.n

    @property
    def rests_on(self) -> str:
        """``"n = 49 trials"``, or ``"n = 1000 of 10000 trials (a seeded subsample)"``."""
        if self.subsampled:
            return f"n = {self.n} of {self.population} trials (a seeded subsample)"
        return f"n = {self.n} trials"

    def __getitem__(self, key: str) -> KeyImportance:
        for entry in self.keys:
            if entry.key == key:
                return entry
        raise KeyError(key)

    def ranking(self) -> list[str]:
        """The keys, most important first (by share over all trials; ties keep key order)."""
        return [e.key for e in sorted(self.keys, key=lambda e: -e.share)]

    @property
    def fell_back(self) -> bool:
        """Whether the requested estimator was refused."""
        return self.method != self.requested


def importance(trials: pd.DataFrame, keys: Sequence[str], objective: str, mode: str, *,
               method: str = "fanova", resamples: int = RESAMPLES,
               seed: int = 0) -> ImportanceResult:
    """Importance of ``keys`` for ``objective`` over the rows of ``trials``.

    Args:
        trials: One row per trial; a column per key (numbers, strings, booleans; None or NaN
            is a value of its own, e.g. "never switched off") and the ``objective`` column.
        keys: The columns whose importance is measured (at least one).
        objective: The column to explain; rows where it is not finite are left out.
        mode: "max" or "min", the objective's direction (PED-ANOVA looks at the best trials).
        method: "fanova" (default) or "ped-anova"; PED-ANOVA falls back to fANOVA, with the
            reason in the result, when its top 10% holds fewer than :data:`MIN_TOP_TRIALS`
            trials or ends inside a tie.
        resamples: Bootstrap resamples for the interval, at most; fewer when the refits would
            exceed :data:`REFIT_BUDGET` (none below :data:`MIN_RESAMPLES`). 0 gives no interval.
        seed: Seeds the resampling and fANOVA's forest.

    Returns:
        The importance of each key with ``n``, the estimator used and its uncertainty.

    Raises:
        ValueError: An unknown method or mode, a missing column, fewer than two finite
            objective values, or an objective that never varies.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
    missing = [c for c in [*keys, objective] if c not in trials.columns]
    if missing or not keys:
        raise ValueError(f"the trials table has no column {missing}" if missing
                         else "importance needs at least one key")
    values = pd.to_numeric(trials[objective], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(values)
    values = values[finite]
    configs = [{k: _plain(v) for k, v in row.items()}
               for row in trials.loc[finite, list(keys)].to_dict("records")]
    if len(values) < 2 or values.max() == values.min():
        raise ValueError(f"{objective} has no variation over {len(values)} trial(s): "
                         "there is nothing to attribute")
    used, reason = method, None
    if method == "ped-anova":
        reason = ped_anova_refusal(values, mode)  # judged on every trial
        used = "fanova" if reason else method
    population = len(values)
    if population > MAX_FIT_TRIALS[used]:
        kept = np.sort(np.random.default_rng([seed, population]).choice(
            population, size=MAX_FIT_TRIALS[used], replace=False))
        configs, values = [configs[i] for i in kept], values[kept]
        if values.max() == values.min():
            raise ValueError(f"{objective} has no variation over the {len(values)} trials "
                             "subsampled: there is nothing to attribute")
    share = _shares(configs, keys, values, mode, used, seed)
    if share is None:
        raise ValueError(f"{METHOD_NAMES[used]} found nothing to attribute in {objective}")
    drawn_count, note = _affordable(resamples, used, configs)
    rng = np.random.default_rng(seed)
    draws = []
    for index in range(drawn_count):
        pick = rng.integers(0, len(values), size=len(values))
        drawn = _shares([configs[i] for i in pick], keys, values[pick], mode, used,
                        seed + 1 + index)
        if drawn is not None:
            draws.append([drawn[k] for k in keys])
    entries = []
    for column, key in enumerate(keys):
        spread = np.asarray([d[column] for d in draws]) if draws else np.asarray([share[key]])
        low, high = np.percentile(spread, INTERVAL_PERCENTILES)
        entries.append(KeyImportance(key, share[key], float(spread.mean()), float(low),
                                     float(high)))
    return ImportanceResult(objective, tuple(entries), len(values), used, method, reason,
                            len(draws), seed, note, population)


def _affordable(resamples: int, method: str, configs: list[dict[str, Any]]) -> tuple[int, str | None]:
    """How many resamples fit :data:`REFIT_BUDGET`, and why fewer than asked (or None)."""
    if method == "fanova":
        size = len({repr(sorted(c.items())) for c in configs})
        unit = "distinct configurations"
    else:
        size, unit = len(configs), "trials"
    count = min(resamples, REFIT_BUDGET[method] // size)
    if count >= resamples:
        return resamples, None
    count = count if count >= MIN_RESAMPLES else 0
    return count, (f"{count} of {resamples} bootstrap resamples: {size} {unit} make each "
                   f"{METHOD_NAMES[method]} refit too slow for more")


def ped_anova_refusal(values: np.ndarray, mode: str) -> str | None:
    """Why PED-ANOVA cannot be trusted on these objective values, or None when it can.

    Its top quantile is the best ``ceil(0.1 n)`` trials (Optuna's own rounding); it must hold
    :data:`MIN_TOP_TRIALS` and must not end inside a group of equal values.
    """
    n = len(values)
    top = math.ceil(PED_ANOVA_QUANTILE * n)  # as Optuna's _QuantileFilter counts
    problems = []
    if top < MIN_TOP_TRIALS:
        problems.append(f"fewer than the {MIN_TOP_TRIALS} trials it needs")
    best_first = np.sort(values)[::-1] if mode == "max" else np.sort(values)
    if top < n and best_first[top - 1] == best_first[top]:
        tied = int((values == best_first[top - 1]).sum())
        problems.append(f"it ends inside a tie of {tied} trials at {best_first[top - 1]:.4g}")
    if not problems:
        return None
    return (f"PED-ANOVA's top {PED_ANOVA_QUANTILE:.0%} of {n} trials is {top} trial(s): "
            + " and ".join(problems))


def _shares(configs: list[dict[str, Any]], keys: Sequence[str], values: np.ndarray, mode: str,
            method: str, seed: int) -> dict[str, float] | None:
    from sweeps.optuna_adapter import fanova_importances

    with warnings.catch_warnings():
        # PED-ANOVA warns about small regimes on every resample; the result states n instead
        warnings.simplefilter("ignore")
        found, _, _ = fanova_importances(configs, list(keys), [float(v) for v in values],
                                         maximize=mode == "max", seed=seed, method=method)
    if found is None:
        return None
    return {k: float(found.get(k, 0.0)) for k in keys}


def _plain(value: Any) -> Any:
    """A table cell as the plain Python value Optuna takes: None for missing (None, NaN, NA)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value
