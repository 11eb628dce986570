"""Early-stopped Mixup: whether Mixup is active is a pure function of (config, epoch)."""

from __future__ import annotations

from mixup_core.config import TrialConfig


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
