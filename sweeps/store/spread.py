"""The uncertainty over seeds: computed here and only here, and told the same way everywhere.

A mean over n seeds reads ``mean ± sample std [95% interval] k/n seeds ≥ 0.95``:

* the std is the sample std (n − 1 in the denominator); one seed shows the bare value;
* fewer than :data:`MIN_SEEDS` seeds get no interval, and say so (``2 seeds: no interval``):
  a t interval on one degree of freedom is ±12.7 std, a number that means nothing;
* the interval respects the metric's range (:func:`metric_range`), by construction, never by
  clipping. Accuracies (names with ``acc``) lie in [0, 1]: the Wilson score interval with the
  seeds' own spread as its variance (an effective number of points, as survey statistics do
  for clustered proportions), Student's t quantile on n − 1 degrees of freedom as its critical
  value. Far from 0 and 1 it is the t interval; near them it bends away from the bound. Losses
  lie in [0, ∞): the t interval of the log of the mean (delta method), so it stays above 0.
  Other metrics: Student's t interval, ``mean ± t · std / √n``;
* seeds that all agree carry no spread to build on. An accuracy then gets the widest interval
  its mean allows, the Wilson interval of n all-or-nothing trials (a [0, 1] metric varies at
  most as a coin does): three seeds at 1.0 read [0.4385, 1.0000], never [1.0000, 1.0000]. Other
  metrics get no interval and a note;
* beside every accuracy, how many seeds reached :data:`REACHED`. The records keep each
  (trial, epoch)'s mean and std, not the seeds' values, so the count is what the mean, the std
  and the range allow (:func:`seeds_reached`): exact for two seeds, often for three, and for
  more mostly when the seeds sit near 1; else a range such as ``1–2/3``.

Printed bounds are rounded outwards, so an interval never reads narrower than it is.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

CONFIDENCE = 0.95
#: Fewer seeds than this get no interval (the note says so).
MIN_SEEDS = 3
#: The accuracy a seed must reach to count in ``k/n seeds ≥ 0.95``: the level at which we say a
#: seed has learned what the metric measures (the paper's claim is rare-feature accuracy near 1).
REACHED = 0.95
#: A std this small (or smaller) is no spread: seeds that agree up to float rounding.
ZERO_SPREAD = 1e-9
#: The columns (and JSON keys) that carry the uncertainty of ``<metric>``: the interval's bounds
#: (NaN where there is none) and the fewest and most seeds that can have reached
#: :data:`REACHED` (accuracies only; equal when the summary pins the count down).
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
SEEDS_AT_LEAST, SEEDS_AT_MOST = "_seeds_at_least", "_seeds_at_most"
DERIVED_SUFFIXES = (CI_LOW, CI_HIGH, SEEDS_AT_LEAST, SEEDS_AT_MOST)
#: Above this many values the count of seeds is bounded by the mean and the least spread only
#: (the exact search takes about n³ steps; sweeps average over 3 to 10 seeds).
_EXACT_COUNT_UP_TO = 20
_ROUNDING_SLACK = 1e-9  # a bound a hair from a printed digit is not pushed one digit out


def metric_range(metric: str | None) -> tuple[float, float]:
    """The values ``metric`` can take: [0, 1] for accuracies (``acc`` in its last name part),
    [0, ∞) for losses, unbounded for the rest and for an unknown (None) metric."""
    leaf = (metric or "").rsplit("/", 1)[-1]
    if "acc" in leaf:
        return 0.0, 1.0
    if "loss" in leaf:
        return 0.0, math.inf
    return -math.inf, math.inf


def is_accuracy(metric: str | None) -> bool:
    return metric_range(metric) == (0.0, 1.0)


def sample_std(values: Sequence[float]) -> float | None:
    """The sample std of ``values``; None for fewer than two."""
    return statistics.stdev(values) if len(values) > 1 else None


def ci_half_width(std: float | None, n: int) -> float | None:
    """Half the width of the 95% t interval of a mean of ``n`` values (the interval of an
    unbounded metric); None without spread or with fewer than :data:`MIN_SEEDS` values."""
    if std is None or n < MIN_SEEDS or not math.isfinite(std):
        return None
    return _t_quantile(n - 1) * std / math.sqrt(n)


@functools.cache
def _t_quantile(df: int) -> float:
    """Student's t quantile at ``0.5 + CONFIDENCE / 2``; scipy is imported on first use only
    (0.13 s that `best` on a one-seed sweep never needs)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + CONFIDENCE / 2))


@functools.cache
def _z_quantile() -> float:
    return statistics.NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


