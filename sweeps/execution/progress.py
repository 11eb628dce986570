"""The live progress display of ``mixup-sweep run``.

On a terminal it is a live panel (:class:`LivePanel`, drawn with rich): an overall bar with the
ETA, each running trial's epoch of its budget with its searched settings, and the best trial so
far by its settings. Anywhere else (CI, a file, a pipe) it is plain lines (:class:`ProgressLine`):
a line when the trial counts change or the best value improves, otherwise at most every
``interval`` seconds, with no control codes. :func:`make_display` picks one.

The ETA is the trial-epochs still to train over the rate at which this driver has seen them
trained (a trial that has not started counts with the spec's epoch budget). The rate is measured
from the first trained epoch on (Ray's start-up and the first trials' set-up are not training),
and no ETA is shown before :data:`ETA_AFTER` of the work is done and :data:`ETA_MIN_SECONDS`
of training were seen: a first estimate from one burst of reports was off by 3-10x.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from sweeps.store.tables import order_key

_ORDER = ("PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
_LABELS = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused",
           "TERMINATED": "done", "ERROR": "errored"}
#: The share of the sweep's trial-epochs trained before an ETA is shown.
ETA_AFTER = 0.05
#: Seconds of training seen (since the first trained epoch) before an ETA is shown.
ETA_MIN_SECONDS = 3.0
#: Set to 1 to get plain lines on a terminal too.
PLAIN_ENV = "MIXUP_PLAIN_PROGRESS"


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """Plain progress lines (see the module docstring)."""

    def __init__(self, *, metric: str, mode: str, total: int, stream: TextIO | None = None,
                 interval: float = 10.0, budget: int = 0) -> None:
        self.metric, self.mode, self.total = metric, mode, total
        self.stream = stream or sys.stdout
        self.interval = interval
        self.budget = budget  # epochs of a trial not started yet (the spec's budget)
        self.started = time.monotonic()
        self._last_print = 0.0
        self._last_key: tuple[object, ...] = ()
        self.counts: dict[str, int] = {}
        self.best: tuple[float, str, int] | None = None  # value, trial, epoch
        self._best_key: tuple[float, float, int, str] | None = None
        #: trial id -> [epoch, budget, name, settings, first epoch seen, running]
        self.trials: dict[str, list[Any]] = {}
        #: (when, trial-epochs trained) at the first trained epoch this display saw
        self._first_trained: tuple[float, int] | None = None

    # -- what the driver tells it

    def trial(self, trial_id: str, *, epoch: int, budget: int, name: str,
              settings: dict[str, Any] | None = None) -> None:
        """A trial started (epoch 0 or where it resumes) or reported ``epoch``."""
        entry = self.trials.get(trial_id)
        if entry is None:
            self.trials[trial_id] = [epoch, budget, name, settings or {}, epoch, True]
        else:
            entry[0], entry[1], entry[5] = max(entry[0], epoch), budget, True
        if self._first_trained is None and epoch > self.trials[trial_id][4]:
            self._first_trained = (time.monotonic(), epoch - self.trials[trial_id][4])

    def ended(self, trial_id: str) -> None:
        entry = self.trials.get(trial_id)
        if entry is not None:
            entry[0], entry[5] = entry[1], False

    def offer(self, trial_id: str, epoch: int, value: float, std: float | None = None) -> None:
        """A reported value; the best is kept by the rule ``best`` and the report use."""
        key = order_key(value, std, epoch, trial_id, self.mode)
        if self._best_key is None or key < self._best_key:
            self._best_key, self.best = key, (value, trial_id, epoch)

    def update(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        self.maybe_print()

    def close(self) -> None:
        """The last state, once (the sweep ended)."""
        self.maybe_print(force=True)

    # -- derived

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the rate trial-epochs were trained since the first trained epoch;
        None until enough was trained to say (see the module docstring)."""
        now = time.monotonic() if now is None else now
        done = sum(e[0] for e in self.trials.values())
        trained = sum(e[0] - e[4] for e in self.trials.values())
        left = sum(e[1] - e[0] for e in self.trials.values())
        left += max(0, self.total - len(self.trials)) * self.budget
        if left <= 0:
            return 0.0 if done else None
        if trained <= 0:
            return None
        if self._first_trained is None:
            self._first_trained = (now, trained)
            return None
        since, at_first = self._first_trained
        elapsed, rate_epochs = now - since, trained - at_first
        if (elapsed < ETA_MIN_SECONDS or rate_epochs <= 0
                or trained < ETA_AFTER * (trained + left)):
            return None
        return left / (rate_epochs / elapsed)

    def best_name(self) -> str:
        if self.best is None:
            return ""
        entry = self.trials.get(self.best[1])
        return entry[2] if entry is not None and entry[2] else self.best[1]

    # -- output

    def maybe_print(self, *, force: bool = False) -> None:
        now = time.monotonic()
        key = (tuple(sorted(self.counts.items())), self.best[:2] if self.best else None)
        if force or key != self._last_key or now - self._last_print >= self.interval:
            self._last_key, self._last_print = key, now
            print(self.render(), file=self.stream, flush=True)

    def render(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.counts.get(s, 0)} {_LABELS[s]}" for s in _ORDER
                 if self.counts.get(s, 0) or s in ("RUNNING", "ERROR")]
        done = self.counts.get("TERMINATED", 0) + self.counts.get("ERROR", 0)
        eta = self.eta()
        best = "best: -"
        if self.best is not None:
            value, _, epoch = self.best
            best = f"best {self.metric} = {value:.4f} ({self.best_name()} @ epoch {epoch})"
        return (f"[{_clock(elapsed)}] {done}/{self.total} trials finished, "
                + ", ".join(parts) + (f" | ETA {_clock(eta)}" if eta is not None else "")
                + f" | {best}")


