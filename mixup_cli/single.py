"""``mixup-sweep train`` and ``reproduce``: trials in this process, printed as they run."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

from mixup_cli.trial_io import build_trial_config
from mixup_core.reproduce import TABLE_METRICS, RowSummary, reproduce
from mixup_core.training import METRIC_NAMES, Pack, TrainingDiverged
from sweeps.store.spread import format_spread, interval, spread_note

_COLUMNS = ("epoch", *METRIC_NAMES)


def _cell(value: float | None, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}".rjust(width)
    return f"{value:.4f}".rjust(width)


class MetricsTable:
    """Prints one fixed-width row per logged epoch: readable in a terminal and in a CI log."""

    def __init__(self, columns: tuple[str, ...] = _COLUMNS) -> None:
        self.columns = columns
        self.widths = [max(len(c), 8) for c in columns]

    def header(self) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(self.columns, self.widths, strict=True))

    def row(self, metrics: dict[str, float]) -> str:
        return "  ".join(_cell(metrics.get(c), w)
                         for c, w in zip(self.columns, self.widths, strict=True))


def run_single_trial(path: str | None, assignments: list[str], *, as_json: bool) -> int:
    config = build_trial_config(path, assignments)
    pack = Pack([config])  # one trial of one seed: a pack of one
    table = MetricsTable()
    print(f"device {pack.device}; {config.epochs_to_train} epochs; seed {config.seed}")
    print(table.header(), flush=True)
    result = pack.run(lambda _member, metrics: print(table.row(metrics), flush=True))[0]
    if pack.members[0].status == "diverged":
        print(f"mixup-sweep train: training diverged: {pack.members[0].error}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result.final, sort_keys=True))
    return 0


_CELL = 45  # "0.938 ± 0.058 [0.897, 0.979] 9/10 seeds ≥ 0.95"


def _format_row(row: RowSummary, width: int) -> str:
    n = len(row.seeds)
    cells = [format_spread(row.mean[m], row.std[m], n, metric=m).rjust(max(len(m), _CELL))
             for m in TABLE_METRICS]
    return f"{row.label:<{width}}  " + "  ".join(cells)


class Progress:
    """Progress lines on stderr for a long in-process run: one at each further tenth of the
    work, with the time so far and, from the first tenth on, the time left at the rate since
    the first logged epoch (so a slow start does not skew it)."""

    def __init__(self, what: str, *, stream: TextIO | None = None, steps: int = 10) -> None:
        self.what, self.stream, self.steps = what, stream, steps
        self.started = time.monotonic()
        self.first: tuple[float, int] | None = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, done)
        step = min(self.steps, done * self.steps // max(1, total))
        if step <= self.shown:
            return
        self.shown = step
        since, at = self.first
        left = ""
        if done > at and now > since:
            left = f", about {(total - done) / ((done - at) / (now - since)):.0f} s left"
        print(f"{self.what}: {100 * done // max(1, total)}% of {total} trial-epochs, "
              f"{now - self.started:.0f} s{left}", file=self.stream or sys.stderr, flush=True)


def run_reproduction(path: str | None, assignments: list[str], *, seeds: int,
                     as_json: bool, packed: bool = True) -> int:
    base = build_trial_config(path, assignments)
    width = 38
    print(f"{'training':<{width}}  " + "  ".join(m.rjust(max(len(m), _CELL))
                                                for m in TABLE_METRICS))
    print(f"(test metrics at the last epoch, {spread_note(seeds)}; seeds 0..{seeds - 1}; "
          f"{base.optim.epochs} epochs each)", flush=True)
    try:
        rows = reproduce(base, seeds=range(seeds), packed=packed,
                         on_row=lambda row: print(_format_row(row, width), flush=True),
                         on_progress=Progress("reproduce"))
    except TrainingDiverged as err:
        print(f"mixup-sweep reproduce: training diverged: {err}", file=sys.stderr)
        return 1
    if as_json:
        payload: list[dict[str, Any]] = [
            {"label": r.label, "overrides": r.overrides, "seeds": list(r.seeds), "mean": r.mean,
             "std": r.std,
             "ci95": {m: interval(r.mean[m], r.std[m], len(r.seeds), metric=m)
                      for m in TABLE_METRICS},
             "per_seed": {m: [f[m] for f in r.finals] for m in TABLE_METRICS}}
            for r in rows
        ]
        print(json.dumps(payload))
    return 0
