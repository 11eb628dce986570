"""A sweep's records as the report sees them: trials grouped by the configuration they ran.

The report reads a sweep through its handle (:class:`sweeps.sweep.Sweep`): its tables and ``sweep.json``.
Trials are grouped by the config keys that vary across the sweep, after one normalisation
that follows the training semantics (``mixup_core.schedule.mixup_active``):

* α = 0 or switch-off epoch 0 is standard training: every ``mixup.*`` key is irrelevant, so all
  such trials with equal other keys form one group named "ERM";
* a switch-off epoch of None or at/after the budget is "Mixup throughout" (stop epoch None).

Within a group, curves and summaries combine the trials' seed means and stds by the law of
total variance, which equals the std over all their seeds pooled (each trial has the same seeds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from dashboards import labels as L
from sweeps.store.layout import CONFIG_PREFIX, STD_SUFFIX
from sweeps.store.tables import order_key

if TYPE_CHECKING:
    from sweeps.sweep import Sweep

Kind = Literal["ERM", "Mixup", "switched-off"]
Scope = Literal["best", "last"]
#: Order in which varying keys appear in labels and are chosen for facets.
KEY_ORDER = (L.ALPHA, L.SCHEME, L.STOP, "mixup.label_param", "mixup.fold", L.STOP_MODE)


@dataclass(frozen=True)
class ConfigGroup:
    """The trials of a sweep that ran one effective configuration.

    Attributes:
        settings: The normalised value of each varying config key (``"ERM"`` for the
            ``mixup.*`` keys of an ERM group, None for "never" switched off).
        kind: "ERM", "Mixup" (throughout) or "switched-off" (Mixup, then standard training).
        trial_ids: The trials in the group (more than one only for merged ERM trials, or
            repeats of a configuration).
        label: The legend entry, e.g. "α = 1 · same labels · switched off at 200".
    """

    settings: dict[str, Any] = field(hash=False)
    kind: Kind
    trial_ids: tuple[str, ...]
    label: str

    def value(self, key: str) -> Any:
        """The normalised value of ``key`` in this group (None when the key does not vary)."""
        return self.settings.get(key)


def value_order(value: Any) -> tuple[int, float, str]:
    """A sort key for mixed config values: "ERM" first, numbers ascending, None ("never") last."""
    if value == L.ERM:
        return (0, 0.0, "")
    if value is None:
        return (3, math.inf, "")
    if isinstance(value, (bool, np.bool_)):
        return (1, float(value), "")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def training_kind(config: dict[str, Any]) -> Kind:
    """ERM, Mixup throughout, or Mixup switched off partway, from a trial's flat config."""
    alpha = config.get(L.ALPHA)
    stop = config.get(L.STOP)
    if (alpha is not None and alpha <= 0) or stop == 0:
        return "ERM"
    budget = config.get("optim.epochs")
    if stop is None or (budget is not None and stop >= budget):
        return "Mixup"
    return "switched-off"


def _normalised(config: dict[str, Any], keys: Iterable[str]) -> tuple[Kind, dict[str, Any]]:
    kind = training_kind(config)
    settings = {}
    for key in keys:
        value = config.get(key)
        if kind == "ERM" and key.startswith(L.MIXUP_PREFIX):
            value = L.ERM
        elif kind == "Mixup" and key == L.STOP:
            value = None
        settings[key] = value
    return kind, settings


def plain(value: Any) -> Any:
    """A table cell as a plain Python value: None for missing (None, NaN, pandas' NA)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def group_label(kind: Kind, settings: dict[str, Any]) -> str:
    """The legend entry of a group: "ERM", or its settings in the paper's words."""
    parts = [] if kind != "ERM" else [L.ERM]
    for key, value in settings.items():
        if kind == "ERM" and value == L.ERM:
            continue
        parts.append(L.format_setting(key, value))
    return " · ".join(parts) if parts else "all trials"


