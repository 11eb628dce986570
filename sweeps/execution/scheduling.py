"""The scheduling rule of the platform, as a pure function the Ray adapter applies.

ASHA never cuts a trial before its Mixup switch-off epoch has passed: the point of a switch-off
trial is what happens after the switch, so judging it earlier would be judging ERM against Mixup
at the wrong moment. Rungs reached before the switch still count for the cut-offs of others.
"""

from __future__ import annotations

import numpy as np


def may_cut(*, epoch: float, stop_epoch: float | None, max_t: float) -> bool:
    """Whether a scheduler may stop a trial reporting at ``epoch``.

    Args:
        epoch: The epoch of the report being judged.
        stop_epoch: The trial's ``mixup.stop_epoch`` (None: Mixup throughout).
        max_t: The scheduler's budget; at it every trial may be stopped.
    """
    before_switch = stop_epoch is not None and epoch <= float(stop_epoch) and epoch < max_t
    return not before_switch


class Rungs:
    """ASHA's rungs for packed trials: Ray Tune's one-bracket rule (``_Bracket.on_result``),
    applied to each member trial of every pack against every result recorded at the rung so far.

    A trial's first report at or past a rung's milestone is recorded there, and cut when it is
    below the rung's ``1 - 1/reduction_factor`` quantile of the values recorded before it (for
    ``mode: min`` the values are negated, as in Ray). A report at ``max_t`` or later always stops
    the trial. :func:`may_cut` turns a cut before the trial's switch-off epoch into "go on".

    Judging is idempotent: a trial judged again at a rung (its pack was retried after a node
    died, or resumed after the driver died) gets the decision it got the first time, so a
    restarted pack replays exactly.
    """

    def __init__(self, *, grace_period: int, max_t: int, reduction_factor: float,
                 mode: str) -> None:
        self.max_t, self.rf, self.sign = max_t, float(reduction_factor), (
            1.0 if mode == "max" else -1.0)
        count = int(np.log(max_t / grace_period) / np.log(self.rf) + 1)
        self.milestones = [grace_period * self.rf ** k for k in range(count)]
        #: milestone index -> trial id -> (signed value, cut, epoch of the judged report)
        self.recorded: dict[int, dict[str, tuple[float, bool, float]]] = {
            k: {} for k in range(len(self.milestones))}

    def judge(self, trial_id: str, epoch: float, value: float,
              stop_epoch: float | None) -> bool:
        """Whether ``trial_id``, reporting ``value`` at ``epoch``, stops here."""
        if epoch >= self.max_t:
            return True
        for k in reversed(range(len(self.milestones))):
            if epoch < self.milestones[k]:
                continue
            recorded = self.recorded[k]
            if trial_id in recorded:  # judged at this rung before: the same answer at that report
                _, cut, judged_at = recorded[trial_id]
                return cut and judged_at == float(epoch)
            signed = self.sign * float(value)
            values = [v for v, _, _ in recorded.values()]
            cut = bool(values) and signed < float(np.nanpercentile(values, (1 - 1 / self.rf) * 100))
            cut = cut and may_cut(epoch=epoch, stop_epoch=stop_epoch, max_t=self.max_t)
            recorded[trial_id] = (signed, cut, float(epoch))
            return cut
        return False

    def state(self) -> dict[str, dict[str, list[float | bool]]]:
        return {str(k): {t: list(v) for t, v in rec.items()} for k, rec in self.recorded.items()}

    def load(self, state: dict[str, dict[str, list[float | bool]]]) -> None:
        for k, rec in state.items():
            self.recorded[int(k)] = {t: (float(v[0]), bool(v[1]), float(v[2]))
                                     for t, v in rec.items()}