def _wilson(p: float, points: float, c: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` of ``points`` trials, critical value
    ``c``; inside [0, 1] for any p in [0, 1]."""
    shrink = c * c / points
    centre = (p + shrink / 2) / (1 + shrink)
    half = c / (1 + shrink) * math.sqrt(p * (1 - p) / points + shrink / (4 * points))
    # at p = 0 (p = 1) the low (high) end is the bound exactly; elsewhere max and min only
    # absorb float rounding, the interval lies inside [0, 1] by construction
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return low, high


def _finite(value: float | None) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def interval(mean: float | None, std: float | None, n: int, *,
             metric: str | None = None) -> tuple[float, float] | None:
    """(low, high) of the 95% interval of a mean over ``n`` seeds, within the range of
    ``metric`` (see the module's docstring); None where no interval means anything: fewer than
    :data:`MIN_SEEDS` seeds, no std, a mean outside the range, or (for all but accuracies)
    seeds that all agree. :func:`no_interval_note` says which."""
    m, s = _finite(mean), _finite(std)
    if m is None or s is None or n < MIN_SEEDS:
        return None
    low, high = metric_range(metric)
    if not low <= m <= high:
        return None
    if (low, high) == (0.0, 1.0):
        if s <= ZERO_SPREAD or m * (1 - m) == 0.0:
            return _wilson(m, n, _z_quantile())
        return _wilson(m, n * m * (1 - m) / (s * s), _t_quantile(n - 1))
    if s <= ZERO_SPREAD:
        return None
    if low == 0.0:  # losses
        if m == 0.0:
            return None
        log_half = _t_quantile(n - 1) * s / (m * math.sqrt(n))
        return m * math.exp(-log_half), m * math.exp(log_half)
    half = _t_quantile(n - 1) * s / math.sqrt(n)
    return m - half, m + half


def no_interval_note(mean: float | None, std: float | None, n: int, *,
                     metric: str | None = None) -> str | None:
    """Why :func:`interval` gives none (``2 seeds: no interval``); None when it gives one or
    when there is nothing to say (one seed, no value)."""
    m, s = _finite(mean), _finite(std)
    if m is None or n < 2 or interval(m, s, n, metric=metric) is not None:
        return None
    if n < MIN_SEEDS:
        return f"{n} seeds: no interval"
    if s is None:
        return "no std: no interval"
    low, high = metric_range(metric)
    if not low <= m <= high:
        return f"outside [{low:g}, {high:g}]: no interval"
    return f"{n} seeds all equal: no interval"


# ------------------------------------------------------------------ how many seeds reached it


def seeds_reached(mean: float | None, std: float | None, n: int, *, metric: str | None = None,
                  threshold: float = REACHED) -> tuple[int, int] | None:
    """The fewest and the most of ``n`` seeds that can have reached ``threshold`` (≥), given
    only their mean, sample std (None: unknown) and the range of ``metric``.

    Seeds that miss lie below the threshold, the others at or above it, all within the range;
    a count k is possible when some such n values have this mean and this std. The exact
    search runs up to 20 values; beyond, the count is bounded by the mean and the least spread
    alone (a wider, still true, range). None without a finite mean; (0, n) if no count fits
    (a pooled std that is not one sample's)."""
    m, s = _finite(mean), _finite(std)
    if m is None or n < 1:
        return None
    return _counts(m, s, n, metric_range(metric), threshold)


@functools.lru_cache(maxsize=4096)  # a table asks for a cell's count twice: text and column
def _counts(mean: float, std: float | None, n: int, bounds: tuple[float, float],
            threshold: float) -> tuple[int, int]:
    if n == 1:
        return (1, 1) if mean >= threshold else (0, 0)
    spread = None if std is None else (n - 1) * std * std
    below = threshold - ZERO_SPREAD  # a seed that missed lies below the threshold
    possible = [k for k in range(n + 1)
                if _count_fits(k, n, mean, spread, (bounds[0], below), (threshold, bounds[1]))]
    return (min(possible), max(possible)) if possible else (0, n)


def _count_fits(k: int, n: int, mean: float, spread: float | None,
                missed: tuple[float, float], hit: tuple[float, float]) -> bool:
    """Whether n values, n − k of them in ``missed`` and k in ``hit``, can have this mean and
    this sum of squared deviations (``spread``; None: any)."""
    def times(count: int, value: float) -> float:
        return count * value if count else 0.0  # no 0 · ∞ for an unbounded range

    total, slack = n * mean, 1e-9 * max(1.0, abs(mean)) * n
    least = times(n - k, missed[0]) + times(k, hit[0])
    most = times(n - k, missed[1]) + times(k, hit[1])
    if not least - slack <= total <= most + slack:
        return False
    if spread is None:
        return True
    tol = 1e-9 * max(spread, 1e-12) + 1e-15
    if spread < _least_spread(k, n, mean, missed[1], hit[0]) - tol:
        return False
    if n > _EXACT_COUNT_UP_TO:
        return True
    return spread <= _most_spread(k, n, mean, missed, hit) + tol


def _least_spread(k: int, n: int, mean: float, below: float, threshold: float) -> float:
    """The least Σ(x − mean)² of n values with this mean, k of them ≥ ``threshold`` and the
    rest ≤ ``below``: each group as close to the mean as its side allows (the KKT point)."""
    if k in (0, n):
        return 0.0
    total = n * mean
    if total >= k * threshold + (n - k) * below:  # the misses sit at the threshold
        hit = (total - (n - k) * below) / k
        return (n - k) * (below - mean) ** 2 + k * (hit - mean) ** 2
    missed = (total - k * threshold) / (n - k)  # the hits sit at the threshold
    return k * (threshold - mean) ** 2 + (n - k) * (missed - mean) ** 2


def _most_spread(k: int, n: int, mean: float, missed: tuple[float, float],
                 hit: tuple[float, float]) -> float:
    """The most Σ(x − mean)² of n values with this mean, k in ``hit`` and the rest in
    ``missed``: a convex function is largest at a vertex, where every value but one (``free``)
    sits at an end of its box; the vertices are counted, not listed."""
    if any(math.isinf(v) for v in (*missed, *hit)):
        return math.inf
    total, best = n * mean, -math.inf
    for free_box, free_hit in ((missed, False), (hit, True)):
        hits, misses = k - free_hit, n - k - (not free_hit)
        if hits < 0 or misses < 0:
            continue
        for hits_high in range(hits + 1):
            for misses_high in range(misses + 1):
                ends = ((hits_high, hit[1]), (hits - hits_high, hit[0]),
                        (misses_high, missed[1]), (misses - misses_high, missed[0]))
                free = total - sum(c * v for c, v in ends)
                if free_box[0] - 1e-12 <= free <= free_box[1] + 1e-12:
                    squares = sum(c * (v - mean) ** 2 for c, v in ends) + (free - mean) ** 2
                    best = max(best, squares)
    return best


# ------------------------------------------------------------------ columns and text


def uncertainty_columns(name: str, mean: float | None, std: float | None,
                        n: int) -> dict[str, float | int | None]:
    """The derived columns of ``name`` (``<name>_ci_low``, ``<name>_ci_high``, and for an
    accuracy ``<name>_seeds_at_least``, ``<name>_seeds_at_most``); None where there is none."""
    bounds = interval(mean, std, n, metric=name)
    out: dict[str, float | int | None] = {
        name + CI_LOW: None if bounds is None else bounds[0],
        name + CI_HIGH: None if bounds is None else bounds[1],
    }
    if is_accuracy(name):
        counts = seeds_reached(mean, std, n, metric=name)
        out[name + SEEDS_AT_LEAST] = None if counts is None else counts[0]
        out[name + SEEDS_AT_MOST] = None if counts is None else counts[1]
    return out


def _outwards(low: float, high: float, digits: int) -> str:
    scale = 10.0 ** digits
    down = math.floor(low * scale + _ROUNDING_SLACK) / scale
    up = math.ceil(high * scale - _ROUNDING_SLACK) / scale
    return f"[{down:.{digits}f}, {up:.{digits}f}]"


def format_reached(mean: float | None, std: float | None, n: int, *,
                   metric: str | None = None) -> str:
    """``3/3 seeds ≥ 0.95`` (``1–2/3 …`` when the summary allows a range); empty for one seed
    and for metrics other than accuracies."""
    counts = seeds_reached(mean, std, n, metric=metric) if is_accuracy(metric) else None
    if n < 2 or counts is None:
        return ""
    fewest, most = counts
    k = str(fewest) if fewest == most else f"{fewest}–{most}"
    return f"{k}/{n} seeds ≥ {REACHED:g}"


def format_spread(mean: float | None, std: float | None, n: int, *, digits: int = 3,
                  ci: bool = True, metric: str | None = None) -> str:
    """``0.875 ± 0.012 [0.845, 0.905] 0/3 seeds ≥ 0.95``; ``0.875`` for one seed; ``n/a`` for no
    value. ``metric`` gives the range and whether the seed count is shown (None: unbounded);
    ``ci=False`` leaves out the interval and its note."""
    m, s = _finite(mean), _finite(std)
    if m is None:
        return "n/a"
    if s is None or n < 2:
        return f"{m:.{digits}f}"
    text = f"{m:.{digits}f} ± " + ("0" if s <= ZERO_SPREAD else f"{s:.{digits}f}")
    if ci:
        bounds = interval(m, s, n, metric=metric)
        note = no_interval_note(m, s, n, metric=metric)
        text += f" {_outwards(*bounds, digits)}" if bounds is not None else f" ({note})"
    reached = format_reached(m, s, n, metric=metric)
    return f"{text} {reached}" if reached else text


def spread_note(n: int) -> str:
    """The sentence a table's header or caption gives for values over ``n`` seeds."""
    if n < 2:
        return "one seed per trial, so no spread is shown"
    head = f"mean ± sample std over {n} seeds"
    if n < MIN_SEEDS:
        return f"{head}; {n} seeds are too few for an interval, so none is shown"
    return (f"{head} [95% interval of the mean: Wilson with the seeds' spread for accuracies "
            "(seeds that all agree: Wilson of the seed count), t on the log scale for losses, t "
            f"for other metrics]; for accuracies, how many seeds reached {REACHED:g}")