@dataclass
class SweepData:
    """A sweep's tables plus its grouping; what every figure of the report is drawn from.

    Attributes:
        name: The sweep's name.
        trials: The trials table (``sweeps.store.tables``), trials with at least one epoch.
        epochs: The epochs table.
        objective: The sweep's objective metric, e.g. ``test/acc_rare``.
        mode: "max" or "min".
        description: The spec's description ("" when it has none).
        seeds: The seeds each trial averages over (empty when unknown).
        all_trials: Trials counted by status, including those that reported nothing.
        varying: The config keys whose values differ between trials, in label order.
        groups: One entry per effective configuration, ERM first.
        objectives: The sweep's objectives as (metric, mode), several for a multi-objective
            search.
        objective_front: With several objectives, the trials on their Pareto front (each
            objective at the trial's chosen epoch, as ``best --pareto`` lists them).
    """

    name: str
    trials: pd.DataFrame
    epochs: pd.DataFrame
    objective: str
    mode: str
    description: str = ""
    seeds: list[int] = field(default_factory=list)
    all_trials: dict[str, int] = field(default_factory=dict)
    varying: list[str] = field(default_factory=list)
    groups: list[ConfigGroup] = field(default_factory=list)
    objectives: list[tuple[str, str]] = field(default_factory=list)
    objective_front: frozenset[str] = frozenset()

    @classmethod
    def from_tables(cls, name: str, trials: pd.DataFrame, epochs: pd.DataFrame, *,
                    objective: str, mode: str, description: str = "",
                    seeds: Iterable[int] = ()) -> SweepData:
        """Groups the trials of ``trials`` that reported at least one epoch."""
        counts = {str(k): int(v) for k, v in trials["status"].value_counts().items()}
        reported = set(epochs["trial_id"]) if "trial_id" in epochs else set()
        kept = trials[trials["trial_id"].isin(reported)].reset_index(drop=True)
        data = cls(name, kept, epochs, objective, mode, description, list(seeds), counts)
        data.varying = _varying_keys(kept)
        data.groups = _group(kept, data.varying)
        return data

    def config(self, trial_id: str) -> dict[str, Any]:
        """The flat dotted-key config of one trial, with missing values as None."""
        row = self.trials.loc[self.trials["trial_id"] == trial_id].iloc[0]
        return {c[len(CONFIG_PREFIX):]: plain(v) for c, v in row.items()
                if isinstance(c, str) and c.startswith(CONFIG_PREFIX)}

    def has_metric(self, metric: str) -> bool:
        """Whether any trial reported a finite value of ``metric``."""
        return metric in self.epochs.columns and bool(self.epochs[metric].notna().any())

    def curve(self, group: ConfigGroup, metric: str) -> pd.DataFrame:
        """``metric`` over epochs for ``group``: columns ``epoch``, ``mean``, ``std``."""
        rows = self.epochs[self.epochs["trial_id"].isin(group.trial_ids)]
        std_col = metric + STD_SUFFIX
        frame = pd.DataFrame({
            "epoch": rows["epoch"].astype(float),
            "mean": rows[metric].astype(float),
            "std": rows[std_col].astype(float) if std_col in rows else 0.0,
        }).dropna(subset=["mean"])
        out = [(epoch, *_pool(part["mean"], part["std"])) for epoch, part in frame.groupby("epoch")]
        return pd.DataFrame(out, columns=["epoch", "mean", "std"])

    def summary(self, group: ConfigGroup, metric: str, scope: Scope) -> tuple[float, float]:
        """(mean, std) of ``metric`` at each trial's best or last epoch, pooled over the group."""
        column = f"{scope}/{metric}"
        rows = self.trials[self.trials["trial_id"].isin(group.trial_ids)]
        if column not in rows:
            return math.nan, math.nan
        std = rows[column + STD_SUFFIX] if column + STD_SUFFIX in rows else 0.0 * rows[column]
        return _pool(rows[column].astype(float), std.astype(float))

    def objective_value(self, group: ConfigGroup) -> float:
        """The group's objective at the best epoch; worst possible when it has none."""
        value = self.summary(group, self.objective, "best")[0]
        if math.isfinite(value):
            return value
        return -math.inf if self.mode == "max" else math.inf

    def order(self, group: ConfigGroup) -> tuple[float, float, int, str]:
        """The group's place in every ranking: ``sweeps.store.tables.order_key`` (the rule ``best``
        uses) of its objective, pooled std, earliest best epoch and first trial id."""
        mean, std = self.summary(group, self.objective, "best")
        value = mean if math.isfinite(mean) else self.objective_value(group)
        rows = self.trials[self.trials["trial_id"].isin(group.trial_ids)]
        epochs = rows["best_epoch"].dropna() if "best_epoch" in rows else pd.Series(dtype=float)
        epoch = int(epochs.min()) if len(epochs) else 0
        return order_key(value, std, epoch, min(group.trial_ids), self.mode)

    def seeds_in(self, group: ConfigGroup) -> int:
        """How many seed runs a group's values pool (seeds × trials): its intervals' n."""
        return max(1, len(self.seeds)) * len(group.trial_ids)

    def ranked(self) -> list[ConfigGroup]:
        """Groups best first by the objective at their best epoch (ties: ``TIE_RULE``)."""
        return sorted(self.groups, key=self.order)

    def best_group(self) -> ConfigGroup | None:
        """The group with the best objective at its best epoch (None for an empty sweep)."""
        ranked = self.ranked()
        return ranked[0] if ranked else None


