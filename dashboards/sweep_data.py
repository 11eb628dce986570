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

import itertools
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
        space: Each searched key's dimension kind from the spec (``grid``, ``choice``,
            ``uniform``, ``loguniform``, ``quniform``, ``randint``); empty when unknown.
        algorithm: The spec's search algorithm (``grid``, ``random``, ``optuna``; "" when unknown).
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
    space: dict[str, str] = field(default_factory=dict)
    algorithm: str = ""
    _index: _Index | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_tables(cls, name: str, trials: pd.DataFrame, epochs: pd.DataFrame, *,
                    objective: str, mode: str, description: str = "",
                    seeds: Iterable[int] = ()) -> SweepData:
        """Groups the trials of ``trials`` that reported at least one epoch."""
        counts = {str(k): int(v) for k, v in trials["status"].value_counts().items()}
        reported = set(epochs["trial_id"]) if "trial_id" in epochs else set()
        kept = trials[trials["trial_id"].isin(reported)].reset_index(drop=True)
        data = cls(name, kept, epochs, objective, mode, description, list(seeds), counts)
        index = data._indexed()
        data.varying = _varying_keys(kept)
        data.groups = _group(index.trial_ids, index.configs, data.varying)
        return data

    # Every per-trial and per-group question below is answered from :class:`_Index`, built once
    # from the tables (one pass over the trials, one group-by of the epochs), never by
    # filtering a whole table per trial or per group.

    def _indexed(self) -> _Index:
        index = self._index
        if index is None or not index.holds(self):
            index = self._index = _Index(self)
        if not index.has_groups(self.groups):
            index.bind(self.groups)
        return index

    def config(self, trial_id: str) -> dict[str, Any]:
        """The flat dotted-key config of one trial, with missing values as None."""
        index = self._indexed()
        return dict(index.configs[index.row_of[str(trial_id)]])

    def column_values(self, key: str) -> list[Any]:
        """The plain value of config ``key`` for each trial, in the trials table's order (None
        where it is missing, all None when no trial has the key). Shared: do not modify."""
        return self._indexed().column_values(key)

    def trial_kinds(self) -> list[Kind]:
        """:func:`training_kind` of each trial, in the trials table's order. Shared."""
        return self._indexed().kinds()

    def has_metric(self, metric: str) -> bool:
        """Whether any trial reported a finite value of ``metric``."""
        return self._indexed().has_metric(metric)

    def curve(self, group: ConfigGroup, metric: str) -> pd.DataFrame:
        """``metric`` over epochs for ``group``: columns ``epoch``, ``mean``, ``std``."""
        index = self._indexed()
        rows = index.epoch_rows(group.trial_ids)
        std_col = metric + STD_SUFFIX
        epochs, means = index.epoch_column("epoch")[rows], index.epoch_column(metric)[rows]
        stds = (index.epoch_column(std_col)[rows] if std_col in self.epochs.columns
                else np.zeros_like(means))
        kept = ~np.isnan(means) & ~np.isnan(epochs)
        epochs, means, stds = epochs[kept], means[kept], stds[kept]
        order = np.argsort(epochs, kind="stable")  # per epoch, the table's order
        epochs, means, stds = epochs[order], means[order], stds[order]
        starts = np.flatnonzero(np.r_[True, epochs[1:] != epochs[:-1]]) if len(epochs) else ()
        bounds = [*(int(i) for i in starts), len(epochs)]
        out = [(float(epochs[a]), *_pool(means[a:b], stds[a:b]))
               for a, b in itertools.pairwise(bounds)]
        return pd.DataFrame(out, columns=["epoch", "mean", "std"])

    def summary(self, group: ConfigGroup, metric: str, scope: Scope) -> tuple[float, float]:
        """(mean, std) of ``metric`` at each trial's best or last epoch, pooled over the group."""
        return self._indexed().summary(group.trial_ids, f"{scope}/{metric}")

    def objective_value(self, group: ConfigGroup) -> float:
        """The group's objective at the best epoch; worst possible when it has none."""
        value = self.summary(group, self.objective, "best")[0]
        if math.isfinite(value):
            return value
        return -math.inf if self.mode == "max" else math.inf

    def order(self, group: ConfigGroup) -> tuple[float, float, int, str]:
        """The group's place in every ranking: ``sweeps.store.tables.order_key`` (the rule ``best``
        uses) of its objective, pooled std, earliest best epoch and first trial id."""
        index = self._indexed()
        known = index.orders.get(group.trial_ids)
        if known is not None:
            return known
        mean, std = self.summary(group, self.objective, "best")
        value = mean if math.isfinite(mean) else self.objective_value(group)
        epoch = index.first_best_epoch(group.trial_ids)
        key = order_key(value, std, epoch, min(group.trial_ids), self.mode)
        index.orders[group.trial_ids] = key
        return key

    def best_epochs(self, group: ConfigGroup) -> list[int]:
        """The distinct best epochs of a group's trials, ascending (empty when none has one)."""
        return self._indexed().best_epochs(group.trial_ids)

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


