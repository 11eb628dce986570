"""The live progress display of ``mixup-sweep run``: plain lines, readable in a terminal and a log.

A line is printed when the trial counts change or the best value improves, and otherwise at most
every ``interval`` seconds; there are no control codes, so CI logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from sweeps.tables import order_key

_ORDER = ("PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
_LABELS = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused",
           "TERMINATED": "done", "ERROR": "errored"}


class ProgressLine:
    def __init__(self, *, metric: str, mode: str, total: int, stream: TextIO | None = None,
                 interval: float = 10.0) -> None:
        self.metric, self.mode, self.total = metric, mode, total
        self.stream = stream or sys.stdout
        self.interval = interval
        self.started = time.monotonic()
        self._last_print = 0.0
        self._last_key: tuple[object, ...] = ()
        self.counts: dict[str, int] = {}
        self.best: tuple[float, str, int] | None = None  # value, trial, epoch
        self._best_key: tuple[float, float, int, str] | None = None

    def offer(self, trial_id: str, epoch: int, value: float, std: float | None = None) -> None:
        """A reported value; the best is kept by the rule ``best`` and the report use."""
        key = order_key(value, std, epoch, trial_id, self.mode)
        if self._best_key is None or key < self._best_key:
            self._best_key, self.best = key, (value, trial_id, epoch)

    def update(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        self.maybe_print()

    def maybe_print(self, *, force: bool = False) -> None:
        now = time.monotonic()
        key = (tuple(sorted(self.counts.items())), self.best[:2] if self.best else None)
        if force or key != self._last_key or now - self._last_print >= self.interval:
            self._last_key, self._last_print = key, now
            print(self.render(), file=self.stream, flush=True)

    def render(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        parts = [f"{self.counts.get(s, 0)} {_LABELS[s]}" for s in _ORDER
                 if self.counts.get(s, 0) or s in ("PENDING", "RUNNING", "TERMINATED", "ERROR")]
        done = self.counts.get("TERMINATED", 0) + self.counts.get("ERROR", 0)
        best = "best: -"
        if self.best is not None:
            value, trial, epoch = self.best
            best = f"best {self.metric} = {value:.4f} ({trial} @ epoch {epoch})"
        return (f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {done}/{self.total} trials finished | "
                + ", ".join(parts) + f" | {best}")
