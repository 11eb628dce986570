"""Training: every training is a member of a :class:`Pack`; a single trial is a pack of one.

* :mod:`~mixup_core.training.member`: a member (config, generators, epoch, history, status).
* :mod:`~mixup_core.training.loop`: the one loop (step, log, divergence, results, state).
* :mod:`~mixup_core.training.metrics`: evaluation metrics over a member axis.
* :mod:`~mixup_core.training.closed_form`: the closed-form engine (the patch CNN).
* :mod:`~mixup_core.training.autograd`: the autograd engine (image models).

Each step runs free of I/O; the caller (the CLI, Ray Tune, a benchmark) decides what to print,
report or store.
"""

from __future__ import annotations

from mixup_core.catalog import METRIC_NAMES
from mixup_core.training.loop import LogCallback, Pack, train, train_packed
from mixup_core.training.member import (
    Member,
    Metrics,
    Status,
    TrainingDiverged,
    TrialResult,
    resolve_device,
)

__all__ = ["METRIC_NAMES", "LogCallback", "Member", "Metrics", "Pack", "Status",
           "TrainingDiverged", "TrialResult", "resolve_device", "train", "train_packed"]