def _config_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if isinstance(c, str) and c.startswith(CONFIG_PREFIX)]


def _distinct(column: pd.Series) -> Iterable[Any]:
    """The cells of ``column``, or only its distinct ones where that keeps every ``repr`` apart
    (numbers and booleans; an object column may hold 1 and 1.0 and True, which hash alike)."""
    if column.dtype != object:
        try:
            return pd.unique(column)
        except TypeError:  # unhashable cells
            pass
    return column.tolist()


def _varying_keys(trials: pd.DataFrame) -> list[str]:
    keys = []
    for column in _config_columns(trials):
        values = {repr(plain(v)) for v in _distinct(trials[column])}
        if len(values) > 1:
            keys.append(column[len(CONFIG_PREFIX):])
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), k))


def _group(trial_ids: list[str], configs: list[dict[str, Any]],
           varying: list[str]) -> list[ConfigGroup]:
    members: dict[str, tuple[Kind, dict[str, Any], list[str]]] = {}
    for trial_id, config in zip(trial_ids, configs, strict=True):
        kind, settings = _normalised(config, varying)
        key = repr(sorted(settings.items()))
        members.setdefault(key, (kind, settings, []))[2].append(trial_id)
    groups = [ConfigGroup(settings, kind, tuple(ids), group_label(kind, settings))
              for kind, settings, ids in members.values()]
    kind_rank = {"ERM": 0, "switched-off": 1, "Mixup": 2}
    return sorted(groups, key=lambda g: (kind_rank[g.kind],
                                         [value_order(g.settings[k]) for k in varying]))


