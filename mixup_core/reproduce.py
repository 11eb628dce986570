"""The paper's comparison, run in-process: ERM, each label scheme, Mixup switched off early.

``mixup-sweep reproduce`` prints this table; the same rows appear as a Ray sweep in
``sweeps/specs/paper_feature_noise.yaml``. Here every row and seed trains in this process, as one
pack (:mod:`mixup_core.packed`) when the task packs, with no orchestration at all, so the numbers
depend on ``mixup_core`` alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mixup_core.config import TrialConfig
from mixup_core.schemes import LABEL_SCHEMES
from mixup_core.training import Pack, TrainingDiverged, train

#: The metrics the table summarises, in column order.
TABLE_METRICS = ("test/acc_common", "test/acc_rare", "features/rare_alignment")
#: Epochs at which the "switched off" rows stop Mixup (with the default 1000-epoch budget).
SWITCH_OFF_EPOCHS = (100, 200, 300, 500, 700)


def paper_rows(base: TrialConfig) -> list[tuple[str, dict[str, Any]]]:
    """(label, dotted overrides) for every row of the comparison."""
    rows: list[tuple[str, dict[str, Any]]] = [("ERM", {"mixup.alpha": 0.0})]
    alpha = base.mixup.alpha if base.mixup.alpha > 0 else 1.0
    for name in LABEL_SCHEMES.names():
        rows.append((f"Mixup α={alpha:g}, labels {name}",
                     {"mixup.alpha": alpha, "mixup.label_scheme": name, "mixup.stop_epoch": None}))
    for stop in SWITCH_OFF_EPOCHS:
        if stop < base.optim.epochs:
            rows.append((f"Mixup switched off at epoch {stop}",
                         {"mixup.alpha": alpha, "mixup.label_scheme": "same",
                          "mixup.stop_epoch": stop, "mixup.stop_mode": "switch_to_erm"}))
    return rows


@dataclass(frozen=True)
class RowSummary:
    """One row: the mean and sample std over seeds of each table metric at the last epoch
    (std None with one seed: no spread), and every seed's final metrics."""

    label: str
    overrides: dict[str, Any]
    mean: dict[str, float]
    std: dict[str, float | None]
    seeds: tuple[int, ...]
    finals: tuple[dict[str, float], ...] = ()


def _summarise(label: str, overrides: dict[str, Any], finals: list[dict[str, float]],
               seeds: Sequence[int]) -> RowSummary:
    mean = {m: statistics.fmean(f[m] for f in finals) for m in TABLE_METRICS}
    std = {m: statistics.stdev([f[m] for f in finals]) if len(finals) > 1 else None
           for m in TABLE_METRICS}
    return RowSummary(label, overrides, mean, std, tuple(seeds), tuple(finals))


def reproduce(
    base: TrialConfig, *, seeds: Sequence[int] = (0, 1, 2),
    on_row: Callable[[RowSummary], None] | None = None, packed: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[RowSummary]:
    """Trains every row of :func:`paper_rows` for each seed; returns mean and sample std per
    row. The table reports test metrics at the last epoch: nothing is chosen, so no
    validation data is needed.

    With ``packed`` (the default) every row and seed trains as one
    :class:`~mixup_core.training.Pack`; otherwise one pack of one after another.
    ``on_progress(done, total)`` is called at each logged epoch with the trial-epochs trained.
    """
    rows = paper_rows(base)
    configs = [[base.replace(seed=seed, **overrides) for seed in seeds] for _, overrides in rows]
    total = sum(c.optim.epochs for row in configs for c in row)
    if packed:
        pack = Pack([c for row in configs for c in row])

        def packed_progress(_member: Any, _metrics: Any) -> None:
            if on_progress is not None:
                on_progress(sum(m.epoch for m in pack.members), total)

        results = pack.run(packed_progress)
        for member in pack.members:
            if member.status == "diverged":
                raise TrainingDiverged(member.error)
        finals_of = [[r.final for r in results[i * len(seeds):(i + 1) * len(seeds)]]
                     for i in range(len(rows))]
    else:
        finished = 0

        def one_progress(epoch: int, _metrics: Any) -> None:
            if on_progress is not None:
                on_progress(finished + epoch, total)

        finals_of = []
        for row in configs:
            finals = []
            for config in row:
                finals.append(train(config, on_log=one_progress).final)
                finished += config.optim.epochs
            finals_of.append(finals)
    summaries = []
    for (label, overrides), finals in zip(rows, finals_of, strict=True):
        summary = _summarise(label, overrides, finals, seeds)
        summaries.append(summary)
        if on_row is not None:
            on_row(summary)
    return summaries
