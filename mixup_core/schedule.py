"""Pure functions of (config, epoch): whether Mixup is active, and the learning rate."""

from __future__ import annotations

import math

from mixup_core.config import TrialConfig

#: The multistep schedule's drops: ×0.1 from these fractions of the budget on (100, 150 of 200).
MULTISTEP_FRACTIONS = (0.5, 0.75)
MULTISTEP_FACTOR = 0.1


def mixup_active(config: TrialConfig, epoch: int) -> bool:
    """True when epoch ``epoch`` (0-based) trains on mixed data.

    Mixup runs for epochs ``< mixup.stop_epoch`` (always when it is None) and never with α = 0.
    After the stop, ``stop_mode="switch_to_erm"`` trains on clean data for the rest of the budget;
    ``stop_mode="end_training"`` ends the run there (see ``TrialConfig.epochs_to_train``).
    """
    mix = config.mixup
    if mix.alpha <= 0:
        return False
    return mix.stop_epoch is None or epoch < mix.stop_epoch


def learning_rate(config: TrialConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) under ``optim.schedule``.

    The schedule always spans ``optim.epochs``, even when ``end_training`` stops the run earlier,
    so stopping Mixup early never changes the learning rate of the epochs that do run.
    """
    opt = config.optim
    if opt.schedule == "multistep":
        drops = sum(epoch >= fraction * opt.epochs for fraction in MULTISTEP_FRACTIONS)
        return opt.lr * MULTISTEP_FACTOR**drops
    if opt.schedule == "cosine":
        return opt.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / opt.epochs))
    return opt.lr
