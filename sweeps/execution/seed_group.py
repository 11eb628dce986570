"""One sweep trial = one config trained over several seeds in lockstep (members of one pack).

Each report carries, for every metric, the mean over seeds under the metric's own name (what the
searcher and scheduler see) and the sample std under ``<name>_std`` (left out with one seed,
which has no spread). The seeds advance together, so the scheduler can compare trials at every
logging epoch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from mixup_core.training.member import Metrics
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
            # NaN (e.g. rare accuracy on data without rare points): statistics.stdev fails
            out[key + STD_SUFFIX] = (math.nan if any(math.isnan(v) for v in values)
                                     else statistics.stdev(values))
    return out
