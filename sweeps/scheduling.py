"""The scheduling rule of the platform, as a pure function the Ray adapter applies.

ASHA never cuts a trial before its Mixup switch-off epoch has passed: the point of a switch-off
trial is what happens after the switch, so judging it earlier would be judging ERM against Mixup
at the wrong moment. Rungs reached before the switch still count for the cut-offs of others.
"""

from __future__ import annotations


def may_cut(*, epoch: float, stop_epoch: float | None, max_t: float) -> bool:
    """Whether a scheduler may stop a trial reporting at ``epoch``.

    Args:
        epoch: The epoch of the report being judged.
        stop_epoch: The trial's ``mixup.stop_epoch`` (None: Mixup throughout).
        max_t: The scheduler's budget; at it every trial may be stopped.
    """
    before_switch = stop_epoch is not None and epoch <= float(stop_epoch) and epoch < max_t
    return not before_switch