class LivePanel(ProgressLine):
    """The terminal's live panel (rich): bar + ETA, the running trials, the best so far."""

    MAX_ROWS = 12

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self.stream)
        self._live = Live(self._panel(), console=self._console, refresh_per_second=4,
                          transient=False, redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def maybe_print(self, *, force: bool = False) -> None:
        self._live.update(self._panel(), refresh=force)

    def close(self) -> None:
        self._live.update(self._panel(), refresh=True)
        self._live.stop()

    def _panel(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        done = self.counts.get("TERMINATED", 0) + self.counts.get("ERROR", 0)
        eta = self.eta()
        head = Table.grid(padding=(0, 1))
        head.add_row(ProgressBar(total=max(self.total, 1), completed=done, width=30),
                     Text(f"{done}/{self.total} trials", style="bold"),
                     Text(f"{self.counts.get('RUNNING', 0)} running"),
                     Text(f"{self.counts.get('ERROR', 0)} errored",
                          style="red" if self.counts.get("ERROR") else ""),
                     Text(f"elapsed {_clock(time.monotonic() - self.started)}"),
                     Text(f"ETA {_clock(eta)}" if eta is not None else "ETA -"))
        rows = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        rows.add_column("trial")
        rows.add_column("epoch", justify="right")
        rows.add_column("")
        rows.add_column("settings")
        running = [(t, e) for t, e in self.trials.items() if e[5]]
        for trial_id, (epoch, budget, name, _, _, _) in running[:self.MAX_ROWS]:
            rows.add_row(trial_id, f"{epoch}/{budget}",
                         ProgressBar(total=max(budget, 1), completed=epoch, width=12),
                         name or "-")
        if len(running) > self.MAX_ROWS:
            rows.add_row(f"... {len(running) - self.MAX_ROWS} more", "", "", "")
        if self.best is None:
            best = Text(f"best {self.metric}: -")
        else:
            value, trial_id, epoch = self.best
            best = Text.assemble(f"best {self.metric} ", (f"{value:.4f}", "bold green"),
                                 f"  {self.best_name()}  (trial {trial_id}, epoch {epoch})")
        return Group(head, rows, best)


def make_display(*, metric: str, mode: str, total: int, stream: TextIO,
                 budget: int = 0) -> ProgressLine:
    """A live panel on a terminal, plain lines anywhere else (or with MIXUP_PLAIN_PROGRESS=1)."""
    tty = hasattr(stream, "isatty") and stream.isatty()
    if tty and os.environ.get(PLAIN_ENV) != "1" and os.environ.get("TERM") != "dumb":
        return LivePanel(metric=metric, mode=mode, total=total, stream=stream, budget=budget)
    return ProgressLine(metric=metric, mode=mode, total=total, stream=stream, budget=budget)