class _Index:
    """What the report asks per trial and per group, built once from a :class:`SweepData`'s tables:
    the row of each trial, its config, the epoch rows of each trial (one group-by), and per
    column the pooled summary of every group at once."""

    def __init__(self, data: SweepData) -> None:
        self.trials, self.epochs = data.trials, data.epochs
        self.trial_ids = [str(t) for t in data.trials["trial_id"].tolist()]
        self.row_of = {t: i for i, t in enumerate(self.trial_ids)}
        columns = _config_columns(data.trials)
        names = [c[len(CONFIG_PREFIX):] for c in columns]
        cells = [_plain_column(data.trials[c]) for c in columns]
        self.configs: list[dict[str, Any]] = [dict(zip(names, values, strict=True))
                                              for values in zip(*cells, strict=True)] \
            if cells else [{} for _ in self.trial_ids]
        self._columns = dict(zip(names, cells, strict=True))
        self._kinds: list[Kind] | None = None
        self._epoch_rows: dict[Any, np.ndarray] | None = None
        self._epoch_columns: dict[str, np.ndarray] = {}
        self._has_metric: dict[str, bool] = {}
        self._best_epochs: np.ndarray | None = None
        self.bind(data.groups)

    def holds(self, data: SweepData) -> bool:
        """Whether this index is still the one of ``data``'s tables."""
        return self.trials is data.trials and self.epochs is data.epochs

    def has_groups(self, groups: list[ConfigGroup]) -> bool:
        return self.groups is groups and self.group_count == len(groups)

    def bind(self, groups: list[ConfigGroup]) -> None:
        """Indexes ``groups``: their positions by trial ids, each one's trial rows (ascending)."""
        self.groups, self.group_count = groups, len(groups)
        self.group_of = {g.trial_ids: i for i, g in enumerate(groups)}
        self.group_rows = [self.rows(g.trial_ids) for g in groups]
        self._summaries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.orders: dict[tuple[str, ...], tuple[float, float, int, str]] = {}

    def rows(self, trial_ids: Iterable[str]) -> np.ndarray:
        """The trials-table rows of ``trial_ids``, ascending (the table's order)."""
        found = [self.row_of[t] for t in trial_ids if t in self.row_of]
        return np.sort(np.asarray(found, dtype=np.intp))

    def column_values(self, key: str) -> list[Any]:
        values = self._columns.get(key)
        return values if values is not None else [None] * len(self.trial_ids)

    def kinds(self) -> list[Kind]:
        if self._kinds is None:
            self._kinds = [training_kind(c) for c in self.configs]
        return self._kinds

    # ----------------------------------------------------------------------------- epochs

    def epoch_rows(self, trial_ids: Iterable[str]) -> np.ndarray:
        """The epochs-table rows of ``trial_ids``, ascending (the table's order)."""
        if self._epoch_rows is None:
            self._epoch_rows = ({str(k): v for k, v in
                                 self.epochs.groupby("trial_id", sort=False).indices.items()}
                                if "trial_id" in self.epochs and len(self.epochs) else {})
        parts = [self._epoch_rows[t] for t in trial_ids if t in self._epoch_rows]
        if not parts:
            return np.zeros(0, dtype=np.intp)
        return np.sort(np.concatenate(parts))

    def has_metric(self, metric: str) -> bool:
        known = self._has_metric.get(metric)
        if known is None:
            known = self._has_metric[metric] = (metric in self.epochs.columns and
                                                bool(self.epochs[metric].notna().any()))
        return known

    def epoch_column(self, name: str) -> np.ndarray:
        """A column of the epochs table as floats (KeyError when there is none)."""
        values = self._epoch_columns.get(name)
        if values is None:
            values = self._epoch_columns[name] = _floats(self.epochs[name])
        return values

    # ----------------------------------------------------------------------------- groups

    def summary(self, trial_ids: tuple[str, ...], column: str) -> tuple[float, float]:
        """(mean, pooled std) of a trials-table column over a group's trials."""
        if column not in self.trials:
            return math.nan, math.nan
        position = self.group_of.get(trial_ids)
        if position is None:  # not one of the sweep's groups: pool its rows directly
            means, stds = self._column(column)
            rows = self.rows(trial_ids)
            return _pool(means[rows], stds[rows])
        mean, std = self._group_summaries(column)
        return float(mean[position]), float(std[position])

    def _column(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        means = _floats(self.trials[column])
        std_col = column + STD_SUFFIX
        stds = _floats(self.trials[std_col]) if std_col in self.trials else np.zeros_like(means)
        return means, stds

    def _group_summaries(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Every group's :func:`_pool` of ``column`` at once: groups of one trial in one
        vectorised step (the same arithmetic), larger groups one by one."""
        known = self._summaries.get(column)
        if known is not None:
            return known
        means, stds = self._column(column)
        count = len(self.group_rows)
        mean, std = np.full(count, math.nan), np.full(count, math.nan)
        sizes = np.fromiter((len(r) for r in self.group_rows), dtype=np.intp, count=count)
        single = np.flatnonzero(sizes == 1)
        if len(single):
            first = np.fromiter((self.group_rows[i][0] for i in single), dtype=np.intp,
                                count=len(single))
            m, s = means[first], np.nan_to_num(stds[first])
            ok = np.isfinite(m)
            mean[single[ok]] = m[ok]
            std[single[ok]] = np.sqrt(s[ok] ** 2 + 0.0)
        for i in np.flatnonzero(sizes > 1):
            mean[i], std[i] = _pool(means[self.group_rows[i]], stds[self.group_rows[i]])
        self._summaries[column] = (mean, std)
        return mean, std

    def best_epochs(self, trial_ids: tuple[str, ...]) -> list[int]:
        """The distinct best epochs of a group's trials, ascending."""
        if "best_epoch" not in self.trials:
            return []
        if self._best_epochs is None:
            self._best_epochs = _floats(self.trials["best_epoch"])
        epochs = self._best_epochs[self.rows(trial_ids)]
        return sorted({int(e) for e in epochs[~np.isnan(epochs)]})

    def first_best_epoch(self, trial_ids: tuple[str, ...]) -> int:
        """The earliest best epoch among a group's trials (0 when none has one)."""
        epochs = self.best_epochs(trial_ids)
        return epochs[0] if epochs else 0


def _plain_column(column: pd.Series) -> list[Any]:
    """:func:`plain` of each cell of ``column``, without a call per cell where the dtype says
    what the cells are (``tolist`` already gives Python ints, floats and bools)."""
    values = column.tolist()
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else ""
    if kind in "iub" and kind:
        return values
    if kind == "f":
        return [None if v != v else v for v in values]  # NaN: missing
    return [plain(v) for v in values]


def _floats(column: pd.Series) -> np.ndarray:
    """A column as a float array, missing values (None, NaN, pandas' NA) as NaN."""
    return column.astype(float).to_numpy(dtype=float, na_value=math.nan)


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
    data.space, data.algorithm = sweep.space_kinds, sweep.algorithm
    if len(data.objectives) > 1:
        data.objective_front = frozenset(sweep.pareto()["trial_id"])
    return data