def _pool(means: pd.Series, stds: pd.Series | float) -> tuple[float, float]:
    """Mean and pooled std of trials given as (seed mean, seed std) each."""
    m = np.asarray(means, dtype=float)
    s = np.broadcast_to(np.asarray(stds, dtype=float), m.shape)
    ok = np.isfinite(m)
    if not ok.any():
        return math.nan, math.nan
    m, s = m[ok], np.nan_to_num(s[ok])
    return float(m.mean()), float(math.sqrt(float((s**2).mean() + m.var())))


def _varying_keys(trials: pd.DataFrame) -> list[str]:
    keys = []
    for column in trials.columns:
        if not (isinstance(column, str) and column.startswith(CONFIG_PREFIX)):
            continue
        values = {repr(plain(v)) for v in trials[column]}
        if len(values) > 1:
            keys.append(column[len(CONFIG_PREFIX):])
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), k))


def _group(trials: pd.DataFrame, varying: list[str]) -> list[ConfigGroup]:
    members: dict[str, tuple[Kind, dict[str, Any], list[str]]] = {}
    for _, row in trials.iterrows():
        config = {c[len(CONFIG_PREFIX):]: plain(v) for c, v in row.items()
                  if isinstance(c, str) and c.startswith(CONFIG_PREFIX)}
        kind, settings = _normalised(config, varying)
        key = repr(sorted(settings.items()))
        members.setdefault(key, (kind, settings, []))[2].append(str(row["trial_id"]))
    groups = [ConfigGroup(settings, kind, tuple(ids), group_label(kind, settings))
              for kind, settings, ids in members.values()]
    kind_rank = {"ERM": 0, "switched-off": 1, "Mixup": 2}
    return sorted(groups, key=lambda g: (kind_rank[g.kind],
                                         [value_order(g.settings[k]) for k in varying]))


def report_data(sweep: Sweep) -> SweepData:
    """The sweep's trials grouped for the report, from its handle (its tables and sweep.json,
    as the handle holds them; no MLflow).

    Raises:
        sweeps.errors.UsageError: No trial has reported an epoch yet.
    """
    from sweeps.errors import UsageError

    trials, epochs = sweep.tables()
    if epochs.empty or trials.empty:
        raise UsageError(f"sweep {sweep.name!r} has no reported epochs yet: nothing to report")
    metric, mode = sweep.objective
    data = SweepData.from_tables(sweep.name, trials, epochs, objective=metric, mode=mode,
                                 description=sweep.description, seeds=list(sweep.seeds))
    data.objectives = sweep.objectives
    if len(data.objectives) > 1:
        data.objective_front = frozenset(sweep.pareto()["trial_id"])
    return data
