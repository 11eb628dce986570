"""The spread over seeds, told the same way everywhere: mean ± sample std [95% CI].

The std is the sample std (n − 1 in the denominator). The interval is Student's t interval for
the mean, ``mean ± t(0.975, n − 1) · std / √n``: with 3 seeds t = 4.30, so it is wide, as three
seeds warrant. One seed has no spread: it is shown as the bare value, never as "± 0".
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

CONFIDENCE = 0.95


def sample_std(values: Sequence[float]) -> float | None:
    """The sample std of ``values``; None for fewer than two."""
    return statistics.stdev(values) if len(values) > 1 else None


def ci_half_width(std: float | None, n: int) -> float | None:
    """Half the width of the 95% t interval of a mean of ``n`` values; None without spread."""
    if std is None or n < 2 or not math.isfinite(std):
        return None
    return _t_quantile(n - 1) * std / math.sqrt(n)


@functools.cache
def _t_quantile(df: int) -> float:
    """Student's t quantile at ``0.5 + CONFIDENCE / 2``; scipy is imported on first use only
    (0.13 s that `best` on a one-seed sweep never needs)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + CONFIDENCE / 2))


def interval(mean: float, std: float | None, n: int) -> tuple[float, float] | None:
    """(low, high) of the 95% interval of the mean; None without spread."""
    half = ci_half_width(std, n)
    return None if half is None else (mean - half, mean + half)


def _finite(value: float | None) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_spread(mean: float | None, std: float | None, n: int, *, digits: int = 3,
                  ci: bool = True) -> str:
    """``0.875 ± 0.012 [0.845, 0.905]``; ``0.875`` for one seed; ``n/a`` for no value."""
    m, s = _finite(mean), _finite(std)
    if m is None:
        return "n/a"
    if s is None or n < 2:
        return f"{m:.{digits}f}"
    text = f"{m:.{digits}f} ± {s:.{digits}f}"
    bounds = interval(m, s, n) if ci else None
    if bounds is not None:
        text += f" [{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"
    return text
