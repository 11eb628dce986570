"""One sweep trial = one config trained over several seeds in lockstep.

Each report carries, for every metric, the mean over seeds under the metric's own name (what the
searcher and scheduler see) and the sample std under ``<name>_std`` (left out with one seed,
which has no spread). The seeds advance together, so the scheduler can compare trials at every
logging epoch.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch

from mixup_core.config import TrialConfig
from mixup_core.training import Metrics, Trainer
from sweeps.store.layout import SCHEDULE_METRICS, STD_SUFFIX


def aggregate(per_seed: Sequence[Metrics]) -> Metrics:
    """Mean and sample std over seeds of every metric the seeds share (``epoch`` kept); no std
    with one seed, nor of a schedule metric (``mixup/active``: the same for every seed)."""
    keys = [k for k in per_seed[0] if all(k in m for m in per_seed)]
    out: Metrics = {}
    for key in keys:
        values = [m[key] for m in per_seed]
        out[key] = statistics.fmean(values)
        if key != "epoch" and key not in SCHEDULE_METRICS and len(values) > 1:
            out[key + STD_SUFFIX] = statistics.stdev(values)
    return out


class SeedGroup:
    """Trainers for ``config`` with each seed of ``seeds``, stepped to the same epochs."""

    def __init__(self, config: TrialConfig, seeds: Sequence[int], *,
                 device: torch.device | str | None = None) -> None:
        if not seeds:
            raise ValueError("seeds: at least one seed is needed")
        self.seeds = tuple(seeds)
        self.trainers = [Trainer(config.replace(seed=s), device=device) for s in self.seeds]

    @property
    def done(self) -> bool:
        return self.trainers[0].done

    @property
    def epoch(self) -> int:
        return self.trainers[0].epoch

    @property
    def compute_seconds(self) -> float:
        """Seconds spent training and evaluating, summed over seeds."""
        return sum(t.seconds for t in self.trainers)

    def advance(self) -> Metrics:
        """Every seed to the next logging epoch; returns the aggregated metrics."""
        return aggregate([t.advance() for t in self.trainers])

    def state_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "trainers": [t.state_dict() for t in self.trainers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != list(self.seeds):
            raise ValueError(f"checkpoint seeds {state['seeds']} differ from {list(self.seeds)}")
        for trainer, trainer_state in zip(self.trainers, state["trainers"], strict=True):
            trainer.load_state_dict(trainer_state)
