"""Optuna adapter: the only sweeps module that imports optuna."""

from __future__ import annotations

import optuna


def tpe_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """A seeded TPE sampler, so an Optuna sweep proposes the same trials on every run."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.samplers.TPESampler(seed=seed)
